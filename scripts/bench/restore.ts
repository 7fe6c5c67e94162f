// Restore benchmark: 100k subscriptions and 20k active appearances on each store backend.
// Prints write latency per acknowledged change (one line committed at a time), and restore time
// and RSS measured in a fresh process, against an empty-store process of the same run; then the
// compiled service (npm run build first) started on each store, with its RSS once it serves.
//   node --import tsx scripts/bench/restore.ts [--subs 100000] [--apps 20000] [--mysql mysql://root@127.0.0.1:3306]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { ScaEngine } from '../../service/sca/engine.js';
import type { ScaWrite } from '../../service/sca/journal.js';
import type { LineSnapshot } from '../../service/sca/snapshot.js';
import type { Appearance, Subscription } from '../../service/sca/types.js';
import { Committer } from '../../service/store/committer.js';
import { openDatabase } from '../../service/store/open-database.js';
import { ScaStore } from '../../service/store/sca-tables.js';

const quiet = { error: (o: object, m: string) => console.error(m, o), warn: () => undefined, info: () => undefined };

/** The SCA store as the service opens it. */
async function openStore(url: string): Promise<{ tables: ScaStore; committer: Committer; close: () => Promise<void> }> {
  const db = openDatabase(url);
  await db.open();
  const tables = new ScaStore(db, 0);
  await tables.migrate();
  const committer = new Committer(db, quiet);
  return { tables, committer, close: async () => { await committer.drain(60_000); await db.close(); } };
}

/** A line as the engine's writes: its row, its subscriptions, its appearances. */
const writesOf = (l: LineSnapshot): ScaWrite[] => [
  { kind: 'line', aor: l.aor, shared: true },
  ...l.subscriptions.map((s): ScaWrite => ({ kind: 'subscription', aor: s.aor, event: s.event, subscriber: s.subscriber, value: s })),
  ...l.appearances.map((a): ScaWrite => ({ kind: 'appearance', aor: l.aor, index: a.index, value: a })),
];

const { values } = parseArgs({ options: { subs: { type: 'string', default: '100000' }, apps: { type: 'string', default: '20000' }, mysql: { type: 'string', default: 'mysql://root@127.0.0.1:3306' }, child: { type: 'string' } } });

if (values.child) {
  // Child: restore from the store and report time and memory.
  const t0 = performance.now();
  const store = await openStore(values.child);
  const { lines } = await store.tables.load();
  const engine = new ScaEngine();
  const { subscriptions, appearances } = engine.restore(lines, Date.now() / 1000);
  const ms = performance.now() - t0;
  await store.close();
  global.gc?.();
  console.log(JSON.stringify({ ms, rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, subscriptions, appearances }));
  process.exit(0);
}

const SUBS = Number(values.subs);
const APPS = Number(values.apps);
const PER_LINE = 4; // call-info subscribers per shared line
const now = Date.now() / 1000;

function line(i: number): LineSnapshot {
  const aor = `sip:${100000 + i}@pbx.example.com`;
  const subscriptions: Subscription[] = Array.from({ length: PER_LINE }, (_, k) => ({
    aor, event: 'call-info', subscriber: `sip:${100000 + i}@10.${k}.${i >> 8 & 255}.${i & 255}:5060`, expires: now + 3600, state: 'active',
    reason: undefined, index: 0, callId: `ci-${i}-${k}@bench`, fromTag: `ft${i}x${k}`, toTag: `tt${i}x${k}`, notifyCseq: 7,
    routeSet: [], seq: i * PER_LINE + k + 1,
  }));
  const appearances: Appearance[] = i < APPS ? [{
    index: 1, state: 'active', owner: subscriptions[0]!.subscriber, callee: 'sip:200@192.0.2.20', uri: '"Remote" <sip:200@far.example.net>',
    dialog: { callId: `call-${i}@bench`, fromTag: `f${i}`, toTag: `t${i}` }, direction: 'outgoing', ctime: now, mtime: now, pending: undefined,
  }] : [];
  return { aor, shared: true, subscriptions, appearances };
}

const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.round((p / 100) * (s.length - 1)))]!; };

