import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { SCHEMA_TABLE, StoreError, type Database, type Migration, type Row, type SqlValue, type Statement } from './database.js';

type Reply = { id: number; ok: true; rows?: Row[] } | { id: number; ok: false; error: string; code?: string; transient: boolean };

/**
 * The embedded default: SQLite through better-sqlite3 in WAL mode with synchronous=FULL, so a
 * committed row survives kill -9 and power loss. One file, no server. The connection lives in a
 * worker thread; requests are answered in the order they were sent.
 */
export class SqliteDatabase implements Database {
  readonly kind = 'sqlite';
  private worker: Worker | undefined;
  private opened = false;
  private nextId = 1;
  /** SQL text → the number the worker knows it by (sent once per worker). */
  private readonly numbers = new Map<string, number>();
  private readonly pending = new Map<number, { resolve: (r: Row[]) => void; reject: (e: StoreError) => void }>();

  constructor(readonly file: string) {}

  async open(): Promise<void> {
    mkdirSync(path.dirname(this.file), { recursive: true });
    this.opened = true;
    await this.send({ op: 'exec', sql: `CREATE TABLE IF NOT EXISTS ${SCHEMA_TABLE} (component VARCHAR(32) PRIMARY KEY, version INTEGER NOT NULL)` });
  }

  /** The worker owning the connection; a worker that died is replaced at the next request. */
  private spawn(): Worker {
    const fromSource = import.meta.url.endsWith('.ts');
    const url = new URL(fromSource ? './sqlite-worker.ts' : './sqlite-worker.js', import.meta.url);
    // Run from TypeScript (tests, development), the worker registers tsx before loading its code.
    const worker = fromSource
      ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true, workerData: { file: this.file } })
      : new Worker(url, { workerData: { file: this.file } });
    this.numbers.clear();
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.rows ?? []);
      else p.reject(new StoreError(r.error, r.transient, r.code));
    });
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new StoreError(`sqlite worker: ${err.message}`, true));
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    return worker;
  }

  async migrate(component: string, migrations: readonly Migration[], formerly?: string): Promise<number> {
    if (formerly) await this.query(`UPDATE ${SCHEMA_TABLE} SET component = ? WHERE component = ? AND NOT EXISTS (SELECT 1 FROM ${SCHEMA_TABLE} WHERE component = ?)`, [component, formerly, component]);
    let version = await this.schemaVersion(component);
    for (const m of migrations.filter((x) => x.version > version)) {
      // DDL and the version row in one transaction: a migration is applied whole or not at all.
      const sql = [...m.sqlite, `INSERT INTO ${SCHEMA_TABLE} (component, version) VALUES ('${component}', ${m.version}) ON CONFLICT(component) DO UPDATE SET version = excluded.version`];
      await this.send({ op: 'exec', sql: `BEGIN; ${sql.join(';\n')}; COMMIT;` }).catch(async (err: unknown) => {
        await this.send({ op: 'exec', sql: 'ROLLBACK' }).catch(() => undefined);
        throw err;
      });
      version = m.version;
    }
    return version;
  }

  async schemaVersion(component: string): Promise<number> {
    const rows = await this.query(`SELECT version FROM ${SCHEMA_TABLE} WHERE component = ?`, [component]);
    return Number(rows[0]?.version ?? 0);
  }

  query(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return this.send({ op: 'query', sql, params: [...params] });
  }

  async transaction(statements: readonly Statement[]): Promise<void> {
    if (statements.length === 0) return;
    const define: Array<[number, string]> = [];
    const numbered = statements.map((s): [number, readonly SqlValue[]] => {
      let n = this.numbers.get(s.sql);
      if (n === undefined) {
        n = this.numbers.size + 1;
        this.numbers.set(s.sql, n);
        define.push([n, s.sql]);
      }
      return [n, s.params];
    });
    await this.send({ op: 'tx', define, statements: numbered });
  }

  /**
   * After the restore: the worker thread that read every row is replaced by a fresh one (at the
   * next request), so its heap, grown to hold them, goes with it. Only when nothing is pending.
   */
  async settle(): Promise<void> {
    const worker = this.worker;
    if (!worker || this.pending.size > 0) return;
    this.worker = undefined;
    worker.removeAllListeners('exit');
    worker.removeAllListeners('error');
    await worker.terminate();
  }

  async close(): Promise<void> {
    if (this.worker) await this.send({ op: 'close' }).catch(() => undefined);
    this.opened = false;
    await this.worker?.terminate();
    this.worker = undefined;
  }

  private send(req: Record<string, unknown>): Promise<Row[]> {
    if (!this.opened) return Promise.reject(new StoreError('store is not open', true));
    const worker = (this.worker ??= this.spawn());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id });
    });
  }
}
