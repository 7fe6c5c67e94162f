// What can be checked of the HA packaging without a Docker engine: docker/compose-ha.yaml is a
// consistent HA product (3 Galera nodes, 2 service nodes, 2 proxies each with its relay): every
// SCA_* / SCA_RELAY_* a real setting that loads, the HA settings agree (db_hosts names every
// Galera node, evapi_address every proxy, one relay token, distinct node ids), each proxy's
// call_control.so socket is its own relay's, on a volume only they share; the systemd units of a
// node and of a relay verify and restart always; the example env files are real settings.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { configSchema, loadConfig, type Config } from '../../../service/config.js';
import { loadRelayConfig, relayConfigSchema, type RelayConfig } from '../../../service/relay/config.js';
import { dependsOn, imageEnv, kamailioDefines, loadCompose, volumeOf, type ComposeService } from '../../support/compose.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const FILE = `${ROOT}docker/compose-ha.yaml`;
const SECRETS = {
  SCA_DB_PASSWORD: 'db-secret-0123456789', SCA_DB_ROOT_PASSWORD: 'root-secret-0123456789',
  SCA_ADMIN_TOKEN: 'admin-token-0123456789abcdef', SCA_CC_RELAY_TOKEN: 'relay-token-0123456789abcdef',
};
const compose = loadCompose(FILE, SECRETS);
const all = Object.entries(compose.services);
const galera = all.filter(([, s]) => s.image?.startsWith('mariadb:'));
const nodes = all.filter(([, s]) => s.environment?.SCA_HA_ENABLED !== undefined);
const relays = all.filter(([, s]) => s.command?.includes('bin/sca-cc-relay.js'));
const proxies = all.filter(([, s]) => s.build?.dockerfile === 'docker/kamailio.Dockerfile');

const nodeConfig = (s: ComposeService): Config => {
  const r = loadConfig({ env: imageEnv(`${ROOT}docker/Dockerfile`, s) });
  if (!r.ok) throw new Error(r.error);
  return r.config;
};
const relayConfig = (s: ComposeService): RelayConfig => {
  const r = loadRelayConfig({ env: s.environment });
  if (!r.ok) throw new Error(r.error);
  return r.config;
};
const defines = (s: ComposeService) => kamailioDefines(`${ROOT}kamailio/kamailio.cfg`, s.command!);
const portOf = (hostPort: string): string => hostPort.slice(hostPort.lastIndexOf(':') + 1);
/** A Galera service's SQL port (mariadbd's --port, else 3306). */
const sqlPort = (s: ComposeService): string => s.command?.find((a) => a.startsWith('--port='))?.split('=')[1] ?? '3306';
/** KEY=value lines of an env file (comments and blank lines skipped). */
const envFile = (file: string): Record<string, string> => Object.fromEntries(readFileSync(file, 'utf8').split('\n')
  .filter((l) => /^\s*[A-Z_][A-Z0-9_]*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1)]));

t.test('compose-ha: the topology is 3 Galera nodes, 2 service nodes, 2 proxies, a relay for each', async (t) => {
  t.same([galera.length, nodes.length, proxies.length, relays.length], [3, 2, 2, 2]);
  t.throws(() => loadCompose(FILE, { ...SECRETS, SCA_CC_RELAY_TOKEN: '' }), /SCA_CC_RELAY_TOKEN is required/, 'a secret left unset stops compose (no default token)');
});

t.test('compose-ha: every node\'s SCA_* names a real setting and loads; the HA settings agree', async (t) => {
  const configs = nodes.map(([name, s]) => {
    for (const k of Object.keys(s.environment!).filter((x) => x.startsWith('SCA_'))) t.ok(Object.hasOwn(configSchema.shape, k.slice(4).toLowerCase()), `${name}: ${k} names a setting`);
    return [name, s, nodeConfig(s)] as const;
  });
  t.same(configs.map(([, , c]) => c.ha_enabled), [true, true], 'ha_enabled on every node');
  t.equal(new Set(configs.map(([, , c]) => c.ha_node_id)).size, nodes.length, 'each node its own ha_node_id');
  const galeraHosts = galera.map(([name, s]) => `${name}:${sqlPort(s)}`).sort();
  const evapi = proxies.map(([name, s]) => `${name}:${portOf(defines(s).EVAPI_BIND!)}`).sort();
  for (const [name, s, c] of configs) {
    const url = new URL(c.db_url);
    t.equal(url.protocol, 'mysql:', `${name}: db_url is MariaDB`);
    for (const [gname, g] of galera) {
      const e = g.environment!;
      t.same([decodeURIComponent(url.username), decodeURIComponent(url.password), url.pathname.slice(1)], [e.MARIADB_USER, e.MARIADB_PASSWORD, e.MARIADB_DATABASE], `${name}: the user, password and database ${gname} creates`);
    }
    t.same([...c.db_hosts].sort(), galeraHosts, `${name}: db_hosts names every Galera node`);
    t.same([...c.evapi_address].sort(), evapi, `${name}: evapi_address names every proxy's EVAPI_BIND`);
    t.same([c.cc_door, c.call_control_socket], ['socket', ''], `${name}: call_control.so's door, through relays only`);
    t.ok(c.cc_relay_listen !== '' && c.cc_relay_token === SECRETS.SCA_CC_RELAY_TOKEN, `${name}: listens for relays with the relays' token`);
    t.equal(s.restart, 'always', `${name}: restart always (a node that loses its leadership exits 75 and comes back as a standby)`);
    t.same(dependsOn(s), Object.fromEntries(galera.map(([g]) => [g, 'service_healthy'])), `${name}: starts once every Galera node answers`);
  }
});

