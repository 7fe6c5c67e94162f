import type { z } from 'zod';
import type { Effects, OutboundNotify } from '../effects.js';
import { rpcResultOf, type RpcResult } from './dialog-rpc.js';
import { EvapiClient, type EvapiLogger } from './evapi-client.js';
import { decodeBase64Params, renderNotify } from './wire.js';

/**
 * The Kamailio link: evapi connections to every configured Kamailio, JSON-RPC 2.0 over
 * netstrings (kamailio/link.cfg is the other end; the shapes are in wire.ts). It knows no
 * engine: engines register method tables (name → params schema → handler), the link validates,
 * dispatches, has the effects carried out (commit, then answer, then the rest) and answers on the
 * connection the request came from. It also sends the NOTIFYs the service starts itself, keeps
 * every frame under what Kamailio can read, and pings each Kamailio to notice a dead one.
 */

/** The answer to a request and the effects to carry out before it is given. */
export interface LinkOutcome {
  readonly answer: Record<string, unknown>;
  readonly effects: Effects<unknown>;
}

/** Where a request came from: the PROXY_ID of the Kamailio that sent it. */
export interface LinkSource {
  readonly proxy: string | undefined;
}

export interface LinkMethod<P = never> {
  readonly params: z.ZodType<P>;
  handle(params: P, from: LinkSource): LinkOutcome;
  /**
   * The answer when the request cannot be handled (bad params, an answer too large, a bug) but
   * Kamailio waits on it: a suspended transaction must always be resumed. Undefined: an error.
   */
  fallback?(raw: unknown): Record<string, unknown> | undefined;
}

export type LinkMethods = Readonly<Record<string, LinkMethod<any>>>;

/** Carries out effects: commits, then calls `answer` with the NOTIFYs to give with it, then the rest. */
export type ApplyEffects = (effects: Effects<unknown>, answer: (notifies: readonly OutboundNotify[]) => void) => Promise<void>;

/** What the link reports to metrics. */
export interface LinkObserver {
  notifiesSent(count: number): void;
  /** A final reply to a NOTIFY; seconds since it was handed to Kamailio, if we sent it. */
  notifyAnswered(code: number, seconds: number | undefined): void;
  /** NOTIFYs without any final reply after NOTIFY_TIMEOUT_MS (tm gave up on them). */
  notifyTimedOut(count: number): void;
}

export interface LinkOptions {
  /** Largest frame (evapi's CLIENT_BUFFER_SIZE is 32768 with the netstring; below the flow window). */
  frameLimit?: number;
  heartbeatMs?: number;
  /** A ping unanswered this long means the peer is dead: the connection is reset. */
  heartbeatTimeoutMs?: number;
  /** Said in link.hello: this node's name and its leadership epoch (a single service: 0). */
  node?: string;
  epoch?: () => number;
  /**
   * May this node write to Kamailio now (HA: is it still the leader)? Asked before every frame:
   * a node that lost its leadership, even one that does not know it yet, writes nothing more.
   */
  mayWrite?: () => boolean;
}

/** Params for a log line: JSON, cut short; undefined and unserializable values included. */
const preview = (v: unknown): string => {
  try {
    return String(JSON.stringify(v)).slice(0, 300);
  } catch {
    return String(v).slice(0, 300);
  }
};

const NOTIFY_TIMEOUT_MS = 40_000; // longer than tm's 32 s transaction timeout
const MAX_IN_FLIGHT = 200_000;
const notifyKey = (callId: string, fromTag: string, cseq: number): string => `${callId}\u0000${fromTag}\u0000${cseq}`;

type JsonRpcId = string | number | null;
interface Peer {
  readonly client: EvapiClient;
  pingId: number;
  /** The unanswered heartbeat ping and when it went out. */
  ping: { id: string; at: number } | undefined;
  /** Flow control: bytes written on this connection, and how many of them Kamailio has read. */
  written: number;
  read: number;
  /** The ping that will tell how far Kamailio has read: the byte count when it went out. */
  readPings: Array<{ id: string; at: number }>;
  /** Frames waiting for Kamailio to read what it has. */
  queue: string[];
  queuedBytes: number;
  /** A link.ack is due at the end of this turn for the notifications received in it. */
  ackDue: boolean;
  /** This Kamailio's PROXY_ID, from its answer to our hello: the link is up once it has one. */
  proxy: string | undefined;
  /** The id of our hello waiting for its answer. */
  helloId: string | undefined;
  /** Bytes of Kamailio's requests read and not yet credited (link.credit), and its timer. */
  uncredited: number;
  creditTimer: NodeJS.Timeout | undefined;
  /** How often this Kamailio stopped writing to us because we fell behind (its pongs say). */
  stalls: number;
}

