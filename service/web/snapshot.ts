import type { ScaEngine } from '../sca/engine.js';

export interface LineView {
  aor: string;
  max_appearances: number;
  appearances: Array<{ index: number; state: string; owner: string; remote: string; since: number; call_id: string }>;
  subscribers: Array<{ event: string; subscriber: string; expires_in: number; index: number }>;
}

/** Every shared line with its appearances and subscribers, for the live view. */
export function snapshot(engine: ScaEngine, now: number): { at: number; lines: LineView[] } {
  const subs = engine.listSubscriptions(now);
  const apps = engine.listAppearances();
  const aors = [...new Set([...engine.ctx.appearances.aors(), ...subs.map((s) => s.aor)])].sort();
  return {
    at: now,
    lines: aors.map((aor) => ({
      aor,
      max_appearances: engine.ctx.appearances.maxAppearances(aor),
      appearances: apps.filter((a) => a.aor === aor).map((a) => ({
        index: a.index, state: a.state, owner: a.owner, remote: a.uri || a.callee, since: a.mtime, call_id: a.call_id,
      })),
      subscribers: subs.filter((s) => s.aor === aor).sort((a, b) => a.event.localeCompare(b.event) || a.subscriber.localeCompare(b.subscriber))
        .map((s) => ({ event: s.event, subscriber: s.subscriber, expires_in: s.ttl, index: s.index })),
    })),
  };
}
