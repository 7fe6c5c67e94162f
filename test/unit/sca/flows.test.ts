// Where a subscription's NOTIFYs go and where a pickup goes: the flow of the last SUBSCRIBE (its
// source address, port, transport and local socket) is part of the subscription, refreshed by
// every SUBSCRIBE; a route set still wins; a 2xx's flow is where a pickup of that party goes.
// And how the link renders them for t_uac_send() and the resume route.
import t from 'tap';
import type { Flow } from '../../../service/effects.js';
import { flowUri, renderNotify, resume } from '../../../service/kamailio/wire.js';
import { inviteEdit } from '../../../service/modules/sca.js';
import { flowFromFields } from '../../../service/sca/schemas.js';
import { AOR, B, Bench, CI, P1, P2, SDP, reply, request, subscribeMsg, to } from '../../support/sip-fixture.js';

const NAT_UDP: Flow = { proto: 'udp', address: '198.51.100.7', port: 40001, socket: 'udp:192.0.2.1:5060' };
const NAT_TCP: Flow = { proto: 'tcp', address: '198.51.100.7', port: 51234, socket: 'tcp:192.0.2.1:5060' };
const BOB: Flow = { proto: 'udp', address: '203.0.113.9', port: 5062, socket: 'udp:192.0.2.1:5060' };

const sub = (b: Bench, contact: string, flow: Flow | undefined, o: Parameters<typeof subscribeMsg>[1] = {}, toTag = 'tt1') =>
  b.engine.subscribe({ msg: subscribeMsg(contact, o), to_tag: toTag, flow, now: b.now });

t.test('a call-info subscription\'s NOTIFYs carry the flow of its SUBSCRIBE; the R-URI stays its Contact', async (t) => {
  const b = new Bench();
  const out = sub(b, P1, NAT_UDP, { callId: 'c1', fromTag: 'f1' });
  t.equal(out.reply.code, 202);
  t.same(out.notifies[0]!.flow, NAT_UDP);
  t.equal(out.notifies[0]!.ruri, P1);
  // A group NOTIFY (another member's seize) goes there too.
  b.engine.subscribe({ msg: subscribeMsg(P2, { callId: 'c2', fromTag: 'f2' }), to_tag: 'tt2', now: b.now });
  const seize = b.lineSeize(P2, 1);
  t.same(to(seize.out.notifies, P1).map((n) => n.flow), [NAT_UDP]);
  t.same(to(seize.out.notifies, P2).map((n) => n.flow), [undefined], 'a SUBSCRIBE without a flow: to its Contact, as the module');
});

t.test('every SUBSCRIBE refreshes the flow: a phone that reconnects is reached on its new connection', async (t) => {
  const b = new Bench();
  sub(b, P1, NAT_TCP, { callId: 'c1', fromTag: 'f1' }, 'tt1');
  const moved: Flow = { ...NAT_TCP, port: 51999 };
  const refresh = sub(b, P1, moved, { callId: 'c1', fromTag: 'f1', toTag: 'tt1' });
  t.equal(refresh.reply.code, 202);
  t.same(refresh.notifies[0]!.flow, moved);
  t.same(to(b.lineSeize(P2, 1).out.notifies, P1)[0]!.flow, moved, 'later NOTIFYs too');
  const flowWrites = b.takeWrites().flatMap((w) => (w.kind === 'flow' && w.subscriber === P1 ? [w.value] : []));
  t.same(flowWrites, [NAT_TCP, moved], 'the flow row is written when it changes, not at every NOTIFY');
});

t.test('a line-seize NOTIFY goes to its own SUBSCRIBE\'s flow', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  const out = b.engine.subscribe({ msg: subscribeMsg(P1, { event: 'line-seize', expires: 15, callInfo: CI(1) }), to_tag: 'ls1', flow: NAT_TCP, now: b.now });
  t.equal(out.reply.code, 200);
  t.same(to(out.notifies, P1, 'line-seize').map((n) => n.flow), [NAT_TCP]);
});

t.test('notify_to_flow false sends to the Contact as the module does, except a Contact with ;ob (RFC 5626)', async (t) => {
  const b = new Bench({ notify_to_flow: false });
  t.equal(sub(b, P1, NAT_UDP, {}, 'a').notifies[0]!.flow, undefined);
  const ob = 'sip:100@10.0.0.99:5060;transport=tcp;ob';
  t.same(sub(b, ob, NAT_TCP, {}, 'b').notifies[0]!.flow, NAT_TCP);
});

