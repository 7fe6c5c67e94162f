// The params of every sca.* and cc.* command are checked strictly, and a bad one is the caller's
// mistake: JSON-RPC -32602 naming the param and why, then the usage (issues 23.4 and 19.9).
// Table-driven over the very table the RPC layer runs: each command's documented example is
// valid, and each of its params, replaced by values of the wrong kind, is refused by name.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../../../service/app.js';
import { CcEngine } from '../../../service/cc/engine.js';
import { main } from '../../../service/cli/sca-ctl.js';
import { loadConfig } from '../../../service/config.js';
import { CC_METHODS, type CcRpcTarget } from '../../../service/rpc/cc-methods.js';
import { ALL_METHODS } from '../../../service/rpc/help.js';
import { callMethod, type RpcOutcome } from '../../../service/rpc/methods.js';
import { bool, limitOf, money, parseParams, text, time, whole, type ParamSpec } from '../../../service/rpc/params.js';
import { SCA_METHODS } from '../../../service/rpc/sca-methods.js';
import { ScaEngine } from '../../../service/sca/engine.js';
import type { CcStore } from '../../../service/store/cc-tables.js';

const fakeStore = { cdrs: async () => [], history: async () => [] } as unknown as CcStore;

function call(name: string, params: unknown): Promise<RpcOutcome> {
  const sca = new ScaEngine();
  sca.seizeAppearance('sip:100@pbx.example.com', 'sip:100@10.0.0.11:5060', 1000);
  const cc = new CcEngine();
  cc.setAccount('100@pbx.example.com', { maxCalls: 2, balance: 900_000_000_000_000 }, 1000);
  const target: CcRpcTarget = { engine: cc, store: fakeStore };
  return Promise.resolve(name.startsWith('sca.') ? callMethod(SCA_METHODS, name, params, { engine: sca, now: 1000 }) : callMethod(CC_METHODS, name, params, { engine: target, now: 1000 }));
}

const TOO_LONG = 'x'.repeat(20 * 1024 * 1024);

/** Values of the wrong kind for a param's type (each is refused whatever the command). */
function wrongValues(p: ParamSpec): unknown[] {
  const always = [[5], { x: 1 }, Number.NaN, Number.POSITIVE_INFINITY];
  switch (p.type.kind) {
    case 'number': return [...always, true, false, '', 'abc', '1.5', 1.5, '1e3', ' 5', '5 ', '0x10', '--1', 1e16];
    // A CSV has line breaks: control characters are its rows' business (a bad row names its line).
    case 'text': return [...always, 5, true, ['x'], ...(p.name === 'csv' ? [] : ['a\u0001b']), TOO_LONG];
    case 'bool': return [...always, 'maybe', 2, -1, '', 'TRUE', 'on', [true]];
    case 'enum': return [...always, 'nope', 1, true, '', null];
    case 'time': return [...always, true, '', 'yesterday', '2030-13-45', -1, 1e12, [1]];
  }
}

t.test('every example in the table is valid', async (t) => {
  for (const [name, m] of Object.entries(ALL_METHODS)) {
    const parsed = parseParams(m.params, m.example.params);
    t.ok(parsed.ok, `${name} ${JSON.stringify(m.example.params)}${parsed.ok ? '' : `: ${parsed.problems.map((p) => p.why).join('; ')}`}`);
  }
});

t.test('a param of the wrong kind is refused by name, with why and the usage, in every command', async (t) => {
  let checked = 0;
  for (const [name, m] of Object.entries(ALL_METHODS)) {
    const base = Object.fromEntries(m.example.params.map((v, i) => [m.params[i]!.name, v]));
    for (const p of m.params) {
      for (const bad of wrongValues(p)) {
        // null clears a limit (max_calls null = none): not a mistake there.
        if (bad === null && p.type.doc.endsWith('or none')) continue;
        const out = await call(name, { ...base, [p.name]: bad });
        checked++;
        if (out.ok || out.code !== -32602 || !out.message.startsWith(`${p.name} `) || !out.message.endsWith(`; ${m.usage}`)) {
          t.fail(`${name} ${p.name}=${String(JSON.stringify(bad)).slice(0, 30)}: ${out.ok ? 'accepted' : `${out.code} ${out.message.slice(0, 200)}`}`);
        }
      }
    }
  }
  t.ok(checked > 500, `${checked} wrong values refused by name`);
});

