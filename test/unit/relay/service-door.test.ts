// The service's end of sca-cc-relay, in-process: buildApp with cc_relay_listen, a fake Kamailio on
// the link (its PROXY_ID is "fake") and a real relay with that proxy id. A call admitted through
// the relay is the socket door's, counted and limited like any; it records its proxy, so the
// service ends it over that proxy's link (link.rpc), and the relay's stop ends it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { buildApp } from '../../../service/app.js';
import { loadConfig } from '../../../service/config.js';
import { loadRelayConfig } from '../../../service/relay/config.js';
import { jsonLogger } from '../../../service/relay/log.js';
import { startRelay } from '../../../service/relay/program.js';
import { ccInit, ccStart, ccStop, CcWorker } from '../../support/cc-worker.js';
import { fakeKamailio } from '../../support/fake-kamailio.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { until } from '../../support/wait.js';

const TOKEN = 'service-relay-token-42';

/** The service with the relay's door open (cc_relay_listen) and its link to the fake Kamailio. */
async function startService(t: Test, evapiPort: number, dir: string, logger: false | { level: string; stream: Writable }) {
  const cfg = loadConfig({
    env: {},
    overrides: {
      evapi_address: [`127.0.0.1:${evapiPort}`], http_port: 0, db_url: `sqlite:${dir}/s.sqlite`, call_control_socket: '', cc_jsonrpc_address: 'udp:127.0.0.1:9',
      cc_relay_listen: '127.0.0.1:0', cc_relay_token: TOKEN,
    },
  });
  if (!cfg.ok) throw new Error(cfg.error);
  const app = buildApp(cfg.config, { logger });
  await app.start();
  t.teardown(() => app.stop());
  return app;
}

t.test('a call through the relay: admitted and limited by the engine, recorded with its proxy, ended over that proxy\'s link, stopped by the relay', async (t) => {
  const k = await fakeKamailio();
  t.teardown(() => k.close());
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-relay-door-'));
  const logs: Array<{ msg: string; [k: string]: unknown }> = [];
  const stream = new Writable({ write(chunk, _e, cb) { logs.push(JSON.parse(String(chunk)) as (typeof logs)[number]); cb(); } });
  const app = await startService(t, k.port, dir, { level: 'info', stream });
  await until(() => app.link.proxies.includes('fake'), 5000, 'the link to the fake Kamailio');
  t.notOk(logs.some((l) => /CALL CONTROL OFF/.test(l.msg)), 'no "call control off" warning: the relay is the door');

  const relayCfg = loadRelayConfig({ env: {}, overrides: { socket: path.join(dir, 'cc.sock'), nodes: [`127.0.0.1:${app.relay!.port}`], token: TOKEN, proxy_id: 'fake' } });
  if (!relayCfg.ok) throw new Error(relayCfg.error);
  const relay = await startRelay(relayCfg.config, jsonLogger('silent'));
  t.teardown(() => relay.stop());
  await until(() => relay.relay.status().leader !== undefined, 5000, 'the relay to reach the service');
  const ready = (await app.http.inject({ url: '/readyz' })).json() as { cc_relay: { relays: Array<{ proxy: string }> } };
  t.same(ready.cc_relay.relays.map((r) => r.proxy), ['fake'], '/readyz lists the relay and its proxy');
  t.notOk(logs.some((l) => JSON.stringify(l).includes(TOKEN)), 'the token is in no log line');

  const rpc = async (method: string, params: unknown) =>
    (await app.http.inject({ method: 'POST', url: '/rpc', payload: { jsonrpc: '2.0', id: 1, method, params } })).json() as { result?: any; error?: { message: string } };
  t.ok((await rpc('cc.account_set', { account: 'alice@example.com', max_calls: 1 })).result);
  const w = await CcWorker.connect(relayCfg.config.socket);
  t.teardown(() => w.close());
  t.equal((await w.ask(ccInit('r1'))).reply, 'Limited', 'admitted');
  t.equal((await w.ask(ccInit('r2'))).reply, 'Locked', 'the second call of a max_calls 1 account: refused');
  t.equal((await w.ask(ccStart('r1', '12:34'))).reply, 'Ok', 'answered');
  const calls = (await rpc('cc.calls', {})).result as Array<{ call_id: string; state: string }>;
  t.same(calls.map((c) => [c.call_id, c.state]), [['r1', 'active']]);
  t.equal(app.cc.engine.callsOf()[0]?.proxy, 'fake', 'the call records the relay\'s proxy');

  t.ok((await rpc('cc.end_call', { call_id: 'r1' })).result, 'the operator ends it');
  type Rpc = { method?: string; params: { rpc: { method: string; params: unknown[] } } };
  const endDlg = () => (k.received as Rpc[]).find((f) => f.method === 'link.rpc' && f.params.rpc.method === 'dlg.end_dlg');
  await until(() => endDlg() !== undefined, 5000, 'dlg.end_dlg over the link');
  t.same(endDlg()!.params.rpc.params, [12, 34], 'dlg.end_dlg of its dialog, on the link of the proxy that carried it');

  t.equal((await w.ask(ccStop('r1'))).reply, 'Ok', 'Kamailio reports the end through the relay');
  await until(async () => ((await rpc('cc.calls', {})).result as unknown[]).length === 0, 5000, 'the call no longer counted');
  const cdrs = (await rpc('cc.cdrs', {})).result as Array<{ call_id: string; cause: string }>;
  t.same(cdrs.map((c) => [c.call_id, c.cause]), [['r1', 'admin']], 'one CDR');
});

