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
}

const setupKey = (callId: string): string => `setup:${callId}`;
const endKey = (callId: string): string => `end:${callId}`;

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

  /** A new call (init / the INVITE): admitted and counted, or refused; a repeat is answered alike. */
  admit(req: AdmitRequest, now: number): WithEffects<{ decision: Decision }> {
    const known = this.calls.get(req.callId);
    if (known) {
      // A retransmission or a repeated init: the call is counted once, answered the same.
      return this.done({ decision: { result: 'admitted', account: known.account, limit: known.limit, maxCalls: known.maxCalls, detail: 'repeated' } });
    }
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

  /** The call was answered (start / dialog:start): its time runs from now. A repeat changes nothing. */
  answered(req: { callId: string; hEntry?: number; hId?: number; toTag?: string }, now: number): WithEffects<{ found: boolean }> {
    const call = this.calls.get(req.callId);
    if (!call) return this.done({ found: false });
    if (call.state === 'active') return this.done({ found: true });
    const e = this.collect();
    const dialog = req.hEntry !== undefined && req.hId !== undefined ? { hEntry: req.hEntry, hId: req.hId } : call.dialog;
    const active: Call = { ...call, state: 'active', connectedAt: now, dialog, toTag: req.toTag ?? call.toTag };
    this.calls.put(active);
    e.timers.push({ key: setupKey(call.callId), at: undefined });
    e.writes.push({ kind: 'call', callId: call.callId, value: active });
    if (active.rate) this.respread(active.account, now, e);
    this.armEnd(this.calls.get(call.callId) ?? active, e);
    return this.done({ found: true }, e);
  }

  /**
   * The call ended (stop / dialog:end / dialog:failed), or the service ends it (timer, operator):
   * debited once, written as a CDR, no longer counted. A second end is answered as found, alone.
   */
  ended(req: { callId: string; cause: EndCause; code?: number }, now: number): WithEffects<{ found: boolean; cdr?: Cdr }> {
    const call = this.calls.get(req.callId);
    if (!call) return this.done({ found: this.calls.wasEnded(req.callId) });
    const e = this.collect();
    const cdr = this.finish(call, req.cause, req.code, now, e);
    if (call.rate) this.respread(call.account, now, e);
    return this.done({ found: true, cdr }, e);
  }

  /** A timer the engine armed has fired: a setup never answered, or a call at its limit. */
  timerFired(key: string, now: number): CcEffects {
    const [kind, callId] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
    const call = this.calls.get(callId);
    if (!call) return this.done({});
    const e = this.collect();
    if (kind === 'setup' && call.state === 'setup') {
      e.commands.push(this.cancelCommand(call));
      this.finish(call, 'stale', undefined, now, e);
    } else if (kind === 'end' && call.state === 'active') {
      e.commands.push(this.endCommand(call));
      this.finish(call, call.limitBy ?? 'limit', undefined, now, e);
    } else return this.done({});
    if (call.rate) this.respread(call.account, now, e);
    return this.done({}, e);
  }

  /**
   * After a restart: what Kamailio knows of a stored call. Gone: it ended while the service was
   * away (billed up to now, within its limit). Answered meanwhile: its time runs from the answer.
   */
  reconcile(callId: string, dialog: { state: 'ringing' | 'answered'; startTs: number; hEntry: number; hId: number } | undefined, now: number): WithEffects<{ outcome: 'kept' | 'ended' | 'answered' | 'unknown' }> {
    const call = this.calls.get(callId);
    if (!call) return this.done({ outcome: 'unknown' });
    if (!dialog) return { ...this.ended({ callId, cause: 'stale' }, now), outcome: 'ended' };
    if (dialog.state === 'answered' && call.state === 'setup') {
      return { ...this.answered({ callId, hEntry: dialog.hEntry, hId: dialog.hId }, dialog.startTs > 0 ? dialog.startTs : now), outcome: 'answered' };
    }
    return this.done({ outcome: 'kept' });
  }

  /** Puts back what the store kept and arms the timers of the calls still running. */
  restore(s: CcSnapshot): CcEffects {
    for (const a of s.accounts) this.accounts.set(a.id, a);
    for (const r of s.rates) this.planOf(r.plan).set(r);
    for (const b of s.blacklist) this.blacklistOf(b.kind).set(b.value, b);
    const e = this.collect();
    for (const c of s.calls) {
      this.calls.put(c);
      if (c.state === 'setup') e.timers.push({ key: setupKey(c.callId), at: c.createdAt + this.config.cc_setup_timeout });
      else this.armEnd(c, e);
    }
    return this.done({}, e);
  }

  // ---- operations ------------------------------------------------------------------------------

  /** Creates or changes an account; lowering its limits cancels ringing calls beyond them. */
  setAccount(id: string, patch: AccountPatch, now: number): CcResult<Account> {
    const key = normalizeAccount(id);
    if (key === undefined) return fault(`${id}: not an account (user@domain)`, -32602);
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
    e.commands.push(call.state === 'active' ? this.endCommand(call) : this.cancelCommand(call));
    this.finish(call, 'admin', undefined, now, e);
    if (call.rate) this.respread(call.account, now, e);
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
      limit: c.limit, time_left: left, reserved: c.reserved, door: c.door,
    };
  }

  /** Money reserved by calls in progress, per account or in all. */
  reserved(account?: string): number {
    return this.callsOf(account).reduce((sum, c) => sum + c.reserved, 0);
  }

  countCalls(state?: Call['state']): number {
    return state === undefined ? this.calls.size : this.calls.all().filter((c) => c.state === state).length;
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

  private endCommand(call: Call): KamailioCommand {
    return call.dialog
      ? { kind: 'end-dialog', callId: call.callId, hEntry: call.dialog.hEntry, hId: call.dialog.hId }
      : this.cancelCommand(call);
  }

  private cancelCommand(call: Call): KamailioCommand {
    return { kind: 'cancel-call', callId: call.callId, fromTag: call.fromTag, ...replyOf(this.config.cc_reply_cancelled) };
  }

  private armEnd(call: Call, e: { timers: TimerEffect[] }): void {
    if (call.state === 'active' && call.connectedAt !== undefined) {
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
    const cdr: Cdr = {
      callId: call.callId, account: call.account, from: call.from, to: call.to, sourceIp: call.sourceIp,
      startMs: Math.round(call.createdAt * 1000), connectMs: call.connectedAt === undefined ? undefined : Math.round(call.connectedAt * 1000),
      endMs: Math.round(now * 1000),
      setupSeconds: Math.max(0, (call.connectedAt ?? now) - call.createdAt), durationSeconds: duration,
      billableSeconds: call.rate ? billableSeconds(duration, call.rate) : duration,
      connectFee: call.rate && duration > 0 ? call.rate.connectFee : 0, amount, ratePrefix: call.rate?.prefix, cause, code,
    };
    e.writes.push({ kind: 'call', callId: call.callId, value: undefined }, { kind: 'cdr', cdr });
    e.timers.push({ key: setupKey(call.callId), at: undefined }, { key: endKey(call.callId), at: undefined });
    return cdr;
  }

  /** Re-spreads an account's balance over its prepaid calls; a ringing call left with nothing is cancelled. */
  private respread(accountId: string, now: number, e: ReturnType<CcEngine['collect']>): void {
    const account = this.accounts.get(accountId);
    if (!account) return;
    this.applyShares(accountId, spread(account.balance, this.calls.ofAccount(accountId), now), now, e);
  }

  private applyShares(accountId: string, shares: ReturnType<typeof spread>, now: number, e: ReturnType<CcEngine['collect']>, admitted?: string): void {
    for (const call of this.calls.ofAccount(accountId)) {
      const share = shares.get(call.callId);
      if (!share) continue;
      if (share.seconds === 0 && call.state === 'setup' && call.callId !== admitted) {
        e.commands.push(this.cancelCommand(call));
        this.finish(call, 'credit', undefined, now, e);
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
      let over = calls.length - account.maxCalls;
      for (const c of [...calls].reverse()) {
        if (over <= 0) break;
        if (c.state !== 'setup') continue;
        e.commands.push(this.cancelCommand(c));
        this.finish(c, 'limit', undefined, now, e);
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

const fault = (message: string, code: number): { ok: false; code: number; message: string } => ({ ok: false, code, message });
