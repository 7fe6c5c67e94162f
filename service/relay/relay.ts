/**
 * sca-cc-relay's core: what call_control.so asks on this proxy host goes over TCP to the service
 * node that leads (the others refuse), with this proxy's PROXY_ID, and the leader's reply comes
 * back. Kamailio never waits longer than `replyTimeoutMs` (its socket_timeout is 500 ms, after
 * which call_control.so drops its connection and answers -5 for 10 s): with no leader, or no
 * reply in time, the answer is `Error`, which call_control.so maps to -5 ("service unreachable")
 * at once, without that pause. Nothing is ever admitted here.
 *
 * `start` and `stop` are kept in the outbox (outbox.ts) until a leader has answered them, and
 * sent again, in order, to the next leader: a call's end is never lost to a failover.
 */
import net from 'node:net';
import type { CallControlRequest } from '../kamailio/call-control-socket.js';
import { ERROR_REPLY } from '../kamailio/call-control-socket.js';
import { startFields, stopFields } from '../modules/cc-socket-door.js';
import { Outbox, type OutboxEntry } from './outbox.js';
import { encode, JsonLines, MAX_FRAME_BYTES, parseHostPort, readToRelay, RELAY_PROTOCOL, type ToNode, type ToRelay } from './wire.js';

export interface RelayLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CcRelayOptions {
  /** Service nodes, host:port of their cc_relay_listen, tried in this order. */
  readonly nodes: readonly string[];
  readonly token: string;
  /** This proxy's PROXY_ID (the one its link gives the service). */
  readonly proxy: string;
  /** call_control.so gets its answer by then (below its socket_timeout, 500 ms). */
  readonly replyTimeoutMs: number;
  /** While no node leads, every node is tried this often. */
  readonly retryMs: number;
  readonly pingMs: number;
  /** A leader silent this long (no frame, no pong) is given up on. */
  readonly deadMs: number;
  /** A node that neither welcomes nor refuses this soon after the connect is given up on (this round). */
  readonly connectTimeoutMs: number;
  /** The outbox's bounds. */
  readonly queueMax: number;
  readonly queueMaxBytes: number;
  /** start/stop sent and not answered at most (a replay goes in steps of this). */
  readonly window: number;
  readonly log: RelayLog;
}

/** Kept until a leader answers them: a call's answer and its end. */
const KEPT = new Set(['start', 'stop']);
/** A start/stop kept this long (ms) tells the leader, which then bills it to when it happened. */
const HELD_MS = 100;

interface LinkEvents {
  welcome(link: NodeLink): void;
  refused(link: NodeLink, why: string, leader: string | undefined): void;
  reply(link: NodeLink, id: number, reply: string | undefined): void;
  closed(link: NodeLink, why: string): void;
}

/** One TCP connection to one node: hello, then requests and pings while it is the leader. */
class NodeLink {
  state: 'hello' | 'active' | 'closed' = 'hello';
  node = '';
  epoch = -1;
  /** Requests not kept in the outbox (init, terminate, …) that wait for this node's reply. */
  readonly live = new Set<number>();
  private lastHeard = performance.now();
  private readonly socket: net.Socket;
  private readonly lines = new JsonLines(MAX_FRAME_BYTES);
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly address: string, o: CcRelayOptions, private readonly ev: LinkEvents) {
    const hp = parseHostPort(address)!;
    this.socket = net.connect({ host: hp.host, port: hp.port });
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 5000);
    this.timer = setTimeout(() => this.close(`no answer to the hello within ${o.connectTimeoutMs} ms`), o.connectTimeoutMs);
    this.socket.on('connect', () => this.send({ t: 'hello', v: RELAY_PROTOCOL, proxy: o.proxy, token: o.token }));
    this.socket.on('data', (chunk: Buffer) => {
      this.lastHeard = performance.now();
      const read = this.lines.push(chunk);
      if (!read.ok) return this.close(`unreadable frames (${read.error})`);
      for (const v of read.values) {
        const m = readToRelay(v);
        if (!m.ok) return this.close(`unreadable frame (${m.error})`);
        this.dispatch(m.msg, o);
        if (this.state === 'closed') return;
      }
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.close(err.code ?? err.message));
    this.socket.on('close', () => this.close('connection closed by the node'));
  }

  private dispatch(msg: ToRelay, o: CcRelayOptions): void {
    switch (msg.t) {
      case 'welcome':
        if (this.state !== 'hello') return this.close('a second welcome');
        clearTimeout(this.timer);
        this.state = 'active';
        this.node = msg.node;
        this.epoch = msg.epoch;
        this.timer = setInterval(() => {
          const silent = performance.now() - this.lastHeard;
          if (silent > o.deadMs) this.close(`silent for ${Math.round(silent)} ms`);
          else this.send({ t: 'ping' });
        }, o.pingMs);
        this.ev.welcome(this);
        return;
      case 'refused':
        this.ev.refused(this, msg.why, msg.leader);
        return this.close(`refused: ${msg.why}`);
      case 'reply':
      case 'unserved':
        if (this.state !== 'active') return this.close('a reply before the welcome');
        this.live.delete(msg.id);
        this.ev.reply(this, msg.id, msg.t === 'reply' ? msg.reply : undefined);
        return;
      case 'pong':
        return;
    }
  }

  send(msg: ToNode): void {
    if (this.state !== 'closed' && this.socket.writable) this.socket.write(encode(msg));
  }

  close(why: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.socket.destroy();
    this.ev.closed(this, why);
  }
}

