import { AppearanceTable } from './appearances.js';
import { Journal, type ScaWrite } from './journal.js';
import { buildNotify, fullStateCallInfo, lineSeizeCallInfo, notifyFlow } from './notify.js';
import { SubscriptionTable } from './subscriptions.js';
import type { EngineConfig, Notify, Subscription } from './types.js';

/** The engine's state and the NOTIFY fan-out every handler shares. No I/O, no clock. */
export class ScaContext {
  readonly journal = new Journal();
  readonly subscriptions = new SubscriptionTable(this.journal);
  readonly appearances: AppearanceTable;
  /** Running totals the service exports as metrics. */
  readonly stats = { orphansReleased: 0 };

  private readonly members: Map<string, Set<string>>;

  constructor(readonly config: EngineConfig) {
    // Maps, not the config objects: an AoR such as "__proto__" must not find a prototype's value.
    const perAor = new Map(Object.entries(config.aor_max_appearances));
    this.appearances = new AppearanceTable((aor) => perAor.get(aor) ?? config.max_appearances, this.journal);
    this.members = new Map(Object.entries(config.aor_members).map(([aor, list]) => [aor, new Set(list.map((m) => m.toLowerCase()))]));
  }

  /** Whether an authenticated user may subscribe to a line (line_membership). */
  mayJoin(aor: string, authUser: string): boolean {
    const policy = this.config.line_membership;
    if (policy === 'open') return true;
    const user = authUser.toLowerCase();
    const m = /^sips?:([^@;]+)@([^;>:]+)/i.exec(aor);
    const aorUser = m?.[1]?.toLowerCase();
    const aorDomainName = m?.[2]?.toLowerCase();
    if (user === aorUser || user === `${aorUser}@${aorDomainName}`) return true;
    return policy === 'members' && (this.members.get(aor)?.has(user) ?? false);
  }

  /** The rows the current operation changed, as of now. */
  takeWrites(): ScaWrite[] {
    return this.journal.drain({
      subscription: (aor, event, subscriber) => this.subscriptions.get(aor, event, subscriber),
      appearance: (aor, index) => this.appearances.get(aor, index),
      shared: (aor) => this.appearances.isShared(aor) || this.subscriptions.countFor(aor, 'call-info') + this.subscriptions.countFor(aor, 'line-seize') > 0,
    });
  }

  /**
   * The NOTIFY one subscription gets now: full state for call-info, its index for line-seize. Each
   * NOTIFY takes the dialog's next CSeq (a subscription answered from its request alone, not
   * stored, counts from its own).
   */
  notifySubscriber(sub: Subscription, now: number, index = sub.index): Notify {
    const cseq = sub.notifyCseq + 1;
    const stored = this.subscriptions.get(sub.aor, sub.event, sub.subscriber) === sub;
    const current = stored ? this.subscriptions.update(sub, { notifyCseq: cseq }) : { ...sub, notifyCseq: cseq };
    const callInfo = sub.event === 'call-info'
      ? fullStateCallInfo(sub.aor, this.appearances.list(sub.aor))
      : lineSeizeCallInfo(sub.aor, index);
    return buildNotify(current, callInfo, now, this.config.server_address, notifyFlow(current, this.config.notify_to_flow));
  }

  /**
   * Group NOTIFY: every active call-info subscriber of the AoR, the phone that caused the change
   * included, newest subscription first. Each gets its own Subscription-State.
   */
  notifyGroup(aor: string, now: number, only?: (s: Subscription) => boolean): Notify[] {
    const subs = this.subscriptions.forAor(aor, 'call-info').filter((s) => s.state === 'active' && (!only || only(s)));
    if (subs.length === 0) return [];
    const callInfo = fullStateCallInfo(aor, this.appearances.list(aor));
    return subs.map((s) => buildNotify(this.subscriptions.update(s, { notifyCseq: s.notifyCseq + 1 }), callInfo, now, this.config.server_address,
      notifyFlow(s, this.config.notify_to_flow)));
  }

  hasCallInfoSubscribers(aor: string): boolean {
    return this.subscriptions.countFor(aor, 'call-info') > 0;
  }

  /**
   * Ends a subscription with a reason: one final NOTIFY, then it is gone. With `release`, a
   * line-seize also gives back its index if that index is still only seized.
   */
  terminate(sub: Subscription, reason: 'noresource' | 'timeout' | 'deactivated', now: number, release: boolean): Notify[] {
    const ended = this.subscriptions.update(sub, { state: 'terminated', reason, expires: now });
    const notifies = [this.notifySubscriber(ended, now)];
    this.subscriptions.delete(ended);
    if (release && ended.event === 'line-seize' && this.appearances.releaseIfOnlySeized(ended.aor, ended.index, ended.subscriber)) {
      notifies.push(...this.notifyGroup(ended.aor, now));
    }
    return notifies;
  }
}
