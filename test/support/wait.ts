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

/** Races a promise against a deadline that fails loudly. */
export async function within<T>(what: string, p: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeout(`${what}: not within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
