import { z } from 'zod';
import type { CcEngine, CcResult } from '../cc/engine.js';
import { parseRatesCsv } from '../cc/rates-csv.js';
import type { Account, Cdr } from '../cc/types.js';
import type { CcStore } from '../store/cc-tables.js';
import type { RpcOutcome, RpcTable } from './methods.js';

/** What the cc.* commands run on: the engine, and the store for the records it does not keep. */
export interface CcRpcTarget {
  readonly engine: CcEngine;
  readonly store: CcStore;
}

const account = z.string().min(3).max(255);
/** A limit: a whole number, or "none"/null to clear it. */
const limit = z.union([z.null(), z.literal('none').transform(() => null), z.coerce.number().int().min(0).max(1e9)]);
const money = z.coerce.number().int().min(-1e15).max(1e15);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((s) => ['true', '1', 'yes'].includes(s))]);
const plan = z.string().regex(/^[\w.-]{1,64}$/, 'plan: letters, digits, . _ -');
const prefix = z.string().regex(/^\d{0,32}$/, 'prefix: digits');
const pulse = z.coerce.number().int().min(1).max(86_400);
const count = z.coerce.number().int().min(1).max(10_000);
/** A time as epoch seconds or ISO 8601. */
const time = z.union([z.coerce.number().finite(), z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an epoch or ISO 8601 time').transform((s) => Date.parse(s) / 1000)]);
const kind = z.enum(['caller', 'callee_prefix', 'source_ip']);

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
  billable_seconds: c.billableSeconds, connect_fee: c.connectFee, amount: c.amount, rate_prefix: c.ratePrefix ?? null, cause: c.cause, code: c.code ?? null,
});

/**
 * The cc.* commands: accounts, balances (with history), rates (one or a whole CSV table),
 * blacklist, calls in progress (and ending one through Kamailio), CDRs. Named or positional
 * params; unknown params are errors; changes are logged with who and what.
 */
