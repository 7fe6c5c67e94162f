import net from 'node:net';
import { EventEmitter } from 'node:events';
import { NetstringDecoder, encodeNetstring } from './netstring.js';

export interface EvapiLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * One evapi connection: Kamailio is the TCP server, we are its client. Reconnects with
 * exponential backoff (100 ms up to 5 s) for as long as it is not stopped.
 * Events: 'message' (payload: string), 'up', 'down'.
 */
export class EvapiClient extends EventEmitter {
  private socket: net.Socket | undefined;
  private connected = false;
  private stopped = false;
  private backoff = 100;
  private timer: NodeJS.Timeout | undefined;

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

  send(payload: string): boolean {
    if (!this.connected || !this.socket) return false;
    this.socket.write(encodeNetstring(payload));
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
      if (this.connected) this.log.warn({ evapi: this.address, err: err.message }, 'evapi socket error');
    });
    socket.on('close', () => {
      const was = this.connected;
      this.connected = false;
      if (was) {
        this.log.warn({ evapi: this.address }, 'evapi connection lost');
        this.emit('down');
      }
      if (this.stopped) return;
      this.timer = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 5000);
    });
  }
}
