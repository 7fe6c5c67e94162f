import type { Effects, KamailioCommand, TimerEffect } from '../effects.js';
import { normalizeAccount, patchAccount, type AccountPatch } from './accounts.js';
import { admit as decide, type AdmitRequest } from './admission.js';
import { CallTable } from './calls.js';
import { ccConfigSchema, replyOf, type CcConfig } from './config.js';
import { billedDuration, limitOf, spread } from './credit.js';
import { billableSeconds, callCost, RateTable, type Rate } from './rating.js';
import type { Account, AdmissionResult, BlacklistEntry, BlacklistKind, Call, Cdr, CcWrite, Decision, EndCause } from './types.js';

export type CcEffects = Effects<CcWrite>;
export type WithEffects<T> = T & CcEffects;
export type CcResult<T> = WithEffects<{ ok: true; value: T }> | { ok: false; code: number; message: string };

/** Everything the store keeps, as loaded at start. */
export interface CcSnapshot {
  readonly accounts: readonly Account[];
  readonly rates: readonly Rate[];
  readonly blacklist: readonly BlacklistEntry[];
  readonly calls: readonly Call[];
}

/** A call as the commands and the live view show it. */
export interface CallView {
  call_id: string;
  account: string;
  from: string;
  to: string;
  state: 'setup' | 'active';
  since: number;
  connected: number | undefined;
  limit: number | undefined;
  time_left: number | undefined;
  reserved: number;
  door: string;
  /** Why the service is ending the call (it stays counted until Kamailio reports the end). */
  ending: EndCause | null;
}

const setupKey = (callId: string): string => `setup:${callId}`;
const endKey = (callId: string): string => `end:${callId}`;
const retryKey = (callId: string): string => `retry:${callId}`;
const verifyKey = (callId: string): string => `verify:${callId}`;

/** What Kamailio said when it was asked to end a call (dialog-rpc's outcomes). */
export type EndOutcome = 'ended' | 'cancelled' | 'not-found' | 'failed';
/** Kamailio's report of an end comes within this; after it the call is asked for again. */
const VERIFY_AFTER = 10;
/** A failed attempt to end a call is retried after 2, 4, 8 ... up to this many seconds. */
const MAX_RETRY = 30;
/** A call still counted this long after the service asked to end it is overrunning. */
export const OVERRUN_AFTER = 5;
/** A balance, and any amount, stays within this (well inside 2^53: sums stay exact). */
export const MAX_MONEY = 1e15;

/** What Kamailio knows of a call when asked (dlg.dlg_list). */
export interface KamailioDialog {
  readonly state: 'ringing' | 'answered';
  /** Seconds since the epoch at the answer (0 or less: not answered). */
  readonly startTs: number;
  readonly hEntry: number;
  readonly hId: number;
}

/**
 * The call-control engine: admissions, answers, ends and timers in, effects out (the decision,
 * rows to write, timers to arm, commands that end calls through Kamailio). Pure: no I/O, no
 * clock (every operation takes `now`, seconds), no globals. One instance serves both doors.
 */
export class CcEngine {
  readonly config: CcConfig;
  private readonly accounts = new Map<string, Account>();
  private readonly plans = new Map<string, RateTable>();
  private readonly blacklist = new Map<BlacklistKind, Map<string, BlacklistEntry>>();
  private readonly calls = new CallTable();
  /** Running totals the service exports as metrics. */
  readonly stats = {
    decisions: {} as Partial<Record<AdmissionResult, number>>,
    ended: {} as Partial<Record<EndCause, number>>,
  };

  constructor(config: Partial<CcConfig> = {}) {
    this.config = ccConfigSchema.parse(config);
  }

  // ---- the call's life -------------------------------------------------------------------------

  /**
   * A new call (init / the INVITE): admitted and counted, or refused. Kamailio absorbs
   * retransmissions, so a second admission of a counted Call-ID is another INVITE: refused,
   * because the end of either would end the other's accounting.
   */
  admit(req: AdmitRequest, now: number): WithEffects<{ decision: Decision }> {
    const out = decide({ config: this.config, accounts: this.accounts, plans: this.plans, blacklist: this.blacklist, calls: this.calls }, req, now);
    this.count('decisions', out.decision.result);
    if (!out.call) return this.done({ decision: out.decision });
    const e = this.collect();
    this.calls.put(out.call);
    e.writes.push({ kind: 'call', callId: out.call.callId, value: out.call });
    e.timers.push({ key: setupKey(out.call.callId), at: now + this.config.cc_setup_timeout });
    if (out.shares) this.applyShares(out.call.account, out.shares, now, e, out.call.callId);
    return this.done({ decision: out.decision }, e);
  }

