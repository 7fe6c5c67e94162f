// The committer over a real SQLite database: group commit, rows replaced in place, degraded mode
// and recovery, a refused row set aside while the others are written, a dead worker replaced.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Committer } from '../../../service/store/committer.js';
import { StoreError, type Database, type Statement } from '../../../service/store/database.js';
import { SqliteDatabase } from '../../../service/store/sqlite.js';
import { waitUntil } from '../../support/wait.js';

const logs: string[] = [];
const log = { error: (_o: object, m: string) => logs.push(m), warn: (_o: object, m: string) => logs.push(m), info: (_o: object, m: string) => logs.push(m) };

async function sqlite(t: { teardown(fn: () => unknown): void }): Promise<SqliteDatabase> {
  const db = new SqliteDatabase(path.join(mkdtempSync(path.join(tmpdir(), 'sca-commit-')), 'c.sqlite'));
  await db.open();
  await db.query('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL CHECK (length(v) < 20))');
  t.teardown(() => db.close());
  return db;
}
const put = (k: string, v: string) => ({ key: k, statements: [{ sql: 'INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', params: [k, v] }] });
const rows = async (db: Database) => (await db.query('SELECT k, v FROM kv ORDER BY k')).map((r) => `${String(r.k)}=${String(r.v)}`);

t.test('changes made while a transaction runs go together in the next one; acknowledged means stored', async (t) => {
  const db = await sqlite(t);
  const c = new Committer(db, log);
  const first = c.commit([put('a', '1')]);
  const rest = Promise.all([c.commit([put('b', '1')]), c.commit([put('c', '1')]), c.commit([put('b', '2')])]);
  await first;
  t.ok((await rows(db)).includes('a=1'), 'the first commit is stored when it resolves');
  await rest;
  t.same(await rows(db), ['a=1', 'b=2', 'c=1'], 'a later change of a row replaced the earlier one');
  t.equal(c.stats.commits, 2, 'two transactions for four changes');
});

t.test('a commit without changes made during a write resolves when that write ends, not at the next one', async (t) => {
  const db = await sqlite(t);
  const c = new Committer(db, log);
  const order: string[] = [];
  const write = c.commit([put('a', '1')]).then(() => order.push('write'));
  // Found by 50 competing seizes: the 480s (no changes) waited for a write that never came.
  const empty = c.commit([]).then(() => order.push('empty'));
  const settled = await Promise.race([Promise.all([write, empty]).then(() => 'both'), new Promise((r) => setTimeout(() => r('stuck'), 2000))]);
  t.equal(settled, 'both', 'both resolve without another write');
  t.same(order, ['write', 'empty'], 'in the order they were made');
  t.equal(c.stats.commits, 1);
});

t.test('a database that is away: degraded, answers at once, retries, and writes everything when back', async (t) => {
  let down = true;
  const real = await sqlite(t);
  const flaky: Database = { ...real, kind: 'sqlite', transaction: (s: readonly Statement[]) => (down ? Promise.reject(new StoreError('database is down', true)) : real.transaction(s)),
    open: () => real.open(), migrate: (...a) => real.migrate(...a), schemaVersion: (x) => real.schemaVersion(x), query: (...a) => real.query(...a), close: () => real.close() };
  const c = new Committer(flaky, log);
  await c.commit([put('a', '1')]);
  t.ok(c.degraded, 'degraded after the failure');
  await c.commit([put('b', '1'), put('a', '2')]);
  t.equal(c.pending, 2, 'queued, one entry per row');
  down = false;
  t.equal(await c.drain(3000), 0, 'everything written once the database is back');
  t.notOk(c.degraded);
  t.same(await rows(real), ['a=2', 'b=1']);
  c.stop();
});

t.test('a row the database refuses is set aside with a log line; the rows with it are written', async (t) => {
  const db = await sqlite(t);
  const c = new Committer(db, log);
  await c.commit([put('a', '1'), put('bad', 'x'.repeat(50)), put('c', '1')]);
  t.same(await rows(db), ['a=1', 'c=1']);
  t.equal(c.stats.setAside, 1);
  t.notOk(c.degraded, 'not an outage');
  t.ok(logs.some((l) => /STORE REFUSED A ROW/.test(l)));
  await c.commit([put('d', '1')]);
  t.same(await rows(db), ['a=1', 'c=1', 'd=1'], 'and writing goes on');
});

