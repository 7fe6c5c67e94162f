// HA numbers on this box: the cost of the write-fence per transaction (a private standalone
// MariaDB and a 3-node Galera cluster, each with and without the fence), and takeover time after
// a leader's lease lapses (two in-process nodes on different Galera nodes, the leader's renewals
// stopped). Starts and stops its own servers.
//   node --import tsx scripts/bench/ha.ts [--commits 1000] [--rounds 5] [--ttl 3] [--poll 0.5]
import { parseArgs } from 'node:util';
import { fenceStatement } from '../../service/ha/fence.js';
import { MysqlDatabase } from '../../service/store/mysql.js';
import { GaleraCluster } from '../ha/galera.js';
import { HaNode, KV_TABLE, row } from '../../test/support/ha-node.js';
import { PrivateMariadb } from '../../test/support/private-mariadb.js';
import { until, within } from '../../test/support/wait.js';

const { values } = parseArgs({ options: { commits: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '5' }, ttl: { type: 'string', default: '3' }, poll: { type: 'string', default: '0.5' } } });
const COMMITS = Number(values.commits);
const ROUNDS = Number(values.rounds);
const TTL_S = Number(values.ttl);
const POLL_S = Number(values.poll);

const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]!; };
const ms = (x: number) => `${x.toFixed(2)} ms`;

/**
 * COMMITS sequential one-row transactions of each kind, as the committer sends them, plain and
 * fenced taking turns on the same connection (so drift in the box's load hits both alike).
 */
async function commitLatency(url: string, host: string): Promise<{ plain: number[]; fenced: number[] }> {
  const db = new MysqlDatabase(url, { hosts: [host], ha: { idleWriteTimeoutS: 3 } });
  await db.open();
  await db.query(KV_TABLE);
  await db.query('CREATE TABLE IF NOT EXISTS sca_ha_fence (name VARCHAR(32) PRIMARY KEY, epoch BIGINT NOT NULL, seq BIGINT NOT NULL) ENGINE=InnoDB');
  await db.query("INSERT IGNORE INTO sca_ha_fence VALUES ('bench', 1, 0)");
  const out = { plain: [] as number[], fenced: [] as number[] };
  for (let i = -100; i < 2 * COMMITS; i++) { // 100 warm-up rounds not counted
    const fenced = i % 2 === 1;
    db.setFence(fenced ? fenceStatement('bench', 1) : undefined);
    const t0 = performance.now();
    await db.transaction(row(`b${i % 64}`, i, 'bench').statements);
    if (i >= 0) (fenced ? out.fenced : out.plain).push(performance.now() - t0);
  }
  await db.close();
  return out;
}

async function takeovers(cluster: GaleraCluster): Promise<Array<{ stopAfterRenewal: number; ledAfterLapse: number }>> {
  const out: Array<{ stopAfterRenewal: number; ledAfterLapse: number }> = [];
  const [h1, h2, h3] = cluster.hosts as [string, string, string];
  for (let r = 0; r < ROUNDS; r++) {
    const a = new HaNode({ name: `a${r}`, url: cluster.url, hosts: [h1, h2, h3], ttlS: TTL_S, pollIntervalS: POLL_S });
    const b = new HaNode({ name: `b${r}`, url: cluster.url, hosts: [h2, h3, h1], ttlS: TTL_S, pollIntervalS: POLL_S });
    await Promise.all([a.start(), b.start()]);
    const first = await within(Promise.race([a.leader.then(() => a), b.leader.then(() => b)]), 20_000, 'a leader');
    const second = first === a ? b : a;
    await until(() => first.lease.renewedSentAt.length >= 2, 10_000, 'two renewals');
    first.lease.renewals = 'hang';
    const lastGood = first.lease.lastGoodSend!;
    await within(first.lost, 10_000, 'the leader to stop');
    await within(second.leader, 20_000, 'the standby to lead');
    out.push({ stopAfterRenewal: first.lostAt! - lastGood, ledAfterLapse: second.leaderAt! - lastGood - TTL_S * 1000 });
    await first.close();
    await second.close(); // releases the lease: the next round starts at once
  }
  return out;
}

const solo = new PrivateMariadb();
await solo.init();
await solo.start();
await solo.query('CREATE DATABASE bench');
const cluster = await GaleraCluster.start({ log: (m) => console.log(m) });
try {
  const soloHost = solo.url.replace(/^mysql:\/\/[^@]*@/, '');
  console.log(`\ncommit latency, ${COMMITS} sequential one-row transactions of each kind, taking turns (fence: UPDATE sca_ha_fence SET seq = seq + 1 WHERE name = ? AND epoch = ?)`);
  console.log('| target | plain p50 / p99 | fenced p50 / p99 |');
  console.log('|---|---|---|');
  for (const [name, url, host] of [['standalone MariaDB', `${solo.url}/bench`, soloHost], ['Galera, via node 1', cluster.url, cluster.hosts[0]!]] as const) {
    const { plain, fenced } = await commitLatency(url, host);
    console.log(`| ${name} | ${ms(pct(plain, 0.5))} / ${ms(pct(plain, 0.99))} | ${ms(pct(fenced, 0.5))} / ${ms(pct(fenced, 0.99))} |`);
  }
  console.log(`\ntakeover after the leader's renewals stop, ttl ${TTL_S} s, poll ${POLL_S} s, ${ROUNDS} rounds (times from the send of its last good renewal)`);
  const rounds = await takeovers(cluster);
  for (const r of rounds) console.log(`  leader stopped at +${Math.round(r.stopAfterRenewal)} ms (deadline ${Math.round(0.8 * TTL_S * 1000)}); standby led ${Math.round(r.ledAfterLapse)} ms after the lease lapsed`);
  const led = rounds.map((r) => r.ledAfterLapse);
  console.log(`  after lapse: min ${Math.round(Math.min(...led))} ms, median ${Math.round(pct(led, 0.5))} ms, max ${Math.round(Math.max(...led))} ms`);
} finally {
  await cluster.stop();
  await solo.stop();
}
process.exit(0);
