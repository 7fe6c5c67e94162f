// Call control through the link door (kamailio/cc-routes.cfg on link.cfg, after SCA): refusals
// with the operator's codes, the dialog module's events for answer, hangup (who) and failure.
import t from 'tap';
import { rpc } from '../support/rpc.js';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

let stack: Stack;
let alice: Phone;
let bob: Phone;
const ALICE = `100@${DOMAIN}`;
const cc = (method: string, params: unknown = {}) => rpc(stack.httpPort, method, params);
const call = (headers: Array<[string, string]> = []) => alice.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers, body: sdp(4000) });
const lastCdr = async (account = ALICE) => (await cc('cc.cdrs', { account, limit: 1 })).result[0];
const settled = (account = ALICE) => waitUntil(`no call counted for ${account}`, async () => (await cc('cc.calls', { account })).result.length === 0, { everyMs: 20 });

t.before(async () => {
  stack = await startStack({ cc_link: 1, cc_reply_limit: '486 Too Many Calls', log_level: 'info' });
  [alice, bob] = await Promise.all([stack.phone('alice', '100'), stack.phone('bob', '200')]);
  for (const p of [alice, bob]) await p.register();
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
});
t.teardown(async () => stack.stop());

t.test('refusals carry the operator\'s codes: 486 over the limit, 402 without credit, 403 blacklisted', async (t) => {
  await cc('cc.account_set', { account: ALICE, max_calls: 1 });
  const first = await call();
  t.equal(first.final.status, 200);
  const over = await call();
  t.same([over.final.status, over.final.reason], [486, 'Too Many Calls']);
  await alice.inDialog(first.dialog!, 'BYE').final;
  await settled();
  await cc('cc.rate_set', { prefix: '2', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 0 });
  t.same([(await call()).final.status], [402]);
  await cc('cc.account_set', { account: ALICE, prepaid: false });
  await cc('cc.blacklist_add', { kind: 'callee_prefix', value: '200', note: 'test' });
  t.same([(await call()).final.status], [403]);
  await cc('cc.blacklist_delete', { kind: 'callee_prefix', value: '200' });
  await cc('cc.account_set', { account: ALICE, max_calls: 'none' });
});

t.test('dialog events: the answer gives the dialog ids, a BYE says who hung up, a failure its code', async (t) => {
  await cc('cc.account_set', { account: ALICE, max_calls: 10 });
  const c = await call();
  // dialog:start reaches the service after the 200 reached Alice.
  const live = await waitUntil('the call active at the service', async () =>
    ((await cc('cc.calls', { account: ALICE })).result as Array<{ call_id: string; state: string }>).find((x) => x.state === 'active'), { everyMs: 20 });
  t.same([live.call_id, live.state], [c.dialog!.callId, 'active'], 'dialog:start reported the answer');
  const atBob = bob.requests.find((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'call-id') === c.dialog!.callId)!;
  const bobSide = {
    callId: c.dialog!.callId, localTag: c.dialog!.remoteTag, remoteTag: c.dialog!.localTag, localUri: `<sip:200@${DOMAIN}>`, remoteUri: `<sip:100@${DOMAIN}>`,
    remoteTarget: alice.contact, routeSet: atBob.msg.headers.filter(([n]) => n === 'record-route').map(([, v]) => v), cseq: 10,
  };
  t.equal((await bob.inDialog(bobSide, 'BYE').final).status, 200);
  await settled();
  t.same([(await lastCdr()).call_id, (await lastCdr()).cause], [c.dialog!.callId, 'callee'], 'the callee hung up');
  bob.onInvite = (r) => bob.respond(r, 486, 'Busy Here');
  const busy = await call();
  t.equal(busy.final.status, 486);
  await settled();
  const cdr = await lastCdr();
  t.same([cdr.cause, cdr.code, cdr.duration], ['failed', 486, 0], 'dialog:failed with the code');
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
});
// P-Call-Control (trusted sources only) is in cc-link-door.test.ts.