export interface RelayStatus {
  readonly leader: { node: string; epoch: number; address: string } | undefined;
  readonly queued: number;
  readonly queuedBytes: number;
  readonly inFlight: number;
  readonly dropped: number;
  /** Requests answered Error because no leader answered in time (call_control.so's -5). */
  readonly unanswered: number;
  readonly forwarded: number;
  readonly replayed: number;
}

export class CcRelay {
  private active: NodeLink | undefined;
  private readonly trying = new Map<string, NodeLink>();
  private readonly waiters = new Map<number, (reply: string | undefined) => void>();
  private readonly outbox: Outbox;
  private seq = 0;
  private searchTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  /** A call_control.so connection closed while no leader was reached: told to the next one. */
  private closedPending = false;
  /** What was last said about each node while searching (logged when it changes, not every round). */
  private readonly said = new Map<string, string>();
  private lostAt: number | undefined = performance.now();
  private fullSince: number | undefined;
  private readonly stats = { unanswered: 0, forwarded: 0, replayed: 0 };

  constructor(private readonly o: CcRelayOptions) {
    this.outbox = new Outbox(o.queueMax, o.queueMaxBytes);
  }

  start(): void {
    this.stopped = false;
    this.search();
  }

  /**
   * Waits (at most `ms`) for a leader to answer what the outbox holds: a relay stopped on purpose
   * (an upgrade, a reboot) hands its start/stop over first. Call with no new requests coming.
   */
  async drain(ms: number): Promise<void> {
    const end = performance.now() + ms;
    while (this.outbox.size > 0 && this.active && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.searchTimer);
    for (const l of [...this.trying.values(), ...(this.active ? [this.active] : [])]) l.close('the relay stops');
    for (const w of [...this.waiters.values()]) w(undefined);
    if (this.outbox.size > 0) this.o.log.error({ queued: this.outbox.size }, 'RELAY STOPPED WITH START/STOP UNDELIVERED: the service finds those ends by reconciling with Kamailio');
  }

  status(): RelayStatus {
    const a = this.active;
    return {
      leader: a ? { node: a.node, epoch: a.epoch, address: a.address } : undefined,
      queued: this.outbox.size, queuedBytes: this.outbox.bytes, inFlight: this.outbox.inFlight, dropped: this.outbox.dropped, ...this.stats,
    };
  }

  /** call_control.so's request → the leader's reply, or Error (-5) when none answers in time. */
  handle = async (req: CallControlRequest): Promise<string> => {
    if (KEPT.has(req.command)) return this.kept(req);
    const a = this.active;
    if (!a) {
      this.stats.unanswered++;
      return ERROR_REPLY;
    }
    const id = ++this.seq;
    const reply = this.wait(id);
    a.live.add(id);
    a.send({ t: 'req', id, command: req.command, fields: req.fields });
    this.stats.forwarded++;
    const r = await reply;
    if (r === undefined) this.stats.unanswered++;
    return r ?? ERROR_REPLY;
  };

  /** A call_control.so connection closed: its worker sends no start or stop for 10 s; the leader reconciles. */
  clientClosed(): void {
    if (this.active) this.active.send({ t: 'closed' });
    else this.closedPending = true;
  }

