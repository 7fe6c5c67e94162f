// The latency and timing promises that used to be asserted inside end-to-end tests, where a busy
// machine turned them into flakes: measured here against the real stack (Kamailio + the compiled
// service), each printed with its target and a verdict. The tests keep the behaviour (what is
// answered, billed, shown); this script keeps the numbers. Exit code 1 if a target is missed.
//
//   npm run bench:targets [-- --skip-mysql]
//
// Targets (where they were asserted before):
//   live view: a change on the page within 1 s, a call within 1.5 s         (e2e/live-view)
//   watchdog: a SUBSCRIBE to a frozen service answered 503 within 4 s       (e2e/resilience, races)
//   service gone: 503 within 0.5 s (nothing is suspended)                   (e2e/resilience)
//   kill -9 and restart: every phone's lamps set again within 5 s           (e2e/restart)
//   MySQL down: a seize answered within 1.5 s (not waiting for the store)   (e2e/mysql-outage)
//   call timer 3 s / prepaid 4 s / kill -9 mid-call 5 s: BYE within ±1 s (±1.5 s after a
//   restart), both sides within 0.5 s of each other                          (e2e/call-control)
//   dialog RPC: a refused call fails within 1 s, a lost one at its timeout  (unit/dialog-rpc)
//   SUBSCRIBE → NOTIFY p50 / p99, one at a time (printed; e2e/latency records them)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { DialogRpc } from '../../service/kamailio/dialog-rpc.js';
import { PrivateMariadb } from '../../test/support/private-mariadb.js';
import { rpc } from '../../test/support/rpc.js';
import { hdr, sdp, type Phone } from '../../test/support/sip-phone.js';
import { DOMAIN, lineSeize, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../../test/support/stack.js';

const { values } = parseArgs({ options: { 'skip-mysql': { type: 'boolean', default: false } } });
const results: Array<{ what: string; ms: number; target: string; ok: boolean }> = [];
const record = (what: string, ms: number, target: string, ok: boolean): void => {
  results.push({ what, ms, target, ok });
  console.log(`${ok ? 'ok  ' : 'MISS'} ${what.padEnd(62)} ${String(Math.round(ms)).padStart(6)} ms   target ${target}`);
};
const within = (what: string, ms: number, max: number) => record(what, ms, `< ${max} ms`, ms < max);
const near = (what: string, ms: number, at: number, tolerance: number) => record(what, ms, `${at} ± ${tolerance} ms`, Math.abs(ms - at) < tolerance);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const servicePid = (stack: Stack) => Number(readFileSync(path.join(stack.dir, 'service.pid'), 'utf8'));

/** The live view's socket: resolves when a push satisfies `match`, with the milliseconds it took. */
function pushed(port: number, match: (m: any) => boolean): { ready: Promise<void>; when: Promise<number>; start: () => void; close: () => void } {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  let t0 = performance.now();
  let resolveWhen!: (ms: number) => void;
  const when = new Promise<number>((r) => { resolveWhen = r; });
  const ready = new Promise<void>((r) => ws.once('message', () => r()));
  ws.on('message', (d) => { if (match(JSON.parse(String(d)))) resolveWhen(performance.now() - t0); });
  return { ready, when, start: () => { t0 = performance.now(); }, close: () => ws.close() };
}

async function scaTargets(): Promise<void> {
  const stack = await startStack({ log_level: 'warn' });
  try {
    const [p1, p2, bob] = await Promise.all([stack.phone('p1', '100'), stack.phone('p2', '100'), stack.phone('bob', '200')]);
    for (const p of [p1, p2, bob]) await p.register();
    await subscribeCallInfo(p1);
    await subscribeCallInfo(p2);
    const line = `sip:100@${DOMAIN}`;
    const shows = (state: string) => (m: any) => [...(m.lines ?? []), ...(m.lines_changed ?? [])].some((l: any) => l.aor === line && l.appearances.some((a: any) => a.state === state));
    const seized = pushed(stack.httpPort, shows('seized'));
    await seized.ready;
    seized.start();
    await lineSeize(p1, 1);
    within('live view: seized shown after the 200', await seized.when, 1000);
    seized.close();
    bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
    const active = pushed(stack.httpPort, shows('active'));
    await active.ready;
    active.start();
    const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
    within('live view: active shown after the INVITE', await active.when, 1000);
    active.close();

    // kill -9 and restart: the lamps again.
    const m = mark(p1, p2);
    await stack.killService();
    const t0 = performance.now();
    await stack.startService();
    await Promise.all([p1, p2].map((p, i) => waitLine(p, '1:active', m[i]!, 30_000)));
    within('kill -9 + restart: every phone\'s lamps set again', performance.now() - t0, 5000);
    await p1.inDialog(call.dialog!, 'BYE').final;

    // A frozen service: the watchdog's 503.
    const pid = servicePid(stack);
    process.kill(pid, 'SIGSTOP');
    const t1 = performance.now();
    const frozen = await subscribeCallInfo(p1);
    process.kill(pid, 'SIGCONT');
    if (frozen.status !== 503) console.log(`  (the frozen service's SUBSCRIBE got ${frozen.status})`);
    within('frozen service: SUBSCRIBE answered 503 by the watchdog', performance.now() - t1, 4000);
    await sleep(1000);

    // The service gone: 503 at once.
    await stack.stopService();
    const gone = () => /service connection .* closed/.test(stack.kamailioLog());
    for (let i = 0; i < 200 && !gone(); i++) await sleep(20);
    const t2 = performance.now();
    await subscribeCallInfo(p1);
    within('service gone: SUBSCRIBE answered 503', performance.now() - t2, 500);
  } finally {
    await stack.stop();
  }
}

async function ccTargets(): Promise<void> {
  const stack = await startStack({ log_level: 'warn' });
  try {
    const [alice, bob] = await Promise.all([stack.phone('alice', '100'), stack.phone('bob', '200')]);
    for (const p of [alice, bob]) await p.register();
    bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
    const account = `100@${DOMAIN}`;
    const cc = (method: string, params: unknown) => rpc(stack.httpPort, method, params);
    const call = () => alice.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
    const byes = async (c: Awaited<ReturnType<typeof call>>, at: number) => {
      const of = (p: Phone) => p.waitFor((r) => r.msg.method === 'BYE' && hdr(r.msg, 'call-id') === c.dialog!.callId, 20_000, 'BYE');
      const [a, b] = await Promise.all([of(alice), of(bob)]);
      return { alice: a.at - at, apart: Math.abs(a.at - b.at) };
    };

    await cc('cc.account_set', { account, max_duration: 3 });
    let c = await call();
    let r = await byes(c, performance.now());
    near('call timer 3 s: BYE after the answer', r.alice, 3000, 1000);
    within('call timer: the BYEs to both sides apart', r.apart, 500);
    await cc('cc.account_set', { account, max_duration: 'none' });

    await cc('cc.rate_set', { prefix: '2', connect_fee: 5, price_per_minute: 60, initial_pulse: 2, next_pulse: 1 });
    await cc('cc.account_set', { account, prepaid: true, balance: 9 });
    c = await call();
    r = await byes(c, performance.now());
    near('prepaid 9 units (5 + 4 s): BYE after the answer', r.alice, 4000, 1000);

    await cc('cc.rate_set', { prefix: '2', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
    await cc('cc.account_set', { account, prepaid: true, balance: 5, max_calls: 1 });
    c = await call();
    const answered = performance.now();
    await stack.killService();
    await stack.startService();
    r = await byes(c, answered);
    near('kill -9 mid-call, limit 5 s: BYE after the answer', r.alice, 5000, 1500);
  } finally {
    await stack.stop();
  }
}

async function mysqlTarget(): Promise<void> {
  const db = new PrivateMariadb();
  await db.init();
  await db.start();
  await db.query('CREATE DATABASE sca');
  const stack = await startStack({ db_url: `${db.url}/sca`, log_level: 'warn' });
  try {
    const p1 = await stack.phone('p1', '100');
    await subscribeCallInfo(p1);
    await db.stop();
    const t0 = performance.now();
    await lineSeize(p1, 1, 600);
    within('MySQL down: a seize answered', performance.now() - t0, 1500);
  } finally {
    await stack.stop();
    await db.stop().catch(() => undefined);
  }
}

async function dialogRpcTargets(): Promise<void> {
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
  const refused = new DialogRpc({ address: 'udp:127.0.0.1:9', log, timeoutMs: 5000 });
  const t0 = performance.now();
  await refused.call('dlg.stats_active', []);
  within('dialog RPC, nothing listening: the call fails', performance.now() - t0, 1000);
  refused.close();
}

async function subscribeLatency(): Promise<void> {
  const stack = await startStack({ log_level: 'warn' });
  try {
    const p = await stack.phone('load', '9000');
    const toNotify: number[] = [];
    for (let i = 0; i < 500; i++) {
      const aor = `sip:${7000 + i}@${DOMAIN}`;
      const callId = `lat-${i}-${Date.now()}`;
      const t0 = performance.now();
      const notify = p.waitFor((r) => r.msg.method === 'NOTIFY' && hdr(r.msg, 'call-id') === callId, 5000, 'NOTIFY');
      await p.request('SUBSCRIBE', { ruri: aor, to: `<${aor}>`, callId, headers: [['Event', 'call-info'], ['Expires', '600']] }).final;
      toNotify.push((await notify).at - t0);
    }
    toNotify.sort((a, b) => a - b);
    const pct = (q: number) => toNotify[Math.min(toNotify.length - 1, Math.round(q * (toNotify.length - 1)))]!;
    console.log(`     SUBSCRIBE -> NOTIFY, one at a time, 500: p50 ${pct(0.5).toFixed(2)} ms, p99 ${pct(0.99).toFixed(2)} ms`);
  } finally {
    await stack.stop();
  }
}

await scaTargets();
await ccTargets();
if (!values['skip-mysql']) await mysqlTarget();
await dialogRpcTargets();
await subscribeLatency();
const missed = results.filter((r) => !r.ok);
console.log(`targets: ${results.length - missed.length} met, ${missed.length} missed`);
process.exit(missed.length > 0 ? 1 : 0);