t.test('compose-ha: the Galera cluster names all three nodes, each with its own name and data', async (t) => {
  const cnf = readFileSync(`${ROOT}docker/galera/galera.cnf`, 'utf8');
  const address = /^wsrep_cluster_address\s*=\s*gcomm:\/\/(\S+)$/m.exec(cnf)?.[1]?.split(',').sort();
  t.same(address, galera.map(([n]) => n).sort(), 'wsrep_cluster_address lists every Galera service');
  t.match(cnf, /^wsrep_on\s*=\s*ON$/m);
  t.match(cnf, /^innodb_flush_log_at_trx_commit\s*=\s*1$/m);
  const volumes = new Set<string>();
  for (const [name, s] of galera) {
    t.ok(s.command!.includes(`--wsrep_node_name=${name}`) && s.command!.includes(`--wsrep_node_address=${name}`), `${name}: its own node name and address`);
    t.ok(s.volumes!.some((v) => v.startsWith('./galera/galera.cnf:/etc/mysql/conf.d/')), `${name}: mounts galera.cnf`);
    const data = volumeOf(s, '/var/lib/mysql');
    t.ok(data !== undefined && compose.volumes[data] !== undefined && !volumes.has(data), `${name}: its data on a volume of its own (${data})`);
    volumes.add(data!);
    t.ok(s.healthcheck?.test.length, `${name}: a healthcheck`);
  }
  const first = galera[0]![1];
  t.ok(first.command!.includes('--wsrep_on=ON') && !first.command!.includes('--wsrep-new-cluster'), 'galera1 joins by default');
  const bootstrap = loadCompose(FILE, { ...SECRETS, GALERA_NEW_CLUSTER: '--wsrep-new-cluster' }).services.galera1!;
  t.ok(bootstrap.command!.includes('--wsrep-new-cluster'), 'GALERA_NEW_CLUSTER=--wsrep-new-cluster starts a new cluster, once');
  for (const [name, s] of galera.slice(1)) t.same(dependsOn(s), { [galera[0]![0]]: 'service_healthy' }, `${name}: joins once galera1 answers`);
});

t.test('compose-ha: each proxy runs call_control.so against its own relay, which names the proxy and every node', async (t) => {
  const ids = new Set<string>();
  const nodeConfigs = nodes.map(([name, s]) => [name, nodeConfig(s)] as const);
  for (const [name, s] of proxies) {
    const d = defines(s);
    t.notOk('WITH_CC_LINK' in d, `${name}: the socket door (no WITH_CC_LINK)`);
    t.ok(d.PROXY_ID && !ids.has(d.PROXY_ID), `${name}: a PROXY_ID of its own (${d.PROXY_ID})`);
    ids.add(d.PROXY_ID!);
    t.notMatch(d.EVAPI_BIND!, /^127\./, `${name}: evapi reachable from the nodes (${d.EVAPI_BIND})`);
    const vol = volumeOf(s, d.CC_SOCKET!);
    t.ok(vol !== undefined && compose.volumes[vol] !== undefined, `${name}: CC_SOCKET ${d.CC_SOCKET} on a named volume`);
    const mine = relays.filter(([, r]) => volumeOf(r, d.CC_SOCKET!) === vol);
    t.equal(mine.length, 1, `${name}: one relay shares that volume`);
    t.equal(all.filter(([, x]) => [...Object.values(x.volumes ?? [])].some((v) => v.startsWith(`${vol}:`))).length, 2, `${name}: nobody else mounts ${vol}`);
    const [rname, r] = mine[0]!;
    for (const k of Object.keys(r.environment!).filter((x) => x.startsWith('SCA_RELAY_'))) t.ok(Object.hasOwn(relayConfigSchema.shape, k.slice(10).toLowerCase()), `${rname}: ${k} names a relay setting`);
    const rc = relayConfig(r);
    t.equal(rc.proxy_id, d.PROXY_ID, `${rname}: tells the nodes its proxy's PROXY_ID`);
    t.equal(rc.socket, d.CC_SOCKET, `${rname}: serves the socket call_control.so connects to`);
    t.same([...rc.nodes].sort(), nodeConfigs.map(([n, c]) => `${n}:${portOf(c.cc_relay_listen)}`).sort(), `${rname}: names every node's cc_relay_listen`);
    t.ok(nodeConfigs.every(([, c]) => c.cc_relay_token === rc.token), `${rname}: the nodes' token`);
    t.equal(r.restart, 'always', `${rname}: restart always`);
    t.same(r.healthcheck?.test, ['CMD', 'test', '-S', rc.socket], `${rname}: healthy once its socket exists (not the service's /healthz)`);
    t.same(dependsOn(s), { [rname]: 'service_healthy' }, `${name}: starts once its relay listens (call_control.so connects when Kamailio starts)`);
  }
  t.ok(existsSync(`${ROOT}bin/sca-cc-relay.js`), 'the relay\'s command exists');
  t.match(readFileSync(`${ROOT}docker/Dockerfile`, 'utf8'), /^COPY bin \.\/bin$/m, 'and the image has it');
});

