import type { ScaContext } from './context.js';
import { APPEARANCE_STATES } from '../sip/call-info.js';
import { wireState, type Appearance, type AppearanceState, type EventPackage, type Notify, type Subscription } from './types.js';

/** Results of the operations behind the sca.* RPC commands; errors carry the module's texts. */
export type AdminResult<T> = { ok: true; value: T; notifies: Notify[] } | { ok: false; code: number; message: string };

const success = <T>(value: T, notifies: Notify[] = []): AdminResult<T> => ({ ok: true, value, notifies });
const fault = <T = never>(message: string, code = 500): AdminResult<T> => ({ ok: false, code, message });

export interface SubscriptionView {
  aor: string;
  event: EventPackage;
  subscriber: string;
  expires: number;
  ttl: number;
  state: string;
  index: number;
  call_id: string;
  from_tag: string;
  to_tag: string;
  notify_cseq: number;
  route_set: string[];
  /** Where its last SUBSCRIBE came from: proto:address:port, then the local socket ("" if unknown). */
  flow: string;
}

export interface AppearanceView {
  aor: string;
  index: number;
  state: string;
  mtime: number;
  owner: string;
  callee: string;
  uri: string;
  call_id: string;
  from_tag: string;
  to_tag: string;
}

const subView = (s: Subscription, now: number): SubscriptionView => ({
  aor: s.aor, event: s.event, subscriber: s.subscriber, expires: s.expires, ttl: Math.max(0, Math.floor(s.expires - now)),
  state: s.state === 'terminated' && s.reason ? `terminated;reason=${s.reason}` : s.state, index: s.index,
  call_id: s.callId, from_tag: s.fromTag, to_tag: s.toTag, notify_cseq: s.notifyCseq, route_set: [...s.routeSet],
  flow: s.flow ? `${s.flow.proto}:${s.flow.address.includes(':') ? `[${s.flow.address}]` : s.flow.address}:${s.flow.port} on ${s.flow.socket}` : '',
});

export function listSubscriptions(ctx: ScaContext, now: number): SubscriptionView[] {
  return ctx.subscriptions.all().map((s) => subView(s, now));
}

export function showSubscription(ctx: ScaContext, aor: string, event: EventPackage, subscriber: string | undefined, now: number): SubscriptionView[] {
  return ctx.subscriptions.forAor(aor, event).filter((s) => subscriber === undefined || s.subscriber === subscriber).map((s) => subView(s, now));
}

/** Every AoR with its subscribers by event (the module's sca.subscribers is a stub). */
export function subscribers(ctx: ScaContext, aor: string | undefined, now: number): Array<{ aor: string; call_info: SubscriptionView[]; line_seize: SubscriptionView[] }> {
  const aors = aor !== undefined ? [aor] : [...new Set(ctx.subscriptions.all().map((s) => s.aor))].sort();
  return aors.map((a) => ({
    aor: a,
    call_info: ctx.subscriptions.forAor(a, 'call-info').map((s) => subView(s, now)),
    line_seize: ctx.subscriptions.forAor(a, 'line-seize').map((s) => subView(s, now)),
  }));
}

/** Ends subscriptions with reason=deactivated; the phones re-subscribe. Appearances stay. */
export function deactivate(ctx: ScaContext, match: (s: Subscription) => boolean, now: number): AdminResult<SubscriptionView[]> {
  const ended = ctx.subscriptions.all().filter(match);
  const notifies: Notify[] = [];
  const views = ended.map((s) => subView(s, now));
  for (const s of ended) notifies.push(...ctx.terminate(s, 'deactivated', now, false));
  return success(views, notifies);
}

const appView = (aor: string, a: Appearance): AppearanceView => ({
  aor, index: a.index, state: wireState(a.state), mtime: a.mtime, owner: a.owner, callee: a.callee, uri: a.uri,
  call_id: a.dialog?.callId ?? '', from_tag: a.dialog?.fromTag ?? '', to_tag: a.dialog?.toTag ?? '',
});

export function listAppearances(ctx: ScaContext): AppearanceView[] {
  return ctx.appearances.all().map(({ aor, appearance }) => appView(aor, appearance));
}

export function showAppearance(ctx: ScaContext, aor: string, index: number | undefined): AdminResult<AppearanceView[]> {
  if (!ctx.appearances.isShared(aor)) return fault(`No appearances for ${aor}`);
  const list = ctx.appearances.list(aor).filter((a) => index === undefined || a.index === index);
  if (index !== undefined && list.length === 0) return fault(`${aor} appearance index ${index} is not in use`);
  return success(list.map((a) => appView(aor, a)));
}

export function seizeAppearance(ctx: ScaContext, aor: string, owner: string, now: number): AdminResult<{ index: number }> {
  ctx.appearances.register(aor);
  const seized = ctx.appearances.seize(aor, 0, owner, now);
  if (!seized.ok) return fault('Failed to seize line');
  return success({ index: seized.appearance.index }, ctx.notifyGroup(aor, now));
}

/**
 * Sets an appearance's state. "active" means active (the module stores active-pending, which
 * its stale timer then removes 35 s later); "idle" releases it, idle being the absence of one.
 */
export function updateAppearance(ctx: ScaContext, aor: string, index: number, state: string, uri: string | undefined, now: number): AdminResult<null> {
  const name = state.toLowerCase();
  if (!(APPEARANCE_STATES as readonly string[]).includes(name)) return fault(`${state}: invalid state`);
  if (index <= 0) return fault('appearance-index must be > 0');
  const app = ctx.appearances.get(aor, index);
  if (!app) return fault(`Failed to update ${aor} appearance-index ${index}`);
  if (name === 'idle') ctx.appearances.release(aor, index);
  else {
    // Setting the state it has still restarts its time, as the module does.
    if (!ctx.appearances.transition(aor, app, 'operator', now, name as AppearanceState)) ctx.appearances.renew(aor, app, now);
    if (uri !== undefined && uri !== '') ctx.appearances.update(aor, app, { uri: `<${uri}>` });
  }
  return success(null, ctx.notifyGroup(aor, now));
}

export function releaseAppearance(ctx: ScaContext, aor: string, index: number, now: number): AdminResult<null> {
  if (index <= 0) return fault('appearance-index must be > 0');
  if (!ctx.appearances.isShared(aor)) return fault(`No appearances for ${aor}`);
  if (!ctx.appearances.release(aor, index)) return fault(`${aor} appearance index ${index} is not in use`);
  return success(null, ctx.notifyGroup(aor, now));
}
