import t from 'tap';
import { formatCallInfo, parseCallInfo, toScaCallInfo } from '../../../service/sip/call-info.js';
import { parseExpires } from '../../../service/sip/expires.js';
import { headerValues, parseMessage } from '../../../service/sip/message.js';
import { parseNameAddr, tagOf } from '../../../service/sip/name-addr.js';
import { formatReplaces, parseReplaces } from '../../../service/sip/replaces.js';
import { isSdpHold } from '../../../service/sip/sdp-hold.js';
import { formatSubscriptionState, parseSubscriptionState } from '../../../service/sip/subscription-state.js';
import { aorDomain, canonicalAor, extractAor, parseUri } from '../../../service/sip/uri.js';

t.test('SIP URIs: parts, ports, IPv6, params; bad ones are errors, not throws', async (t) => {
  const u = parseUri('sip:100@pbx.example.com:5060;transport=tcp?X=1');
  t.ok(u.ok);
  if (u.ok) t.same([u.value.scheme, u.value.user, u.value.host, u.value.port, u.value.params, u.value.headers], ['sip', '100', 'pbx.example.com', 5060, [['transport', 'tcp']], 'X=1']);
  const v6 = parseUri('sips:alice@[2001:db8::1]:5061');
  t.ok(v6.ok && v6.value.host === '[2001:db8::1]' && v6.value.port === 5061);
  for (const bad of ['', 'http://x', 'sip:', 'sip:@host', 'sip:a@ho st', 'sip:a@host:99999', 'sip:a@host;=x']) {
    const r = parseUri(bad);
    t.notOk(r.ok, bad);
    if (!r.ok) t.equal(r.error.kind, 'sip-grammar');
  }
});

t.test('AoR keys are normalised the way the module does it', async (t) => {
  t.equal(extractAor('sip:100@pbx.example.com;transport=tcp'), 'sip:100@pbx.example.com');
  t.equal(extractAor('sip:100@pbx.example.com:5060'), 'sip:100@pbx.example.com:5060', 'the port stays');
  t.equal(aorDomain('sip:100@pbx.example.com:5060'), 'pbx.example.com:5060');
  t.equal(aorDomain('sip:pbx.example.com'), 'pbx.example.com');
  t.equal(canonicalAor('sip:100@pbx.example.com', 'sip:100@10.0.0.11:5060'), 'sip:100@pbx.example.com');
  t.equal(canonicalAor('sip:100@pbx.example.com:5080;user=phone', 'sip:polycom7@10.0.0.11'), 'sip:polycom7@pbx.example.com:5080', 'contact user at the From host');
  t.equal(canonicalAor('sip:100@pbx.example.com', 'sip:10.0.0.11'), 'sip:100@pbx.example.com', 'a contact without a user changes nothing');
});

t.test('name-addr: display names (quoted, escaped, token), tags, addr-spec form', async (t) => {
  const a = parseNameAddr('"Bob \\"B\\"" <sip:200@far.example.net>;tag=t1');
  t.ok(a.ok);
  if (a.ok) t.same([a.value.display, a.value.uri, tagOf(a.value)], ['"Bob \\"B\\""', 'sip:200@far.example.net', 't1']);
  const b = parseNameAddr('Bob Smith <sip:200@far.example.net>');
  t.ok(b.ok && b.value.display === 'Bob Smith');
  const c = parseNameAddr('sip:100@pbx.example.com;tag=x');
  t.ok(c.ok && c.value.uri === 'sip:100@pbx.example.com' && c.ok && tagOf(c.value) === 'x', 'params of an addr-spec belong to the header');
  const d = parseNameAddr('"a<b" <sip:x@y>');
  t.ok(d.ok && d.value.uri === 'sip:x@y', 'a < inside quotes is not the URI');
  for (const bad of ['', '<sip:x@y', '"unterminated <sip:x@y>', '<mailto:x@y>', 'sip:x@y;tag=']) t.notOk(parseNameAddr(bad).ok, bad);
});

t.test('Call-Info: several values, * index, quoted appearance-uri with escapes, unknown params kept', async (t) => {
  const text = '<sip:pbx.example.com>;appearance-index=1;appearance-state=active;appearance-uri="\\"Bob\\" <sip:200@far.example.net>";x-foo=1,<sip:pbx.example.com>;appearance-index=*;appearance-state=idle';
  const parsed = parseCallInfo(text);
  t.ok(parsed.ok);
  if (!parsed.ok) return;
  t.equal(parsed.value.length, 2);
  t.equal(formatCallInfo(parsed.value), text, 'serialises back byte for byte');
  const first = toScaCallInfo(parsed.value[0]!);
  t.ok(first.ok && first.value.index === 1 && first.value.state === 'active' && first.value.appearanceUri === '"Bob" <sip:200@far.example.net>');
  const star = toScaCallInfo(parsed.value[1]!);
  t.ok(star.ok && star.value.index === '*' && star.value.state === 'idle');
  const bad = parseCallInfo('<sip:x>;appearance-index=1;appearance-state=ringing');
  t.ok(bad.ok && !toScaCallInfo(bad.value[0]!).ok, 'an unknown state is an error');
  t.notOk(parseCallInfo('sip:x;appearance-index=1').ok);
  t.notOk(parseCallInfo('<sip:x;appearance-index=1').ok);
  const letters = parseCallInfo('<sip:x>;appearance-index=one');
  t.ok(letters.ok && !toScaCallInfo(letters.value[0]!).ok);
});

