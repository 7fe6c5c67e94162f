// The role machine's decisions, pure: no timer, no database; the monotonic time is an argument.
import t from 'tap';
import { clockOffset } from '../../../service/ha/clock-offset.js';
import { deadlineAfter, INITIAL_STATE, step, type RoleEvent, type RoleState } from '../../../service/ha/role-machine.js';

const limits = { ttlMs: 3000, maxClockOffsetS: 1 };
const does = (actions: ReadonlyArray<{ do: string }>) => actions.filter((a) => a.do !== 'log').map((a) => a.do);
const run = (events: Array<[RoleEvent, number]>, from: RoleState = INITIAL_STATE) => {
  let state = from;
  const all: string[] = [];
  for (const [e, now] of events) {
    const out = step(state, e, now, limits);
    state = out.state;
    all.push(...does(out.actions));
  }
  return { state, actions: all };
};

t.test('the local deadline is the send time of the last successful renewal + 0.8 ttl', async (t) => {
  t.equal(deadlineAfter(10_000, 3000), 12_400);
  const leader = run([[{ type: 'offset', offsetS: 0.01 }, 0], [{ type: 'acquired', epoch: 7, sentAtMs: 100 }, 150]]);
  t.same(leader.state, { role: 'leader', epoch: 7, deadlineMs: 2500 });
  t.same(leader.actions, ['acquire', 'lead']);
  const renewed = run([[{ type: 'renewed', sentAtMs: 1000 }, 1200]], leader.state);
  t.same(renewed.state, { role: 'leader', epoch: 7, deadlineMs: 3400 }, 'a renewal moves it from its send time, not its answer');
  const stale = run([[{ type: 'renewed', sentAtMs: 500 }, 1300]], renewed.state);
  t.equal((stale.state as { deadlineMs: number }).deadlineMs, 3400, 'an older renewal answering late never pulls it back');
});

t.test('a leader past its deadline is lost, whatever event shows it', async (t) => {
  const leader: RoleState = { role: 'leader', epoch: 3, deadlineMs: 2400 };
  t.same(run([[{ type: 'tick' }, 2399]], leader).state, leader, 'just before: still leader');
  for (const e of [{ type: 'tick' }, { type: 'offset', offsetS: 0 }, { type: 'renewed', sentAtMs: 0 }] as RoleEvent[]) {
    const out = run([[e, 2400]], leader);
    t.same(out.state, { role: 'lost', reason: 'deadline', epoch: 3 }, e.type);
    t.same(out.actions, ['exit']);
  }
  const late = run([[{ type: 'renewed', sentAtMs: 100 }, 2500]], { role: 'leader', epoch: 3, deadlineMs: 2450 });
  t.equal((late.state as { reason: string }).reason, 'deadline', 'a renewal that answers after its own deadline does not save it');
});

t.test('deposed (renewal changed 0 rows), fenced (a commit met the fence) and a bad clock each end leadership with exit', async (t) => {
  const leader: RoleState = { role: 'leader', epoch: 5, deadlineMs: 10_000 };
  t.same(run([[{ type: 'deposed' }, 1]], leader), { state: { role: 'lost', reason: 'deposed', epoch: 5 }, actions: ['exit'] });
  t.same(run([[{ type: 'fenced' }, 1]], leader), { state: { role: 'lost', reason: 'fenced', epoch: 5 }, actions: ['exit'] });
  t.same(run([[{ type: 'offset', offsetS: -1.5 }, 1]], leader), { state: { role: 'lost', reason: 'clock', epoch: 5 }, actions: ['exit'] });
  t.same(run([[{ type: 'offset', offsetS: 0.9 }, 1]], leader).state, leader, 'within the limit: nothing');
});

t.test('lost is final: nothing brings it back', async (t) => {
  const lost: RoleState = { role: 'lost', reason: 'fenced', epoch: 5 };
  for (const e of [{ type: 'acquired', epoch: 6, sentAtMs: 0 }, { type: 'offset', offsetS: 0 }, { type: 'renewed', sentAtMs: 0 }, { type: 'tick' }] as RoleEvent[]) {
    t.same(run([[e, 0]], lost), { state: lost, actions: [] }, e.type);
  }
});

t.test('a standby whose clock is off refuses leadership, says so once, and stands again once it is back', async (t) => {
  const first = step(INITIAL_STATE, { type: 'offset', offsetS: -5.002 }, 0, limits);
  t.same(first.state, { role: 'standby', refusing: true });
  t.same(first.actions.map((a) => a.do), ['log'], 'no acquire');
  t.match(first.actions[0], { level: 'warn', msg: /CLOCK OFFSET/, fields: { offsetS: -5.002, maxClockOffsetS: 1 } });
  t.same(step(first.state, { type: 'offset', offsetS: -5 }, 500, limits).actions, [], 'no second log line while it lasts');
  const back = step(first.state, { type: 'offset', offsetS: 0.2 }, 1000, limits);
  t.same(back.state, { role: 'standby', refusing: false });
  t.same(back.actions.map((a) => a.do), ['log', 'acquire']);
});

t.test('an acquire answered after its own deadline is not acted on', async (t) => {
  const out = run([[{ type: 'acquired', epoch: 9, sentAtMs: 0 }, 2400]]);
  t.same(out.state, { role: 'lost', reason: 'deadline', epoch: 9 });
  t.same(out.actions, ['exit']);
});

t.test('a standby fenced is lost too: its store must not be written, so the process starts over', async (t) => {
  t.same(run([[{ type: 'fenced' }, 0]]).state, { role: 'lost', reason: 'fenced', epoch: undefined });
  t.same(run([[{ type: 'renewed', sentAtMs: 0 }, 0], [{ type: 'deposed' }, 0], [{ type: 'tick' }, 0]]).state, INITIAL_STATE, 'the rest means nothing to a standby');
});

t.test('the clock offset compares the database\'s clock with the midpoint of the round trip', async (t) => {
  t.same(clockOffset({ sentWallMs: 1_000_000, receivedWallMs: 1_000_010, dbSeconds: 1000.005 }), { offsetS: 0, rttMs: 10 });
  const ahead = clockOffset({ sentWallMs: 1_005_000, receivedWallMs: 1_005_004, dbSeconds: 1000.002 });
  t.ok(Math.abs(ahead.offsetS + 5) < 1e-9, 'a clock 5 s ahead: offset -5 s');
});
