import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { cdrCsv, type CdrField } from '../cc/cdr.js';
import type { Cdr } from '../cc/types.js';

interface CdrLogger {
  error(o: object, m: string): void;
  warn(o: object, m: string): void;
  info(o: object, m: string): void;
}

export interface CdrSyslogOptions {
  /** The syslog socket logger writes to, and its tag (priority local0.info). */
  syslogSocket: string;
  syslogTag: string;
  fields: readonly CdrField[];
  log: CdrLogger;
}

/**
 * CDRs to syslog (SEMS cc_syslog_cdr style): one CSV line per call, the fields the operator chose,
 * through util-linux's logger (one process, fed line by line). Written once the CDR is committed;
 * a failing output is logged and never holds up calls.
 */
export class CdrSyslog {
  private logger: ChildProcess | undefined;
  private loggerFailed = false;

  constructor(private readonly opts: CdrSyslogOptions) {}

  write(cdrs: readonly Cdr[]): void {
    if (cdrs.length === 0) return;
    this.stream()?.write(cdrs.map((c) => `${cdrCsv(c, this.opts.fields)}\n`).join(''));
  }

  private stream(): NodeJS.WritableStream | undefined {
    if (this.loggerFailed) return undefined;
    if (this.logger?.stdin && !this.logger.killed) return this.logger.stdin;
    const child = spawn('logger', ['-t', this.opts.syslogTag, '-p', 'local0.info', '-u', this.opts.syslogSocket], { stdio: ['pipe', 'ignore', 'pipe'] });
    child.on('error', (err) => {
      this.loggerFailed = true;
      this.opts.log.error({ err: err.message }, 'CDRs to syslog need util-linux\'s logger (apt-get install bsdutils); syslog output off');
    });
    child.stderr?.on('data', (d: Buffer) => this.opts.log.warn({ err: d.toString().trim().slice(0, 200) }, 'logger (CDR syslog output) complains'));
    child.on('exit', () => { if (this.logger === child) this.logger = undefined; });
    child.stdin?.on('error', () => undefined);
    this.logger = child;
    return child.stdin ?? undefined;
  }

  close(): void {
    this.logger?.stdin?.end();
  }
}

/**
 * Where the CDR file is: the last CDR (table id) whose line is in it, and which file (device and
 * inode) up to which byte. Stored with the CDRs, moved on only after the lines are on disk.
 */
export interface CdrFileCursor {
  readonly lastId: number;
  readonly file: string;
  readonly offset: number;
}

/** The CDR table as the file reads it, in id order (the order rows were committed in). */
export interface CdrSource {
  /** CDRs after `id`, in id order, at most `limit`. */
  after(id: number, limit: number): Promise<Array<{ id: number; cdr: Cdr }>>;
  countAfter(id: number): Promise<number>;
  /** The id of the `n`-th CDR after `id` (1: the next one); undefined when there are fewer. */
  nthAfter(id: number, n: number): Promise<number | undefined>;
  lastId(): Promise<number>;
  cursor(): Promise<CdrFileCursor | undefined>;
  /** Stores the cursor (queued with the store's other writes). */
  saveCursor(c: CdrFileCursor): void;
}

export interface CdrFileOptions {
  file: string;
  fields: readonly CdrField[];
  source: CdrSource;
  log: CdrLogger;
  /**
   * When the store has rows not yet written (a slow or absent database), a promise that resolves
   * once they are (or after a while): the file looks again then.
   */
  storeLag?: () => Promise<void> | undefined;
  /** Retry delays after a failure: from `minRetryMs`, doubling, up to `maxRetryMs`. */
  minRetryMs?: number;
  maxRetryMs?: number;
}

const BATCH = 500;
/** The file of a cursor made before any file was opened: the first file opened is taken as it is. */
const FIRST = 'first';
/** While lines are behind, the log says so again at most this often. */
const REMIND_MS = 60_000;

/**
 * The CDR file: CSV lines appended from the CDR table, in id order, one line per CDR, never
 * lost or repeated. The database is the record; the file follows it with a cursor (the last id
 * written, the file's identity and length then) that moves only once the lines are on disk.
 *
 * A write that fails (a full disk, a file that cannot be opened) leaves the lines behind: logged,
 * counted (`behind`), retried with backoff; every retry reopens the file and repairs it first. The
 * same repair runs at start, after a crash: complete lines past the stored cursor are the next
 * CDRs (the cursor moves over them) and a last line without its newline is cut off, to be written
 * whole. A file moved away (rotation) or another file at the path gets the lines that follow.
 */
export class CdrFile {
  private fh: FileHandle | undefined;
  /** Where the file is, in memory (the stored one may lag behind it). */
  private cur: CdrFileCursor | undefined;
  private loaded = false;
  private running: Promise<void> | undefined;
  private again = false;
  private retry: NodeJS.Timeout | undefined;
  private retryMs: number;
  private waitingStore = false;
  private closed = false;
  private remindedAt = 0;
  private writtenSinceFailure = 0;
  /** Why the last attempt failed; undefined while the file keeps up. */
  error: string | undefined;
  /** CDRs in the database whose lines are not in the file yet (as of the last attempt). */
  behind = 0;
  readonly stats = { errors: 0, lines: 0 };

