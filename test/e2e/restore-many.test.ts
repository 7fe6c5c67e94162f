// 5,000 call-info subscribers on 1,000 lines, then kill -9 of the service: after the restart
// every one of them gets its full-state NOTIFY again. The restore's NOTIFYs leave in frames
// Kamailio can read (evapi reads a client into 32 KB); before, they went in one 400 KB frame and
// none arrived.
//
// The test socket stands in for 5,000 phones and behaves like them: it sends a SUBSCRIBE again
// until it is answered (timer E), and again after Retry-After when Kamailio answers 503 because
// the service did not answer in time (its watchdog, on an overloaded machine). Without the
// retransmission, 11 of 5,000 once got no reply: their 202s were dropped by the kernel at this
// socket's full receive buffer (its drops counter in /proc/net/udp; Kamailio's socket dropped
// nothing and answered every SUBSCRIBE). The counts are printed each run.
//
// After the restart the service sends all 5,000 NOTIFYs at once. One socket for all of them, with
// a stock 208 KB receive buffer on a machine busy with other tests, once dropped 5,903 datagrams
// and 267 NOTIFYs were still unanswered when Kamailio gave up resending them after 32 s (tm's
// 408, the service's sca_notify_total{class="timeout"}). The subscribers are spread over sockets
// as phones are, each asking for a large buffer.
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import t from 'tap';
import { T1, T2 } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';
import { dropMeter } from '../support/udp-drops.js';
import { waitUntil } from '../support/wait.js';

const SUBSCRIBERS = 5000;
const LINES = 1000;
let stack: Stack;
// 5,000 phones have 5,000 receive buffers: here 10 sockets, each asking for a large one (the
// kernel caps it at net.core.rmem_max, 208 KB on a stock machine: retransmission stays needed).
const SOCKETS = 10;
const sockets = Array.from({ length: SOCKETS }, () => dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 }));
const ports: number[] = [];
/** The NOTIFY CSeqs each subscriber (its Contact user) received: a retransmission adds none. */
const notifies = new Map<string, Set<number>>();
const finals = new Map<string, (status: number, msg: string) => void>();
const counts = { retransmitted: 0, watchdog503: 0 };

const header = (msg: string, name: string): string => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(msg)?.[1]?.trim() ?? '';

t.before(async () => {
  stack = await startStack({ log_level: 'warn' });
  for (const socket of sockets) {
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    ports.push(socket.address().port);
    socket.on('message', (buf) => receive(socket, buf));
  }
});

