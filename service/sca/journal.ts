import type { Appearance, EventPackage, Flow, Subscription } from './types.js';

/**
 * What one engine operation changed, row by row, for the store: a subscription, an appearance or
 * a line's membership. `value` undefined means the row goes. Values are copies taken when the
 * operation ends, so the engine may change its own objects while the store writes.
 */
export type ScaWrite =
  | { readonly kind: 'line'; readonly aor: string; readonly shared: boolean }
  | { readonly kind: 'subscription'; readonly aor: string; readonly event: EventPackage; readonly subscriber: string; readonly value: Subscription | undefined }
  /** A subscription's flow, written only when it changed (not at every NOTIFY's CSeq). */
  | { readonly kind: 'flow'; readonly aor: string; readonly event: EventPackage; readonly subscriber: string; readonly value: Flow | undefined }
  | { readonly kind: 'appearance'; readonly aor: string; readonly index: number; readonly value: Appearance | undefined };

/** Where the journal reads the current state when an operation ends. */
export interface JournalSource {
  subscription(aor: string, event: EventPackage, subscriber: string): Subscription | undefined;
  appearance(aor: string, index: number): Appearance | undefined;
  /** A line is stored while it is shared or still has subscriptions. */
  shared(aor: string): boolean;
}

const sep = '\u0000';

/** The keys the tables changed during one operation; drained into writes when it ends. */
export class Journal {
  private readonly subs = new Map<string, { aor: string; event: EventPackage; subscriber: string }>();
  private readonly flows = new Map<string, { aor: string; event: EventPackage; subscriber: string }>();
  private readonly apps = new Map<string, { aor: string; index: number }>();
  private readonly lines = new Set<string>();

  subscription(s: Pick<Subscription, 'aor' | 'event' | 'subscriber'>): void {
    this.subs.set(`${s.aor}${sep}${s.event}${sep}${s.subscriber}`, { aor: s.aor, event: s.event, subscriber: s.subscriber });
  }

  /** The subscription's flow changed (or the subscription went). */
  flow(s: Pick<Subscription, 'aor' | 'event' | 'subscriber'>): void {
    this.flows.set(`${s.aor}${sep}${s.event}${sep}${s.subscriber}`, { aor: s.aor, event: s.event, subscriber: s.subscriber });
  }

  appearance(aor: string, index: number): void {
    this.apps.set(`${aor}${sep}${index}`, { aor, index });
  }

  line(aor: string): void {
    this.lines.add(aor);
  }

  /** Lines that became shared first, then rows, then lines that stopped being shared. */
  drain(source: JournalSource): ScaWrite[] {
    const writes: ScaWrite[] = [];
    const gone: ScaWrite[] = [];
    for (const aor of this.lines) {
      const shared = source.shared(aor);
      (shared ? writes : gone).push({ kind: 'line', aor, shared });
    }
    for (const k of this.subs.values()) {
      const s = source.subscription(k.aor, k.event, k.subscriber);
      writes.push({ kind: 'subscription', ...k, value: s && { ...s } });
    }
    for (const k of this.flows.values()) {
      const f = source.subscription(k.aor, k.event, k.subscriber)?.flow;
      writes.push({ kind: 'flow', ...k, value: f && { ...f } });
    }
    for (const k of this.apps.values()) {
      const a = source.appearance(k.aor, k.index);
      writes.push({ kind: 'appearance', ...k, value: a && { ...a } });
    }
    this.subs.clear();
    this.flows.clear();
    this.apps.clear();
    this.lines.clear();
    return writes.concat(gone);
  }
}
