// What can be checked of the packaging without a Docker engine: the compose file is a working
// single-node deployment (every SCA_* variable a real setting that loads, the state on MariaDB
// with its data on a volume, every path both containers use on a volume they share, the values
// the two sides must agree on equal), the Kamailio image has the Debian package of every module
// the cfgs load, the Dockerfiles copy what exists, the systemd unit verifies.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { configSchema, loadConfig } from '../../../service/config.js';
import { dependsOn, imageEnv, kamailioDefines as definesOf, loadCompose, volumeOf } from '../../support/compose.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

const compose = loadCompose(`${ROOT}docker/compose.yaml`);
const svc = compose.services['sca-service']!;
const kam = compose.services.kamailio!;
const db = compose.services.mariadb!;

/** SCA_* settings of the service: the image's ENV, then compose's environment over it. */
const serviceEnv = (): Record<string, string> => imageEnv(`${ROOT}docker/Dockerfile`, svc);
/** Kamailio's defines: the cfg's #!define defaults, then compose's -A NAME=value over them. */
const kamailioDefines = (): Record<string, string> => definesOf(`${ROOT}kamailio/kamailio.cfg`, kam.command!);

t.test('compose: every SCA_* variable is a real setting, and together they load', async (t) => {
  const env = serviceEnv();
  const keys = Object.keys(env).filter((k) => k.startsWith('SCA_'));
  t.ok(keys.length >= 8, 'the service is configured through SCA_* variables');
  // The service reads only the SCA_* names of its settings: a misspelt one would be ignored.
  for (const k of keys) t.ok(k === 'SCA_CONFIG' || Object.hasOwn(configSchema.shape, k.slice(4).toLowerCase()), `${k} names a setting of service/config.ts`);
  const loaded = loadConfig({ env });
  t.ok(loaded.ok, loaded.ok ? 'loads' : loaded.error);
});

t.test('compose: the state is on MariaDB, whose data is on a volume; the order of start', async (t) => {
  const cfg = loadConfig({ env: serviceEnv() });
  if (!cfg.ok) throw new Error(cfg.error);
  const url = new URL(cfg.config.db_url);
  t.equal(url.protocol, 'mysql:', 'db_url names MySQL/MariaDB (not the SQLite file inside the container)');
  const e = db.environment!;
  t.same([decodeURIComponent(url.username), decodeURIComponent(url.password), url.pathname.slice(1)], [e.MARIADB_USER, e.MARIADB_PASSWORD, e.MARIADB_DATABASE], 'the user, password and database MariaDB creates');
  const port = db.command?.find((a) => a.startsWith('--port='))?.split('=')[1] ?? '3306';
  t.same([url.hostname, url.port || '3306'], ['127.0.0.1', port], 'where MariaDB listens (host network)');
  t.ok(db.command?.includes('--bind-address=127.0.0.1'), 'MariaDB only on loopback');
  t.ok(compose.volumes[volumeOf(db, '/var/lib/mysql') ?? ''] !== undefined, 'MariaDB\'s data on a named volume');
  if (cfg.config.cc_cdr_file !== '') t.ok(volumeOf(svc, cfg.config.cc_cdr_file), 'CDR lines on a volume');
  t.same(dependsOn(svc), { mariadb: 'service_healthy' }, 'the service starts once MariaDB answers');
  t.ok(db.healthcheck?.test.length, 'MariaDB has a healthcheck');
  t.same(dependsOn(kam), { 'sca-service': 'service_healthy' }, 'Kamailio starts once the service listens: call_control.so connects at its start');
  t.match(readFileSync(`${ROOT}docker/Dockerfile`, 'utf8'), /^HEALTHCHECK .*\/healthz/m, 'the service image has the healthcheck that condition waits on');
});

