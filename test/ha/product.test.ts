// The whole HA product on this box, as an operator runs it: a 3-node Galera cluster, two Kamailio
// proxies (A, B: kamailio.cfg with the link door and their PROXY_ID) and two service nodes
// (n1, n2, ha_enabled), with scripted phones registered at each proxy. Spec §4: T1 election,
// T4 one call limit across both proxies, T5 kill -9 of the leader mid-call.
import t from 'tap';
import WebSocket from 'ws';
import { DOMAIN, type HaTopology } from '../../scripts/ha/topology.js';
import { haProduct } from '../support/ha-product.js';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { until } from '../support/wait.js';

t.setTimeout(900_000);
const product = haProduct();
const { phone, rpc } = product;
let ha: HaTopology;
t.before(() => { ha = product.ha; });

t.test('T1: exactly one node leads and links to both proxies; the other stands by and names it', async (t) => {
  const leader = await ha.leader(30_000);
  const standby = ha.nodes.find((n) => n !== leader)!;
  for (let i = 0; i < 10; i++) {
    const [l, s] = await Promise.all([leader.get('/readyz'), standby.get('/readyz')]);
    t.same([l?.status, l?.ha?.role, [...(l?.proxies ?? [])].sort()], ['ready', 'leader', ['A', 'B']], `second ${i}: the leader is ready, linked to A and B`);
    t.same([s?.status, s?.ha?.role, s?.proxies], ['standby', 'standby', []], `second ${i}: the standby is not linked`);
    await new Promise((r) => setTimeout(r, 1000)); // watching it hold: the scenario's time, not a wait for an event
  }
  const refused = await fetch(`http://127.0.0.1:${standby.httpPort}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'cc.accounts' }) });
  const body = (await refused.json()) as { error?: { code: number; message: string } };
  t.match(body.error?.message, new RegExp(`standby: send commands to the leader, ${leader.id}/`), 'a command sent to the standby names the leader');
  for (const p of ha.proxies) t.equal(p.log().match(/said hello \(epoch \d+\): it is the active one/g)?.length, 1, `proxy ${p.id} heard one hello`);
  const firstPush = (port: number) => new Promise<{ node: { role: string; epoch: number | null; leader: { holder: string } | null; proxies: string[] } }>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { origin: `http://127.0.0.1:${port}` });
    ws.once('message', (m) => { resolve(JSON.parse(String(m))); ws.close(); });
    ws.once('error', reject);
  });
  const [lv, sv] = await Promise.all([firstPush(leader.httpPort), firstPush(standby.httpPort)]);
  t.same([lv.node.role, [...lv.node.proxies].sort()], ['leader', ['A', 'B']], 'the leader\'s live view says it leads, linked to A and B');
  t.same([sv.node.role, sv.node.leader?.holder.split('/')[0], sv.node.proxies], ['standby', leader.id, []], 'the standby\'s names the leader');
});

t.test('T4: max_calls 3 with 20 INVITEs split over both proxies admits exactly 3, round after round', async (t) => {
  const [aliceA, aliceB, bobA, bobB] = await Promise.all([phone('aliceA', '100', 'A'), phone('aliceB', '100', 'B'), phone('bobA', '200', 'A'), phone('bobB', '200', 'B')]);
  for (const p of [aliceA, aliceB, bobA, bobB]) await p.register();
  const ringing = new Set<string>();
  for (const bob of [bobA, bobB]) bob.onInvite = (r) => { ringing.add(hdr(r.msg, 'call-id')!); bob.respond(r, 180, 'Ringing'); };
  t.ok((await rpc('cc.account_set', { account: `100@${DOMAIN}`, max_calls: 3 })).result);
  const ROUNDS = Number(process.env.HA_T4_ROUNDS ?? 50);
  for (let round = 0; round < ROUNDS; round++) {
    ringing.clear();
    const txs = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? aliceA : aliceB).request('INVITE', { ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) }));
    const refused = new Set<string>();
    for (const tx of txs) void tx.final.then((m) => { if (m.status! >= 400) refused.add(tx.callId); }, () => undefined);
    await until(() => refused.size + ringing.size === 20, 15_000, `round ${round}: every INVITE refused or ringing`);
    if (ringing.size !== 3) t.fail(`round ${round}: ${ringing.size} calls admitted, not 3`);
    for (const tx of txs.filter((x) => ringing.has(x.callId))) (tx.callId.endsWith('@aliceA') ? aliceA : aliceB).cancel(tx);
    await until(async () => ((await rpc('cc.calls')).result as unknown[]).length === 0, 15_000, `round ${round}: the cancelled calls ended`);
  }
  t.pass(`${ROUNDS} rounds of 20 INVITEs over two proxies: exactly 3 admitted in each`);
  await rpc('cc.account_set', { account: `100@${DOMAIN}`, max_calls: 'none' });
});

