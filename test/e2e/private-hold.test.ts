// Private hold: every member sees held-private; a pickup by another member gets 403 and the
// held party never sees it; the owner takes the call back.
import t from 'tap';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, lineSeize, mark, marker, subscribeCallInfo, waitLine, withStack } from '../support/stack.js';

const env = withStack(t, { p1: '100', p2: '100', bob: '200' });

t.test('a privately held call cannot be picked up by another member', async (t) => {
  const { stack, phones: { p1, p2, bob } } = env;
  for (const p of [p1, p2, bob]) await p.register();
  await subscribeCallInfo(p1);
  await subscribeCallInfo(p2);
  await lineSeize(p1, 2);
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=2`]], body: sdp(4000) });
  t.equal(call.final.status, 200);
  await waitLine(p2, '2:active', 0);

  let m = mark(p1, p2);
  bob.onInvite = undefined;
  const hold = p1.inDialog(call.dialog!, 'INVITE', { body: sdp(4000, 'sendonly'), headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=2;appearance-state=held-private`]] });
  const reinv = await bob.waitFor((r) => r.msg.method === 'INVITE' && /;\s*tag=/.test(hdr(r.msg, 'to') ?? ''), 4000, 're-INVITE');
  bob.respond(reinv, 200, 'OK', { body: sdp(5000, 'recvonly') });
  t.equal((await hold.final).status, 200);
  p1.inDialog(call.dialog!, 'ACK');
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '2:held-private', m[i]!);

  const invitesAtBob = bob.requests.filter((r) => r.msg.method === 'INVITE').length;
  const pickup = await p2.invite({ ruri: p2.aor, to: `<${p2.aor}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=2`]], body: sdp(4100) });
  t.same([pickup.final.status, pickup.final.reason], [403, 'Forbidden - private call']);
  // A round trip from P2 to Bob through the proxy: an INVITE for Bob would have come before it.
  await marker(p2, bob);
  t.equal(bob.requests.filter((r) => r.msg.method === 'INVITE').length, invitesAtBob, 'the held party never sees the pickup');

  m = mark(p1, p2);
  const unhold = p1.inDialog(call.dialog!, 'INVITE', { body: sdp(4000, 'sendrecv') });
  const reinv2 = await bob.waitFor((r) => r.msg.method === 'INVITE' && r !== reinv && /;\s*tag=/.test(hdr(r.msg, 'to') ?? ''), 4000, 're-INVITE');
  bob.respond(reinv2, 200, 'OK', { body: sdp(5000) });
  t.equal((await unhold.final).status, 200);
  p1.inDialog(call.dialog!, 'ACK');
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '2:active', m[i]!);
});