t.test('a stop kept by the relay through an outage is billed to when Kamailio sent it, not when the service got it', async (t) => {
  const k = await fakeKamailio();
  t.teardown(() => k.close());
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-relay-late-'));
  const app = await startService(t, k.port, dir, false);
  // The relay reaches the service through a proxy that can cut the network.
  const net = await TcpProxy.start({ host: '127.0.0.1', port: app.relay!.port! });
  t.teardown(() => net.close());
  const relayCfg = loadRelayConfig({ env: {}, overrides: { socket: path.join(dir, 'cc.sock'), nodes: [net.address], token: TOKEN, proxy_id: 'fake', connect_timeout: 0.3, retry_interval: 0.1 } });
  if (!relayCfg.ok) throw new Error(relayCfg.error);
  const relay = await startRelay(relayCfg.config, jsonLogger('silent'));
  t.teardown(() => relay.stop());
  await until(() => relay.relay.status().leader !== undefined, 5000, 'the relay to reach the service');
  const rpc = async (method: string, params: unknown) =>
    (await app.http.inject({ method: 'POST', url: '/rpc', payload: { jsonrpc: '2.0', id: 1, method, params } })).json() as { result?: any };
  await rpc('cc.rate_set', { prefix: '4', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  await rpc('cc.account_set', { account: 'alice@example.com', prepaid: true, balance: 1000 });
  const w = await CcWorker.connect(relayCfg.config.socket);
  t.teardown(() => w.close());
  const init = ccInit('late1').replace('sip:bob@example.com', 'sip:4000@example.com');
  t.equal((await w.ask(init)).reply, 'Limited');
  t.equal((await w.ask(ccStart('late1', '5:6'))).reply, 'Ok');
  const answeredAt = performance.now();
  await until(() => performance.now() - answeredAt >= 1000, 2000, 'one second of call'); // the call's length: the scenario
  net.blackhole();
  net.reset();
  await until(() => relay.relay.status().leader === undefined, 5000, 'the relay to lose the service');
  const hungUpAt = performance.now();
  t.equal((await w.ask(ccStop('late1'))).reply, 'Error', 'kept: no service to answer it');
  await until(() => performance.now() - hungUpAt >= 2500, 3000, 'a 2.5 s outage'); // the outage's length: the scenario
  net.heal();
  await until(async () => ((await rpc('cc.calls', {})).result as unknown[]).length === 0, 10_000, 'the replayed stop to end the call');
  const [cdr] = (await rpc('cc.cdrs', {})).result as Array<{ duration_ms: number; duration: number; amount: number; cause: string }>;
  const lived = hungUpAt - answeredAt;
  t.equal(cdr!.cause, 'normal');
  t.ok(Math.abs(cdr!.duration_ms - lived) < 500, `billed ${cdr!.duration_ms} ms (${cdr!.duration} s, ${cdr!.amount}) for a call of ${Math.round(lived)} ms whose stop arrived ${Math.round(performance.now() - hungUpAt)} ms late`);
});

t.test('cc_relay_listen needs cc_relay_token', async (t) => {
  const r = loadConfig({ env: { SCA_CC_RELAY_LISTEN: '0.0.0.0:8460' } });
  t.match(!r.ok && r.error, /cc_relay_token: cc_relay_listen needs cc_relay_token/);
  const bad = loadConfig({ env: { SCA_CC_RELAY_LISTEN: 'nohost', SCA_CC_RELAY_TOKEN: TOKEN } });
  t.match(!bad.ok && bad.error, /cc_relay_listen: host:port/);
  t.ok(loadConfig({ env: { SCA_CC_RELAY_LISTEN: '[::]:8460', SCA_CC_RELAY_TOKEN: TOKEN } }).ok);
});
