import type { ScaContext } from './context.js';
import { wireState } from './types.js';

/** One shared line as the live view shows it. Times are seconds since the epoch. */
export interface LineView {
  readonly aor: string;
  readonly max_appearances: number;
  readonly appearances: ReadonlyArray<{ index: number; state: string; owner: string; remote: string; since: number; call_id: string }>;
  readonly subscribers: ReadonlyArray<{ event: string; subscriber: string; expires_at: number; index: number }>;
}

/**
 * The line as the live view shows it, or undefined when there is nothing to show (not a shared
 * line and no subscriber). Reads only this AoR's rows, so a change costs the size of its line.
 */
export function lineView(ctx: ScaContext, aor: string): LineView | undefined {
  const subs = [...ctx.subscriptions.forAor(aor, 'call-info'), ...ctx.subscriptions.forAor(aor, 'line-seize')];
  if (subs.length === 0 && !ctx.appearances.isShared(aor)) return undefined;
  return {
    aor,
    max_appearances: ctx.appearances.maxAppearances(aor),
    appearances: ctx.appearances.list(aor).map((a) => ({
      index: a.index, state: wireState(a.state), owner: a.owner, remote: a.uri || a.callee, since: a.mtime, call_id: a.dialog?.callId ?? '',
    })),
    subscribers: subs.sort((a, b) => a.event.localeCompare(b.event) || a.subscriber.localeCompare(b.subscriber))
      .map((s) => ({ event: s.event, subscriber: s.subscriber, expires_at: s.expires, index: s.index })),
  };
}

/** Every line, in AoR order: what a page gets when it connects. */
export function allLineViews(ctx: ScaContext): LineView[] {
  const aors = [...new Set([...ctx.appearances.aors(), ...ctx.subscriptions.aors()])].sort();
  return aors.flatMap((aor) => lineView(ctx, aor) ?? []);
}

/** The lines named, as views (changed) or as AoRs that are gone: what the pages get after a change. */
export function lineChanges(ctx: ScaContext, aors: Iterable<string>): { lines_changed: LineView[]; lines_gone: string[] } {
  const out = { lines_changed: [] as LineView[], lines_gone: [] as string[] };
  for (const aor of aors) {
    const v = lineView(ctx, aor);
    if (v) out.lines_changed.push(v);
    else out.lines_gone.push(aor);
  }
  return out;
}
