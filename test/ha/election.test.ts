// Two HA nodes in this process over a real 3-node Galera cluster, each on its own Galera node:
// exactly one leads; when the leader's renewals stop it stops by its local deadline, the standby
// leads once the lease lapsed on the database's clock, and the old leader's store is fenced.
import t from 'tap';
import { GaleraCluster } from '../../scripts/ha/galera.js';
import { HaNode } from '../support/ha-node.js';
import { until, within } from '../support/wait.js';

t.setTimeout(180_000);
const TTL_S = 3;
const POLL_S = 0.5;

let cluster: GaleraCluster;
t.before(async () => { cluster = await GaleraCluster.start({ log: (m) => t.comment(m) }); });
t.teardown(async () => { await cluster?.stop(); });

t.test('two nodes elect exactly one leader; the standby takes over after the leader\'s lease lapses', async (t) => {
  const [h1, h2, h3] = cluster.hosts as [string, string, string];
  const a = new HaNode({ name: 'a', url: cluster.url, hosts: [h1, h2, h3], ttlS: TTL_S, pollIntervalS: POLL_S });
  const b = new HaNode({ name: 'b', url: cluster.url, hosts: [h2, h3, h1], ttlS: TTL_S, pollIntervalS: POLL_S });
  t.teardown(async () => { await a.close(); await b.close(); });
  await Promise.all([a.start(), b.start()]);

  const first = await within(Promise.race([a.leader.then(() => a), b.leader.then(() => b)]), 15_000, 'a leader');
  const second = first === a ? b : a;
  // The other one must see the lease held: wait until it has polled and seen the leader.
  await until(() => second.role.snapshot.leader?.epoch === first.role.snapshot.epoch, 10_000, 'the standby to see the leader');
  t.equal(second.role.snapshot.role, 'standby', 'exactly one leader');
  t.equal(second.role.snapshot.leader?.holder, first.lease.holder, 'the standby knows who leads');
  const epoch1 = first.role.snapshot.epoch!;
  t.same(await cluster.sql(3, "SELECT holder, epoch FROM sca_ha_lease WHERE name = 'sca'"), [{ holder: first.lease.holder, epoch: epoch1 }], 'the lease row, read on the third node');
  await first.put('k1', 1);
  t.same(await cluster.sql(3, "SELECT v, node FROM ha_kv WHERE k = 'k1'"), [{ v: 1, node: first.opts.name }], 'the leader commits through its fence');
  await until(() => first.lease.renewedSentAt.length >= 2, 10_000, 'two renewals');

  // The leader's renewals stop (as if the process froze between them; its clock runs on).
  first.lease.renewals = 'hang';
  const lastGood = first.lease.lastGoodSend!;
  t.equal(await within(first.lost, 10_000, 'the leader to stop at its deadline'), 'deadline');
  const epoch2 = await within(second.leader, 15_000, 'the standby to lead');
  t.ok(first.lostAt! >= lastGood + 0.8 * TTL_S * 1000, 'the leader stopped no earlier than its deadline');
  t.ok(first.lostAt! < second.leaderAt!, 'the old leader had stopped before the new one led: never two at once');
  t.equal(epoch2, epoch1 + 1, 'the next epoch');
  t.ok(second.leaderAt! >= lastGood + TTL_S * 1000 * 0.99, 'the standby led only after the lease could have lapsed');

  await second.put('k2', 2);
  const zombie = await first.put('k3', 3).then(() => 'committed', (e: Error) => e.constructor.name);
  t.equal(zombie, 'FencedError', 'the old leader\'s store can no longer commit');
  t.same((await cluster.sql(1, 'SELECT k, node FROM ha_kv ORDER BY k')), [{ k: 'k1', node: first.opts.name }, { k: 'k2', node: second.opts.name }]);
  t.comment(`measured: leader stopped ${Math.round(first.lostAt! - lastGood)} ms after its last good renewal was sent (deadline ${Math.round(0.8 * TTL_S * 1000)} ms); ` +
    `standby led ${Math.round(second.leaderAt! - lastGood)} ms after it, i.e. ${Math.round(second.leaderAt! - lastGood - TTL_S * 1000)} ms after the lease lapsed (poll ${POLL_S * 1000} ms)`);
});
