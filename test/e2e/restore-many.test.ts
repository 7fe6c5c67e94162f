// 5,000 call-info subscribers on 1,000 lines, then kill -9 of the service: after the restart
// every one of them gets its full-state NOTIFY again. The restore's NOTIFYs leave in frames
// Kamailio can read (evapi reads a client into 32 KB); before, they went in one 400 KB frame and
// none arrived.
import dgram from 'node:dgram';
import t from 'tap';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';

const SUBSCRIBERS = 5000;
const LINES = 1000;
let stack: Stack;
const socket = dgram.createSocket('udp4');
let port = 0;
/** NOTIFYs received per subscriber (its Contact user). */
const notifies = new Map<string, number>();
const finals = new Map<string, (status: number) => void>();

const header = (msg: string, name: string): string => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(msg)?.[1]?.trim() ?? '';

t.before(async () => {
  stack = await startStack({ log_level: 'warn' });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  port = socket.address().port;
  socket.on('message', (buf) => {
    const msg = buf.toString();
    if (msg.startsWith('SIP/2.0 ')) {
      const status = Number(msg.slice(8, 11));
      if (status >= 200) finals.get(header(msg, 'Call-ID'))?.(status);
      return;
    }
    if (!msg.startsWith('NOTIFY ')) return;
    const user = /^NOTIFY sip:([^@]+)@/.exec(msg)?.[1] ?? '';
    notifies.set(user, (notifies.get(user) ?? 0) + 1);
    const copy = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].flatMap((h) => [...msg.matchAll(new RegExp(`^${h}:.*$`, 'gim'))].map((m) => m[0]));
    socket.send(`SIP/2.0 200 OK\r\n${copy.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, stack.sipPort, '127.0.0.1');
  });
});
t.teardown(async () => {
  socket.close();
  await stack.stop();
});

function subscribe(i: number): Promise<number> {
  const line = `line${i % LINES}`;
  const callId = `many-${i}@restore`;
  const msg = [
    `SUBSCRIBE sip:${line}@${DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKmany${i};rport`, 'Max-Forwards: 70',
    `From: <sip:${line}@${DOMAIN}>;tag=f${i}`, `To: <sip:${line}@${DOMAIN}>`, `Call-ID: ${callId}`, 'CSeq: 1 SUBSCRIBE',
    `Contact: <sip:s${i}@127.0.0.1:${port}>`, 'Event: call-info', 'Expires: 3600', 'Content-Length: 0', '', '',
  ].join('\r\n');
  return new Promise((resolve) => {
    const timer = setTimeout(() => { finals.delete(callId); resolve(0); }, 8000);
    finals.set(callId, (s) => { clearTimeout(timer); finals.delete(callId); resolve(s); });
    socket.send(msg, stack.sipPort, '127.0.0.1');
  });
}

const received = (): number => [...notifies.values()].filter((n) => n >= 2).length;

t.test('every one of 5,000 subscribers gets its NOTIFY again after kill -9 and restart', async (t) => {
  const codes: number[] = [];
  for (let i = 0; i < SUBSCRIBERS; i += 100) codes.push(...(await Promise.all(Array.from({ length: 100 }, (_, k) => subscribe(i + k)))));
  const counts: Record<number, number> = {};
  for (const c of codes) counts[c] = (counts[c] ?? 0) + 1;
  t.equal(codes.filter((c) => c === 202).length, SUBSCRIBERS, `all subscribed ${JSON.stringify(counts)}`);
  for (let i = 0; i < 200 && notifies.size < SUBSCRIBERS; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(notifies.size, SUBSCRIBERS, 'each got its first NOTIFY');
  await stack.killService();
  const t0 = performance.now();
  await stack.startService();
  for (let i = 0; i < 600 && received() < SUBSCRIBERS; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(received(), SUBSCRIBERS, `every subscriber got its full state again, in ${Math.round(performance.now() - t0)} ms`);
  t.notMatch(stack.serviceLog(), /evapi connection lost/, 'the link held');
  t.notMatch(stack.kamailioLog(), /evapi.*(too big|overflow|buffer)/i, 'no frame was too large for Kamailio');
});