  /**
   * A new call whose request a door could not read (a field missing, malformed or beyond what
   * can be stored): it cannot be accounted for, so it is refused, and counted as such.
   */
  unreadable(detail: string): Decision {
    this.count('decisions', 'bad-request');
    return { result: 'bad-request', account: undefined, limit: undefined, maxCalls: undefined, detail };
  }

  /** The call was answered (start / dialog:start): its time runs from now. A repeat changes nothing. */
  answered(req: { callId: string; fromTag?: string; hEntry?: number; hId?: number; toTag?: string; at?: number }, now: number): WithEffects<{ found: boolean }> {
    const call = this.calls.get(req.callId);
    if (!call || (req.fromTag !== undefined && req.fromTag !== call.fromTag)) return this.done({ found: false });
    if (call.state === 'active') return this.done({ found: true });
    // `at`: when the answer happened, for a report that arrived late (kept through a failover);
    // never before the call's admission nor after now.
    if (req.at !== undefined) now = Math.min(now, Math.max(call.createdAt, req.at));
    const e = this.collect();
    const dialog = req.hEntry !== undefined && req.hId !== undefined ? { hEntry: req.hEntry, hId: req.hId } : call.dialog;
    const active: Call = { ...call, state: 'active', connectedAt: now, seenAt: now, dialog, toTag: req.toTag ?? call.toTag };
    this.calls.put(active);
    e.timers.push({ key: setupKey(call.callId), at: undefined });
    e.writes.push({ kind: 'call', callId: call.callId, value: active });
    if (active.rate) this.respread(active.account, now, e);
    this.armEnd(this.calls.get(call.callId) ?? active, e);
    return this.done({ found: true }, e);
  }

  /**
   * The call ended (stop / dialog:end / dialog:failed): debited once, written as a CDR, no longer
   * counted. A call the service was ending keeps the cause it was ended for. `fromTag`, when the
   * door gives it, must be the counted call's: another dialog's end never ends this one. A
   * second end is answered as found, alone.
   */
  ended(req: { callId: string; fromTag?: string; cause: EndCause; code?: number; at?: number }, now: number): WithEffects<{ found: boolean; cdr?: Cdr }> {
    const call = this.calls.get(req.callId);
    if (!call) return this.done({ found: this.calls.wasEnded(req.callId) });
    if (req.fromTag !== undefined && req.fromTag !== call.fromTag) return this.done({ found: false });
    const e = this.collect();
    // A report that arrived late (kept through a failover) is billed to when the call ended, as a
    // reconcile bills a call found gone: never before its answer, never after now.
    const endedAt = req.at === undefined ? now : Math.min(now, Math.max(call.connectedAt ?? call.createdAt, req.at));
    const cdr = this.finish(call, call.ending?.cause ?? req.cause, req.code, endedAt, e);
    if (call.rate) this.respread(call.account, now, e);
    return this.done({ found: true, cdr }, e);
  }

  /**
   * A timer the engine armed has fired. A setup never answered is looked up at Kamailio first (its
   * `start` may have been lost: see reconcile); a call at its limit is ended through Kamailio and
   * stays counted until Kamailio reports the end; an end that failed or was not reported is asked
   * for again.
   */
  timerFired(key: string, now: number): CcEffects {
    const [kind, callId] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
    const call = this.calls.get(callId);
    if (!call) return this.done({});
    const e = this.collect();
    if (kind === 'setup' && call.state === 'setup' && !call.ending) e.commands.push({ kind: 'check-call', callId, fromTag: call.fromTag, proxy: call.proxy });
    else if (kind === 'end' && call.state === 'active' && !call.ending) this.startEnding(call, call.limitBy ?? 'limit', now, e);
    else if ((kind === 'retry' || kind === 'verify') && call.ending) e.commands.push(this.endCommand(call));
    return this.done({}, e);
  }

