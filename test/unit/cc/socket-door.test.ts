// The call_control socket door of the whole service (buildApp), with a client that writes exactly
// what Kamailio 5.6's call_control.c writes (../shared/spec/call-control.md §1.3, §8).
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../../../service/app.js';
import { loadConfig } from '../../../service/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cc-door-'));
const SOCKET = path.join(dir, 'cc.sock');
let now = 1_800_000_000;
const cfg = loadConfig({ env: {}, overrides: {
  evapi_address: ['127.0.0.1:1'], http_port: 0, log_level: 'silent', db_url: `sqlite:${dir}/s.sqlite`, call_control_socket: SOCKET, cc_jsonrpc_address: 'udp:127.0.0.1:9',
} });
if (!cfg.ok) throw new Error(cfg.error);
const app = buildApp(cfg.config, { clock: () => now });
t.before(() => app.start());
t.teardown(() => app.stop());

/** One connection, as a Kamailio worker keeps it: a request, then its reply, then the next. */
async function client(): Promise<{ ask: (raw: string) => Promise<string>; close: () => void }> {
  const s = net.connect(SOCKET);
  await new Promise((r) => s.once('connect', r));
  let buf = '';
  let waiting: ((x: string) => void) | undefined;
  s.on('data', (c) => {
    buf += c.toString('latin1');
    if (waiting && buf.includes('\r\n')) { const w = waiting; waiting = undefined; const out = buf; buf = ''; w(out); }
  });
  return {
    ask: (raw) => new Promise((resolve) => { waiting = resolve; s.write(raw); }),
    close: () => s.destroy(),
  };
}

const init = (callId: string, from = '"Alice" <sip:alice@example.com>;tag=1928301774', extra = '') =>
  `init\r\nruri: sip:0031650222333@example.com\r\ndiverter: None\r\nsourceip: 192.0.2.10\r\ncallid: ${callId}\r\nfrom: ${from}\r\nfromtag: 1928301774\r\nsip_application: audio\r\n${extra}\r\n`;
const rpc = async (method: string, params: unknown) => (await app.http.inject({ method: 'POST', url: '/rpc', payload: { jsonrpc: '2.0', id: 1, method, params } })).json() as { result?: any; error?: any };

t.test('the exchange of call_control.c, byte for byte', async (t) => {
  const k = await client();
  t.teardown(k.close);
  t.equal(await k.ask(init('a84b4c76e66710@pc33')), 'No limit\r\n', 'an account the service does not know is not counted');
  await rpc('cc.account_set', { account: 'alice@example.com', max_calls: 1 });
  t.equal(await k.ask(init('c1@pc33')), 'Limited\r\n', 'a counted call: start and stop will follow');
  t.equal(await k.ask(init('c1@pc33')), 'Locked\r\n', 'another init of a counted Call-ID is refused: its stop would end this call');
  t.equal(await k.ask(init('c2@pc33')), 'Locked\r\n', 'over the limit: -2 in the script');
  t.equal(await k.ask('start\r\ncallid: c1@pc33\r\ndialogid: 3012:4177\r\n\r\n'), 'Ok\r\n');
  t.equal(await k.ask('start\r\ncallid: c1@pc33\r\ndialogid: 3012:4177\r\n\r\n'), 'Ok\r\n', 'a start for every 200 retransmission');
  t.same((await rpc('cc.calls', {})).result.map((c: { state: string }) => c.state), ['active']);
  now += 30;
  t.equal(await k.ask('stop\r\ncallid: c1@pc33\r\n\r\n'), 'Ok\r\n');
  t.equal(await k.ask('stop\r\ncallid: c1@pc33\r\n\r\n'), 'Ok\r\n', 'a second stop of the same call: known, nothing more');
  t.equal((await rpc('cc.cdrs', {})).result.length, 1, 'one CDR');
  t.equal(await k.ask('stop\r\ncallid: never@pc33\r\n\r\n'), 'Not found\r\n');
  t.equal(await k.ask('start\r\ncallid: never@pc33\r\ndialogid: 1:2\r\n\r\n'), 'Not found\r\n');
});

t.test('prepaid: No credit when the balance cannot pay the first pulse', async (t) => {
  const k = await client();
  t.teardown(k.close);
  await rpc('cc.rate_set', { prefix: '0031', connect_fee: 0, price_per_minute: 60, initial_pulse: 60, next_pulse: 60 });
  await rpc('cc.account_set', { account: 'bob@example.com', prepaid: true, balance: 59, max_calls: 'none' });
  t.equal(await k.ask(init('p1@pc33', '<sip:bob@example.com>;tag=x')), 'No credit\r\n');
  await rpc('cc.balance_add', { account: 'bob@example.com', amount: 1 });
  t.equal(await k.ask(init('p2@pc33', '<sip:bob@example.com>;tag=x')), 'Limited\r\n');
});

