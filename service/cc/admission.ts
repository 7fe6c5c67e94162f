import { parseNameAddr } from '../sip/name-addr.js';
import { billingParty, normalizeAccount } from './accounts.js';
import type { CallTable } from './calls.js';
import type { CcConfig } from './config.js';
import { limitOf, spread, type Share } from './credit.js';
import { destinationOf, type Rate, type RateTable } from './rating.js';
import type { Account, AdmissionResult, BlacklistEntry, BlacklistKind, Call, Decision, Door } from './types.js';

/** A new call as a door reports it. Per-call values (the link door's script) override the account's. */
export interface AdmitRequest {
  readonly callId: string;
  readonly fromTag: string;
  /** The From header (display name and tag allowed) or its URI. */
  readonly from: string;
  readonly ruri: string;
  readonly diverter: string | undefined;
  readonly sourceIp: string;
  readonly door: Door;
  /** The proxy (PROXY_ID) that asked, on the link door. */
  readonly proxy?: string | undefined;
  /** Who pays, when the script says so (else the diverter, else From). */
  readonly account?: string | undefined;
  readonly maxCalls?: number | undefined;
  readonly maxDuration?: number | undefined;
}

export interface AdmissionState {
  readonly config: CcConfig;
  readonly accounts: ReadonlyMap<string, Account>;
  readonly plans: ReadonlyMap<string, RateTable>;
  readonly blacklist: ReadonlyMap<BlacklistKind, ReadonlyMap<string, BlacklistEntry>>;
  readonly calls: CallTable;
}

export interface Admission {
  readonly decision: Decision;
  /** The call to count, when admitted. */
  readonly call?: Call;
  /** The account's prepaid calls' new shares, the new call's included. */
  readonly shares?: Map<string, Share>;
}

const refuse = (result: AdmissionResult, account: string | undefined, detail: string, maxCalls?: number): Admission =>
  ({ decision: { result, account, limit: undefined, maxCalls, detail } });

const userOf = (ruri: string): string => /^[a-z]+:([^@;?>]+)@/i.exec(ruri.trim())?.[1] ?? /^tel:([^;?]+)/i.exec(ruri.trim())?.[1] ?? '';
const lowest = (...xs: Array<number | undefined>): number | undefined => {
  const set = xs.filter((x): x is number => x !== undefined);
  return set.length === 0 ? undefined : Math.min(...set);
};

/** A duration of 0 means no limit, wherever it is given (account, script, header, setting). */
const duration = (x: number | undefined): number | undefined => (x === undefined || x <= 0 ? undefined : x);

/**
 * Admission, one rule after the other, each with its own result: a billing party (else the call
 * cannot be accounted for), a Call-ID no counted call has (a `stop` names only the Call-ID, so
 * two calls must never share one), blacklist (caller, callee prefix, source IP: for every call,
 * known account or not), a known account (or per-call values), parallel calls (counted from
 * admission), credit (prepaid: a rate for the destination and a share of the balance worth at
 * least the connect fee and first pulse), duration (the account's, the call's and the service's
 * caps, whichever is lowest).
 */
export function admit(s: AdmissionState, req: AdmitRequest, now: number): Admission {
  const accountId = req.account !== undefined ? normalizeAccount(req.account) : billingParty(req.from, req.diverter);
  if (accountId === undefined) {
    return refuse('bad-request', undefined, req.account !== undefined ? `account "${req.account.slice(0, 80)}" is not user@domain` : 'no billing party (diverter, From user@domain or account)');
  }
  const counted = s.calls.get(req.callId);
  if (counted) {
    const same = counted.fromTag === req.fromTag ? 'the same From-tag' : 'another From-tag';
    return refuse('duplicate', accountId, `Call-ID already counted for ${counted.account} (${same}); call control runs once per call`);
  }
  const callee = destinationOf(userOf(req.ruri));
  const bl = (kind: BlacklistKind) => s.blacklist.get(kind);
  if (bl('caller')?.has(accountId)) return refuse('blacklisted', accountId, 'caller is blacklisted');
  for (const prefix of bl('callee_prefix')?.keys() ?? []) {
    if (callee.startsWith(prefix)) return refuse('blacklisted', accountId, `callee prefix ${prefix} is blacklisted`);
  }
  if (bl('source_ip')?.has(req.sourceIp)) return refuse('blacklisted', accountId, `source ${req.sourceIp} is blacklisted`);

  const account = s.accounts.get(accountId);
  const perCall = req.maxCalls !== undefined || duration(req.maxDuration) !== undefined;
  if (!account && !perCall) {
    return s.config.cc_unknown_account === 'refuse'
      ? refuse('blacklisted', accountId, 'unknown account')
      : refuse('untracked', accountId, 'unknown account: not counted');
  }

  const maxCalls = req.maxCalls ?? account?.maxCalls;
  if (maxCalls !== undefined && s.calls.countOf(accountId) >= maxCalls) {
    return refuse('limit', accountId, `${s.calls.countOf(accountId)} calls of ${maxCalls} allowed`, maxCalls);
  }

  const maxDuration = lowest(duration(req.maxDuration), duration(account?.maxDuration), duration(s.config.cc_max_call_duration));
  let rate: Rate | undefined;
  let shares: Map<string, Share> | undefined;
  let creditSeconds: number | undefined;
  if (account?.prepaid) {
    rate = s.plans.get(account.plan)?.find(callee);
    if (!rate) return refuse('no-rate', accountId, `no rate for ${callee || '(no number)'} in plan ${account.plan}`, maxCalls);
    const draft = newCall(req, accountId, now, maxCalls, maxDuration, rate);
    // Ringing calls being cancelled have given their share back.
    shares = spread(account.balance, [...s.calls.ofAccount(accountId).filter((c) => !(c.ending && c.state === 'setup')), draft], now);
    const mine = shares.get(req.callId)!;
    if (mine.seconds === 0) return refuse('no-credit', accountId, `balance ${account.balance} leaves ${mine.reserved} for this call, below the connect fee and first pulse`, maxCalls);
    creditSeconds = mine.seconds;
  }
  const { limit, limitBy } = limitOf(maxDuration, creditSeconds);
  const call = { ...newCall(req, accountId, now, maxCalls, maxDuration, rate), limit, limitBy, reserved: shares?.get(req.callId)?.reserved ?? 0 };
  return { decision: { result: 'admitted', account: accountId, limit, maxCalls, detail: '' }, call, shares };
}

/** The caller as CDRs and views show it: the From header without its tag. */
function partyOf(from: string): string {
  const na = parseNameAddr(from, 'From');
  if (!na.ok) return from.slice(0, 255);
  return na.value.display ? `${na.value.display} <${na.value.uri}>` : `<${na.value.uri}>`;
}

function newCall(req: AdmitRequest, account: string, now: number, maxCalls: number | undefined, maxDuration: number | undefined, rate: Rate | undefined): Call {
  return {
    callId: req.callId, fromTag: req.fromTag, toTag: '', account, from: partyOf(req.from), to: req.ruri, sourceIp: req.sourceIp, door: req.door,
    ...(req.proxy !== undefined ? { proxy: req.proxy } : {}),
    state: 'setup', createdAt: now, connectedAt: undefined, dialog: undefined, maxCalls, maxDuration, limit: maxDuration,
    limitBy: maxDuration === undefined ? undefined : 'limit', rate, reserved: 0,
  };
}
