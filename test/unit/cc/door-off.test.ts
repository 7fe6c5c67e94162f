// A call-control door that is off says so: the socket door (call_control.so, kamailio.cfg's default)
// with no call_control_socket leaves every call uncounted, so the service logs it at start and
// /readyz's detail carries it. The link door needs no socket: no warning then.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { buildApp } from '../../../service/app.js';
import { loadConfig } from '../../../service/config.js';

async function started(t: Test, settings: Record<string, unknown>) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cc-door-off-'));
  const logs: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const stream = new Writable({ write(chunk, _e, cb) { logs.push(JSON.parse(String(chunk)) as (typeof logs)[number]); cb(); } });
  const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], http_port: 0, db_url: `sqlite:${dir}/s.sqlite`, cc_jsonrpc_address: 'udp:127.0.0.1:9', ...settings } });
  if (!cfg.ok) throw new Error(cfg.error);
  const app = buildApp(cfg.config, { logger: { level: 'info', stream } });
  await app.start();
  t.teardown(() => app.stop());
  const cc = ((await app.http.inject({ url: '/readyz' })).json() as { modules: { cc: { detail: Record<string, unknown> } } }).modules.cc.detail;
  return { logs: logs.filter((l) => /CALL CONTROL OFF/.test(l.msg)), cc, dir };
}

t.test('the socket door with no socket (the default door, call_control_socket=""): a WARN at start, and /readyz says why', async (t) => {
  const { logs, cc } = await started(t, { call_control_socket: '' });
  t.equal(logs.length, 1, 'one log line at start');
  t.match(logs[0], { level: 40, door: 'socket', msg: /^CALL CONTROL OFF: call_control_socket is empty while cc_door is socket: .*every call goes on uncounted/ });
  t.match(cc, { door: 'socket', socket: 'off', warning: /^CALL CONTROL OFF: .*every call goes on uncounted/ });
});

t.test('the link door (cc-routes.cfg) needs no socket; cc_door=none says call control is not used: no warning', async (t) => {
  for (const door of ['link', 'none']) {
    const { logs, cc } = await started(t, { call_control_socket: '', cc_door: door });
    t.equal(logs.length, 0, `${door}: nothing to warn about`);
    t.match(cc, { door, socket: 'off' });
    t.notOk('warning' in cc, `${door}: no warning in /readyz`);
  }
});

t.test('the socket door with its socket: no warning', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cc-door-on-'));
  const { logs, cc } = await started(t, { call_control_socket: path.join(dir, 'cc.sock') });
  t.equal(logs.length, 0);
  t.match(cc, { door: 'socket', socket: path.join(dir, 'cc.sock') });
  t.notOk('warning' in cc);
});
