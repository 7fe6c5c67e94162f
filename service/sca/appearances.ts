import type { Appearance, AppearanceState } from './types.js';

export type SeizeResult =
  | { ok: true; appearance: Appearance }
  | { ok: false; why: 'in-use' | 'exhausted' | 'out-of-range' };

/**
 * The appearances of every shared line. An AoR is "shared" once it has a line here (created by a
 * subscription or an RPC seize). Indices start at 1; a line is bounded by its max_appearances.
 */
export class AppearanceTable {
  private readonly lines = new Map<string, Map<number, Appearance>>();

  constructor(private readonly maxFor: (aor: string) => number) {}

  isShared(aor: string): boolean {
    return this.lines.has(aor);
  }

  register(aor: string): void {
    if (!this.lines.has(aor)) this.lines.set(aor, new Map());
  }

  unregister(aor: string): void {
    this.lines.delete(aor);
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
      index, state, owner, callee: '', uri: '', dialog: undefined, direction: undefined,
      ctime: now, mtime: now, pending: undefined,
    };
    line.set(index, appearance);
    return { ok: true, appearance };
  }

  /** Puts back a stored appearance as it was. */
  put(aor: string, appearance: Appearance): void {
    this.register(aor);
    this.lines.get(aor)!.set(appearance.index, appearance);
  }

  release(aor: string, index: number): Appearance | undefined {
    const line = this.lines.get(aor);
    const app = line?.get(index);
    if (app) line!.delete(index);
    return app;
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
}
