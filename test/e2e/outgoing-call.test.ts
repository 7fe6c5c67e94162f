// Three phones on one shared line and a remote party, through the real Kamailio with the
// project's cfg: seize, outgoing call, hold, pickup on another phone, BYE.
import t from 'tap';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, lineSeize, lineState, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../support/stack.js';

let stack: Stack;
let p1: Phone, p2: Phone, p3: Phone, bob: Phone;
t.before(async () => {
  stack = await startStack();
  p1 = await stack.phone('p1', '100');
  p2 = await stack.phone('p2', '100');
  p3 = await stack.phone('p3', '100');
  bob = await stack.phone('bob', '200');
});
t.teardown(async () => stack.stop());

t.test('outgoing call on a shared line, hold, pickup by another member, BYE', async (t) => {
  for (const p of [p1, p2, p3, bob]) t.equal((await p.register()).status, 200, `${p.name} registers`);
  for (const p of [p1, p2, p3]) {
    const r = await subscribeCallInfo(p);
    t.same([r.status, hdr(r, 'event'), hdr(r, 'expires'), hdr(r, 'allow-events')], [202, 'call-info', '3600', 'call-info, line-seize']);
    const first = await p.nthNotify(1);
    t.same([hdr(first.msg, 'call-info'), hdr(first.msg, 'subscription-state'), hdr(first.msg, 'cseq')],
      [`<sip:${DOMAIN}>;appearance-index=*;appearance-state=idle`, 'active;expires=3600', '1 NOTIFY']);
    t.equal(hdr(first.msg, 'to'), `${hdr(r, 'from')}`.replace(/<[^>]+>/, `<${p.aor}>`), 'NOTIFY To = AoR with the subscriber\'s tag');
    t.match(hdr(first.msg, 'from'), new RegExp(`^<sip:100@${DOMAIN}>;tag=`));
    t.equal(hdr(first.msg, 'call-id'), hdr(r, 'call-id'));
  }

  // Line-seize: 200, the index in a line-seize NOTIFY, the group sees it seized.
  let m = mark(p1, p2, p3);
  const seize = await lineSeize(p1, 1);
  t.same([seize.status, hdr(seize, 'expires')], [200, '15']);
  const lsNotify = await p1.nthNotify(1, 'line-seize');
  t.equal(hdr(lsNotify.msg, 'call-info'), `<sip:${DOMAIN}>;appearance-index=1`);
  for (const [i, p] of [p1, p2, p3].entries()) await waitLine(p, '1:seized', m[i]!);
  const glare = await lineSeize(p2, 1);
  t.same([glare.status, hdr(glare, 'retry-after')], [480, '1'], 'glare: the second seize of index 1 gets 480');

  // The call: Call-Info removed on the way, 180 ends the line-seize, 200 carries PAI.
  bob.onInvite = (r) => bob.respond(r, 180, 'Ringing', { toTag: 'bobtag' });
  m = mark(p1, p2, p3);
  const calling = p1.request('INVITE', { ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, fromTag: 'p1tag', headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
  const atBob = await bob.waitFor((r) => r.msg.method === 'INVITE', 4000, 'INVITE');
  t.equal(hdr(atBob.msg, 'call-info'), undefined, 'the INVITE reaches the remote without Call-Info');
  t.match(hdr(atBob.msg, 'record-route'), /lr/, 'the proxy record-routes');
  const ended = await p1.nthNotify(2, 'line-seize');
  t.equal(hdr(ended.msg, 'subscription-state'), 'terminated;reason=noresource');
  for (const [i, p] of [p1, p2, p3].entries()) await waitLine(p, '1:progressing', m[i]!);
  m = mark(p1, p2, p3);
  const bobDialog = bob.respond(atBob, 200, 'OK', { toTag: 'bobtag', body: sdp(5000) });
  const ok = await calling.final;
  t.equal(ok.status, 200);
  t.equal(hdr(ok, 'p-asserted-identity'), `<sip:200@${DOMAIN}>`, 'the 200 tells P1 who answered');
  const p1Dialog = p1.dialogFromReply(ok, 'p1tag');
  p1.inDialog(p1Dialog, 'ACK');
  await bob.waitFor((r) => r.msg.method === 'ACK', 4000, 'ACK');
  for (const [i, p] of [p1, p2, p3].entries()) {
    const n = await waitLine(p, '1:active', m[i]!);
    t.match(hdr(n.msg, 'call-info'), `appearance-uri="<sip:200@${DOMAIN}>"`);
  }

  // Hold from P1: everyone sees held.
  m = mark(p1, p2, p3);
  const hold = p1.inDialog(p1Dialog, 'INVITE', { body: sdp(4000, 'sendonly'), headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]] });
  const reinv = await bob.waitFor((r) => r.msg.method === 'INVITE' && /;\s*tag=/.test(hdr(r.msg, 'to') ?? ''), 4000, 're-INVITE');
  bob.respond(reinv, 200, 'OK', { body: sdp(5000, 'recvonly') });
  t.equal((await hold.final).status, 200);
  p1.inDialog(p1Dialog, 'ACK');
  for (const [i, p] of [p1, p2, p3].entries()) await waitLine(p, '1:held', m[i]!);

  // Pickup on P2: the INVITE to the AoR is turned toward Bob with Replaces.
  m = mark(p1, p2, p3);
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { toTag: 'bobtag2', body: sdp(5000) });
  const pickup = await p2.invite({ ruri: p2.aor, to: `<${p2.aor}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4100) });
  t.equal(pickup.final.status, 200);
  const replaced = bob.requests.filter((r) => r.msg.method === 'INVITE').at(-1)!;
  t.equal(replaced.msg.ruri, bob.contact, 'the pickup goes to the held party');
  t.equal(hdr(replaced.msg, 'replaces'), `${p1Dialog.callId};to-tag=bobtag;from-tag=p1tag`);
  t.equal(hdr(replaced.msg, 'call-info'), undefined);
  for (const [i, p] of [p1, p2, p3].entries()) await waitLine(p, '1:active', m[i]!);
  // The pickup's ACK and a BYE sent right after it reach different Kamailio workers and may be
  // reported in either order; a phone waits at least that long, so wait for the ACK's NOTIFY.
  for (const p of [p1, p2, p3]) await p.nthNotify(10);
  // The pickup's dialog is with Bob, and it replaced the very dialog Bob had answered for P1.
  t.equal(pickup.dialog!.remoteTarget, bob.contact, 'P2\'s dialog is with Bob');
  t.equal(hdr(replaced.msg, 'replaces'), `${bobDialog!.callId};to-tag=${bobDialog!.localTag};from-tag=${bobDialog!.remoteTag}`, 'Replaces names Bob\'s dialog with P1');
  m = mark(p1, p2, p3);
  const bye = await p2.inDialog(pickup.dialog!, 'BYE').final;
  t.equal(bye.status, 200);
  for (const [i, p] of [p1, p2, p3].entries()) await waitLine(p, '', m[i]!);
  t.notMatch(stack.kamailioLog(), /CRITICAL|sca: no answer from the service/);

  // Every call-info NOTIFY each member got, in order (spec §3.8): subscribe, seize, INVITE,
  // 180, 200, hold re-INVITE and its 200, pickup INVITE, its 200 and its ACK (the module
  // NOTIFYs the callee's line at every ACK), BYE.
  const expected = ['', '1:seized', '1:seized', '1:progressing', '1:active', '1:held', '1:held', '1:active', '1:active', '1:active', ''];
  for (const p of [p1, p2, p3]) {
    const got = p.notifies('call-info');
    t.same(got.map(lineState), expected, `${p.name}: the whole NOTIFY sequence`);
    t.same(got.map((n) => hdr(n.msg, 'cseq')), expected.map((_, i) => `${i + 1} NOTIFY`), `${p.name}: CSeq 1..${expected.length}`);
    t.ok(got.every((n) => /^active;expires=(3600|3599|3598)$/.test(hdr(n.msg, 'subscription-state') ?? '')), `${p.name}: each with its own expiry`);
    t.ok(got.every((n) => hdr(n.msg, 'call-id') === hdr(got[0]!.msg, 'call-id')), `${p.name}: all in one dialog`);
  }
  t.same(p1.notifies('line-seize').map((n) => [hdr(n.msg, 'cseq'), hdr(n.msg, 'call-info'), hdr(n.msg, 'subscription-state')]), [
    ['1 NOTIFY', `<sip:${DOMAIN}>;appearance-index=1`, 'active;expires=15'],
    ['2 NOTIFY', `<sip:${DOMAIN}>;appearance-index=1`, 'terminated;reason=noresource'],
  ], 'P1\'s line-seize NOTIFYs');
  t.equal(p2.notifies('line-seize').length, 0, 'the glare loser got no line-seize NOTIFY');
});
