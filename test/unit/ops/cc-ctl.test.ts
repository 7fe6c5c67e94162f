// The cc.* commands through sca-ctl against a running service (in-process, real HTTP): accounts,
// balances with history, rates from a CSV file (a bad row rejects the file by line number),
// blacklist, calls, CDRs, metrics; unknown params are errors; changes are logged with who.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import { buildApp } from '../../../service/app.js';
import { main } from '../../../service/cli/sca-ctl.js';
import { loadConfig } from '../../../service/config.js';
import { waitUntil } from '../../support/wait.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cc-ctl-'));
const logs: Array<Record<string, unknown>> = [];
const stream = new Writable({ write(chunk, _e, cb) { logs.push(JSON.parse(String(chunk)) as Record<string, unknown>); cb(); } });
let now = 1_800_000_000;
const SOCKET = path.join(dir, 'cc.sock');
const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], http_port: 0, db_url: `sqlite:${dir}/s.sqlite`, call_control_socket: SOCKET, cc_jsonrpc_address: 'udp:127.0.0.1:9' } });
if (!cfg.ok) throw new Error(cfg.error);
const app = buildApp(cfg.config, { clock: () => now, logger: { level: 'info', stream } });
let url = '';
t.before(async () => { url = await app.start(); });
t.teardown(() => app.stop());

async function ctl(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['--url', url, ...args], {}, (s) => { out += `${s}\n`; }, (s) => { err += `${s}\n`; });
  return { code, out, err };
}

t.test('accounts: set (positional or named), show, list, delete; unknown params are errors', async (t) => {
  t.same(JSON.parse((await ctl('--json', 'cc.account_set', 'joe@example.com', '2', '600', 'true', '1000')).out),
    { account: 'joe@example.com', max_calls: 2, max_duration: 600, prepaid: true, balance: 1000, plan: 'default' });
  const show = await ctl('cc.account_show', 'joe@example.com');
  t.match(show.out, /^account: joe@example.com\nmax_calls: 2\nmax_duration: 600\nprepaid: true\nbalance: 1000\nplan: default\nreserved: 0\navailable: 1000\ncalls:\n\(none\)$/m);
  t.match((await ctl('--table', 'cc.accounts')).out, /^ACCOUNT\s+BALANCE\s+RESERVED\s+MAX_CALLS\s+MAX_DURATION\s+PREPAID\s+PLAN\s+CALLS\njoe@example\.com\s+1000\s+0\s+2\s+600\s+true\s+default\s+0$/m);
  const bad = await ctl('--json', 'cc.account_set', '{"account":"joe@example.com","colour":"red"}');
  t.equal(bad.code, 1, 'a JSON string is not an account');
  const unknown = await app.http.inject({ method: 'POST', url: '/rpc', payload: { jsonrpc: '2.0', id: 1, method: 'cc.account_set', params: { account: 'joe@example.com', colour: 'red' } } });
  t.equal(unknown.json().error.code, -32602, 'an unknown named param is an error');
  t.equal((await ctl('cc.account_set', 'x@example.com')).code, 0);
  t.equal((await ctl('cc.account_delete', 'x@example.com')).code, 0);
  t.match((await ctl('cc.account_show', 'x@example.com')).err, /error: 404 - no account x@example.com/);
  t.ok(logs.some((l) => l.method === 'cc.account_delete' && l.who === '127.0.0.1' && l.msg === 'rpc mutation'), 'changes are logged with who and what');
});

t.test('balance: credits and debits with a note, kept in the history', async (t) => {
  await ctl('cc.balance_add', 'joe@example.com', '500', 'top-up by card');
  now += 10;
  await ctl('cc.balance_add', 'joe@example.com', '-200', 'refund');
  t.match((await ctl('cc.account_show', 'joe@example.com')).out, /^balance: 1300$/m);
  const history = JSON.parse((await ctl('--json', 'cc.balance_history', 'joe@example.com')).out) as Array<{ amount: number; balance: number; note: string; who: string }>;
  t.same(history.map((h) => [h.amount, h.balance, h.note]), [[-200, 1300, 'refund'], [500, 1500, 'top-up by card'], [1000, 1000, 'set']]);
  t.match(history[0]!.who, /^127\.0\.0\.1/);
  const zero = await ctl('cc.balance_add', 'joe@example.com', '0');
  t.same([zero.code, zero.err.trim()], [1, 'error: 500 - amount "0" must not be 0; usage: cc.balance_add user@domain amount [note]  (amount < 0 is a debit)'], 'an amount of 0 is the caller\'s mistake, named');
});

