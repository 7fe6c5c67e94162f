// An incoming call to the shared line, forked to three phones and answered by one: the line
// shows it active at the ACK and still a minute later (the native module idles it after ~35 s).
import t from 'tap';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, callInfoDialog, lineState, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../support/stack.js';

let stack: Stack;
let p1: Phone, p2: Phone, p3: Phone, bob: Phone;
t.before(async () => {
  stack = await startStack({ purge_expired_interval: 5 });
  [p1, p2, p3, bob] = await Promise.all([stack.phone('p1', '100'), stack.phone('p2', '100'), stack.phone('p3', '100'), stack.phone('bob', '200')]);
});
t.teardown(async () => stack.stop());

t.test('an incoming call answered by one member stays active a minute later', async (t) => {
  for (const p of [p1, p2, p3, bob]) t.equal((await p.register()).status, 200);
  await subscribeCallInfo(p1);
  await subscribeCallInfo(p3);
  const watcher = await callInfoDialog(p2);
  for (const p of [p1, p2, p3]) await p.nthNotify(1);

  // The proxy forks Bob's INVITE to the three registrations; P1 answers with its index.
  p2.onInvite = (r) => p2.respond(r, 180, 'Ringing');
  p3.onInvite = (r) => p3.respond(r, 180, 'Ringing');
  p1.onInvite = (r) => setTimeout(() => p1.respond(r, 200, 'OK', { headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(6000) }), 50);
  const m = mark(p1, p2, p3);
  const call = await bob.invite({ ruri: `sip:100@${DOMAIN}`, to: `<sip:100@${DOMAIN}>`, headers: [], body: sdp(7000) });
  t.equal(call.final.status, 200, 'Bob is answered');
  t.equal(hdr(call.final, 'call-info'), undefined, 'the 200 reaches Bob without Call-Info');
  for (const [i, p] of [p1, p2, p3].entries()) {
    const n = await waitLine(p, '1:active', m[i]!);
    t.match(hdr(n.msg, 'call-info'), `appearance-uri="<sip:200@${DOMAIN}>"`, `${p.name} sees who called`);
  }
  await p2.waitFor((r) => r.msg.method === 'CANCEL', 4000, 'CANCEL');

  // A minute with the purge running every 5 s: no NOTIFY may idle the line.
  const before = mark(p1, p2, p3);
  await new Promise((r) => setTimeout(r, 61_000));
  t.same(mark(p1, p2, p3), before, 'no call-info NOTIFY during the minute');
  const refreshed = await watcher.refresh(3600);
  t.equal(refreshed.status, 202);
  const after = await waitLine(p2, '1:active', before[1]!);
  t.equal(lineState(after), '1:active', 'a refresh a minute later still shows the call');

  const m2 = mark(p1, p2, p3);
  t.equal((await bob.inDialog(call.dialog!, 'BYE').final).status, 200);
  for (const [i, p] of [p1, p2, p3].entries()) await waitLine(p, '', m2[i]!);
});