/**
 * Kamailio 5.6's evapi reads a client 32 KB at a time and loses frames whose length prefix or
 * final comma falls on a read boundary: the service never lets more than this many bytes wait
 * unread, so every read takes whole frames. A ping marks how far Kamailio has read.
 */
const WINDOW_BYTES = 27_000;
/** A read ping goes after this many bytes: the window moves in steps of about this size. */
const READ_PING_STEP = 4_000;
/** Kamailio drops it unread (a method without params): it only carries our TCP ACK at once. */
const LINK_ACK = '{"jsonrpc":"2.0","method":"link.ack"}';
/**
 * Room past the window for link.ack alone, about 120 of them (the window plus this and one read
 * ping stay under evapi's 32 KB read). While the window is full the service writes nothing, so
 * its TCP ACKs wait for the delayed-ACK timer and Nagle on Kamailio's socket holds the pong that
 * would open the window, and every request behind it, up to 40 ms: an ack per message received
 * then keeps Kamailio's data moving.
 */
const ACK_RESERVE = 5_000;
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/**
 * Kamailio stops writing to a service that has more than LINK_CREDIT (link.cfg, 2 MB) unread, or
 * that credited nothing for a second while bytes are unread: a frozen service must never block
 * its one evapi dispatcher. What was read is credited once this much is uncredited, else soon.
 */
const CREDIT_BYTES = 64 * 1024;
const CREDIT_AFTER_MS = 50;

export class KamailioLink {
  private readonly peers: Peer[];
  private readonly methods = new Map<string, { method: LinkMethod<unknown>; apply: ApplyEffects }>();
  private readonly upListeners: Array<(proxy: string) => void> = [];
  private readonly downListeners: Array<(proxy: string) => void> = [];
  /** link.rpc requests waiting for Kamailio's answer, by id. */
  private readonly rpcs = new Map<string, { resolve(r: RpcResult): void; timer: NodeJS.Timeout }>();
  private rpcId = 0;
  /** NOTIFYs handed to Kamailio and not yet answered: key → performance.now() at sending. */
  private readonly inFlight = new Map<string, number>();
  private timers: NodeJS.Timeout[] = [];
  private readonly frameLimit: number;
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly node: string;
  private readonly epoch: () => number;
  private readonly mayWrite: () => boolean;
  readonly counters = { received: 0, bad: 0, notifiesSent: 0, notifiesDropped: 0, framesDropped: 0, split: 0, pongs: 0, resets: 0 };
  observer: LinkObserver | undefined;

  constructor(addresses: readonly string[], private readonly log: EvapiLogger, opts: LinkOptions = {}) {
    this.frameLimit = opts.frameLimit ?? 30_000;
    this.heartbeatMs = opts.heartbeatMs ?? 5_000;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 15_000;
    this.node = opts.node ?? 'sca-service';
    this.epoch = opts.epoch ?? (() => 0);
    this.mayWrite = opts.mayWrite ?? (() => true);
    this.peers = addresses.map((a) => {
      const [host = '127.0.0.1', port = '8448'] = a.split(/:(?=\d+$)/);
      const peer: Peer = {
        client: new EvapiClient(host, Number(port), log), pingId: 0, ping: undefined, written: 0, read: 0, readPings: [], queue: [], queuedBytes: 0, ackDue: false,
        proxy: undefined, helloId: undefined, uncredited: 0, creditTimer: undefined, stalls: 0,
      };
      peer.client.on('message', (payload: string) => this.receive(peer, payload));
      peer.client.on('down', () => {
        if (peer.queue.length > 0) this.log.error({ evapi: peer.client.address, frames: peer.queue.length }, 'Kamailio went away: frames waiting for it are dropped');
        this.counters.framesDropped += peer.queue.length;
        const wasLinked = peer.proxy;
        if (peer.creditTimer) clearTimeout(peer.creditTimer);
        Object.assign(peer, { written: 0, read: 0, readPings: [], queue: [], queuedBytes: 0, proxy: undefined, helloId: undefined, uncredited: 0, creditTimer: undefined });
        if (wasLinked !== undefined) for (const l of this.downListeners) l(wasLinked);
      });
      peer.client.on('up', () => {
        peer.ping = undefined;
        // The connection is the active one once Kamailio answers this hello (its epoch is not
        // below the last one it heard); it then replays the events it queued meanwhile.
        peer.helloId = `hello-${++peer.pingId}`;
        this.sendTo(peer, { jsonrpc: '2.0', method: 'link.hello', id: peer.helloId, params: { node: this.node, epoch: this.epoch() } });
      });
      return peer;
    });
  }

