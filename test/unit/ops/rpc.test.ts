// The sca.* RPC over HTTP, in-process (Fastify inject), with the real engine underneath.
import { Writable } from 'node:stream';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../../../service/app.js';
import { loadConfig } from '../../../service/config.js';
import { CI, P1, P2, subscribeMsg } from '../../support/sip-fixture.js';

const AOR = 'sip:100@pbx.example.com';

function app(settings: Record<string, unknown> = {}) {
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({ write(chunk, _e, cb) { logs.push(JSON.parse(String(chunk)) as Record<string, unknown>); cb(); } });
  const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'sca-ops-'))}/sca.sqlite`, call_control_socket: '', ...settings } });
  if (!cfg.ok) throw new Error(cfg.error);
  const a = buildApp(cfg.config, { clock: () => 1000, logger: { level: 'info', stream } });
  return { a, logs, started: a.start() };
}

const rpc = async (a: ReturnType<typeof buildApp>, method: string, params?: unknown, headers: Record<string, string> = {}) => {
  const res = await a.http.inject({ method: 'POST', url: '/rpc', headers: { 'content-type': 'application/json', ...headers }, payload: { jsonrpc: '2.0', id: 1, method, params } });
  return { status: res.statusCode, body: res.json() as { result?: unknown; error?: { code: number; message: string } } };
};

t.test('every sca.* command answers with structured JSON', async (t) => {
  const { a, started } = app({ http_port: 0 });
  await started;
  t.teardown(() => a.stop());
  a.sca.engine.subscribe({ msg: subscribeMsg(P1), to_tag: 'a', now: 1000 });
  a.sca.engine.subscribe({ msg: subscribeMsg(P2, { event: 'line-seize', expires: 15, callInfo: CI(2) }), to_tag: 'b', now: 1000 });

  const all = await rpc(a, 'sca.all_subscriptions');
  t.same((all.body.result as Array<{ subscriber: string; event: string }>).map((s) => [s.subscriber, s.event]), [[P2, 'line-seize'], [P1, 'call-info']]);
  t.same((await rpc(a, 'sca.subscription_count', ['call-info'])).body.result, { event: 'call-info', count: 1 });
  t.same((await rpc(a, 'sca.subscription_count', { event: 'line-seize' })).body.result, { event: 'line-seize', count: 1 }, 'named params too');
  t.equal(((await rpc(a, 'sca.show_subscription', [AOR, 'call-info', P1])).body.result as unknown[]).length, 1);
  t.same(((await rpc(a, 'sca.subscribers', [AOR])).body.result as Array<{ aor: string }>).map((x) => x.aor), [AOR]);
  t.same((await rpc(a, 'sca.all_appearances')).body.result, [{ aor: AOR, index: 2, state: 'seized', mtime: 1000, owner: P2, callee: '', uri: '', call_id: '', from_tag: '', to_tag: '' }]);
  t.equal(((await rpc(a, 'sca.show_appearance', [AOR, 2])).body.result as Array<{ owner: string }>)[0]!.owner, P2);

  const seized = await rpc(a, 'sca.seize_appearance', [AOR, 'sip:100@10.0.0.9']);
  t.same(seized.body.result, { aor: AOR, index: 1, owner: 'sip:100@10.0.0.9', message: `Seized ${AOR} appearance-index 1 for sip:100@10.0.0.9` });
  t.same((await rpc(a, 'sca.update_appearance', [AOR, '1', 'held'])).body.result, { aor: AOR, index: 1, state: 'held' }, 'a numeric string index, as kamcmd sends it');
  t.same((await rpc(a, 'sca.release_appearance', [AOR, 1])).body.result, { aor: AOR, index: 1, released: true });
  const deact = await rpc(a, 'sca.deactivate_subscription', [AOR, 'line-seize', P2]);
  t.same((deact.body.result as { deactivated: Array<{ subscriber: string }> }).deactivated.map((s) => s.subscriber), [P2]);
  const deactAll = await rpc(a, 'sca.deactivate_all_subscriptions', []);
  t.same((deactAll.body.result as { deactivated: Array<{ subscriber: string }> }).deactivated.map((s) => s.subscriber), [P1]);
  t.equal(a.sca.engine.countSubscriptions('call-info'), 0);
});

t.test('faults carry the module texts; usage and unknown methods are JSON-RPC errors', async (t) => {
  const { a, started } = app({ http_port: 0 });
  await started;
  t.teardown(() => a.stop());
  a.sca.engine.seizeAppearance(AOR, P1, 1000);
  t.same((await rpc(a, 'sca.update_appearance', [AOR, 1, 'ringing'])).body.error, { code: 500, message: 'ringing: invalid state' });
  t.same((await rpc(a, 'sca.release_appearance', [AOR, 0])).body.error, { code: 500, message: 'appearance-index must be > 0' });
  t.same((await rpc(a, 'sca.release_appearance', [AOR, 5])).body.error, { code: 500, message: `${AOR} appearance index 5 is not in use` });
  const usage = 'usage: sca.subscription_count {call-info | line-seize}';
  t.same((await rpc(a, 'sca.subscription_count', ['foo'])).body.error, {
    code: -32602, message: `event "foo" must be call-info or line-seize; ${usage}`,
    data: { problems: [{ param: 'event', why: 'event "foo" must be call-info or line-seize' }], usage },
  }, 'a bad param is named, with why, then the usage');
  t.same((await rpc(a, 'sca.release_appearance', [AOR, 1, 'extra'])).body.error?.code, -32602, 'too many params');
  t.same((await rpc(a, 'sca.all_appearances', { bogus: 1 })).body.error?.code, -32602, 'unknown named param');
  t.same((await rpc(a, 'sca.nope')).body.error?.code, -32601);
  const garbage = await a.http.inject({ method: 'POST', url: '/rpc', headers: { 'content-type': 'application/json' }, payload: '{"jsonrpc":' });
  t.equal(garbage.statusCode, 400, 'unparsable JSON is refused');
  t.equal((await rpc(a, 'sca.all_appearances')).status, 200, 'and the service goes on');
});

t.test('with a token, RPC and metrics need it; every mutation is logged with who and what', async (t) => {
  const token = 'correct-horse-battery-staple';
  const { a, logs, started } = app({ admin_token: token, http_port: 0 });
  await started;
  t.teardown(() => a.stop());
  t.equal((await rpc(a, 'sca.all_appearances')).status, 401);
  t.equal((await rpc(a, 'sca.all_appearances', [], { authorization: 'Bearer wrong-wrong-wrong-wrong' })).status, 401);
  t.equal((await a.http.inject({ url: '/metrics' })).statusCode, 401);
  t.equal((await a.http.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
  const seized = await rpc(a, 'sca.seize_appearance', [AOR, P1], { authorization: `Bearer ${token}` });
  t.equal(seized.status, 200);
  const line = logs.find((l) => l.msg === 'rpc mutation');
  t.ok(line, 'a log line for the mutation');
  t.same([line!.method, line!.params, line!.who], ['sca.seize_appearance', [AOR, P1], '127.0.0.1 (token)']);
  t.equal(logs.filter((l) => l.msg === 'rpc mutation').length, 1, 'reads are not logged as mutations');
});

t.test('binding beyond loopback without a token is refused at start', async (t) => {
  const r = loadConfig({ env: {}, overrides: { http_host: '0.0.0.0' } });
  t.notOk(r.ok);
  if (!r.ok) t.match(r.error, /admin_token/);
  t.ok(loadConfig({ env: {}, overrides: { http_host: '0.0.0.0', admin_token: 'x'.repeat(16) } }).ok);
  t.notOk(loadConfig({ env: {}, overrides: { admin_token: 'short' } }).ok, 'a short token is refused');
});

t.test('metrics: gauges follow the engine, names use the sca_ prefix and no AoR label', async (t) => {
  const { a, started } = app({ http_port: 0 });
  await started;
  t.teardown(() => a.stop());
  a.sca.engine.subscribe({ msg: subscribeMsg(P1), to_tag: 'a', now: 1000 });
  const out = a.sca.engine.subscribe({ msg: subscribeMsg(P2, { event: 'line-seize', expires: 15, callInfo: CI(1) }), to_tag: 'b', now: 1000 });
  a.sca.metrics.subscribed(out);
  a.sca.metrics.subscribed(a.sca.engine.subscribe({ msg: subscribeMsg(P1, { event: 'line-seize', expires: 15, callInfo: CI(1) }), to_tag: 'c', now: 1000 }));
  a.link.observer!.notifyAnswered(200, 0.004);
  a.link.observer!.notifyAnswered(481, 0.01);
  a.link.observer!.notifyTimedOut(2);
  const text = (await a.http.inject({ url: '/metrics' })).body;
  t.match(text, /^sca_subscriptions\{event="call-info"\} 1$/m);
  t.match(text, /^sca_subscriptions\{event="line-seize"\} 1$/m);
  t.match(text, /^sca_appearances\{state="seized"\} 1$/m);
  t.match(text, /^sca_line_seize_total\{result="granted"\} 1$/m);
  t.match(text, /^sca_line_seize_total\{result="rejected"\} 1$/m);
  t.match(text, /^sca_notify_total\{class="2xx"\} 1$/m);
  t.match(text, /^sca_notify_total\{class="4xx"\} 1$/m);
  t.match(text, /^sca_notify_total\{class="timeout"\} 2$/m);
  t.match(text, /^sca_notify_latency_seconds_count 2$/m);
  t.match(text, /^sca_evapi_connected 0$/m);
  t.match(text, /^process_cpu_seconds_total /m);
  t.notMatch(text, /sip:/, 'no AoR or URI in any label');
});