t.test('rates: one at a time, or a whole CSV file that replaces the table; a bad row rejects it with its line', async (t) => {
  t.equal((await ctl('cc.rate_set', '31', '10', '20', '30', '6')).code, 0);
  const file = path.join(dir, 'rates.csv');
  writeFileSync(file, 'prefix,connect_fee,price_per_minute,initial_pulse,next_pulse\n44,0,5,60,60\n4420,5,12,1,1\n');
  t.same(JSON.parse((await ctl('--json', 'cc.rates_load', `@${file}`)).out), { plan: 'default', rates: 2 });
  t.same(JSON.parse((await ctl('--json', 'cc.rates')).out).map((r: { prefix: string }) => r.prefix), ['44', '4420'], 'the old table is gone');
  writeFileSync(file, '44,0,5,60,60\n45,0,five,60,60\n');
  const bad = await ctl('cc.rates_load', `@${file}`);
  t.same([bad.code, bad.err.trim()], [1, 'error: 500 - line 2: price_per_minute "five" must be a whole number; nothing loaded']);
  t.equal(JSON.parse((await ctl('--json', 'cc.rates')).out).length, 2, 'nothing changed');
});

t.test('blacklist, calls and CDRs', async (t) => {
  t.equal((await ctl('cc.blacklist_add', 'source_ip', '203.0.113.9', 'scanner')).code, 0);
  t.match((await ctl('--table', 'cc.blacklist')).out, /source_ip\s+203\.0\.113\.9\s+scanner/);
  t.match((await ctl('cc.blacklist_delete', 'source_ip', '198.51.100.1')).err, /not blacklisted/);
  t.equal((await ctl('cc.calls')).out.trim(), '(none)');
  t.equal((await ctl('cc.cdrs', 'joe@example.com', '2020-01-01T00:00:00Z')).out.trim(), '(none)');
  t.match((await ctl('cc.end_call', 'nope')).err, /error: 404 - no call nope/);
});

t.test('metrics: decisions, calls and reserved credit follow what the socket door decides, with no account label', async (t) => {
  const metrics = async () => (await app.http.inject({ url: '/metrics' })).body;
  const value = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const before = await metrics();
  t.equal(value(before, 'cc_decisions_total{result="admitted"}'), 0);
  t.equal(value(before, 'cc_decision_latency_seconds_count{door="socket"}') || 0, 0, 'no decision timed yet');
  // Two calls through the call_control socket: joe's (prepaid, rated 4420) is admitted, a stranger's is not counted.
  const s = net.connect(SOCKET);
  t.teardown(() => s.destroy());
  await new Promise((r) => s.once('connect', r));
  let got = '';
  s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  const ask = async (raw: string): Promise<string> => {
    const from = got.length;
    s.write(raw);
    await waitUntil('the socket\'s reply', () => got.slice(from).includes('\r\n'));
    return got.slice(from).trim();
  };
  const init = (callId: string, user: string) => `init\r\nruri: sip:442012345@example.com\r\ndiverter: None\r\nsourceip: 192.0.2.10\r\ncallid: ${callId}\r\nfrom: <sip:${user}@example.com>;tag=x\r\nfromtag: x\r\nsip_application: audio\r\n\r\n`;
  t.equal(await ask(init('m1', 'joe')), 'Limited');
  t.equal(await ask(init('m2', 'stranger')), 'No limit');
  const during = await metrics();
  t.equal(value(during, 'cc_decisions_total{result="admitted"}'), 1, 'the admission counted');
  t.equal(value(during, 'cc_decisions_total{result="untracked"}'), 1, 'and the untracked one');
  t.equal(value(during, 'cc_calls{state="setup"}'), 1, 'one call setting up');
  t.ok(value(during, 'cc_reserved_credit') > 0, `credit reserved for it (${value(during, 'cc_reserved_credit')})`);
  t.equal(value(during, 'cc_decision_latency_seconds_count{door="socket"}'), 2, 'each decision timed, by its door');
  t.equal(await ask('stop\r\ncallid: m1\r\n\r\n'), 'Ok');
  const after = await metrics();
  t.same([value(after, 'cc_calls{state="setup"}'), value(after, 'cc_reserved_credit'), value(after, 'cc_calls_ended_total{cause="normal"}')], [0, 0, 1], 'ended: nothing counted or reserved');
  t.notMatch(after, /joe@example\.com|m1/, 'no account or Call-ID in a label');
});
