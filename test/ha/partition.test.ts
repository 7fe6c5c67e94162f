// T12 on a real 3-node Galera cluster: the leader reaches its Galera node through a proxy that
// starts to black-hole every byte (a partition: nothing closes, nothing answers). The leader
// stops by its local deadline; the standby, on another node, leads once the lease lapsed; when
// the partition heals, the commit the old leader had in flight meets the fence and never lands.
import t from 'tap';
import { GaleraCluster } from '../../scripts/ha/galera.js';
import { HaNode } from '../support/ha-node.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { until, within } from '../support/wait.js';

t.setTimeout(180_000);
const TTL_S = 3;
const POLL_S = 0.5;

let cluster: GaleraCluster;
t.before(async () => { cluster = await GaleraCluster.start({ log: (m) => t.comment(m) }); });
t.teardown(async () => { await cluster?.stop(); });

t.test('T12: the leader cut off from the database stops by its deadline; the standby leads within ttl + poll; the cut-off commit never lands', async (t) => {
  const proxy = await TcpProxy.start({ host: '127.0.0.1', port: cluster.node(1).sqlPort });
  const a = new HaNode({ name: 'a', url: cluster.url, hosts: [proxy.address], ttlS: TTL_S, pollIntervalS: POLL_S });
  const b = new HaNode({ name: 'b', url: cluster.url, hosts: [cluster.hosts[1]!], ttlS: TTL_S, pollIntervalS: POLL_S });
  t.teardown(async () => { proxy.heal(); await a.close(); await b.close(); await proxy.close(); });
  await a.start();
  const epochA = await within(a.leader, 15_000, 'a to lead');
  await b.start();
  await until(() => b.role.snapshot.leader?.epoch === epochA, 10_000, 'b to see a leading');
  await a.put('before', 1);
  await until(() => a.lease.renewedSentAt.length >= 2, 10_000, 'two renewals through the proxy');

  const cutAt = performance.now();
  proxy.blackhole();
  const lastGood = a.lease.lastGoodSend!;
  const inFlight = a.put('during', 2).then(() => 'acknowledged', (e: Error) => e.constructor.name);

  t.equal(await within(a.lost, 10_000, 'a to stop at its local deadline'), 'deadline');
  const epochB = await within(b.leader, 15_000, 'b to lead');
  t.equal(epochB, epochA + 1);
  t.ok(a.lostAt! >= lastGood + 0.8 * TTL_S * 1000, 'a stopped no earlier than its deadline');
  t.ok(a.lostAt! < b.leaderAt!, 'a had stopped before b led');
  await b.put('after', 3);

  proxy.heal();
  t.equal(await within(inFlight, 20_000, 'the cut-off commit to end once the partition heals'), 'FencedError', 'the old leader\'s commit meets the fence');
  t.same(await cluster.sql(3, 'SELECT k, node FROM ha_kv ORDER BY k'), [{ k: 'after', node: 'b' }, { k: 'before', node: 'a' }], 'nothing of the cut-off leader after the cut');
  t.comment(`measured: cut at +0; leader a stopped at +${Math.round(a.lostAt! - cutAt)} ms (${Math.round(a.lostAt! - lastGood)} ms after its last good renewal, deadline ${Math.round(0.8 * TTL_S * 1000)} ms); ` +
    `standby b led at +${Math.round(b.leaderAt! - cutAt)} ms (ttl ${TTL_S * 1000} + poll ${POLL_S * 1000} ms)`);
});
