// The edge rule of several proxies (kamailio.cfg's PEER_PROXIES): a request relayed by another
// proxy of the same service had its SCA and call control there, so here it is only routed; a call
// that crosses two proxies is counted once. Here 127.0.0.2 plays the other proxy.
import t from 'tap';
import { rpc } from '../support/rpc.js';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let alice: Phone;
let peer: Phone;
let bob: Phone;

t.before(async () => {
  stack = await startStack({ log_level: 'info', kamailio_define: 'PEER_PROXIES="127.0.0.2"' });
  [alice, bob, peer] = await Promise.all([stack.phone('alice', '100'), stack.phone('bob', '200'), stack.phone('peer', '100', '127.0.0.2')]);
  for (const p of [alice, bob]) await p.register();
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  await rpc(stack.httpPort, 'cc.account_set', { account: `100@${DOMAIN}`, max_calls: 0 });
});
t.teardown(async () => stack.stop());

t.test('a call from a phone goes through call control; the same call relayed by a peer proxy is only routed', async (t) => {
  const direct = await alice.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  t.same([direct.final.status, direct.final.reason], [403, 'Forbidden - Call Control'], 'alice may make no call here');
  const relayed = await peer.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4001) });
  t.equal(relayed.final.status, 200, 'relayed by the peer proxy, where it was admitted: routed to bob');
  const callId = relayed.dialog!.callId;
  t.ok(bob.requests.some((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'call-id') === callId), 'bob got it');
  t.notMatch(stack.serviceLog(), new RegExp(callId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the service never heard of it: no SCA, no call control here');
  t.equal((await peer.inDialog(relayed.dialog!, 'BYE').final).status, 200, 'its BYE is routed too');
});