t.test('compose: what the two containers must agree on is equal, and every path they share is on a shared volume', async (t) => {
  const cfg = loadConfig({ env: serviceEnv() });
  if (!cfg.ok) throw new Error(cfg.error);
  const c = cfg.config;
  const k = kamailioDefines();
  t.equal(k.EVAPI_BIND, c.evapi_address.join(','), 'the service connects where Kamailio\'s evapi listens');
  t.equal(k.JSONRPC_SOCK, c.cc_jsonrpc_address, 'the service ends calls where Kamailio\'s jsonrpcs listens');
  t.equal(k.CC_SOCKET, c.call_control_socket, 'call_control.so connects to the service\'s socket');
  t.ok(c.call_control_socket !== '', 'the socket door is on');
  // Every file path either side names (Kamailio's defines, the service's settings).
  const pathsOf = (values: unknown[]): Set<string> => new Set(values.flatMap((v) => (typeof v === 'string' ? [v.replace(/^(unix|sqlite):/, '')] : [])).filter((v) => v.startsWith('/')).map((v) => path.posix.normalize(v)));
  const kamPaths = pathsOf(Object.values(k));
  const svcPaths = pathsOf(Object.values(c));
  const shared = [...kamPaths].filter((p) => svcPaths.has(p));
  t.ok(shared.includes(c.call_control_socket), 'the socket is a path both use');
  for (const p of shared) {
    const a = volumeOf(kam, p);
    const b = volumeOf(svc, p);
    t.ok(a !== undefined && a === b && compose.volumes[a] !== undefined, `${p}: on one named volume both containers mount (kamailio: ${a}, sca-service: ${b})`);
  }
  // A path only one side uses must still be writable: the service's under a volume or its image's dirs.
  for (const p of [c.call_control_socket, ...(c.cc_cdr_file ? [c.cc_cdr_file] : [])]) t.ok(volumeOf(svc, p), `${p} is on a volume of the service`);
});

/**
 * The Debian package of every module kamailio/*.cfg may load, checked against dpkg -S where
 * Kamailio is installed (npm test installs it), so the table cannot go stale there.
 */
const MODULE_PACKAGE: Record<string, string> = {
  'auth.so': 'kamailio', 'auth_db.so': 'kamailio', 'call_control.so': 'kamailio', 'corex.so': 'kamailio', 'ctl.so': 'kamailio',
  'db_sqlite.so': 'kamailio-sqlite-modules', 'dialog.so': 'kamailio', 'evapi.so': 'kamailio-extra-modules', 'htable.so': 'kamailio', 'ipops.so': 'kamailio',
  'jansson.so': 'kamailio-extra-modules', 'jsonrpcs.so': 'kamailio', 'kex.so': 'kamailio', 'maxfwd.so': 'kamailio', 'mqueue.so': 'kamailio',
  'pv.so': 'kamailio', 'registrar.so': 'kamailio', 'rr.so': 'kamailio', 'sanity.so': 'kamailio', 'sca.so': 'kamailio', 'siputils.so': 'kamailio',
  'sl.so': 'kamailio', 'textops.so': 'kamailio', 'textopsx.so': 'kamailio', 'tm.so': 'kamailio', 'tmx.so': 'kamailio', 'usrloc.so': 'kamailio',
  'xlog.so': 'kamailio', 'nathelper.so': 'kamailio', 'tcpops.so': 'kamailio', 'tls.so': 'kamailio-tls-modules',
};

