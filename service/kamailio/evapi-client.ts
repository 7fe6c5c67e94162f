import net from 'node:net';
import { EventEmitter } from 'node:events';
import { NetstringDecoder, encodeNetstring } from './netstring.js';

export interface EvapiLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const UNREACHABLE_LOG_EVERY_MS = 60_000;
const MAX_BACKOFF_MS = 1000;

/**
 * One evapi connection: Kamailio is the TCP server, we are its client. Reconnects with
 * exponential backoff (100 ms up to 1 s: every second without the link is a second of 503s to
 * SUBSCRIBEs once Kamailio is back) for as long as it is not stopped. While Kamailio cannot
 * be reached it says so once, then once a minute, and keeps the reason for /readyz.
 * Events: 'message' (payload: string), 'up', 'down'.
 */
export class EvapiClient extends EventEmitter {
  private socket: net.Socket | undefined;
  private connected = false;
  private stopped = false;
  private backoff = 100;
  private timer: NodeJS.Timeout | undefined;
  private lastUnreachableLog = 0;
  private corked = false;
  /** Why the last attempt failed, while not connected. */
  lastError: string | undefined = 'not connected yet';

  constructor(readonly host: string, readonly port: number, private readonly log: EvapiLogger) {
    super();
  }

  get isConnected(): boolean {
    return this.connected;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.destroy();
  }

  /** Drops the connection (a peer that stopped answering); it reconnects as after any loss. */
  reset(reason: string): void {
    if (!this.socket || !this.connected) return;
    this.log.error({ evapi: this.address, reason }, 'evapi connection reset');
    this.socket.destroy();
  }

  /**
   * Queues a frame. Frames written within one event-loop turn leave in one write (under load the
   * answers of a whole group commit go out together instead of one syscall each).
   */
  send(payload: string): boolean {
    const socket = this.socket;
    if (!this.connected || !socket) return false;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      setImmediate(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    socket.write(encodeNetstring(payload));
    return true;
  }

  private connect(): void {
    const decoder = new NetstringDecoder();
    const socket = net.connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('connect', () => {
      this.connected = true;
      this.backoff = 100;
      this.lastError = undefined;
      this.lastUnreachableLog = 0;
      this.log.info({ evapi: this.address }, 'evapi connected');
      this.emit('up');
    });
    socket.on('data', (chunk: Buffer) => {
      const { frames, error } = decoder.push(chunk);
      for (const f of frames) this.emit('message', f);
      if (error) {
        this.log.error({ evapi: this.address, err: error.detail }, 'evapi stream corrupt; reconnecting');
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      if (this.connected) {
        this.log.warn({ evapi: this.address, err: err.message }, 'evapi socket error');
        return;
      }
      this.lastError = err.message;
      const now = Date.now();
      if (now - this.lastUnreachableLog >= UNREACHABLE_LOG_EVERY_MS) {
        this.lastUnreachableLog = now;
        this.log.warn({ evapi: this.address, err: err.message }, 'Kamailio cannot be reached over evapi (is it running, with evapi on this address?); retrying');
      }
    });
    socket.on('close', () => {
      const was = this.connected;
      this.connected = false;
      if (was) {
        this.lastError = 'connection lost';
        this.log.warn({ evapi: this.address }, 'evapi connection lost');
        this.emit('down');
      }
      if (this.stopped) return;
      if (!was) this.log.debug({ evapi: this.address, retry_in_ms: this.backoff }, 'evapi connect failed; retrying');
      this.timer = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    });
  }
}
