// Waiting on a condition instead of sleeping: resolves as soon as it holds, and fails loudly,
// saying what was awaited and what was last seen, when it does not hold in time.

export class WaitTimeout extends Error {}

/**
 * Polls `probe` (sync or async) every `everyMs` until it returns something other than
 * undefined/false, and resolves with that. After `timeoutMs` it rejects with "<what>: not within
 * N ms", plus `last()` if given (what the state was, for the failure message).
 */
export async function waitUntil<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  o: { timeoutMs?: number; everyMs?: number; last?: () => unknown } = {},
): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 5000;
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (performance.now() >= end) {
      const last = o.last ? `; last seen: ${JSON.stringify(o.last())?.slice(0, 500)}` : '';
      throw new WaitTimeout(`${what}: not within ${timeoutMs} ms${last}`);
    }
    await new Promise((r) => setTimeout(r, o.everyMs ?? 10));
  }
}

/** `p`, or a rejection "timed out after N ms waiting for <what>". */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`TIMED OUT after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Resolves once `cond()` is true (checked every `everyMs`); rejects loudly after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string, everyMs = 20): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (performance.now() > end) throw new Error(`TIMED OUT after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A promise with its resolve function outside. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}
