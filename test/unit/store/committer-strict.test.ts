// The committer's strict (HA) mode over a real SQLite database behind a switchable fault: never
// an acknowledgement without a commit, and a FencedError stops it for good.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Committer } from '../../../service/store/committer.js';
import { FencedError, StoreError, type Database, type Statement } from '../../../service/store/database.js';
import { SqliteDatabase } from '../../../service/store/sqlite.js';
import { until, within } from '../../support/wait.js';

const log = { error: () => undefined, warn: () => undefined, info: () => undefined };
const put = (k: string, v: string) => ({ key: k, statements: [{ sql: 'INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', params: [k, v] }] });

async function faulty(t: { teardown(fn: () => unknown): void }) {
  const real = new SqliteDatabase(path.join(mkdtempSync(path.join(tmpdir(), 'sca-strict-')), 'c.sqlite'));
  await real.open();
  await real.query('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL CHECK (length(v) < 20))');
  t.teardown(() => real.close());
  const state = { fault: undefined as StoreError | undefined, tries: 0 };
  const db: Database = {
    kind: 'sqlite', open: () => real.open(), migrate: (...a) => real.migrate(...a), schemaVersion: (x) => real.schemaVersion(x),
    query: (...a) => real.query(...a), close: () => real.close(),
    transaction: (s: readonly Statement[]) => { state.tries++; return state.fault ? Promise.reject(state.fault) : real.transaction(s); },
  };
  const rows = async () => (await real.query('SELECT k, v FROM kv ORDER BY k')).map((r) => `${String(r.k)}=${String(r.v)}`);
  return { db, state, rows };
}

const settled = (p: Promise<unknown>) => Promise.race([p.then(() => 'resolved', (e: Error) => `rejected: ${e.constructor.name}`), new Promise((r) => setImmediate(() => setTimeout(() => r('pending'), 50)))]);

t.test('strict: while the database is away a commit waits (no serving from memory) and resolves once written', async (t) => {
  const { db, state, rows } = await faulty(t);
  const c = new Committer(db, log, { strict: true });
  state.fault = new StoreError('connect ECONNREFUSED', true, 'ECONNREFUSED');
  const first = c.commit([put('a', '1')]);
  const second = c.commit([put('b', '1')]);
  t.equal(await settled(first), 'pending', 'not acknowledged while the write fails');
  await until(() => state.tries >= 2, 3000, 'a retry');
  t.equal(await settled(second), 'pending');
  t.ok(c.degraded, 'the store is failing (for /readyz)');
  state.fault = undefined;
  await within(Promise.all([first, second]), 5000, 'both commits once the database is back');
  t.same(await rows(), ['a=1', 'b=1'], 'acknowledged means stored');
  t.notOk(c.degraded);
  c.stop();
});

t.test('not strict (the default) still serves from memory: the first failure resolves at once', async (t) => {
  const { db, state } = await faulty(t);
  const c = new Committer(db, log);
  state.fault = new StoreError('down', true);
  t.equal(await settled(c.commit([put('a', '1')])), 'resolved');
  c.stop();
});

t.test('a FencedError: the waiting commits reject with it, nothing queued is written, later commits reject, the hook runs once', async (t) => {
  const { db, state, rows } = await faulty(t);
  const fenced: FencedError[] = [];
  const c = new Committer(db, log, { strict: true, onFenced: (e) => fenced.push(e) });
  await c.commit([put('a', '1')]);
  state.fault = new FencedError('write-fence changed 0 rows');
  const waiting = [c.commit([put('b', '1')]), c.commit([put('c', '1')])];
  for (const w of waiting) t.equal(await settled(w), 'rejected: FencedError');
  t.equal(fenced.length, 1);
  t.ok(c.fenced instanceof FencedError);
  state.fault = undefined;
  t.equal(await settled(c.commit([put('d', '1')])), 'rejected: FencedError', 'a stopped committer writes nothing more');
  t.equal(c.pending, 0);
  t.same(await rows(), ['a=1'], 'only what was committed before the fence');
});

t.test('a fence met while writing row by row (after a refused row) is not mistaken for a refused row', async (t) => {
  const { db, state, rows } = await faulty(t);
  const fenced: FencedError[] = [];
  const c = new Committer(db, log, { strict: true, onFenced: (e) => fenced.push(e) });
  let n = 0;
  const inner = db.transaction;
  db.transaction = (s) => (++n === 1 ? Promise.reject(new StoreError('value too long', false)) : (state.fault = new FencedError('fenced'), inner(s)));
  const p = c.commit([put('a', '1'), put('b', '2')]);
  t.equal(await settled(p), 'rejected: FencedError');
  t.equal(c.stats.setAside, 0, 'nothing set aside as if its data were bad');
  t.equal(fenced.length, 1);
  t.same(await rows(), []);
});

t.test('strict: an answer\'s write timeout (withinMs) is ignored: a slow write is waited for, never answered from memory', async (t) => {
  const { db, rows } = await faulty(t);
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  const inner = db.transaction;
  db.transaction = async (s) => { await gate; return inner(s); };
  const strict = new Committer(db, log, { strict: true });
  const first = strict.commit([put('a', '1')], 20);
  t.equal(await settled(first), 'pending', 'still waiting well past withinMs');
  t.notOk(strict.degraded, 'not degraded: nothing was answered without its write');
  open();
  await within(first, 5000, 'the slow write');
  t.same(await rows(), ['a=1'], 'resolved once stored');
  const loose = new Committer(db, log);
  let hold!: () => void;
  const gate2 = new Promise<void>((r) => { hold = r; });
  db.transaction = async (s) => { await gate2; return inner(s); };
  t.equal(await settled(loose.commit([put('b', '1')], 20)), 'resolved', 'without strict, the answer goes ahead (the control)');
  hold();
  await loose.drain(3000);
});
