// The sca.* RPC over HTTP, in-process (Fastify inject), with the real engine underneath.
import { Writable } from 'node:stream';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../../../service/app.js';
import { loadConfig } from '../../../service/config.js';
import { fakeKamailio, until } from '../../support/fake-kamailio.js';
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

t.test('metrics: what Kamailio sends through the link moves them; names use the sca_ prefix and no AoR label', async (t) => {
  // Everything comes the way it does in production: SUBSCRIBEs and NOTIFY replies over evapi.
  const k = await fakeKamailio();
  const { a, started } = app({ http_port: 0, evapi_address: [`127.0.0.1:${k.port}`] });
  await started;
  t.teardown(async () => { await a.stop(); await k.close(); });
  await until(() => a.link.connected === 1, 5000, 'the link');
  const metrics = async () => (await a.http.inject({ url: '/metrics' })).body;
  const subscribe = (id: string, msg: string, toTag: string) => k.send({ jsonrpc: '2.0', id, method: 'sca.subscribe', params: { tindex: 1, tlabel: 1, msg, to_tag: toTag } });
  subscribe('s1', subscribeMsg(P1), 'a');
  subscribe('s2', subscribeMsg(P2, { event: 'line-seize', expires: 15, callInfo: CI(1) }), 'b');
  subscribe('s3', subscribeMsg(P1, { event: 'line-seize', expires: 15, callInfo: CI(1) }), 'c');
  type Answer = { id: string; result: { code: number; notifies: Array<{ hdrs: string }> } };
  await until(() => (k.received as Answer[]).filter((f) => f.id?.startsWith('s')).length === 3, 5000, 'three answers');
  const answers = (k.received as Answer[]).filter((f) => f.id?.startsWith('s'));
  t.same(answers.map((x) => x.result.code), [202, 200, 480], 'subscribed, seized, refused');
  // Kamailio reports the final replies of the NOTIFYs it sent: one 200, one 481.
  const sent = answers.flatMap((x) => x.result.notifies).concat((k.received as Array<{ method?: string; params?: { notifies: Array<{ hdrs: string }> } }>).flatMap((f) => (f.method === 'link.notify' ? f.params!.notifies : [])));
  t.ok(sent.length >= 2, `${sent.length} NOTIFYs went out`);
  const idOf = (n: { hdrs: string }) => ({ call_id: /^Call-ID: (.*)$/m.exec(n.hdrs)![1]!.trim(), from_tag: /^From: .*;tag=([^;\r\n]+)/m.exec(n.hdrs)![1]!.trim(), cseq: Number(/^CSeq: (\d+)/m.exec(n.hdrs)![1]) });
  const seizeNotify = sent.find((n) => /^Event: line-seize/m.test(n.hdrs))!;
  const infoNotify = sent.find((n) => /^Event: call-info/m.test(n.hdrs))!;
  k.send({ jsonrpc: '2.0', method: 'sca.notify_reply', params: { ...idOf(seizeNotify), code: 200 } });
  k.send({ jsonrpc: '2.0', method: 'sca.notify_reply', params: { ...idOf(infoNotify), code: 481 } });
  await until(() => a.link.counters.received >= 5, 5000, 'the two replies');
  let text = '';
  const refresh = async () => { text = await metrics(); };
  await refresh();
  await until(() => { void refresh(); return /^sca_notify_total\{class="4xx"\} 1$/m.test(text); }, 5000, 'the replies counted');
  t.match(text, /^sca_subscriptions\{event="call-info"\} 0$/m, 'the 481 ended the call-info subscription');
  t.match(text, /^sca_subscriptions\{event="line-seize"\} 1$/m);
  t.match(text, /^sca_appearances\{state="seized"\} 1$/m);
  t.match(text, /^sca_line_seize_total\{result="granted"\} 1$/m);
  t.match(text, /^sca_line_seize_total\{result="rejected"\} 1$/m);
  t.match(text, new RegExp(`^sca_notify_sent_total ${sent.length}$`, 'm'), 'every NOTIFY handed to Kamailio counted');
  t.match(text, /^sca_notify_total\{class="2xx"\} 1$/m);
  t.match(text, /^sca_notify_total\{class="4xx"\} 1$/m);
  t.match(text, /^sca_notify_latency_seconds_count 2$/m, 'both with their latency (the service sent them)');
  t.match(text, /^sca_evapi_connected 1$/m);
  // The rest never get a reply: 40 s later the sweep (every 5 s) counts them as timeouts.
  const real = performance.now.bind(performance);
  performance.now = () => real() + 41_000;
  t.teardown(() => { performance.now = real; });
  await until(() => { void refresh(); return new RegExp(`^sca_notify_total\\{class="timeout"\\} ${sent.length - 2}$`, 'm').test(text); }, 7000, 'the timeouts counted');
  t.pass(`${sent.length - 2} timeouts counted`);
  t.match(text, /^process_cpu_seconds_total /m);
  t.notMatch(text, /sip:/, 'no AoR or URI in any label');
});
