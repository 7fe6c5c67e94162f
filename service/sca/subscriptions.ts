import type { Journal } from './journal.js';
import type { EventPackage, Flow, Subscription, SubscriptionChange } from './types.js';

const sameFlow = (a: Flow | undefined, b: Flow | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.proto === b.proto && a.address === b.address && a.port === b.port && a.socket === b.socket && a.proxy === b.proxy);

const lineKey = (aor: string, event: EventPackage): string => `${aor}\u0000${event}`;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Subscriptions keyed exactly by (AoR, event, subscriber Contact): at most one per key, as in the
 * module, but without its hash-slot cross-matching. Also found by dialog (Call-ID and our tag),
 * for the replies to our NOTIFYs. The only place that changes them; each change is journaled.
 */
export class SubscriptionTable {
  /** (AoR, event) → subscriber → subscription */
  private readonly lines = new Map<string, Map<string, Mutable<Subscription>>>();
  /** By Call-ID (one subscription almost always; several only if a Call-ID is reused), then our tag. */
  private readonly byCallId = new Map<string, Subscription | Subscription[]>();
  private readonly perEvent: Record<EventPackage, number> = { 'call-info': 0, 'line-seize': 0 };
  private nextSeq = 1;

  constructor(private readonly journal: Journal) {}

  get(aor: string, event: EventPackage, subscriber: string): Subscription | undefined {
    return this.lines.get(lineKey(aor, event))?.get(subscriber);
  }

  /** The subscription whose dialog has this Call-ID and our tag. */
  findByDialog(callId: string, toTag: string): Subscription | undefined {
    const found = this.byCallId.get(callId);
    if (Array.isArray(found)) return found.find((s) => s.toTag === toTag);
    return found?.toTag === toTag ? found : undefined;
  }

  insert(sub: Omit<Subscription, 'seq'>): Subscription {
    const saved: Subscription = { ...sub, seq: this.nextSeq++ };
    this.put(saved);
    this.journal.subscription(saved);
    this.journal.flow(saved);
    this.journal.line(saved.aor);
    return saved;
  }

  /** Puts back a subscription restored from a store, keeping creation order. */
  restore(sub: Subscription): void {
    this.put({ ...sub });
    this.nextSeq = Math.max(this.nextSeq, sub.seq + 1);
  }

  update(sub: Subscription, change: SubscriptionChange): Subscription {
    const s = this.own(sub);
    const redialog = (change.callId !== undefined && change.callId !== s.callId) || (change.toTag !== undefined && change.toTag !== s.toTag);
    if ('flow' in change && !sameFlow(change.flow, s.flow)) this.journal.flow(s);
    if (redialog) this.unindex(s);
    Object.assign(s, change);
    if (redialog) this.index(s);
    this.journal.subscription(s);
    return s;
  }

  delete(sub: Subscription): void {
    const key = lineKey(sub.aor, sub.event);
    const line = this.lines.get(key);
    if (line?.get(sub.subscriber) !== sub) return;
    line.delete(sub.subscriber);
    this.unindex(sub);
    this.perEvent[sub.event]--;
    if (line.size === 0) this.lines.delete(key);
    this.journal.subscription(sub);
    if (sub.flow !== undefined) this.journal.flow(sub);
    this.journal.line(sub.aor);
  }

  /** The subscriptions of one AoR and event, newest first (the module inserts at the list head). */
  forAor(aor: string, event: EventPackage): Subscription[] {
    const line = this.lines.get(lineKey(aor, event));
    return line ? [...line.values()].sort((a, b) => b.seq - a.seq) : [];
  }

  countFor(aor: string, event: EventPackage): number {
    return this.lines.get(lineKey(aor, event))?.size ?? 0;
  }

  /** Every subscription, newest first. */
  all(): Subscription[] {
    const out: Subscription[] = [];
    for (const line of this.lines.values()) for (const s of line.values()) out.push(s);
    return out.sort((a, b) => b.seq - a.seq);
  }

  /** Every AoR with at least one subscription (each once). */
  aors(): string[] {
    const out = new Set<string>();
    for (const line of this.lines.values()) for (const s of line.values()) { out.add(s.aor); break; }
    return [...out];
  }

  count(event?: EventPackage): number {
    return event === undefined ? this.perEvent['call-info'] + this.perEvent['line-seize'] : this.perEvent[event];
  }

  private put(sub: Subscription): void {
    const key = lineKey(sub.aor, sub.event);
    let line = this.lines.get(key);
    if (!line) this.lines.set(key, (line = new Map()));
    const old = line.get(sub.subscriber);
    if (old) this.unindex(old);
    else this.perEvent[sub.event]++;
    line.set(sub.subscriber, sub);
    this.index(sub);
  }

  private unindex(sub: Subscription): void {
    const found = this.byCallId.get(sub.callId);
    if (found === sub) this.byCallId.delete(sub.callId);
    else if (Array.isArray(found) && found.includes(sub)) {
      const rest = found.filter((s) => s !== sub);
      this.byCallId.set(sub.callId, rest.length === 1 ? rest[0]! : rest);
    }
  }

  /** Makes the subscription the one found by its dialog (replacing one with the same Call-ID and tag). */
  private index(sub: Subscription): void {
    const found = this.byCallId.get(sub.callId);
    if (found === undefined || (!Array.isArray(found) && found.toTag === sub.toTag)) this.byCallId.set(sub.callId, sub);
    else this.byCallId.set(sub.callId, [...(Array.isArray(found) ? found : [found]).filter((s) => s.toTag !== sub.toTag), sub]);
  }

  private own(sub: Subscription): Mutable<Subscription> {
    const s = this.lines.get(lineKey(sub.aor, sub.event))?.get(sub.subscriber);
    if (s !== sub) throw new Error(`subscription ${sub.aor} ${sub.event} ${sub.subscriber} is not in the table`);
    return s;
  }
}
