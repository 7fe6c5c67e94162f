// Call control through the link door (kamailio.cfg -A WITH_CC_LINK, cc-routes.cfg), as a hostile
// caller would try it: a P-Call-Control header naming someone else to pay, a Call-ID or From the
// service cannot take, a service that is away. Only the trusted source (CC_PCC_TRUSTED, here
// 127.0.0.2: a PBX) may name the payer; what the service cannot account for is refused.
import t from 'tap';
import { rpc } from '../support/rpc.js';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

let stack: Stack;
let alice: Phone;
let bob: Phone;
let pbx: Phone;
const ALICE = `100@${DOMAIN}`;
const RICH = `rich@${DOMAIN}`;
const cc = (method: string, params: unknown = {}) => rpc(stack.httpPort, method, params);
const call = (from: Phone, headers: Array<[string, string]> = [], o: { callId?: string; from?: string } = {}) =>
  from.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers, body: sdp(4000), ...o });

/** Polls `probe` every 50 ms until it gives a value; fails loudly, naming `what`, after `timeoutMs`. */
const until = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 8_000): Promise<T> =>
  waitUntil(what, probe, { timeoutMs, everyMs: 50 });

t.before(async () => {
  // Nothing listens at cc_jsonrpc_address: calls of the link door are ended over the link
  // (link.rpc to the proxy that admitted them), which the timers below need.
  stack = await startStack({ cc_link: 1, log_level: 'info', kamailio_define: 'CC_PCC_TRUSTED="127.0.0.2/32";CC_FAIL_CLOSED', cc_jsonrpc_address: 'udp:127.0.0.1:9' });
  [alice, bob, pbx] = await Promise.all([stack.phone('alice', '100'), stack.phone('bob', '200'), stack.phone('pbx', '100', '127.0.0.2')]);
  for (const p of [alice, bob]) await p.register();
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  await cc('cc.rate_set', { prefix: '2', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  await cc('cc.account_set', { account: RICH, prepaid: true, balance: 1000 });
});
t.teardown(async () => stack.stop());

t.test('a phone cannot name who pays: its P-Call-Control is removed and ignored', async (t) => {
  await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 0 });
  const named = await call(alice, [['P-Call-Control', `cc_prepaid;uuid=${RICH}`]]);
  t.equal(named.final.status, 402, 'billed to the caller (empty balance), not to the account the header names');
  const unknown = await call(alice, [['P-Call-Control', 'cc_pcalls;uuid=ghost@nowhere.example;max_calls=9']]);
  t.equal(unknown.final.status, 402, 'an unknown account named: still the caller\'s call, still refused');
  t.equal((await cc('cc.account_show', { account: RICH })).result.balance, 1000, 'the named account is untouched');
  t.match(stack.kamailioLog(), /P-Call-Control from untrusted 127\.0\.0\.1:\d+ removed/);
  await cc('cc.account_set', { account: ALICE, prepaid: false, max_calls: 2 });
  const c = await call(alice, [['P-Call-Control', `cc_call_timer;timer=1, cc_pcalls;uuid=${RICH}`]]);
  t.equal(c.final.status, 200);
  const atBob = bob.requests.find((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'call-id') === c.dialog!.callId)!;
  t.equal(hdr(atBob.msg, 'p-call-control'), undefined, 'the header is not relayed');
  const [live] = (await cc('cc.calls', { account: ALICE })).result;
  t.same([live.call_id, live.limit], [c.dialog!.callId, null], 'counted for the caller, without the header\'s timer');
  await alice.inDialog(c.dialog!, 'BYE').final;
  await until('ended', async () => (await cc('cc.calls', { account: ALICE })).result.length === 0);
});

t.test('the trusted source names the payer and its limits; one it cannot read is refused', async (t) => {
  const pcc: [string, string] = ['P-Call-Control', `cc_pcalls;uuid=${RICH};max_calls=1, cc_call_timer;timer=2`];
  const first = await call(pbx, [pcc]);
  t.equal(first.final.status, 200);
  const [live] = (await cc('cc.calls', { account: RICH })).result;
  t.same([live.account, live.limit], [RICH, 2], 'billed to the named account, limited to 2 s');
  t.equal((await call(pbx, [pcc])).final.status, 486, 'its second call: over max_calls 1');
  await pbx.waitFor((r) => r.msg.method === 'BYE' && hdr(r.msg, 'call-id') === first.dialog!.callId, 6000, 'BYE at 2 s, asked for over the link');
  // Kamailio may see the ACK late (the phones retransmit the 200 and the ACK): its dlg.end_dlg then
  // BYEs one leg only ("terminating non-confirmed dialogs not supported" for the other), the call
  // stays `ending`, and the service ends it again at its check 10 s after the first end.
  await until('ended', async () => (await cc('cc.calls', { account: RICH })).result.length === 0, 15_000);
  t.equal((await cc('cc.account_show', { account: RICH })).result.balance, 998, 'debited 2 s');
  const bad = await call(pbx, [['P-Call-Control', 'cc_pcalls;uuid=a@b.example;max_calls=lots']]);
  t.same([bad.final.status, bad.final.reason], [400, 'Bad Call-Control Request'], 'unreadable: refused, not billed to the From');
  const two = await call(pbx, [['P-Call-Control', 'cc_pcalls;uuid=a@b.example'], ['P-Call-Control', `cc_prepaid;uuid=${RICH}`]]);
  t.equal(two.final.status, 400, 'two headers naming two payers: refused');
});

t.test('what the service cannot read is refused, never waved on, even failing closed', async (t) => {
  await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 0, max_calls: 'none' });
  t.equal((await call(alice, [], { callId: `${'y'.repeat(300)}@alice` })).final.status, 402, 'a 300-character Call-ID is read and refused for its balance');
  const huge = await call(alice, [], { from: `"${'A'.repeat(9000)}" <sip:100@${DOMAIN}>` });
  t.same([huge.final.status, huge.final.reason], [400, 'Bad Call-Control Request'], 'a From over what the service takes: 400, not the old fallback\'s 200');
  t.match(stack.serviceLog(), /"result":"bad-request"/);
});

t.test('"service unreachable" stays its own answer: 503 with CC_FAIL_CLOSED', async (t) => {
  await stack.stopService();
  const away = await call(alice);
  t.same([away.final.status, away.final.reason], [503, 'Call Control Unavailable']);
  await stack.startService();
});