t.test('numbers: JSON numbers or decimal text; whole where whole; bounded', async (t) => {
  const n = whole(0, 10);
  t.same([n.parse(5), n.parse('5'), n.parse('+5'), n.parse('-0'), n.parse(10)].map((r) => r.ok && r.value), [5, 5, 5, 0, 10]);
  t.same(n.parse(true), { ok: false, why: 'must be a whole number' }, 'true is not 1');
  t.same(n.parse([5]), { ok: false, why: 'must be a whole number' }, '[5] is not 5');
  t.same(n.parse(''), { ok: false, why: 'must be a whole number' }, '"" is not 0');
  t.same(n.parse(Number.NaN), { ok: false, why: 'must be a whole number' });
  t.same(n.parse(Number.POSITIVE_INFINITY), { ok: false, why: 'must be a whole number' });
  t.same(n.parse('2.5'), { ok: false, why: 'must be a whole number, not a fraction' });
  t.same(n.parse(11), { ok: false, why: 'must be from 0 to 10' });
  t.same(money.parse(1e15).ok && money.parse(-1e15).ok, true, '±10^15 is money');
  t.same(money.parse(1e15 + 1), { ok: false, why: 'must be from -10^15 to 10^15' });
  t.same(money.parse('99999999999999999999'), { ok: false, why: 'must be from -10^15 to 10^15' }, 'long text is not rounded into range');
  const limit = limitOf(100);
  t.same([limit.parse('none'), limit.parse(null), limit.parse('7')].map((r) => r.ok && r.value), [null, null, 7]);
  t.same(limit.parse('NONE'), { ok: false, why: 'must be a whole number, or "none"' });
  t.same(time.parse('2030-01-31T12:00:00Z'), { ok: true, value: 1_896_091_200 });
  t.same(time.parse('1896091200.5'), { ok: true, value: 1_896_091_200.5 }, 'epoch seconds may have a fraction');
  t.notOk(time.parse('March 7').ok, 'what Date.parse would guess is not a time');
});

t.test('booleans: true/false, 1/0, yes/no only', async (t) => {
  for (const v of [true, 'true', '1', 1, 'yes']) t.same(bool.parse(v), { ok: true, value: true }, JSON.stringify(v));
  for (const v of [false, 'false', '0', 0, 'no']) t.same(bool.parse(v), { ok: true, value: false }, JSON.stringify(v));
  for (const v of ['maybe', '', 'on', 'True', 2, [true], null]) t.notOk(bool.parse(v).ok, JSON.stringify(v));
});

t.test('text: a string of its length, no control characters', async (t) => {
  const s = text(1, 5);
  t.same(s.parse('abc'), { ok: true, value: 'abc' });
  t.same(s.parse(''), { ok: false, why: 'must not be empty' });
  t.same(s.parse(12), { ok: false, why: 'must be text' }, 'a number is not text');
  t.same(s.parse('abcdef'), { ok: false, why: 'must be at most 5 characters' });
  t.same(s.parse('a\nb'), { ok: false, why: 'must not contain control characters' });
});

t.test('the shape of params: too many, unknown, missing, neither list nor object', async (t) => {
  const e = async (name: string, params: unknown) => {
    const out = await call(name, params);
    return out.ok ? 'accepted' : `${out.code} ${out.message}`;
  };
  t.equal(await e('cc.account_show', ['100@pbx.example.com', 'x', 'y']),
    '-32602 too many params: 3 given, it takes 1 (account); usage: cc.account_show user@domain');
  t.equal(await e('sca.all_appearances', ['x']), '-32602 too many params: 1 given, it takes no params; usage: sca.all_appearances');
  t.equal(await e('cc.account_set', { account: '100@pbx.example.com', colour: 'red', size: 2 }),
    '-32602 unknown param "colour": it takes 6 (account, max_calls, max_duration, prepaid, balance, plan); unknown param "size": it takes 6 (account, max_calls, max_duration, prepaid, balance, plan); usage: cc.account_set user@domain [max_calls|none] [max_duration|none] [prepaid] [balance] [plan]  (or named params)');
  t.equal(await e('cc.account_set', { __proto__: { admin: true }, account: '100@pbx.example.com' }), 'accepted', 'an inherited key is not a param');
  t.equal(await e('sca.release_appearance', ['sip:100@pbx.example.com']), '-32602 index is missing; usage: sca.release_appearance user@domain appearance-index');
  t.equal(await e('cc.rate_set', ['44', 'x', 12, 0]),
    '-32602 connect_fee "x" must be a whole number; initial_pulse 0 must be from 1 to 86400; next_pulse is missing; usage: cc.rate_set prefix connect_fee price_per_minute initial_pulse next_pulse [plan]',
    'every problem at once');
  t.equal(await e('cc.accounts', 'x'), '-32602 params must be a list (positional) or an object (named); usage: cc.accounts');
  t.equal(await e('cc.account_set', ['abc']), '-32602 account "abc" must be user@domain (or a sip: URI); usage: cc.account_set user@domain [max_calls|none] [max_duration|none] [prepaid] [balance] [plan]  (or named params)');
});

