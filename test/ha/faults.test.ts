// Faults of the HA product (spec §4): T6 the leader frozen (SIGSTOP) under load, T9 a proxy
// killed and restarted mid-call, T10 both service nodes down while calls end. A 3-node Galera
// cluster, proxies A and B (link door), nodes n1 and n2, scripted phones.
import t from 'tap';
import { DOMAIN, type HaTopology, type ServiceNode } from '../../scripts/ha/topology.js';
import { haProduct } from '../support/ha-product.js';
import { hdr, Phone, sdp } from '../support/sip-phone.js';
import { until } from '../support/wait.js';

t.setTimeout(900_000);
const product = haProduct();
const { phone, rpc } = product;
const callsOf = async (account: string) => ((await rpc('cc.calls', { account })).result ?? []) as Array<{ call_id: string }>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)); // only as a scenario's duration

let ha: HaTopology;
t.before(async () => {
  ha = product.ha;
  await ha.leader(30_000);
});

t.test('T6: the leader frozen (SIGSTOP) under load: the standby takes over, Kamailio never blocks on the frozen one, which exits on SIGCONT having committed nothing', async (t) => {
  const loader = await phone('loader', '500', 'A');
  loader.retransmit = false; // a load generator: each request once, outcomes counted
  loader.record = false;
  const old = await ha.leader();
  const outcomes: Array<{ at: number; status: number }> = [];
  let sending = true;
  const sendLoop = (async () => {
    for (let i = 0; sending; i++) {
      const sentAt = performance.now();
      const tx = loader.request('SUBSCRIBE', { ruri: `sip:500@${DOMAIN}`, to: `<sip:500@${DOMAIN}>`, headers: [['Event', 'call-info'], ['Expires', '60']] });
      void tx.final.then((m) => outcomes.push({ at: sentAt, status: m.status! }), () => outcomes.push({ at: sentAt, status: 0 }));
      await sleep(10); // about 100 SUBSCRIBEs a second
    }
  })();
  await sleep(3000);
  const stoppedAt = performance.now();
  old.pause();
  let next: ServiceNode | undefined;
  await until(async () => {
    for (const n of ha.nodes) if (n !== old && (await n.get('/readyz'))?.ha?.role === 'leader') next = n;
    return next !== undefined;
  }, 30_000, 'the standby to lead');
  const ledAt = performance.now();
  await until(() => outcomes.some((o) => o.at > ledAt && o.status === 202), 15_000, 'SUBSCRIBEs answered 202 by the new leader');
  const servingAt = outcomes.find((o) => o.at > ledAt && o.status === 202)!.at;
  t.comment(`measured: the standby led ${Math.round(ledAt - stoppedAt)} ms and answered SUBSCRIBEs ${Math.round(servingAt - stoppedAt)} ms after the leader froze (target 6 s)`);
  await sleep(Math.max(0, stoppedAt + 25_000 - performance.now())); // the old leader stays frozen 25 s
  const late = outcomes.filter((o) => o.at > servingAt + 1000 && o.at < performance.now() - 3000);
  t.ok(late.length > 500, `${late.length} SUBSCRIBEs sent after the takeover`);
  t.same(late.filter((o) => o.status !== 202).map((o) => o.status), [], 'every one answered 202 while the old leader stays frozen: Kamailio does not block on it');
  const unread = [...ha.proxy('A').log().matchAll(/the service has (\d+) bytes unread: treated as away/g)].map((m) => Number(m[1]));
  const silent = /no credit from the service for \d+ ms with \d+ bytes unread: treated as away/.test(ha.proxy('A').log());
  t.ok(silent || unread.length > 0, 'proxy A stopped writing to the frozen leader (no credit)');
  await until(async () => /^sca_link_credit_stalls [1-9]/m.test(await (await fetch(`http://127.0.0.1:${next!.httpPort}/metrics`)).text()), 15_000, 'the stall in the new leader\'s metrics (its proxies\' pongs count them)');
  t.ok(unread.every((n) => n <= 2_097_152 + 40_000), `at most 2 MB and a frame left unread at it (${Math.max(0, ...unread)})`);
  old.resume();
  const code = await Promise.race([old.exited(), sleep(15_000).then(() => 'still running')]);
  t.equal(code, 75, 'woken up past its lease, the old leader exits (75) for its supervisor to restart it as a standby');
  t.match(old.log(), /HA: leadership lost; this node stops/);
  t.notMatch(old.log().split('leadership lost')[1] ?? '', /"msg":"(SUBSCRIBE 202|rpc mutation)/, 'and answered or changed nothing after');
  sending = false;
  await sendLoop;
  await old.start(); // its supervisor's restart: a standby now
  await until(async () => (await old.get('/readyz'))?.ha?.role === 'standby', 20_000, 'the restarted node stands by');
});

t.test('T9: proxy B killed and restarted mid-call: the leader relinks, the lost call is ended and billed to when B went away', async (t) => {
  const [erin, frank] = await Promise.all([phone('erin', '600', 'B'), phone('frank', '700', 'B')]);
  for (const p of [erin, frank]) await p.register();
  frank.onInvite = (r) => frank.respond(r, 200, 'OK', { body: sdp(5003) });
  await rpc('cc.rate_set', { prefix: '7', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  await rpc('cc.account_set', { account: `600@${DOMAIN}`, prepaid: true, balance: 100, max_calls: 1 });
  const call = await erin.invite({ ruri: `sip:700@${DOMAIN}`, to: `<sip:700@${DOMAIN}>`, body: sdp(4003) });
  const answeredAt = Date.now();
  t.equal(call.final.status, 200);
  await sleep(2500);
  const killedAt = Date.now();
  await ha.proxy('B').kill9();
  await ha.proxy('B').start();
  const restartedAt = performance.now();
  const leader = await ha.leader(15_000);
  t.comment(`measured: the leader ${leader.id} linked to the restarted proxy ${Math.round(performance.now() - restartedAt)} ms after it listened (target 2 s)`);
  await until(async () => (await callsOf(`600@${DOMAIN}`)).length === 0, 20_000, 'the call B lost is no longer counted');
  const [cdr] = ((await rpc('cc.cdrs', { account: `600@${DOMAIN}` })).result as Array<{ call_id: string; duration: number; cause: string }>);
  const lived = (killedAt - answeredAt) / 1000;
  t.same([cdr?.call_id, cdr?.cause], [call.dialog!.callId, 'stale']);
  t.ok(cdr!.duration >= Math.floor(lived) && cdr!.duration <= Math.ceil(lived) + 1, `billed ${cdr!.duration} s for ${lived.toFixed(1)} s before B went away`);
  for (const p of [erin, frank]) await p.register();
  const again = await erin.invite({ ruri: `sip:700@${DOMAIN}`, to: `<sip:700@${DOMAIN}>`, body: sdp(4003) });
  t.equal(again.final.status, 200, 'a new call through B gets in');
  await erin.inDialog(again.dialog!, 'BYE').final;
});

t.test('T10: both nodes down while calls end; one comes back: the ends are replayed and the counts are right', async (t) => {
  const [gina, hank] = await Promise.all([phone('gina', '800', 'A'), phone('hank', '900', 'A')]);
  for (const p of [gina, hank]) await p.register();
  hank.onInvite = (r) => hank.respond(r, 200, 'OK', { body: sdp(5004) });
  await rpc('cc.account_set', { account: `800@${DOMAIN}`, max_calls: 2 });
  const calls = [await gina.invite({ ruri: `sip:900@${DOMAIN}`, to: `<sip:900@${DOMAIN}>`, body: sdp(4004) }), await gina.invite({ ruri: `sip:900@${DOMAIN}`, to: `<sip:900@${DOMAIN}>`, body: sdp(4005) })];
  t.same(calls.map((c) => c.final.status), [200, 200]);
  t.equal((await callsOf(`800@${DOMAIN}`)).length, 2);
  await Promise.all(ha.nodes.map((n) => n.stop()));
  const sub = await gina.request('SUBSCRIBE', { ruri: `sip:800@${DOMAIN}`, to: `<sip:800@${DOMAIN}>`, headers: [['Event', 'call-info'], ['Expires', '600']] }).final;
  t.same([sub.status, hdr(sub, 'retry-after')], [503, '5'], 'no node: SUBSCRIBE 503 with Retry-After');
  for (const c of calls) t.equal((await gina.inDialog(c.dialog!, 'BYE').final).status, 200, 'a hang-up while no node runs');
  const startedAt = performance.now();
  await ha.node('n1').start();
  await until(async () => (await ha.node('n1').get('/readyz'))?.status === 'ready', 20_000, 'n1 leads and is linked');
  await until(async () => (await callsOf(`800@${DOMAIN}`)).length === 0, 10_000, 'both ended calls no longer counted');
  t.comment(`measured: counts right ${Math.round(performance.now() - startedAt)} ms after n1 was started (target 10 s)`);
  const cdrs = (await rpc('cc.cdrs', { account: `800@${DOMAIN}` })).result as Array<{ call_id: string }>;
  t.same(cdrs.map((c) => c.call_id).sort(), calls.map((c) => c.dialog!.callId).sort(), 'one CDR each');
  await ha.node('n2').start();
});
