/**
 * Tariffs, pure: longest-prefix destination lookup and pulse billing. Money is integer minor
 * units (cents, or whatever unit the operator chose); durations are whole seconds.
 *
 * Pulses a/b (60/60, 30/6, 1/1): a call that lasted at all pays the first a seconds, then b-second
 * steps; cost = connect fee + billable seconds × price per minute / 60, rounded up to a minor unit.
 */
export interface Rate {
  readonly plan: string;
  readonly prefix: string;
  readonly connectFee: number;
  readonly pricePerMinute: number;
  readonly initialPulse: number;
  readonly nextPulse: number;
}

/** The seconds billed for a call of `duration` seconds (0 for an unanswered or 0 s call). */
export function billableSeconds(duration: number, rate: Pick<Rate, 'initialPulse' | 'nextPulse'>): number {
  if (!(duration > 0)) return 0;
  if (duration <= rate.initialPulse) return rate.initialPulse;
  return rate.initialPulse + Math.ceil((duration - rate.initialPulse) / rate.nextPulse) * rate.nextPulse;
}

/** What a call of `duration` seconds costs (nothing if it lasted 0 s: it never connected). */
export function callCost(duration: number, rate: Rate): number {
  const billable = billableSeconds(duration, rate);
  if (billable === 0) return 0;
  return rate.connectFee + Math.ceil((billable * rate.pricePerMinute) / 60);
}

/**
 * The longest call `budget` pays for, in seconds: the end of the last whole pulse it covers (0
 * when it does not cover the connect fee and the first pulse). A free destination is limited
 * by `cap` only.
 */
export function affordableSeconds(budget: number, rate: Rate, cap: number): number {
  const money = budget - rate.connectFee;
  if (money < 0) return 0;
  if (rate.pricePerMinute === 0) return cap;
  const costOf = (seconds: number): number => Math.ceil((seconds * rate.pricePerMinute) / 60);
  if (costOf(rate.initialPulse) > money) return 0;
  // The largest k with costOf(initial + k × next) <= money; the ceiling makes it a search.
  let k = Math.max(0, Math.floor(((money * 60) / rate.pricePerMinute - rate.initialPulse) / rate.nextPulse));
  while (k > 0 && costOf(rate.initialPulse + k * rate.nextPulse) > money) k--;
  while (costOf(rate.initialPulse + (k + 1) * rate.nextPulse) <= money && rate.initialPulse + (k + 1) * rate.nextPulse <= cap) k++;
  return Math.min(cap, rate.initialPulse + k * rate.nextPulse);
}

/** The number a rate is looked up by: the R-URI's user part, without a leading '+'. */
export const destinationOf = (ruriUser: string): string => ruriUser.replace(/^\+/, '');

/** One plan's rates, found by the longest prefix of a destination. */
export class RateTable {
  private readonly byPrefix = new Map<string, Rate>();
  private longest = 0;

  constructor(rates: readonly Rate[] = []) {
    for (const r of rates) this.set(r);
  }

  set(rate: Rate): void {
    this.byPrefix.set(rate.prefix, rate);
    this.longest = Math.max(this.longest, rate.prefix.length);
  }

  delete(prefix: string): boolean {
    return this.byPrefix.delete(prefix);
  }

  /** The rate of the longest prefix of `destination`; the empty prefix, if set, matches anything. */
  find(destination: string): Rate | undefined {
    for (let n = Math.min(destination.length, this.longest); n >= 0; n--) {
      const r = this.byPrefix.get(destination.slice(0, n));
      if (r) return r;
    }
    return undefined;
  }

  all(): Rate[] {
    return [...this.byPrefix.values()].sort((a, b) => a.prefix.localeCompare(b.prefix));
  }

  get size(): number {
    return this.byPrefix.size;
  }
}
