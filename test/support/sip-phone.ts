// A small scripted SIP phone for end-to-end tests: UDP on 127.0.0.1, every request sent through
// the proxy (outbound proxy), dialogs with route sets, NOTIFYs and BYEs answered automatically.
import dgram from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';
import { firstHeader, headerValues, parseMessage, type SipMessage } from '../../service/sip/message.js';
import { parseNameAddr, tagOf } from '../../service/sip/name-addr.js';

const rand = (): string => randomBytes(6).toString('hex');

export interface Received {
  msg: SipMessage;
  raw: string;
  at: number; // performance.now()
  from: { address: string; port: number };
  /** For a NOTIFY: the status the phone answered it with (0: none). */
  answered?: number;
}

export const hdr = (m: SipMessage, name: string): string | undefined => firstHeader(m, name.toLowerCase());

export interface Dialog {
  callId: string;
  localTag: string;
  remoteTag: string;
  localUri: string; // name-addr without tag
  remoteUri: string;
  remoteTarget: string;
  routeSet: string[];
  cseq: number;
}

export interface Transaction {
  branch: string;
  callId: string;
  cseq: string;
  responses: SipMessage[];
  final: Promise<SipMessage>;
  /** The request as sent (a CANCEL copies its Via, From, To, Call-ID and Route). */
  raw: string;
}

/** A server transaction: the top Via branch with the CSeq (the method tells INVITE from CANCEL). */
const transactionKey = (m: SipMessage): string =>
  `${/branch=([^;,\s]+)/.exec(firstHeader(m, 'via') ?? '')?.[1] ?? ''} ${firstHeader(m, 'cseq') ?? ''}`;

type Waiter = { match: (r: Received) => boolean; resolve: (r: Received) => void };

/** RFC 3261 17.1.1.1: the round-trip estimate and the cap of non-INVITE retransmissions. */
export const T1 = 500;
export const T2 = 4000;
/** How long a 2xx to INVITE is resent while no ACK comes (64*T1, RFC 3261 13.3.1.4). */
const TIMER_H = 64 * T1;

/** The dialog-wide key of an ACK to a 2xx and of the 2xx it acknowledges: Call-ID and CSeq number. */
const ackKey = (m: SipMessage): string => `${firstHeader(m, 'call-id') ?? ''} ${(firstHeader(m, 'cseq') ?? '').split(/\s+/)[0]}`;

export class Phone {
  readonly requests: Received[] = [];
  private readonly socket = dgram.createSocket('udp4');
  private readonly pending = new Map<string, { tx: Transaction; resolve: (m: SipMessage) => void; timer: NodeJS.Timeout }>();
  private waiters: Waiter[] = [];
  /** The last reply sent per server transaction, resent when a request is retransmitted. */
  private readonly answered = new Map<string, string>();
  /** ACKs sent: to a 2xx by Call-ID and CSeq number, to a failure by branch; resent when the reply comes again. */
  private readonly acks = new Map<string, string>();
  /** Final replies to INVITE sent and not yet ACKed, by Call-ID and CSeq number: resent until the ACK comes. */
  private readonly unacked = new Map<string, NodeJS.Timeout>();
  /** CANCELs sent and not answered (by the INVITE's branch): resent as any non-INVITE request. */
  private readonly cancelling = new Set<string>();
  /** What to answer to an incoming INVITE; default: 180 and wait for the test to answer. */
  onInvite: ((r: Received) => void) | undefined;
  /** The status this phone answers NOTIFYs with (a phone that forgot its subscription says 481; 0: no answer). */
  notifyAnswer: [number, string] = [200, 'OK'];
  /**
   * Behave as a phone's transaction layer over UDP (RFC 3261 17): resend a request until it is
   * answered (timer A for INVITE, E for the others: T1 500 ms doubling, capped at T2 4 s), resend
   * a final reply to INVITE until its ACK comes, ACK again a 2xx or failure that comes again. A load
   * generator that wants every datagram counted once may turn it off.
   */
  retransmit = true;
  /** How long a request waits for its final reply before the transaction fails. */
  txTimeoutMs = 8000;
  /** Keep what comes in (tests read it); a load generator turns this off to stay small. */
  record = true;
  port = 0;
  private stopped = false;