  private async kept(req: CallControlRequest): Promise<string> {
    const f = (req.command === 'start' ? startFields : stopFields).safeParse(req.fields);
    if (!f.success) {
      this.o.log.warn({ command: req.command, issues: f.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') }, 'call_control request rejected');
      return ERROR_REPLY;
    }
    const seq = ++this.seq;
    const fields = req.fields;
    const bytes = 64 + Object.entries(fields).reduce((n, [k, v]) => n + k.length + Buffer.byteLength(v), 0);
    const dropped = this.outbox.add({ seq, command: req.command, fields, bytes, since: performance.now() });
    if (dropped.length > 0) this.full(dropped);
    // No leader: kept, and call_control.so's worker is not held (it ignores a stop's reply).
    if (!this.active) {
      this.stats.unanswered++;
      return ERROR_REPLY;
    }
    const reply = this.wait(seq);
    this.pump();
    const r = await reply;
    if (r === undefined) this.stats.unanswered++;
    return r ?? ERROR_REPLY;
  }

  /** The outbox overflowed: said once while it stays full (with what went), and when it drains. */
  private full(dropped: readonly OutboxEntry[]): void {
    for (const d of dropped) this.waiters.get(d.seq)?.(undefined);
    if (this.fullSince !== undefined) return;
    this.fullSince = performance.now();
    const first = { command: dropped[0]!.command, callid: dropped[0]!.fields.callid };
    this.o.log.error({ first_dropped: first, limit: this.o.queueMax, limit_bytes: this.o.queueMaxBytes },
      'RELAY OUTBOX FULL: the oldest start/stop are dropped (the leader finds those calls by reconciling with Kamailio)');
  }

  private wait(id: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), this.o.replyTimeoutMs);
      const done = (r: string | undefined): void => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(r);
      };
      this.waiters.set(id, done);
    });
  }

  /** Sends what waits in the outbox, in order, up to the window. */
  private pump(): void {
    const a = this.active;
    if (!a) return;
    while (this.outbox.inFlight < this.o.window) {
      const e = this.outbox.takeNext();
      if (!e) break;
      // Held long enough to matter (a failover): the leader bills it to when it happened.
      const held = Math.round(performance.now() - e.since);
      a.send({ t: 'req', id: e.seq, command: e.command, fields: e.fields, ...(held >= HELD_MS ? { held_ms: held } : {}) });
      this.stats.forwarded++;
    }
    if (this.fullSince !== undefined && this.outbox.size < this.o.queueMax / 2) {
      this.o.log.warn({ dropped: this.outbox.dropped, full_for_ms: Math.round(performance.now() - this.fullSince) }, 'relay outbox has room again');
      this.fullSince = undefined;
    }
  }

  private search(): void {
    clearTimeout(this.searchTimer);
    if (this.stopped || this.active) return;
    for (const address of this.o.nodes) if (!this.trying.has(address)) this.trying.set(address, new NodeLink(address, this.o, this.events));
    this.searchTimer = setTimeout(() => this.search(), this.o.retryMs);
  }

  private say(address: string, what: string, obj: object): void {
    if (this.said.get(address) === what) return;
    this.said.set(address, what);
    this.o.log.info({ node_address: address, ...obj }, what);
  }

  private readonly events: LinkEvents = {
    welcome: (link) => {
      if (this.trying.get(link.address) === link) this.trying.delete(link.address);
      this.said.delete(link.address);
      const old = this.active;
      if (this.stopped || (old && old.epoch >= link.epoch)) return link.close('another leader is in use');
      if (old) old.close(`node ${link.node} leads with a newer epoch (${link.epoch})`);
      this.active = link;
      clearTimeout(this.searchTimer);
      // Other attempts of this round go on: one that welcomes with a newer epoch is taken instead.
      const queued = this.outbox.size;
      this.stats.replayed += queued;
      this.o.log.info({
        node: link.node, epoch: link.epoch, node_address: link.address, proxy: this.o.proxy, replaying: queued,
        ...(this.lostAt !== undefined ? { without_leader_ms: Math.round(performance.now() - this.lostAt) } : {}),
      }, queued > 0 ? 'leader reached: replaying the start/stop kept meanwhile, in order' : 'leader reached');
      this.lostAt = undefined;
      if (this.closedPending) {
        this.closedPending = false;
        link.send({ t: 'closed' });
      }
      this.pump();
    },
    refused: (link, why, leader) => this.say(link.address, 'node refused the relay', { why, leader }),
    reply: (_link, id, reply) => {
      // Unserved (the node stopped leading): still kept; the node closes and it goes to the next.
      if (reply !== undefined && this.outbox.answered(id)) this.pump();
      this.waiters.get(id)?.(reply);
    },
    closed: (link, why) => {
      if (this.trying.get(link.address) === link) this.trying.delete(link.address);
      for (const id of link.live) this.waiters.get(id)?.(undefined);
      link.live.clear();
      if (link !== this.active) {
        if (link.state !== 'active' && !why.startsWith('refused') && !this.stopped) this.say(link.address, 'node not reachable', { why });
        return;
      }
      this.active = undefined;
      this.lostAt = performance.now();
      const resend = this.outbox.resend();
      if (!this.stopped) {
        this.o.log.warn({ node: link.node, epoch: link.epoch, why, unanswered_start_stop: resend, queued: this.outbox.size },
          'LEADER LOST: new calls get Error (-5) until a leader is reached; start/stop are kept and replayed');
      }
      this.search();
    },
  };
}