  /** The source, its failures marked as the database's (not the file's). */
  private readonly db: CdrSource;

  constructor(private readonly opts: CdrFileOptions) {
    this.retryMs = opts.minRetryMs ?? 500;
    this.db = fromDatabase(opts.source);
  }

  get path(): string {
    return this.opts.file;
  }

  /** New CDRs may be in the table: append them (one pass at a time; a failing file waits for its retry). */
  kick(): void {
    if (this.closed) return;
    if (this.retry) {
      // Failing: the retry comes in its time; the count of lines behind stays current meanwhile.
      void this.recount();
      return;
    }
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => { this.running = undefined; });
  }

  /** Resolves when no pass is running (a test, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private counting: Promise<void> | undefined;
  private countAgain = false;

  /** Counts the CDRs whose lines are not in the file (one query at a time). */
  private async recount(): Promise<void> {
    if (this.counting) {
      this.countAgain = true;
      return;
    }
    this.counting = (async () => {
      do {
        this.countAgain = false;
        try {
          if (this.cur) this.behind = await this.db.countAfter(this.cur.lastId);
        } catch {
          // the database cannot say: the last count stands
        }
      } while (this.countAgain);
    })().finally(() => { this.counting = undefined; });
    await this.counting;
  }

  private async run(): Promise<void> {
    do {
      this.again = false;
      if (!(await this.pass())) return;
    } while (this.again && !this.closed);
  }

  /** Appends every CDR past the cursor; false if it failed (a retry is armed). */
  private async pass(): Promise<boolean> {
    try {
      await this.ensureOpen();
      for (;;) {
        const rows = await this.db.after(this.cur!.lastId, BATCH);
        if (rows.length > 0) await this.append(rows);
        if (rows.length < BATCH) break;
      }
    } catch (err) {
      await this.failed(err as Error);
      return false;
    }
    this.behind = 0;
    if (this.error !== undefined) {
      this.opts.log.info({ file: this.opts.file, lines: this.writtenSinceFailure }, 'CDR file caught up with the database');
      this.error = undefined;
    }
    this.retryMs = this.opts.minRetryMs ?? 500;
    // Rows answered from memory (a slow or absent database) are read once they are written.
    const lag = this.opts.storeLag?.();
    if (lag && !this.waitingStore) {
      this.waitingStore = true;
      void lag.then(() => {
        this.waitingStore = false;
        this.kick();
      });
    }
    return true;
  }

  private async append(rows: ReadonlyArray<{ id: number; cdr: Cdr }>): Promise<void> {
    const buf = Buffer.from(rows.map((r) => `${cdrCsv(r.cdr, this.opts.fields)}\n`).join(''));
    for (let done = 0; done < buf.length;) done += (await this.fh!.write(buf, done, buf.length - done)).bytesWritten;
    // On disk before the cursor says so: a power loss never leaves the cursor past the lines.
    await this.fh!.datasync();
    this.move({ lastId: rows.at(-1)!.id, file: this.cur!.file, offset: this.cur!.offset + buf.length });
    this.stats.lines += rows.length;
    if (this.error !== undefined) this.writtenSinceFailure += rows.length;
  }

  private move(c: CdrFileCursor): void {
    const old = this.cur;
    this.cur = c;
    if (!old || old.lastId !== c.lastId || old.file !== c.file || old.offset !== c.offset) this.opts.source.saveCursor(c);
  }

  /**
   * Opens the file if it is not open, or no longer the one at the path (rotated, removed), and
   * brings the cursor and the file into line.
   */
  private async ensureOpen(): Promise<void> {
    await this.load();
    if (this.fh && this.cur) {
      const now = await stat(this.opts.file, { bigint: true }).catch(() => undefined);
      if (now && `${now.dev}:${now.ino}` === this.cur.file) {
        // Cut short in place (logrotate's copytruncate): the lines go on from its end.
        if (Number(now.size) < this.cur.offset) {
          this.opts.log.info({ file: this.opts.file, size: Number(now.size), was: this.cur.offset }, 'CDR file was cut short (rotated in place); lines go on from its end');
          this.move({ ...this.cur, offset: await cutPartialLine(this.fh, Number(now.size)) });
        }
        return;
      }
      this.opts.log.info({ file: this.opts.file }, 'CDR file moved or replaced: the next lines go to a new one');
      await this.closeFile();
    }
    await mkdir(path.dirname(this.opts.file), { recursive: true });
    const fh = await open(this.opts.file, 'a+');
    try {
      const st = await fh.stat({ bigint: true });
      const id = `${st.dev}:${st.ino}`;
      const size = Number(st.size);
      const cur = this.cur!;
      if (cur.file === FIRST) {
        const end = await cutPartialLine(fh, size);
        if (end < size) this.opts.log.warn({ file: this.opts.file, bytes: size - end }, 'CDR file: an unfinished last line was cut off');
        this.move({ ...cur, file: id, offset: end });
      } else if (cur.file === id && size >= cur.offset) {
        // The file the cursor is about: complete lines past it were written before a crash or a
        // failed write, and are the next CDRs; a last line without its newline is cut off.
        const { lines, end } = await completeLines(fh, cur.offset, size);
        if (end < size) {
          await fh.truncate(end);
          this.opts.log.warn({ file: this.opts.file, bytes: size - end }, 'CDR file: an unfinished last line was cut off; it is written again whole');
        }
        let lastId = cur.lastId;
        if (lines > 0) {
          const nth = await this.db.nthAfter(cur.lastId, lines);
          if (nth === undefined) this.opts.log.warn({ file: this.opts.file, lines }, 'CDR file has more lines past its cursor than the database has CDRs');
          lastId = nth ?? await this.db.lastId();
        }
        this.move({ lastId, file: id, offset: end });
      } else if (cur.file === id) {
        // Shorter than the service wrote: cut by someone (logrotate's copytruncate) or a power loss.
        this.opts.log.warn({ file: this.opts.file, size, expected: cur.offset }, 'CDR file is shorter than the service left it; lines go on from its end');
        this.move({ ...cur, offset: await cutPartialLine(fh, size) });
      } else {
        // Another file at the path (rotated, or the path changed): the lines after the cursor go
        // there, on a line of their own (what is in it is not ours to cut).
        if (size > 0 && (await readAt(fh, size - 1, 1))[0] !== 0x0a) await fh.write('\n');
        this.move({ ...cur, file: id, offset: Number((await fh.stat({ bigint: true })).size) });
      }
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    this.fh = fh;
  }

  private async failed(err: Error): Promise<void> {
    this.stats.errors++;
    // The next attempt reopens the file and repairs what this one left (a line half written).
    await this.closeFile();
    await this.recount();
    const first = this.error === undefined;
    this.error = err.message;
    if (first || Date.now() - this.remindedAt >= REMIND_MS) {
      this.remindedAt = Date.now();
      if (first) this.writtenSinceFailure = 0;
      const what = err instanceof DatabaseError ? 'CDR LINES BEHIND: the CDR table cannot be read; retrying' : 'CDR FILE WRITE FAILED: CDR lines are behind the database; retrying';
      this.opts.log.error({ file: this.opts.file, err: err.message, behind: this.behind, retryMs: this.retryMs }, first ? what : 'CDR lines are still behind the database');
    }
    if (this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.kick();
    }, this.retryMs);
    this.retry.unref();
    this.retryMs = Math.min(this.retryMs * 2, this.opts.maxRetryMs ?? 10_000);
  }

  private async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
  }

  /** The stored cursor, or a new one at the table's last CDR. */
  private async load(): Promise<void> {
    if (this.loaded) return;
    // The first time (or a store of an older release, which wrote its lines from memory): the
    // file goes on from the calls that end from now on, even if it cannot be opened yet.
    const stored = await this.db.cursor();
    this.cur = stored ?? { lastId: await this.db.lastId(), file: FIRST, offset: 0 };
    if (!stored) this.opts.source.saveCursor(this.cur);
    this.loaded = true;
  }

  /**
   * Takes the cursor (before any call can end: the first time, the file starts exactly after the
   * CDRs already in the table), then appends what the table has past it.
   */
  async start(): Promise<void> {
    await this.load().catch(() => undefined); // the first pass tries again, and says why
    this.kick();
  }

  /** A last pass (unless the file is failing), then the file is closed. */
  async close(): Promise<void> {
    await this.idle();
    if (!this.retry && !this.closed) {
      this.kick();
      await this.idle();
    }
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
    await this.closeFile();
  }
}

