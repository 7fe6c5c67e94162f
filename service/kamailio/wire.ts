import { isStreamFlow, type Flow, type Header, type MessageEdit, type OutboundNotify, type SipReply } from '../effects.js';

/**
 * The link's JSON shapes, engine-neutral (kamailio/link.cfg reads them):
 *
 * Kamailio → service: JSON-RPC 2.0 requests, each with an id and answered exactly once (an
 * unanswered stream lets Nagle and delayed ACKs stall the next event; an answer that would be
 * empty, a report with no NOTIFY, is the turn's one link.ack instead), methods named
 * "<engine>.<what>" and registered by the engines. A suspended transaction's request carries
 * {tindex, tlabel}; its result is a Resume.
 * service → Kamailio:
 *   result     {..., notifies}          any answer may carry NOTIFYs, sent in order
 *   Resume     {tindex, tlabel, code, reason, hdrs, rm_hdrs, add_hdrs, ruri, du, fs, flags, notifies}
 *              code > 0: reply code/reason with hdrs; code 0: the request goes on, with the
 *              headers named in rm_hdrs ('|'-separated) removed, add_hdrs appended, the R-URI
 *              set if ruri is not empty, $du and $fs (the send socket) set if not empty, and
 *              flags (comma-separated names) for the engine's route
 *   link.notify {notifies}              NOTIFYs the service starts itself
 *   link.hello  {}                      on connecting: Kamailio replays the events it queued
 *   link.ping   (request)               Kamailio answers "pong": the heartbeat
 * A string param named <name>_b64 carries <name> base64-encoded (the routes write their params
 * as text with Kamailio's {s.encode.base64} instead of jansson_set): the link decodes it before
 * the method's schema sees the params.
 * A notify is {ruri, nexthop, socket, reuse, hdrs}: the arguments of tm's t_uac_send(), and with
 * reuse ("ip:port" of a TCP/TLS flow) it is sent only if that connection is still open (Kamailio
 * would otherwise open one to the flow's address, which behind NAT reaches nobody).
 */

const B64 = '_b64';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Params with every <name>_b64 replaced by <name>, decoded (UTF-8, as jansson took it). A value
 * that is not base64 text becomes null, which no schema takes as a string: refused, never dropped
 * (an optional field, auth_user, must not silently go missing).
 */
export function decodeBase64Params(params: unknown): unknown {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return params;
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(params)) {
    if (!key.endsWith(B64)) continue;
    out ??= { ...(params as Record<string, unknown>) };
    delete out[key];
    const ok = typeof value === 'string' && value.length % 4 === 0 && BASE64.test(value);
    out[key.slice(0, -B64.length)] = ok ? Buffer.from(value, 'base64').toString('utf8') : null;
  }
  return out ?? params;
}

export interface WireNotify {
  ruri: string;
  nexthop: string;
  /** t_uac_send()'s send socket (proto:ip:port), "" for Kamailio's choice. */
  socket: string;
  /** ip:port of the connection the NOTIFY must reuse, "" for none. */
  reuse: string;
  hdrs: string;
}

export interface Resume {
  tindex: number;
  tlabel: number;
  code: number;
  reason: string;
  hdrs: string;
  rm_hdrs: string;
  add_hdrs: string;
  ruri: string;
  du: string;
  fs: string;
  flags: string;
}

export interface TransactionIds {
  readonly tindex: number;
  readonly tlabel: number;
}

/**
 * A header value as it may go on the wire: what came from the network (a lone CR in a display
 * name, an RPC param) never ends a header line or starts another one.
 */
export const headerValue = (v: string): string => v.replace(/[\r\n\0]/g, ' ');

export const renderHeaders = (headers: readonly Header[]): string => headers.map(([name, value]) => `${name}: ${headerValue(value)}\r\n`).join('');

const uriOf = (route: string): string => /<([^>]+)>/.exec(route)?.[1] ?? route.trim();

const hostOf = (address: string): string => (address.includes(':') ? `[${address}]` : address);

/** A flow as a next hop: sip:ip:port;transport=proto. */
export const flowUri = (f: Flow): string => `sip:${hostOf(f.address)}:${f.port};transport=${f.proto}`;

/**
 * A NOTIFY as t_uac_send() takes it. A route set is sent as Route headers via its first hop
 * (from a socket Kamailio picks for it); without one a NOTIFY with a flow goes to the flow (its
 * address as next hop, from the socket it came in on, over its own connection only), else to its
 * R-URI.
 */
export function renderNotify(n: Pick<OutboundNotify, 'ruri' | 'route' | 'headers' | 'flow'>): WireNotify {
  const lines = n.headers.map(([name, value]) => `${name}: ${headerValue(value)}\r\n`);
  const routed = n.route.length > 0;
  if (routed) lines.splice(4, 0, `Route: ${headerValue(n.route.join(','))}\r\n`);
  const f = n.flow;
  return {
    ruri: headerValue(n.ruri),
    nexthop: routed ? headerValue(uriOf(n.route[0]!)) : f ? headerValue(flowUri(f)) : '',
    // A route set's first hop may want another transport than the flow's: Kamailio picks the socket.
    socket: !routed && f ? headerValue(f.socket) : '',
    reuse: !routed && f && isStreamFlow(f) ? headerValue(`${hostOf(f.address)}:${f.port}`) : '',
    hdrs: lines.join(''),
  };
}

/** The answer that resumes a suspended transaction: a reply, or the request goes on edited. */
export function resume(ids: TransactionIds, reply: SipReply | undefined, edit: MessageEdit | undefined): Resume {
  return {
    tindex: ids.tindex,
    tlabel: ids.tlabel,
    code: reply?.code ?? 0,
    reason: headerValue(reply?.reason ?? ''),
    hdrs: reply ? renderHeaders(reply.headers) : '',
    rm_hdrs: reply ? '' : (edit?.removeHeaders ?? []).join('|'),
    add_hdrs: reply ? '' : renderHeaders(edit?.appendHeaders ?? []),
    ruri: reply ? '' : headerValue(edit?.ruri ?? ''),
    du: reply || !edit?.dst ? '' : headerValue(flowUri(edit.dst)),
    fs: reply || !edit?.dst ? '' : headerValue(edit.dst.socket),
    flags: reply ? '' : (edit?.flags ?? []).join(','),
  };
}