export const CC_METHODS: RpcTable<CcRpcTarget> = {
  'cc.accounts': {
    params: [], schema: z.object({}).strict(), usage: 'usage: cc.accounts', mutates: false,
    run: ({ engine: { engine } }) => ok(engine.listAccounts().map((a) => ({ ...accountView(a), calls: engine.callsOf(a.id).length, reserved: engine.reserved(a.id) }))),
  },
  'cc.account_show': {
    params: ['account'], schema: z.object({ account }).strict(), usage: 'usage: cc.account_show user@domain', mutates: false,
    run: ({ engine: { engine }, now }, a) => {
      const acc = engine.account(a.account as string);
      if (!acc) return fault(`no account ${a.account as string}`, 404);
      const reserved = engine.reserved(acc.id);
      return ok({ ...accountView(acc), reserved, available: acc.balance - reserved, calls: engine.callsOf(acc.id).map((c) => engine.viewCall(c, now)) });
    },
  },
  'cc.account_set': {
    params: ['account', 'max_calls', 'max_duration', 'prepaid', 'balance', 'plan'],
    schema: z.object({ account, max_calls: limit.optional(), max_duration: limit.optional(), prepaid: bool.optional(), balance: money.optional(), plan: plan.optional() }).strict(),
    usage: 'usage: cc.account_set user@domain [max_calls|none] [max_duration|none] [prepaid] [balance] [plan]  (or named params)', mutates: true,
    run: ({ engine: { engine }, now }, a) => fromEngine(engine.setAccount(a.account as string, {
      maxCalls: a.max_calls as number | null | undefined, maxDuration: a.max_duration as number | null | undefined,
      prepaid: a.prepaid as boolean | undefined, balance: a.balance as number | undefined, plan: a.plan as string | undefined,
    }, now), accountView),
  },
  'cc.account_delete': {
    params: ['account'], schema: z.object({ account }).strict(), usage: 'usage: cc.account_delete user@domain', mutates: true,
    run: ({ engine: { engine } }, a) => fromEngine(engine.deleteAccount(a.account as string), (v) => ({ deleted: v.id })),
  },
  'cc.balance_add': {
    params: ['account', 'amount', 'note'], schema: z.object({ account, amount: money.refine((x) => x !== 0, 'amount: not 0'), note: z.string().max(255).optional() }).strict(),
    usage: 'usage: cc.balance_add user@domain amount [note]  (amount < 0 is a debit)', mutates: true,
    run: ({ engine: { engine }, now, who }, a) => fromEngine(engine.addBalance(a.account as string, a.amount as number, (a.note as string | undefined) ?? '', who ?? '', now), accountView),
  },
  'cc.balance_history': {
    params: ['account', 'limit'], schema: z.object({ account, limit: count.optional() }).strict(), usage: 'usage: cc.balance_history user@domain [limit]', mutates: false,
    run: async ({ engine: { engine, store } }, a) => {
      const acc = engine.account(a.account as string);
      if (!acc) return fault(`no account ${a.account as string}`, 404);
      return ok(await store.history(acc.id, (a.limit as number | undefined) ?? 100));
    },
  },
  'cc.rates': {
    params: ['plan'], schema: z.object({ plan: plan.optional() }).strict(), usage: 'usage: cc.rates [plan]', mutates: false,
    run: ({ engine: { engine } }, a) => ok(engine.rates(a.plan as string | undefined).map((r) => ({
      plan: r.plan, prefix: r.prefix, connect_fee: r.connectFee, price_per_minute: r.pricePerMinute, initial_pulse: r.initialPulse, next_pulse: r.nextPulse,
    }))),
  },
  'cc.rate_set': {
    params: ['prefix', 'connect_fee', 'price_per_minute', 'initial_pulse', 'next_pulse', 'plan'],
    schema: z.object({ prefix, connect_fee: z.coerce.number().int().min(0), price_per_minute: z.coerce.number().int().min(0), initial_pulse: pulse, next_pulse: pulse, plan: plan.optional() }).strict(),
    usage: 'usage: cc.rate_set prefix connect_fee price_per_minute initial_pulse next_pulse [plan]', mutates: true,
    run: ({ engine: { engine } }, a) => fromEngine(engine.setRate({
      plan: (a.plan as string | undefined) ?? 'default', prefix: a.prefix as string, connectFee: a.connect_fee as number,
      pricePerMinute: a.price_per_minute as number, initialPulse: a.initial_pulse as number, nextPulse: a.next_pulse as number,
    }), (r) => ({ plan: r.plan, prefix: r.prefix })),
  },
  'cc.rates_load': {
    params: ['csv', 'plan'], schema: z.object({ csv: z.string().max(16 * 1024 * 1024), plan: plan.optional() }).strict(),
    usage: 'usage: cc.rates_load "<csv: prefix,connect_fee,price_per_minute,initial_pulse,next_pulse per line>" [plan]', mutates: true,
    run: ({ engine: { engine } }, a) => {
      const p = (a.plan as string | undefined) ?? 'default';
      const parsed = parseRatesCsv(a.csv as string, p);
      if (!parsed.ok) return fault(`line ${parsed.line}: ${parsed.error}; nothing loaded`, -32602);
      return fromEngine(engine.loadRates(p, parsed.rates));
    },
  },
  'cc.blacklist': {
    params: [], schema: z.object({}).strict(), usage: 'usage: cc.blacklist', mutates: false,
    run: ({ engine: { engine } }) => ok(engine.blacklisted()),
  },
  'cc.blacklist_add': {
    params: ['kind', 'value', 'note'], schema: z.object({ kind, value: z.string().min(1).max(255), note: z.string().max(255).optional() }).strict(),
    usage: 'usage: cc.blacklist_add {caller | callee_prefix | source_ip} value [note]', mutates: true,
    run: ({ engine: { engine } }, a) => fromEngine(engine.setBlacklisted(a.kind as 'caller', a.value as string, true, (a.note as string | undefined) ?? '')),
  },
  'cc.blacklist_delete': {
    params: ['kind', 'value'], schema: z.object({ kind, value: z.string().min(1).max(255) }).strict(),
    usage: 'usage: cc.blacklist_delete {caller | callee_prefix | source_ip} value', mutates: true,
    run: ({ engine: { engine } }, a) => fromEngine(engine.setBlacklisted(a.kind as 'caller', a.value as string, false, '')),
  },
  'cc.calls': {
    params: ['account'], schema: z.object({ account: account.optional() }).strict(), usage: 'usage: cc.calls [user@domain]', mutates: false,
    run: ({ engine: { engine }, now }, a) => ok(engine.callsOf(a.account as string | undefined).map((c) => engine.viewCall(c, now))),
  },
  'cc.end_call': {
    params: ['call_id'], schema: z.object({ call_id: z.string().min(1).max(255) }).strict(), usage: 'usage: cc.end_call call-id', mutates: true,
    run: ({ engine: { engine }, now }, a) => fromEngine(engine.endCall(a.call_id as string, now), (v) => ({ ended: v.call_id })),
  },
  'cc.cdrs': {
    params: ['account', 'from', 'to', 'limit'], schema: z.object({ account: account.optional(), from: time.optional(), to: time.optional(), limit: count.optional() }).strict(),
    usage: 'usage: cc.cdrs [user@domain] [from] [to] [limit]  (times: epoch seconds or ISO 8601)', mutates: false,
    run: async ({ engine: { store } }, a) => ok((await store.cdrs({
      account: a.account as string | undefined, fromMs: a.from === undefined ? undefined : (a.from as number) * 1000,
      toMs: a.to === undefined ? undefined : (a.to as number) * 1000, limit: (a.limit as number | undefined) ?? 100,
    })).map(cdrView)),
  },
};
