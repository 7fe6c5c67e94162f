import type { ScaContext } from './context.js';
import type { Notify } from './types.js';

/**
 * One purge pass (the module's two timers, run every purge_expired_interval): expired
 * subscriptions get their terminated NOTIFY and go, an expired line-seize gives back its
 * still-seized index; seized appearances older than seized_timeout and callee appearances never
 * ACKed within active_pending_timeout are released, with one group NOTIFY per line; lines left
 * with no subscription and no appearance are dropped.
 */
export function purge(ctx: ScaContext, now: number): Notify[] {
  const notifies: Notify[] = [];
  for (const sub of ctx.subscriptions.all()) {
    if (sub.expires > now) continue;
    if (sub.state === 'active') notifies.push(...ctx.terminate(sub, 'timeout', now, true));
    else ctx.subscriptions.delete(sub);
  }
  const lost = new Set<string>();
  const { seized_timeout, active_pending_timeout } = ctx.config;
  for (const { aor, appearance: a } of ctx.appearances.all()) {
    const age = now - a.mtime;
    if ((a.state === 'seized' && age >= seized_timeout) || (a.state === 'active-pending' && age >= active_pending_timeout)) {
      ctx.appearances.release(aor, a.index);
      ctx.stats.orphansReleased++;
      lost.add(aor);
    }
  }
  for (const aor of lost) notifies.push(...ctx.notifyGroup(aor, now));
  // A line nobody watches and nobody uses any more is forgotten (memory stays bounded).
  for (const aor of ctx.appearances.aors()) {
    if (ctx.appearances.list(aor).length === 0 && ctx.subscriptions.countFor(aor, 'call-info') + ctx.subscriptions.countFor(aor, 'line-seize') === 0) {
      ctx.appearances.unregister(aor);
    }
  }
  return notifies;
}
