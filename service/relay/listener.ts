/**
 * The service's end of sca-cc-relay (cc_relay_listen): relays connect, say hello with the token
 * and their proxy's PROXY_ID, and, while this node leads with its state loaded, their
 * call_control.so requests are answered by `handle` (the socket door) for that proxy. A standby
 * refuses the hello and names the leader; a node that stops leading answers `unserved` to what
 * comes next and closes. Transport only: it knows no engine and no role.
 */
import net from 'node:net';
import type { CallControlRequest } from '../kamailio/call-control-socket.js';
import { ERROR_REPLY } from '../kamailio/call-control-socket.js';
import { encode, JsonLines, MAX_FRAME_BYTES, MAX_HELLO_BYTES, parseHostPort, readToNode, tokenMatches, type ToRelay } from './wire.js';

export type Serving = { ok: true; node: string; epoch: number } | { ok: false; why: string; leader?: string | undefined };

export interface RelayListenerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RelayListenerOptions {
  /** host:port (port 0: any, for tests). */
  readonly listen: string;
  readonly token: string;
  /** Whether this node serves relays now (it leads, its state is loaded), else why not and who leads. */
  serving(): Serving;
  /** A request of call_control.so at `proxy` → its reply word(s); `heldMs`: how long the relay kept it. */
  handle(req: CallControlRequest, proxy: string, heldMs: number): Promise<string>;
  /** A call_control.so connection closed at `proxy` (its worker sends no start/stop for 10 s). */
  clientClosed(proxy: string): void;
  readonly log: RelayListenerLog;
  readonly maxConnections?: number;
  readonly helloTimeoutMs?: number;
  /** A relay pings every half second: one silent this long is gone. */
  readonly idleTimeoutMs?: number;
  /** Requests of one relay being handled at most; past it its connection is not read. */
  readonly maxInFlight?: number;
}

interface RelayConn {
  readonly socket: net.Socket;
  readonly remote: string;
  proxy: string | undefined;
  readonly since: number;
}

export class CcRelayListener {
  private readonly server: net.Server;
  private readonly conns = new Set<RelayConn>();
  private refusals = 0;