  /** Adds an engine's methods; `apply` carries out what its handlers return. */
  register(methods: LinkMethods, apply: ApplyEffects): void {
    for (const [name, method] of Object.entries(methods)) {
      if (this.methods.has(name)) throw new Error(`link method ${name} registered twice`);
      this.methods.set(name, { method: method as LinkMethod<unknown>, apply });
    }
  }

  /** Called on every (re)connection to a Kamailio (its PROXY_ID): an engine's resync. */
  onUp(listener: (proxy: string) => void): void {
    this.upListeners.push(listener);
  }

  /** Called when a connection to a Kamailio is lost (it stopped, restarted or went silent). */
  onDown(listener: (proxy: string) => void): void {
    this.downListeners.push(listener);
  }

  start(): void {
    for (const p of this.peers) p.client.start();
    const sweep = setInterval(() => this.sweepInFlight(), 5000);
    const beat = setInterval(() => this.heartbeat(), this.heartbeatMs);
    sweep.unref();
    beat.unref();
    this.timers = [sweep, beat];
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    for (const p of this.peers) p.client.stop();
  }

  /** Kamailio instances linked: connected, and our hello answered. */
  get connected(): number {
    return this.peers.filter((p) => p.client.isConnected && p.proxy !== undefined).length;
  }

  /** Times the linked proxies stopped writing to this service because it fell behind (each counts since its start). */
  get creditStalls(): number {
    return this.peers.reduce((n, p) => n + (p.proxy !== undefined ? p.stalls : 0), 0);
  }

  /** The PROXY_ID of each linked Kamailio. */
  get proxies(): string[] {
    return this.peers.flatMap((p) => (p.client.isConnected && p.proxy !== undefined ? [p.proxy] : []));
  }

  /** Bytes Kamailio has not confirmed reading, and bytes waiting in the service for room. */
  get backlog(): { unread: number; waiting: number } {
    return this.peers.reduce((b, p) => ({ unread: b.unread + Math.max(0, p.written - p.read), waiting: b.waiting + p.queuedBytes }), { unread: 0, waiting: 0 });
  }

  /** Why each Kamailio that is not connected is not, for /readyz. */
  get problems(): Array<{ evapi: string; error: string }> {
    return this.peers.filter((p) => !p.client.isConnected || p.proxy === undefined)
      .map((p) => ({ evapi: p.client.address, error: p.client.isConnected ? 'no answer to our hello yet' : p.client.lastError ?? 'not connected' }));
  }

