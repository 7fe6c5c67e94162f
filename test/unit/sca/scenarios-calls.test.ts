// Spec §11 scenarios 16-36: the call state machine driven by INVITE/BYE/CANCEL/ACK and replies.
import t from 'tap';
import { AOR, B, B_CONTACT, Bench, CI, IDLE, P1, P2, P3, SDP, header, to, type DialogOpts } from '../../support/sip-fixture.js';

/** P1 and P2 watch the line, P1 has seized index 1 and dials B. */
function outgoing(): { b: Bench; call: DialogOpts } {
  const b = new Bench();
  b.callInfo(P2);
  b.callInfo(P1);
  b.lineSeize(P1, 1);
  const call: DialogOpts = { callId: 'call1', from: `<${AOR}>`, fromTag: 'f1', to: `<${B}>`, contact: P1, callInfo: CI(1), body: SDP(null) };
  return { b, call };
}

const callInfoOf = (notifies: ReturnType<Bench['req']>['notifies'], who = P1): string | undefined =>
  header(to(notifies, who).at(-1)!, 'Call-Info');

t.test('16: outgoing call, full path: seized, progressing, active with the remote party, idle', async (t) => {
  const { b, call } = outgoing();
  const invite = b.req('INVITE', call);
  t.equal(invite.result, 1);
  t.equal(invite.edit.removeCallInfo, true, 'relayed without Call-Info');
  t.same(invite.notifies.map((n) => n.subscriber), [P1, P2], 'group NOTIFY, newest subscription first');
  t.equal(callInfoOf(invite.notifies), `${CI(1, 'seized')},${IDLE}`);

  const ringing = b.rep(180, 'Ringing', 'INVITE', { ...call, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  const ls = to(ringing.notifies, P1, 'line-seize');
  t.equal(ls.length, 1);
  t.equal(header(ls[0]!, 'Subscription-State'), 'terminated;reason=noresource');
  t.equal(header(ls[0]!, 'Call-Info'), CI(1));
  t.equal(callInfoOf(ringing.notifies), `${CI(1, 'progressing')},${IDLE}`);
  t.equal(b.engine.countSubscriptions('line-seize'), 0);
  const again = b.rep(180, 'Ringing', 'INVITE', { ...call, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  t.equal(again.notifies.length, 0, 'a second 180 changes nothing');

  const ok = b.rep(200, 'OK', 'INVITE', { ...call, to: `"Bob" <${B}>`, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  t.same(ok.edit.appendHeaders, [['P-Asserted-Identity', `"Bob" <${B}>`]]);
  t.equal(callInfoOf(ok.notifies), `${CI(1, 'active')};appearance-uri="\\"Bob\\" <${B}>",${IDLE}`);
  const app = b.engine.listAppearances()[0]!;
  t.same([app.callee, app.call_id, app.from_tag, app.to_tag], [B_CONTACT, 'call1', 'f1', 't1']);

  const ack = b.req('ACK', { ...call, toTag: 't1', callInfo: undefined, body: '' });
  t.equal(ack.notifies.length, 0, 'ACK of an outgoing call NOTIFYs nothing');

  const bye = b.req('BYE', { ...call, toTag: 't1', callInfo: undefined, body: '', cseq: '2 BYE' });
  t.equal(callInfoOf(bye.notifies), IDLE);
  t.same(b.engine.listAppearances(), []);
});

t.test('17: a 183 gives progressing, never alerting', async (t) => {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  const r = b.rep(183, 'Session Progress', 'INVITE', { ...call, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  t.equal(callInfoOf(r.notifies), `${CI(1, 'progressing')},${IDLE}`);
});

t.test('18: a BYE from the remote ends an outgoing call', async (t) => {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  b.rep(200, 'OK', 'INVITE', { ...call, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  const bye = b.req('BYE', { callId: 'call1', from: `<${B}>`, fromTag: 't1', to: `<${AOR}>`, toTag: 'f1', contact: B_CONTACT, ruri: P1 });
  t.equal(bye.result, 1);
  t.equal(callInfoOf(bye.notifies), IDLE);
  t.equal(b.state(1), undefined);
});

t.test('19: a 486 before any 18x ends the line-seize with noresource and frees the index', async (t) => {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  const fail = b.failure(486, call);
  const ls = to(fail.notifies, P1, 'line-seize');
  t.equal(header(ls[0]!, 'Subscription-State'), 'terminated;reason=noresource');
  t.equal(callInfoOf(fail.notifies), IDLE);
  t.equal(b.state(1), undefined);
  t.equal(b.engine.countSubscriptions('line-seize'), 0);
});

t.test('20: a 486 after a 180 unlinks the appearance by its tags', async (t) => {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  b.rep(180, 'Ringing', 'INVITE', { ...call, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  const fail = b.failure(486, call);
  t.equal(callInfoOf(fail.notifies), IDLE);
  t.equal(b.state(1), undefined);
});

t.test('21: the proxy\'s stateless 404 frees the seize; a stateless 407 does not', async (t) => {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  const challenge = b.failure(407, call, 'local-reply');
  t.equal(challenge.notifies.length, 0);
  t.equal(b.state(1), 'seized');
  const notFound = b.failure(404, call, 'local-reply');
  t.equal(header(to(notFound.notifies, P1, 'line-seize')[0]!, 'Subscription-State'), 'terminated;reason=noresource');
  t.equal(b.state(1), undefined);
});

t.test('22: CANCEL idles the appearance at once; the 487 changes nothing more', async (t) => {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  b.rep(180, 'Ringing', 'INVITE', { ...call, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  const cancel = b.req('CANCEL', { ...call, callInfo: undefined, body: '' });
  t.equal(callInfoOf(cancel.notifies), IDLE);
  const after = b.failure(487, call);
  t.equal(to(after.notifies, P1).length, 0);
  t.same(b.engine.listAppearances(), []);
});

t.test('23: a 181 does not release the caller\'s appearance (deviation D9)', async (t) => {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  const fwd = b.rep(181, 'Call Is Being Forwarded', 'INVITE', { ...call, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  t.equal(fwd.notifies.length, 0);
  t.equal(b.state(1), 'seized');
});

function answered(): { b: Bench; call: DialogOpts } {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  b.rep(200, 'OK', 'INVITE', { ...call, toTag: 't1', contact: B_CONTACT, callInfo: undefined });
  b.req('ACK', { ...call, toTag: 't1', callInfo: undefined, body: '' });
  return { b, call: { ...call, toTag: 't1', cseq: '2 INVITE' } };
}

t.test('24: hold and un-hold re-INVITEs', async (t) => {
  const { b, call } = answered();
  const hold = b.req('INVITE', { ...call, body: SDP('sendonly') });
  t.equal(callInfoOf(hold.notifies), `${CI(1, 'held')};appearance-uri="<${B}>",${IDLE}`);
  const ok = b.rep(200, 'OK', 'INVITE', { ...call, contact: B_CONTACT, callInfo: undefined, body: SDP('recvonly') });
  t.match(callInfoOf(ok.notifies), /appearance-state=held/, 'its 200 NOTIFYs held again');
  const unhold = b.req('INVITE', { ...call, cseq: '3 INVITE', body: SDP('sendrecv') });
  t.match(callInfoOf(unhold.notifies), /appearance-index=1;appearance-state=active/);
});

t.test('25: a private hold shows held-private', async (t) => {
  const { b, call } = answered();
  const hold = b.req('INVITE', { ...call, callInfo: CI(1, 'held-private'), body: SDP('sendonly') });
  t.match(callInfoOf(hold.notifies), /appearance-index=1;appearance-state=held-private/);
});

t.test('26: hold variants: 0.0.0.0, inactive, and session-level sendonly (deviation D13)', async (t) => {
  for (const [name, body] of [
    ['c=0.0.0.0', SDP(null, { conn: '0.0.0.0' })],
    ['inactive', SDP('inactive')],
    ['session-level sendonly', SDP(null, { sessionDir: 'sendonly' })],
  ] as const) {
    const { b, call } = answered();
    b.req('INVITE', { ...call, body });
    t.equal(b.state(1), 'held', name);
  }
});

t.test('27: music-on-hold: a re-INVITE without SDP, then hold SDP in the ACK', async (t) => {
  const { b, call } = answered();
  b.req('INVITE', { ...call, body: '' });
  t.equal(b.state(1), 'active');
  b.rep(200, 'OK', 'INVITE', { ...call, contact: B_CONTACT, callInfo: undefined, body: SDP('sendrecv') });
  const ack = b.req('ACK', { ...call, cseq: '2 ACK', callInfo: undefined, body: SDP('sendonly') });
  t.match(callInfoOf(ack.notifies), /appearance-state=held/);
  t.equal(b.state(1), 'held');
});

function held(state: 'sendonly' | 'private'): { b: Bench; call: DialogOpts } {
  const { b, call } = answered();
  b.req('INVITE', { ...call, callInfo: state === 'private' ? CI(1, 'held-private') : CI(1), body: SDP('sendonly') });
  return { b, call };
}

const pickupBy = (b: Bench, contact: string) =>
  b.req('INVITE', { callId: 'pickup1', from: `<${AOR}>`, fromTag: 'p2f', to: `<${AOR}>`, contact, callInfo: CI(1), body: SDP(null) });

t.test('28: pickup of a held call by another member: Replaces toward the held party, new owner', async (t) => {
  const { b } = held('sendonly');
  const out = pickupBy(b, P2);
  t.equal(out.result, 1);
  t.equal(out.edit.ruri, B_CONTACT);
  t.equal(out.edit.dropBranches, true);
  t.equal(out.edit.removeCallInfo, true);
  t.same(out.edit.appendHeaders, [['Replaces', 'call1;to-tag=t1;from-tag=f1']]);
  t.match(callInfoOf(out.notifies), /appearance-index=1;appearance-state=active/);
  t.equal(b.engine.listAppearances()[0]!.owner, P2);
  // The remote's 200 completes it; the old dialog's BYE no longer touches the line.
  b.rep(200, 'OK', 'INVITE', { callId: 'pickup1', from: `<${AOR}>`, fromTag: 'p2f', to: `<${AOR}>`, toTag: 'bt2', contact: B_CONTACT });
  const oldBye = b.req('BYE', { callId: 'call1', from: `<${B}>`, fromTag: 't1', to: `<${AOR}>`, toTag: 'f1', contact: B_CONTACT, ruri: P1 });
  t.equal(to(oldBye.notifies, P1).length, 0);
  t.equal(b.state(1), 'active');
  const bye = b.req('BYE', { callId: 'pickup1', from: `<${AOR}>`, fromTag: 'p2f', to: `<${AOR}>`, toTag: 'bt2', contact: P2 });
  t.equal(callInfoOf(bye.notifies), IDLE, 'kamailio#341: all members idle after the BYE');
});

t.test('29: pickup of a privately held call: 403 to others, allowed to the owner (deviation D14)', async (t) => {
  const { b } = held('private');
  const denied = pickupBy(b, P2);
  t.same([denied.result, denied.reply?.code, denied.reply?.reason], [0, 403, 'Forbidden - private call']);
  t.equal(denied.notifies.length, 0);
  const app = b.engine.listAppearances()[0]!;
  t.same([app.state, app.owner, app.call_id], ['held-private', P1, 'call1'], 'the held call is untouched');
  const own = pickupBy(b, P1);
  t.equal(own.reply, undefined);
  t.equal(own.edit.ruri, B_CONTACT);
});

t.test('a second pickup of a call another member took: 403, the call untouched (deviation D34)', async (t) => {
  const { b } = held('sendonly');
  b.callInfo(P3);
  t.equal(pickupBy(b, P2).edit.ruri, B_CONTACT, 'P2 picks the call up');
  const late = b.req('INVITE', { callId: 'pickup2', from: `<${AOR}>`, fromTag: 'p3f', to: `<${AOR}>`, contact: P3, callInfo: CI(1), body: SDP(null) });
  t.same([late.result, late.reply?.code, late.reply?.reason], [0, 403, 'Forbidden - appearance in use']);
  t.equal(late.notifies.length, 0);
  t.same(b.engine.listAppearances().map((a) => [a.index, a.state, a.owner, a.call_id]), [[1, 'active', P2, 'pickup1']], 'no second appearance, P2 keeps the call');
  const again = pickupBy(b, P2);
  t.equal(again.reply, undefined, 'the winner\'s own INVITE (a retransmission) is not refused');
});

t.test('a failed pickup puts the held call back (deviation D10)', async (t) => {
  const { b } = held('sendonly');
  pickupBy(b, P2);
  const fail = b.failure(481, { callId: 'pickup1', from: `<${AOR}>`, fromTag: 'p2f', to: `<${AOR}>`, contact: P2 });
  t.match(callInfoOf(fail.notifies), /appearance-index=1;appearance-state=held/);
  const app = b.engine.listAppearances()[0]!;
  t.same([app.state, app.owner, app.call_id], ['held', P1, 'call1']);
});

t.test('a refused hold re-INVITE leaves the call active (deviation D10)', async (t) => {
  const { b, call } = answered();
  b.req('INVITE', { ...call, body: SDP('sendonly') });
  t.equal(b.state(1), 'held');
  b.failure(491, call);
  t.equal(b.state(1), 'active');
  b.failure(488, call);
  t.equal(b.state(1), 'active', 'a failure with nothing pending changes nothing');
});

function incoming(): { b: Bench; invite: DialogOpts } {
  const b = new Bench();
  b.callInfo(P2);
  b.callInfo(P1);
  const invite: DialogOpts = { callId: 'in1', from: `"Bob" <${B}>`, fromTag: 'b1', to: `<${AOR}>`, contact: B_CONTACT, body: SDP(null), ruri: AOR };
  return { b, invite };
}

t.test('30: an incoming call answered by a member: NOTIFY at the ACK, and still active after 35 s (D17)', async (t) => {
  const { b, invite } = incoming();
  t.equal(b.req('INVITE', invite).notifies.length, 0, 'no NOTIFY for the INVITE');
  const ring = b.rep(180, 'Ringing', 'INVITE', { ...invite, toTag: 'p1t', contact: P1 });
  t.equal(ring.notifies.length, 0, 'no NOTIFY for alerting');
  const ok = b.rep(200, 'OK', 'INVITE', { ...invite, toTag: 'p1t', contact: P1, callInfo: CI(2) });
  t.equal(ok.notifies.length, 0, 'no NOTIFY at the 200');
  t.equal(ok.edit.removeCallInfo, true);
  const ack = b.req('ACK', { ...invite, toTag: 'p1t', body: '', ruri: P1 });
  t.equal(callInfoOf(ack.notifies), `${CI(2, 'active')};appearance-uri="\\"Bob\\" <${B}>",${IDLE}`);
  const purged = b.tick(121);
  t.equal(purged.length, 0, 'the purge leaves an ACKed call alone');
  t.equal(b.state(2), 'active');
  const bye = b.req('BYE', { callId: 'in1', from: `"Bob" <${B}>`, fromTag: 'b1', to: `<${AOR}>`, toTag: 'p1t', contact: B_CONTACT, ruri: P1 });
  t.equal(callInfoOf(bye.notifies), IDLE, 'a BYE from the caller finds it');
});

t.test('an answered incoming call is ended by the member\'s own BYE without Call-Info', async (t) => {
  const { b, invite } = incoming();
  b.rep(200, 'OK', 'INVITE', { ...invite, toTag: 'p1t', contact: P1, callInfo: CI(1) });
  b.req('ACK', { ...invite, toTag: 'p1t', body: '', ruri: P1 });
  const hold = b.req('INVITE', { callId: 'in1', from: `<${AOR}>`, fromTag: 'p1t', to: `"Bob" <${B}>`, toTag: 'b1', contact: P1, body: SDP('sendonly'), cseq: '1 INVITE' });
  t.match(callInfoOf(hold.notifies), /appearance-index=1;appearance-state=held/, 'kamailio#2583: hold without an index is found');
  const bye = b.req('BYE', { callId: 'in1', from: `<${AOR}>`, fromTag: 'p1t', to: `"Bob" <${B}>`, toTag: 'b1', contact: P1, cseq: '2 BYE' });
  t.equal(callInfoOf(bye.notifies), IDLE);
});

t.test('an unACKed callee appearance is purged after active_pending_timeout', async (t) => {
  const { b, invite } = incoming();
  b.rep(200, 'OK', 'INVITE', { ...invite, toTag: 'p1t', contact: P1, callInfo: CI(1) });
  t.equal(b.state(1), 'active');
  const purged = b.tick(40);
  t.equal(callInfoOf(purged), IDLE);
});

t.test('31: a callee answering without Call-Info gets the next free index', async (t) => {
  const { b, invite } = incoming();
  b.lineSeize(P2, 1);
  b.rep(200, 'OK', 'INVITE', { ...invite, toTag: 'p1t', contact: P1 });
  const ack = b.req('ACK', { ...invite, toTag: 'p1t', body: '', ruri: P1 });
  t.match(callInfoOf(ack.notifies), /appearance-index=2;appearance-state=active/);
  t.equal(b.engine.listAppearances().find((a) => a.index === 2)?.owner, P1);
});

t.test('32: a call between non-SCA AoRs loses its SCA Call-Info and is reported as not SCA', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  const out = b.req('INVITE', { callId: 'x', from: '<sip:300@pbx.example.com>', fromTag: 'a', to: '<sip:400@pbx.example.com>', contact: 'sip:300@10.0.0.30', callInfo: '<sip:x>;appearance-index=1' });
  t.same([out.result, out.edit.removeCallInfo, out.notifies.length], [-1, true, 0]);
});

t.test('33: an intercom Call-Info (answer-after) is kept and changes nothing', async (t) => {
  const { b, call } = outgoing();
  const out = b.req('INVITE', { ...call, callInfo: '<sip:pbx.example.com>;answer-after=0' });
  t.same([out.result, out.edit.removeCallInfo, out.notifies.length], [-1, false, 0]);
  t.equal(b.state(1), 'seized');
  const both = b.req('INVITE', { ...call, callInfo: `${CI(1)}, <http://icons/p1.png>;purpose=icon` });
  t.same(both.edit.keepCallInfo, ['<http://icons/p1.png>;purpose=icon'], 'only the SCA value is removed (D11)');
});

t.test('34: call-info expiry: a terminated;reason=timeout NOTIFY with full state, then gone', async (t) => {
  const b = new Bench();
  b.callInfo(P1, { expires: 60 });
  b.lineSeize(P2, 1, { expires: 15 });
  const first = b.tick(30);
  t.same(first.map((n) => [n.subscriber, n.event]), [[P2, 'line-seize'], [P1, 'call-info']], 'the line-seize expires first and frees its index');
  const out = b.tick(31);
  t.equal(out.length, 1);
  t.equal(header(out[0]!, 'Subscription-State'), 'terminated;reason=timeout');
  t.equal(header(out[0]!, 'Call-Info'), IDLE);
  t.equal(b.engine.countSubscriptions('call-info'), 0);
});

t.test('35: line-seize expiry releases a still-seized index, not one that moved on', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  b.lineSeize(P1, 1);
  const out = b.tick(16);
  const ls = to(out, P1, 'line-seize');
  t.equal(header(ls[0]!, 'Subscription-State'), 'terminated;reason=timeout');
  t.equal(header(ls[0]!, 'Call-Info'), CI(1));
  t.equal(callInfoOf(out), IDLE);
  b.lineSeize(P1, 2);
  b.engine.updateAppearance(AOR, 2, 'progressing', undefined, b.now);
  const kept = b.tick(16);
  t.same(kept.map((n) => n.event), ['line-seize'], 'only the subscriber NOTIFY');
  t.equal(b.state(2), 'progressing');
});

t.test('36: a seized appearance with no call is purged after seized_timeout', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  b.engine.seizeAppearance(AOR, P1, b.now);
  t.equal(b.tick(60).length, 0);
  const out = b.tick(61);
  t.equal(callInfoOf(out), IDLE);
});

t.test('an INVITE without a prior line-seize gets an appearance (deviation D22)', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  const out = b.req('INVITE', { callId: 'c', from: `<${AOR}>`, fromTag: 'x', to: `<${B}>`, contact: P1, callInfo: CI(3) });
  t.equal(callInfoOf(out.notifies), `${CI(3, 'seized')},${IDLE}`);
  const none = b.req('INVITE', { callId: 'd', from: `<${AOR}>`, fromTag: 'y', to: `<${B}>`, contact: P2 });
  t.equal(none.result, 1);
  t.equal(b.state(1), 'seized', 'no Call-Info at all: the lowest free index');
});

t.test('a call on another index than the one seized gives the seized one back at the 180 (kamailio#2583, D22)', async (t) => {
  const { b, call } = outgoing();
  const invite = b.req('INVITE', { ...call, callInfo: CI(2) });
  t.equal(callInfoOf(invite.notifies), `${CI(1, 'seized')},${CI(2, 'seized')},${IDLE}`, 'the call takes the index it names');
  const ringing = b.rep(180, 'Ringing', 'INVITE', { ...call, callInfo: undefined, toTag: 't1', contact: B_CONTACT });
  t.equal(callInfoOf(ringing.notifies), `${CI(2, 'progressing')},${IDLE}`, 'index 1 is no longer lit');
  t.equal(b.state(1), undefined);
  t.equal(b.engine.countSubscriptions('line-seize'), 0, 'the line-seize ended with noresource');
});

t.test('a line with no call-info subscriber stops being shared on a Call-Info-less INVITE', async (t) => {
  const b = new Bench();
  b.engine.seizeAppearance(AOR, P1, b.now);
  const out = b.req('INVITE', { callId: 'c', from: `<${AOR}>`, fromTag: 'x', to: `<${B}>`, contact: P1 });
  t.equal(out.result, -1);
  t.same(b.engine.listAppearances(), []);
});

t.test('non-SCA methods and unparsable messages are left alone', async (t) => {
  const { b, call } = outgoing();
  const update = b.req('UPDATE', call);
  t.same([update.result, update.edit.removeCallInfo], [1, false]);
  const garbage = b.engine.callEvent({ hook: 'request', msg: 'INVITE\r\n\r\n', now: b.now });
  t.equal(garbage.result, -1);
  const noTag = b.req('INVITE', { ...call, fromTag: '' });
  t.equal(noTag.result, -1);
  const prack = b.req('PRACK', call);
  t.same([prack.result, prack.edit.removeCallInfo], [1, true]);
});

t.test('a CANCEL that crosses the 200 does not idle the answered call (deviation D25)', async (t) => {
  const { b, call } = answered();
  b.req('CANCEL', { ...call, toTag: undefined, cseq: '1 CANCEL', callInfo: undefined, body: '' });
  t.equal(b.state(1), 'active');
});

t.test('a member\'s 200 naming an index that carries another call gets a free index (deviation D24)', async (t) => {
  const { b } = answered();
  const invite: DialogOpts = { callId: 'in2', from: `<${B}>`, fromTag: 'b2', to: `<${AOR}>`, contact: B_CONTACT, ruri: AOR };
  b.rep(200, 'OK', 'INVITE', { ...invite, toTag: 'p2t', contact: P2, callInfo: CI(1) });
  const apps = b.engine.listAppearances();
  t.same(apps.map((a) => [a.index, a.owner, a.call_id]), [[1, P1, 'call1'], [2, P2, 'in2']]);
});

t.test('found by the conformance runs: a relayed failure first NOTIFYs the state before it, as the module\'s failure route does', async (t) => {
  const { b, call } = outgoing();
  b.req('INVITE', call);
  const fail = b.failure(486, call);
  t.same(to(fail.notifies, P1).map((n) => header(n, 'Call-Info')), [`${CI(1, 'seized')},${IDLE}`, IDLE]);
  const { b: b2, call: c2 } = outgoing();
  b2.req('INVITE', c2);
  b2.req('CANCEL', { ...c2, callInfo: undefined, body: '' });
  t.equal(to(b2.failure(487, c2).notifies, P1).length, 0, 'not after a CANCEL');
});

t.test('found by the conformance runs: the ACK of a pickup NOTIFYs the line; a member\'s intercom call still gets PAI', async (t) => {
  const { b } = held('sendonly');
  pickupBy(b, P2);
  b.rep(200, 'OK', 'INVITE', { callId: 'pickup1', from: `<${AOR}>`, fromTag: 'p2f', to: `<${AOR}>`, toTag: 'bt2', contact: B_CONTACT });
  const ack = b.req('ACK', { callId: 'pickup1', from: `<${AOR}>`, fromTag: 'p2f', to: `<${AOR}>`, toTag: 'bt2', contact: P2, cseq: '1 ACK' });
  t.match(callInfoOf(ack.notifies), /appearance-index=1;appearance-state=active/);
  const intercom = b.req('INVITE', { callId: 'ic', from: `<${AOR}>`, fromTag: 'x', to: `<${B}>`, contact: P1, callInfo: `<sip:pbx.example.com>;answer-after=0` });
  t.same([intercom.result, intercom.callerShared], [-1, true]);
});
