import type { Effects } from '../effects.js';
import { parseMessage } from '../sip/message.js';
import * as admin from './admin.js';
import { handleCallEvent } from './call-handlers.js';
import { NO_EDIT, type CallEventOutcome } from './call-event.js';
import { scaConfigSchema } from './config.js';
import { ScaContext } from './context.js';
import type { ScaWrite } from './journal.js';
import { purge } from './purge.js';
import type { CallEventJson, NotifyReplyJson, SubscribeJson } from './schemas.js';
import { handleSubscribe, type SubscribeOutcome } from './subscribe.js';
import { notifyEveryone, restoreLines, type LineSnapshot } from './snapshot.js';
import type { EngineConfig, EventPackage, Notify } from './types.js';

/** What every engine operation returns besides its own result: the NOTIFYs and the rows to write. */
export type ScaEffects = Effects<ScaWrite, Notify> & { readonly notifies: Notify[] };
export type WithEffects<T> = T & ScaEffects;
/** An admin operation's result with its effects; a fault changed nothing worth telling. */
export type AdminOutcome<T> = WithEffects<{ ok: true; value: T }> | { ok: false; code: number; message: string };

/**
 * The SCA engine: events in, effects out (the SIP reply, the NOTIFYs to send, how to change a
 * relayed message, the rows to store). It owns the subscription and appearance tables in memory;
 * it does no I/O and never reads the clock: every call carries `now` in seconds.
 */
export class ScaEngine {
  readonly ctx: ScaContext;

  constructor(config: Partial<EngineConfig> = {}) {
    this.ctx = new ScaContext(scaConfigSchema.parse(config));
  }

  get config(): EngineConfig {
    return this.ctx.config;
  }

  /** Ends an operation: its result plus the NOTIFYs it made and the rows it changed. */
  private finish<T extends { notifies: Notify[] }>(out: T): T & ScaEffects {
    return { ...out, writes: this.ctx.takeWrites(), commands: [], timers: [] };
  }

  private finishAdmin<T>(r: admin.AdminResult<T>): AdminOutcome<T> {
    return r.ok ? this.finish({ ok: true as const, value: r.value, notifies: r.notifies }) : r;
  }

  subscribe(input: SubscribeJson): WithEffects<SubscribeOutcome> {
    const msg = parseMessage(input.msg);
    if (!msg.ok) return this.finish({ reply: { code: 400, reason: 'Bad Request', headers: [] }, notifies: [], toTag: undefined, aor: undefined });
    return this.finish(handleSubscribe(this.ctx, { msg: msg.value, ruri: input.ruri, toTag: input.to_tag, authUser: input.auth_user, flow: input.flow, now: input.now }));
  }

  callEvent(input: CallEventJson): WithEffects<CallEventOutcome> {
    const msg = parseMessage(input.msg);
    if (!msg.ok) return this.finish({ result: -1 as const, reply: undefined, edit: NO_EDIT, notifies: [], aors: [], callerShared: false });
    const mask = input.mask === undefined || input.mask === 0 ? 3 : input.mask;
    return this.finish(handleCallEvent(this.ctx, { hook: input.hook, msg: msg.value, status: input.status, mask, flow: input.flow, now: input.now }));
  }

  /**
   * A final reply to one of our NOTIFYs. 481 means the subscriber forgot the dialog (RFC 6665
   * 4.1.3): the subscription goes. Timeouts and other errors keep it, so one lost NOTIFY never
   * silences a phone until it re-subscribes.
   */
  notifyReply(input: NotifyReplyJson): WithEffects<{ removed: boolean; aor: string | undefined }> {
    // A NOTIFY's From-tag is the tag we gave the subscription: that and its Call-ID name it.
    const sub = input.code === 481 ? this.ctx.subscriptions.findByDialog(input.call_id, input.from_tag) : undefined;
    if (sub) this.ctx.subscriptions.delete(sub);
    return this.finish({ removed: sub !== undefined, aor: sub?.aor, notifies: [] });
  }

  /** Puts stored lines back; what expired meanwhile is to be deleted from the store. */
  restore(lines: readonly LineSnapshot[], now: number): WithEffects<ReturnType<typeof restoreLines>> {
    return this.finish({ ...restoreLines(this.ctx, lines, now), notifies: [] });
  }

  /** Full-state NOTIFYs to every call-info subscriber (after a restore). */
  notifyEveryone(now: number): ScaEffects {
    return this.finish({ notifies: notifyEveryone(this.ctx, now) });
  }

  /**
   * The full state to every call-info subscriber that came through this proxy (its PROXY_ID;
   * undefined: those of no known proxy): when that proxy is linked again, what was sent to them
   * meanwhile went nowhere.
   */
  notifyThrough(proxy: string | undefined, now: number): ScaEffects {
    return this.finish({ notifies: notifyEveryone(this.ctx, now, (s) => s.flow?.proxy === proxy) });
  }

  /** The periodic purge; call it every purge_expired_interval. */
  tick(now: number): ScaEffects {
    return this.finish({ notifies: purge(this.ctx, now) });
  }

  listSubscriptions(now: number): admin.SubscriptionView[] {
    return admin.listSubscriptions(this.ctx, now);
  }

  countSubscriptions(event: EventPackage): number {
    return this.ctx.subscriptions.count(event);
  }

  showSubscription(aor: string, event: EventPackage, subscriber: string | undefined, now: number): admin.SubscriptionView[] {
    return admin.showSubscription(this.ctx, aor, event, subscriber, now);
  }

  subscribers(aor: string | undefined, now: number): ReturnType<typeof admin.subscribers> {
    return admin.subscribers(this.ctx, aor, now);
  }

  deactivateAll(now: number): AdminOutcome<admin.SubscriptionView[]> {
    return this.finishAdmin(admin.deactivate(this.ctx, () => true, now));
  }

  deactivateSubscription(aor: string, event: EventPackage, subscriber: string | undefined, now: number): AdminOutcome<admin.SubscriptionView[]> {
    const result = admin.deactivate(this.ctx, (s) => s.aor === aor && s.event === event && (subscriber === undefined || s.subscriber === subscriber), now);
    if (result.ok && result.value.length === 0) return { ok: false, code: 404, message: `No ${event} subscription for ${aor}` };
    return this.finishAdmin(result);
  }

  listAppearances(): admin.AppearanceView[] {
    return admin.listAppearances(this.ctx);
  }

  showAppearance(aor: string, index: number | undefined): admin.AdminResult<admin.AppearanceView[]> {
    return admin.showAppearance(this.ctx, aor, index);
  }

  seizeAppearance(aor: string, owner: string, now: number): AdminOutcome<{ index: number }> {
    return this.finishAdmin(admin.seizeAppearance(this.ctx, aor, owner, now));
  }

  updateAppearance(aor: string, index: number, state: string, uri: string | undefined, now: number): AdminOutcome<null> {
    return this.finishAdmin(admin.updateAppearance(this.ctx, aor, index, state, uri, now));
  }

  releaseAppearance(aor: string, index: number, now: number): AdminOutcome<null> {
    return this.finishAdmin(admin.releaseAppearance(this.ctx, aor, index, now));
  }
}