  /**
   * What Kamailio answered when asked to end a call. Gone: it is finished now, billed as it was
   * ended for (never past its limit). Ended or cancelled: its end report is awaited, and asked for
   * again if it does not come. Failed: it stays counted and is tried again, later each time.
   */
  endOutcome(callId: string, outcome: EndOutcome, now: number): CcEffects {
    const call = this.calls.get(callId);
    if (!call?.ending) return this.done({});
    const e = this.collect();
    if (outcome === 'not-found') {
      this.finish(call, call.ending.cause, undefined, now, e);
      if (call.rate) this.respread(call.account, now, e);
    } else if (outcome === 'failed') {
      const tries = call.ending.tries + 1;
      const next: Call = { ...call, ending: { ...call.ending, tries } };
      this.calls.put(next);
      e.writes.push({ kind: 'call', callId, value: next });
      e.timers.push({ key: retryKey(callId), at: now + Math.min(MAX_RETRY, 2 ** tries) });
    } else {
      e.timers.push({ key: verifyKey(callId), at: now + VERIFY_AFTER });
    }
    return this.done({}, e);
  }

  /**
   * What Kamailio knows of a counted call (after a restart of either side, every minute for calls
   * older than a minute, and when a setup times out). Gone: it ended unseen, billed up to the last
   * moment it was known to be in progress (its answer, the last reconcile that found it, or
   * `lostAt`, when the service lost Kamailio, whichever is latest, never past `now` or its
   * limit). Answered meanwhile: its time runs from Kamailio's answer (within admission and now).
   * Still ringing past the setup timeout: cancelled. Found: seen now.
   */
  reconcile(callId: string, dialog: KamailioDialog | undefined, now: number, lostAt?: number): WithEffects<{ outcome: 'kept' | 'ended' | 'answered' | 'cancelled' | 'unknown' }> {
    const call = this.calls.get(callId);
    if (!call) return this.done({ outcome: 'unknown' });
    const e = this.collect();
    if (!dialog) {
      const known = Math.max(call.connectedAt ?? call.createdAt, call.seenAt ?? -Infinity, lostAt ?? -Infinity);
      const endedAt = Math.min(now, known);
      this.finish(call, call.ending?.cause ?? 'stale', undefined, endedAt, e);
      if (call.rate) this.respread(call.account, now, e);
      return this.done({ outcome: 'ended' as const }, e);
    }
    if (dialog.state === 'answered' && call.state === 'setup') {
      const at = dialog.startTs > 0 ? Math.min(now, Math.max(call.createdAt, dialog.startTs)) : now;
      const out = this.answered({ callId, hEntry: dialog.hEntry, hId: dialog.hId }, at);
      return { ...out, outcome: 'answered' as const };
    }
    if (call.state === 'setup' && !call.ending && now >= call.createdAt + this.config.cc_setup_timeout) {
      this.startEnding(call, 'stale', now, e);
      return this.done({ outcome: 'cancelled' as const }, e);
    }
    if (call.state === 'active') {
      const seen: Call = { ...call, seenAt: now };
      this.calls.put(seen);
      e.writes.push({ kind: 'call', callId, value: seen });
    }
    return this.done({ outcome: 'kept' as const }, e);
  }

  /** Puts back what the store kept and arms the timers of the calls still running. */
  restore(s: CcSnapshot): CcEffects {
    // A stored max_duration of 0 (older releases) means no limit, as it does everywhere now.
    for (const a of s.accounts) this.accounts.set(a.id, a.maxDuration === 0 ? { ...a, maxDuration: undefined } : a);
    for (const r of s.rates) this.planOf(r.plan).set(r);
    for (const b of s.blacklist) this.blacklistOf(b.kind).set(b.value, b);
    const e = this.collect();
    for (const c of s.calls) {
      this.calls.put(c);
      // A call the service was ending when it stopped: asked for again at once.
      if (c.ending) e.timers.push({ key: retryKey(c.callId), at: c.ending.since });
      else if (c.state === 'setup') e.timers.push({ key: setupKey(c.callId), at: c.createdAt + this.config.cc_setup_timeout });
      else this.armEnd(c, e);
    }
    return this.done({}, e);
  }

  // ---- operations ------------------------------------------------------------------------------

  /** Creates or changes an account; lowering its limits cancels ringing calls beyond them. */
  setAccount(id: string, patch: AccountPatch, now: number): CcResult<Account> {
    const key = normalizeAccount(id);
    if (key === undefined) return fault(`${id}: not an account (user@domain)`, -32602);
    if (patch.balance !== undefined && !(Number.isSafeInteger(patch.balance) && Math.abs(patch.balance) <= MAX_MONEY)) {
      return fault(`balance: ${patch.balance} is beyond ±${MAX_MONEY}`, -32602);
    }
    const old = this.accounts.get(key);
    const account = patchAccount(key, old, patch);
    const e = this.collect();
    this.accounts.set(key, account);
    e.writes.push({ kind: 'account', id: key, value: account });
    if (patch.balance !== undefined && patch.balance !== (old?.balance ?? 0)) {
      e.writes.push({ kind: 'balance', change: { account: key, at: now, amount: patch.balance - (old?.balance ?? 0), balance: patch.balance, note: 'set', who: '' } });
    }
    this.applyLimits(key, now, e);
    return this.okResult(account, e);
  }

