// The CDR file follows the CDR table of a real SQLite store: from where it was first configured,
// one line per CDR in id order, never lost or repeated across failures, crashes and rotation. The
// full disk on a real tmpfs, through the whole service: cdr-full-disk.test.ts.
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Cdr } from '../../../service/cc/types.js';
import { CcStore } from '../../../service/store/cc-tables.js';
import { CdrFile, type CdrSource } from '../../../service/store/cdr-log.js';
import { Committer } from '../../../service/store/committer.js';
import { openDatabase } from '../../../service/store/open-database.js';
import { waitUntil } from '../../support/wait.js';

const T = Date.UTC(2027, 0, 15, 12);
const cdr = (o: Partial<Cdr> = {}): Cdr => ({
  callId: 'c1@host', account: 'joe@example.com', from: '<sip:joe@example.com>', to: 'sip:200@example.com', sourceIp: '192.0.2.10',
  startMs: T, connectMs: T + 1000, endMs: T + 2000, setupSeconds: 1, durationSeconds: 1, durationMs: 1000, billableSeconds: 1, connectFee: 0, amount: 3,
  ratePrefix: undefined, cause: 'caller', code: undefined, ...o,
});

interface Logged { level: string; msg: string; o: Record<string, unknown> }
async function setup(t: Test) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cdr-file-'));
  const db = openDatabase(`sqlite:${dir}/s.sqlite`);
  await db.open();
  const store = new CcStore(db);
  await store.migrate();
  const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined };
  const committer = new Committer(db, quiet);
  const logs: Logged[] = [];
  const log = {
    error: (o: object, msg: string) => logs.push({ level: 'error', msg, o: o as Record<string, unknown> }),
    warn: (o: object, msg: string) => logs.push({ level: 'warn', msg, o: o as Record<string, unknown> }),
    info: (o: object, msg: string) => logs.push({ level: 'info', msg, o: o as Record<string, unknown> }),
  };
  let seq = 0;
  const files: CdrFile[] = [];
  t.teardown(async () => {
    for (const f of files) await f.close();
    await committer.drain(2000);
    await db.close();
  });
  return {
    dir, db, logs,
    /** n CDRs committed, named c<seq>; their Call-IDs. */
    async add(n: number): Promise<string[]> {
      const ids = Array.from({ length: n }, () => `c${++seq}`);
      await committer.commit(store.changes(ids.map((callId, i) => ({ kind: 'cdr' as const, cdr: cdr({ callId, startMs: T + seq * 10 + i }) }))));
      return ids;
    },
    file(file: string, wrap: (s: CdrSource) => CdrSource = (x) => x): CdrFile {
      const f = new CdrFile({ file, fields: ['call_id', 'amount'], source: wrap(store.cdrSource((c) => void committer.commit(c))), log, minRetryMs: 20, maxRetryMs: 100 });
      files.push(f);
      return f;
    },
    /** The cursor as stored (after the queued writes). */
    async cursor() {
      await committer.drain(2000);
      return store.cdrSource(() => undefined).cursor();
    },
  };
}

const lines = (ids: readonly string[]): string => ids.map((id) => `${id},3\n`).join('');
const until = (what: string, probe: () => boolean): Promise<true> => waitUntil(what, probe, { timeoutMs: 20_000 });

t.test('the file starts with the calls that end once it is configured, then follows the table in id order', async (t) => {
  const s = await setup(t);
  await s.add(3);
  const file = path.join(s.dir, 'sub', 'cdr.csv');
  const f = s.file(file);
  await f.start();
  await f.idle();
  t.equal(readFileSync(file, 'utf8'), '', 'the CDRs of before are not written out (a store of an older release wrote them itself)');
  const later = await s.add(2);
  f.kick();
  const more = await s.add(1);
  f.kick();
  await f.idle();
  t.equal(readFileSync(file, 'utf8'), lines([...later, ...more]));
  t.match(await s.cursor(), { lastId: 6, offset: Buffer.byteLength(lines([...later, ...more])) }, 'the cursor is stored with the CDRs');
  t.same([f.behind, f.error], [0, undefined]);
});

