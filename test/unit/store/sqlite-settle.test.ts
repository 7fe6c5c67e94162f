// SQLite's settle(): after the restore the worker thread that read every row is replaced, so its
// grown heap goes (the compiled service on 100k subscriptions: 257 → 230 MiB RSS,
// npm run bench:restore); nothing in flight is lost and the store goes on as before.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import t from 'tap';
import { SqliteDatabase } from '../../../service/store/sqlite.js';

const threadOf = (db: SqliteDatabase): number | undefined => (db as unknown as { worker?: Worker }).worker?.threadId;

t.test('settle replaces the worker thread; the data and the next statements are unaffected', async (t) => {
  const db = new SqliteDatabase(path.join(mkdtempSync(path.join(tmpdir(), 'sca-settle-')), 'sca.sqlite'));
  await db.open();
  t.teardown(() => db.close());
  await db.transaction([{ sql: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)', params: [] }]);
  await db.transaction(Array.from({ length: 100 }, (_, i) => ({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', params: [`k${i}`, i] })));
  const before = threadOf(db);
  t.ok(before !== undefined, 'a worker holds the connection');
  await db.settle();
  t.equal(threadOf(db), undefined, 'the old worker is gone');
  t.same(await db.query('SELECT COUNT(*) AS n FROM kv'), [{ n: 100 }], 'a new worker reads what the old one wrote');
  t.not(threadOf(db), before, 'on a new thread');
  await db.transaction([{ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', params: ['after', 1] }]);
  t.same(await db.query('SELECT v FROM kv WHERE k = ?', ['after']), [{ v: 1 }], 'and writes as before (statements prepared again)');
});

t.test('settle with a statement in flight leaves the worker alone', async (t) => {
  const db = new SqliteDatabase(path.join(mkdtempSync(path.join(tmpdir(), 'sca-settle-')), 'sca.sqlite'));
  await db.open();
  t.teardown(() => db.close());
  const thread = threadOf(db);
  const inFlight = db.query('SELECT 1 AS one');
  await db.settle();
  t.same(await inFlight, [{ one: 1 }], 'the statement completes');
  t.equal(threadOf(db), thread, 'the same worker');
});
