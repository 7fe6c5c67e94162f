import { normalizeAccount } from '../cc/accounts.js';
import type { CcEngine, CcResult } from '../cc/engine.js';
import { parseRatesCsv } from '../cc/rates-csv.js';
import type { Account, Cdr } from '../cc/types.js';
import type { CcStore } from '../store/cc-tables.js';
import { INVALID_PARAMS, type ResultFields, type RpcOutcome, type RpcTable } from './methods.js';
import { bool, limitOf, MAX_MONEY, money, oneOf, text, time, where, whole, type ParamSpec, type ParamType } from './params.js';

/** What the cc.* commands run on: the engine, and the store for the records it does not keep. */
export interface CcRpcTarget {
  readonly engine: CcEngine;
  readonly store: CcStore;
}

/** An account: user@domain (or a sip: URI naming one), as the engine keys it (domain in lower case). */
const accountText = text(3, 255);
const account: ParamType<string> = {
  kind: 'text',
  doc: 'user@domain, up to 255 characters',
  parse(v) {
    const r = accountText.parse(v);
    if (!r.ok) return r;
    const id = normalizeAccount(r.value);
    return id === undefined ? { ok: false, why: 'must be user@domain (or a sip: URI)' } : { ok: true, value: id };
  },
};
/** A limit: a whole number, or "none"/null to clear it. */
const limit = limitOf(1e9);
const plan = text(1, 64, { pattern: /^[\w.-]+$/, like: 'letters, digits, . _ - (up to 64)', doc: 'letters, digits, . _ -; up to 64' });
const prefix = text(0, 32, { pattern: /^\d*$/, like: 'digits (up to 32; "" matches every number)', doc: 'digits, up to 32; "" matches every number' });
const pulse = whole(1, 86_400, 'whole number of seconds, 1 to 86400');
/** A price: a whole number of minor units of up to 12 digits, as a rates CSV has it. */
const price = whole(0, 999_999_999_999, 'whole number of minor units, 0 to 999999999999');
const count = whole(1, 10_000);
const note = text(0, 255);
const kind = oneOf(['caller', 'callee_prefix', 'source_ip'] as const);

const P = {
  account: { name: 'account', type: account, doc: 'the account (user@domain)' },
  plan: { name: 'plan', type: plan, optional: true, doc: 'the rate plan; `default` when left out' },
  limit: { name: 'limit', type: count, optional: true, doc: 'at most this many rows, newest first; 100 when left out' },
} satisfies Record<string, ParamSpec>;

const ok = (result: unknown): RpcOutcome => ({ ok: true, result });
const fault = (message: string, code = 500): RpcOutcome => ({ ok: false, code, message });
/** An engine operation's result as an RPC outcome; a change brings its effects. */
const fromEngine = <T>(r: CcResult<T>, shape: (v: T) => unknown = (v) => v): RpcOutcome =>
  r.ok ? { ok: true, result: shape(r.value), effects: r } : fault(r.message, r.code);

export const accountView = (a: Account) => ({
  account: a.id, max_calls: a.maxCalls ?? null, max_duration: a.maxDuration ?? null, prepaid: a.prepaid, balance: a.balance, plan: a.plan,
});

export const cdrView = (c: Cdr) => ({
  call_id: c.callId, account: c.account, from: c.from, to: c.to, source_ip: c.sourceIp, start: c.startMs / 1000,
  connect: c.connectMs === undefined ? null : c.connectMs / 1000, end: c.endMs / 1000, setup_seconds: c.setupSeconds, duration: c.durationSeconds,
  duration_ms: c.durationMs ?? null, billable_seconds: c.billableSeconds, connect_fee: c.connectFee, amount: c.amount, rate_prefix: c.ratePrefix ?? null, cause: c.cause, code: c.code ?? null,
});

const ACCOUNT: ResultFields = {
  account: 'the account (user@domain)',
  max_calls: 'parallel calls at most (null: unlimited)',
  max_duration: 'seconds from the answer at most (null: unlimited)',
  prepaid: 'true: calls spend the balance',
  balance: 'minor units',
  plan: 'its rate plan',
};