t.test('T5: kill -9 of the leader mid-call: the standby takes over, the call still ends at its limit, billed once, one CDR', async (t) => {
  const [carol, dave] = await Promise.all([phone('carol', '300', 'B'), phone('dave', '400', 'B')]);
  for (const p of [carol, dave]) await p.register();
  dave.onInvite = (r) => dave.respond(r, 200, 'OK', { body: sdp(5002) });
  await rpc('cc.rate_set', { prefix: '4', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  await rpc('cc.account_set', { account: `300@${DOMAIN}`, prepaid: true, balance: 20 });
  const old = await ha.leader();
  const call = await carol.invite({ ruri: `sip:400@${DOMAIN}`, to: `<sip:400@${DOMAIN}>`, body: sdp(4002) });
  const answeredAt = performance.now();
  t.equal(call.final.status, 200);
  await new Promise((r) => setTimeout(r, 5000)); // the call runs 5 s: the scenario, not a wait
  const killedAt = performance.now();
  old.kill9();
  const next = await ha.leader(30_000);
  t.not(next.id, old.id, 'the other node leads');
  const watcher = await phone('watcher', '300', 'A');
  const sub = await watcher.request('SUBSCRIBE', { ruri: `sip:300@${DOMAIN}`, to: `<sip:300@${DOMAIN}>`, headers: [['Event', 'call-info'], ['Expires', '600']] }).final;
  const answeredAgain = performance.now();
  t.equal(sub.status, 202, 'SUBSCRIBEs are answered again');
  t.comment(`measured: SUBSCRIBE answered ${Math.round(answeredAgain - killedAt)} ms after the leader was killed (target 6 s)`);
  const bye = await carol.waitFor((r) => r.msg.method === 'BYE' && hdr(r.msg, 'call-id') === call.dialog!.callId, 30_000, 'BYE at the end of the credit');
  const endedAfter = (bye.at - answeredAt) / 1000;
  t.ok(endedAfter >= 19.5 && endedAfter <= 26, `ended ${endedAfter.toFixed(1)} s after its answer (20 s of credit; at most one takeover late)`);
  await until(async () => ((await rpc('cc.calls', { account: `300@${DOMAIN}` })).result as unknown[]).length === 0, 10_000, 'the call no longer counted');
  const cdrs = ((await rpc('cc.cdrs', { account: `300@${DOMAIN}` })).result as Array<{ call_id: string; amount: number; cause: string }>).filter((c) => c.call_id === call.dialog!.callId);
  t.same(cdrs.map((c) => [c.cause, c.amount]), [['credit', 20]], 'one CDR, billed its 20 s');
  const debits = ((await rpc('cc.balance_history', { account: `300@${DOMAIN}` })).result as Array<{ note: string }>).filter((h) => h.note.startsWith('call '));
  t.equal(debits.length, 1, 'one debit line');
  t.equal((await old.exited()), null, 'the killed node is gone (kill -9)');
});
