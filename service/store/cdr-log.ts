import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { cdrCsv, type CdrField } from '../cc/cdr.js';
import type { Cdr } from '../cc/types.js';

export interface CdrLogOptions {
  /** A file the CSV lines are appended to ('' = none). */
  file: string;
  /** Also to syslog, through util-linux's logger (one process, fed line by line). */
  syslog: boolean;
  /** The syslog socket logger writes to, and its tag and priority. */
  syslogSocket: string;
  syslogTag: string;
  fields: readonly CdrField[];
  log: { error(o: object, m: string): void; warn(o: object, m: string): void };
}

/**
 * CDRs as text beside the database (SEMS cc_syslog_cdr style): one CSV line per call, the fields
 * the operator chose, to a file and/or syslog. Written after the CDR is committed; a failing
 * output is logged and never holds up calls.
 */
export class CdrLog {
  private file: WriteStream | undefined;
  private logger: ChildProcess | undefined;
  private loggerFailed = false;

  constructor(private readonly opts: CdrLogOptions) {}

  get enabled(): boolean {
    return this.opts.file !== '' || this.opts.syslog;
  }

  /** The header line of the CSV file: the field names. */
  header(): string {
    return this.opts.fields.join(',');
  }

  write(cdrs: readonly Cdr[]): void {
    if (cdrs.length === 0 || !this.enabled) return;
    const lines = cdrs.map((c) => `${cdrCsv(c, this.opts.fields)}\n`).join('');
    if (this.opts.file !== '') this.fileStream()?.write(lines);
    if (this.opts.syslog) this.syslogStream()?.write(lines);
  }

  private fileStream(): WriteStream | undefined {
    if (this.file) return this.file;
    try {
      mkdirSync(path.dirname(this.opts.file), { recursive: true });
    } catch (err) {
      this.opts.log.error({ file: this.opts.file, err: (err as Error).message }, 'CDR file cannot be written');
      return undefined;
    }
    const stream = createWriteStream(this.opts.file, { flags: 'a' });
    stream.on('error', (err) => this.opts.log.error({ file: this.opts.file, err: err.message }, 'CDR file cannot be written'));
    this.file = stream;
    return stream;
  }

  private syslogStream(): NodeJS.WritableStream | undefined {
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

  async close(): Promise<void> {
    await new Promise<void>((r) => (this.file ? this.file.end(r) : r()));
    this.logger?.stdin?.end();
    this.file = undefined;
  }
}