const CALL: ResultFields = {
  call_id: 'the call\'s Call-ID',
  account: 'who pays',
  from: 'the From header',
  to: 'the request URI it was admitted for',
  state: 'setup (admitted, not answered) or active',
  since: 'admitted at (epoch seconds)',
  connected: 'answered at (epoch seconds; absent while in setup)',
  limit: 'its longest duration in seconds (absent: none)',
  time_left: 'seconds left (absent: no limit)',
  reserved: 'credit reserved for it (minor units)',
  door: 'socket (call_control.so) or link (cc-routes.cfg)',
  ending: 'why the service is ending it (limit, credit, admin, stale): still counted until Kamailio reports the end; null otherwise',
};

const CDR: ResultFields = {
  call_id: 'the call\'s Call-ID',
  account: 'who paid',
  from: 'the From header',
  to: 'the request URI',
  source_ip: 'where the INVITE came from',
  start: 'admitted at (epoch seconds)',
  connect: 'answered at (epoch seconds; null: never answered)',
  end: 'ended at (epoch seconds)',
  setup_seconds: 'from admission to answer (or to the end)',
  duration: 'seconds billed from answer to end: whole seconds started, 1 ms tolerance (35 ms is 1 s, 1 ms is 0 s), never past the call\'s limit (0: never answered)',
  duration_ms: 'the exact time from answer to end in milliseconds, informational (0: never answered; null: a CDR written before it was kept)',
  billable_seconds: 'duration rounded up to the pulses (first pulse, then next-pulse steps)',
  connect_fee: 'minor units',
  amount: 'what the call cost: connect fee + billable seconds × price per minute / 60, rounded up (minor units)',
  rate_prefix: 'the rate\'s prefix (null: not rated)',
  cause: 'caller, callee, normal, limit, credit, admin, stale or failed (see docs/call-control.md)',
  code: 'the final reply\'s code of a failed call (null otherwise)',
};

const RATE: ResultFields = {
  plan: 'the rate plan', prefix: 'the destination prefix (longest match wins)', connect_fee: 'minor units, once per answered call',
  price_per_minute: 'minor units per minute', initial_pulse: 'seconds billed first', next_pulse: 'seconds billed at a time after it',
};

const BLACKLIST: ResultFields = { kind: 'caller, callee_prefix or source_ip', value: 'the account, prefix or address', note: 'why (free text)' };

const ACC = '100@pbx.example.com';

/**
 * The cc.* commands: accounts, balances (with history), rates (one or a whole CSV table),
 * blacklist, calls in progress (and ending one through Kamailio), CDRs. Named or positional
 * params; unknown params are errors; changes are logged with who and what.
 */
