import { formatSubscriptionState } from '../sip/subscription-state.js';
import { escapeQuoted } from '../sip/tokens.js';
import { aorDomain } from '../sip/uri.js';
import { wireState, type Appearance, type Flow, type Notify, type Subscription } from './types.js';

/** The full-state Call-Info of a line: every appearance in index order, then the idle '*' tail. */
export function fullStateCallInfo(aor: string, appearances: readonly Appearance[]): string {
  const line = `<sip:${aorDomain(aor)}>`;
  const values = appearances.map((a) => {
    let v = `${line};appearance-index=${a.index};appearance-state=${wireState(a.state)}`;
    if (a.uri !== '') v += `;appearance-uri="${escapeQuoted(a.uri)}"`;
    return v;
  });
  values.push(`${line};appearance-index=*;appearance-state=idle`);
  return values.join(',');
}

/** A line-seize NOTIFY names only the seized index, with no state. */
export const lineSeizeCallInfo = (aor: string, index: number): string => `<sip:${aorDomain(aor)}>;appearance-index=${index}`;

/** The Subscription-State a subscription has now; active ones always carry ;expires (RFC 6665). */
export function subscriptionStateOf(sub: Subscription, now: number): string {
  if (sub.state === 'terminated') return formatSubscriptionState({ state: 'terminated', reason: sub.reason, expires: undefined });
  const ttl = Math.floor(sub.expires - now);
  return formatSubscriptionState({ state: 'active', reason: undefined, expires: ttl > 0 ? ttl : undefined });
}

/** RFC 5626: a Contact URI with ;ob asks that requests reach it over the flow it registered on. */
export const hasOutboundParam = (contact: string): boolean => /;ob(?=[;?>=]|$)/i.test(contact.replace(/\?.*$/, ''));

/**
 * Where a subscription's NOTIFYs go: the flow of its last SUBSCRIBE (notify_to_flow, or always
 * for a Contact with ;ob), else nowhere but its Contact.
 */
export const notifyFlow = (sub: Subscription, toFlow: boolean): Flow | undefined =>
  sub.flow !== undefined && (toFlow || hasOutboundParam(sub.subscriber)) ? sub.flow : undefined;

/**
 * The NOTIFY carrying the subscription's current CSeq (the caller has counted it up): From/To
 * both carry the AoR (From with our tag, To with the subscriber's), Route from the SUBSCRIBE's
 * Record-Route, sent over `flow` when given.
 */
export function buildNotify(sub: Subscription, callInfo: string, now: number, serverAddress: string | undefined, flow?: Flow): Notify {
  return {
    flow,
    // The proxy the subscriber came through sends it, flow or not (notify_to_flow=false).
    proxy: sub.flow?.proxy,
    aor: sub.aor,
    event: sub.event,
    subscriber: sub.subscriber,
    subject: sub.aor,
    ruri: sub.subscriber,
    route: sub.routeSet,
    callId: sub.callId,
    fromTag: sub.toTag,
    cseq: sub.notifyCseq,
    headers: [
      ['From', `<${sub.aor}>;tag=${sub.toTag}`],
      ['To', `<${sub.aor}>;tag=${sub.fromTag}`],
      ['Call-ID', sub.callId],
      ['CSeq', `${sub.notifyCseq} NOTIFY`],
      ['Contact', serverAddress ?? sub.aor],
      ['Call-Info', callInfo],
      ['Event', sub.event],
      ['Subscription-State', subscriptionStateOf(sub, now)],
    ],
  };
}
