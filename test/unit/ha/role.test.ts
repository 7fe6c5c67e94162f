// The role driver over a fake lease: what it does to the store's fence, when it says "lost",
// and that its deadline is checked on the monotonic clock it is given.
import t from 'tap';
import type { AcquireResult, OffsetResult, PrepareResult, RenewResult } from '../../../service/ha/lease.js';
import { Role, type LeasePort } from '../../../service/ha/role.js';
import type { Statement } from '../../../service/store/database.js';
import { deferred, until, within } from '../../support/wait.js';

class FakeLease implements LeasePort {
  readonly holder = 'n1/abcd';
  free = true;
  epoch = 4;
  offsetS = 0.002;
  renewWith: RenewResult['kind'] | 'hang' = 'renewed';
  renewSent: number[] = [];
  released: number[] = [];
  closed = 0;
  polls = 0;
  constructor(private readonly mono: () => number) {}
  async prepare(): Promise<PrepareResult> { return { ok: true }; }
  async measureOffset(): Promise<OffsetResult> { this.polls++; return { kind: 'measured', offsetS: this.offsetS, rttMs: 0.3 }; }
  async acquire(): Promise<AcquireResult> {
    if (!this.free) return { kind: 'held', holder: 'n2/ffff', epoch: this.epoch };
    this.free = false;
    return { kind: 'acquired', epoch: ++this.epoch };
  }
  async read(): Promise<AcquireResult> { return { kind: 'held', holder: this.free ? '' : 'n2/ffff', epoch: this.epoch }; }
  async renew(): Promise<RenewResult> {
    this.renewSent.push(this.mono());
    if (this.renewWith === 'hang') return new Promise(() => undefined);
    if (this.renewWith === 'error') return { kind: 'error', error: 'connect ECONNREFUSED', code: 'ECONNREFUSED' };
    return { kind: this.renewWith } as RenewResult;
  }
  async release(epoch: number): Promise<boolean> { this.released.push(epoch); this.free = true; return true; }
  close(): void { this.closed++; }
}

const logs: Array<{ level: string; msg: string; obj: object }> = [];
const log = {
  info: (obj: object, msg: string) => logs.push({ level: 'info', msg, obj }),
  warn: (obj: object, msg: string) => logs.push({ level: 'warn', msg, obj }),
  error: (obj: object, msg: string) => logs.push({ level: 'error', msg, obj }),
};

function setup(opts: { mono?: () => number } = {}) {
  const mono = opts.mono ?? (() => performance.now());
  const lease = new FakeLease(mono);
  const fences: Array<Statement | undefined> = [];
  const role = new Role(lease, { setFence: (f) => fences.push(f) }, { name: 'sca', ttlS: 0.5, renewIntervalS: 0.1, pollIntervalS: 0.05, maxClockOffsetS: 1, log, mono });
  const leader = deferred<number>();
  const lost = deferred<string>();
  role.onLeader(leader.resolve);
  role.onLost(lost.resolve);
  return { lease, fences, role, leader: leader.promise, lost: lost.promise };
}

t.test('a standby closes its store, takes a free lease, fences the store with its epoch and keeps renewing', async (t) => {
  const { lease, fences, role, leader } = setup();
  t.same(await role.start(), { ok: true });
  t.same(fences[0]?.params, ['sca', -1], 'before leading, no transaction can commit');
  t.equal(await within(leader, 3000, 'the standby to lead'), 5);
  t.same(fences.at(-1), { sql: 'UPDATE sca_ha_fence SET seq = seq + 1 WHERE name = ? AND epoch = ?', params: ['sca', 5] });
  t.match(role.snapshot, { role: 'leader', epoch: 5, takeovers: 1, clockOffsetS: 0.002, leader: { holder: 'n1/abcd', epoch: 5 } });
  t.ok(role.leading());
  const before = lease.renewSent.length;
  await until(() => lease.renewSent.length >= before + 3, 3000, 'three renewals');
  await role.stop();
  t.same(lease.released, [5], 'a clean stop releases the lease');
  t.same(fences.at(-1)?.params, ['sca', -1], 'and closes the fence first');
});

t.test('renewals failing: the leader is lost at its local deadline, never before, and the fence closes', async (t) => {
  const { lease, fences, role, leader, lost } = setup();
  await role.start();
  await within(leader, 3000, 'leadership');
  await until(() => lease.renewSent.length >= 2, 3000, 'two good renewals');
  lease.renewWith = 'error';
  const okSends = [...lease.renewSent];
  const reason = await within(lost, 3000, 'the deadline to end leadership');
  const lostAt = performance.now();
  t.equal(reason, 'deadline');
  const lastOk = okSends.at(-1)!;
  t.ok(lostAt >= lastOk + 0.8 * 500, `lost ${Math.round(lostAt - lastOk)} ms after the last good renewal was sent (deadline 400 ms)`);
  t.same(fences.at(-1)?.params, ['sca', -1]);
  t.notOk(role.leading());
  t.ok(logs.some((l) => l.level === 'error' && /LEADERSHIP LOST \(deadline\)/.test(l.msg)), 'an error log line says why');
});

t.test('a renewal that changes no row (deposed) ends leadership at once', async (t) => {
  const { lease, role, leader, lost } = setup();
  await role.start();
  await within(leader, 3000, 'leadership');
  lease.renewWith = 'deposed';
  t.equal(await within(lost, 3000, 'deposed'), 'deposed');
  t.equal(role.snapshot.lostReason, 'deposed');
});

t.test('the committer\'s FencedError ends leadership', async (t) => {
  const { role, leader, lost } = setup();
  await role.start();
  await within(leader, 3000, 'leadership');
  role.fenced();
  t.equal(await within(lost, 1000, 'fenced'), 'fenced');
});

t.test('leading() checks the deadline on the monotonic clock itself: a late timer does not keep a leader', async (t) => {
  let skew = 0;
  const { lease, role, leader, lost } = setup({ mono: () => performance.now() + skew });
  await role.start();
  await within(leader, 3000, 'leadership');
  lease.renewWith = 'hang';
  t.ok(role.leading());
  skew = 10_000; // as if the event loop had been stopped for 10 s
  t.notOk(role.leading(), 'past the deadline: not leading, before any timer ran');
  t.equal(await within(lost, 1000, 'lost'), 'deadline');
});

t.test('a standby whose clock is off never takes the lease, logs it once, and shows the offset', async (t) => {
  const { lease, role } = setup();
  lease.offsetS = -5.01;
  logs.length = 0;
  await role.start();
  await until(() => role.snapshot.refusing, 3000, 'the clock to be measured');
  const polled = lease.polls;
  await until(() => lease.polls >= polled + 4, 3000, 'several more polls (each would have acquired)');
  t.match(role.snapshot, { role: 'standby', refusing: true, clockOffsetS: -5.01, takeovers: 0 });
  t.ok(lease.free, 'the lease was never taken');
  t.match(role.snapshot.leader, { epoch: 4 }, 'yet it reads who holds the lease');
  t.equal(logs.filter((l) => /CLOCK OFFSET/.test(l.msg)).length, 1, 'one log line, not one per poll');
  await role.stop();
});

t.test('a lease held by another node: the standby waits and knows who leads', async (t) => {
  const { lease, role } = setup();
  lease.free = false;
  await role.start();
  await until(() => role.snapshot.leader !== undefined, 3000, 'a poll');
  t.match(role.snapshot, { role: 'standby', leader: { holder: 'n2/ffff', epoch: 4 } });
  await role.stop();
});