  /**
   * Runs a JSON-RPC command of one proxy's Kamailio (its jsonrpcs, through jsonrpc_exec in
   * link.cfg) over its link: commands about a call go to the proxy that holds it, and only the
   * leader can send them. Never rejects; a proxy not linked is a transport failure.
   */
  rpc(proxy: string, method: string, params: unknown[], timeoutMs: number): Promise<RpcResult> {
    const peer = this.peers.find((p) => p.proxy === proxy && p.client.isConnected);
    if (!peer) return Promise.resolve({ ok: false, code: 'transport', message: `proxy ${proxy} is not linked` });
    const id = `rpc-${++this.rpcId}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.rpcs.delete(id);
        resolve({ ok: false, code: 'timeout', message: `no answer from ${proxy} to ${method} within ${timeoutMs} ms` });
      }, timeoutMs);
      this.rpcs.set(id, { resolve, timer });
      if (!this.sendTo(peer, { jsonrpc: '2.0', method: 'link.rpc', id, params: { rpc: { jsonrpc: '2.0', method, params, id: 1 } } })) {
        clearTimeout(timer);
        this.rpcs.delete(id);
        resolve({ ok: false, code: 'transport', message: `cannot write to ${proxy}` });
      }
    });
  }

  /** Sends NOTIFYs the service starts itself through the first connected Kamailio. */
  sendNotifies(notifies: readonly OutboundNotify[], asked?: Peer): boolean {
    if (notifies.length === 0) return true;
    // Each through its subscriber's own proxy (several proxies, one service); one without a proxy
    // through the proxy that asked, or the first linked.
    const any = asked ?? this.peers.find((p) => p.client.isConnected && p.proxy !== undefined);
    const byPeer = new Map<Peer | undefined, OutboundNotify[]>();
    for (const n of notifies) {
      const peer = n.proxy === undefined ? any : this.peers.find((p) => p.proxy === n.proxy && p.client.isConnected);
      let list = byPeer.get(peer);
      if (!list) byPeer.set(peer, (list = []));
      list.push(n);
    }
    let all = true;
    for (const [peer, list] of byPeer) {
      if (peer) {
        this.notifyFrames(peer, list);
        continue;
      }
      all = false;
      this.counters.notifiesDropped += list.length;
      this.log.warn({ count: list.length, aor: list[0]!.subject, proxy: list[0]!.proxy }, 'the subscriber\'s proxy is not linked: NOTIFYs dropped (it gets the full state when its proxy is back)');
    }
    return all;
  }

  /** A final reply to a NOTIFY we sent: for its latency and the timeouts. */
  notifyAnswered(callId: string, fromTag: string, cseq: number | undefined, code: number): void {
    const key = cseq === undefined ? undefined : notifyKey(callId, fromTag, cseq);
    const at = key === undefined ? undefined : this.inFlight.get(key);
    if (key !== undefined) this.inFlight.delete(key);
    this.observer?.notifyAnswered(code, at === undefined ? undefined : (performance.now() - at) / 1000);
  }

  private receive(peer: Peer, payload: string): void {
    this.counters.received++;
    let msg: { jsonrpc?: unknown; id?: JsonRpcId; method?: unknown; params?: unknown; result?: unknown; error?: unknown } | null;
    try {
      msg = JSON.parse(payload) as typeof msg;
    } catch {
      return this.reject(peer, null, -32700, 'Parse error', { payload: payload.slice(0, 200) });
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return this.reject(peer, null, -32600, 'Invalid Request', { payload: payload.slice(0, 200) });
    if (msg.method === undefined && (msg.result !== undefined || msg.error !== undefined)) {
      if (peer.helloId !== undefined && msg.id === peer.helloId) return this.linked(peer, msg.result);
      const rpc = typeof msg.id === 'string' ? this.rpcs.get(msg.id) : undefined;
      if (rpc) {
        this.rpcs.delete(msg.id as string);
        clearTimeout(rpc.timer);
        const body = (msg.result as { body?: unknown } | undefined)?.body;
        rpc.resolve(msg.error !== undefined ? { ok: false, code: 'transport', message: `link.rpc: ${preview(msg.error)}` } : rpcResultOf(body));
        return;
      }
      this.ackAtEndOfTurn(peer); // nothing answers a pong
      if (peer.ping && msg.id === peer.ping.id) {
        peer.ping = undefined;
        this.counters.pongs++;
      }
      const stalls = (msg.result as { stalls?: unknown } | null)?.stalls;
      if (typeof stalls === 'number' && Number.isInteger(stalls) && stalls >= 0) peer.stalls = stalls;
      const k = peer.readPings.findIndex((p) => p.id === msg!.id);
      if (k >= 0) {
        peer.read = peer.readPings[k]!.at;
        peer.readPings.splice(0, k + 1);
        this.flush(peer);
      }
      return;
    }
    // Kamailio counts its requests (not its answers) as unread until credited.
    this.credit(peer, Buffer.byteLength(payload));
    if (peer.queue.length > 0) this.ackWhileBlocked(peer);
    const id = typeof msg.id === 'string' || typeof msg.id === 'number' ? msg.id : null;
    const entry = typeof msg.method === 'string' ? this.methods.get(msg.method) : undefined;
    if (!entry) return this.reject(peer, id, -32601, `Method not found: ${String(msg.method).slice(0, 100)}`);
    // A notification (no id; NOTIFY replies come this way) is carried out and not answered.
    const notification = !('id' in msg);
    const method = msg.method as string;
    // The schema and the fallback see the same names: <name>_b64 decoded into <name>.
    const params = decodeBase64Params(msg.params);
    const parsed = entry.method.params.safeParse(params);
    if (!parsed.success) {
      const fallback = entry.method.fallback?.(params);
      const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      if (!fallback) return this.reject(peer, id, -32602, `invalid params: ${issues}`, { method, params: preview(msg.params) });
      this.counters.bad++;
      this.log.error({ method, issues, params: preview(msg.params) }, 'invalid params from Kamailio; answered with the fallback');
      this.answer(peer, id, fallback, [], () => undefined);
      return;
    }
    let out: LinkOutcome;
    try {
      out = entry.method.handle(parsed.data, { proxy: peer.proxy });
    } catch (err) {
      // A bug: say so loudly, but Kamailio still gets its answer.
      this.log.error({ method, err: (err as Error).message, stack: (err as Error).stack }, 'link method failed');
      const fallback = entry.method.fallback?.(params);
      if (fallback) this.answer(peer, id, fallback, [], () => undefined);
      else this.reject(peer, id, -32603, 'Internal error');
      return;
    }
    if (notification) this.ackAtEndOfTurn(peer);
    let answered = false;
    const answer = notification
      ? (notifies: readonly OutboundNotify[]) => { this.sendNotifies(notifies, peer); }
      : (notifies: readonly OutboundNotify[]) => {
        answered = true;
        // The fallback only if the answer cannot go (a method's fallback may count a refusal).
        this.answer(peer, id, out.answer, notifies, () => entry.method.fallback?.(params));
      };
    entry.apply(out.effects, answer).catch((err: unknown) => {
      this.log.error({ method, err: String(err) }, 'carrying out the effects failed');
      // Kamailio still gets its answer: the method's fallback, or an error.
      if (notification || answered) return;
      const fallback = entry.method.fallback?.(params);
      if (fallback) this.sendTo(peer, { jsonrpc: '2.0', id, result: { ...fallback, notifies: [] } });
      else this.sendTo(peer, { jsonrpc: '2.0', id, error: { code: -32603, message: 'Internal error' } });
    });
  }

  /** Kamailio answered our hello: this connection is the active one, and it names its proxy. */
  private linked(peer: Peer, result: unknown): void {
    peer.helloId = undefined;
    const proxy = (result as { proxy?: unknown } | null)?.proxy;
    peer.proxy = typeof proxy === 'string' && proxy !== '' ? proxy : peer.client.address;
    this.log.info({ evapi: peer.client.address, proxy: peer.proxy, epoch: this.epoch() }, 'Kamailio linked');
    for (const l of this.upListeners) l(peer.proxy);
  }

  /** Credits what was read of Kamailio's requests: at once past CREDIT_BYTES, else within CREDIT_AFTER_MS. */
  private credit(peer: Peer, bytes: number): void {
    peer.uncredited += bytes;
    const send = (): void => {
      if (peer.creditTimer) clearTimeout(peer.creditTimer);
      peer.creditTimer = undefined;
      const read = peer.uncredited;
      if (read === 0 || !peer.client.isConnected) return;
      const frame = `{"jsonrpc":"2.0","method":"link.credit","params":{"read":${read}}}`;
      // Past a full window it goes in the room kept for acks: Kamailio must hear it to keep writing.
      if (peer.queue.length > 0 ? this.sendInReserve(peer, frame) : this.write(peer, frame)) peer.uncredited -= read;
      else peer.creditTimer = setTimeout(send, CREDIT_AFTER_MS);
    };
    if (peer.uncredited >= CREDIT_BYTES) send();
    else peer.creditTimer ??= setTimeout(send, CREDIT_AFTER_MS);
  }

  /**
   * One link.ack for what this turn received and will not answer (notifications, pongs), unless
   * something else went to Kamailio meanwhile: without a frame back our TCP ACK waits for the
   * delayed-ACK timer, and Nagle on Kamailio's socket (evapi sets no TCP_NODELAY) holds its next
   * event until then (up to 40 ms).
   */
  private ackAtEndOfTurn(peer: Peer): void {
    if (peer.ackDue) return;
    peer.ackDue = true;
    const written = peer.written;
    setImmediate(() => {
      peer.ackDue = false;
      if (peer.written === written && peer.queue.length === 0) this.write(peer, LINK_ACK);
    });
  }

  private reject(peer: Peer, id: JsonRpcId, code: number, message: string, extra: object = {}): void {
    this.counters.bad++;
    this.log.error({ evapi: peer.client.address, code, error: message, ...extra }, 'evapi request rejected');
    this.sendTo(peer, { jsonrpc: '2.0', id, error: { code, message } });
  }

  /**
   * Answers with as many NOTIFYs as fit in the frame; the rest follow as link.notify frames. An
   * answer that does not fit even without them is replaced by the method's fallback.
   */
  private answer(peer: Peer, id: JsonRpcId, result: Record<string, unknown>, all: readonly OutboundNotify[], fallbackOf: () => Record<string, unknown> | undefined): void {
    // NOTIFYs for subscribers of another proxy go out through it.
    const notifies = all.filter((n) => n.proxy === undefined || n.proxy === peer.proxy);
    if (notifies.length < all.length) this.sendNotifies(all.filter((n) => n.proxy !== undefined && n.proxy !== peer.proxy), peer);
    // A report answered with nothing (no resume, no NOTIFY): Kamailio would decode the answer to
    // find it empty; the turn's link.ack, dropped by a string compare, keeps our TCP ACK prompt.
    if (notifies.length === 0 && Object.keys(result).length === 0) return this.ackAtEndOfTurn(peer);
    const wire = notifies.map(renderNotify);
    const base = JSON.stringify({ jsonrpc: '2.0', id, result: { ...result, notifies: [] } });
    if (Buffer.byteLength(base) > this.frameLimit) {
      this.log.error({ bytes: Buffer.byteLength(base), limit: this.frameLimit }, 'answer too large for Kamailio; sending the fallback');
      const fallback = fallbackOf();
      if (fallback) this.sendTo(peer, { jsonrpc: '2.0', id, result: { ...fallback, notifies: [] } });
      else this.sendTo(peer, { jsonrpc: '2.0', id, error: { code: -32603, message: 'answer too large' } });
      this.notifyFrames(peer, notifies);
      return;
    }
    let room = this.frameLimit - Buffer.byteLength(base);
    let fit = 0;
    for (const n of wire) {
      const size = Buffer.byteLength(JSON.stringify(n)) + 1;
      if (size > room) break;
      room -= size;
      fit++;
    }
    this.sendTo(peer, { jsonrpc: '2.0', id, result: { ...result, notifies: wire.slice(0, fit) } });
    this.sent(notifies.slice(0, fit));
    if (fit < notifies.length) {
      this.counters.split++;
      this.notifyFrames(peer, notifies.slice(fit));
    }
  }

  /** link.notify frames, each under the limit; a NOTIFY that cannot fit alone is dropped loudly. */
  private notifyFrames(peer: Peer, notifies: readonly OutboundNotify[]): void {
    const empty = Buffer.byteLength(JSON.stringify({ jsonrpc: '2.0', method: 'link.notify', params: { notifies: [] } }));
    let batch: OutboundNotify[] = [];
    let wire: string[] = [];
    let size = empty;
    const flush = (): void => {
      if (batch.length === 0) return;
      const payload = `{"jsonrpc":"2.0","method":"link.notify","params":{"notifies":[${wire.join(',')}]}}`;
      if (this.write(peer, payload)) this.sent(batch);
      else this.counters.notifiesDropped += batch.length;
      batch = [];
      wire = [];
      size = empty;
    };
    for (const n of notifies) {
      const w = JSON.stringify(renderNotify(n));
      const bytes = Buffer.byteLength(w) + 1;
      if (empty + bytes > this.frameLimit) {
        this.counters.notifiesDropped++;
        this.log.error({ aor: n.subject, callId: n.callId, bytes }, 'NOTIFY too large for Kamailio: dropped');
        continue;
      }
      if (size + bytes > this.frameLimit) flush();
      batch.push(n);
      wire.push(w);
      size += bytes;
    }
    flush();
  }

  private sendTo(peer: Peer, message: object): boolean {
    return this.write(peer, JSON.stringify(message));
  }

  /** Writes a frame, or queues it until Kamailio has read enough of what it was sent. */
  private write(peer: Peer, payload: string): boolean {
    if (!peer.client.isConnected) return false;
    if (!this.mayWrite()) {
      this.counters.framesDropped++;
      return false;
    }
    const size = Buffer.byteLength(payload) + 16;
    const waiting = peer.written > peer.read;
    if (peer.queue.length > 0 || (waiting && peer.written + size - peer.read > WINDOW_BYTES)) {
      if (peer.queuedBytes + size > MAX_QUEUED_BYTES) {
        this.counters.framesDropped++;
        this.log.error({ evapi: peer.client.address, queued: peer.queuedBytes }, 'Kamailio reads too slowly: frame dropped');
        return false;
      }
      peer.queue.push(payload);
      peer.queuedBytes += size;
      this.askRead(peer);
      return true;
    }
    peer.client.send(payload);
    peer.written += size;
    if (peer.written - this.lastAsked(peer) >= READ_PING_STEP) this.askRead(peer);
    return true;
  }

  /** link.ack past the full window, within ACK_RESERVE: see there. */
  private ackWhileBlocked(peer: Peer): void {
    this.sendInReserve(peer, LINK_ACK);
  }

  /** A small frame written past a full window, within ACK_RESERVE; false when there is no room. */
  private sendInReserve(peer: Peer, frame: string): boolean {
    const size = Buffer.byteLength(frame) + 16;
    if (!peer.client.isConnected || !this.mayWrite() || peer.written + size - peer.read > WINDOW_BYTES + ACK_RESERVE) return false;
    peer.client.send(frame);
    peer.written += size;
    return true;
  }

  /** How far the newest read ping reaches (or what Kamailio is known to have read). */
  private lastAsked(peer: Peer): number {
    return peer.readPings.at(-1)?.at ?? peer.read;
  }

  /**
   * A ping whose answer tells that Kamailio has read everything written before it. One goes
   * every READ_PING_STEP bytes, several at once, so the window slides as Kamailio reads instead
   * of waiting a round trip per half window.
   */
  private askRead(peer: Peer): void {
    if (this.lastAsked(peer) >= peer.written || !peer.client.isConnected || !this.mayWrite()) return;
    const id = `read-${++peer.pingId}`;
    const ping = JSON.stringify({ jsonrpc: '2.0', method: 'link.ping', id });
    peer.client.send(ping);
    peer.written += Buffer.byteLength(ping) + 16;
    peer.readPings.push({ id, at: peer.written });
  }

  private flush(peer: Peer): void {
    while (peer.queue.length > 0 && this.mayWrite()) {
      const next = peer.queue[0]!;
      const size = Buffer.byteLength(next) + 16;
      if (peer.written > peer.read && peer.written + size - peer.read > WINDOW_BYTES) break;
      peer.queue.shift();
      peer.queuedBytes -= size;
      peer.client.send(next);
      peer.written += size;
    }
    if (peer.queue.length > 0 || peer.written - this.lastAsked(peer) >= READ_PING_STEP) this.askRead(peer);
  }

  /** Remembers NOTIFYs handed to Kamailio, to time their replies. */
  private sent(notifies: readonly OutboundNotify[]): void {
    if (notifies.length === 0) return;
    const at = performance.now();
    for (const n of notifies) {
      if (this.inFlight.size >= MAX_IN_FLIGHT) this.inFlight.delete(this.inFlight.keys().next().value!);
      this.inFlight.set(notifyKey(n.callId, n.fromTag, n.cseq), at);
    }
    this.counters.notifiesSent += notifies.length;
    this.observer?.notifiesSent(notifies.length);
  }

  private sweepInFlight(): void {
    const limit = performance.now() - NOTIFY_TIMEOUT_MS;
    let expired = 0;
    for (const [key, at] of this.inFlight) {
      if (at > limit) break; // insertion order is sending order
      this.inFlight.delete(key);
      expired++;
    }
    if (expired > 0) this.observer?.notifyTimedOut(expired);
  }

  /** Pings every connected Kamailio; one that left the last ping unanswered too long is reset. */
  private heartbeat(): void {
    const now = performance.now();
    for (const p of this.peers) {
      if (!p.client.isConnected) continue;
      if (p.ping) {
        const waited = now - p.ping.at;
        if (waited >= this.heartbeatTimeoutMs) {
          this.counters.resets++;
          p.ping = undefined;
          p.client.reset(`no answer to a ping for ${Math.round(waited / 1000)} s`);
        }
        continue;
      }
      p.ping = { id: `ping-${++p.pingId}`, at: now };
      this.sendTo(p, { jsonrpc: '2.0', method: 'link.ping', id: p.ping.id });
    }
  }
}
