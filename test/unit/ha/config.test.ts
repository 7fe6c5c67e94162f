// The HA settings in the one config schema: defaults, HA on SQLite refused with a clear message,
// db_hosts from the environment.
import t from 'tap';
import { loadConfig } from '../../../service/config.js';

const MYSQL = 'mysql://sca:secret@db1:3306/sca';

t.test('HA is off by default, with ttl 3 s, renewal 1 s, poll 0.5 s, max clock offset 1 s, no db_hosts', async (t) => {
  const r = loadConfig({ env: {} });
  t.ok(r.ok);
  if (r.ok) t.match(r.config, { ha_enabled: false, ha_lease_ttl: 3, ha_renew_interval: 1, ha_poll_interval: 0.5, ha_max_clock_offset: 1, db_hosts: [] });
});

t.test('ha_enabled with a sqlite: db_url is a configuration error that says why', async (t) => {
  const r = loadConfig({ env: {}, overrides: { ha_enabled: true, ha_node_id: 'n1', db_url: 'sqlite:/tmp/x.sqlite' } });
  t.notOk(r.ok);
  if (!r.ok) t.match(r.error, /^ha_enabled: needs a shared MySQL\/MariaDB db_url \(mysql:\/\/\.\.\.\)/);
  const dflt = loadConfig({ env: { SCA_HA_ENABLED: 'true', SCA_HA_NODE_ID: 'n1' } });
  t.notOk(dflt.ok, 'the default db_url is SQLite: refused too');
});

t.test('ha_enabled needs ha_node_id; renewals must fit the lease twice', async (t) => {
  const noId = loadConfig({ env: {}, overrides: { ha_enabled: 'yes', db_url: MYSQL } });
  t.notOk(noId.ok);
  if (!noId.ok) t.match(noId.error, /ha_node_id: needs ha_node_id/);
  const slow = loadConfig({ env: {}, overrides: { ha_enabled: true, ha_node_id: 'n1', db_url: MYSQL, ha_lease_ttl: 2, ha_renew_interval: 1 } });
  t.notOk(slow.ok);
  if (!slow.ok) t.match(slow.error, /ha_renew_interval: at most 0.4 × ha_lease_ttl/);
  t.notOk(loadConfig({ env: {}, overrides: { ha_node_id: 'has space' } }).ok, 'node ids are plain names');
});

t.test('HA from the environment: db_hosts comma-separated, numbers and booleans as text', async (t) => {
  const r = loadConfig({ env: { SCA_DB_URL: MYSQL, SCA_DB_HOSTS: 'db1:3311, db2:3312,[::1]:3313', SCA_HA_ENABLED: '1', SCA_HA_NODE_ID: 'node-a', SCA_HA_LEASE_TTL: '5', SCA_HA_RENEW_INTERVAL: '1.5' } });
  t.ok(r.ok, r.ok ? '' : r.error);
  if (r.ok) t.match(r.config, { ha_enabled: true, ha_node_id: 'node-a', ha_lease_ttl: 5, ha_renew_interval: 1.5, db_hosts: ['db1:3311', 'db2:3312', '[::1]:3313'] });
  const bad = loadConfig({ env: { SCA_DB_URL: MYSQL, SCA_DB_HOSTS: 'db1:99999' } });
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.error, /db_hosts\.0: host:port/);
  const sqliteHosts = loadConfig({ env: { SCA_DB_HOSTS: 'db1:3311' } });
  t.notOk(sqliteHosts.ok, 'db_hosts with a sqlite: db_url is refused');
});
