/**
 * The unix stream socket that Kamailio's stock `call_control` module talks to (the protocol of
 * AG Projects' callcontrol): requests are lines ended by an empty line, each answered by one
 * `<reply>\r\n`. Transport only; what to answer is the `handle` callback's business.
 */
import net from 'node:net';
import { chmod, chown, lstat, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface CallControlRequest {
  readonly command: string;
  readonly fields: Readonly<Record<string, string>>;
}

/** A request that cannot be read names its command when its first line could be read. */
export type CallControlResult = { ok: true; value: CallControlRequest } | { ok: false; error: string; command?: string };

export interface CallControlLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CallControlSocketOptions {
  /** e.g. /run/callcontrol/socket (the module's `socket_name`). */
  path: string;
  /** chmod of the socket file, e.g. 0o660. */
  mode?: number;
  /** chown group (name from /etc/group, or gid) so Kamailio's user can connect. */
  group?: string | number;
  /** The one reply line without CRLF, e.g. 'Limited'. */
  handle: (req: CallControlRequest) => Promise<string> | string;
  /** The reply to a request that cannot be read (its command, when known); default `Error`. */
  malformedReply?: (command: string | undefined) => string;
  log: CallControlLogger;
  maxLineBytes?: number;
  maxRequestBytes?: number;
  /**
   * A connection that carries no request this long after it was opened is closed (0: never).
   * Kamailio 5.6's call_control connects in its main process before forking, so every worker
   * inherits one socket and they can read each other's replies; closed, each worker's next send
   * fails with EPIPE and it reconnects on its own at once (call_control.c), one socket each.
   */
  idleFirstRequestMs?: number;
  /** At most this many connections at once; more are closed at once (Kamailio opens one per worker). */
  maxConnections?: number;
  /**
   * A request that has begun and is not finished this long after its last byte is dropped with
   * its connection: Kamailio sends a request whole, so this is a client stuck or hostile.
   */
  requestTimeoutMs?: number;
  /** The number of connections changed (Kamailio started, restarted or stopped). */
  onClients?(count: number): void;
  /**
   * A client closed its connection: Kamailio stopped, or call_control.so gave up on a request
   * (a timeout or error), after which that worker sends no start or stop for 10 s.
   */
  onClientClosed?(): void;
}

/** What the module says when a request goes wrong; it maps it (like any unknown word) to -5. */
export const ERROR_REPLY = 'Error';

/** The module reads a reply into an 8192-byte buffer; a longer one would arrive cut. */
const KAMAILIO_REPLY_BUFFER = 8192;

// Python 2's str.strip() and `\s` (what callcontrol uses): ASCII whitespace only.
const EDGE_SPACE = /^[ \t\r\n\v\f]+|[ \t\r\n\v\f]+$/g;
const FIELD_SEPARATOR = /:[ \t\r\n\v\f]+/;

/** Lines (already stripped, none empty) → command and fields. Keys are lower-cased; the last duplicate wins. */
export function parseRequest(lines: readonly string[]): CallControlResult {
  const [command, ...rest] = lines;
  if (!command) return { ok: false, error: 'empty request' };
  // No prototype: a field named __proto__ from the wire stays a plain entry.
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const line of rest) {
    const sep = FIELD_SEPARATOR.exec(line);
    const key = sep ? line.slice(0, sep.index).replace(EDGE_SPACE, '').toLowerCase() : '';
    if (!sep || key === '') return { ok: false, error: `bad field line "${line.slice(0, 80)}"`, command };
    fields[key] = line.slice(sep.index + sep[0].length);
  }
  return { ok: true, value: { command, fields } };
}

/**
 * Incremental framing, pull style: `push` bytes, then `next()` one request at a time, so the
 * caller decides how much it has taken in (it stops reading while `buffered` is high).
 * Over-long input is dropped as it comes and the request it belongs to becomes one error.
 */
export class CallControlFramer {
  private buf: Buffer = Buffer.alloc(0);
  private lines: string[] = [];
  private requestBytes = 0;
  /** Why the request in progress will be answered with an error; its lines are not kept. */
  private discarding: string | undefined;
  /** The command of a request being discarded, when its first line was read. */
  private command: string | undefined;
  /** The rest of an over-long line is dropped up to its LF. */
  private skippingLine = false;

