import { ScaEngine } from '../../service/sca/engine.js';
import type { CallEventOutcome } from '../../service/sca/call-event.js';
import type { SubscribeOutcome } from '../../service/sca/subscribe.js';
import type { ScaWrite } from '../../service/sca/journal.js';
import type { EngineConfig, Notify } from '../../service/sca/types.js';
import { recordingWrites } from './row-image.js';

/** The fixture of spec §11: one shared line, two member phones, a remote party. */
export const AOR = 'sip:100@pbx.example.com';
export const DOMAIN = 'pbx.example.com';
export const P1 = 'sip:100@10.0.0.11:5060';
export const P2 = 'sip:100@10.0.0.12:5060';
export const P3 = 'sip:100@10.0.0.13:5060';
export const B = 'sip:200@far.example.net';
export const B_CONTACT = 'sip:200@192.0.2.20';
export const IDLE = `<sip:${DOMAIN}>;appearance-index=*;appearance-state=idle`;
export const CI = (index: number | string, state?: string, extra = ''): string =>
  `<sip:${DOMAIN}>;appearance-index=${index}${state ? `;appearance-state=${state}` : ''}${extra}`;

export type Headers = Array<[string, string]>;

export function sipMessage(startLine: string, headers: Headers, body = ''): string {
  const all: Headers = [...headers, ['Content-Length', String(Buffer.byteLength(body))]];
  if (body !== '' && !headers.some(([n]) => n.toLowerCase() === 'content-type')) all.unshift(['Content-Type', 'application/sdp']);
  return `${startLine}\r\n${all.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
}

export interface SubscribeOptions {
  ruri?: string;
  event?: string | null;
  expires?: number | null;
  callInfo?: string;
  callId?: string;
  fromTag?: string;
  toTag?: string; // in-dialog when set
  to?: string;
  contact?: string | null;
  recordRoute?: string;
  extra?: Headers;
}

let counter = 0;
export const uniq = (p: string): string => `${p}-${++counter}`;

export function subscribeMsg(contact: string, o: SubscribeOptions = {}): string {
  const headers: Headers = [
    ['Via', `SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bK${uniq('b')}`],
    ['From', `<${AOR}>;tag=${o.fromTag ?? 'sf1'}`],
    ['To', `<${o.to ?? AOR}>${o.toTag ? `;tag=${o.toTag}` : ''}`],
    ['Call-ID', o.callId ?? uniq('sub')],
    ['CSeq', '1 SUBSCRIBE'],
    ['Max-Forwards', '70'],
  ];
  if (o.contact !== null) headers.push(['Contact', `<${o.contact ?? contact}>`]);
  if (o.event !== null) headers.push(['Event', o.event ?? 'call-info']);
  if (o.expires !== null) headers.push(['Expires', String(o.expires ?? 3600)]);
  if (o.callInfo) headers.push(['Call-Info', o.callInfo]);
  if (o.recordRoute) headers.push(['Record-Route', o.recordRoute]);
  headers.push(...(o.extra ?? []));
  return sipMessage(`SUBSCRIBE ${o.ruri ?? AOR} SIP/2.0`, headers);
}

export interface DialogOpts {
  callId: string;
  from: string; // name-addr without tag
  fromTag: string;
  to: string;
  toTag?: string;
  contact?: string;
  callInfo?: string;
  cseq?: string;
  body?: string;
  ruri?: string;
  extra?: Headers;
}

/** The headers a request and its replies share within a dialog. */
function dialogHeaders(method: string, o: DialogOpts): Headers {
  const headers: Headers = [
    ['Via', `SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bK${uniq('b')}`],
    ['From', `${o.from};tag=${o.fromTag}`],
    ['To', `${o.to}${o.toTag ? `;tag=${o.toTag}` : ''}`],
    ['Call-ID', o.callId],
    ['CSeq', o.cseq ?? `1 ${method}`],
  ];
  if (o.contact) headers.push(['Contact', `<${o.contact}>`]);
  if (o.callInfo) headers.push(['Call-Info', o.callInfo]);
  headers.push(...(o.extra ?? []));
  return headers;
}

export function request(method: string, o: DialogOpts): string {
  const target = o.ruri ?? /<([^>]+)>/.exec(o.to)?.[1] ?? o.to;
  return sipMessage(`${method} ${target} SIP/2.0`, dialogHeaders(method, o), o.body ?? '');
}

export function reply(code: number, reason: string, method: string, o: DialogOpts): string {
  return sipMessage(`SIP/2.0 ${code} ${reason}`, dialogHeaders(method, o), o.body ?? '');
}

export const SDP = (dir: string | null, opts: { conn?: string; sessionDir?: string } = {}): string =>
  ['v=0', 'o=- 1 1 IN IP4 10.0.0.11', 's=-', `c=IN IP4 ${opts.conn ?? '10.0.0.11'}`, 't=0 0',
    ...(opts.sessionDir ? [`a=${opts.sessionDir}`] : []),
    'm=audio 4000 RTP/AVP 0 8', 'a=rtpmap:0 PCMU/8000', ...(dir ? [`a=${dir}`] : []), ''].join('\r\n');

export const header = (n: Notify | { headers: ReadonlyArray<readonly [string, string]> }, name: string): string | undefined =>
  n.headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];

/** A test bench: one engine, a movable clock, short helpers for the usual messages. */
export class Bench {
  readonly engine: ScaEngine;
  now = 1_000_000;
  /** Every row change the engine's operations returned, in order (taken by takeWrites()). */
  private writes: ScaWrite[] = [];

  constructor(config: Partial<EngineConfig> = {}) {
    this.engine = recordingWrites(new ScaEngine(config), this.writes);
  }

  takeWrites(): ScaWrite[] {
    return this.writes.splice(0);
  }

  subscribe(contact: string, o: SubscribeOptions = {}, toTag = uniq('tt')): SubscribeOutcome {
    return this.engine.subscribe({ msg: subscribeMsg(contact, o), to_tag: toTag, now: this.now });
  }

  /** Initial call-info subscription; returns its dialog for later refreshes. */
  callInfo(contact: string, o: SubscribeOptions = {}): { toTag: string; callId: string; fromTag: string; out: SubscribeOutcome } {
    const callId = o.callId ?? uniq('ci');
    const fromTag = o.fromTag ?? uniq('ft');
    const toTag = uniq('tt');
    const out = this.subscribe(contact, { ...o, callId, fromTag }, toTag);
    return { toTag, callId, fromTag, out };
  }

  lineSeize(contact: string, index: number, o: SubscribeOptions = {}): { toTag: string; callId: string; fromTag: string; out: SubscribeOutcome } {
    return this.callInfo(contact, { event: 'line-seize', expires: 15, callInfo: CI(index), ...o });
  }

  req(method: string, o: DialogOpts): CallEventOutcome {
    return this.engine.callEvent({ hook: 'request', msg: request(method, o), now: this.now });
  }

  rep(code: number, reason: string, method: string, o: DialogOpts): CallEventOutcome {
    return this.engine.callEvent({ hook: 'reply', msg: reply(code, reason, method, o), now: this.now });
  }

  failure(status: number, o: DialogOpts, hook: 'failure' | 'local-reply' = 'failure'): CallEventOutcome {
    return this.engine.callEvent({ hook, msg: request('INVITE', o), status, now: this.now });
  }

  tick(seconds: number): Notify[] {
    this.now += seconds;
    return [...this.engine.tick(this.now).notifies];
  }

  state(index: number, aor = AOR): string | undefined {
    return this.engine.listAppearances().find((a) => a.aor === aor && a.index === index)?.state;
  }
}

/** The NOTIFYs of a batch that go to one subscriber and event. */
export const to = (notifies: readonly Notify[], subscriber: string, event = 'call-info'): Notify[] =>
  notifies.filter((n) => n.subscriber === subscriber && n.event === event);
