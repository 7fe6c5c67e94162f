import type { Call } from './types.js';

/**
 * The calls call control counts: every admitted call from admission to its end, keyed by Call-ID
 * (a set, not a counter: a retransmitted INVITE, a repeated init, a double BYE or a stop for a
 * call already ended can never make a count drift), indexed by account.
 */
export class CallTable {
  private readonly calls = new Map<string, Call>();
  private readonly byAccount = new Map<string, Set<string>>();
  /** Call-IDs ended lately, so a late stop or a second end is answered without a second debit. */
  private readonly ended = new Map<string, number>();

  constructor(private readonly rememberEnded = 20_000) {}

  get(callId: string): Call | undefined {
    return this.calls.get(callId);
  }

  put(call: Call): void {
    const old = this.calls.get(call.callId);
    if (old && old.account !== call.account) this.byAccount.get(old.account)?.delete(call.callId);
    this.calls.set(call.callId, call);
    let set = this.byAccount.get(call.account);
    if (!set) this.byAccount.set(call.account, (set = new Set()));
    set.add(call.callId);
  }

  remove(callId: string, now: number): Call | undefined {
    const call = this.calls.get(callId);
    if (!call) return undefined;
    this.calls.delete(callId);
    const set = this.byAccount.get(call.account);
    set?.delete(callId);
    if (set?.size === 0) this.byAccount.delete(call.account);
    this.ended.set(callId, now);
    if (this.ended.size > this.rememberEnded) this.ended.delete(this.ended.keys().next().value!);
    return call;
  }

  wasEnded(callId: string): boolean {
    return this.ended.has(callId);
  }

  /** The account's calls, oldest admission first. */
  ofAccount(account: string): Call[] {
    const ids = this.byAccount.get(account);
    return ids ? [...ids].map((id) => this.calls.get(id)!).sort((a, b) => a.createdAt - b.createdAt || a.callId.localeCompare(b.callId)) : [];
  }

  countOf(account: string): number {
    return this.byAccount.get(account)?.size ?? 0;
  }

  all(): Call[] {
    return [...this.calls.values()];
  }

  get size(): number {
    return this.calls.size;
  }
}
