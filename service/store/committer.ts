import { FencedError, type Database, type Statement, type StoreError } from './database.js';

/**
 * The statements that bring one row (or one line) to its current state. An `append` change (a
 * record inserted once, a table replaced whole) is never merged with another: it is written in
 * the order it came.
 */
export interface Change {
  readonly key: string;
  readonly statements: readonly Statement[];
  readonly append?: boolean;
}

export interface CommitterLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const MAX_BACKOFF_MS = 10_000;
// A strict committer's callers are waiting: retry often (each try is one small transaction).
const STRICT_MAX_BACKOFF_MS = 1_000;

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export interface CommitterOptions {
  /**
   * HA: never acknowledge what is not in the database. While it is away or slow commits wait
   * (retried; `withinMs` is ignored), there is no serving from memory; a FencedError stops the
   * committer for good: every waiting and later commit rejects with it and `onFenced` tells the
   * service (which exits).
   */
  readonly strict?: boolean;
  readonly onFenced?: (err: FencedError) => void;
}

/**
 * Durable before acknowledged: commit() resolves once its changes are in the database. Changes
 * that arrive while a transaction runs go together in the next one (group commit); a later change
 * of a row replaces a queued earlier one, so the queue never holds more than one entry per row
 * (changes must therefore be independent of each other: each sets one row).
 *
 * If the database is away, the service keeps serving from memory: `degraded` is true, commit()
 * resolves at once without the guarantee, and the queue is retried with backoff until a write
 * succeeds. A change the database refuses for its content (a constraint, a value too long) is set
 * aside with a log line and counted, so that one bad row never stops the others.
 * A strict committer (HA, CommitterOptions) never serves from memory and stops when fenced.
 */
export class Committer {
  private queue = new Map<string, readonly Statement[]>();
  /**
   * Every commit not yet settled, oldest first. They resolve in this order only, whatever their
   * deadlines: effects are carried out in the order they were made (a NOTIFY of an older state
   * must never follow a newer one).
   */
  private outstanding: Waiter[] = [];
  /** Readers waiting for everything queued to be written (see settled). */
  private idleWaiters: Array<() => void> = [];
  private writing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = 200;
  private appended = 0;
  /** Writes fail (the database is away): commits are answered from memory at once. */
  private failing = false;
  /** Failing, or an answer did not wait for its write (see commit's `withinMs`). */
  degraded = false;
  /** Set once the write-fence refused a transaction: nothing is written any more. */
  fenced: FencedError | undefined;
  readonly stats = { commits: 0, rows: 0, errors: 0, setAside: 0, slow: 0 };

  constructor(private readonly db: Database, private readonly log: CommitterLog, private readonly opts: CommitterOptions = {}) {}

  /** Rows waiting to be written. */
  get pending(): number {
    return this.queue.size;
  }

