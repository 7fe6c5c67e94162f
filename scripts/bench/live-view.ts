// Live view benchmark: what a page's connect and one change cost with 32k shared lines, the new
// way (per-line views, a change sends its lines) against the old way measured in the same run
// (one snapshot of every line, each line found by filtering every row, sent after every change).
//   node --import tsx scripts/bench/live-view.ts [--lines 32000] [--per-line 2]
import { parseArgs } from 'node:util';
import { ScaEngine } from '../../service/sca/engine.js';
import { allLineViews, lineChanges } from '../../service/sca/line-view.js';
import type { LineSnapshot } from '../../service/sca/snapshot.js';
import type { Subscription } from '../../service/sca/types.js';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '32000' }, 'per-line': { type: 'string', default: '2' } } });
const LINES = Number(values.lines);
const PER_LINE = Number(values['per-line']);
const now = 1_800_000_000;

const lines: LineSnapshot[] = Array.from({ length: LINES }, (_, i) => {
  const aor = `sip:${100000 + i}@pbx.example.com`;
  const subscriptions: Subscription[] = Array.from({ length: PER_LINE }, (_, k) => ({
    aor, event: 'call-info', subscriber: `sip:${100000 + i}@10.${k}.${i >> 8 & 255}.${i & 255}:5060`, expires: now + 3600, state: 'active',
    reason: undefined, index: 0, callId: `ci-${i}-${k}@bench`, fromTag: `ft${i}x${k}`, toTag: `tt${i}x${k}`, notifyCseq: 1, routeSet: [], seq: i * PER_LINE + k + 1,
  }));
  return {
    aor, shared: true, subscriptions,
    appearances: [{ index: 1, state: 'active', owner: subscriptions[0]!.subscriber, callee: 'sip:200@192.0.2.20', uri: '<sip:200@far.example.net>',
      dialog: { callId: `call-${i}@bench`, fromTag: `f${i}`, toTag: `t${i}` }, direction: 'outgoing', ctime: now, mtime: now, pending: undefined }],
  };
});
const engine = new ScaEngine();
engine.restore(lines, now);

/** The snapshot as the live view built it before: every line, its rows found by filtering all rows. */
function oldSnapshot(): string {
  const subs = engine.listSubscriptions(now);
  const apps = engine.listAppearances();
  const aors = [...new Set([...engine.ctx.appearances.aors(), ...subs.map((s) => s.aor)])].sort();
  return JSON.stringify({
    at: now,
    lines: aors.map((aor) => ({
      aor, max_appearances: engine.ctx.appearances.maxAppearances(aor),
      appearances: apps.filter((a) => a.aor === aor).map((a) => ({ index: a.index, state: a.state, owner: a.owner, remote: a.uri || a.callee, since: a.mtime, call_id: a.call_id })),
      subscribers: subs.filter((s) => s.aor === aor).map((s) => ({ event: s.event, subscriber: s.subscriber, expires_in: s.ttl, index: s.index })),
    })),
  });
}

const time = (f: () => string): { ms: number; bytes: number } => {
  const t0 = performance.now();
  const out = f();
  return { ms: performance.now() - t0, bytes: Buffer.byteLength(out) };
};

console.log(`live view: ${LINES} lines, ${PER_LINE} call-info subscribers and 1 active appearance each`);
const connect = time(() => JSON.stringify({ type: 'all', at: now, lines: allLineViews(engine.ctx) }));
const change = time(() => JSON.stringify({ type: 'changes', at: now, ...lineChanges(engine.ctx, [lines[LINES >> 1]!.aor]) }));
const old = time(oldSnapshot);
const row = (name: string, m: { ms: number; bytes: number }) => console.log(`${name.padEnd(34)} ${m.ms.toFixed(1).padStart(10)} ms ${(m.bytes / 1024).toFixed(1).padStart(10)} KiB`);
row('old: snapshot on connect', old);
row('old: snapshot after each change', old);
row('new: all lines on connect', connect);
row('new: one changed line', change);
console.log(`ratio connect old/new: ${(old.ms / connect.ms).toFixed(0)}x; per change old/new: ${(old.ms / change.ms).toFixed(0)}x time, ${(old.bytes / change.bytes).toFixed(0)}x bytes`);
