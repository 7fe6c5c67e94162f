// What a hostile or careless peer cannot do to the SCA engine: touch another phone's subscription
// through its Contact, hold a seize forever, grow memory without bound, get a value into a header
// line, or subscribe to a line it does not belong to.
import t from 'tap';
import { loadConfig } from '../../../service/config.js';
import { renderNotify } from '../../../service/kamailio/wire.js';
import { Access, isLoopback } from '../../../service/rpc/access.js';
import { AOR, Bench, CI, P1, P2, P3, SDP, header } from '../../support/sip-fixture.js';

t.test('an in-dialog SUBSCRIBE with another Call-ID or tags gets 481 and leaves the subscription alone', async (t) => {
  const b = new Bench();
  const victim = b.callInfo(P1);
  const wrongTo = b.subscribe(P1, { callId: victim.callId, fromTag: victim.fromTag, toTag: 'forged' });
  t.equal(wrongTo.reply.code, 481, 'wrong To-tag');
  const wrongCallId = b.subscribe(P1, { callId: 'other-call', fromTag: victim.fromTag, toTag: victim.toTag, expires: 0 });
  t.equal(wrongCallId.reply.code, 481, 'an unsubscribe with another Call-ID');
  const wrongFrom = b.subscribe(P1, { callId: victim.callId, fromTag: 'x', toTag: victim.toTag, expires: 0 });
  t.equal(wrongFrom.reply.code, 481, 'an unsubscribe with another From-tag');
  t.equal(b.engine.showSubscription(AOR, 'call-info', P1, b.now)[0]?.call_id, victim.callId, 'still there, unchanged');
  t.equal(b.subscribe(P1, { callId: victim.callId, fromTag: victim.fromTag, toTag: victim.toTag }).reply.code, 202, 'the real dialog refreshes');
});

t.test('re-seizing does not restart the stale timer: a seize without a call is released 120 s after the first', async (t) => {
  const b = new Bench();
  b.callInfo(P2);
  const s = b.lineSeize(P1, 1);
  b.now += 100;
  t.equal(b.lineSeize(P1, 1, { callId: s.callId, fromTag: s.fromTag }).out.reply.code, 200, 'a re-seize is granted');
  b.tick(21);
  t.equal(b.state(1), undefined, 'released at 121 s from the first seize');
});

t.test('memory is bounded: per-line and total caps refuse new subscriptions, refreshes go through', async (t) => {
  const b = new Bench({ max_subscriptions_per_line: 2, max_subscriptions: 3 });
  const first = b.callInfo(P1);
  b.callInfo(P2);
  const third = b.callInfo(P3);
  t.same([third.out.reply.code, third.out.reply.reason], [403, 'Forbidden - Too Many Subscriptions On This Line']);
  t.equal(b.callInfo(P1, { callId: first.callId, fromTag: first.fromTag, toTag: first.toTag }).out.reply.code, 202, 'an existing subscriber refreshes');
  b.callInfo(P1, { ruri: 'sip:200@pbx.example.com', to: 'sip:200@pbx.example.com' });
  const over = b.callInfo(P2, { ruri: 'sip:300@pbx.example.com', to: 'sip:300@pbx.example.com' });
  t.same([over.out.reply.code, header(over.out.reply, 'Retry-After')], [503, '60']);
});

t.test('a refused seize leaves no line behind; lines left empty are dropped by the purge', async (t) => {
  const b = new Bench({ max_appearances: 2 });
  const refused = b.subscribe(P1, { event: 'line-seize', expires: 15, callInfo: CI(9), ruri: 'sip:900@pbx.example.com', to: 'sip:900@pbx.example.com' });
  t.equal(refused.reply.code, 480);
  t.notOk(b.engine.ctx.appearances.isShared('sip:900@pbx.example.com'), 'no line for the refused seize');
  b.callInfo(P1, { expires: 10 });
  t.ok(b.engine.ctx.appearances.isShared(AOR));
  b.tick(11);
  t.notOk(b.engine.ctx.appearances.isShared(AOR), 'gone once its last subscription expired');
  t.ok(b.takeWrites().some((w) => w.kind === 'line' && w.aor === AOR && !w.shared), 'and from the store');
});

