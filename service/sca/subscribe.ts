import { parseCallInfo, toScaCallInfo } from '../sip/call-info.js';
import { parseExpires } from '../sip/expires.js';
import { firstHeader, headerLines, headerValues, type SipMessage } from '../sip/message.js';
import { parseNameAddr, tagOf } from '../sip/name-addr.js';
import { extractAor, parseUri } from '../sip/uri.js';
import type { ScaContext } from './context.js';
import { fits, MAX, own } from './limits.js';
import { NO_ROUTE, type EventPackage, type Flow, type Notify, type SipReply, type Subscription } from './types.js';

export interface SubscribeInput {
  readonly msg: SipMessage;
  /** The current Request-URI if the script rewrote it ($ru); the AoR of an initial SUBSCRIBE. */
  readonly ruri: string | undefined;
  /** The To-tag the proxy's reply will carry ($ltt(t) after t_newtran). */
  readonly toTag: string | undefined;
  /** Who the proxy authenticated, if it did. */
  readonly authUser?: string | undefined;
  /** Where the SUBSCRIBE came from (undefined: the proxy did not say; NOTIFYs go to the Contact). */
  readonly flow?: Flow | undefined;
  readonly now: number;
}

export interface SubscribeOutcome {
  readonly reply: SipReply;
  readonly notifies: Notify[];
  /** The To-tag of the reply (ours for an initial SUBSCRIBE). */
  readonly toTag: string | undefined;
  readonly aor: string | undefined;
  /** The package, when the Event header named one of ours. */
  readonly event?: EventPackage;
  /** The granted Expires of a 2xx (0 for an unsubscribe). */
  readonly expires?: number;
}

const BAD_SCA = 'Bad Shared Call Appearance Request';

const reply = (code: number, reason: string, headers: Array<[string, string]> = []): SipReply => ({ code, reason, headers });
const failed = (r: SipReply, aor?: string, event?: EventPackage): SubscribeOutcome => ({ reply: r, notifies: [], toTag: undefined, aor, event });
const unavailable = (aor: string, event: EventPackage): SubscribeOutcome =>
  failed(reply(480, 'Temporarily Unavailable', [['Retry-After', '1']]), aor, event);

/** What the module takes from a SUBSCRIBE (sca_subscription_from_request), validated. */
interface SubscribeRequest {
  event: EventPackage;
  expires: number;
  subscriber: string;
  aor: string;
  callId: string;
  fromTag: string;
  toTag: string;
  inDialog: boolean;
  routeSet: readonly string[];
  requestUri: string; // the request line's URI, the reply Contact when server_address is unset
  flow: Flow | undefined;
}

function readRequest(input: SubscribeInput, event: EventPackage, maxExpires: number): SubscribeRequest | undefined {
  const { msg } = input;
  const expiresText = firstHeader(msg, 'expires');
  let expires = 0; // no Expires header means unsubscribe in the module (kept for compatibility)
  if (expiresText !== undefined) {
    const e = parseExpires(expiresText);
    if (!e.ok) return undefined;
    expires = Math.min(e.value, maxExpires);
  }
  const to = parseNameAddr(firstHeader(msg, 'to') ?? '', 'To');
  const from = parseNameAddr(firstHeader(msg, 'from') ?? '', 'From');
  const callId = (firstHeader(msg, 'call-id') ?? '').trim();
  const cseq = /^\s*\d+\s+\S+\s*$/.test(firstHeader(msg, 'cseq') ?? '');
  const contacts = headerValues(msg, 'contact');
  // A SUBSCRIBE without Contact crashes or corrupts the module; it gets a 400 here.
  if (!to.ok || !from.ok || callId === '' || !cseq || contacts.length !== 1 || contacts[0] === '*') return undefined;
  const contact = parseNameAddr(contacts[0]!, 'Contact');
  const fromTag = tagOf(from.value);
  if (!contact.ok || fromTag === undefined) return undefined;
  const requestUri = msg.ruri ?? '';
  const currentRuri = input.ruri ?? requestUri;
  if (!parseUri(currentRuri).ok) return undefined;
  const requestToTag = tagOf(to.value);
  const toTag = requestToTag ?? input.toTag;
  if (toTag === undefined || toTag === '') return undefined;
  const routeSet: string[] = [];
  for (const rr of headerValues(msg, 'record-route')) {
    if (!parseNameAddr(rr, 'Record-Route').ok) return undefined;
    routeSet.push(rr);
  }
  // An in-dialog SUBSCRIBE is matched on its raw To URI, an initial one on the R-URI's AoR.
  const aor = requestToTag !== undefined ? to.value.uri : extractAor(currentRuri);
  if (!fits(aor, MAX.uri) || !fits(contact.value.uri, MAX.uri) || !fits(callId, MAX.callId) || !fits(fromTag, MAX.tag)
    || !fits(toTag, MAX.tag) || !fits(routeSet.join(','), MAX.routeSet)) return undefined;
  return {
    event,
    expires,
    subscriber: own(contact.value.uri),
    aor: own(aor),
    callId: own(callId),
    fromTag: own(fromTag),
    toTag: own(toTag),
    inDialog: requestToTag !== undefined,
    routeSet: routeSet.length === 0 ? NO_ROUTE : routeSet.map(own),
    requestUri,
    flow: input.flow && { ...input.flow },
  };
}