  deleteAccount(id: string): CcResult<Account> {
    const key = normalizeAccount(id) ?? id;
    const account = this.accounts.get(key);
    if (!account) return fault(`no account ${id}`, 404);
    if (this.calls.countOf(key) > 0) return fault(`${key} has ${this.calls.countOf(key)} calls in progress`, 409);
    this.accounts.delete(key);
    const e = this.collect();
    e.writes.push({ kind: 'account', id: key, value: undefined });
    return this.okResult(account, e);
  }

  /** A credit (amount > 0) or a debit (< 0) with a note, kept in the history; running calls re-spread. */
  addBalance(id: string, amount: number, note: string, who: string, now: number): CcResult<Account> {
    const key = normalizeAccount(id) ?? id;
    const old = this.accounts.get(key);
    if (!old) return fault(`no account ${id}`, 404);
    if (!Number.isSafeInteger(amount) || Math.abs(old.balance + amount) > MAX_MONEY) {
      return fault(`amount: the balance would be ${old.balance + amount}, beyond ±${MAX_MONEY}`, -32602);
    }
    const account = { ...old, balance: old.balance + amount };
    this.accounts.set(key, account);
    const e = this.collect();
    e.writes.push({ kind: 'account', id: key, value: account });
    e.writes.push({ kind: 'balance', change: { account: key, at: now, amount, balance: account.balance, note, who } });
    this.applyLimits(key, now, e);
    return this.okResult(account, e);
  }

  setRate(rate: Rate): CcResult<Rate> {
    this.planOf(rate.plan).set(rate);
    const e = this.collect();
    e.writes.push({ kind: 'rate', plan: rate.plan, prefix: rate.prefix, value: rate });
    return this.okResult(rate, e);
  }

  /** Replaces a plan's whole table at once (the caller validated every row). */
  loadRates(plan: string, rates: readonly Rate[]): CcResult<{ plan: string; rates: number }> {
    this.plans.set(plan, new RateTable(rates));
    const e = this.collect();
    e.writes.push({ kind: 'rates', plan, rates });
    return this.okResult({ plan, rates: rates.length }, e);
  }

  setBlacklisted(kind: BlacklistKind, value: string, listed: boolean, note: string): CcResult<BlacklistEntry> {
    const list = this.blacklistOf(kind);
    const entry: BlacklistEntry = { kind, value, note };
    if (!listed && !list.has(value)) return fault(`${kind} ${value} is not blacklisted`, 404);
    if (listed) list.set(value, entry);
    else list.delete(value);
    const e = this.collect();
    e.writes.push({ kind: 'blacklist', entry: { kind, value }, value: listed ? entry : undefined });
    return this.okResult(entry, e);
  }

  /** The operator ends a call: BYE if answered, a final reply to the caller if ringing. */
  endCall(callId: string, now: number): CcResult<{ call_id: string }> {
    const call = this.calls.get(callId);
    if (!call) return fault(`no call ${callId}`, 404);
    const e = this.collect();
    if (!call.ending) this.startEnding(call, 'admin', now, e);
    return this.okResult({ call_id: callId }, e);
  }

  // ---- views -----------------------------------------------------------------------------------

  account(id: string): Account | undefined {
    return this.accounts.get(normalizeAccount(id) ?? id);
  }