t.test('a SQLite worker that dies is replaced at the next request; nothing acknowledged is lost', async (t) => {
  const db = await sqlite(t);
  const c = new Committer(db, log);
  await c.commit([put('a', '1')]);
  await (db as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  await c.commit([put('b', '1')]);
  t.equal(await c.drain(3000), 0);
  t.same(await rows(db), ['a=1', 'b=1']);
  c.stop();
});

/** A database in front of the real one whose transactions can be made to fail, recording each attempt. */
function scripted(real: Database, fail: (statements: readonly Statement[], attempt: number) => StoreError | undefined) {
  const attempts: Array<{ at: number; keys: string[] }> = [];
  const db: Database = {
    kind: 'sqlite', open: () => real.open(), migrate: (...a) => real.migrate(...a), schemaVersion: (x) => real.schemaVersion(x), query: (...a) => real.query(...a), close: () => real.close(),
    transaction: (s: readonly Statement[]) => {
      attempts.push({ at: performance.now(), keys: s.map((x) => String(x.params[0])) });
      const err = fail(s, attempts.length);
      return err ? Promise.reject(err) : real.transaction(s);
    },
  };
  return { db, attempts };
}

t.test('an outage is retried with a backoff that doubles from 200 ms; the first write that works ends it', async (t) => {
  const real = await sqlite(t);
  const seen: Array<{ msg: string; retryMs?: number }> = [];
  const keep = { error: (o: object, m: string) => seen.push({ msg: m, ...(o as { retryMs?: number }) }), warn: () => undefined, info: (_o: object, m: string) => seen.push({ msg: m }) };
  let down = 4;
  const { db, attempts } = scripted(real, () => (down-- > 0 ? new StoreError('connection refused', true) : undefined));
  const c = new Committer(db, keep);
  t.teardown(() => c.stop());
  await c.commit([put('a', '1')]);
  t.ok(c.degraded, 'degraded at the first failure, and the commit answered at once');
  await waitUntil('the queued row written', async () => (await rows(real)).includes('a=1'), { timeoutMs: 10_000 });
  t.same(seen.filter((l) => l.msg.startsWith('STORE WRITE FAILED')).map((l) => l.retryMs), [200, 400, 800, 1600], 'each retry waits twice as long');
  const gaps = attempts.slice(1).map((x, i) => x.at - attempts[i]!.at);
  t.ok(gaps.every((g, i) => g >= 200 * 2 ** i - 5), `and really waited: ${gaps.map(Math.round).join(', ')} ms`);
  t.equal(attempts.length, 5, 'no attempt between the retries');
  t.notOk(c.degraded, 'the first write that works ends the outage');
  t.ok(seen.some((l) => l.msg === 'store is back; queued rows written'));
  down = 1;
  await c.commit([put('b', '1')]);
  t.same(seen.filter((l) => l.msg.startsWith('STORE WRITE FAILED')).map((l) => l.retryMs).at(-1), 200, 'the next outage starts again at 200 ms');
  t.equal(await c.drain(5000), 0);
});

t.test('a transient error while rows are retried one by one: the rows before it stay written, the rest are retried', async (t) => {
  const real = await sqlite(t);
  const local: string[] = [];
  const keep = { error: (_o: object, m: string) => local.push(m), warn: () => undefined, info: (_o: object, m: string) => local.push(m) };
  // The batch fails for its bad row; alone, 'c' then meets an outage once.
  let cOutage = 1;
  const { db, attempts } = scripted(real, (s) => {
    if (s.length === 1 && String(s[0]!.params[0]) === 'c' && cOutage-- > 0) return new StoreError('connection lost', true);
    return undefined;
  });
  const c = new Committer(db, keep);
  t.teardown(() => c.stop());
  await c.commit([put('a', '1'), put('c', '1'), put('bad', 'x'.repeat(50)), put('d', '1')]);
  t.ok(c.degraded, 'the outage during the row-by-row retry makes the store degraded');
  t.same(await rows(real), ['a=1'], 'the row before it is written');
  t.equal(await c.drain(5000), 0, 'the rest are retried and written');
  t.same(await rows(real), ['a=1', 'c=1', 'd=1'], 'every good row, once');
  t.equal(c.stats.setAside, 1, 'the bad row set aside, once');
  t.notOk(c.degraded);
  t.same(attempts.map((x) => x.keys.join('+')), ['a+c+bad+d', 'a', 'c', 'c+bad+d', 'c', 'bad', 'd'],
    'batch, then one by one until the outage, then the rest as a batch, then one by one past the bad row');
});
