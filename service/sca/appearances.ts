import type { Journal } from './journal.js';
import { own } from './limits.js';
import { nextState, type Trigger } from './transitions.js';
import type { Appearance, AppearanceDetails, AppearanceState } from './types.js';

export type SeizeResult =
  | { ok: true; appearance: Appearance }
  | { ok: false; why: 'in-use' | 'exhausted' | 'out-of-range' };

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The appearances of every shared line, and the only place that changes them (each change goes
 * into the journal). An AoR is "shared" once it has a line here (created by a subscription or
 * an RPC seize). Indices start at 1; a line is bounded by its max_appearances.
 */
export class AppearanceTable {
  private readonly lines = new Map<string, Map<number, Mutable<Appearance>>>();

  constructor(private readonly maxFor: (aor: string) => number, private readonly journal: Journal) {}

  isShared(aor: string): boolean {
    return this.lines.has(aor);
  }

  register(aor: string): void {
    if (this.lines.has(aor)) return;
    this.lines.set(aor, new Map());
    this.journal.line(aor);
  }

  unregister(aor: string): void {
    const line = this.lines.get(aor);
    if (!line) return;
    for (const index of line.keys()) this.journal.appearance(aor, index);
    this.lines.delete(aor);
    this.journal.line(aor);
  }

  aors(): string[] {
    return [...this.lines.keys()];
  }

  /** The line's appearances in ascending index order. */
  list(aor: string): Appearance[] {
    const line = this.lines.get(aor);
    return line ? [...line.values()].sort((a, b) => a.index - b.index) : [];
  }

  get(aor: string, index: number): Appearance | undefined {
    return this.lines.get(aor)?.get(index);
  }

  maxAppearances(aor: string): number {
    return this.maxFor(aor);
  }

  /**
   * Seizes `requested` (0 = the lowest free index) for `owner`. One index never has two owners:
   * a taken index is refused, whatever its state.
   */
  seize(aor: string, requested: number, owner: string, now: number, state: AppearanceState = 'seized'): SeizeResult {
    const line = this.lines.get(aor);
    if (!line) return { ok: false, why: 'out-of-range' };
    const max = this.maxFor(aor);
    let index = requested;
    if (index > 0) {
      if (index > max) return { ok: false, why: 'out-of-range' };
      if (line.has(index)) return { ok: false, why: 'in-use' };
    } else {
      index = 1;
      while (line.has(index)) index++;
      if (index > max) return { ok: false, why: 'exhausted' };
    }
    const appearance: Appearance = {
      index, state, owner: own(owner), callee: '', uri: '', dialog: undefined, direction: undefined,
      ctime: now, mtime: now, pending: undefined,
    };
    line.set(index, appearance);
    this.journal.appearance(aor, index);
    return { ok: true, appearance };
  }

  /** Puts back a stored line and appearance as they were (restore: the store has them already). */
  put(aor: string, appearance: Appearance | undefined): void {
    if (!this.lines.has(aor)) this.lines.set(aor, new Map());
    if (appearance) this.lines.get(aor)!.set(appearance.index, { ...appearance });
  }

  /** Moves an appearance by the state table; false (and nothing changes) when it does not apply. */
  transition(aor: string, app: Appearance, trigger: Trigger, now: number, named?: AppearanceState): boolean {
    const to = nextState(app.state, trigger, named);
    if (to === undefined || to === app.state) return false;
    const a = this.stored(aor, app);
    a.state = to;
    a.mtime = now;
    this.journal.appearance(aor, app.index);
    return true;
  }

  /** Changes who holds the appearance, the call it carries and how it is shown. */
  update(aor: string, app: Appearance, details: AppearanceDetails): void {
    const d = details;
    Object.assign(this.stored(aor, app), {
      ...d,
      ...(d.owner !== undefined ? { owner: own(d.owner) } : {}),
      ...(d.callee !== undefined ? { callee: own(d.callee) } : {}),
      ...(d.uri !== undefined ? { uri: own(d.uri) } : {}),
      ...(d.dialog ? { dialog: { callId: own(d.dialog.callId), fromTag: own(d.dialog.fromTag), toTag: own(d.dialog.toTag) } } : {}),
    });
    this.journal.appearance(aor, app.index);
  }

  /** The operator set the state it has: its time starts again, as the module does. */
  renew(aor: string, app: Appearance, now: number): void {
    this.stored(aor, app).mtime = now;
    this.journal.appearance(aor, app.index);
  }

  release(aor: string, index: number): Appearance | undefined {
    const line = this.lines.get(aor);
    const app = line?.get(index);
    if (app) {
      line!.delete(index);
      this.journal.appearance(aor, index);
    }
    return app;
  }

  /** Releases `index` only if `owner` merely seized it: nothing else may end a call's appearance. */
  releaseIfOnlySeized(aor: string, index: number, owner: string): boolean {
    const app = index > 0 ? this.get(aor, index) : undefined;
    if (!app || app.state !== 'seized' || app.owner !== owner) return false;
    this.release(aor, index);
    return true;
  }

  /** Releases every appearance of `aor` owned by `owner` (a phone that rebooted). */
  releaseOwnedBy(aor: string, owner: string): Appearance[] {
    const released = this.list(aor).filter((a) => a.owner === owner);
    for (const a of released) this.release(aor, a.index);
    return released;
  }

  /**
   * The appearance of a call, matched on Call-ID plus either tag in either orientation: the
   * module's single-orientation match is what strands inbound calls (kamailio PR #3249).
   */
  findByDialog(aor: string, callId: string, tags: ReadonlyArray<string | undefined>): Appearance | undefined {
    const wanted = tags.filter((t): t is string => t !== undefined && t !== '');
    return this.list(aor).find((a) => a.dialog !== undefined && a.dialog.callId === callId
      && wanted.some((t) => t === a.dialog!.fromTag || t === a.dialog!.toTag));
  }

  /** By index when the message names one, falling back to the dialog (kamailio #2583). */
  find(aor: string, index: number, callId: string, tags: ReadonlyArray<string | undefined>): Appearance | undefined {
    const byIndex = index > 0 ? this.get(aor, index) : undefined;
    if (byIndex && (byIndex.dialog === undefined || byIndex.dialog.callId === callId)) return byIndex;
    return this.findByDialog(aor, callId, tags) ?? byIndex;
  }

  all(): Array<{ aor: string; appearance: Appearance }> {
    return [...this.lines.keys()].sort().flatMap((aor) => this.list(aor).map((appearance) => ({ aor, appearance })));
  }

  /** The stored object behind `app`; an appearance of another line or a released one is a bug. */
  private stored(aor: string, app: Appearance): Mutable<Appearance> {
    const a = this.lines.get(aor)?.get(app.index);
    if (a !== app) throw new Error(`appearance ${aor} #${app.index} is not in the table`);
    return a;
  }
}