  constructor(readonly name: string, readonly user: string, readonly domain: string, readonly proxyPort: number, readonly host = '127.0.0.1') {}

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, this.host, resolve));
    this.port = this.socket.address().port;
    this.socket.on('message', (buf, rinfo) => this.receive(buf.toString('utf8'), rinfo));
  }

  stop(): void {
    this.stopped = true;
    // A stopped phone's open transactions neither retransmit nor time out.
    for (const timer of this.unacked.values()) clearTimeout(timer);
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.unacked.clear();
    this.pending.clear();
    this.socket.close();
  }

  get contact(): string {
    return `sip:${this.user}@${this.host}:${this.port}`;
  }

  get aor(): string {
    return `sip:${this.user}@${this.domain}`;
  }

  send(raw: string, port = this.proxyPort): void {
    if (this.stopped) return;
    this.socket.send(raw, port, '127.0.0.1');
  }

  /** Resolves with the first incoming request (already received or future) that matches. */
  waitFor(match: (r: Received) => boolean, timeoutMs = 5000, what = 'request'): Promise<Received> {
    const seen = this.requests.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w: Waiter = { match, resolve: (r) => { clearTimeout(timer); resolve(r); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** NOTIFYs received so far, optionally for one event package. */
  notifies(event?: string): Received[] {
    return this.requests.filter((r) => r.msg.method === 'NOTIFY' && (event === undefined || hdr(r.msg, 'event') === event));
  }

  /** Waits for the n-th NOTIFY (1-based) of an event package. */
  nthNotify(n: number, event = 'call-info', timeoutMs = 5000): Promise<Received> {
    return this.waitFor(() => this.notifies(event).length >= n, timeoutMs, `NOTIFY #${n} (${event})`).then(() => this.notifies(event)[n - 1]!);
  }

  /** Sends an out-of-dialog request through the proxy. */
  request(method: string, o: { ruri: string; to: string; from?: string; fromTag?: string; callId?: string; cseq?: number; headers?: Array<[string, string]>; body?: string; route?: string[]; toTag?: string; contact?: string }): Transaction {
    const branch = `z9hG4bK${rand()}`;
    const callId = o.callId ?? `${rand()}@${this.name}`;
    const cseq = `${o.cseq ?? 1} ${method}`;
    const lines: Array<[string, string]> = [
      ['Via', `SIP/2.0/UDP ${this.host}:${this.port};branch=${branch};rport`],
      ['Max-Forwards', '70'],
      ...(o.route ?? []).map((r): [string, string] => ['Route', r]),
      ['From', `${o.from ?? `<${this.aor}>`};tag=${o.fromTag ?? rand()}`],
      ['To', `${o.to}${o.toTag ? `;tag=${o.toTag}` : ''}`],
      ['Call-ID', callId],
      ['CSeq', cseq],
      ['Contact', `<${o.contact ?? this.contact}>`],
      ['User-Agent', `sca-e2e-${this.name}`],
      ...(o.headers ?? []),
    ];
    const body = o.body ?? '';
    if (body !== '') lines.push(['Content-Type', 'application/sdp']);
    lines.push(['Content-Length', String(Buffer.byteLength(body))]);
    const raw = `${method} ${o.ruri} SIP/2.0\r\n${lines.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
    const tx: Transaction = { branch, callId, cseq, responses: [], final: undefined as unknown as Promise<SipMessage>, raw };
    if (method === 'ACK') {
      tx.final = new Promise(() => undefined); // an ACK has no reply
      // The ACK of a 2xx is its own transaction: sent again whenever the 2xx comes again.
      this.acks.set(`${callId} ${o.cseq ?? 1}`, raw);
    } else {
      tx.final = new Promise((resolve, reject) => {
        const timer = setTimeout(() => { this.pending.delete(branch); reject(new Error(`${this.name}: no final reply to ${method} ${o.ruri}`)); }, this.txTimeoutMs);
        this.pending.set(branch, { tx, resolve: (m) => { clearTimeout(timer); resolve(m); }, timer });
      });
    }
    this.send(raw);
    if (this.retransmit && method !== 'ACK') this.resend(branch, method, raw, T1);
    return tx;
  }

  /**
   * Timer A (INVITE: doubling, until any reply) or E (the others: doubling up to T2, and every
   * T2 once a provisional reply came), while the transaction waits for its final reply.
   */
  private resend(branch: string, method: string, raw: string, after: number): void {
    setTimeout(() => {
      const p = this.pending.get(branch);
      if (!p || this.stopped || (method === 'INVITE' && p.tx.responses.length > 0)) return;
      this.send(raw);
      const next = method === 'INVITE' ? after * 2 : p.tx.responses.length > 0 ? T2 : Math.min(after * 2, T2);
      this.resend(branch, method, raw, next);
    }, after).unref();
  }

  /** CANCELs a pending INVITE (RFC 3261 9.1): same R-URI, top Via, Call-ID, From, To, Route, CSeq number. */
  cancel(invite: Transaction): Transaction {
    const parsed = parseMessage(invite.raw);
    if (!parsed.ok) throw new Error('cannot parse the INVITE to cancel');
    const m = parsed.value;
    const keep = (name: string) => m.headers.filter(([n]) => n === name).map(([, v]) => `${name === 'call-id' ? 'Call-ID' : name[0]!.toUpperCase() + name.slice(1)}: ${v}`);
    const lines = [`CANCEL ${m.ruri} SIP/2.0`, ...keep('via'), 'Max-Forwards: 70', ...keep('route'), ...keep('from'), ...keep('to'), ...keep('call-id'),
      `CSeq: ${invite.cseq.split(' ')[0]} CANCEL`, 'Content-Length: 0', '', ''];
    const tx: Transaction = { branch: invite.branch, callId: invite.callId, cseq: `${invite.cseq.split(' ')[0]} CANCEL`, responses: [], raw: lines.join('\r\n'),
      final: undefined as unknown as Promise<SipMessage> };
    // Its 200 shares the INVITE's branch and is not tracked (see receive); what counts is the INVITE's final reply.
    tx.final = invite.final;
    this.send(tx.raw);
    if (this.retransmit) {
      // Timer E: until the CANCEL's 200, or the INVITE's final reply (its transaction is over).
      this.cancelling.add(invite.branch);
      const again = (after: number): void => {
        setTimeout(() => {
          if (!this.cancelling.has(invite.branch) || this.stopped || !this.pending.has(invite.branch)) return void this.cancelling.delete(invite.branch);
          this.send(tx.raw);
          again(Math.min(after * 2, T2));
        }, after).unref();
      };
      again(T1);
    }
    return tx;
  }

  /** A request inside a dialog: R-URI = remote target, Route = route set, next CSeq. */
  inDialog(d: Dialog, method: string, o: { headers?: Array<[string, string]>; body?: string; cseq?: number } = {}): Transaction {
    const cseq = o.cseq ?? (method === 'ACK' ? d.cseq : ++d.cseq);
    return this.request(method, {
      ruri: d.remoteTarget, to: d.remoteUri, toTag: d.remoteTag, from: d.localUri, fromTag: d.localTag, callId: d.callId, cseq,
      route: d.routeSet, headers: o.headers, body: o.body,
    });
  }

  /** Sends an INVITE, waits for the final reply; on 2xx ACKs it and returns the dialog. */
  async invite(o: { ruri: string; to: string; headers?: Array<[string, string]>; body?: string; fromTag?: string; callId?: string }): Promise<{ final: SipMessage; dialog: Dialog | undefined; tx: Transaction }> {
    const fromTag = o.fromTag ?? rand();
    const tx = this.request('INVITE', { ...o, fromTag });
    const final = await tx.final;
    if (final.status! >= 300) return { final, dialog: undefined, tx };
    const dialog = this.dialogFromReply(final, fromTag);
    this.inDialog(dialog, 'ACK');
    return { final, dialog, tx };
  }

  dialogFromReply(reply: SipMessage, localTag: string): Dialog {
    const to = parseNameAddr(hdr(reply, 'to')!);
    const from = parseNameAddr(hdr(reply, 'from')!);
    const contact = parseNameAddr(headerValues(reply, 'contact')[0]!);
    if (!to.ok || !from.ok || !contact.ok) throw new Error('bad 2xx');
    return {
      callId: hdr(reply, 'call-id')!, localTag, remoteTag: tagOf(to.value) ?? '', localUri: `<${from.value.uri}>`,
      remoteUri: `<${to.value.uri}>`, remoteTarget: contact.value.uri,
      routeSet: headerValues(reply, 'record-route').reverse(), cseq: Number(hdr(reply, 'cseq')!.split(' ')[0]),
    };
  }

  /** Answers an incoming request; for a 2xx to INVITE returns the UAS dialog. */
  respond(r: Received, code: number, reason: string, o: { headers?: Array<[string, string]>; body?: string; toTag?: string } = {}): Dialog | undefined {
    const m = r.msg;
    const to = hdr(m, 'to')!;
    const parsedTo = parseNameAddr(to);
    const existingTag = parsedTo.ok ? tagOf(parsedTo.value) : undefined;
    const hasTag = existingTag !== undefined;
    const toTag = o.toTag ?? existingTag ?? `${this.name}${rand()}`;
    const lines: Array<[string, string]> = [
      ...m.headers.filter(([n]) => n === 'via').map(([, v]): [string, string] => ['Via', v]),
      ...m.headers.filter(([n]) => n === 'record-route').map(([, v]): [string, string] => ['Record-Route', v]),
      ['From', hdr(m, 'from')!],
      ['To', hasTag ? to : `${to};tag=${toTag}`],
      ['Call-ID', hdr(m, 'call-id')!],
      ['CSeq', hdr(m, 'cseq')!],
      // A reply that creates or confirms a dialog carries the Contact (RFC 3261 12.1.1).
      ...(code > 100 && code < 300 && m.method === 'INVITE' ? [['Contact', `<${this.contact}>`] as [string, string]] : []),
      ...(o.headers ?? []),
    ];
    const body = o.body ?? '';
    if (body !== '') lines.push(['Content-Type', 'application/sdp']);
    lines.push(['Content-Length', String(Buffer.byteLength(body))]);
    const raw = `SIP/2.0 ${code} ${reason}\r\n${lines.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
    if (this.record) this.answered.set(transactionKey(m), raw);
    this.send(raw, r.from.port);
    // A final reply to an INVITE is sent again until the ACK comes (a 2xx by the UAS core, RFC
    // 3261 13.3.1.4; a failure by timer G, 17.2.1): the proxy's ACK has the same Call-ID and CSeq.
    if (m.method === 'INVITE' && code >= 200 && this.retransmit) this.resendUntilAcked(ackKey(m), raw, r.from.port);
    if (m.method !== 'INVITE' || code < 200 || code >= 300) return undefined;
    const from = parseNameAddr(hdr(m, 'from')!);
    const contact = parseNameAddr(headerValues(m, 'contact')[0]!);
    if (!from.ok || !contact.ok) throw new Error('bad INVITE');
    return {
      callId: hdr(m, 'call-id')!, localTag: toTag ?? '', remoteTag: tagOf(from.value) ?? '', localUri: to.replace(/;\s*tag=[^;]*/, ''),
      remoteUri: `<${from.value.uri}>`, remoteTarget: contact.value.uri, routeSet: headerValues(m, 'record-route'), cseq: 0,
    };
  }

  /** A final reply to an INVITE is resent, T1 doubling up to T2, until the ACK arrives or 64*T1. */
  private resendUntilAcked(key: string, raw: string, port: number): void {
    const old = this.unacked.get(key);
    if (old) clearTimeout(old);
    const started = performance.now();
    const again = (after: number): void => {
      const timer = setTimeout(() => {
        if (this.unacked.get(key) !== timer || this.stopped) return;
        if (performance.now() - started >= TIMER_H) return void this.unacked.delete(key);
        this.send(raw, port);
        again(Math.min(after * 2, T2));
      }, after);
      timer.unref();
      this.unacked.set(key, timer);
    };
    again(T1);
  }

  /**
   * An out-of-dialog request answered with a digest challenge (401/407) is sent again with the
   * credentials (RFC 2617, MD5, qop=auth when offered), as a phone with a password does.
   */
  async withAuth(method: string, o: Parameters<Phone['request']>[1], password: string, user = this.user): Promise<SipMessage> {
    const callId = o.callId ?? `${rand()}@${this.name}`;
    const fromTag = o.fromTag ?? rand();
    const first = await this.request(method, { ...o, callId, fromTag }).final;
    if (first.status !== 401 && first.status !== 407) return first;
    const header = first.status === 401 ? 'www-authenticate' : 'proxy-authenticate';
    const challenge = hdr(first, header) ?? '';
    const param = (k: string) => new RegExp(`${k}="?([^",]+)"?`, 'i').exec(challenge)?.[1];
    const realm = param('realm') ?? this.domain;
    const nonce = param('nonce') ?? '';
    const qop = /qop="?[^"]*auth/.test(challenge) ? 'auth' : undefined;
    const md5 = (x: string) => createHash('md5').update(x).digest('hex');
    const uri = o.ruri;
    const ha1 = md5(`${user}:${realm}:${password}`);
    const ha2 = md5(`${method}:${uri}`);
    const cnonce = rand();
    const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:${qop}:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
    const creds = `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5${qop ? `, qop=${qop}, nc=00000001, cnonce="${cnonce}"` : ''}`;
    return this.request(method, { ...o, callId, fromTag, cseq: (o.cseq ?? 1) + 1, headers: [...(o.headers ?? []), [first.status === 401 ? 'Authorization' : 'Proxy-Authorization', creds]] }).final;
  }

  async register(expires = 3600): Promise<SipMessage> {
    return this.request('REGISTER', { ruri: `sip:${this.domain}`, to: `<${this.aor}>`, headers: [['Expires', String(expires)]] }).final;
  }

  private receive(raw: string, rinfo: dgram.RemoteInfo): void {
    const parsed = parseMessage(raw);
    if (!parsed.ok) return;
    const m = parsed.value;
    if (m.kind === 'reply') {
      const branch = /branch=([^;,\s]+)/.exec(hdr(m, 'via') ?? '')?.[1] ?? '';
      if (m.method === 'CANCEL') {
        this.cancelling.delete(branch);
        return;
      }
      const p = this.pending.get(branch);
      if (!p) {
        // A final reply that comes again means our ACK was lost (or not yet sent): ACK it again.
        if (m.method === 'INVITE' && m.status! >= 200 && this.retransmit) {
          const ack = this.acks.get(m.status! < 300 ? ackKey(m) : branch);
          if (ack) this.send(ack);
        }
        return;
      }
      p.tx.responses.push(m);
      if (m.status! >= 200) {
        this.pending.delete(branch);
        if (m.status! >= 300 && m.method === 'INVITE') this.ackFailure(m, branch);
        p.resolve(m);
      }
      return;
    }
    const r: Received = { msg: m, raw, at: performance.now(), from: { address: rinfo.address, port: rinfo.port } };
    if (m.method === 'ACK') {
      const timer = this.unacked.get(ackKey(m));
      if (timer) clearTimeout(timer);
      this.unacked.delete(ackKey(m));
    }
    if (!this.record) {
      if (m.method === 'NOTIFY' && this.notifyAnswer[0] !== 0) this.respond(r, ...this.notifyAnswer);
      else if (m.method === 'BYE' || m.method === 'OPTIONS') this.respond(r, 200, 'OK');
      return;
    }
    // A retransmission (the proxy did not see our reply in time, e.g. on a loaded CI machine) is
    // answered again but not recorded twice, as a phone's transaction layer would absorb it.
    const key = transactionKey(m);
    // An ACK sent again (to a 2xx that came again) is the same datagram: recorded once too.
    const earlier = this.requests.find((x) => transactionKey(x.msg) === key && (x.msg.method === 'ACK') === (m.method === 'ACK'));
    if (earlier) {
      const answer = m.method === 'ACK' ? undefined : this.answered.get(key);
      if (answer) this.send(answer, rinfo.port);
      return;
    }
    if (m.method === 'ACK') {
      this.requests.push(r);
    } else {
      if (m.method === 'NOTIFY') {
        r.answered = this.notifyAnswer[0];
        if (r.answered !== 0) this.respond(r, ...this.notifyAnswer);
      }
      if (m.method === 'BYE' || m.method === 'OPTIONS') this.respond(r, 200, 'OK');
      if (m.method === 'CANCEL') {
        this.respond(r, 200, 'OK');
        const inv = this.requests.find((x) => x.msg.method === 'INVITE' && hdr(x.msg, 'call-id') === hdr(m, 'call-id'));
        if (inv) this.respond(inv, 487, 'Request Terminated', { toTag: `${this.name}c` });
      }
      if (m.method === 'INVITE' && !/;\s*tag=/.test(hdr(m, 'to') ?? '')) this.onInvite?.(r);
      this.requests.push(r);
    }
    for (const w of [...this.waiters]) {
      if (w.match(r)) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(r);
      }
    }
  }

  /** The ACK of a non-2xx final reply: same branch, hop by hop to the proxy. */
  private ackFailure(reply: SipMessage, branch: string): void {
    const cseqNum = hdr(reply, 'cseq')!.split(' ')[0];
    const ack = [
      `ACK sip:${this.domain} SIP/2.0`, `Via: SIP/2.0/UDP ${this.host}:${this.port};branch=${branch};rport`, 'Max-Forwards: 70',
      `From: ${hdr(reply, 'from')}`, `To: ${hdr(reply, 'to')}`, `Call-ID: ${hdr(reply, 'call-id')}`, `CSeq: ${cseqNum} ACK`, 'Content-Length: 0', '', '',
    ].join('\r\n');
    this.acks.set(branch, ack);
    this.send(ack);
  }
}

export const sdp = (port: number, dir = 'sendrecv'): string =>
  ['v=0', `o=- ${port} 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', `a=${dir}`, ''].join('\r\n');