const verify = (unit: string) => {
  const r = spawnSync('systemd-analyze', ['verify', `${ROOT}docker/${unit}`], { encoding: 'utf8' });
  if (r.error) throw new Error('systemd-analyze is missing: apt-get install -y systemd');
  // verify also loads the machine's own units: a warning about one of those is not about ours.
  return { status: r.status, ours: r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^\/(lib|usr\/lib|etc)\/systemd\//.test(l)) };
};
const directives = (unit: string): Record<string, string[]> => {
  const out: Record<string, string[]> = {};
  for (const l of readFileSync(`${ROOT}docker/${unit}`, 'utf8').split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(l);
    if (m) (out[m[1]!] ??= []).push(m[2]!);
  }
  return out;
};

t.test('the HA node\'s systemd unit: verifies, restarts always with no start limit, a bad configuration is not retried', async (t) => {
  t.same(verify('sca-service-ha.service'), { status: 0, ours: [] });
  const d = directives('sca-service-ha.service');
  t.same([d.Restart, d.StartLimitIntervalSec, d.RestartPreventExitStatus], [['always'], ['0'], ['2']]);
  t.match(d.ExecStart?.[0], /dist\/service\/main\.js$/);
  t.same(d.EnvironmentFile, ['/etc/default/sca-service'], 'its settings file is required (no node without them)');
});

t.test('the relay\'s systemd unit: verifies, restarts always, starts before Kamailio, the token as a credential', async (t) => {
  t.same(verify('sca-cc-relay.service'), { status: 0, ours: [] });
  const d = directives('sca-cc-relay.service');
  t.same([d.Restart, d.StartLimitIntervalSec, d.Before], [['always'], ['0'], ['kamailio.service']]);
  t.match(d.WantedBy?.[0], /kamailio\.service/, 'enabled, it comes with kamailio.service');
  t.match(d.ExecStart?.[0], /bin\/sca-cc-relay\.js$/);
  t.same(d.RuntimeDirectory, ['callcontrol'], '/run/callcontrol, where call_control.so looks by default');
  t.same(d.SupplementaryGroups, ['kamailio'], 'so its socket can be given to Kamailio\'s group');
  t.ok(d.LoadCredential?.[0]?.startsWith('relay-token:') && d.Environment?.includes('SCA_RELAY_TOKEN_FILE=%d/relay-token'), 'the token from a credential file, not the environment');
});

t.test('the example env files: every variable a real setting, and they load', async (t) => {
  const node = envFile(`${ROOT}docker/sca-service-ha.env.example`);
  for (const k of Object.keys(node)) t.ok(k.startsWith('SCA_') && Object.hasOwn(configSchema.shape, k.slice(4).toLowerCase()), `node: ${k} names a setting`);
  const n = loadConfig({ env: node });
  t.ok(n.ok && n.config.ha_enabled && n.config.db_hosts.length === 3 && n.config.cc_relay_listen !== '', n.ok ? 'the node example loads, HA on' : n.error);
  const relay = envFile(`${ROOT}docker/sca-cc-relay.env.example`);
  for (const k of Object.keys(relay)) t.ok(k.startsWith('SCA_RELAY_') && Object.hasOwn(relayConfigSchema.shape, k.slice(10).toLowerCase()), `relay: ${k} names a relay setting`);
  t.notOk('SCA_RELAY_TOKEN' in relay, 'no token in the relay\'s env file (a credential file)');
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-relay-env-'));
  writeFileSync(path.join(dir, 'token'), `${n.ok ? n.config.cc_relay_token : ''}\n`);
  const r = loadRelayConfig({ env: { ...relay, SCA_RELAY_TOKEN_FILE: path.join(dir, 'token') } });
  t.ok(r.ok, r.ok ? 'the relay example loads with the unit\'s token file' : r.error);
  if (r.ok && n.ok) t.ok(r.config.nodes.includes(n.config.cc_relay_listen), 'the relay example names the node example\'s cc_relay_listen');
});
