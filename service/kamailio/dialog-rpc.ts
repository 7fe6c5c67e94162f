import dgram from 'node:dgram';
import net from 'node:net';
import { z } from 'zod';

/**
 * Ends calls through Kamailio's jsonrpcs datagram transport over UDP (`transport` 4,
 * `dgram_socket "udp:IP:PORT"`); Node's dgram has no AF_UNIX datagrams. One request per datagram,
 * the reply comes back to the sender. As observed on Kamailio 5.6.3 (Debian):
 *
 *   dlg.end_dlg h_entry h_id   {} and BYE both ways (call_control then sends `stop`); 404 "Dialog
 *                              not found". On a ringing dialog also {}, but nothing is sent: the
 *                              call rings on after call_control's `stop`, and if answered gets a
 *                              `start` with no `stop` ever after. Hence endCall().
 *   dlg.dlg_list callid [ftag] the dialog object, or {} when none; one dialog at most (the last match).
 *   tm.reply_callid code reason callid cseq totag
 *                              {}: the caller gets `code`, the callee CANCEL; 404 "Transaction not
 *                              found"; 500 "Reply failed" once a final reply went out. `code` must
 *                              be a JSON number: a string went out as "SIP/2.0 000".
 *   tm.cancel callid cseq      "branches remaining (waiting for timeout)" whenever the transaction
 *                              exists, answered or not; 400 "Transaction not found". The callee
 *                              gets CANCEL, the caller the callee's 487. `cseq` must be a string.
 * A reply over 65507 bytes (dlg.list past ~80 dialogs) is never sent: a 'timeout' here.
 */

export type RpcResult =
  | { ok: true; result: unknown }
  | { ok: false; code: number | 'timeout' | 'transport'; message: string };

export interface DialogRpcLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Sends one JSON-RPC request to Kamailio and gives its reply (the link's link.rpc). Never rejects. */
export type RpcCaller = (method: string, params: unknown[], timeoutMs: number) => Promise<RpcResult>;

export interface DialogRpcOptions {
  /** `udp:127.0.0.1:5810`, `udp:[::1]:5810`: the jsonrpcs `dgram_socket`. */
  address: string;
  /** Instead of the datagram socket: requests go through this (over the link, to one proxy). */
  via?: RpcCaller;
  timeoutMs?: number;
  /** How long to wait for the ACK of an answered call before ending it (see endAnswered). */
  ackWaitMs?: number;
  log: DialogRpcLogger;
}

/** Dialog states as the dialog module numbers them (dlg_hash.h). */
export const DlgState = { unconfirmed: 1, early: 2, confirmedNoAck: 3, confirmed: 4, deleted: 5 } as const;

export interface DialogInfo {
  hEntry: number;
  hId: number;
  /** See DlgState; 5 = ended but not yet purged from the table. */
  state: number;
  /** Seconds since the epoch at the 200 OK; 0 while not answered. */
  startTs: number;
  fromTag: string;
  /** CSeq number of the caller's last request: the INVITE's while the call rings (tm.* needs it). */
  callerCseq: string;
}

/** How to answer the caller when a ringing call is ended (tm.reply_callid). */
export interface FinalReply {
  code: number;
  reason: string;
  /** To-tag for our reply; tm adds none by itself. */
  toTag: string;
}

const DEFAULT_TIMEOUT_MS = 2000;
/** An answered call waits this long for its ACK before Kamailio can end it; looked up every ACK_LOOK_MS. */
const DEFAULT_ACK_WAIT_MS = 4000;
const ACK_LOOK_MS = 100;
// Kamailio's JSON numbers are doubles printed as integers: keep ids small and integral.
const MAX_ID = 0x7fffffff;
const UINT32_MAX = 0xffffffff;

const replySchema = z.object({
  id: z.number().int(),
  result: z.unknown().optional(),
  error: z.object({ code: z.number(), message: z.string() }).optional(),
});

const dialogSchema = z.object({
  h_entry: z.number().int().nonnegative(),
  h_id: z.number().int().nonnegative(),
  state: z.number().int(),
  start_ts: z.number().int(),
  caller: z.object({ tag: z.string(), cseq: z.string().regex(/^\d{1,10}$/) }),
});

/** `udp:host:port` → host and port; undefined for anything else. */
export function parseUdpAddress(text: string): { host: string; port: number } | undefined {
  const m = /^udp:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined && !net.isIPv6(host)) return undefined;
  return { host, port };
}

