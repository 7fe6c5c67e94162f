// Call-control decision latency over the call_control socket at a fixed call rate, against the
// real service (started here, fresh embedded store): each call is init → start → stop as
// Kamailio's call_control.c sends them, spread over several connections like Kamailio's workers,
// each connection strictly one request at a time. Prints p50/p99/max of init → reply.
//   node --import tsx scripts/bench/cc-latency.ts [--rate 1000] [--seconds 10] [--workers 8] [--prepaid]
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: {
  rate: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '10' }, workers: { type: 'string', default: '8' },
  prepaid: { type: 'boolean', default: false }, port: { type: 'string', default: '18095' },
} });
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const WORKERS = Number(values.workers);
const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'cc-bench-'));
const socketPath = path.join(dir, 'cc.sock');
const http = `http://127.0.0.1:${values.port}`;

const service = spawn(process.execPath, [...(process.env.CC_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', path.join(ROOT, 'service/main.ts'), '--set', `http_port=${values.port}`, '--set', `db_url=sqlite:${dir}/s.sqlite`,
  '--set', `call_control_socket=${socketPath}`, '--set', 'evapi_address=127.0.0.1:1', '--set', 'log_level=warn', '--set', 'cc_jsonrpc_address=udp:127.0.0.1:9'], { stdio: ['ignore', 'ignore', 'inherit'] });
const stop = () => service.kill('SIGTERM');
process.on('exit', stop);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; i < 200; i++) { if (await fetch(`${http}/healthz`).then((r) => r.ok, () => false)) break; await sleep(50); }
const rpc = (method: string, params: unknown) => fetch(`${http}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) }).then((r) => r.json());
// Each call is billed to one of 100 accounts with room for every call of the run.
for (let a = 0; a < 100; a++) await rpc('cc.account_set', { account: `u${a}@bench.example`, max_calls: 100_000, prepaid: values.prepaid, balance: 1e12 });
if (values.prepaid) await rpc('cc.rate_set', { prefix: '', connect_fee: 1, price_per_minute: 6, initial_pulse: 30, next_pulse: 6 });

/**
 * One Kamailio worker's connection: one request at a time, its reply before the next; connected
 * when it first sends, and again after the service closed it (as call_control.c does).
 */
class Worker {
  private s: net.Socket | undefined;
  private buf = '';
  private waiting: (() => void) | undefined;
  private queue: Array<() => Promise<void>> = [];
  private busy = false;
  private socket(): net.Socket {
    if (this.s && !this.s.destroyed) return this.s;
    const s = net.connect(socketPath);
    s.on('data', (d) => { this.buf += d.toString(); if (this.buf.includes('\r\n') && this.waiting) { this.buf = ''; const w = this.waiting; this.waiting = undefined; w(); } });
    s.on('error', () => undefined);
    this.s = s;
    return s;
  }
  ask(raw: string): Promise<void> {
    return new Promise((resolve) => { this.waiting = resolve; this.socket().write(raw); });
  }
  run(job: () => Promise<void>): void {
    this.queue.push(job);
    void this.pump();
  }
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    for (let j = this.queue.shift(); j; j = this.queue.shift()) await j();
    this.busy = false;
  }
  close(): void { this.s?.destroy(); }
}

const workers = Array.from({ length: WORKERS }, () => new Worker());
const lat: number[] = [];
let errors = 0;
const total = RATE * SECONDS;
const t0 = performance.now();
for (let i = 0; i < total; i++) {
  const due = t0 + (i * 1000) / RATE;
  const wait = due - performance.now();
  if (wait > 1) await sleep(wait);
  const w = workers[i % WORKERS]!;
  const callId = `bench-${i}@cc`;
  w.run(async () => {
    const a = performance.now();
    await w.ask(`init\r\nruri: sip:3120${i}@bench.example\r\ndiverter: None\r\nsourceip: 127.0.0.1\r\ncallid: ${callId}\r\nfrom: <sip:u${i % 100}@bench.example>;tag=f${i}\r\nfromtag: f${i}\r\nsip_application: audio\r\n\r\n`);
    lat.push(performance.now() - a);
  });
  w.run(() => w.ask(`start\r\ncallid: ${callId}\r\ndialogid: ${i % 4096}:${i}\r\n\r\n`));
  // Calls last about 2 s: the count and the reservations are exercised, not only the door.
  setTimeout(() => w.run(() => w.ask(`stop\r\ncallid: ${callId}\r\n\r\n`)), 2000);
}
await sleep(3000);
const achieved = lat.length / ((performance.now() - t0 - 3000) / 1000);
const s = [...lat].sort((x, y) => x - y);
const pct = (p: number) => s[Math.min(s.length - 1, Math.round((p / 100) * (s.length - 1)))]!.toFixed(2);
const cdrs = (await rpc('cc.cdrs', { limit: 1 }) as { result?: unknown[] }).result?.length ?? 0;
// The service's own view (cc_decision_latency_seconds): from the request read to the reply written.
const metrics = await fetch(`${http}/metrics`).then((r) => r.text());
const buckets = [...metrics.matchAll(/^cc_decision_latency_seconds_bucket\{le="([^"]+)",door="socket"\} (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])] as const);
const count = buckets.at(-1)?.[1] ?? 0;
const within = (q: number) => buckets.find(([, n]) => n >= q * count)?.[0];
console.log(`call control over the socket: ${RATE} calls/s for ${SECONDS} s, ${WORKERS} connections${values.prepaid ? ', prepaid' : ''}`);
console.log(`init → reply: n=${lat.length} p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${pct(100)} ms; achieved ${achieved.toFixed(0)} inits/s; errors ${errors}; CDRs written: ${cdrs > 0 ? 'yes' : 'no'}`);
console.log(`in the service (histogram buckets): p50 <= ${(within(0.5)! * 1000).toFixed(1)} ms, p99 <= ${(within(0.99)! * 1000).toFixed(1)} ms`);
for (const w of workers) w.close();
stop();
process.exit(0);
