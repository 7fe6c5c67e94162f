// kill -9 the service mid-call: nothing acknowledged is lost, and after the restart every phone's
// lamps are set again and the call still ends cleanly. How soon the lamps are set again (the 5 s
// promise) is measured by scripts/bench/targets.ts.
import t from 'tap';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, lineSeize, mark, subscribeCallInfo, waitLine, withStack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

const env = withStack(t, { p1: '100', p2: '100', bob: '200' });

t.test('state survives kill -9 and the phones are told again', async (t) => {
  const { stack, phones: { p1, p2, bob } } = env;
  for (const p of [p1, p2, bob]) await p.register();
  await subscribeCallInfo(p1);
  await subscribeCallInfo(p2);
  await lineSeize(p1, 1);
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
  t.equal(call.final.status, 200);
  await waitLine(p2, '1:active', 0);

  // A seize acknowledged just before the crash is not lost either.
  const seize = await lineSeize(p2, 2);
  t.equal(seize.status, 200);
  await stack.killService();
  const m = mark(p1, p2);
  const t0 = performance.now();
  await stack.startService();
  for (const [i, p] of [p1, p2].entries()) {
    const n = await waitLine(p, '1:active,2:seized', m[i]!, 15_000);
    t.match(hdr(n.msg, 'call-info'), `appearance-uri="<sip:200@${DOMAIN}>"`, `${p.name}: the remote party too`);
    t.match(hdr(n.msg, 'subscription-state'), /^active;expires=\d+$/);
  }
  t.pass(`lamps set again ${Math.round(performance.now() - t0)} ms after the restart began`);
  t.match(stack.serviceLog(), /"appearances":2,"skipped":0,"msg":"state restored"/, "both appearances came back from the store");

  // The dialog ids survived: Bob's BYE still finds the call.
  const m2 = mark(p1, p2);
  t.equal((await bob.inDialog(p1Dialog(call), 'BYE').final).status, 200);
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '2:seized', m2[i]!);
});

t.test('a call that ends while the service is down is idle after the restart', async (t) => {
  const { stack, phones: { p1, p2, bob } } = env;
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  const m0 = mark(p2);
  const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=3`]], body: sdp(4000) });
  t.equal(call.final.status, 200);
  await waitLine(p2, '2:seized,3:active', m0[0]!);
  const closedBefore = stack.kamailioLog().match(/service connection .* closed/g)?.length ?? 0;
  await stack.killService();
  // An event already on its way into the dying socket is lost; this test is about the ones
  // Kamailio sees after it noticed the service was gone, which it queues.
  await waitUntil('Kamailio sees the service gone', () => (stack.kamailioLog().match(/service connection .* closed/g)?.length ?? 0) > closedBefore, { everyMs: 20 });
  t.equal((await bob.inDialog(p1Dialog(call), 'BYE').final).status, 200, 'the BYE goes through without the service');
  const m = mark(p1, p2);
  await stack.startService();
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '2:seized', m[i]!, 15_000);
  t.match(stack.kamailioLog(), /sca: service \S+ said hello \(epoch \d+\): it is the active one; [1-9]\d* queued events replayed/);
});

/** Bob's side of P1's call, as Bob would address it. */
function p1Dialog(call: Awaited<ReturnType<Phone['invite']>>) {
  const { p1, bob } = env.phones;
  const atBob = bob.requests.find((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'call-id') === call.dialog!.callId)!;
  return {
    callId: call.dialog!.callId, localTag: call.dialog!.remoteTag, remoteTag: call.dialog!.localTag,
    localUri: `<sip:200@${DOMAIN}>`, remoteUri: `<sip:100@${DOMAIN}>`, remoteTarget: p1.contact,
    routeSet: atBob.msg.headers.filter(([n]) => n === 'record-route').map(([, v]) => v), cseq: 10,
  };
}