t.test('values too long for their rows are refused at the door', async (t) => {
  const b = new Bench();
  t.equal(b.callInfo(P1, { callId: 'c'.repeat(300) }).out.reply.code, 400, 'a Call-ID over 255 characters');
  t.equal(b.callInfo(P1, { fromTag: 't'.repeat(200) }).out.reply.code, 400, 'a tag over 128 characters');
  b.callInfo(P1);
  const invite = b.req('INVITE', { callId: 'x'.repeat(300), from: `<${AOR}>`, fromTag: 'f', to: '<sip:200@far.example.net>', contact: P1, callInfo: CI(1), body: SDP(null) });
  t.equal(invite.result, -1, 'an INVITE with such a Call-ID is not an SCA call');
  t.equal(b.engine.listAppearances().length, 0);
});

t.test('a CR or LF from the network never starts a header line of its own', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  b.callInfo(P2);
  b.lineSeize(P1, 1);
  const r = b.engine.updateAppearance(AOR, 1, 'active', 'sip:x@y>;\r\nX-Injected: 1', b.now);
  t.ok(r.ok);
  for (const n of r.ok ? r.notifies : []) {
    const wire = renderNotify(n).hdrs;
    t.notMatch(wire, /\r\nX-Injected/, 'no injected header');
    t.equal(wire.split('\r\n').filter((l) => l !== '').length, n.headers.length, 'one line per header');
  }
});

t.test('line membership: the line\'s user, its listed members, or anyone with the open policy', async (t) => {
  const members = new Bench({ aor_members: { [AOR]: ['101', 'boss@pbx.example.com'] } });
  t.equal(members.engine.subscribe({ msg: subscribeAs(P1), to_tag: 'a', auth_user: '100', now: members.now }).reply.code, 202, 'the line\'s user');
  t.equal(members.engine.subscribe({ msg: subscribeAs(P2), to_tag: 'b', auth_user: '101', now: members.now }).reply.code, 202, 'a member');
  t.equal(members.engine.subscribe({ msg: subscribeAs(P3), to_tag: 'c', auth_user: '666', now: members.now }).reply.code, 403, 'anyone else');
  t.equal(members.engine.subscribe({ msg: subscribeAs('sip:boss@10.0.0.9'), to_tag: 'd', auth_user: 'boss@pbx.example.com', now: members.now }).reply.code, 202, 'a member named user@domain');
  const user = new Bench({ line_membership: 'user', aor_members: { [AOR]: ['101'] } });
  t.equal(user.engine.subscribe({ msg: subscribeAs(P2), to_tag: 'b', auth_user: '101', now: user.now }).reply.code, 403, '"user": members do not count');
  const open = new Bench({ line_membership: 'open' });
  t.equal(open.engine.subscribe({ msg: subscribeAs(P3), to_tag: 'c', auth_user: '666', now: open.now }).reply.code, 202, '"open": the native module');
  t.equal(members.engine.subscribe({ msg: subscribeAs('sip:x@10.0.0.99'), to_tag: 'e', now: members.now }).reply.code, 202, 'unauthenticated (auth off in the proxy): not checked');
});

t.test('addresses and settings an attacker or a typo could abuse', async (t) => {
  t.notOk(isLoopback('127.0.0.1.evil.com'));
  t.ok(isLoopback('127.0.0.2'));
  t.notOk(loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:99999'] } }).ok, 'an evapi port over 65535');
  t.notOk(loadConfig({ env: {}, overrides: { purge_expired_interval: 3e6 } }).ok, 'a purge interval Node cannot time');
  const open = new Access(undefined);
  t.ok(open.hostAllowed('127.0.0.1:8090'));
  t.ok(open.hostAllowed('localhost:8090'));
  t.ok(open.hostAllowed('[::1]:8090'));
  t.notOk(open.hostAllowed('rebind.attacker.example:8090'), 'without a token, a foreign Host is refused (DNS rebinding)');
  t.ok(new Access('x'.repeat(16)).hostAllowed('sca.example.com'), 'with a token any Host may ask');
});

function subscribeAs(contact: string): string {
  return `SUBSCRIBE ${AOR} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bK${Math.random()}\r\nFrom: <${AOR}>;tag=f${Math.random()}\r\nTo: <${AOR}>\r\nCall-ID: ${Math.random()}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <${contact}>\r\nEvent: call-info\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n`;
}
