import type { Header, MessageEdit, OutboundNotify, SipReply } from '../effects.js';

/**
 * The link's JSON shapes, engine-neutral (kamailio/link.cfg reads them):
 *
 * Kamailio → service: JSON-RPC 2.0 requests, each with an id and answered exactly once (an
 * unanswered stream lets Nagle and delayed ACKs stall the next event), methods named
 * "<engine>.<what>" and registered by the engines. A suspended transaction's request carries
 * {tindex, tlabel}; its result is a Resume.
 * service → Kamailio:
 *   result     {..., notifies}          any answer may carry NOTIFYs, sent in order
 *   Resume     {tindex, tlabel, code, reason, hdrs, rm_hdrs, add_hdrs, ruri, flags, notifies}
 *              code > 0: reply code/reason with hdrs; code 0: the request goes on, with the
 *              headers named in rm_hdrs ('|'-separated) removed, add_hdrs appended, the R-URI
 *              set if ruri is not empty, and flags (comma-separated names) for the engine's route
 *   link.notify {notifies}              NOTIFYs the service starts itself
 *   link.hello  {}                      on connecting: Kamailio replays the events it queued
 *   link.ping   (request)               Kamailio answers "pong": the heartbeat
 * A notify is {ruri, nexthop, hdrs}: the arguments of tm's t_uac_send().
 */

export interface WireNotify {
  ruri: string;
  nexthop: string;
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

/** A NOTIFY as t_uac_send() takes it; a route set is sent as Route headers via its first hop. */
export function renderNotify(n: Pick<OutboundNotify, 'ruri' | 'route' | 'headers'>): WireNotify {
  const lines = n.headers.map(([name, value]) => `${name}: ${headerValue(value)}\r\n`);
  if (n.route.length > 0) lines.splice(4, 0, `Route: ${headerValue(n.route.join(','))}\r\n`);
  return { ruri: headerValue(n.ruri), nexthop: n.route.length > 0 ? headerValue(uriOf(n.route[0]!)) : '', hdrs: lines.join('') };
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
    flags: reply ? '' : (edit?.flags ?? []).join(','),
  };
}