t.test('the Kamailio image installs the package of every module the cfgs load', async (t) => {
  const cfgs = readdirSync(`${ROOT}kamailio`).filter((f) => f.endsWith('.cfg'));
  const modules = new Set(cfgs.flatMap((f) => [...readFileSync(`${ROOT}kamailio/${f}`, 'utf8').matchAll(/^\s*loadmodule\s+"([^"]+)"/gm)].map((m) => path.basename(m[1]!))));
  t.ok(modules.has('call_control.so') && modules.has('db_sqlite.so'), 'the cfgs read (call_control.so, and db_sqlite.so of WITH_AUTH)');
  const dockerfile = readFileSync(`${ROOT}docker/kamailio.Dockerfile`, 'utf8').replace(/\\\n/g, ' ');
  const installed = new Set(dockerfile.match(/apt-get install ([^&]+)/)![1]!.split(/\s+/).filter((w) => w !== '' && !w.startsWith('-')));
  const dpkg = spawnSync('dpkg', ['-S', ...[...modules].map((m) => `*/kamailio/modules/${m}`)], { encoding: 'utf8' });
  const fromDpkg = new Map<string, string>();
  for (const line of dpkg.stdout?.split('\n') ?? []) {
    const m = /^([^:]+)(?::\w+)?: .*\/modules\/([^/]+)$/.exec(line);
    if (m) fromDpkg.set(m[2]!, m[1]!);
  }
  for (const m of [...modules].sort()) {
    const pkg = MODULE_PACKAGE[m];
    t.ok(pkg, `${m}: its package is in the table`);
    if (fromDpkg.has(m)) t.equal(fromDpkg.get(m), pkg, `${m}: dpkg -S agrees (${fromDpkg.get(m)})`);
    if (pkg) t.ok(installed.has(pkg), `${m}: ${pkg} is installed in kamailio.Dockerfile`);
  }
  if (fromDpkg.size === 0) t.comment('Kamailio is not installed here: the table was not checked against dpkg');
  t.match(dockerfile, /mkdir -p [^\n]*\/run\/kamailio/, 'the ctl socket\'s directory exists (CTL_SOCK unix:/run/kamailio/...)');
  t.match(kamailioDefines().CTL_SOCK, /^unix:\/run\/kamailio\//);
});

t.test('Dockerfiles copy paths that exist and start what the README starts', async (t) => {
  for (const file of ['docker/Dockerfile', 'docker/kamailio.Dockerfile']) {
    const text = readFileSync(`${ROOT}${file}`, 'utf8');
    for (const [, src] of text.matchAll(/^COPY\s+(?!--from)(\S+)/gm)) {
      for (const part of src!.split(/\s+/)) t.ok(existsSync(`${ROOT}${part}`), `${file}: COPY ${part}`);
    }
  }
  for (const [name, s] of Object.entries(compose.services)) {
    if (s.build) t.ok(existsSync(`${ROOT}${s.build.dockerfile}`), `${name}: ${s.build.dockerfile} exists`);
    for (const v of s.volumes ?? []) if (v.startsWith('./')) t.ok(existsSync(path.join(ROOT, 'docker', v.split(':')[0]!)), `${name}: mounts ${v.split(':')[0]} that exists`);
  }
  const dockerfile = readFileSync(`${ROOT}docker/Dockerfile`, 'utf8');
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: { service: string; build: string } };
  t.match(dockerfile, /CMD \["node", "dist\/service\/main.js"\]/, 'compiled JavaScript, no tsx at run time');
  t.match(dockerfile, /RUN npm run build/);
  t.equal(pkg.scripts.service, 'node dist/service/main.js', 'the same command as npm run service, the README\'s way to run the service alone');
  t.match(dockerfile, /chown node:node [^\n]*\/run\/callcontrol/, 'the service (user node) may create its socket there');
  t.match(readFileSync(`${ROOT}docker/kamailio.Dockerfile`, 'utf8'), /COPY kamailio\/ \/etc\/kamailio\//);
});

t.test('the systemd unit passes systemd-analyze verify', async (t) => {
  const r = spawnSync('systemd-analyze', ['verify', `${ROOT}docker/sca-service.service`], { encoding: 'utf8' });
  if (r.error) throw new Error('systemd-analyze is missing: apt-get install -y systemd');
  t.equal(r.status, 0);
  // verify also loads the machine's own units: a warning about one of those (e.g. MariaDB's
  // garb.service: "Special user nobody configured") is not about ours.
  const ours = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^\/(lib|usr\/lib|etc)\/systemd\//.test(l));
  t.same(ours, [], 'no warnings about our unit');
});
