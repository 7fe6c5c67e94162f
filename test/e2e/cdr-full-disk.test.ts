// The CDR file on a disk that fills up, for real: the whole service (buildApp, in-process; no
// Kamailio needed) with its socket door, 60 calls as call_control.c sends them, the CDR file on a
// 3 MB tmpfs left with 8 KiB of room.
// The database keeps every CDR; the file falls behind (a metric, /readyz, one log line), and once
// the disk has room again it catches up: every line once, whole, in order. A restart repeats
// nothing. Needs root (mount); skipped otherwise.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { buildApp } from '../../service/app.js';
import { loadConfig } from '../../service/config.js';
import { waitUntil } from '../support/wait.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cdr-full-'));
const disk = path.join(dir, 'disk');
mkdirSync(disk);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', disk]).status === 0;
if (mounted) t.teardown(() => { execFileSync('umount', ['-l', disk]); });
const FILE = path.join(disk, 'cdr.csv');
const SOCKET = path.join(dir, 'cc.sock');

const logs: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
const stream = new Writable({ write(chunk, _e, cb) { logs.push(JSON.parse(String(chunk)) as (typeof logs)[number]); cb(); } });
const cfg = loadConfig({ env: {}, overrides: {
  evapi_address: ['127.0.0.1:1'], http_port: 0, db_url: `sqlite:${dir}/s.sqlite`, call_control_socket: SOCKET, cc_jsonrpc_address: 'udp:127.0.0.1:9', cc_cdr_file: FILE,
} });
if (!cfg.ok) throw new Error(cfg.error);
const config = cfg.config;

/** Polls `probe` every 50 ms until it gives a value; fails loudly, naming `what`, after `timeoutMs`. */
const until = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> =>
  waitUntil(what, probe, { timeoutMs, everyMs: 50 });

/** A Kamailio worker's connection: a request, its reply, the next. */
async function client(): Promise<{ ask: (raw: string) => Promise<string>; close: () => void }> {
  const s = net.connect(SOCKET);
  await new Promise((r) => s.once('connect', r));
  let buf = '';
  let waiting: ((x: string) => void) | undefined;
  s.on('data', (c) => {
    buf += c.toString('latin1');
    if (waiting && buf.includes('\r\n')) { const w = waiting; waiting = undefined; const out = buf; buf = ''; w(out); }
  });
  return { ask: (raw) => new Promise((resolve) => { waiting = resolve; s.write(raw); }), close: () => s.destroy() };
}

async function call(k: Awaited<ReturnType<typeof client>>, callId: string): Promise<void> {
  const init = `init\r\nruri: sip:0031650222333@example.com\r\ndiverter: None\r\nsourceip: 192.0.2.10\r\ncallid: ${callId}\r\n`
    + `from: "Alice Example, Sales" <sip:alice@example.com>;tag=1928301774\r\nfromtag: 1928301774\r\nsip_application: audio\r\n\r\n`;
  if (await k.ask(init) !== 'Limited\r\n') throw new Error(`${callId}: not counted`);
  if (await k.ask(`start\r\ncallid: ${callId}\r\ndialogid: 1:2\r\n\r\n`) !== 'Ok\r\n') throw new Error(`${callId}: start`);
  if (await k.ask(`stop\r\ncallid: ${callId}\r\n\r\n`) !== 'Ok\r\n') throw new Error(`${callId}: stop`);
}

t.test('a full disk: the CDR file falls behind, says so, and catches up once there is room; no line lost or repeated', { skip: mounted ? false : 'needs root to mount a tmpfs' }, async (t) => {
  // 8 KiB of room: about 25 of the 60 lines.
  writeFileSync(path.join(disk, 'filler'), Buffer.alloc(3 * 1024 * 1024 - 8192));
  let app = buildApp(config, { logger: { level: 'info', stream } });
  await app.start();
  t.teardown(() => app.stop());
  const rpc = async (method: string, params: unknown) => (await app.http.inject({ method: 'POST', url: '/rpc', payload: { jsonrpc: '2.0', id: 1, method, params } })).json() as { result?: any };
  const behind = async () => Number(/^cc_cdr_lines_behind (\d+)$/m.exec((await app.http.inject({ url: '/metrics' })).body)?.[1] ?? Number.NaN);
  const readyz = async () => (await app.http.inject({ url: '/readyz' })).json() as { status: string; modules: { cc: { degraded: boolean; detail: { cdr_file?: { file: string; lines_behind: number; error?: string } } } } };
  await rpc('cc.account_set', { account: 'alice@example.com' });

  const k = await client();
  const ids = Array.from({ length: 60 }, (_, i) => `full-${i}@pc33`);
  for (const id of ids) await call(k, id);
  k.close();
  t.equal((await rpc('cc.cdrs', { limit: 1000 })).result.length, 60, 'the database has every CDR');

  const lag = await until('cc_cdr_lines_behind counts the lines the file lacks', async () => { const n = await behind(); return n > 0 ? n : undefined; });
  t.ok(lag > 0 && lag < 60, `${lag} lines behind`);
  const fileLines = readFileSync(FILE, 'utf8').split('\n').length - 1;
  t.ok(fileLines < 60, `the file has ${fileLines} lines while the disk is full`);
  const r = await readyz();
  t.equal(r.modules.cc.degraded, true, '/readyz: call control degraded (calls still served)');
  t.match(r.modules.cc.detail.cdr_file, { file: FILE, lines_behind: Number, error: /ENOSPC/ });
  const failed = logs.filter((l) => /CDR FILE WRITE FAILED/.test(l.msg));
  t.equal(failed.length, 1, 'said once in the log');
  t.match(failed[0], { level: 50, file: FILE, err: /ENOSPC/, behind: Number });

  rmSync(path.join(disk, 'filler'));
  await until('the file catches up', async () => (await behind()) === 0 && !(await readyz()).modules.cc.degraded);
  t.match((await readyz()).modules.cc.detail.cdr_file, { lines_behind: 0, error: undefined });
  const text = readFileSync(FILE, 'utf8');
  t.ok(text.endsWith('\n'), 'no unfinished last line');
  const rows = text.slice(0, -1).split('\n');
  t.same(rows.map((l) => l.split(',')[0]), ids, 'every CDR once, in order');
  t.ok(rows.every((l) => l.split(',').length === 18 && /,normal,,\d+$/.test(l)), 'every line whole: 17 fields (the From quoted, with its comma), cause normal, duration_ms last');
  t.ok(logs.some((l) => l.msg === 'CDR file caught up with the database'), 'and says so');

  // A restart: the cursor is in the store, nothing is written twice.
  await app.stop();
  app = buildApp(config, { logger: { level: 'info', stream } });
  await app.start();
  const k2 = await client();
  await call(k2, 'after-restart@pc33');
  k2.close();
  await until('the line of the call after the restart', async () => readFileSync(FILE, 'utf8').includes('after-restart@pc33'));
  t.same(readFileSync(FILE, 'utf8').slice(0, -1).split('\n').map((l) => l.split(',')[0]), [...ids, 'after-restart@pc33'], 'nothing repeated after the restart');
});