/** A failure to read the CDR table (not to write the file). */
class DatabaseError extends Error {}

function fromDatabase(s: CdrSource): CdrSource {
  const tag = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    try {
      return await f(...a);
    } catch (err) {
      throw new DatabaseError((err as Error).message);
    }
  };
  return {
    after: tag(s.after.bind(s)), countAfter: tag(s.countAfter.bind(s)), nthAfter: tag(s.nthAfter.bind(s)), lastId: tag(s.lastId.bind(s)),
    cursor: tag(s.cursor.bind(s)), saveCursor: s.saveCursor.bind(s),
  };
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Complete lines between `from` and `to`, and where the last of them ends. */
async function completeLines(fh: FileHandle, from: number, to: number): Promise<{ lines: number; end: number }> {
  let lines = 0;
  let end = from;
  for (let pos = from; pos < to;) {
    const chunk = await readAt(fh, pos, Math.min(1 << 20, to - pos));
    if (chunk.length === 0) break;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
      lines++;
      end = pos + i + 1;
    }
    pos += chunk.length;
  }
  return { lines, end };
}

/** Cuts a last line that has no newline (a write that failed half-way); returns the length. */
async function cutPartialLine(fh: FileHandle, size: number): Promise<number> {
  let end = size;
  while (end > 0) {
    const from = Math.max(0, end - 65_536);
    const chunk = await readAt(fh, from, end - from);
    const nl = chunk.lastIndexOf(0x0a);
    if (nl !== -1) {
      end = from + nl + 1;
      break;
    }
    end = from;
  }
  if (end < size) await fh.truncate(end);
  return end;
}
