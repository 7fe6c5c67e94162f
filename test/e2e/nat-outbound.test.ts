// notify_to_flow=false is the native module's behaviour (NOTIFYs to the Contact), but a phone
// that uses SIP Outbound (RFC 5626: ;ob in its Contact, +sip.instance and reg-id in its
// REGISTER) is still reached over its flow: its registration, its NOTIFYs and a call to it all
// use the connection it opened. Through the real Kamailio with the shipped cfg.
import t from 'tap';
import { natPhone } from '../support/nat-phone.js';
import { hdr, sdp } from '../support/sip-phone.js';
import { DOMAIN, startStack, subscribeCallInfo, type Stack } from '../support/stack.js';
import { until } from '../support/wait.js';

let stack: Stack;
const cleanup: Array<() => void> = [];
t.before(async () => { stack = await startStack({ notify_to_flow: 'false' }); });
t.teardown(async () => {
  for (const c of cleanup) c();
  await stack?.stop();
});

t.test('with notify_to_flow=false a phone behind NAT gets its NOTIFY at its Contact, as from the module', async (t) => {
  const { phone, trap, stop } = await natPhone('plain', '110', DOMAIN, 'udp', stack.sipPort);
  cleanup.push(stop);
  t.equal((await subscribeCallInfo(phone)).status, 202);
  await until(() => trap.hits.some((h) => h.includes(`NOTIFY ${phone.contact} SIP/2.0`)), 5000, 'the NOTIFY at the private Contact');
  t.equal(phone.notifies().length, 0, 'none reaches the phone');
});

t.test('a TCP phone using SIP Outbound is reached over its own connection all the same', async (t) => {
  const { phone, trap, stop } = await natPhone('ob', '111', DOMAIN, 'tcp', stack.tcpPort);
  cleanup.push(stop);
  phone.outbound = { instance: 'urn:uuid:00000000-0000-1000-8000-00a0c91e6bf6', regId: 1 };
  const reg = await phone.register();
  t.equal(reg.status, 200, 'the registration with +sip.instance and reg-id');
  t.match(hdr(reg, 'contact'), /;ob>.*\+sip\.instance="<urn:uuid:00000000-0000-1000-8000-00a0c91e6bf6>".*reg-id=1/, 'kept with its instance and reg-id');

  t.equal((await subscribeCallInfo(phone)).status, 202);
  const n = await phone.nthNotify(1, 'call-info', 4000);
  t.equal(n.msg.ruri, phone.contact, 'its NOTIFY, to its ;ob Contact');
  t.equal(n.from.port, stack.tcpPort, 'over its connection');

  const caller = await stack.phone('caller', '300');
  phone.onInvite = (r) => phone.respond(r, 200, 'OK', { body: sdp(5000) });
  const call = await caller.invite({ ruri: `sip:111@${DOMAIN}`, to: `<sip:111@${DOMAIN}>`, body: sdp(4000) });
  t.equal(call.final.status, 200, 'a call to it reaches it where it registered from');
  t.equal((await caller.inDialog(call.dialog!, 'BYE').final).status, 200, 'and so does the BYE');
  t.equal(phone.connections.length, 1);
  t.same(trap.hits, [], 'nothing to its private Contact');
});
