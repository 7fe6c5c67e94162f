import type { ScaContext } from './context.js';
import { NO_ROUTE, type Appearance, type Notify, type Subscription } from './types.js';

/** One shared line as stored: its subscriptions (both packages) and appearances. */
export interface LineSnapshot {
  readonly aor: string;
  /** false: the AoR is no longer a shared line (its rows go). */
  readonly shared: boolean;
  readonly subscriptions: readonly Subscription[];
  readonly appearances: readonly Appearance[];
}

const copySub = (s: Subscription): Subscription => ({ ...s, routeSet: s.routeSet.length === 0 ? NO_ROUTE : [...s.routeSet] });

/**
 * Puts stored lines back. Subscriptions that expired while the service was down are dropped
 * (their phones re-subscribe); appearances are kept for the caller to reconcile with the proxy.
 */
export function restoreLines(ctx: ScaContext, lines: readonly LineSnapshot[], now: number): { subscriptions: number; expired: number; appearances: number } {
  let subscriptions = 0;
  let expired = 0;
  let appearances = 0;
  for (const line of lines) {
    if (!line.shared) continue;
    ctx.appearances.put(line.aor, undefined);
    for (const s of line.subscriptions) {
      if (s.expires <= now || s.state !== 'active') {
        expired++;
        ctx.journal.subscription(s); // not in the table: its row goes
        if (s.flow !== undefined) ctx.journal.flow(s);
        continue;
      }
      ctx.subscriptions.restore(copySub(s));
      subscriptions++;
    }
    for (const a of line.appearances) {
      ctx.appearances.put(line.aor, a);
      appearances++;
    }
  }
  return { subscriptions, expired, appearances };
}

/** A full-state NOTIFY to every call-info subscriber: after a restart, every lamp is set again. */
export function notifyEveryone(ctx: ScaContext, now: number, only?: (s: Subscription) => boolean): Notify[] {
  return ctx.appearances.aors().flatMap((aor) => ctx.notifyGroup(aor, now, only));
}