t.test('bad requests change nothing and the connection lives on; an init that cannot be read is refused (Locked)', async (t) => {
  const k = await client();
  t.teardown(k.close);
  const calls = async () => (await rpc('cc.calls', {})).result.length;
  const before = await calls();
  t.equal(await k.ask('init\r\nruri: sip:1@x\r\nfrom: <sip:alice@example.com>\r\nfromtag: t\r\n\r\n'), 'Locked\r\n', 'init without callid: refused, not waved on uncounted');
  t.equal(await k.ask('init\r\ncallid x\r\n\r\n'), 'Locked\r\n', 'an init with a field without ": "');
  t.equal(await k.ask('stop\r\ncallid x\r\n\r\n'), 'Error\r\n', 'a stop with a field without ": "');
  t.equal(await k.ask('start\r\ncallid: c9\r\ndialogid: 12-34\r\n\r\n'), 'Error\r\n', 'a dialogid that is not h_entry:h_id');
  t.equal(await k.ask('start\r\ncallid: c9\r\ndialogid: 4294967296:1\r\n\r\n'), 'Error\r\n', 'h_entry over 32 bits');
  t.equal(await k.ask('reboot\r\n\r\n'), 'Error\r\n', 'an unknown command');
  t.equal(await k.ask(`init\r\n${'x: '.padEnd(9000, 'y')}\r\n\r\n`), 'Locked\r\n', 'an init with an over-long line');
  t.equal(await k.ask(init('x'.repeat(3000), '<sip:nobody@example.org>;tag=1')), 'No limit\r\n', 'a Call-ID of 3,000 characters is read like any other');
  t.equal(await calls(), before, 'nothing was counted');
  t.equal(await k.ask(init('after-errors@pc33', '<sip:nobody@example.org>;tag=z')), 'No limit\r\n', 'the next request is served');
});

t.test('terminate (the operator\'s command on the socket): the call is ended through Kamailio, counted until its stop, billed as admin', async (t) => {
  const k = await client();
  t.teardown(k.close);
  await rpc('cc.account_set', { account: 'carol@example.com', max_calls: 1, prepaid: false });
  const carol = '<sip:carol@example.com>;tag=c';
  t.equal(await k.ask(init('t1@pc33', carol)), 'Limited\r\n');
  t.equal(await k.ask('start\r\ncallid: t1@pc33\r\ndialogid: 7:8\r\n\r\n'), 'Ok\r\n');
  t.equal(await k.ask(init('t2@pc33', carol)), 'Locked\r\n', 'the limit is reached');
  now += 5;
  t.equal(await k.ask('terminate\r\ncallid: t1@pc33\r\n\r\n'), 'Ok\r\n');
  t.same((await rpc('cc.calls', { account: 'carol@example.com' })).result.map((c: { ending: string }) => c.ending), ['admin'], 'being ended: still counted until Kamailio says it ended');
  t.equal(await k.ask('terminate\r\ncallid: t1@pc33\r\n\r\n'), 'Ok\r\n', 'a second terminate of a call being ended: the same');
  t.equal(await k.ask('stop\r\ncallid: t1@pc33\r\n\r\n'), 'Ok\r\n', 'Kamailio\'s stop after its BYE');
  t.same((await rpc('cc.calls', { account: 'carol@example.com' })).result, [], 'no longer counted');
  const [cdr] = (await rpc('cc.cdrs', { account: 'carol@example.com', limit: 1 })).result;
  t.same([cdr.call_id, cdr.cause, cdr.duration], ['t1@pc33', 'admin', 5], 'its CDR says the operator ended it');
  t.equal(await k.ask(init('t3@pc33', carol)), 'Limited\r\n', 'the freed place is taken by the next call');
  t.equal(await k.ask('terminate\r\ncallid: t3@pc33\r\n\r\n'), 'Ok\r\n', 'a ringing call too');
  t.equal(await k.ask('stop\r\ncallid: t3@pc33\r\n\r\n'), 'Ok\r\n');
  t.equal((await rpc('cc.cdrs', { account: 'carol@example.com', limit: 1 })).result[0].call_id, 't3@pc33');
  t.equal(await k.ask('terminate\r\ncallid: t3@pc33\r\n\r\n'), 'Not found\r\n', 'a call already ended');
  t.equal(await k.ask('terminate\r\n\r\n'), 'Error\r\n', 'without a callid');
});

t.test('OpenSIPS\' call_limit field: a per-call limit that counts the caller\'s calls without an account', async (t) => {
  const k = await client();
  t.teardown(k.close);
  const dave = '<sip:dave@example.com>;tag=d';
  t.equal(await k.ask(init('o0@pc33', dave)), 'No limit\r\n', 'without it an unknown caller is not counted');
  t.equal(await k.ask(init('o1@pc33', dave, 'call_limit: 2\r\n')), 'Limited\r\n');
  t.equal(await k.ask(init('o2@pc33', dave, 'call_limit: 2\r\n')), 'Limited\r\n');
  t.equal(await k.ask(init('o3@pc33', dave, 'call_limit: 2\r\n')), 'Locked\r\n', 'the third over a limit of 2');
  t.same((await rpc('cc.calls', { account: 'dave@example.com' })).result.map((c: { call_id: string }) => c.call_id), ['o1@pc33', 'o2@pc33'], 'both counted on the caller');
  t.equal(await k.ask('stop\r\ncallid: o1@pc33\r\n\r\n'), 'Ok\r\n');
  t.equal(await k.ask(init('o4@pc33', dave, 'call_limit: 2\r\n')), 'Limited\r\n', 'a place freed by a stop');
  t.equal(await k.ask(init('o5@pc33', dave, 'call_limit: two\r\n')), 'Locked\r\n', 'a limit that is not a number: an init that cannot be read is refused');
  t.equal(await k.ask(init('o6@pc33', dave, 'prepaid: 0\r\ncall_token: abc\r\n')), 'No limit\r\n', 'OpenSIPS\' other fields are accepted and unused');
});