  /**
   * Resolves once the changes are written. `withinMs`: an answer Kamailio waits for (its own
   * timeout is short) goes ahead after this long without its write, from memory: the store is
   * then degraded until a write succeeds, and the changes are written when the database is done.
   */
  commit(changes: readonly Change[], withinMs?: number): Promise<void> {
    if (this.fenced) return Promise.reject(this.fenced);
    // A later change of a queued row replaces it in place: rows are independent, and the first
    // position keeps new rows in creation order (their ids are the group NOTIFY order).
    for (const c of changes) this.queue.set(c.append ? `${c.key}\u0000#${++this.appended}` : c.key, c.statements);
    if (this.queue.size === 0 && !this.writing) return Promise.resolve();
    if (this.failing && !this.opts.strict) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      if (withinMs !== undefined && withinMs > 0 && !this.opts.strict) {
        waiter.timer = setTimeout(() => {
          this.slow(withinMs);
          this.release(waiter); // and every commit before it
        }, withinMs);
      }
      this.outstanding.push(waiter);
      this.kick();
    });
  }

  /** Resolves the commits up to `last` (all of them when undefined), oldest first. */
  private release(last?: Waiter): void {
    const n = last === undefined ? this.outstanding.length : this.outstanding.indexOf(last) + 1;
    for (const w of this.outstanding.splice(0, n)) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  /** An answer went ahead of its write. */
  private slow(ms: number): void {
    this.stats.slow++;
    if (!this.degraded) this.log.error({ ms, pending: this.queue.size }, 'STORE SLOW: an answer could not wait for its write; answering from memory until the store keeps up');
    this.degraded = true;
  }

  private kick(): void {
    if (this.writing || this.retryTimer || this.queue.size === 0) return;
    void this.write();
  }

  private async write(): Promise<void> {
    this.writing = true;
    const batch = [...this.queue];
    // The commits this write answers: every one made so far.
    const through = this.outstanding.at(-1);
    this.queue = new Map();
    let failed: Array<[string, readonly Statement[]]> = [];
    try {
      await this.db.transaction(batch.flatMap(([, s]) => s));
      this.written(batch.length);
    } catch (err) {
      try {
        if (err instanceof FencedError) throw err;
        failed = (err as StoreError).transient === false ? await this.oneByOne(batch) : batch;
        if (failed.length > 0) this.failed(err, failed);
      } catch (fenced) {
        if (!(fenced instanceof FencedError)) throw fenced;
        this.fencedOut(fenced);
        return;
      }
    }
    this.writing = false;
    // Strict: what failed is not acknowledged; its commits wait for the write that stores it.
    if (!(failed.length > 0 && this.opts.strict) && through) this.release(through);
    // Commits without changes that came during the write waited only to keep their place: with
    // nothing queued behind them, no later write would release them.
    if (this.queue.size === 0) {
      this.release();
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of idle) w();
    }
    if (!this.failing) this.kick();
  }

  /** A batch with a row the database refuses: each row alone, the refused ones set aside. */
  private async oneByOne(batch: Array<[string, readonly Statement[]]>): Promise<Array<[string, readonly Statement[]]>> {
    for (let i = 0; i < batch.length; i++) {
      const [key, statements] = batch[i]!;
      try {
        await this.db.transaction(statements);
        this.written(1);
      } catch (err) {
        if (err instanceof FencedError) throw err;
        if ((err as StoreError).transient !== false) return batch.slice(i);
        this.stats.setAside++;
        this.log.error({ err: (err as Error).message, row: key.replace(/\u0000/g, ' ').slice(0, 300) }, 'STORE REFUSED A ROW: set aside, the others go on');
      }
    }
    return [];
  }

  private written(rows: number): void {
    this.stats.commits++;
    this.stats.rows += rows;
    if (this.degraded) this.log.info({ rows }, 'store is back; queued rows written');
    this.degraded = false;
    this.failing = false;
    this.backoffMs = 200;
  }

  /** The database is away: back to the front of the queue (with any newer state), retry later. */
  private failed(err: unknown, batch: Array<[string, readonly Statement[]]>): void {
    this.stats.errors++;
    const newer = this.queue;
    this.queue = new Map(batch.map(([key, statements]) => [key, newer.get(key) ?? statements]));
    for (const [k, v] of newer) this.queue.set(k, v);
    this.degraded = true;
    this.failing = true;
    this.log.error({ err: (err as Error).message, rows: this.queue.size, retryMs: this.backoffMs },
      this.opts.strict ? 'STORE WRITE FAILED: commits wait, will retry' : 'STORE WRITE FAILED: serving from memory, will retry');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.strict ? STRICT_MAX_BACKOFF_MS : MAX_BACKOFF_MS);
  }

  /** Another node leads: drop what is queued, refuse every commit from now on, tell the service. */
  private fencedOut(err: FencedError): void {
    this.fenced = err;
    this.writing = false;
    this.stop();
    const dropped = this.queue.size;
    this.queue = new Map();
    const waiting = this.outstanding.splice(0);
    this.log.error({ err: err.message, dropped }, 'STORE FENCED: another node leads; nothing more is written');
    for (const w of waiting) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    // Readers waiting for the queue to be written: it never will be; they read what is there.
    const idle = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of idle) w();
    this.opts.onFenced?.(err);
  }

  /**
   * Resolves once everything queued so far is written, or after `timeoutMs`: a read of the
   * records (CDRs, history) sees the changes that were answered before it, even while a slow
   * write lets answers go ahead of their rows.
   */
  settled(timeoutMs: number): Promise<void> {
    if (this.queue.size === 0 && !this.writing) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve();
      }, timeoutMs);
      this.idleWaiters.push(done);
    });
  }

  /** Waits until everything queued is written or `timeoutMs` passed; returns the rows left. */
  async drain(timeoutMs: number): Promise<number> {
    const until = Date.now() + timeoutMs;
    while ((this.queue.size > 0 || this.writing) && Date.now() < until) {
      if (this.retryTimer && !this.writing) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.kick();
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.queue.size;
  }

  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}

