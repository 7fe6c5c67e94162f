import { affordableSeconds, callCost } from './rating.js';
import type { Call } from './types.js';

/** A prepaid call's share of its account's balance and how long that share lets it last. */
export interface Share {
  readonly reserved: number;
  /** Seconds from answer the share pays for (0: not even the connect fee and first pulse). */
  readonly seconds: number;
}

/** What a call has cost so far at `now` (whole pulses started), 0 before its answer. */
export function spentSoFar(call: Pick<Call, 'connectedAt' | 'rate' | 'limit'>, now: number): number {
  if (call.connectedAt === undefined || !call.rate) return 0;
  return callCost(billedDuration(now - call.connectedAt, call.limit), call.rate);
}

/**
 * The whole seconds a call is billed for: started seconds (1 ms tolerance for timer jitter),
 * never more than its limit, so a call ended by its timer pays exactly what was reserved.
 */
export function billedDuration(elapsed: number, limit: number | undefined): number {
  const whole = elapsed <= 0 ? 0 : Math.ceil(elapsed - 0.001);
  return limit === undefined ? whole : Math.min(whole, limit);
}

/** A call's limit from its duration rule and its credit, and which of the two ends it. */
export function limitOf(maxDuration: number | undefined, creditSeconds: number | undefined): { limit: number | undefined; limitBy: 'limit' | 'credit' | undefined } {
  if (creditSeconds === undefined) return { limit: maxDuration, limitBy: maxDuration === undefined ? undefined : 'limit' };
  if (maxDuration !== undefined && maxDuration <= creditSeconds) return { limit: maxDuration, limitBy: 'limit' };
  return { limit: creditSeconds, limitBy: 'credit' };
}

/**
 * Re-spreads an account's balance over its live prepaid calls (callcontrol's rule, in money):
 * what is left after what each call has spent so far is split evenly, each call's reservation
 * is what it spent plus its part, and its time is what that pays for. The reservations never sum
 * to more than the balance, so parallel calls together can never spend more than it holds.
 */
export function spread(balance: number, calls: readonly Call[], now: number): Map<string, Share> {
  const shares = new Map<string, Share>();
  const prepaid = calls.filter((c) => c.rate !== undefined);
  if (prepaid.length === 0) return shares;
  const spent = prepaid.map((c) => spentSoFar(c, now));
  const left = Math.max(0, balance - spent.reduce((a, b) => a + b, 0));
  const part = Math.floor(left / prepaid.length);
  let extra = left - part * prepaid.length; // the remainder goes to the oldest calls, a unit each
  prepaid.forEach((c, i) => {
    const reserved = spent[i]! + part + (extra > 0 ? 1 : 0);
    if (extra > 0) extra--;
    shares.set(c.callId, { reserved, seconds: affordableSeconds(reserved, c.rate!, c.maxDuration ?? Number.MAX_SAFE_INTEGER) });
  });
  return shares;
}