function receive(socket: dgram.Socket, buf: Buffer): void {
  {
    const msg = buf.toString();
    if (msg.startsWith('SIP/2.0 ')) {
      const status = Number(msg.slice(8, 11));
      if (status >= 200) finals.get(header(msg, 'Call-ID'))?.(status, msg);
      return;
    }
    if (!msg.startsWith('NOTIFY ')) return;
    const user = /^NOTIFY sip:([^@]+)@/.exec(msg)?.[1] ?? '';
    const seen = notifies.get(user) ?? new Set<number>();
    seen.add(Number(header(msg, 'CSeq').split(' ')[0]));
    notifies.set(user, seen);
    const copy = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].flatMap((h) => [...msg.matchAll(new RegExp(`^${h}:.*$`, 'gim'))].map((m) => m[0]));
    socket.send(`SIP/2.0 200 OK\r\n${copy.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, stack.sipPort, '127.0.0.1');
  }
}
t.teardown(async () => {
  for (const socket of sockets) socket.close();
  await stack.stop();
});

/** One SUBSCRIBE transaction, resent (timer E) until its final reply or 64*T1. */
function transaction(socket: dgram.Socket, callId: string, msg: string): Promise<{ status: number; msg: string }> {
  return new Promise((resolve) => {
    let resend: NodeJS.Timeout | undefined;
    const again = (after: number): void => {
      resend = setTimeout(() => { counts.retransmitted++; socket.send(msg, stack.sipPort, '127.0.0.1'); again(Math.min(after * 2, T2)); }, after);
    };
    const timer = setTimeout(() => { clearTimeout(resend); finals.delete(callId); resolve({ status: 0, msg: '' }); }, 64 * T1);
    finals.set(callId, (status, reply) => { clearTimeout(timer); clearTimeout(resend); finals.delete(callId); resolve({ status, msg: reply }); });
    socket.send(msg, stack.sipPort, '127.0.0.1');
    again(T1);
  });
}

/** Subscriber i: a SUBSCRIBE, and after a 503 with Retry-After the same again (CSeq + 1), as a phone does. */
async function subscribe(i: number): Promise<number> {
  const line = `line${i % LINES}`;
  const callId = `many-${i}@restore`;
  const socket = sockets[i % SOCKETS]!;
  const port = ports[i % SOCKETS]!;
  for (let cseq = 1; ; cseq++) {
    const msg = [
      `SUBSCRIBE sip:${line}@${DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKmany${i}x${cseq};rport`, 'Max-Forwards: 70',
      `From: <sip:${line}@${DOMAIN}>;tag=f${i}`, `To: <sip:${line}@${DOMAIN}>`, `Call-ID: ${callId}`, `CSeq: ${cseq} SUBSCRIBE`,
      `Contact: <sip:s${i}@127.0.0.1:${port}>`, 'Event: call-info', 'Expires: 3600', 'Content-Length: 0', '', '',
    ].join('\r\n');
    const r = await transaction(socket, callId, msg);
    const retryAfter = Number(header(r.msg, 'Retry-After'));
    if (r.status !== 503 || !(retryAfter > 0) || cseq >= 3) return r.status;
    counts.watchdog503++;
    await new Promise((res) => setTimeout(res, retryAfter * 1000));
  }
}

/** Subscribers that received a NOTIFY with CSeq 1 (their first). */
const first = (): number => [...notifies.values()].filter((s) => s.has(1)).length;
/** The highest NOTIFY CSeq each subscriber had when the service was killed. */
let atKill = new Map<string, number>();
const newer = ([u, s]: [string, Set<number>]): boolean => Math.max(...s) > (atKill.get(u) ?? Infinity);
/** Subscribers that received a NOTIFY newer than any they had before the kill. */
const after = (): number => [...notifies].filter(newer).length;

t.test('every one of 5,000 subscribers gets its NOTIFY again after kill -9 and restart', async (t) => {
  t.comment(`${SOCKETS} test sockets, receive buffer ${sockets[0]!.getRecvBufferSize()} bytes each`);
  const meter = () => {
    const m = dropMeter({ ...Object.fromEntries(ports.map((p, k) => [`test${k}`, p])), kamailio: stack.sipPort });
    return { since: () => {
      const d = m.since();
      const test = Object.entries(d.ports).filter(([k]) => k.startsWith('test')).reduce((n, [, v]) => n + v, 0);
      return { testSockets: test, kamailio: d.ports.kamailio, machine: d.machineRcvbufErrors };
    } };
  };
  const drops = meter();
  const codes: number[] = [];
  for (let i = 0; i < SUBSCRIBERS; i += 100) codes.push(...(await Promise.all(Array.from({ length: 100 }, (_, k) => subscribe(i + k)))));
  const byCode: Record<number, number> = {};
  for (const c of codes) byCode[c] = (byCode[c] ?? 0) + 1;
  // Where datagrams were lost, if any: the kernel's counts for each socket; and what it cost.
  const burst = JSON.stringify({ ...drops.since(), ...counts, lateAnswers: (stack.kamailioLog().match(/late answer/g) ?? []).length });
  t.comment(`the burst: ${burst}`);
  t.equal(codes.filter((c) => c === 202).length, SUBSCRIBERS, `all subscribed ${JSON.stringify(byCode)} (${burst})`);
  // Kamailio resends a NOTIFY that is not answered (its timer E), so each one arrives.
  await waitUntil('every subscriber\'s first NOTIFY', () => first() >= SUBSCRIBERS, { timeoutMs: 30_000, last: () => first() });
  t.equal(first(), SUBSCRIBERS, 'each got its first NOTIFY');

  atKill = new Map([...notifies].map(([u, s]) => [u, Math.max(...s)]));
  await stack.killService();
  const t0 = performance.now();
  const restoreDrops = meter();
  await stack.startService();
  await waitUntil('every subscriber\'s NOTIFY after the restart', () => after() >= SUBSCRIBERS, {
    timeoutMs: 60_000,
    last: () => ({ received: after(), drops: restoreDrops.since(), missing: [...notifies].filter((e) => !newer(e)).map(([u]) => u).slice(0, 20) }),
  }).catch(async (err: Error) => {
    // What the service and Kamailio say they sent, for the failure's explanation.
    const metrics = await (await fetch(`http://127.0.0.1:${stack.httpPort}/metrics`)).text();
    t.comment(`stack dir: ${stack.dir}`);
    t.comment(metrics.split('\n').filter((l) => /^(sca_notify|link_|sca_subscriptions)/.test(l)).join('\n'));
    t.comment(execFileSync('kamcmd', ['-s', `unix:${stack.dir}/kamailio_ctl`, 'stats.get_statistics', 'all'], { encoding: 'utf8' })
      .split('\n').filter((l) => /transactions|replies|requests|drop|err/i.test(l)).join('\n'));
    throw err;
  });
  t.equal(after(), SUBSCRIBERS, `every subscriber got its full state again, in ${Math.round(performance.now() - t0)} ms`);
  t.comment(`the restore: ${JSON.stringify(restoreDrops.since())}`);
  t.notMatch(stack.serviceLog(), /evapi connection lost/, 'the link held');
  t.notMatch(stack.kamailioLog(), /evapi.*(too big|overflow|buffer)/i, 'no frame was too large for Kamailio');
});