  listAccounts(): Account[] {
    return [...this.accounts.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  rates(plan?: string): Rate[] {
    return [...this.plans.entries()].filter(([p]) => plan === undefined || p === plan).flatMap(([, t]) => t.all());
  }

  blacklisted(): BlacklistEntry[] {
    return [...this.blacklist.values()].flatMap((m) => [...m.values()]);
  }

  callsOf(account?: string): Call[] {
    const list = account === undefined ? this.calls.all() : this.calls.ofAccount(normalizeAccount(account) ?? account);
    return list.sort((a, b) => a.createdAt - b.createdAt || a.callId.localeCompare(b.callId));
  }

  viewCall(c: Call, now: number): CallView {
    const left = c.limit === undefined ? undefined : c.connectedAt === undefined ? c.limit : Math.max(0, Math.round(c.connectedAt + c.limit - now));
    return {
      call_id: c.callId, account: c.account, from: c.from, to: c.to, state: c.state, since: c.createdAt, connected: c.connectedAt,
      limit: c.limit, time_left: left, reserved: c.reserved, door: c.door, ending: c.ending?.cause ?? null,
    };
  }

  /** Money reserved by calls in progress, per account or in all. */
  reserved(account?: string): number {
    return this.callsOf(account).reduce((sum, c) => sum + c.reserved, 0);
  }

  countCalls(state?: Call['state']): number {
    return state === undefined ? this.calls.size : this.calls.all().filter((c) => c.state === state).length;
  }

  /** Calls the service asked Kamailio to end more than OVERRUN_AFTER seconds ago and that still run. */
  overrunning(now: number): number {
    return this.calls.all().filter((c) => c.ending !== undefined && now - c.ending.since >= OVERRUN_AFTER).length;
  }

  // ---- inside ----------------------------------------------------------------------------------

  private collect(): { writes: CcWrite[]; timers: TimerEffect[]; commands: KamailioCommand[] } {
    return { writes: [], timers: [], commands: [] };
  }

  private done<T extends object>(value: T, e = this.collect()): WithEffects<T> {
    return { ...value, notifies: [], writes: e.writes, commands: e.commands, timers: e.timers };
  }

  private okResult<T>(value: T, e: ReturnType<CcEngine['collect']>): CcResult<T> {
    return this.done({ ok: true as const, value }, e);
  }

  private count(what: 'decisions', key: AdmissionResult): void;
  private count(what: 'ended', key: EndCause): void;
  private count(what: 'decisions' | 'ended', key: string): void {
    const table = this.stats[what] as Record<string, number>;
    table[key] = (table[key] ?? 0) + 1;
  }

  private planOf(plan: string): RateTable {
    let t = this.plans.get(plan);
    if (!t) this.plans.set(plan, (t = new RateTable()));
    return t;
  }

  private blacklistOf(kind: BlacklistKind): Map<string, BlacklistEntry> {
    let m = this.blacklist.get(kind);
    if (!m) this.blacklist.set(kind, (m = new Map()));
    return m;
  }

  /** BYE for an answered call, the final reply (and CANCEL) for a ringing one. */
  private endCommand(call: Call): KamailioCommand {
    return call.state === 'active' && call.dialog
      ? { kind: 'end-dialog', callId: call.callId, hEntry: call.dialog.hEntry, hId: call.dialog.hId, proxy: call.proxy }
      : this.cancelCommand(call);
  }

  /** The service ends a call: it asks Kamailio, and the call stays counted until it is gone. */
  private startEnding(call: Call, cause: EndCause, now: number, e: ReturnType<CcEngine['collect']>): void {
    // A ringing call being cancelled gives back its share of the balance, and is worth nothing
    // should its callee answer before the cancel lands (it is then ended at once).
    const next: Call = { ...call, ending: { cause, since: now, tries: 0 }, ...(call.state === 'setup' ? { reserved: 0, limit: 0, limitBy: limitBy(cause) } : {}) };
    this.calls.put(next);
    e.writes.push({ kind: 'call', callId: call.callId, value: next });
    e.timers.push({ key: endKey(call.callId), at: undefined }, { key: setupKey(call.callId), at: undefined });
    e.commands.push(this.endCommand(next));
  }

  private cancelCommand(call: Call): KamailioCommand {
    return { kind: 'cancel-call', callId: call.callId, fromTag: call.fromTag, ...replyOf(this.config.cc_reply_cancelled), proxy: call.proxy };
  }

  private armEnd(call: Call, e: { timers: TimerEffect[] }): void {
    if (call.state === 'active' && call.connectedAt !== undefined && !call.ending) {
      e.timers.push({ key: endKey(call.callId), at: call.limit === undefined ? undefined : call.connectedAt + call.limit });
    }
  }

  /** Debits, writes the CDR, forgets the call (its timers too). */
  private finish(call: Call, cause: EndCause, code: number | undefined, now: number, e: ReturnType<CcEngine['collect']>): Cdr {
    this.calls.remove(call.callId, now);
    this.count('ended', cause);
    const duration = call.connectedAt === undefined ? 0 : billedDuration(now - call.connectedAt, call.limit);
    let amount = call.rate ? callCost(duration, call.rate) : 0;
    const account = this.accounts.get(call.account);
    if (account && amount > 0) {
      amount = Math.min(amount, Math.max(0, account.balance)); // a balance never goes below zero
      const after = { ...account, balance: account.balance - amount };
      this.accounts.set(account.id, after);
      e.writes.push({ kind: 'account', id: account.id, value: after });
      e.writes.push({ kind: 'balance', change: { account: account.id, at: now, amount: -amount, balance: after.balance, note: `call ${call.callId}`, who: 'call' } });
    }
    const connectMs = call.connectedAt === undefined ? undefined : Math.round(call.connectedAt * 1000);
    const endMs = Math.round(now * 1000);
    const cdr: Cdr = {
      callId: call.callId, account: call.account, from: call.from, to: call.to, sourceIp: call.sourceIp,
      startMs: Math.round(call.createdAt * 1000), connectMs, endMs,
      // The billed seconds round up (a 35 ms call is 1 s); the exact time is kept beside them.
      setupSeconds: Math.max(0, (call.connectedAt ?? now) - call.createdAt), durationSeconds: duration, durationMs: connectMs === undefined ? 0 : Math.max(0, endMs - connectMs),
      billableSeconds: call.rate ? billableSeconds(duration, call.rate) : duration,
      connectFee: call.rate && duration > 0 ? call.rate.connectFee : 0, amount, ratePrefix: call.rate?.prefix, cause, code,
    };
    e.writes.push({ kind: 'call', callId: call.callId, value: undefined }, { kind: 'cdr', cdr });
    for (const key of [setupKey, endKey, retryKey, verifyKey]) e.timers.push({ key: key(call.callId), at: undefined });
    return cdr;
  }

  /** Re-spreads an account's balance over its prepaid calls; a ringing call left with nothing is cancelled. */
  private respread(accountId: string, now: number, e: ReturnType<CcEngine['collect']>): void {
    const account = this.accounts.get(accountId);
    if (!account) return;
    // Ringing calls being cancelled have given their share back.
    const sharing = this.calls.ofAccount(accountId).filter((c) => !(c.ending && c.state === 'setup'));
    this.applyShares(accountId, spread(account.balance, sharing, now), now, e);
  }

  private applyShares(accountId: string, shares: ReturnType<typeof spread>, now: number, e: ReturnType<CcEngine['collect']>, admitted?: string): void {
    for (const call of this.calls.ofAccount(accountId)) {
      const share = shares.get(call.callId);
      if (!share) continue;
      if (share.seconds === 0 && call.state === 'setup' && call.callId !== admitted) {
        if (!call.ending) this.startEnding(call, 'credit', now, e);
        continue;
      }
      const { limit, limitBy } = limitOf(call.maxDuration, share.seconds);
      if (limit === call.limit && share.reserved === call.reserved && call.callId !== admitted) continue;
      const next = { ...call, limit, limitBy, reserved: share.reserved };
      this.calls.put(next);
      e.writes.push({ kind: 'call', callId: call.callId, value: next });
      this.armEnd(next, e);
    }
  }

  /**
   * After an account changed: ringing calls beyond a lowered parallel limit are cancelled (the
   * newest first), running calls get their new duration and credit.
   */
  private applyLimits(accountId: string, now: number, e: ReturnType<CcEngine['collect']>): void {
    const account = this.accounts.get(accountId)!;
    const calls = this.calls.ofAccount(accountId);
    if (account.maxCalls !== undefined) {
      // Calls already being ended are on their way out: only the others count against the limit.
      let over = calls.filter((c) => !c.ending).length - account.maxCalls;
      for (const c of [...calls].reverse()) {
        if (over <= 0) break;
        if (c.state !== 'setup' || c.ending) continue;
        this.startEnding(c, 'limit', now, e);
        over--;
      }
    }
    for (const c of this.calls.ofAccount(accountId)) {
      const maxDuration = account.maxDuration === undefined ? c.maxDuration : Math.min(account.maxDuration, c.maxDuration ?? Infinity);
      if (maxDuration !== c.maxDuration) {
        const next = { ...c, maxDuration, ...(c.rate ? {} : limitOf(maxDuration, undefined)) };
        this.calls.put(next);
        e.writes.push({ kind: 'call', callId: c.callId, value: next });
        if (!c.rate) this.armEnd(next, e);
      }
    }
    if (account.prepaid) this.respread(accountId, now, e);
  }
}

const limitBy = (cause: EndCause): Call['limitBy'] => (cause === 'credit' ? 'credit' : 'limit');

const fault = (message: string, code: number): { ok: false; code: number; message: string } => ({ ok: false, code, message });