t.test('the wire: a flow is the next hop and send socket, a TCP/TLS one reused only; a route set wins', async (t) => {
  const b = new Bench();
  const n = sub(b, P1, NAT_TCP).notifies[0]!;
  const w = renderNotify(n);
  t.same([w.ruri, w.nexthop, w.socket, w.reuse], [P1, 'sip:198.51.100.7:51234;transport=tcp', 'tcp:192.0.2.1:5060', '198.51.100.7:51234']);
  const udp = renderNotify({ ...n, flow: NAT_UDP });
  t.same([udp.nexthop, udp.socket, udp.reuse], ['sip:198.51.100.7:40001;transport=udp', 'udp:192.0.2.1:5060', ''], 'UDP: no connection to reuse');
  const routed = renderNotify({ ...n, route: ['<sip:edge.example.com;lr>'] });
  t.same([routed.nexthop, routed.reuse, routed.socket], ['sip:edge.example.com;lr', '', ''], 'a route set decides the next hop, and its socket');
  const none = renderNotify({ ...n, flow: undefined });
  t.same([none.nexthop, none.socket, none.reuse], ['', '', '']);
  t.equal(flowUri({ proto: 'tls', address: '2001:db8::7', port: 5061, socket: 'tls:[2001:db8::1]:5061' }), 'sip:[2001:db8::7]:5061;transport=tls');
});

t.test('Kamailio\'s flow fields become a flow; anything else none', async (t) => {
  t.same(flowFromFields({ proto: 'TLS', src_ip: '198.51.100.7', src_port: 40000, rcv_ip: '192.0.2.1', rcv_port: 5061 }),
    { proto: 'tls', address: '198.51.100.7', port: 40000, socket: 'tls:192.0.2.1:5061' });
  t.same(flowFromFields({ proto: 'udp', src_ip: '2001:db8::7', src_port: 5060, rcv_ip: '2001:db8::1', rcv_port: 5060 })?.socket, 'udp:[2001:db8::1]:5060');
  t.equal(flowFromFields({}), undefined);
  t.equal(flowFromFields({ proto: 'udp', src_ip: '1.2.3.4\r\nX: y', src_port: 5060, rcv_ip: '192.0.2.1', rcv_port: 5060 }), undefined, 'nothing but an address');
  t.equal(flowFromFields({ proto: 'carrier-pigeon', src_ip: '1.2.3.4', src_port: 5060, rcv_ip: '192.0.2.1', rcv_port: 5060 }), undefined);
  t.equal(flowFromFields({ proto: 'udp', src_ip: '1.2.3.4', src_port: 0, rcv_ip: '192.0.2.1', rcv_port: 5060 }), undefined);
});

t.test('a pickup of a held call goes to where the held party answered from ($du, $fs), its Contact as R-URI', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  b.callInfo(P2);
  const d = { callId: 'call1', from: `<${AOR}>`, fromTag: 'f1', to: `<${B}>`, contact: P1, callInfo: CI(1) };
  b.req('INVITE', { ...d, body: SDP(null) });
  b.engine.callEvent({ hook: 'reply', msg: reply(200, 'OK', 'INVITE', { ...d, toTag: 'bt', contact: 'sip:200@10.1.1.1:5060' }), flow: BOB, now: b.now });
  b.req('ACK', { ...d, toTag: 'bt', callInfo: undefined });
  b.req('INVITE', { ...d, toTag: 'bt', cseq: '2 INVITE', body: SDP('sendonly') });
  b.engine.callEvent({ hook: 'reply', msg: reply(200, 'OK', 'INVITE', { ...d, toTag: 'bt', cseq: '2 INVITE', contact: 'sip:200@10.1.1.1:5060' }), flow: BOB, now: b.now });
  t.equal(b.state(1), 'held');
  const pickup = b.engine.callEvent({ hook: 'request', msg: request('INVITE', { callId: 'pick', from: `<${AOR}>`, fromTag: 'p2', to: `<${AOR}>`, contact: P2, callInfo: CI(1), body: SDP(null) }), now: b.now });
  t.equal(pickup.edit.ruri, 'sip:200@10.1.1.1:5060');
  t.same(pickup.edit.dst, BOB);
  const r = resume({ tindex: 1, tlabel: 2 }, undefined, inviteEdit(pickup));
  t.same([r.ruri, r.du, r.fs], ['sip:200@10.1.1.1:5060', 'sip:203.0.113.9:5062;transport=udp', 'udp:192.0.2.1:5060']);
  t.same([r.flags], ['sca_caller,sca_pickup']);
});