const uint32 = (s: string): number | undefined =>
  /^(?:0|[1-9]\d{0,9})$/.test(s) && Number(s) <= UINT32_MAX ? Number(s) : undefined;

/** `h_entry:h_id` as call_control's `start` carries it (two %u); undefined for anything else. */
export function parseDialogId(text: string): { hEntry: number; hId: number } | undefined {
  const parts = text.split(':');
  if (parts.length !== 2) return undefined;
  const hEntry = uint32(parts[0] ?? '');
  const hId = uint32(parts[1] ?? '');
  return hEntry === undefined || hId === undefined ? undefined : { hEntry, hId };
}

interface Pending {
  timer: NodeJS.Timeout;
  resolve(r: RpcResult): void;
}

export class DialogRpc {
  private readonly address: string;
  private readonly timeoutMs: number;
  private readonly ackWaitMs: number;
  private readonly log: DialogRpcLogger;
  private readonly socket: dgram.Socket | undefined;
  private readonly via: RpcCaller | undefined;
  private readonly pending = new Map<number, Pending>();
  /** false when the socket closed (or failed to resolve its peer) before connecting. */
  private readonly ready: Promise<boolean>;
  private lastId = 0;
  private closed = false;

  constructor(opts: DialogRpcOptions) {
    const to = parseUdpAddress(opts.address);
    if (!to) throw new TypeError(`dialog rpc address must be udp:host:port, got ${JSON.stringify(opts.address)}`);
    this.address = opts.address;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.ackWaitMs = opts.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    this.log = opts.log;
    this.via = opts.via;
    if (this.via) {
      this.socket = undefined;
      this.ready = Promise.resolve(true);
      return;
    }
    const socket = dgram.createSocket(net.isIPv6(to.host) ? 'udp6' : 'udp4');
    this.socket = socket;
    socket.on('message', (buf, rinfo) => this.onReply(buf, `${rinfo.address}:${rinfo.port}`));
    socket.on('error', (err: NodeJS.ErrnoException) => this.onSocketError(err));
    // Connected: only Kamailio's replies reach us, and an ICMP port-unreachable (nothing listening)
    // comes back as ECONNREFUSED instead of a silent timeout.
    this.ready = new Promise((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('close', () => resolve(false));
    });
    socket.connect(to.port, to.host);
  }