export function handleSubscribe(ctx: ScaContext, input: SubscribeInput): SubscribeOutcome {
  const { msg, now } = input;
  if (msg.kind !== 'request' || msg.method !== 'SUBSCRIBE') return failed(reply(500, 'Internal server error - config'));
  const eventText = firstHeader(msg, 'event')?.trim() ?? '';
  if (eventText === '') return failed(reply(400, 'Missing Event'));
  if (eventText !== 'call-info' && eventText !== 'line-seize') return failed(reply(400, 'Bad Event'));
  const event: EventPackage = eventText;
  const maxExpires = event === 'call-info' ? ctx.config.call_info_max_expires : ctx.config.line_seize_max_expires;
  const req = readRequest(input, event, maxExpires);
  if (!req) return failed(reply(400, BAD_SCA));

  let requestedIndex = 0;
  if (event === 'line-seize') {
    const lines = headerLines(msg, 'call-info');
    if (lines.length === 0) return failed(reply(400, 'Bad Request - missing Call-Info header'), req.aor);
    const parsed = parseCallInfo(lines[0]!);
    const sca = parsed.ok ? toScaCallInfo(parsed.value[0]!) : undefined;
    if (!sca || !sca.ok || sca.value.index === '*' || !/^sips?:/i.test(sca.value.uri)) {
      return failed(reply(400, 'Bad Request - Invalid Call-Info header'), req.aor);
    }
    requestedIndex = sca.value.index;
  }

  const existing = ctx.subscriptions.get(req.aor, event, req.subscriber);
  // An in-dialog SUBSCRIBE must name the subscription's dialog (RFC 6665): a Contact alone, with
  // another Call-ID or tags, neither refreshes nor ends someone else's subscription.
  const sameDialog = existing !== undefined && existing.callId === req.callId && existing.toTag === req.toTag && existing.fromTag === req.fromTag;
  if (req.inDialog && !sameDialog) return failed(reply(481, 'Call Leg/Transaction Does Not Exist'), req.aor);

  if (!req.inDialog && input.authUser !== undefined && !ctx.mayJoin(req.aor, input.authUser)) {
    return failed(reply(403, 'Forbidden - Not A Member Of This Line'), req.aor, event);
  }

  // Memory is bounded: a new subscription past the caps is refused; refreshes always go through.
  if (!existing && req.expires > 0) {
    const onLine = ctx.subscriptions.countFor(req.aor, 'call-info') + ctx.subscriptions.countFor(req.aor, 'line-seize');
    if (onLine >= ctx.config.max_subscriptions_per_line) return failed(reply(403, 'Forbidden - Too Many Subscriptions On This Line'), req.aor, event);
    if (ctx.subscriptions.count() >= ctx.config.max_subscriptions) return failed(reply(503, 'Service Unavailable - Subscription Limit', [['Retry-After', '60']]), req.aor, event);
  }

  const okReply = reply(event === 'call-info' ? 202 : 200, event === 'call-info' ? 'Accepted' : 'OK', [
    ['Event', event],
    ['Contact', ctx.config.server_address ?? req.requestUri],
    ['Allow-Events', 'call-info, line-seize'],
    ['Expires', String(req.expires)],
  ]);
  const done = (notifies: Notify[]): SubscribeOutcome => ({ reply: okReply, notifies, toTag: req.toTag, aor: req.aor, event, expires: req.expires });

  if (req.expires === 0) return unsubscribe(ctx, req, existing, requestedIndex, now, done);

  if (event === 'line-seize') {
    let index = existing?.index ?? 0;
    if (!req.inDialog) {
      const seized = seizeFor(ctx, req, existing, requestedIndex, now);
      if (seized === undefined) return unavailable(req.aor, event);
      index = seized;
    } else if (requestedIndex > 0) index = requestedIndex;
    const sub = save(ctx, req, existing, index, now);
    return done([ctx.notifySubscriber(sub, now), ...ctx.notifyGroup(req.aor, now)]);
  }

  // call-info: an out-of-dialog SUBSCRIBE from a known Contact means the phone rebooted, so the
  // appearances it owned are stale.
  const released = existing && !req.inDialog ? ctx.appearances.releaseOwnedBy(req.aor, req.subscriber) : [];
  const sub = save(ctx, req, existing, 0, now);
  const notifies = [ctx.notifySubscriber(sub, now)];
  if (released.length > 0) notifies.push(...ctx.notifyGroup(req.aor, now));
  return done(notifies);
}