t.test('money stays exact: a balance cannot be pushed past 10^15', async (t) => {
  const over = await call('cc.balance_add', ['100@pbx.example.com', 200_000_000_000_000]);
  t.same(over.ok ? 'accepted' : [over.code, over.message], [-32602, 'amount 200000000000000 would bring the balance of 100@pbx.example.com to 1100000000000000, past ±10^15']);
  const fine = await call('cc.balance_add', ['100@pbx.example.com', 100_000_000_000_000]);
  t.same(fine.ok && (fine.result as { balance: number }).balance, 1e15, 'up to 10^15 exactly');
  const big = await call('cc.account_set', ['100@pbx.example.com', 2, 'none', true, '1000000000000001']);
  t.match(big.ok ? 'accepted' : big.message, /^balance "1000000000000001" must be from -10\^15 to 10\^15;/);
});

t.test('over HTTP and through sca-ctl: the named mistake, the usage, a non-zero exit', async (t) => {
  const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], http_port: 0, log_level: 'silent', db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'rpc-params-'))}/s.sqlite`, call_control_socket: '' } });
  if (!cfg.ok) throw new Error(cfg.error);
  const app = buildApp(cfg.config, { clock: () => 1000 });
  const url = await app.start();
  t.teardown(() => app.stop());
  const ctl = async (...args: string[]) => {
    let out = '';
    let err = '';
    const code = await main(['--url', url, ...args], {}, (s) => { out += `${s}\n`; }, (s) => { err += `${s}\n`; });
    return { code, out, err: err.trim() };
  };
  const SET = 'usage: cc.account_set user@domain [max_calls|none] [max_duration|none] [prepaid] [balance] [plan]  (or named params)';
  t.same(await ctl('cc.account_set', '100@cc.test', 'abc'), { code: 1, out: '', err: `error: 500 - max_calls "abc" must be a whole number, or "none"; ${SET}` });
  t.same(await ctl('cc.account_set', '100@cc.test', '2', 'none', 'maybe'), { code: 1, out: '', err: `error: 500 - prepaid "maybe" must be true or false (or 1/0, yes/no); ${SET}` });
  t.same(await ctl('cc.balance_add', 'x', '0'), { code: 1, out: '', err: 'error: 500 - account "x" must be at least 3 characters; amount "0" must not be 0; usage: cc.balance_add user@domain amount [note]  (amount < 0 is a debit)' });
  t.same(await ctl('cc.account_set', '100@cc.test', '1', '2', 'true', '5', 'gold', 'extra'),
    { code: 1, out: '', err: `error: 500 - too many params: 7 given, it takes 6 (account, max_calls, max_duration, prepaid, balance, plan); ${SET}` });
  const json = await ctl('--json', 'cc.account_set', '100@cc.test', '1.5');
  t.same(json, { code: 1, out: '', err: `sca-ctl: cc.account_set: max_calls "1.5" must be a whole number, not a fraction, or "none"; ${SET} (code -32602)` });
  t.equal((await app.db.query('SELECT * FROM cc_accounts')).length, 0, 'nothing was written');
  const res = await app.http.inject({ method: 'POST', url: '/rpc', payload: { jsonrpc: '2.0', id: 1, method: 'cc.account_set', params: { account: '100@cc.test', max_calls: true } } });
  t.same(res.json().error, {
    code: -32602, message: `max_calls true must be a whole number, or "none"; ${SET}`,
    data: { problems: [{ param: 'max_calls', why: 'max_calls true must be a whole number, or "none"' }], usage: SET },
  }, 'JSON-RPC clients get the problems as data too');
});
