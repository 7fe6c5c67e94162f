// The scripted phone's transaction layer over UDP, against a raw socket standing in for the
// proxy: a lost request is sent again (timers E and A), a final reply to an INVITE is sent again
// until its ACK comes, and a 2xx that comes again is ACKed again.
import dgram from 'node:dgram';
import t, { type Test } from 'tap';
import { parseMessage, type SipMessage } from '../../../service/sip/message.js';
import { Phone, T1, T2, hdr } from '../../support/sip-phone.js';
import { until } from '../../support/wait.js';

/** A UDP socket playing the proxy: records every datagram with its arrival time. */
async function proxy(t: Test): Promise<{ port: number; got: Array<{ msg: SipMessage; at: number; port: number }>; next: (n: number) => Promise<void>; send: (raw: string, port: number) => void }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  t.teardown(() => socket.close());
  const got: Array<{ msg: SipMessage; at: number; port: number }> = [];
  let wake: (() => void) | undefined;
  socket.on('message', (buf, rinfo) => {
    const parsed = parseMessage(buf.toString('utf8'));
    if (parsed.ok) got.push({ msg: parsed.value, at: performance.now(), port: rinfo.port });
    wake?.();
  });
  const next = (n: number): Promise<void> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} datagrams`)), 20_000);
    wake = () => { if (got.length >= n) { clearTimeout(timer); wake = undefined; resolve(); } };
    wake();
  });
  return { port: socket.address().port, got, next, send: (raw, port) => socket.send(raw, port, '127.0.0.1') };
}

/** A reply to `req` as the proxy would send it (same Via, From, To with a tag, Call-ID, CSeq). */
const replyTo = (req: SipMessage, code: number, reason: string, extra: string[] = []): string => {
  const h = (n: string) => hdr(req, n)!;
  const to = /;\s*tag=/.test(h('to')) ? h('to') : `${h('to')};tag=uas1`;
  return [`SIP/2.0 ${code} ${reason}`, `Via: ${h('via')}`, `From: ${h('from')}`, `To: ${to}`, `Call-ID: ${h('call-id')}`, `CSeq: ${h('cseq')}`, ...extra, 'Content-Length: 0', '', ''].join('\r\n');
};

async function phoneOn(t: Test, port: number): Promise<Phone> {
  const p = new Phone('p', '100', 'pbx.example.com', port);
  await p.start();
  t.teardown(() => p.stop());
  return p;
}

t.test('retransmission is the default: a SUBSCRIBE nobody answers goes again after T1, 2*T1, 4*T1', async (t) => {
  const px = await proxy(t);
  const p = await phoneOn(t, px.port);
  t.equal(p.retransmit, true);
  const tx = p.request('SUBSCRIBE', { ruri: p.aor, to: `<${p.aor}>`, headers: [['Event', 'call-info']] });
  await px.next(4);
  const gaps = px.got.slice(1).map((g, i) => g.at - px.got[i]!.at);
  // A timer never fires early; under load it may fire late, so only the floor and the doubling are checked.
  t.ok(gaps.every((g, i) => g >= T1 * 2 ** i - 5), `gaps ${gaps.map(Math.round).join(', ')} ms: at least 500, 1000, 2000`);
  t.ok(gaps[1]! > gaps[0]! && gaps[2]! > gaps[1]!, 'doubling');
  t.ok(px.got.every((g) => hdr(g.msg, 'via') === hdr(px.got[0]!.msg, 'via')), 'the same transaction each time');
  px.send(replyTo(px.got[0]!.msg, 202, 'Accepted'), p.port);
  t.equal((await tx.final).status, 202);
  const count = px.got.length;
  await new Promise((r) => setTimeout(r, T1 * 2 + 200));
  t.equal(px.got.length, count, 'nothing more once answered');
});

t.test('a non-INVITE request with a provisional reply goes on every T2 (timer E)', async (t) => {
  const px = await proxy(t);
  const p = await phoneOn(t, px.port);
  const tx = p.request('OPTIONS', { ruri: p.aor, to: `<${p.aor}>` });
  await px.next(1);
  px.send(replyTo(px.got[0]!.msg, 100, 'Trying'), p.port);
  await px.next(2);
  t.ok(px.got[1]!.at - px.got[0]!.at < T2, 'the first retransmission was already armed at T1');
  await px.next(3);
  t.ok(px.got[2]!.at - px.got[1]!.at >= T2 - 5, `then T2 (${Math.round(px.got[2]!.at - px.got[1]!.at)} ms)`);
  px.send(replyTo(px.got[0]!.msg, 200, 'OK'), p.port);
  t.equal((await tx.final).status, 200);
});

t.test('an INVITE stops retransmitting at its first reply; a 2xx that comes again is ACKed again', async (t) => {
  const px = await proxy(t);
  const p = await phoneOn(t, px.port);
  const call = p.invite({ ruri: 'sip:200@pbx.example.com', to: '<sip:200@pbx.example.com>' });
  await px.next(2); // the INVITE and its retransmission after T1
  t.same(px.got.map((g) => g.msg.method), ['INVITE', 'INVITE']);
  const invite = px.got[0]!.msg;
  px.send(replyTo(invite, 180, 'Ringing'), p.port);
  await new Promise((r) => setTimeout(r, T1 * 2 + 200));
  t.equal(px.got.length, 2, 'no INVITE after the 180');
  const ok = replyTo(invite, 200, 'OK', [`Contact: <sip:200@127.0.0.1:${px.port}>`]);
  px.send(ok, p.port);
  t.equal((await call).final.status, 200);
  await px.next(3);
  t.equal(px.got[2]!.msg.method, 'ACK');
  px.send(ok, p.port); // our ACK "was lost": the UAS sends its 2xx again
  await px.next(4);
  t.equal(px.got[3]!.msg.method, 'ACK', 'ACKed again');
  t.equal(hdr(px.got[3]!.msg, 'via'), hdr(px.got[2]!.msg, 'via'), 'the same ACK');
});

t.test('a failure that comes again is ACKed again (hop by hop, the INVITE\'s branch)', async (t) => {
  const px = await proxy(t);
  const p = await phoneOn(t, px.port);
  const call = p.invite({ ruri: 'sip:200@pbx.example.com', to: '<sip:200@pbx.example.com>' });
  await px.next(1);
  const busy = replyTo(px.got[0]!.msg, 486, 'Busy Here');
  px.send(busy, p.port);
  t.equal((await call).final.status, 486);
  await px.next(2);
  px.send(busy, p.port);
  await px.next(3);
  t.same(px.got.slice(1).map((g) => [g.msg.method, hdr(g.msg, 'via')]), [['ACK', hdr(px.got[0]!.msg, 'via')], ['ACK', hdr(px.got[0]!.msg, 'via')]]);
});

t.test('the UAS sends its 2xx again until the ACK comes, then stops', async (t) => {
  const px = await proxy(t);
  const p = await phoneOn(t, px.port);
  const invite = [
    `INVITE ${p.contact} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${px.port};branch=z9hG4bKuas1`, 'Max-Forwards: 70', 'From: <sip:200@x>;tag=a',
    `To: <${p.aor}>`, 'Call-ID: uas-test', 'CSeq: 7 INVITE', `Contact: <sip:200@127.0.0.1:${px.port}>`, 'Content-Length: 0', '', '',
  ].join('\r\n');
  p.onInvite = (r) => p.respond(r, 200, 'OK');
  px.send(invite, p.port);
  await px.next(3); // the 2xx, then again after T1 and 2*T1
  t.ok(px.got.every((g) => g.msg.status === 200 && hdr(g.msg, 'cseq') === '7 INVITE'), 'the same 2xx three times');
  t.ok(px.got[2]!.at - px.got[1]!.at >= T1 * 2 - 50, 'doubling');
  const toTag = /tag=([^;]+)$/.exec(hdr(px.got[0]!.msg, 'to')!)![1];
  px.send([`ACK ${p.contact} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${px.port};branch=z9hG4bKack1`, 'Max-Forwards: 70', 'From: <sip:200@x>;tag=a',
    `To: <${p.aor}>;tag=${toTag}`, 'Call-ID: uas-test', 'CSeq: 7 ACK', 'Content-Length: 0', '', ''].join('\r\n'), p.port);
  await p.waitFor((r) => r.msg.method === 'ACK', 2000, 'ACK');
  const count = px.got.length;
  await new Promise((r) => setTimeout(r, T2 + 300));
  t.equal(px.got.length, count, 'no 2xx after the ACK');
});

t.test('a CANCEL is sent again until its 200', async (t) => {
  const px = await proxy(t);
  const p = await phoneOn(t, px.port);
  const tx = p.request('INVITE', { ruri: 'sip:200@pbx.example.com', to: '<sip:200@pbx.example.com>' });
  await px.next(1);
  px.send(replyTo(px.got[0]!.msg, 180, 'Ringing'), p.port);
  await until(() => tx.responses.length > 0, 2000, 'the 180 at the phone');
  p.cancel(tx);
  await px.next(3);
  t.same(px.got.slice(1).map((g) => g.msg.method), ['CANCEL', 'CANCEL'], 'unanswered, it goes again');
  px.send(replyTo(px.got[1]!.msg, 200, 'OK'), p.port);
  const count = px.got.length;
  await new Promise((r) => setTimeout(r, T1 * 4 + 200));
  t.equal(px.got.length, count, 'not after its 200');
  px.send(replyTo(px.got[0]!.msg, 487, 'Request Terminated'), p.port);
  t.equal((await tx.final).status, 487);
});

t.test('a load generator can turn it off: one datagram per request', async (t) => {
  const px = await proxy(t);
  const p = await phoneOn(t, px.port);
  p.retransmit = false;
  p.txTimeoutMs = 1500;
  await t.rejects(p.request('OPTIONS', { ruri: p.aor, to: `<${p.aor}>` }).final, /no final reply/);
  t.equal(px.got.length, 1);
});