  constructor(
    private readonly maxLineBytes = 8192,
    private readonly maxRequestBytes = 65536,
  ) {}

  /** Bytes received but not yet framed. */
  get buffered(): number {
    return this.buf.length;
  }

  /** A request has begun and is not finished. */
  get inRequest(): boolean {
    return this.buf.length > 0 || this.lines.length > 0 || this.discarding !== undefined || this.skippingLine;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  next(): CallControlResult | undefined {
    for (;;) {
      const lf = this.buf.indexOf(0x0a);
      if (lf < 0) {
        if (this.buf.length > this.maxLineBytes || (this.skippingLine && this.buf.length > 0)) {
          this.discard(`line over ${this.maxLineBytes} bytes`);
          this.skippingLine = true;
          this.buf = Buffer.alloc(0);
        }
        return undefined;
      }
      const raw = this.buf.subarray(0, lf);
      this.buf = this.buf.subarray(lf + 1);
      if (this.skippingLine) {
        this.skippingLine = false;
        continue;
      }
      if (raw.length > this.maxLineBytes) {
        this.discard(`line over ${this.maxLineBytes} bytes`);
        continue;
      }
      // CRLF is the delimiter; a bare LF is taken too, and strip() removes the CR either way.
      const line = raw.toString('utf8').replace(EDGE_SPACE, '');
      if (line === '') {
        const done = this.endRequest();
        if (done) return done;
        continue;
      }
      if (this.discarding) continue;
      this.requestBytes += raw.length + 1;
      if (this.requestBytes > this.maxRequestBytes) {
        this.discard(`request over ${this.maxRequestBytes} bytes`);
        continue;
      }
      this.lines.push(line);
    }
  }

  private discard(why: string): void {
    this.discarding ??= why;
    if (this.lines.length > 0) this.command ??= this.lines[0];
    this.lines = [];
  }

  /** An empty line: ends the request in progress, if there is one (blank lines between requests are noise). */
  private endRequest(): CallControlResult | undefined {
    const { discarding, lines, command } = this;
    this.discarding = undefined;
    this.command = undefined;
    this.lines = [];
    this.requestBytes = 0;
    if (discarding) return { ok: false, error: discarding, ...(command !== undefined ? { command } : {}) };
    return lines.length > 0 ? parseRequest(lines) : undefined;
  }
}

type Checked = { ok: true; line: string } | { ok: false; error: string };

/** The module compares the whole buffer with e.g. "Limited\r\n", so a reply is one non-empty line. */
function checkReply(reply: unknown): Checked {
  if (typeof reply !== 'string' || reply === '') return { ok: false, error: 'reply is not a non-empty string' };
  if (/[\r\n]/.test(reply)) return { ok: false, error: 'reply contains CR or LF' };
  if (Buffer.byteLength(reply) + 2 > KAMAILIO_REPLY_BUFFER) return { ok: false, error: 'reply longer than the module reads' };
  return { ok: true, line: reply };
}

let connectionIds = 0;

/** One Kamailio worker's connection: requests answered one at a time, in order. */
class Connection {
  readonly id = ++connectionIds;
  private readonly framer: CallControlFramer;
  private busy = false;
  /** Stop reading once this much is waiting to be framed; a fast sender then waits in the kernel. */
  private readonly highWater: number;