  /** One request datagram; the reply is matched by id. Never rejects. */
  async call(method: string, params: unknown[]): Promise<RpcResult> {
    if (this.closed || !(await this.ready) || this.closed) return { ok: false, code: 'transport', message: 'closed' };
    if (this.via) return this.via(method, params, this.timeoutMs);
    const socket = this.socket!;
    const id = this.nextId();
    const body = JSON.stringify({ jsonrpc: '2.0', method, params, id });
    return new Promise<RpcResult>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, code: 'timeout', message: `no reply to ${method} within ${this.timeoutMs} ms` });
      }, this.timeoutMs);
      this.pending.set(id, { timer, resolve });
      try {
        socket.send(body, (err) => {
          if (err) this.settle(id, { ok: false, code: 'transport', message: err.message });
        });
      } catch (err) {
        this.settle(id, { ok: false, code: 'transport', message: (err as Error).message });
      }
    });
  }

  /**
   * dlg.end_dlg: BYE to both sides of a confirmed dialog. Kamailio 5.6 also says ok for a ringing
   * dialog without ending it: use endCall() unless the dialog is known to be answered.
   */
  async endDialog(hEntry: number, hId: number): Promise<'ended' | 'not-found' | 'failed'> {
    const r = await this.call('dlg.end_dlg', [hEntry, hId]);
    if (r.ok) return 'ended';
    if (r.code === 404) return 'not-found';
    this.log.warn({ hEntry, hId, code: r.code, err: r.message }, 'dlg.end_dlg failed');
    return 'failed';
  }

  /**
   * Ends an answered call (BYE both ways). Kamailio 5.6 ends only a dialog whose ACK it has seen
   * and answers ok without doing anything while the ACK is on its way (it logs "terminating
   * non-confirmed dialogs not supported"): so wait for the ACK first, looking every 100 ms.
   */
  async endAnswered(callId: string, hEntry: number, hId: number): Promise<'ended' | 'not-found' | 'failed'> {
    const d = await this.acked(callId);
    if (d === undefined) return 'not-found';
    if (d === 'no-ack') return 'failed';
    return this.endDialog(hEntry, hId);
  }

  /** The dialog once it is no longer waiting for its ACK; 'failed' (lookup failed) lets the caller try anyway. */
  private async acked(callId: string, fromTag?: string): Promise<DialogInfo | 'failed' | 'no-ack' | undefined> {
    for (const end = Date.now() + this.ackWaitMs; ;) {
      const d = await this.findDialog(callId, fromTag);
      if (d === 'failed') return d;
      if (d === undefined || d.state >= DlgState.deleted) return undefined;
      if (d.state !== DlgState.confirmedNoAck) return d;
      if (Date.now() >= end) {
        this.log.warn({ callId, waitedMs: this.ackWaitMs }, 'answered call without ACK: Kamailio cannot end it yet');
        return 'no-ack';
      }
      await new Promise((r) => setTimeout(r, ACK_LOOK_MS));
    }
  }

  /** dlg.dlg_list: the dialog of this Call-ID (and From-tag), undefined when there is none. */
  async findDialog(callId: string, fromTag?: string): Promise<DialogInfo | undefined | 'failed'> {
    const r = await this.call('dlg.dlg_list', fromTag === undefined ? [callId] : [callId, fromTag]);
    if (!r.ok) {
      this.log.warn({ callId, code: r.code, err: r.message }, 'dlg.dlg_list failed');
      return 'failed';
    }
    if (isEmptyObject(r.result)) return undefined;
    const d = dialogSchema.safeParse(r.result);
    if (!d.success) {
      this.log.warn({ callId, err: d.error.message }, 'dlg.dlg_list: unexpected dialog shape');
      return 'failed';
    }
    const { h_entry, h_id, state, start_ts, caller } = d.data;
    return { hEntry: h_entry, hId: h_id, state, startTs: start_ts, fromTag: caller.tag, callerCseq: caller.cseq };
  }

  /**
   * Ends a call that has not been answered (`cseq`: the INVITE's, DialogInfo.callerCseq): the
   * callee gets CANCEL. With `reply` (tm.reply_callid) the caller gets that reply at once, and
   * 'already-final' means a final reply had gone out first (answered or rejected). Without it
   * (tm.cancel) the caller gets the callee's 487; tm.cancel says ok for an answered call too, but a
   * callee that answers despite the CANCEL leaves a tracked dialog that endDialog can still end,
   * whereas after our own reply such a dialog is marked ended while the call goes on.
   */
  async cancelRinging(callId: string, cseq: string, reply?: FinalReply): Promise<'cancelled' | 'already-final' | 'not-found' | 'failed'> {
    if (!/^\d{1,10}$/.test(cseq)) throw new RangeError(`CSeq must be a number as text, got ${JSON.stringify(cseq)}`);
    if (reply && !(Number.isInteger(reply.code) && reply.code >= 300 && reply.code <= 699)) {
      throw new RangeError(`a final reply to a ringing call must be 300-699, got ${reply.code}`);
    }
    const r = reply
      ? await this.call('tm.reply_callid', [reply.code, reply.reason, callId, cseq, reply.toTag])
      : await this.call('tm.cancel', [callId, cseq]);
    if (r.ok) return 'cancelled';
    // tm.reply_callid: 404 no transaction, 500 "Reply failed" once a final reply went out;
    // tm.cancel: 400 for both a missing transaction and bad params, told apart by the message.
    if (reply ? r.code === 404 : r.code === 400 && r.message === 'Transaction not found') return 'not-found';
    if (reply && r.code === 500) return 'already-final';
    this.log.warn({ callId, cseq, code: r.code, err: r.message }, 'ending a ringing call failed');
    return 'failed';
  }

  /**
   * Ends a call whatever its state: CANCEL while it rings (see cancelRinging), BYE once answered.
   * 'not-found' when Kamailio has no live dialog for it.
   */
  async endCall(callId: string, fromTag: string, reply?: FinalReply): Promise<'ended' | 'cancelled' | 'not-found' | 'failed'> {
    // A second look when a final reply beat ours: answered calls then take a BYE.
    for (let look = 0; look < 2; look++) {
      const d = await this.acked(callId, fromTag);
      if (d === 'failed' || d === 'no-ack') return 'failed';
      if (d === undefined) return 'not-found';
      if (d.state >= DlgState.confirmed) return this.endDialog(d.hEntry, d.hId);
      const c = await this.cancelRinging(callId, d.callerCseq, reply);
      if (c !== 'already-final') return c;
    }
    return 'failed';
  }

  /** Closes the socket; calls still waiting resolve as transport failures. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll('closed');
    try {
      this.socket?.close();
    } catch {
      // already closed after a socket error
    }
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    if (err.code === 'ECONNREFUSED') {
      // Nothing listens on the jsonrpcs port: no reply is coming for any call in flight.
      this.log.warn({ rpc: this.address, calls: this.pending.size }, 'dialog rpc: connection refused (Kamailio not listening?)');
      this.failAll(`connection refused by ${this.address}`);
      return;
    }
    this.log.error({ rpc: this.address, err: err.message }, 'dialog rpc socket error');
    if (err.syscall === 'getaddrinfo' || err.syscall === 'connect') this.close();
  }

  private failAll(message: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, code: 'transport', message });
  }

  private nextId(): number {
    do this.lastId = this.lastId >= MAX_ID ? 1 : this.lastId + 1;
    while (this.pending.has(this.lastId));
    return this.lastId;
  }

  private settle(id: number, r: RpcResult): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(r);
  }

  private onReply(buf: Buffer, from: string): void {
    let json: unknown;
    try {
      json = JSON.parse(buf.toString('utf8'));
    } catch {
      this.log.warn({ from, bytes: buf.length, head: buf.subarray(0, 80).toString('utf8') }, 'dialog rpc: reply is not JSON; ignored');
      return;
    }
    const r = replySchema.safeParse(json);
    if (!r.success || !this.pending.has(r.data.id)) {
      const id = (json as { id?: unknown } | null)?.id;
      this.log.warn({ from, id }, 'dialog rpc: reply with no call waiting for its id (late, unknown or malformed); ignored');
      return;
    }
    const { id, error, result } = r.data;
    if (error) this.settle(id, { ok: false, code: error.code, message: error.message });
    else if ('result' in (json as object)) this.settle(id, { ok: true, result });
    else this.settle(id, { ok: false, code: 'transport', message: 'reply has neither result nor error' });
  }
}

/** A JSON-RPC reply object of Kamailio's jsonrpcs (as link.rpc carries it back) as an RpcResult. */
export function rpcResultOf(reply: unknown): RpcResult {
  const r = replySchema.omit({ id: true }).safeParse(reply);
  if (!r.success) return { ok: false, code: 'transport', message: 'a reply that is not JSON-RPC' };
  if (r.data.error) return { ok: false, code: r.data.error.code, message: r.data.error.message };
  if ('result' in (reply as object)) return { ok: true, result: r.data.result };
  return { ok: false, code: 'transport', message: 'reply has neither result nor error' };
}

const isEmptyObject = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