async function mysqlDb(name: string): Promise<string> {
  const c = await mysql.createConnection({ uri: values.mysql! });
  await c.query(`DROP DATABASE IF EXISTS ${name}`);
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return `${values.mysql}/${name}`;
}

function child(url: string): { ms: number; rss: number; heap: number; subscriptions: number; appearances: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.resolve(import.meta.dirname, 'restore.ts'), '--child', url], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

/** The compiled service started on the store: its RSS once it serves (3 s after /healthz answers). */
async function serviceRss(url: string, port: number): Promise<{ startMs: number; rss: number }> {
  const entry = path.resolve(import.meta.dirname, '../../dist/service/main.js');
  const t0 = performance.now();
  // SVC_NODE_ARGS: node options for the service (e.g. --max-semi-space-size=2), to compare.
  const nodeArgs = (process.env.SVC_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const p = spawn(process.execPath, [...nodeArgs, entry, '--set', `db_url=${url}`, '--set', 'evapi_address=127.0.0.1:1', '--set', `http_port=${port}`, '--set', 'call_control_socket=', '--set', 'log_level=error'], { stdio: 'ignore' });
  try {
    for (;;) {
      if (performance.now() - t0 > 120_000) throw new Error('the service did not start within 120 s');
      if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const startMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 3000));
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))?.[1]);
    return { startMs, rss: kb * 1024 };
  } finally {
    p.kill('SIGKILL');
  }
}

const mb = (b: number) => (b / 1048576).toFixed(1);
const lines = Math.ceil(SUBS / PER_LINE);
console.log(`restore benchmark: ${lines * PER_LINE} call-info subscriptions on ${lines} lines, ${Math.min(APPS, lines)} active appearances`);
for (const backend of ['sqlite', 'mysql']) {
  const url = backend === 'sqlite' ? `sqlite:${path.join(mkdtempSync(path.join(tmpdir(), 'sca-bench-')), 'sca.sqlite')}` : await mysqlDb('sca_bench');
  const emptyUrl = backend === 'sqlite' ? `sqlite:${path.join(mkdtempSync(path.join(tmpdir(), 'sca-bench-')), 'empty.sqlite')}` : await mysqlDb('sca_bench_empty');
  const store = await openStore(url);
  // Write latency per acknowledged change: one line per commit, as under light load.
  const lat: number[] = [];
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now();
    await store.committer.commit(store.tables.changes(writesOf(line(i))));
    lat.push(performance.now() - t0);
  }
  const t0 = performance.now();
  for (let i = 0; i < lines; i += 1000) {
    await store.committer.commit(store.tables.changes(Array.from({ length: Math.min(1000, lines - i) }, (_, k) => writesOf(line(i + k))).flat()));
  }
  const fill = (performance.now() - t0) / 1000;
  await store.close();
  const empty = await openStore(emptyUrl);
  await empty.close();
  const base = child(emptyUrl);
  const full = child(url);
  console.log(`${backend.padEnd(6)} write per acknowledged change: p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms | bulk fill ${fill.toFixed(1)} s`);
  console.log(`${backend.padEnd(6)} restore ${full.subscriptions} subs + ${full.appearances} apps: ${(full.ms / 1000).toFixed(2)} s (empty store: ${(base.ms / 1000).toFixed(2)} s); ` +
    `RSS ${mb(full.rss)} MiB vs ${mb(base.rss)} MiB empty (+${mb(full.rss - base.rss)} MiB, ${Math.round((full.rss - base.rss) / full.subscriptions)} B/subscription incl. appearances); heap ${mb(full.heap)} MiB`);
  const svcBase = await serviceRss(emptyUrl, 18555);
  const svcFull = await serviceRss(url, 18556);
  console.log(`${backend.padEnd(6)} the compiled service (dist/) on this store: up in ${(svcFull.startMs / 1000).toFixed(2)} s, RSS ${mb(svcFull.rss)} MiB ` +
    `(on the empty store: ${(svcBase.startMs / 1000).toFixed(2)} s, ${mb(svcBase.rss)} MiB)`);
}