t.test('after a crash: lines past the stored cursor are not written again, an unfinished last line is cut and written whole', async (t) => {
  const s = await setup(t);
  const file = path.join(s.dir, 'cdr.csv');
  const f = s.file(file);
  await f.start();
  await f.idle();
  const first = await s.add(3);
  f.kick();
  await f.idle();
  await f.close();
  // The service died after writing c2 and c3 but before their cursor was stored, and while it
  // was writing c4's line.
  await s.db.query(`UPDATE cc_cdr_cursor SET last_id = 1, file_offset = ${Buffer.byteLength(lines(first.slice(0, 1)))}`);
  const next = await s.add(2);
  appendFileSync(file, `${next[0]},`);
  const again = s.file(file);
  await again.start();
  await again.idle();
  t.equal(readFileSync(file, 'utf8'), lines([...first, ...next]), 'each CDR once, every line whole');
  t.ok(s.logs.some((l) => l.level === 'warn' && /unfinished last line was cut off/.test(l.msg)), 'the repair is logged');
  t.match(await s.cursor(), { lastId: 5, offset: Buffer.byteLength(lines([...first, ...next])) });
});

t.test('rotated (moved away, or removed): the next lines go to a new file at the path, none lost', async (t) => {
  const s = await setup(t);
  const file = path.join(s.dir, 'cdr.csv');
  const f = s.file(file);
  await f.start();
  await f.idle();
  const before = await s.add(2);
  f.kick();
  await f.idle();
  renameSync(file, `${file}.1`);
  const after = await s.add(2);
  f.kick();
  await f.idle();
  t.equal(readFileSync(`${file}.1`, 'utf8'), lines(before));
  t.equal(readFileSync(file, 'utf8'), lines(after));
  // Another file at the path, ending without a newline: not ours to cut, our lines start on their own.
  renameSync(file, `${file}.2`);
  appendFileSync(file, 'someone else\'s, unfinished');
  const third = await s.add(1);
  f.kick();
  await f.idle();
  t.equal(readFileSync(file, 'utf8'), `someone else's, unfinished\n${lines(third)}`);
});

t.test('cut short in place (copytruncate): the lines go on from its end, and a restart repeats none', async (t) => {
  const s = await setup(t);
  const file = path.join(s.dir, 'cdr.csv');
  const f = s.file(file);
  await f.start();
  await f.idle();
  await s.add(3);
  f.kick();
  await f.idle();
  truncateSync(file, 0);
  const after = await s.add(2);
  f.kick();
  await f.idle();
  t.equal(readFileSync(file, 'utf8'), lines(after));
  t.match(await s.cursor(), { lastId: 5, offset: Buffer.byteLength(lines(after)) }, 'the cursor knows where the file ends now');
  await f.close();
  const again = s.file(file);
  await again.start();
  await again.idle();
  t.equal(readFileSync(file, 'utf8'), lines(after), 'nothing written twice after a restart');
});

t.test('a file that cannot be written: the lines are behind, said once, retried, and caught up when it can be', async (t) => {
  const s = await setup(t);
  const file = path.join(s.dir, 'cdr.csv');
  mkdirSync(file); // open() fails: EISDIR
  const f = s.file(file);
  await f.start();
  await until('the first failure', () => f.error !== undefined);
  const during = await s.add(4);
  f.kick();
  await until('the retries count the lines behind', () => f.behind === 4);
  t.match(f.error, /EISDIR/);
  await until('a few retries', () => f.stats.errors >= 3);
  t.equal(s.logs.filter((l) => l.level === 'error').length, 1, 'one error log line, not one per retry');
  t.match(s.logs.find((l) => l.level === 'error'), { msg: 'CDR FILE WRITE FAILED: CDR lines are behind the database; retrying', o: { file, err: /EISDIR/ } });
  rmdirSync(file);
  await until('caught up', () => f.error === undefined && f.behind === 0);
  t.equal(readFileSync(file, 'utf8'), lines(during), 'the CDRs of the outage, once each');
  t.match(s.logs.at(-1), { level: 'info', msg: 'CDR file caught up with the database', o: { lines: 4 } });
});

t.test('the CDR table cannot be read (the database away): said as such, and the file catches up when it is back', async (t) => {
  const s = await setup(t);
  const file = path.join(s.dir, 'cdr.csv');
  let away = false;
  const f = s.file(file, (src) => ({ ...src, after: async (id, limit) => { if (away) throw new Error('connect ECONNREFUSED'); return src.after(id, limit); } }));
  await f.start();
  await f.idle();
  away = true;
  const during = await s.add(2);
  f.kick();
  await until('the failure', () => f.error !== undefined);
  t.match(s.logs.find((l) => l.level === 'error'), { msg: 'CDR LINES BEHIND: the CDR table cannot be read; retrying', o: { err: 'connect ECONNREFUSED', behind: 2 } });
  away = false;
  await until('caught up', () => f.error === undefined && f.behind === 0);
  t.equal(readFileSync(file, 'utf8'), lines(during));
});
