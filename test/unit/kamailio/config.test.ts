import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../../../service/config.js';

t.test('defaults carry the module parameter names and values', async (t) => {
  const r = loadConfig({ env: {} });
  t.ok(r.ok);
  if (!r.ok) return;
  t.same([r.config.call_info_max_expires, r.config.line_seize_max_expires, r.config.purge_expired_interval, r.config.max_appearances, r.config.evapi_address, r.config.http_host],
    [3600, 15, 120, 24, ['127.0.0.1:8448'], '127.0.0.1']);
});

t.test('file, then environment, then overrides', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-cfg-'));
  const file = path.join(dir, 'sca.json');
  writeFileSync(file, JSON.stringify({ max_appearances: 4, http_port: 9000, aor_max_appearances: { 'sip:1@x': 2 } }));
  const r = loadConfig({ file, env: { SCA_HTTP_PORT: '9100', SCA_EVAPI_ADDRESS: '127.0.0.1:1, 127.0.0.1:2' }, overrides: { log_level: 'warn' } });
  t.ok(r.ok);
  if (!r.ok) return;
  t.same([r.config.max_appearances, r.config.http_port, r.config.evapi_address, r.config.log_level, r.config.aor_max_appearances],
    [4, 9100, ['127.0.0.1:1', '127.0.0.1:2'], 'warn', { 'sip:1@x': 2 }]);
});

t.test('bad settings are refused with the name of the setting', async (t) => {
  const bad = loadConfig({ env: { SCA_MAX_APPEARANCES: 'lots' } });
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.error, /max_appearances/);
  const unknown = loadConfig({ env: {}, overrides: { max_apperances: 3 } });
  t.notOk(unknown.ok, 'a misspelt key is an error, not silently ignored');
  const badEvapi = loadConfig({ env: { SCA_EVAPI_ADDRESS: 'localhost' } });
  t.notOk(badEvapi.ok);
  const badJson = loadConfig({ env: { SCA_AOR_MAX_APPEARANCES: '{nope' } });
  t.notOk(badJson.ok);
  if (!badJson.ok) t.match(badJson.error, /environment/);
  const missing = loadConfig({ file: '/nonexistent/sca.json', env: {} });
  t.notOk(missing.ok);
  if (!missing.ok) t.match(missing.error, /config file/);
});