  constructor(
    private readonly socket: net.Socket,
    private readonly opts: Required<Pick<CallControlSocketOptions, 'handle' | 'log' | 'maxLineBytes' | 'maxRequestBytes' | 'idleFirstRequestMs' | 'requestTimeoutMs' | 'malformedReply'>>,
  ) {
    this.framer = new CallControlFramer(opts.maxLineBytes, opts.maxRequestBytes);
    this.highWater = opts.maxLineBytes + opts.maxRequestBytes;
    let idle: NodeJS.Timeout | undefined;
    if (opts.idleFirstRequestMs > 0) {
      idle = setTimeout(() => {
        if (this.framer.buffered > 0 || this.busy) return;
        opts.log.info({ conn: this.id }, 'closing a call-control connection that carried no request (one shared by forked processes); each reconnects on its own');
        socket.destroy();
      }, opts.idleFirstRequestMs);
      socket.once('close', () => clearTimeout(idle));
    }
    let unfinished: NodeJS.Timeout | undefined;
    const watchUnfinished = (): void => {
      if (unfinished) clearTimeout(unfinished);
      unfinished = undefined;
      if (!this.framer.inRequest || opts.requestTimeoutMs <= 0 || socket.destroyed) return;
      unfinished = setTimeout(() => {
        opts.log.warn({ conn: this.id, buffered: this.framer.buffered, ms: opts.requestTimeoutMs }, 'call-control request left unfinished; closing the connection');
        socket.destroy();
      }, opts.requestTimeoutMs);
    };
    socket.once('close', () => { if (unfinished) clearTimeout(unfinished); });
    socket.on('data', (chunk: Buffer) => {
      if (idle) {
        clearTimeout(idle);
        idle = undefined;
      }
      this.framer.push(chunk);
      if (this.framer.buffered > this.highWater) socket.pause();
      this.pump().then(watchUnfinished, (err: unknown) => {
        opts.log.error({ conn: this.id, err: String(err) }, 'call-control connection failed; closing it');
        socket.destroy();
      });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      opts.log.warn({ conn: this.id, code: err.code, err: err.message }, 'call-control connection error');
    });
  }

  /**
   * Requests that arrived whole are handled even if the peer has gone meanwhile: a `stop` must not
   * be lost because Kamailio gave up waiting for its reply. Only the reply is dropped then.
   */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let req = this.framer.next(); req; req = this.framer.next()) {
        const reply = req.ok ? await this.answer(req.value) : this.malformed(req.error, req.command);
        await this.write(reply, req.ok ? req.value.command : req.command);
      }
      if (this.socket.isPaused() && !this.socket.destroyed) this.socket.resume();
    } finally {
      this.busy = false;
    }
  }

  private async answer(req: CallControlRequest): Promise<string> {
    let reply: unknown;
    try {
      reply = await this.opts.handle(req);
    } catch (err) {
      this.opts.log.error({ conn: this.id, command: req.command, err: err instanceof Error ? err.message : String(err) }, 'call-control handler failed; answered Error');
      return ERROR_REPLY;
    }
    const checked = checkReply(reply);
    if (checked.ok) return checked.line;
    this.opts.log.error({ conn: this.id, command: req.command, reply: String(reply).slice(0, 200), err: checked.error }, 'call-control handler gave an unsendable reply; answered Error');
    return ERROR_REPLY;
  }

  private malformed(error: string, command: string | undefined): string {
    const reply = this.opts.malformedReply(command);
    this.opts.log.warn({ conn: this.id, command: command?.slice(0, 40), err: error, reply }, 'malformed call-control request');
    return reply;
  }

  /** Resolves once the reply has left for the kernel (or cannot), so the next request waits for it. */
  private write(reply: string, command: string | undefined): Promise<void> {
    const { socket } = this;
    if (!socket.writable) {
      this.opts.log.warn({ conn: this.id, command, reply }, 'call-control peer gone before its reply was written');
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        socket.off('close', done);
        resolve();
      };
      socket.once('close', done);
      socket.write(`${reply}\r\n`, done); // a failed write also emits 'error', logged there
    });
  }
}

type Outcome = { ok: true } | { ok: false; error: string };

/** A group name is looked up in /etc/group (what Kamailio's packaging creates); a number is a gid. */
async function resolveGroup(group: string | number): Promise<{ ok: true; gid: number } | { ok: false; error: string }> {
  if (typeof group === 'number' || /^\d+$/.test(group)) return { ok: true, gid: Number(group) };
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const entry of text.split('\n')) {
    const [name, , gid] = entry.split(':');
    if (name === group && gid && /^\d+$/.test(gid)) return { ok: true, gid: Number(gid) };
  }
  return { ok: false, error: `group "${group}" not found in /etc/group` };
}

