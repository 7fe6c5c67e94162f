// Soak: the whole product (Kamailio with kamailio/kamailio.cfg + the compiled service) under a
// steady load for ten minutes, to show that nothing grows: the service's RSS, its open sockets
// and timers, its subscriptions and appearances, Kamailio's transactions and shared memory.
//
//   node --import tsx scripts/bench/soak.ts [--minutes 10] [--rate 500] [--lines 5000] [--warmup 60]
//
// Load: --rate SUBSCRIBEs per second (default 500: the call-info rate scripts/bench/compare.sh
// finds sustained on this machine, so twice the "half of the highest rate" a soak needs), from devices behind 8 sockets that retransmit:
// 90% new call-info subscribers on random lines (Expires 30, left to expire), 10% line-seizes
// of a random index 1-4 released in-dialog a second later (Expires 0 with the index, as phones
// do). The service runs with purge_expired_interval 5 and seized_timeout 20, so the state is
// steady after about a minute.
//
// Every 10 s a line: the service's RSS, heap, open fds, active handles and timers (its /metrics),
// subscriptions and appearances, Kamailio's current transactions and used shared memory.
// Verdict (exit 1 if one fails): RSS of the last minute within 10% of the first minute after the
// warm-up; no request unanswered; after the load and the expiries, no subscription, appearance or
// Kamailio transaction left, and fds, handles and timers back to where they were before the load.
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { SipMessage } from '../../service/sip/message.js';
import { hdr, type Phone } from '../../test/support/sip-phone.js';
import { DOMAIN, startStack } from '../../test/support/stack.js';

const { values } = parseArgs({ options: {
  minutes: { type: 'string', default: '10' }, rate: { type: 'string', default: '500' },
  lines: { type: 'string', default: '5000' }, warmup: { type: 'string', default: '60' },
} });
const MINUTES = Number(values.minutes), RATE = Number(values.rate), LINES = Number(values.lines), WARMUP = Number(values.warmup);
const EXPIRES = 30, PURGE = 5, SEIZED_TIMEOUT = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stack = await startStack({ log_level: 'warn', purge_expired_interval: PURGE, seized_timeout: SEIZED_TIMEOUT });
const hosts: Phone[] = await Promise.all(Array.from({ length: 8 }, (_, i) => stack.phone(`soak${i}`, 'device')));
for (const h of hosts) Object.assign(h, { retransmit: true, record: false, txTimeoutMs: 32_000 });

