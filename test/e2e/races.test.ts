// Races and faults through the real proxy: 1,000 competing line-seizes, a seize racing an
// incoming call's answer on the same index, two phones picking up one held call, Kamailio
// restarted under traffic, the link to the service cut in the middle of a transaction.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { SipMessage } from '../../service/sip/message.js';
import { rpc } from '../support/rpc.js';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, lineSeize, lineState, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

let stack: Stack;
t.before(async () => {
  stack = await startStack({ log_level: 'info' });
});
t.teardown(async () => stack?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const aorOf = (user: string) => `sip:${user}@${DOMAIN}`;
const CI = (index: number): [string, string] => ['Call-Info', `<sip:${DOMAIN}>;appearance-index=${index}`];

interface Appearance { aor: string; index: number; state: string; owner: string; call_id: string }
interface Subscription { aor: string; event: string; subscriber: string }
const appearances = async (aor?: string): Promise<Appearance[]> =>
  ((await rpc(stack.httpPort, 'sca.all_appearances')).result as Appearance[]).filter((a) => aor === undefined || a.aor === aor);
const subscriptions = async (): Promise<Subscription[]> => (await rpc(stack.httpPort, 'sca.all_subscriptions')).result as Subscription[];
/** The line as a NOTIFY shows it ("1:seized,2:active"), from the service's own view. */
const asNotified = (apps: Appearance[]) => [...apps].sort((a, b) => a.index - b.index).map((a) => `${a.index}:${a.state}`).join(',');

/** Devices behind a few sockets: each Contact is its own subscriber, NOTIFYs come back to the socket. */
function subscribeAs(p: Phone, aor: string, contact: string, event: 'call-info' | 'line-seize', index?: number): Promise<SipMessage> {
  const headers: Array<[string, string]> = [['Event', event], ['Expires', event === 'line-seize' ? '15' : '3600']];
  if (index !== undefined) headers.push(CI(index));
  return p.request('SUBSCRIBE', { ruri: aor, from: `<${aor}>`, to: `<${aor}>`, contact, headers }).final;
}

/** Sockets with many devices behind them (a burst can overflow a UDP receive buffer: they retransmit, as every test phone does). */
const hosts = (prefix: string, n: number): Promise<Phone[]> => Promise.all(Array.from({ length: n }, (_, i) => stack.phone(`${prefix}${i}`, 'device')));
const metric = async (re: RegExp): Promise<number> => Number(re.exec(await (await fetch(`http://127.0.0.1:${stack.httpPort}/metrics`)).text())?.[1] ?? NaN);

t.test('1,000 competing line-seizes of one index: exactly one 200 per line, every other 480', async (t) => {
  const socks = await hosts('h', 10);
  type Attempt = { aor: string; contact: string; host: Phone; reply: Promise<SipMessage> };
  const attempts: Attempt[] = [];
  const attempt = (aor: string, contact: string, host: Phone): Attempt => ({ aor, contact, host, reply: subscribeAs(host, aor, contact, 'line-seize', 1) });
  // Pairs: 400 lines, two devices on different sockets seize index 1 at the same instant (50 lines at a time).
  for (let wave = 0; wave < 8; wave++) {
    const batch: Attempt[] = [];
    for (let k = 0; k < 50; k++) {
      const line = wave * 50 + k;
      const aor = aorOf(`4${String(line).padStart(3, '0')}`);
      for (const side of [0, 1]) {
        const host = socks[(line + side * 5) % socks.length]!;
        batch.push(attempt(aor, `sip:pair${line}x${side}@127.0.0.1:${host.port}`, host));
      }
    }
    await Promise.all(batch.map((a) => a.reply));
    attempts.push(...batch);
  }
  // Bursts: 50 devices seize index 1 of one line at once, four lines.
  for (let b = 0; b < 4; b++) {
    const aor = aorOf(`5${b}00`);
    const batch = Array.from({ length: 50 }, (_, k) => attempt(aor, `sip:burst${b}x${k}@127.0.0.1:${socks[k % socks.length]!.port}`, socks[k % socks.length]!));
    await Promise.all(batch.map((a) => a.reply));
    attempts.push(...batch);
  }
  const seizes = async () => [await metric(/^sca_line_seize_total\{result="granted"\} (\d+)$/m), await metric(/^sca_line_seize_total\{result="rejected"\} (\d+)$/m)];

  const replies = await Promise.all(attempts.map((a) => a.reply));
  const lines = new Map<string, Array<{ a: Attempt; r: SipMessage }>>();
  attempts.forEach((a, i) => lines.set(a.aor, [...(lines.get(a.aor) ?? []), { a, r: replies[i]! }]));
  const wrong: string[] = [];
  const winners = new Map<string, Attempt>();
  for (const [aor, tries] of lines) {
    const won = tries.filter((x) => x.r.status === 200);
    const lost = tries.filter((x) => x.r.status === 480 && hdr(x.r, 'retry-after') === '1');
    if (won.length !== 1 || won.length + lost.length !== tries.length) wrong.push(`${aor}: ${tries.map((x) => x.r.status).join(' ')}`);
    if (won[0]) winners.set(aor, won[0].a);
  }
  t.same(wrong, [], 'every line: one 200, all the others 480 with Retry-After');
  t.equal(winners.size, 404);
  t.same(await seizes(), [404, 596], 'the service decided each of the 1,000 seizes once: 404 granted, 596 rejected');

  // The service agrees: one seized index 1 per line, owned by the device that got the 200.
  const apps = (await appearances()).filter((a) => winners.has(a.aor));
  t.equal(apps.length, 404, 'one appearance per line, no more');
  t.same(apps.filter((a) => a.index !== 1 || a.state !== 'seized' || a.owner !== winners.get(a.aor)!.contact).map((a) => `${a.aor} ${a.index} ${a.state} ${a.owner}`), [],
    'each is index 1, seized, by the winner');
  // Each winner got its line-seize NOTIFY; no loser got one (a loser's would have come with its
  // 480, which every loser already has).
  const seizeNotified = () => new Set(socks.flatMap((h) => h.notifies('line-seize').map((n) => n.msg.ruri)));
  const unnotified = () => [...winners.values()].filter((w) => !seizeNotified().has(w.contact)).map((w) => w.contact);
  await waitUntil('every winner\'s line-seize NOTIFY', () => unnotified().length === 0, { timeoutMs: 15_000, last: unnotified });
  t.same(unnotified(), [], 'every winner has its line-seize NOTIFY');
  t.equal(seizeNotified().size, 404, 'and only the winners');
});

t.test('a seize racing an incoming call\'s answer on the same index: one owner per index, the group told', async (t) => {
  const bob = await stack.phone('bob', '200');
  await bob.register();
  const outcomes: string[] = [];
  for (let i = 0; i < 10; i++) {
    const user = `60${String(i).padStart(2, '0')}`;
    const [p1, p2] = await Promise.all([stack.phone(`a${i}`, user), stack.phone(`b${i}`, user)]);
    t.equal((await p1.register()).status, 200);
    for (const p of [p1, p2]) t.equal((await subscribeCallInfo(p)).status, 202);
    for (const p of [p1, p2]) await p.nthNotify(1);

    // P1 answers with index 1 in the same tick as P2 seizes index 1, in either order.
    let seize: Promise<SipMessage> | undefined;
    p1.onInvite = (r) => {
      if (i % 2 === 0) seize = lineSeize(p2, 1);
      p1.respond(r, 200, 'OK', { headers: [CI(1)], body: sdp(6000 + i) });
      if (i % 2 === 1) seize = lineSeize(p2, 1);
    };
    const call = await bob.invite({ ruri: aorOf(user), to: `<${aorOf(user)}>`, body: sdp(7000 + i) });
    t.equal(call.final.status, 200, `${user}: Bob is answered`);
    const seized = await seize!;
    t.ok([200, 480].includes(seized.status!), `${user}: the seize gets 200 or 480 (${seized.status})`);
    await p1.waitFor((r) => r.msg.method === 'ACK', 4000, 'ACK');
    // The call is active once the ACK is through: wait for the service to say so.
    const apps = await waitUntil(`${user}: the call active at the service`, async () => {
      const now = await appearances(aorOf(user));
      return now.some((a) => a.state === 'active' && a.owner === p1.contact) ? now : undefined;
    });
    // ... and for each member's lamps to show it.
    for (const p of [p1, p2]) await waitUntil(`${user}: ${p.name}'s lamps`, () => lineState(p.notifies('call-info').at(-1)!) === asNotified(apps), { last: () => lineState(p.notifies('call-info').at(-1)!) });
    if (seized.status === 200) {
      outcomes.push('seize first');
      t.same(apps.map((a) => [a.index, a.state, a.owner]).sort(), [[1, 'seized', p2.contact], [2, 'active', p1.contact]],
        `${user}: the seize keeps index 1, the call moves to index 2`);
    } else {
      outcomes.push('answer first');
      t.same(apps.map((a) => [a.index, a.state, a.owner]), [[1, 'active', p1.contact]], `${user}: the call has index 1, no seize`);
    }
    // Every member's lamps end on what the service holds.
    for (const p of [p1, p2]) t.equal(lineState(p.notifies('call-info').at(-1)!), asNotified(apps), `${user}: ${p.name} shows the service's state`);
    const m = mark(p1, p2);
    t.equal((await bob.inDialog(call.dialog!, 'BYE').final).status, 200);
    for (const [k, p] of [p1, p2].entries()) await waitLine(p, seized.status === 200 ? '1:seized' : '', m[k]!);
  }
  t.comment(`outcomes: ${outcomes.join(', ')}`);
});

t.test('two phones pick up the same held call: one gets it, the other 403, the held party gets one INVITE', async (t) => {
  const user = '7000';
  const [p1, p2, p3, carol] = await Promise.all([stack.phone('p1', user), stack.phone('p2', user), stack.phone('p3', user), stack.phone('carol', '201')]);
  for (const p of [p1, p2, p3, carol]) t.equal((await p.register()).status, 200);
  for (const p of [p1, p2, p3]) await subscribeCallInfo(p);
  t.equal((await lineSeize(p1, 1)).status, 200);
  carol.onInvite = (r) => carol.respond(r, 200, 'OK', { body: sdp(5200) });
  const call = await p1.invite({ ruri: aorOf('201'), to: `<${aorOf('201')}>`, headers: [CI(1)], body: sdp(4000) });
  t.equal(call.final.status, 200);
  let m = mark(p1, p2, p3);
  const hold = p1.inDialog(call.dialog!, 'INVITE', { body: sdp(4000, 'sendonly'), headers: [CI(1)] });
  const reinvite = await carol.waitFor((r) => r.msg.method === 'INVITE' && /;\s*tag=/.test(hdr(r.msg, 'to') ?? ''), 4000, 're-INVITE');
  carol.respond(reinvite, 200, 'OK', { body: sdp(5200, 'recvonly') });
  t.equal((await hold.final).status, 200);
  p1.inDialog(call.dialog!, 'ACK');
  for (const [k, p] of [p1, p2, p3].entries()) await waitLine(p, '1:held', m[k]!);

  m = mark(p1, p2, p3);
  const pickup = (p: Phone, port: number) => p.invite({ ruri: p.aor, to: `<${p.aor}>`, headers: [CI(1)], body: sdp(port) });
  const [a, b] = await Promise.all([pickup(p2, 4100), pickup(p3, 4200)]);
  t.same([a.final.status, b.final.status].sort(), [200, 403], 'one 200, one 403');
  const [winner, loser] = a.final.status === 200 ? [p2, b] : [p3, a];
  t.equal(loser.final.reason, 'Forbidden - appearance in use');
  // The winner's INVITE reached Carol (its 200 came back); the loser's was refused at the proxy.
  const replacing = carol.requests.filter((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'replaces') !== undefined);
  t.equal(replacing.length, 1, 'Carol gets one INVITE with Replaces');
  t.equal(p1.requests.filter((r) => r.msg.method === 'INVITE').length + p2.requests.filter((r) => r.msg.method === 'INVITE').length
    + p3.requests.filter((r) => r.msg.method === 'INVITE').length, 0, 'no member is rung by the losing pickup');
  t.same((await appearances(aorOf(user))).map((x) => [x.index, x.state, x.owner]), [[1, 'active', winner.contact]]);
  for (const [k, p] of [p1, p2, p3].entries()) await waitLine(p, '1:active', m[k]!);
  const winnerCall = a.final.status === 200 ? a : b;
  m = mark(p1, p2, p3);
  t.equal((await winner.inDialog(winnerCall.dialog!, 'BYE').final).status, 200);
  for (const [k, p] of [p1, p2, p3].entries()) await waitLine(p, '', m[k]!);
});

const kamcmd = (...args: string[]) => execFileSync('kamcmd', ['-s', `unix:${stack.dir}/kamailio_ctl`, ...args], { encoding: 'utf8', timeout: 5000 });

t.test('Kamailio restarted under traffic: the service relinks, every request is answered, no state lost', async (t) => {
  const socks = await hosts('k', 4);
  for (const h of socks) h.txTimeoutMs = 30_000;
  const sub = (n: number) => {
    const host = socks[n % socks.length]!;
    const contact = `sip:r${n}@127.0.0.1:${host.port}`;
    return { contact, reply: subscribeAs(host, aorOf(`80${String(n % 20).padStart(2, '0')}`), contact, 'call-info') };
  };
  // 200 subscribers before, then 20 new ones every 100 ms for 6 s; Kamailio restarts after 2 s.
  const before = Array.from({ length: 200 }, (_, n) => sub(n));
  t.ok((await Promise.all(before.map((s) => s.reply))).every((r) => r.status === 202), '200 subscribers before');
  const during: Array<ReturnType<typeof sub> & { at: number }> = [];
  const traffic = (async () => {
    for (let tick = 0; tick < 60; tick++) {
      for (let k = 0; k < 20; k++) during.push({ ...sub(1000 + tick * 20 + k), at: performance.now() });
      await sleep(100);
    }
  })();
  await sleep(2000);
  const restarting = performance.now();
  await stack.restartKamailio();
  const relinked = performance.now();
  t.comment(`Kamailio stopped, started and relinked in ${Math.round(relinked - restarting)} ms`);
  await traffic;
  const settled = await Promise.allSettled(during.map((s) => s.reply));
  const unanswered = settled.filter((s) => s.status === 'rejected').length;
  t.equal(unanswered, 0, 'every SUBSCRIBE got a final reply (the phones retransmit across the restart)');
  const statuses = settled.map((s) => (s.status === 'fulfilled' ? s.value.status ?? 0 : 0));
  const counts = statuses.reduce<Record<string, number>>((c, s) => ({ ...c, [s]: (c[s] ?? 0) + 1 }), {});
  t.same(Object.keys(counts).filter((s) => s !== '202' && s !== '503'), [], `only 202 or 503 (${JSON.stringify(counts)})`);
  t.same(during.filter((s, i) => s.at > relinked && statuses[i] !== 202).length, 0, 'every SUBSCRIBE sent once the service is linked again is served');
  t.equal(during.filter((s, i) => s.at < restarting - 500 && statuses[i] !== 202).length, 0, 'and every one sent before the restart');

  const held = new Set((await subscriptions()).filter((s) => s.event === 'call-info').map((s) => s.subscriber));
  t.same(before.filter((s) => !held.has(s.contact)).map((s) => s.contact), [], 'the subscribers from before the restart are all kept');
  t.same(during.filter((_, i) => statuses[i] === 202 && !held.has(during[i]!.contact)).map((s) => s.contact), [], 'every 202 has its subscription');
  // No transaction stays in Kamailio: the SUBSCRIBEs it suspended were all resumed and ended.
  const current = () => Number(/current:\s*(\d+)/.exec(kamcmd('tm.stats'))?.[1] ?? -1);
  await waitUntil('no transaction left in Kamailio', () => current() === 0, { timeoutMs: 40_000, everyMs: 250, last: current });
  t.equal(current(), 0, 'no transaction left in Kamailio');
  const log = readFileSync(path.join(stack.dir, 'service.log'), 'utf8');
  t.match(log, /evapi connection lost/, 'the service saw the link drop');
  t.ok((log.match(/"msg":"evapi connected"/g) ?? []).length >= 2, 'and connected to the new Kamailio');
  // A call-info subscriber from before gets NOTIFYs through the new Kamailio.
  const watcher = await stack.phone('w', '8000');
  const m = socks[0]!.notifies('call-info').length;
  t.equal((await lineSeize(watcher, 3)).status, 200);
  await socks[0]!.waitFor(() => socks[0]!.notifies('call-info').length > m, 4000, 'a NOTIFY after the restart');
});

t.test('the link cut in the middle of a transaction: the phone gets a 503 from the watchdog', async (t) => {
  const p = await stack.phone('cut', '9000');
  const pid = Number(readFileSync(path.join(stack.dir, 'service.pid'), 'utf8'));
  process.kill(pid, 'SIGSTOP');
  const started = performance.now();
  const reply = subscribeCallInfo(p);
  // The SUBSCRIBE is suspended in Kamailio (its transaction open), waiting for the frozen service.
  await waitUntil('the SUBSCRIBE suspended in Kamailio', () => Number(/current:\s*(\d+)/.exec(kamcmd('tm.stats'))?.[1] ?? 0) > 0, { everyMs: 20 });
  process.kill(pid, 'SIGKILL');
  const r = await reply;
  t.same([r.status, hdr(r, 'retry-after')], [503, '5'], `503 with Retry-After, ${Math.round(performance.now() - started)} ms after the SUBSCRIBE (the watchdog resumes after 2-3 s)`);
  await stack.startService();
  t.equal((await subscribeCallInfo(p)).status, 202, 'served again once the service is back');
});
