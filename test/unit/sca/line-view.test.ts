// The live view's lines: all of them in AoR order, and after a change only the lines it touched.
import t from 'tap';
import { allLineViews, lineChanges, lineView } from '../../../service/sca/line-view.js';
import { AOR, Bench, CI, P1, P2 } from '../../support/sip-fixture.js';

const aor = (n: number): string => `sip:${n}@pbx.example.com`;
const on = (n: number) => ({ ruri: aor(n), to: aor(n) });

t.test('every line once, in AoR order, with its appearances and subscribers', async (t) => {
  const b = new Bench();
  for (const n of [300, 100, 200]) b.callInfo(P1, on(n));
  b.lineSeize(P2, 1);
  const lines = allLineViews(b.engine.ctx);
  t.same(lines.map((l) => l.aor), [AOR, aor(200), aor(300)].sort());
  const line = lines.find((l) => l.aor === AOR)!;
  t.same(line.appearances.map((a) => [a.index, a.state, a.owner]), [[1, 'seized', P2]]);
  t.same(line.subscribers.map((s) => [s.event, s.subscriber, s.index, s.expires_at]), [
    ['call-info', P1, 0, b.now + 3600],
    ['line-seize', P2, 1, b.now + 15],
  ], 'subscribers carry when they expire, so a page counts down without new data');
});

t.test('a change names only its line; a line with nothing left is gone', async (t) => {
  const b = new Bench();
  for (let n = 0; n < 50; n++) b.callInfo(P1, on(1000 + n));
  const sub = b.callInfo(P2, on(1007));
  b.takeWrites();
  b.subscribe(P2, { ...on(1007), callId: sub.callId, fromTag: sub.fromTag, toTag: sub.toTag, expires: 0 }, sub.toTag);
  const touched = new Set(b.takeWrites().map((w) => w.aor));
  t.same([...touched], [aor(1007)], 'the unsubscribe writes rows of one line only');
  const changes = lineChanges(b.engine.ctx, touched);
  t.same(changes.lines_changed.map((l) => [l.aor, l.subscribers.length]), [[aor(1007), 1]]);
  t.same(changes.lines_gone, []);

  const p1 = b.engine.ctx.subscriptions.get(aor(1007), 'call-info', P1)!;
  b.subscribe(P1, { ...on(1007), callId: p1.callId, fromTag: p1.fromTag, toTag: p1.toTag, expires: 0 }, p1.toTag);
  const empty = lineChanges(b.engine.ctx, new Set(b.takeWrites().map((w) => w.aor)));
  t.same(empty.lines_changed.map((l) => [l.aor, l.subscribers.length, l.appearances.length]), [[aor(1007), 0, 0]], 'its last subscriber left: an empty line until the purge');
  b.engine.tick(b.now + 1);
  const gone = lineChanges(b.engine.ctx, new Set(b.takeWrites().map((w) => w.aor)));
  t.same(gone, { lines_changed: [], lines_gone: [aor(1007)] }, 'the purge dropped it: gone from the view');
  t.equal(lineView(b.engine.ctx, aor(1007)), undefined);
  t.equal(allLineViews(b.engine.ctx).length, 49);
});

t.test('a seized index shows on its line', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  b.takeWrites();
  b.lineSeize(P1, 2, { callInfo: CI(2) });
  const seized = lineChanges(b.engine.ctx, new Set(b.takeWrites().map((w) => w.aor)));
  t.same(seized.lines_changed[0]!.appearances.map((a) => [a.index, a.state]), [[2, 'seized']]);
});
