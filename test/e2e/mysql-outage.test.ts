// The MySQL backend under a real outage: MariaDB stops under traffic, the service keeps
// answering from memory and says it is degraded, then catches up when MariaDB is back; and a
// restart restores from MySQL.
import t from 'tap';
import { hdr, type Phone } from '../support/sip-phone.js';
import { PrivateMariadb } from '../support/private-mariadb.js';
import { lineSeize, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

let db: PrivateMariadb;
let stack: Stack;
let p1: Phone, p2: Phone;
t.before(async () => {
  db = new PrivateMariadb();
  await db.init();
  await db.start();
  await db.query('CREATE DATABASE sca');
  stack = await startStack({ db_url: `${db.url}/sca` });
  [p1, p2] = await Promise.all([stack.phone('p1', '100'), stack.phone('p2', '100')]);
});
t.teardown(async () => {
  await stack?.stop();
  await db?.stop();
});

const readyz = async () => (await fetch(`http://127.0.0.1:${stack.httpPort}/readyz`)).json() as Promise<{ status: string }>;
const rows = async (sql: string) => db.query(sql, 'sca');

t.test('MySQL stops and comes back under traffic: nothing acknowledged is lost', async (t) => {
  await subscribeCallInfo(p1);
  await subscribeCallInfo(p2);
  t.equal((await readyz()).status, 'ready');
  t.equal((await rows('SELECT COUNT(*) AS n FROM sca_subscriptions'))[0]!.n, 2, 'written before the 202');

  await db.stop();
  const m = mark(p1, p2);
  const t0 = performance.now();
  const seize = await lineSeize(p1, 1, 600);
  // How fast (the promise: not waiting for the database) is measured by scripts/bench/targets.ts.
  t.equal(seize.status, 200, `still answered, in ${Math.round(performance.now() - t0)} ms`);
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '1:seized', m[i]!);
  await lineSeize(p2, 2, 600);
  t.equal((await readyz()).status, 'degraded');
  const metrics = await (await fetch(`http://127.0.0.1:${stack.httpPort}/metrics`)).text();
  t.match(metrics, /^sca_store_errors_total [1-9]\d*$/m);
  t.match(stack.serviceLog(), /STORE WRITE FAILED/);

  await db.start();
  await waitUntil('the service caught up (ready)', async () => (await readyz()).status === 'ready', { timeoutMs: 20_000, everyMs: 100 });
  t.equal((await readyz()).status, 'ready', 'caught up');
  t.same((await rows('SELECT app_index, state FROM sca_appearances ORDER BY app_index')).map((r) => [r.app_index, r.state]), [[1, 'seized'], [2, 'seized']]);
  t.equal((await rows('SELECT COUNT(*) AS n FROM sca_subscriptions'))[0]!.n, 4, 'two call-info and two line-seize rows');

  await stack.killService();
  const m2 = mark(p1, p2);
  await stack.startService();
  for (const [i, p] of [p1, p2].entries()) {
    const n = await waitLine(p, '1:seized,2:seized', m2[i]!, 5000);
    t.match(hdr(n.msg, 'subscription-state'), /^active;expires=\d+$/, `${p.name} restored from MySQL`);
  }
});
