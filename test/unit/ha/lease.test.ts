// The lease on the local MariaDB (a fresh database each): epochs decided by the database's clock,
// copied into the fence row in the same transaction; renewals; a deposed holder; the clock offset.
import t from 'tap';
import { Lease } from '../../../service/ha/lease.js';
import { MysqlDatabase } from '../../../service/store/mysql.js';
import { dropTestDatabases, freshMysqlDatabase } from '../../support/store-backends.js';
import { until } from '../../support/wait.js';

t.teardown(dropTestDatabases);

async function twoNodes(t: { teardown(fn: () => unknown): void }, ttlS: number) {
  const { url, query } = await freshMysqlDatabase();
  const make = async (node: string, wall?: () => number) => {
    const db = new MysqlDatabase(url);
    await db.open();
    const lease = new Lease(db, { name: 'sca', holder: Lease.holderFor(node), ttlS, timeoutMs: 2000, ...(wall ? { wall } : {}) });
    t.teardown(async () => { lease.close(); await db.close(); });
    return lease;
  };
  return { query, make };
}

t.test('the first acquire takes epoch 1 and fences at 1; another holder is told who holds it', async (t) => {
  const { query, make } = await twoNodes(t, 30);
  const a = await make('a');
  const b = await make('b');
  t.same(await a.prepare(), { ok: true });
  t.same(await b.prepare(), { ok: true }, 'prepare is idempotent (every node runs it)');
  t.same(await a.acquire(), { kind: 'acquired', epoch: 1 });
  t.same(await query("SELECT epoch FROM sca_ha_fence WHERE name = 'sca'"), [{ epoch: 1 }], 'the fence carries the epoch');
  t.same(await b.acquire(), { kind: 'held', holder: a.holder, epoch: 1 });
  t.same(await a.renew(1), { kind: 'renewed' });
  t.same(await b.renew(1), { kind: 'deposed' }, 'a renewal needs holder and epoch');
  t.match(a.holder, /^a\/[0-9a-f]{8}$/, 'node id / incarnation');
  t.not(Lease.holderFor('a'), Lease.holderFor('a'), 'a restarted process is a new holder');
});

t.test('after expiry on the database\'s clock another node takes epoch 2; the old holder is deposed', async (t) => {
  const { query, make } = await twoNodes(t, 0.3);
  const a = await make('a');
  const b = await make('b');
  await a.prepare();
  t.same(await a.acquire(), { kind: 'acquired', epoch: 1 });
  let r = await b.acquire();
  t.equal(r.kind, 'held', 'not before expiry');
  await until(async () => (r = await b.acquire()).kind === 'acquired', 5000, 'b to take the expired lease');
  t.same(r, { kind: 'acquired', epoch: 2 });
  t.same(await query("SELECT holder, epoch FROM sca_ha_lease WHERE name = 'sca'"), [{ holder: b.holder, epoch: 2 }]);
  t.same(await query("SELECT epoch FROM sca_ha_fence WHERE name = 'sca'"), [{ epoch: 2 }]);
  t.same(await a.renew(1), { kind: 'deposed' }, 'the old leader\'s renewal changes nothing');
});

t.test('a released lease is free at once', async (t) => {
  const { make } = await twoNodes(t, 30);
  const a = await make('a');
  const b = await make('b');
  await a.prepare();
  await a.acquire();
  t.ok(await a.release(1));
  t.same(await b.acquire(), { kind: 'acquired', epoch: 2 });
  t.notOk(await a.release(1), 'releasing a lease no longer held does nothing');
});

t.test('the clock offset: about 0 on this box; a clock 5 s ahead measures about -5 s', async (t) => {
  const { make } = await twoNodes(t, 3);
  const right = await make('a');
  const ahead = await make('b', () => Date.now() + 5000);
  const m1 = await right.measureOffset();
  const m2 = await ahead.measureOffset();
  if (m1.kind !== 'measured' || m2.kind !== 'measured') throw new Error('not measured');
  t.ok(Math.abs(m1.offsetS) < 0.5, `offset ${m1.offsetS.toFixed(4)} s, rtt ${m1.rttMs.toFixed(2)} ms`);
  t.ok(Math.abs(m2.offsetS + 5) < 0.5, `offset ${m2.offsetS.toFixed(4)} s`);
});

t.test('errors are values: an unreachable database gives kind "error", never a throw', async (t) => {
  const db = new MysqlDatabase('mysql://root@127.0.0.1:1/x');
  const lease = new Lease(db, { name: 'sca', holder: 'a/1', ttlS: 3, timeoutMs: 1000 });
  t.match(await lease.acquire(), { kind: 'error', code: 'ECONNREFUSED' });
  t.match(await lease.renew(1), { kind: 'error' });
  t.match(await lease.measureOffset(), { kind: 'error' });
  t.match(await lease.prepare(), { ok: false });
  t.equal(await lease.release(1), false);
});
