import type { Rate } from './rating.js';

/**
 * Call control's domain. An account is `user@domain`; its limits apply to the calls billed to it.
 * Money is integer minor units; times are seconds since the epoch; durations whole seconds.
 */
export interface Account {
  readonly id: string;
  /** Parallel calls allowed (counted from admission); undefined: no limit. */
  readonly maxCalls: number | undefined;
  /** Longest call from answer, seconds; undefined: no limit. */
  readonly maxDuration: number | undefined;
  readonly prepaid: boolean;
  readonly balance: number;
  /** The rate plan its prepaid calls are rated by. */
  readonly plan: string;
}

export type BlacklistKind = 'caller' | 'callee_prefix' | 'source_ip';
export interface BlacklistEntry {
  readonly kind: BlacklistKind;
  readonly value: string;
  readonly note: string;
}

/** Where a call came in: the stock call_control module's socket, or the link (cc-routes.cfg). */
export type Door = 'socket' | 'link';

export type EndCause = 'caller' | 'callee' | 'normal' | 'limit' | 'credit' | 'admin' | 'stale' | 'failed';

export interface Call {
  readonly callId: string;
  readonly fromTag: string;
  readonly toTag: string;
  readonly account: string;
  readonly from: string;
  readonly to: string;
  readonly sourceIp: string;
  readonly door: Door;
  /** The proxy (PROXY_ID) whose link admitted the call: commands about it go there. */
  readonly proxy?: string | undefined;
  readonly state: 'setup' | 'active';
  /** Admission time. */
  readonly createdAt: number;
  readonly connectedAt: number | undefined;
  /** Kamailio's dialog ids, from the answer. */
  readonly dialog: { readonly hEntry: number; readonly hId: number } | undefined;
  /** Parallel-call limit that applied at admission (account's or the call's own). */
  readonly maxCalls: number | undefined;
  /** The duration rule: the lowest of the account's, the call's and the service's caps. */
  readonly maxDuration: number | undefined;
  /** Longest duration from answer (the duration rule and the credit, whichever is lower); undefined: none. */
  readonly limit: number | undefined;
  /** Why the limit ends the call: the duration rule or the credit. */
  readonly limitBy: 'limit' | 'credit' | undefined;
  /** Prepaid: the rate and what is reserved for the call. */
  readonly rate: Rate | undefined;
  readonly reserved: number;
  /**
   * The last moment Kamailio was known to hold the call (its answer, or a reconcile that found
   * it): a call found gone is billed up to here. Undefined: only its admission is known.
   */
  readonly seenAt?: number | undefined;
  /**
   * The service has asked Kamailio to end the call (its limit, its credit, the operator, a setup
   * never answered) and waits to hear that it ended: the call stays counted until then, and is
   * billed as `cause` says. `tries` counts the attempts that failed.
   */
  readonly ending?: { readonly cause: EndCause; readonly since: number; readonly tries: number } | undefined;
}

/**
 * The outcome of admission, in the order the rules run: billing party, a Call-ID not already
 * counted, blacklist, known account, parallel calls, credit, duration. `bad-request` (the call
 * cannot be accounted for) and `duplicate` (its Call-ID belongs to a counted call) are refusals.
 */
export type AdmissionResult = 'admitted' | 'untracked' | 'blacklisted' | 'limit' | 'no-credit' | 'no-rate' | 'bad-request' | 'duplicate';

export interface Decision {
  readonly result: AdmissionResult;
  readonly account: string | undefined;
  /** Seconds the call may last from answer, when limited. */
  readonly limit: number | undefined;
  readonly maxCalls: number | undefined;
  /** What failed, for the log line. */
  readonly detail: string;
}

/** One finished call, as written when it ends (CDR). */
export interface Cdr {
  readonly callId: string;
  readonly account: string;
  readonly from: string;
  readonly to: string;
  readonly sourceIp: string;
  /** Milliseconds since the epoch. */
  readonly startMs: number;
  readonly connectMs: number | undefined;
  readonly endMs: number;
  readonly setupSeconds: number;
  /**
   * The seconds billed from answer to end: whole seconds started (1 ms tolerance: see
   * billedDuration), never past the call's limit. The pulses apply to these.
   */
  readonly durationSeconds: number;
  /** The exact time from answer to end, milliseconds (informational); undefined in CDRs stored before it was kept. */
  readonly durationMs: number | undefined;
  readonly billableSeconds: number;
  readonly connectFee: number;
  readonly amount: number;
  readonly ratePrefix: string | undefined;
  readonly cause: EndCause;
  /** The final reply code of a failed call. */
  readonly code: number | undefined;
}

/** A change of the balance, for the history (credit > 0, debit < 0). */
export interface BalanceChange {
  readonly account: string;
  readonly at: number;
  readonly amount: number;
  readonly balance: number;
  readonly note: string;
  readonly who: string;
}

/** The rows an operation changed; undefined value: the row goes. */
export type CcWrite =
  | { readonly kind: 'account'; readonly id: string; readonly value: Account | undefined }
  | { readonly kind: 'call'; readonly callId: string; readonly value: Call | undefined }
  | { readonly kind: 'rate'; readonly plan: string; readonly prefix: string; readonly value: Rate | undefined }
  | { readonly kind: 'rates'; readonly plan: string; readonly rates: readonly Rate[] }
  | { readonly kind: 'blacklist'; readonly entry: Pick<BlacklistEntry, 'kind' | 'value'>; readonly value: BlacklistEntry | undefined }
  | { readonly kind: 'cdr'; readonly cdr: Cdr }
  | { readonly kind: 'balance'; readonly change: BalanceChange };
