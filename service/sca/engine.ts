import { parseMessage } from '../sip/message.js';
import * as admin from './admin.js';
import { handleCallEvent } from './call-handlers.js';
import { NO_EDIT, type CallEventOutcome } from './call-event.js';
import { ScaContext } from './context.js';
import { purge } from './purge.js';
import { engineConfigSchema, type CallEventJson, type NotifyReplyJson, type SubscribeJson } from './schemas.js';
import { handleSubscribe, type SubscribeOutcome } from './subscribe.js';
import { lineSnapshot, notifyEveryone, restoreLines, type LineSnapshot } from './snapshot.js';
import type { EngineConfig, EventPackage, Notify } from './types.js';

/**
 * The SCA engine: events in, effects out (the SIP reply, the NOTIFYs to send, how to change a
 * relayed message). It owns the subscription and appearance tables in memory; it does no I/O
 * and never reads the clock: every call carries `now` in seconds.
 */
export class ScaEngine {
  readonly ctx: ScaContext;

  constructor(config: Partial<EngineConfig> = {}) {
    const parsed = engineConfigSchema.parse(config);
    this.ctx = new ScaContext({ ...parsed, server_address: parsed.server_address });
  }

  get config(): EngineConfig {
    return this.ctx.config;
  }

  subscribe(input: SubscribeJson): SubscribeOutcome {
    const msg = parseMessage(input.msg);
    if (!msg.ok) return { reply: { code: 400, reason: 'Bad Request', headers: [] }, notifies: [], toTag: undefined, aor: undefined };
    return handleSubscribe(this.ctx, { msg: msg.value, ruri: input.ruri, toTag: input.to_tag, now: input.now });
  }

  callEvent(input: CallEventJson): CallEventOutcome {
    const msg = parseMessage(input.msg);
    if (!msg.ok) return { result: -1, reply: undefined, edit: NO_EDIT, notifies: [], aors: [], callerShared: false };
    const mask = input.mask === undefined || input.mask === 0 ? 3 : input.mask;
    return handleCallEvent(this.ctx, { hook: input.hook, msg: msg.value, status: input.status, mask, now: input.now });
  }

  /**
   * A final reply to one of our NOTIFYs. 481 means the subscriber forgot the dialog (RFC 6665
   * 4.1.3): the subscription goes. Timeouts and other errors keep it, so one lost NOTIFY never
   * silences a phone until it re-subscribes.
   */
  notifyReply(input: NotifyReplyJson): { removed: boolean; aor: string | undefined } {
    if (input.code !== 481) return { removed: false, aor: undefined };
    // A NOTIFY's From-tag is the tag we gave the subscription: that and its Call-ID name it.
    const sub = this.ctx.subscriptions.all().find((s) => s.callId === input.call_id && s.toTag === input.from_tag);
    if (!sub) return { removed: false, aor: undefined };
    this.ctx.subscriptions.delete(sub);
    this.ctx.touch(sub.aor);
    return { removed: true, aor: sub.aor };
  }

  /** The AoRs whose lines changed since the last call, to be stored before anyone is told. */
  takeDirty(): string[] {
    const aors = [...this.ctx.dirty];
    this.ctx.dirty.clear();
    return aors;
  }

  lineSnapshot(aor: string): LineSnapshot {
    return lineSnapshot(this.ctx, aor);
  }

  restore(lines: readonly LineSnapshot[], now: number): ReturnType<typeof restoreLines> {
    return restoreLines(this.ctx, lines, now);
  }

  /** Full-state NOTIFYs to every call-info subscriber (after a restore). */
  notifyEveryone(now: number): Notify[] {
    return notifyEveryone(this.ctx, now);
  }

  /** The periodic purge; call it every purge_expired_interval. */
  tick(now: number): Notify[] {
    return purge(this.ctx, now);
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

  deactivateAll(now: number): admin.AdminResult<admin.SubscriptionView[]> {
    return admin.deactivate(this.ctx, () => true, now);
  }

  deactivateSubscription(aor: string, event: EventPackage, subscriber: string | undefined, now: number): admin.AdminResult<admin.SubscriptionView[]> {
    const result = admin.deactivate(this.ctx, (s) => s.aor === aor && s.event === event && (subscriber === undefined || s.subscriber === subscriber), now);
    if (result.ok && result.value.length === 0) return { ok: false, code: 404, message: `No ${event} subscription for ${aor}` };
    return result;
  }

  listAppearances(): admin.AppearanceView[] {
    return admin.listAppearances(this.ctx);
  }

  showAppearance(aor: string, index: number | undefined): admin.AdminResult<admin.AppearanceView[]> {
    return admin.showAppearance(this.ctx, aor, index);
  }

  seizeAppearance(aor: string, owner: string, now: number): admin.AdminResult<{ index: number }> {
    return admin.seizeAppearance(this.ctx, aor, owner, now);
  }

  updateAppearance(aor: string, index: number, state: string, uri: string | undefined, now: number): admin.AdminResult<null> {
    return admin.updateAppearance(this.ctx, aor, index, state, uri, now);
  }

  releaseAppearance(aor: string, index: number, now: number): admin.AdminResult<null> {
    return admin.releaseAppearance(this.ctx, aor, index, now);
  }
}