export const CC_METHODS: RpcTable<CcRpcTarget> = {
  'cc.accounts': {
    summary: 'Every account, with its calls in progress and the credit they hold.',
    params: [], usage: 'usage: cc.accounts', mutates: false,
    result: { kind: 'rows', doc: 'one row per account', fields: { ...ACCOUNT, calls: 'calls in progress', reserved: 'credit they reserve (minor units)' } },
    errors: [], example: { params: [], mistake: [ACC] },
    run: ({ engine: { engine } }) => ok(engine.listAccounts().map((a) => ({ ...accountView(a), calls: engine.callsOf(a.id).length, reserved: engine.reserved(a.id) }))),
  },
  'cc.account_show': {
    summary: 'One account, with its calls in progress.',
    params: [P.account], usage: 'usage: cc.account_show user@domain', mutates: false,
    result: {
      kind: 'object', doc: 'the account',
      fields: { ...ACCOUNT, reserved: 'credit its calls reserve (minor units)', available: 'balance - reserved', calls: 'its calls in progress' },
      nested: { calls: CALL },
    },
    errors: [{ code: 404, when: 'no such account' }],
    example: { params: [ACC], mistake: ['100'] },
    run: ({ engine: { engine }, now }, a) => {
      const acc = engine.account(a.account as string);
      if (!acc) return fault(`no account ${a.account as string}`, 404);
      const reserved = engine.reserved(acc.id);
      return ok({ ...accountView(acc), reserved, available: acc.balance - reserved, calls: engine.callsOf(acc.id).map((c) => engine.viewCall(c, now)) });
    },
  },
  'cc.account_set': {
    summary: 'Creates an account or changes it; params left out keep their value (a new account: unlimited, postpaid, balance 0, plan default).',
    description: 'Lowering a limit applies to the calls in progress at once; setting the balance is written to its history as "set".',
    params: [
      P.account,
      { name: 'max_calls', type: limit, optional: true, doc: 'parallel calls at most; none: unlimited' },
      { name: 'max_duration', type: limit, optional: true, doc: 'seconds from the answer at most; none: unlimited' },
      { name: 'prepaid', type: bool, optional: true, doc: 'true: calls need credit and spend the balance' },
      { name: 'balance', type: money, optional: true, doc: 'the balance (minor units: cents, or any unit you choose)' },
      P.plan,
    ],
    usage: 'usage: cc.account_set user@domain [max_calls|none] [max_duration|none] [prepaid] [balance] [plan]  (or named params)', mutates: true,
    result: { kind: 'object', doc: 'the account as it is now', fields: ACCOUNT },
    errors: [],
    example: { params: [ACC, 2, 'none', 'true', 500], mistake: [ACC, 'abc', 'none', 'maybe'] },
    run: ({ engine: { engine }, now }, a) => fromEngine(engine.setAccount(a.account as string, {
      maxCalls: a.max_calls as number | null | undefined, maxDuration: a.max_duration as number | null | undefined,
      prepaid: a.prepaid as boolean | undefined, balance: a.balance as number | undefined, plan: a.plan as string | undefined,
    }, now), accountView),
  },
  'cc.account_delete': {
    summary: 'Deletes an account that has no call in progress.',
    params: [P.account], usage: 'usage: cc.account_delete user@domain', mutates: true,
    result: { kind: 'object', doc: 'what was deleted', fields: { deleted: 'the account' } },
    errors: [{ code: 404, when: 'no such account' }, { code: 409, when: 'it has calls in progress' }],
    example: { params: ['old@pbx.example.com'], mistake: [] },
    run: ({ engine: { engine } }, a) => fromEngine(engine.deleteAccount(a.account as string), (v) => ({ deleted: v.id })),
  },
  'cc.balance_add': {
    summary: 'Credits (or, with a negative amount, debits) an account; kept in its history with the note and who did it.',
    params: [
      P.account,
      { name: 'amount', type: where(money, (x) => x !== 0, 'must not be 0', 'whole number of minor units, -10^15 to 10^15, not 0'), doc: 'minor units; < 0 is a debit' },
      { name: 'note', type: note, optional: true, doc: 'why, for the history' },
    ],
    usage: 'usage: cc.balance_add user@domain amount [note]  (amount < 0 is a debit)', mutates: true,
    result: { kind: 'object', doc: 'the account as it is now', fields: ACCOUNT },
    errors: [{ code: 404, when: 'no such account' }, { code: -32602, when: 'the balance would pass ±10^15' }],
    example: { params: [ACC, 250, 'top-up by card'], mistake: ['x', 0] },
    run: ({ engine: { engine }, now, who }, a) => {
      const acc = engine.account(a.account as string);
      const after = (acc?.balance ?? 0) + (a.amount as number);
      if (acc && Math.abs(after) > MAX_MONEY) return fault(`amount ${a.amount as number} would bring the balance of ${acc.id} to ${after}, past ±10^15`, INVALID_PARAMS);
      return fromEngine(engine.addBalance(a.account as string, a.amount as number, (a.note as string | undefined) ?? '', who ?? '', now), accountView);
    },
  },
  'cc.balance_history': {
    summary: 'An account\'s balance changes, newest first: credits, debits, calls, settings.',
    params: [P.account, P.limit], usage: 'usage: cc.balance_history user@domain [limit]', mutates: false,
    result: {
      kind: 'rows', doc: 'one row per change',
      fields: { account: 'the account', at: 'when (epoch seconds)', amount: 'the change (minor units; < 0 a debit)', balance: 'the balance after it', note: '"set", "call <Call-ID>" or the note given', who: 'who made it (address, "(token)"; "call" for a call\'s debit)' },
    },
    errors: [{ code: 404, when: 'no such account' }],
    example: { params: [ACC, 10], mistake: [ACC, 0] },
    run: async ({ engine: { engine, store } }, a) => {
      const acc = engine.account(a.account as string);
      if (!acc) return fault(`no account ${a.account as string}`, 404);
      return ok(await store.history(acc.id, (a.limit as number | undefined) ?? 100));
    },
  },
  'cc.rates': {
    summary: 'The rates of one plan, or of every plan.',
    params: [{ ...P.plan, doc: 'the rate plan; every plan when left out' }], usage: 'usage: cc.rates [plan]', mutates: false,
    result: { kind: 'rows', doc: 'one row per rate', fields: RATE },
    errors: [], example: { params: ['default'], mistake: ['two words'] },
    run: ({ engine: { engine } }, a) => ok(engine.rates(a.plan as string | undefined).map((r) => ({
      plan: r.plan, prefix: r.prefix, connect_fee: r.connectFee, price_per_minute: r.pricePerMinute, initial_pulse: r.initialPulse, next_pulse: r.nextPulse,
    }))),
  },
  'cc.rate_set': {
    summary: 'Adds or replaces one rate of a plan.',
    params: [
      { name: 'prefix', type: prefix, doc: 'the destination prefix; the longest matching one rates a call' },
      { name: 'connect_fee', type: price, doc: 'charged once per answered call' },
      { name: 'price_per_minute', type: price, doc: 'per minute of billable seconds' },
      { name: 'initial_pulse', type: pulse, doc: 'seconds billed first (a in a/b: 60/60, 30/6, 1/1)' },
      { name: 'next_pulse', type: pulse, doc: 'seconds billed at a time after it (b)' },
      P.plan,
    ],
    usage: 'usage: cc.rate_set prefix connect_fee price_per_minute initial_pulse next_pulse [plan]', mutates: true,
    result: { kind: 'object', doc: 'the rate set', fields: { plan: 'its plan', prefix: 'its prefix' } },
    errors: [],
    example: { params: ['4420', 5, 12, 30, 6], mistake: ['44', 'x', 12, 0, 6] },
    run: ({ engine: { engine } }, a) => fromEngine(engine.setRate({
      plan: (a.plan as string | undefined) ?? 'default', prefix: a.prefix as string, connectFee: a.connect_fee as number,
      pricePerMinute: a.price_per_minute as number, initialPulse: a.initial_pulse as number, nextPulse: a.next_pulse as number,
    }), (r) => ({ plan: r.plan, prefix: r.prefix })),
  },
  'cc.rates_load': {
    summary: 'Replaces a plan\'s whole rate table with a CSV; one bad row rejects the file, with its line number.',
    description: 'CSV lines `prefix,connect_fee,price_per_minute,initial_pulse,next_pulse` (a header line naming them, blank lines and # comments are skipped). sca-ctl reads a param written @file from that file: `sca-ctl cc.rates_load @rates.csv`.',
    params: [
      { name: 'csv', type: text(0, 16 * 1024 * 1024, { controls: true, doc: 'text, up to 16 MiB' }), doc: 'the table, one rate per line' },
      P.plan,
    ],
    usage: 'usage: cc.rates_load "<csv: prefix,connect_fee,price_per_minute,initial_pulse,next_pulse per line>" [plan]', mutates: true,
    result: { kind: 'object', doc: 'the table loaded', fields: { plan: 'the plan', rates: 'how many rates it has now' } },
    errors: [{ code: -32602, when: 'a bad row: "line N: <why>; nothing loaded"' }],
    example: { params: ['prefix,connect_fee,price_per_minute,initial_pulse,next_pulse\n31,5,12,30,6\n316,5,30,30,6\n2,0,60,1,1\n'], mistake: ['44,0,5,60,60\n45,0,five,60,60\n'] },
    run: ({ engine: { engine } }, a) => {
      const p = (a.plan as string | undefined) ?? 'default';
      const parsed = parseRatesCsv(a.csv as string, p);
      if (!parsed.ok) return fault(`line ${parsed.line}: ${parsed.error}; nothing loaded`, INVALID_PARAMS);
      return fromEngine(engine.loadRates(p, parsed.rates));
    },
  },
  'cc.blacklist': {
    summary: 'Every blacklist entry.',
    params: [], usage: 'usage: cc.blacklist', mutates: false,
    result: { kind: 'rows', doc: 'one row per entry', fields: BLACKLIST },
    errors: [], example: { params: [], mistake: ['caller'] },
    run: ({ engine: { engine } }) => ok(engine.blacklisted()),
  },
  'cc.blacklist_add': {
    summary: 'Refuses calls of an account, to a callee prefix or from a source IP (socket door: Locked; link door: cc_reply_blacklisted).',
    params: [
      { name: 'kind', type: kind, doc: 'what the value is' },
      { name: 'value', type: text(1, 255), doc: 'the account (user@domain), the callee prefix (digits) or the source IP' },
      { name: 'note', type: note, optional: true, doc: 'why' },
    ],
    usage: 'usage: cc.blacklist_add {caller | callee_prefix | source_ip} value [note]', mutates: true,
    result: { kind: 'object', doc: 'the entry', fields: BLACKLIST },
    errors: [], example: { params: ['source_ip', '203.0.113.9', 'scanner'], mistake: ['ip', '203.0.113.9'] },
    run: ({ engine: { engine } }, a) => fromEngine(engine.setBlacklisted(a.kind as 'caller', a.value as string, true, (a.note as string | undefined) ?? '')),
  },
  'cc.blacklist_delete': {
    summary: 'Removes a blacklist entry.',
    params: [
      { name: 'kind', type: kind, doc: 'what the value is' },
      { name: 'value', type: text(1, 255), doc: 'the entry\'s value, as listed' },
    ],
    usage: 'usage: cc.blacklist_delete {caller | callee_prefix | source_ip} value', mutates: true,
    result: { kind: 'object', doc: 'the entry removed', fields: BLACKLIST },
    errors: [{ code: 404, when: 'not blacklisted ("<kind> <value> is not blacklisted")' }],
    example: { params: ['source_ip', '203.0.113.9'], mistake: ['source_ip'] },
    run: ({ engine: { engine } }, a) => fromEngine(engine.setBlacklisted(a.kind as 'caller', a.value as string, false, '')),
  },
  'cc.calls': {
    summary: 'Calls in progress (setting up or answered), of one account or all, with their time left and reserved credit.',
    params: [{ ...P.account, optional: true, doc: 'one account\'s calls; everyone\'s when left out' }], usage: 'usage: cc.calls [user@domain]', mutates: false,
    result: { kind: 'rows', doc: 'one row per call', fields: CALL },
    errors: [], example: { params: [], mistake: [ACC, 'active'] },
    run: ({ engine: { engine }, now }, a) => ok(engine.callsOf(a.account as string | undefined).map((c) => engine.viewCall(c, now))),
  },
  'cc.end_call': {
    summary: 'Ends a call in progress through Kamailio: BYE both ways when answered, the cc_reply_cancelled reply while ringing; its CDR says cause admin.',
    params: [{ name: 'call_id', type: text(1, 255), doc: 'the call\'s Call-ID (cc.calls lists them)' }], usage: 'usage: cc.end_call call-id', mutates: true,
    result: { kind: 'object', doc: 'the call ended', fields: { ended: 'its Call-ID' } },
    errors: [{ code: 404, when: 'no call in progress with that Call-ID ("no call <id>")' }],
    example: { params: ['b-2@192.0.2.10'], mistake: [''] },
    run: ({ engine: { engine }, now }, a) => fromEngine(engine.endCall(a.call_id as string, now), (v) => ({ ended: v.call_id })),
  },
  'cc.cdrs': {
    summary: 'Call detail records, newest first: of one account or all, within a time range.',
    params: [
      { ...P.account, optional: true, doc: 'one account\'s CDRs; everyone\'s when left out' },
      { name: 'from', type: time, optional: true, doc: 'calls admitted at or after this time' },
      { name: 'to', type: time, optional: true, doc: 'calls admitted before this time' },
      P.limit,
    ],
    usage: 'usage: cc.cdrs [user@domain] [from] [to] [limit]  (times: epoch seconds or ISO 8601)', mutates: false,
    result: { kind: 'rows', doc: 'one row per call', fields: CDR },
    errors: [], example: { params: [ACC, '2027-01-15T00:00:00Z'], mistake: [ACC, 'yesterday'] },
    run: async ({ engine: { store } }, a) => ok((await store.cdrs({
      account: a.account as string | undefined, fromMs: a.from === undefined ? undefined : (a.from as number) * 1000,
      toMs: a.to === undefined ? undefined : (a.to as number) * 1000, limit: (a.limit as number | undefined) ?? 100,
    })).map(cdrView)),
  },
};
