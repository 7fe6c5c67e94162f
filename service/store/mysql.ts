import mysql, { type Connection, type Pool, type PoolConnection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { FencedError, SCHEMA_TABLE, StoreError, type Database, type Migration, type Row, type SqlValue, type Statement } from './database.js';
import { DbHosts, hostOfUrl, parseDbHost, urlForHost } from './db-hosts.js';

// The statement's data cannot be stored (duplicate key, too long, out of range, wrong value,
// NULL where none may be, a foreign key): retrying it changes nothing.
const POISON = new Set([1048, 1062, 1264, 1265, 1292, 1366, 1406, 1452, 1586, 3140]);

function storeError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { message?: string; errno?: number; code?: string; fatal?: boolean };
  return new StoreError(e.message ?? String(err), !(e.errno !== undefined && POISON.has(e.errno)), e.code);
}

// The host itself is gone or unusable (refused, reset, silent, or a Galera node outside the
// primary component: 1047): the next host may serve. Anything else is this statement's trouble.
const HOST_LOST = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'TIMEOUT']);
function hostLost(err: unknown): boolean {
  const e = err as { errno?: number; code?: string; fatal?: boolean };
  return e.fatal === true || e.errno === 1047 || (e.code !== undefined && HOST_LOST.has(e.code));
}

/** Off Galera (or off MariaDB) a session variable of theirs does not exist: 1193, nothing to set. */
const UNKNOWN_VARIABLE = 1193;

export interface MysqlOptions {
  /** A statement (or a connect) that takes longer fails and its connection is dropped (default 5000). */
  readonly queryTimeoutMs?: number;
  /** Hosts (host:port) tried in order with sticky failover; empty: db_url's own host. */
  readonly hosts?: readonly string[];
  /**
   * HA: pool reads are causal (Galera `wsrep_sync_wait=1`: a load sees every commit acknowledged
   * anywhere in the cluster), and the server ends a write transaction left idle this many seconds
   * (a frozen leader must not hold the fence row's lock through a takeover).
   */
  readonly ha?: { readonly idleWriteTimeoutS: number };
}

/** A connection of its own, outside the pool and the write queue (the lease's). */
export interface DedicatedSession {
  /** Rows of a read, affectedRows of a write; rejects with a StoreError, also after the timeout. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ rows: Row[]; affectedRows: number }>;
  /** host:port it is connected to. */
  readonly host: string;
  readonly closed: boolean;
  close(): void;
}

/** `work`, or a transient StoreError (code TIMEOUT) after `ms`; `onTimeout` drops what it ran on. */
function withTimeout<T>(work: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new StoreError(`${what} did not answer within ${ms} ms`, true, 'TIMEOUT'));
    }, ms);
  });
  work.catch(() => undefined); // a late failure of abandoned work is not unhandled
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/**
 * MySQL/MariaDB through mysql2 (db_url mysql://user:pass@host:port/db). Reads use the pool; writes
 * run one transaction at a time on one connection, with statements prepared once per connection
 * (mysql2's execute cache). The pool reconnects by itself after an outage. With several hosts, a
 * lost connection moves the pool, the writer and any dedicated session to the next host together.
 */
export class MysqlDatabase implements Database {
  readonly kind = 'mysql';
  private pool: Pool | undefined;
  private writer: PoolConnection | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  /** A statement (or a connect) that takes longer fails, and its connection is dropped: a hung server never holds the store. */
  private readonly timeout: number;
  private readonly hosts: DbHosts;
  /** The host generation the pool was made for; the writer's. */
  private poolGeneration = -1;
  private writerGeneration = -1;
  private fence: Statement | undefined;
  /** Tests hold a transaction here, after its statements and before its COMMIT. */
  holdBeforeCommit: (() => Promise<void>) | undefined;

  constructor(private readonly url: string, private readonly opts: MysqlOptions = {}) {
    this.timeout = opts.queryTimeoutMs ?? 5000;
    const listed = (opts.hosts ?? []).map((h) => {
      const parsed = parseDbHost(h);
      if (!parsed) throw new Error(`db_hosts: "${h}" is not host:port`);
      return parsed;
    });
    this.hosts = new DbHosts(listed.length > 0 ? listed : [hostOfUrl(url)]);
  }

  /** host:port in use now (for log lines and tests; the URL itself may hold a password). */
  get currentHost(): string {
    return this.hosts.describe();
  }

  async open(): Promise<void> {
    // Each host once, in order, until one answers.
    for (let tried = 1; ; tried++) {
      const pool = this.createPool();
      try {
        await pool.query(`CREATE TABLE IF NOT EXISTS ${SCHEMA_TABLE} (component VARCHAR(32) PRIMARY KEY, version INT NOT NULL)`);
        return;
      } catch (err) {
        if (tried >= this.hosts.hosts.length || !hostLost(err) || !this.hosts.failed(this.poolGeneration)) throw err;
        void pool.end().catch(() => undefined);
      }
    }
  }

