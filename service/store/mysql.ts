import mysql, { type Pool, type PoolConnection, type RowDataPacket } from 'mysql2/promise';
import { SCHEMA_TABLE, StoreError, type Database, type Migration, type Row, type SqlValue, type Statement } from './database.js';

// The statement's data cannot be stored (duplicate key, too long, out of range, wrong value,
// NULL where none may be, a foreign key): retrying it changes nothing.
const POISON = new Set([1048, 1062, 1264, 1265, 1292, 1366, 1406, 1452, 1586, 3140]);

function storeError(err: unknown): StoreError {
  const e = err as { message?: string; errno?: number; code?: string; fatal?: boolean };
  return new StoreError(e.message ?? String(err), !(e.errno !== undefined && POISON.has(e.errno)), e.code);
}

/**
 * MySQL/MariaDB through mysql2 (db_url mysql://user:pass@host:port/db). Reads use the pool; writes
 * run one transaction at a time on one connection, with statements prepared once per connection
 * (mysql2's execute cache). The pool reconnects by itself after an outage.
 */
export class MysqlDatabase implements Database {
  readonly kind = 'mysql';
  private pool: Pool | undefined;
  private writer: PoolConnection | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  /** A statement (or a connect) that takes longer fails, and its connection is dropped: a hung server never holds the store. */
  private readonly timeout: number;

  constructor(private readonly url: string, opts: { queryTimeoutMs?: number } = {}) {
    this.timeout = opts.queryTimeoutMs ?? 5000;
  }

  async open(): Promise<void> {
    const pool = mysql.createPool({ uri: this.url, connectionLimit: 4, connectTimeout: Math.min(this.timeout, 10_000), enableKeepAlive: true });
    this.pool = pool;
    await pool.query(`CREATE TABLE IF NOT EXISTS ${SCHEMA_TABLE} (component VARCHAR(32) PRIMARY KEY, version INT NOT NULL)`);
  }

  async migrate(component: string, migrations: readonly Migration[], formerly?: string): Promise<number> {
    const pool = this.handle();
    if (formerly) {
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT component FROM ${SCHEMA_TABLE} WHERE component IN (?, ?)`, [component, formerly]);
      if (rows.length === 1 && rows[0]!.component === formerly) await pool.query(`UPDATE ${SCHEMA_TABLE} SET component = ? WHERE component = ?`, [component, formerly]);
    }
    let version = await this.schemaVersion(component);
    // MySQL commits DDL implicitly: each statement stands alone, and the version follows.
    for (const m of migrations.filter((x) => x.version > version)) {
      for (const sql of m.mysql) {
        if (sql.startsWith('INDEX ')) await this.createIndexIfMissing(pool, sql);
        else await pool.query(sql);
      }
      await pool.query(`INSERT INTO ${SCHEMA_TABLE} (component, version) VALUES (?, ?) ON DUPLICATE KEY UPDATE version = VALUES(version)`, [component, m.version]);
      version = m.version;
    }
    return version;
  }

  /** "INDEX [UNIQUE ]name ON table (cols)": an operator's existing table may lack ours. */
  private async createIndexIfMissing(pool: Pool, spec: string): Promise<void> {
    const m = /^INDEX (UNIQUE )?(\w+) ON (\w+) (\(.+\))$/s.exec(spec);
    if (!m) throw new Error(`bad index spec: ${spec}`);
    const [found] = await pool.query<RowDataPacket[]>('SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?', [m[3], m[2]]);
    if (found.length === 0) await pool.query(`CREATE ${m[1] ?? ''}INDEX ${m[2]} ON ${m[3]} ${m[4]}`);
  }

  async schemaVersion(component: string): Promise<number> {
    const [rows] = await this.handle().query<RowDataPacket[]>(`SELECT version FROM ${SCHEMA_TABLE} WHERE component = ?`, [component]);
    return Number(rows[0]?.version ?? 0);
  }

  async query(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    let conn: PoolConnection | undefined;
    try {
      conn = await this.handle().getConnection();
      const [rows] = await this.within(conn, conn.query(sql, params as SqlValue[]));
      return Array.isArray(rows) ? (rows as Row[]) : [];
    } catch (err) {
      throw err instanceof StoreError ? err : storeError(err);
    } finally {
      conn?.release();
    }
  }

  transaction(statements: readonly Statement[]): Promise<void> {
    if (statements.length === 0) return Promise.resolve();
    const run = this.chain.then(() => this.runTransaction(statements));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async runTransaction(statements: readonly Statement[]): Promise<void> {
    let conn: PoolConnection;
    try {
      conn = this.writer ??= await this.handle().getConnection();
    } catch (err) {
      throw storeError(err);
    }
    try {
      await this.within(conn, (async () => {
        await conn.beginTransaction();
        for (const s of statements) await conn.execute(s.sql, s.params as SqlValue[]);
        await conn.commit();
      })());
    } catch (err) {
      const e = err instanceof StoreError ? err : storeError(err);
      await conn.rollback().catch(() => undefined);
      // A connection that failed is not trusted again; the pool gives a fresh one next time.
      if (e.transient) {
        this.writer = undefined;
        conn.destroy();
      }
      throw e;
    }
  }

  /**
   * The work on `conn`, or a transient StoreError once the timeout passes (a hung or black-holed
   * server): the connection is destroyed, so nothing waits on it again.
   */
  private async within<T>(conn: PoolConnection, work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        conn.destroy();
        reject(new StoreError(`MySQL did not answer within ${this.timeout} ms`, true, 'TIMEOUT'));
      }, this.timeout);
    });
    work.catch(() => undefined); // a late failure of abandoned work is not unhandled
    try {
      return await Promise.race([work, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.chain;
    this.writer?.release();
    this.writer = undefined;
    await this.pool?.end();
    this.pool = undefined;
  }

  private handle(): Pool {
    if (!this.pool) throw new StoreError('store is not open', true);
    return this.pool;
  }
}