t.test('Subscription-State, Expires and Replaces round-trip; malformed input is an error', async (t) => {
  t.equal(formatSubscriptionState({ state: 'active', expires: 300, reason: undefined }), 'active;expires=300');
  t.equal(formatSubscriptionState({ state: 'terminated', expires: undefined, reason: 'noresource' }), 'terminated;reason=noresource');
  const s = parseSubscriptionState('terminated;reason=timeout');
  t.ok(s.ok && s.value.state === 'terminated' && s.value.reason === 'timeout');
  t.notOk(parseSubscriptionState('gone').ok);
  t.notOk(parseSubscriptionState('active;expires=soon').ok);
  t.same(parseExpires(' 3600 '), { ok: true, value: 3600 });
  t.notOk(parseExpires('-1').ok);
  t.notOk(parseExpires('').ok);
  const r = parseReplaces('abc@host;to-tag=t1;from-tag=f1');
  t.ok(r.ok);
  if (r.ok) t.equal(formatReplaces(r.value), 'abc@host;to-tag=t1;from-tag=f1');
  t.notOk(parseReplaces('abc@host;to-tag=t1').ok);
});

t.test('SDP hold detection: media and session level, null addresses, trickle ICE, disabled streams', async (t) => {
  const sdp = (...lines: string[]): string => ['v=0', 'o=- 1 1 IN IP4 1.2.3.4', 's=-', 't=0 0', ...lines].join('\r\n');
  t.ok(isSdpHold(sdp('c=IN IP4 1.2.3.4', 'm=audio 4000 RTP/AVP 0', 'a=sendonly')));
  t.ok(isSdpHold(sdp('c=IN IP4 1.2.3.4', 'm=audio 4000 RTP/AVP 0', 'a=inactive')));
  t.ok(isSdpHold(sdp('c=IN IP4 1.2.3.4', 'a=sendonly', 'm=audio 4000 RTP/AVP 0')), 'session-level sendonly');
  t.notOk(isSdpHold(sdp('c=IN IP4 1.2.3.4', 'a=sendonly', 'm=audio 4000 RTP/AVP 0', 'a=sendrecv')), 'media level overrides session level');
  t.ok(isSdpHold(sdp('c=IN IP4 0.0.0.0', 'm=audio 4000 RTP/AVP 0')));
  t.ok(isSdpHold(sdp('c=IN IP6 ::', 'm=audio 4000 RTP/AVP 0')));
  t.notOk(isSdpHold(sdp('c=IN IP4 0.0.0.0', 'm=audio 4000 RTP/AVP 0', 'c=IN IP4 1.2.3.4')), 'a media address overrides the session one');
  t.notOk(isSdpHold(sdp('c=IN IP4 1.2.3.4', 'm=audio 4000 RTP/AVP 0', 'a=recvonly')), 'recvonly is not hold');
  t.notOk(isSdpHold(sdp('c=IN IP4 1.2.3.4', 'a=ice-options:trickle', 'm=audio 9 UDP/TLS/RTP/SAVPF 0', 'a=sendonly')), 'trickle ICE placeholder');
  t.notOk(isSdpHold(sdp('c=IN IP4 1.2.3.4', 'm=video 0 RTP/AVP 96', 'a=inactive', 'm=audio 4000 RTP/AVP 0')), 'a disabled stream says nothing');
  t.notOk(isSdpHold(''));
  t.notOk(isSdpHold('garbage'));
});

t.test('SIP messages: compact header names, folding, replies carry the CSeq method', async (t) => {
  const raw = 'SIP/2.0 200 OK\r\nv: SIP/2.0/UDP x\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\ni: abc\r\nCSeq: 7 invite\r\nm: <sip:a@1.2.3.4>,\r\n <sip:b@1.2.3.4>\r\n\r\nbody';
  const m = parseMessage(raw);
  t.ok(m.ok);
  if (!m.ok) return;
  t.same([m.value.kind, m.value.status, m.value.method, m.value.body], ['reply', 200, 'INVITE', 'body']);
  t.same(headerValues(m.value, 'contact'), ['<sip:a@1.2.3.4>', '<sip:b@1.2.3.4>']);
  t.notOk(parseMessage('HELLO\r\n\r\n').ok);
  t.notOk(parseMessage('INVITE sip:x SIP/2.0\r\nno colon here\r\n\r\n').ok);
});