/** Does a server answer on this socket path? A refused connection means a leftover file. */
function probe(file: string): Promise<'live' | 'stale' | 'gone' | 'unknown'> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    const finish = (r: 'live' | 'stale' | 'gone' | 'unknown'): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish('unknown'), 1000);
    s.once('connect', () => finish('live'));
    s.once('error', (err: NodeJS.ErrnoException) => {
      finish(err.code === 'ECONNREFUSED' ? 'stale' : err.code === 'ENOENT' ? 'gone' : 'unknown');
    });
  });
}

/** Remove what a crashed server left at the path, and nothing else. */
async function clearStale(file: string): Promise<Outcome> {
  const st = await lstat(file).catch(() => undefined);
  if (!st) return { ok: true };
  if (!st.isSocket()) return { ok: false, error: `${file} exists and is not a socket; not removing it` };
  const state = await probe(file);
  if (state === 'live') return { ok: false, error: `another server is already listening on ${file}` };
  if (state === 'unknown') return { ok: false, error: `cannot tell whether a server is listening on ${file}; not removing it` };
  if (state === 'stale') await rm(file, { force: true });
  return { ok: true };
}

function tryListen(server: net.Server, file: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      resolve(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve(undefined);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(file);
  });
}

export class CallControlSocketServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Only a server that got the path removes it on close. */
  private owned = false;

  constructor(private readonly opts: CallControlSocketOptions) {
    const conn = {
      handle: opts.handle,
      log: opts.log,
      maxLineBytes: opts.maxLineBytes ?? 8192,
      maxRequestBytes: opts.maxRequestBytes ?? 65536,
      idleFirstRequestMs: opts.idleFirstRequestMs ?? 0,
      requestTimeoutMs: opts.requestTimeoutMs ?? 2000,
      malformedReply: opts.malformedReply ?? (() => ERROR_REPLY),
    };
    const maxConnections = opts.maxConnections ?? 256;
    this.server = net.createServer((socket) => {
      if (this.sockets.size >= maxConnections) {
        opts.log.warn({ connections: this.sockets.size, max: maxConnections }, 'call-control connection refused: too many connections');
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      const { id } = new Connection(socket, conn);
      opts.log.info({ conn: id, connections: this.sockets.size }, 'call-control client connected');
      opts.onClients?.(this.sockets.size);
      // 'end': the client closed (a connection the service drops itself ends without it).
      socket.once('end', () => opts.onClientClosed?.());
      socket.on('close', () => {
        this.sockets.delete(socket);
        opts.log.info({ conn: id, connections: this.sockets.size }, 'call-control client gone');
        opts.onClients?.(this.sockets.size);
      });
    });
    // Errors while listen() is trying the path are its to report; later ones are only logged.
    this.server.on('error', (e) => {
      if (this.owned) opts.log.error({ path: opts.path, err: e.message }, 'call-control socket error');
    });
  }

  get connections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<void> {
    const { path: file, mode, group, log } = this.opts;
    const gid = group === undefined ? undefined : await resolveGroup(group);
    if (gid && !gid.ok) throw new Error(`call-control socket ${file}: ${gid.error}`);
    await mkdir(dirname(file), { recursive: true });
    let err = await tryListen(this.server, file);
    if (err?.code === 'EADDRINUSE') {
      const cleared = await clearStale(file);
      if (!cleared.ok) throw new Error(`call-control socket: ${cleared.error}`);
      err = await tryListen(this.server, file);
    }
    if (err) throw new Error(`call-control socket: cannot listen on ${file}: ${err.message}`);
    this.owned = true;
    try {
      if (mode !== undefined) await chmod(file, mode);
      if (gid) await chown(file, -1, gid.gid);
    } catch (e) {
      await this.close();
      throw new Error(`call-control socket ${file}: cannot set mode/group: ${(e as Error).message}`);
    }
    log.info({ path: file, mode: mode?.toString(8), gid: gid?.gid }, 'call-control socket listening');
  }

  /** Stops accepting, drops the connections (a Kamailio worker reconnects by itself) and removes the file. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    if (this.owned) await rm(this.opts.path, { force: true });
    this.owned = false;
  }
}
