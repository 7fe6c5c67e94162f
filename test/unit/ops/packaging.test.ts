// What can be checked of the packaging without a Docker engine: the compose file parses and
// wires the services together, the Dockerfiles copy what exists, the systemd unit verifies.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';

const ROOT = new URL('../../../', import.meta.url).pathname;

t.test('compose: Kamailio, the service and MariaDB, linked over loopback evapi', async (t) => {
  const json = execFileSync('/usr/bin/python3', ['-c', 'import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', `${ROOT}docker/compose.yaml`]).toString();
  const compose = JSON.parse(json) as { services: Record<string, { build?: { dockerfile: string }; command?: string[]; environment?: Record<string, string>; depends_on?: string[] }> };
  t.same(Object.keys(compose.services).sort(), ['kamailio', 'mariadb', 'sca-service']);
  const kam = compose.services.kamailio!;
  const svc = compose.services['sca-service']!;
  t.same(svc.depends_on?.sort(), ['kamailio', 'mariadb']);
  const evapiBind = kam.command!.find((a) => a.startsWith('EVAPI_BIND='))!;
  t.equal(evapiBind, `EVAPI_BIND="${svc.environment!.SCA_EVAPI_ADDRESS}"`, 'the service connects where Kamailio listens');
  for (const s of [kam, svc]) t.ok(existsSync(`${ROOT}${s.build!.dockerfile}`), `${s.build!.dockerfile} exists`);
});

t.test('Dockerfiles copy paths that exist and start what the README starts', async (t) => {
  for (const file of ['docker/Dockerfile', 'docker/kamailio.Dockerfile']) {
    const text = readFileSync(`${ROOT}${file}`, 'utf8');
    for (const [, src] of text.matchAll(/^COPY\s+(?!--from)(\S+)/gm)) {
      for (const part of src!.split(/\s+/)) t.ok(existsSync(`${ROOT}${part}`), `${file}: COPY ${part}`);
    }
  }
  const svc = readFileSync(`${ROOT}docker/Dockerfile`, 'utf8');
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: { service: string; build: string } };
  t.match(svc, /CMD \["node", "dist\/service\/main.js"\]/, 'compiled JavaScript, no tsx at run time');
  t.match(svc, /RUN npm run build/);
  t.equal(pkg.scripts.service, 'node dist/service/main.js', 'the same command as npm run service, the README\'s way to run the service alone');
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
