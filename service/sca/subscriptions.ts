import type { EventPackage, Subscription } from './types.js';

const lineKey = (aor: string, event: EventPackage): string => `${aor}\u0000${event}`;

/**
 * Subscriptions keyed exactly by (AoR, event, subscriber Contact): at most one per key, as in the
 * module, but without its hash-slot cross-matching.
 */
export class SubscriptionTable {
  /** (AoR, event) → subscriber → subscription */
  private readonly lines = new Map<string, Map<string, Subscription>>();
  private size = 0;
  private nextSeq = 1;

  get(aor: string, event: EventPackage, subscriber: string): Subscription | undefined {
    return this.lines.get(lineKey(aor, event))?.get(subscriber);
  }

  insert(sub: Omit<Subscription, 'seq'>): Subscription {
    const saved: Subscription = { ...sub, seq: this.nextSeq++ };
    this.put(saved);
    return saved;
  }

  /** Puts back a subscription restored from a store, keeping creation order. */
  restore(sub: Subscription): void {
    this.put(sub);
    this.nextSeq = Math.max(this.nextSeq, sub.seq + 1);
  }

  private put(sub: Subscription): void {
    const key = lineKey(sub.aor, sub.event);
    let line = this.lines.get(key);
    if (!line) this.lines.set(key, (line = new Map()));
    if (!line.has(sub.subscriber)) this.size++;
    line.set(sub.subscriber, sub);
  }

  delete(sub: Subscription): void {
    const key = lineKey(sub.aor, sub.event);
    const line = this.lines.get(key);
    if (line?.get(sub.subscriber) !== sub) return;
    line.delete(sub.subscriber);
    this.size--;
    if (line.size === 0) this.lines.delete(key);
  }

  /** The subscriptions of one AoR and event, newest first (the module inserts at the list head). */
  forAor(aor: string, event: EventPackage): Subscription[] {
    const line = this.lines.get(lineKey(aor, event));
    return line ? [...line.values()].sort((a, b) => b.seq - a.seq) : [];
  }

  /** Every subscription, newest first. */
  all(): Subscription[] {
    const out: Subscription[] = [];
    for (const line of this.lines.values()) for (const s of line.values()) out.push(s);
    return out.sort((a, b) => b.seq - a.seq);
  }

  count(event?: EventPackage): number {
    if (event === undefined) return this.size;
    let n = 0;
    for (const line of this.lines.values()) for (const s of line.values()) if (s.event === event) n++;
    return n;
  }
}
