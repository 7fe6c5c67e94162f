import { fail, ok, type Result } from './result.js';

const MAX_DELTA = 0xffffffff; // RFC 3261 delta-seconds ceiling

/** Expires header: delta-seconds. */
export function parseExpires(text: string): Result<number> {
  const s = text.trim();
  if (!/^\d+$/.test(s)) return fail('Expires', `not delta-seconds: "${text}"`);
  return ok(Math.min(Number(s), MAX_DELTA));
}