/**
 * Seizes the requested index (0 = lowest free) for a line-seize. A phone re-seizing the index it
 * already holds is granted again (Polycoms re-send line-seize; a UDP retransmission must not
 * get 480), but its stale timer keeps counting from the first seize: re-seizing cannot hold an
 * index forever. Seizing another index gives the old one back.
 */
function seizeFor(ctx: ScaContext, req: SubscribeRequest, existing: Subscription | undefined, requested: number, now: number): number | undefined {
  const fresh = !ctx.appearances.isShared(req.aor);
  ctx.appearances.register(req.aor);
  const held = existing && existing.index > 0 ? ctx.appearances.get(req.aor, existing.index) : undefined;
  const ownSeized = held && held.state === 'seized' && held.owner === req.subscriber ? held : undefined;
  if (ownSeized && (requested === 0 || requested === ownSeized.index)) return ownSeized.index;
  const result = ctx.appearances.seize(req.aor, requested, req.subscriber, now);
  if (!result.ok) {
    if (fresh) ctx.appearances.unregister(req.aor); // a refused seize leaves no line behind
    return undefined;
  }
  if (ownSeized) ctx.appearances.release(req.aor, ownSeized.index);
  return result.appearance.index;
}

function save(ctx: ScaContext, req: SubscribeRequest, existing: Subscription | undefined, index: number, now: number): Subscription {
  ctx.appearances.register(req.aor);
  if (existing) {
    return ctx.subscriptions.update(existing, {
      callId: req.callId, fromTag: req.fromTag, toTag: req.toTag, state: 'active', reason: undefined, expires: now + req.expires,
      // Every SUBSCRIBE, a refresh included, says where the phone is now (a new NAT binding or connection).
      flow: req.flow,
      ...(index > 0 ? { index } : {}),
      // A new dialog brings a new route set; an in-dialog refresh keeps the stored one.
      ...(req.inDialog ? {} : { routeSet: req.routeSet }),
    });
  }
  return ctx.subscriptions.insert({
    aor: req.aor, event: req.event, subscriber: req.subscriber, expires: now + req.expires, state: 'active',
    reason: undefined, index, callId: req.callId, fromTag: req.fromTag, toTag: req.toTag, notifyCseq: 0,
    routeSet: req.routeSet, flow: req.flow,
  });
}

/**
 * Expires 0. The subscription gets its terminated NOTIFY and is removed at once (the module keeps
 * it until the purge, still receiving group NOTIFYs). A line-seize gives back its index only if
 * it is still just seized by this phone: an unsubscribe must never end a call's appearance.
 */
function unsubscribe(
  ctx: ScaContext, req: SubscribeRequest, existing: Subscription | undefined, requestedIndex: number, now: number,
  done: (n: Notify[]) => SubscribeOutcome,
): SubscribeOutcome {
  const index = requestedIndex > 0 ? requestedIndex : existing?.index ?? 0;
  if (!existing) {
    // Nothing stored: answer and NOTIFY from the request itself.
    const transient: Subscription = {
      aor: req.aor, event: req.event, subscriber: req.subscriber, expires: now, state: 'terminated', reason: undefined,
      index, callId: req.callId, fromTag: req.fromTag, toTag: req.toTag, notifyCseq: 0, routeSet: req.routeSet, seq: 0, flow: req.flow,
    };
    const notify = ctx.notifySubscriber(transient, now);
    return done(req.event === 'line-seize' ? [notify, ...ctx.notifyGroup(req.aor, now)] : [notify]);
  }
  const ended = ctx.subscriptions.update(existing, { callId: req.callId, fromTag: req.fromTag, toTag: req.toTag, state: 'terminated', reason: undefined, expires: now, flow: req.flow });
  const notifies = [ctx.notifySubscriber(ended, now, index)];
  ctx.subscriptions.delete(ended);
  if (req.event === 'line-seize') {
    ctx.appearances.releaseIfOnlySeized(req.aor, index, req.subscriber);
    notifies.push(...ctx.notifyGroup(req.aor, now));
  } else if (!req.inDialog) {
    const released = ctx.appearances.releaseOwnedBy(req.aor, req.subscriber);
    if (released.length > 0) notifies.push(...ctx.notifyGroup(req.aor, now));
  }
  return done(notifies);
}
