import { AppearanceTable } from './appearances.js';
import { buildNotify, fullStateCallInfo, lineSeizeCallInfo } from './notify.js';
import { SubscriptionTable } from './subscriptions.js';
import type { EngineConfig, Notify, Subscription } from './types.js';

/** The engine's state and the NOTIFY fan-out every handler shares. No I/O, no clock. */
export class ScaContext {
  readonly subscriptions = new SubscriptionTable();
  readonly appearances: AppearanceTable;
  /** Running totals the service exports as metrics. */
  readonly stats = { orphansReleased: 0 };
  /** AoRs whose lines (subscriptions or appearances) changed since the last takeDirty(). */
  readonly dirty = new Set<string>();

  touch(aor: string): void {
    this.dirty.add(aor);
  }

  constructor(readonly config: EngineConfig) {
    this.appearances = new AppearanceTable((aor) => config.aor_max_appearances[aor] ?? config.max_appearances);
  }

  /** The NOTIFY one subscription gets now: full state for call-info, its index for line-seize. */
  notifySubscriber(sub: Subscription, now: number, index = sub.index): Notify {
    this.touch(sub.aor); // its CSeq moves
    const callInfo = sub.event === 'call-info'
      ? fullStateCallInfo(sub.aor, this.appearances.list(sub.aor))
      : lineSeizeCallInfo(sub.aor, index);
    return buildNotify(sub, callInfo, now, this.config.server_address);
  }

  /**
   * Group NOTIFY: every active call-info subscriber of the AoR, the phone that caused the change
   * included, newest subscription first. Each gets its own Subscription-State.
   */
  notifyGroup(aor: string, now: number): Notify[] {
    const subs = this.subscriptions.forAor(aor, 'call-info').filter((s) => s.state === 'active');
    this.touch(aor);
    if (subs.length === 0) return [];
    const callInfo = fullStateCallInfo(aor, this.appearances.list(aor));
    return subs.map((s) => buildNotify(s, callInfo, now, this.config.server_address));
  }

  hasCallInfoSubscribers(aor: string): boolean {
    return this.subscriptions.forAor(aor, 'call-info').length > 0;
  }

  /**
   * Ends a subscription with a reason: one final NOTIFY, then it is gone. With `release`, a
   * line-seize also gives back its index if that index is still only seized.
   */
  terminate(sub: Subscription, reason: 'noresource' | 'timeout' | 'deactivated', now: number, release: boolean): Notify[] {
    this.touch(sub.aor);
    sub.state = 'terminated';
    sub.reason = reason;
    sub.expires = now;
    const notifies = [this.notifySubscriber(sub, now)];
    this.subscriptions.delete(sub);
    if (release && sub.event === 'line-seize' && sub.index > 0) {
      const app = this.appearances.get(sub.aor, sub.index);
      if (app && app.state === 'seized' && app.owner === sub.subscriber) {
        this.appearances.release(sub.aor, sub.index);
        notifies.push(...this.notifyGroup(sub.aor, now));
      }
    }
    return notifies;
  }
}