async function metrics(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${stack.httpPort}/metrics`)).text();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    m.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return m;
}
const total = (m: Map<string, number>, name: string) => [...m].filter(([k]) => k === name || k.startsWith(`${name}{`)).reduce((a, [, v]) => a + v, 0);
const kamcmd = (cmd: string) => execFileSync('kamcmd', ['-s', `unix:${stack.dir}/kamailio_ctl`, cmd], { encoding: 'utf8', timeout: 5000 });

interface Sample { at: number; waiting: number; rss: number; heap: number; fds: number; handles: number; timers: number; subs: number; apps: number; tm: number; shm: number }
async function sample(at: number): Promise<Sample> {
  const m = await metrics();
  return {
    at, waiting: total(m, 'link_backlog_bytes{kind="waiting"}'), rss: total(m, 'process_resident_memory_bytes'), heap: total(m, 'nodejs_heap_size_used_bytes'), fds: total(m, 'process_open_fds'),
    handles: total(m, 'nodejs_active_handles_total'), timers: total(m, 'nodejs_active_resources{type="Timeout"}'),
    subs: total(m, 'sca_subscriptions'), apps: total(m, 'sca_appearances'),
    tm: Number(/current:\s*(\d+)/.exec(kamcmd('tm.stats'))?.[1] ?? NaN), shm: Number(/\bused:\s*(\d+)/.exec(kamcmd('core.shmmem'))?.[1] ?? NaN),
  };
}
const MiB = (b: number) => (b / 1048576).toFixed(1);
const show = (s: Sample) => `t=${String(s.at).padStart(4)}s rss=${MiB(s.rss)} MiB heap=${MiB(s.heap)} MiB fds=${s.fds} handles=${s.handles} timers=${s.timers} `
  + `subs=${s.subs} apps=${s.apps} waiting=${MiB(s.waiting)} MiB | kamailio tm=${s.tm} shm=${MiB(s.shm)} MiB | sent=${sent} answered=${answered} unanswered=${unanswered}`;

let seq = 0, sent = 0, answered = 0, unanswered = 0;
const codes = new Map<number, number>();
async function track(p: Promise<SipMessage>): Promise<SipMessage | undefined> {
  sent++;
  try {
    const r = await p;
    answered++;
    codes.set(r.status ?? 0, (codes.get(r.status ?? 0) ?? 0) + 1);
    return r;
  } catch {
    unanswered++;
    return undefined;
  }
}
const randomLine = () => `sip:9${String(Math.floor(Math.random() * LINES)).padStart(4, '0')}@${DOMAIN}`;

function callInfo(): void {
  const n = seq++, h = hosts[n % hosts.length]!, aor = randomLine();
  void track(h.request('SUBSCRIBE', { ruri: aor, from: `<${aor}>`, to: `<${aor}>`, contact: `sip:s${n}@127.0.0.1:${h.port}`,
    headers: [['Event', 'call-info'], ['Expires', String(EXPIRES)]] }).final);
}

async function seizeAndRelease(): Promise<void> {
  const n = seq++, h = hosts[n % hosts.length]!, aor = randomLine();
  const dialog = { from: `<${aor}>`, to: `<${aor}>`, fromTag: `z${n}`, callId: `soak-${n}`, contact: `sip:z${n}@127.0.0.1:${h.port}` };
  const index = 1 + Math.floor(Math.random() * 4);
  const seized = await track(h.request('SUBSCRIBE', { ...dialog, ruri: aor,
    headers: [['Event', 'line-seize'], ['Expires', '15'], ['Call-Info', `<sip:${DOMAIN}>;appearance-index=${index}`]] }).final);
  if (seized?.status !== 200) return;
  await sleep(1000);
  const toTag = /;\s*tag=([^;>\s]+)/.exec(hdr(seized, 'to') ?? '')?.[1];
  await track(h.request('SUBSCRIBE', { ...dialog, ruri: hdr(seized, 'contact')?.replace(/^<|>.*$/g, '') ?? aor, toTag, cseq: 2,
    headers: [['Event', 'line-seize'], ['Expires', '0'], ['Call-Info', `<sip:${DOMAIN}>;appearance-index=${index}`]] }).final);
}

const before = await sample(0);
console.log(`soak: ${MINUTES} min at ${RATE} SUBSCRIBE/s over ${LINES} lines (stack in ${stack.dir})`);
console.log(`before the load: ${show(before)}`);
const samples: Sample[] = [];
const started = performance.now();
const end = started + MINUTES * 60_000;
let flows = 0;
let nextSample = started + 10_000;
while (performance.now() < end) {
  // Flows due by now at RATE requests/s (a seize-and-release counts as two).
  const due = Math.floor(((performance.now() - started) / 1000) * RATE);
  while (flows < due) {
    if (Math.random() < 0.1) { void seizeAndRelease(); flows += 2; } else { callInfo(); flows += 1; }
  }
  if (performance.now() >= nextSample) {
    const s = await sample(Math.round((performance.now() - started) / 1000));
    samples.push(s);
    console.log(show(s));
    nextSample += 10_000;
  }
  await sleep(20);
}
console.log(`load stopped; waiting ${EXPIRES + 3 * PURGE} s for the subscriptions to expire and the purge to run`);
await sleep((EXPIRES + 3 * PURGE) * 1000);
const after = await sample(Math.round((performance.now() - started) / 1000));
console.log(`after: ${show(after)}`);
console.log(`replies: ${[...codes].sort().map(([c, k]) => `${c}×${k}`).join(' ')}`);

const window = (from: number, to: number) => samples.filter((s) => s.at > from && s.at <= to);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const first = mean(window(WARMUP, WARMUP + 60).map((s) => s.rss));
const last = mean(window(MINUTES * 60 - 60, MINUTES * 60).map((s) => s.rss));
const drift = (last - first) / first;
const checks: Array<[string, boolean]> = [
  [`RSS flat: first minute after warm-up ${MiB(first)} MiB, last minute ${MiB(last)} MiB (${(drift * 100).toFixed(1)}%, limit ±10%)`, Math.abs(drift) <= 0.1],
  [`every request answered (${unanswered} unanswered of ${sent})`, unanswered === 0],
  [`no subscription left (${after.subs})`, after.subs === 0],
  [`no appearance left (${after.apps})`, after.apps === 0],
  [`no Kamailio transaction left (${after.tm})`, after.tm === 0],
  [`fds back (${before.fds} before, ${after.fds} after)`, after.fds <= before.fds + 2],
  [`handles back (${before.handles} before, ${after.handles} after)`, after.handles <= before.handles + 2],
  [`timers back (${before.timers} before, ${after.timers} after)`, after.timers <= before.timers + 2],
  [`Kamailio shared memory back within 10% (${MiB(before.shm)} MiB before, ${MiB(after.shm)} MiB after)`, after.shm <= before.shm * 1.1],
];
for (const [what, ok] of checks) console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);
await stack.stop();
process.exit(checks.every(([, ok]) => ok) ? 0 : 1);