  setFence(fence: Statement | undefined): void {
    this.fence = fence;
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
    let generation = this.hosts.generation;
    try {
      const pool = this.handle();
      generation = this.poolGeneration;
      conn = await pool.getConnection();
      const [rows] = await this.within(conn, conn.query(sql, params as SqlValue[]));
      return Array.isArray(rows) ? (rows as Row[]) : [];
    } catch (err) {
      throw this.failure(err, generation);
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
    // Read once: a transaction is fenced by the epoch it started under.
    const fence = this.fence;
    const generation = this.hosts.generation;
    let conn: PoolConnection;
    try {
      if (this.writer && this.writerGeneration !== generation) {
        this.writer.destroy();
        this.writer = undefined;
      }
      conn = this.writer ??= await this.writerConnection();
    } catch (err) {
      throw this.failure(err, generation);
    }
    try {
      await this.within(conn, (async () => {
        await conn.beginTransaction();
        if (fence) {
          const [r] = await conn.execute<ResultSetHeader>(fence.sql, fence.params as SqlValue[]);
          if (r.affectedRows !== 1) throw new FencedError(`write-fence changed ${r.affectedRows} rows: this node no longer leads`);
        }
        for (const s of statements) await conn.execute(s.sql, s.params as SqlValue[]);
        if (this.holdBeforeCommit) await this.holdBeforeCommit();
        await conn.commit();
      })());
    } catch (err) {
      const e = this.failure(err, generation);
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
  private within<T>(conn: PoolConnection, work: Promise<T>): Promise<T> {
    return withTimeout(work, this.timeout, 'MySQL', () => conn.destroy());
  }

  /** The write connection: in HA its BEGIN waits for no one (the fence is the guard) and it is never left idle in a transaction. */
  private async writerConnection(): Promise<PoolConnection> {
    const conn = await this.handle().getConnection();
    this.writerGeneration = this.poolGeneration;
    if (this.opts.ha) {
      await this.within(conn, this.setSession(conn, 'SET SESSION wsrep_sync_wait = 0'));
      await this.within(conn, this.setSession(conn, `SET SESSION idle_write_transaction_timeout = ${Math.max(1, Math.ceil(this.opts.ha.idleWriteTimeoutS))}`));
    }
    return conn;
  }

  private async setSession(conn: Connection | PoolConnection, sql: string): Promise<void> {
    try {
      await conn.query(sql);
    } catch (err) {
      if ((err as { errno?: number }).errno !== UNKNOWN_VARIABLE) throw err;
    }
  }

  /**
   * A connection outside the pool and the write queue, to the current host, with `setup` run
   * first (a variable the server lacks is skipped); every step times out after `timeoutMs`.
   */
  async dedicated(opts: { timeoutMs: number; setup?: readonly string[] }): Promise<DedicatedSession> {
    const generation = this.hosts.generation;
    const host = this.hosts.describe();
    let conn: Connection | undefined;
    try {
      conn = await withTimeout(mysql.createConnection({ uri: this.hostUrl(), connectTimeout: opts.timeoutMs }), opts.timeoutMs, `connect to ${host}`);
      for (const sql of opts.setup ?? []) await withTimeout(this.setSession(conn, sql), opts.timeoutMs, host);
    } catch (err) {
      conn?.destroy();
      throw this.failure(err, generation);
    }
    const c = conn;
    const hosts = this.hosts;
    let closed = false;
    // A connection mysql2 finds broken emits 'error' (nobody awaits it): the next run reconnects.
    c.on('error', () => { closed = true; });
    const session: DedicatedSession = {
      host,
      // On a host the store has left: all connections move together.
      get closed() { return closed || generation !== hosts.generation; },
      run: async (sql, params = []) => {
        if (session.closed) throw new StoreError('dedicated session closed', true, 'CLOSED');
        try {
          const [r] = await withTimeout(c.query(sql, params as SqlValue[]), opts.timeoutMs, host);
          return Array.isArray(r) ? { rows: r as Row[], affectedRows: 0 } : { rows: [], affectedRows: (r as ResultSetHeader).affectedRows };
        } catch (err) {
          // Whatever went wrong, the session is not trusted again; the caller opens another.
          closed = true;
          c.destroy();
          throw this.failure(err, generation);
        }
      },
      close: () => {
        closed = true;
        c.destroy();
      },
    };
    return session;
  }

  async close(): Promise<void> {
    await this.chain;
    this.writer?.release();
    this.writer = undefined;
    await this.pool?.end();
    this.pool = undefined;
  }

  /** A StoreError; a lost host (from `generation`'s choice) moves every connection to the next. */
  private failure(err: unknown, generation: number): StoreError {
    if (hostLost(err)) this.hosts.failed(generation);
    return storeError(err);
  }

  private hostUrl(): string {
    return this.opts.hosts && this.opts.hosts.length > 0 ? urlForHost(this.url, this.hosts.current) : this.url;
  }

  private createPool(): Pool {
    const pool = mysql.createPool({ uri: this.hostUrl(), connectionLimit: 4, connectTimeout: Math.min(this.timeout, 10_000), enableKeepAlive: true });
    // Queued on each new connection before anything else it runs.
    if (this.opts.ha) pool.pool.on('connection', (c) => c.query('SET SESSION wsrep_sync_wait = 1', () => undefined));
    this.pool = pool;
    this.poolGeneration = this.hosts.generation;
    return pool;
  }

  /** The pool for the current host: made anew (the old one ended) after a failover. */
  private handle(): Pool {
    if (!this.pool) throw new StoreError('store is not open', true);
    if (this.poolGeneration === this.hosts.generation) return this.pool;
    void this.pool.end().catch(() => undefined);
    return this.createPool();
  }
}
