// What a store holds after applying the engine's writes: the rows, in memory, as lines again.
import type { ScaWrite } from '../../service/sca/journal.js';
import type { LineSnapshot } from '../../service/sca/snapshot.js';
import type { Appearance, Subscription } from '../../service/sca/types.js';

export class RowImage {
  private readonly lines = new Set<string>();
  private readonly subs = new Map<string, Subscription>();
  private readonly apps = new Map<string, { aor: string; app: Appearance }>();

  apply(writes: readonly ScaWrite[]): void {
    for (const w of writes) {
      if (w.kind === 'line') {
        if (w.shared) this.lines.add(w.aor);
        else {
          this.lines.delete(w.aor);
          for (const [k, s] of this.subs) if (s.aor === w.aor) this.subs.delete(k);
          for (const [k, a] of this.apps) if (a.aor === w.aor) this.apps.delete(k);
        }
      } else if (w.kind === 'flow') {
        // Kept with the subscription row's value; the store writes it to its own table.
        continue;
      } else if (w.kind === 'subscription') {
        const key = `${w.aor} ${w.event} ${w.subscriber}`;
        if (w.value) this.subs.set(key, structuredClone(w.value));
        else this.subs.delete(key);
      } else {
        const key = `${w.aor} ${w.index}`;
        if (w.value) this.apps.set(key, { aor: w.aor, app: structuredClone(w.value) });
        else this.apps.delete(key);
      }
    }
  }

  snapshot(): LineSnapshot[] {
    const aors = new Set([...this.lines, ...[...this.subs.values()].map((s) => s.aor), ...[...this.apps.values()].map((a) => a.aor)]);
    return [...aors].map((aor) => ({
      aor,
      shared: true,
      subscriptions: [...this.subs.values()].filter((s) => s.aor === aor).sort((a, b) => a.seq - b.seq),
      appearances: [...this.apps.values()].filter((a) => a.aor === aor).map((a) => a.app),
    }));
  }
}

/** The writes an engine's operations returned, collected as they come back. */
export function recordingWrites<E extends object>(engine: E, sink: ScaWrite[]): E {
  return new Proxy(engine, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const out = (v as (...a: unknown[]) => unknown).apply(target, args) as { writes?: ScaWrite[] } | undefined;
        if (out && Array.isArray(out.writes)) sink.push(...out.writes);
        return out;
      };
    },
  });
}