  constructor(private readonly o: RelayListenerOptions) {
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => o.log.error({ listen: o.listen, err: err.message }, 'relay listener error'));
  }

  /** Resolves with the port it listens on. */
  listen(): Promise<number> {
    const hp = parseHostPort(this.o.listen, true);
    if (!hp) return Promise.reject(new Error(`cc_relay_listen ${this.o.listen}: not host:port`));
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => reject(new Error(`cc_relay_listen ${this.o.listen}: ${err.message}`));
      this.server.once('error', fail);
      this.server.listen({ host: hp.host, port: hp.port }, () => {
        this.server.off('error', fail);
        const port = (this.server.address() as net.AddressInfo).port;
        this.o.log.info({ listen: this.o.listen, port }, 'listening for sca-cc-relay');
        resolve(port);
      });
    });
  }

  /** The port it listens on (once listening). */
  get port(): number | undefined {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a.port : undefined;
  }

  status(): Record<string, unknown> {
    return {
      listen: this.o.listen,
      relays: [...this.conns].filter((c) => c.proxy !== undefined).map((c) => ({ proxy: c.proxy, from: c.remote, since_s: Math.round((performance.now() - c.since) / 1000) })),
      refused: this.refusals,
    };
  }

  /** This node stopped leading: every relay goes looking for the next leader. */
  closeAll(): void {
    for (const c of this.conns) c.socket.destroy();
  }

  async close(): Promise<void> {
    const closed = this.server.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    this.closeAll();
    await closed;
  }

  private accept(socket: net.Socket): void {
    const { o } = this;
    if (this.conns.size >= (o.maxConnections ?? 64)) {
      o.log.warn({ remote: socket.remoteAddress, connections: this.conns.size }, 'relay connection refused: too many connections');
      socket.destroy();
      return;
    }
    const c: RelayConn = { socket, remote: `${socket.remoteAddress}:${socket.remotePort}`, proxy: undefined, since: performance.now() };
    this.conns.add(c);
    socket.setNoDelay(true);
    socket.setTimeout(o.idleTimeoutMs ?? 10_000, () => {
      if (c.proxy !== undefined) o.log.warn({ proxy: c.proxy, remote: c.remote }, 'relay silent: connection closed');
      socket.destroy();
    });
    const hello = setTimeout(() => socket.destroy(), o.helloTimeoutMs ?? 2000);
    const lines = new JsonLines(MAX_HELLO_BYTES);
    const maxInFlight = o.maxInFlight ?? 512;
    let inFlight = 0;
    let done = false;
    const send = (m: ToRelay): void => {
      if (!socket.destroyed && socket.writable) socket.write(encode(m));
    };
    const end = (m?: ToRelay): void => {
      done = true;
      if (m) send(m);
      socket.end();
      socket.destroySoon();
    };
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(hello);
      this.conns.delete(c);
      if (c.proxy !== undefined) o.log.info({ proxy: c.proxy, remote: c.remote }, 'relay disconnected');
    });
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      const read = lines.push(chunk);
      if (!read.ok) {
        o.log.warn({ remote: c.remote, proxy: c.proxy, err: read.error }, 'relay connection dropped: unreadable frames');
        return void socket.destroy();
      }
      for (const v of read.values) {
        if (done) return;
        const r = readToNode(v);
        if (!r.ok) {
          o.log.warn({ remote: c.remote, proxy: c.proxy, err: r.error }, 'relay connection dropped: unreadable frame');
          return void socket.destroy();
        }
        const m = r.msg;
        if (c.proxy === undefined) {
          if (m.t !== 'hello') {
            o.log.warn({ remote: c.remote, frame: m.t }, 'relay connection dropped: no hello first');
            return void socket.destroy();
          }
          clearTimeout(hello);
          if (!tokenMatches(m.token, o.token)) {
            o.log.warn({ remote: c.remote, proxy: m.proxy }, 'relay refused: wrong token');
            this.refusals++;
            return end({ t: 'refused', why: 'wrong token' });
          }
          const s = o.serving();
          if (!s.ok) {
            // A relay asks every node every few hundred ms while none leads: no log line each time.
            this.refusals++;
            return end({ t: 'refused', why: s.why, ...(s.leader !== undefined ? { leader: s.leader } : {}) });
          }
          c.proxy = m.proxy;
          lines.maxBytes = MAX_FRAME_BYTES;
          send({ t: 'welcome', node: s.node, epoch: s.epoch });
          o.log.info({ proxy: c.proxy, remote: c.remote, epoch: s.epoch }, 'relay connected');
          continue;
        }
        const proxy = c.proxy;
        switch (m.t) {
          case 'ping':
            send({ t: 'pong' });
            break;
          case 'closed':
            o.clientClosed(proxy);
            break;
          case 'hello':
            o.log.warn({ remote: c.remote, proxy }, 'relay connection dropped: a second hello');
            return void socket.destroy();
          case 'req': {
            const s = o.serving();
            if (!s.ok) {
              o.log.warn({ proxy, why: s.why }, 'relay request not served: this node no longer serves relays');
              return end({ t: 'unserved', id: m.id });
            }
            inFlight++;
            if (inFlight >= maxInFlight) socket.pause();
            // Handed over now, in arrival order (the door passes it to the engine before it waits).
            o.handle({ command: m.command, fields: m.fields }, proxy, m.held_ms ?? 0).catch((err: unknown) => {
              o.log.error({ proxy, command: m.command, err: err instanceof Error ? err.message : String(err) }, 'relay request failed; answered Error');
              return ERROR_REPLY;
            }).then((reply) => {
              inFlight--;
              if (socket.isPaused() && inFlight < maxInFlight) socket.resume();
              send({ t: 'reply', id: m.id, reply });
            });
            break;
          }
        }
      }
    });
  }
}
