import { z } from 'zod';
import type { MessageEdit } from '../sca/call-event.js';
import type { Notify, SipReply } from '../sca/types.js';

/**
 * The evapi protocol between kamailio/sca-routes.cfg and the service: JSON-RPC 2.0 in netstrings.
 *
 * Kamailio → service (every one a request with an id, answered exactly once, so that TCP
 * never waits on a delayed ACK)
 *   sca.subscribe    {tindex, tlabel, msg, ruri, to_tag}      the SUBSCRIBE is suspended
 *   sca.invite       {tindex, tlabel, msg, ruri}              the INVITE is suspended
 *   sca.call_event   {hook, msg, status?}                     reported, not suspended
 *   sca.notify_reply {call_id, from_tag, cseq, code}          the final reply to a NOTIFY
 * service → Kamailio
 *   result of sca.subscribe   {tindex, tlabel, code, reason, hdrs, notifies}
 *   result of sca.invite      {tindex, tlabel, code (0 = relay), reason, remove_ci, keep_ci, add_hdrs,
 *                              ruri, drop_branches, caller_shared, notifies}
 *   result of the others      {notifies}
 *   notify   sca.notify       {notifies}                               NOTIFYs the service starts itself
 *   notify   sca.hello        {}                                      on connecting: Kamailio replays the
 *                                                                      call events it queued meanwhile
 * Each notify element is {ruri, nexthop, hdrs}: the arguments of tm's t_uac_send().
 */

const suspended = { tindex: z.number().int().nonnegative(), tlabel: z.number().int().nonnegative() };

export const subscribeParams = z.object({
  ...suspended,
  msg: z.string().min(1),
  ruri: z.string().optional(),
  to_tag: z.string().optional(),
}).passthrough();

export const inviteParams = z.object({ ...suspended, msg: z.string().min(1), ruri: z.string().optional() }).passthrough();

export const callEventParams = z.object({
  hook: z.enum(['request', 'reply', 'failure', 'local-reply']),
  msg: z.string().min(1),
  status: z.coerce.number().int().min(100).max(699).optional(),
}).passthrough();

export const notifyReplyParams = z.object({
  call_id: z.string().min(1),
  from_tag: z.string().min(1),
  cseq: z.coerce.number().int().nonnegative().optional(),
  code: z.coerce.number().int().min(100).max(699),
}).passthrough();

export interface WireNotify {
  ruri: string;
  nexthop: string;
  hdrs: string;
}

const uriOf = (route: string): string => /<([^>]+)>/.exec(route)?.[1] ?? route.trim();

/** A NOTIFY as t_uac_send() takes it; a route set is sent as Route headers via its first hop. */
export function renderNotify(n: Notify): WireNotify {
  const lines = n.headers.map(([name, value]) => `${name}: ${value}\r\n`);
  if (n.route.length > 0) lines.splice(4, 0, `Route: ${n.route.join(',')}\r\n`);
  return { ruri: n.ruri, nexthop: n.route.length > 0 ? uriOf(n.route[0]!) : '', hdrs: lines.join('') };
}

export const renderHeaders = (headers: ReadonlyArray<readonly [string, string]>): string =>
  headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');

export interface SubscribeResult {
  tindex: number;
  tlabel: number;
  code: number;
  reason: string;
  hdrs: string;
  notifies: WireNotify[];
}

export const subscribeResult = (tindex: number, tlabel: number, reply: SipReply, notifies: Notify[]): SubscribeResult => ({
  tindex, tlabel, code: reply.code, reason: reply.reason, hdrs: renderHeaders(reply.headers), notifies: notifies.map(renderNotify),
});

export interface InviteResult {
  tindex: number;
  tlabel: number;
  code: number;
  reason: string;
  remove_ci: 0 | 1;
  keep_ci: string;
  add_hdrs: string;
  ruri: string;
  drop_branches: 0 | 1;
  caller_shared: 0 | 1;
  notifies: WireNotify[];
}

export function inviteResult(tindex: number, tlabel: number, o: { reply: SipReply | undefined; edit: MessageEdit; notifies: Notify[]; callerShared: boolean }): InviteResult {
  return {
    tindex, tlabel,
    code: o.reply?.code ?? 0,
    reason: o.reply?.reason ?? '',
    remove_ci: o.edit.removeCallInfo ? 1 : 0,
    keep_ci: o.edit.keepCallInfo.length > 0 ? `Call-Info: ${o.edit.keepCallInfo.join(', ')}\r\n` : '',
    add_hdrs: renderHeaders(o.edit.appendHeaders),
    ruri: o.edit.ruri ?? '',
    drop_branches: o.edit.dropBranches ? 1 : 0,
    caller_shared: o.callerShared ? 1 : 0,
    notifies: o.notifies.map(renderNotify),
  };
}
