// The README's first command: `npm start` brings up Kamailio and the compiled service; the
// scripted phones register and call through it; `npm stop` stops both. And the service alone,
// with no Kamailio to reach, says so and /readyz says why.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { rpc } from '../support/rpc.js';
import { Phone, sdp } from '../support/sip-phone.js';
import { externalPorts, onFreePorts } from '../support/ports.js';
import { DOMAIN, lineState, subscribeCallInfo } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

t.test('npm start: a working proxy with shared lines and call control; npm stop ends it', async (t) => {
  const { sip, tcp, tls, http, dir, started } = await onFreePorts(['udp', 'tcp', 'tcp', 'udp', 'tcp', 'tcp'], async ([sip, evapi, http, jsonrpc, tcp, tls]) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'npm-start-'));
    const args = ['--sip-port', String(sip), '--tcp-port', String(tcp), '--tls-port', String(tls), '--evapi-port', String(evapi), '--http-port', String(http),
      '--jsonrpc-port', String(jsonrpc), '--dir', dir];
    try {
      return { sip: sip!, tcp: tcp!, tls: tls!, http: http!, dir, started: await run('npm', ['start', '--', ...args], { cwd: ROOT }) };
    } catch (err) {
      await run('npm', ['stop', '--', '--sip-port', String(sip), '--dir', dir], { cwd: ROOT }).catch(() => undefined);
      throw err;
    }
  });
  t.teardown(() => run('npm', ['stop', '--', '--sip-port', String(sip), '--dir', dir], { cwd: ROOT }).then(() => undefined, () => undefined));
  t.match(started.stdout, `phones register at   udp:127.0.0.1:${sip}, tcp:127.0.0.1:${tcp}, tls:127.0.0.1:${tls}, domain ${DOMAIN}`);
  t.match(started.stdout, `TLS certificate      ${dir}/tls/sip-cert.pem (self-signed`, 'the first start made a certificate and says where');
  t.ok(existsSync(`${dir}/tls/sip-cert.pem`) && existsSync(`${dir}/tls/sip-key.pem`));
  t.match(started.stdout, `live view            http://127.0.0.1:${http}/`);
  t.match(started.stdout, `call-control socket  ${dir}/cc.sock`);
  t.match(started.stdout, /stop with\s+npm stop/);
  const ps = await run('ps', ['-o', 'args=', '-C', 'node'], { cwd: ROOT });
  t.match(ps.stdout, `${ROOT}/dist/service/main.js`, 'the compiled service runs, not tsx');

  const phones = await Promise.all([new Phone('p1', '100', DOMAIN, sip), new Phone('p2', '100', DOMAIN, sip), new Phone('bob', '200', DOMAIN, sip)].map(async (p) => { await p.start(); return p; }));
  t.teardown(() => { for (const p of phones) p.stop(); });
  const [p1, p2, bob] = phones as [Phone, Phone, Phone];
  for (const p of phones) t.equal((await p.register()).status, 200, `${p.name} registered`);
  t.equal((await subscribeCallInfo(p2)).status, 202, 'a shared-line subscription');
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  await rpc(http, 'cc.account_set', { account: `100@${DOMAIN}`, max_calls: 1 });
  const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  t.equal(call.final.status, 200, 'a call goes through');
  await p2.waitFor(() => p2.notifies('call-info').some((n) => lineState(n) === '1:active'), 4000, 'the lamp');
  t.pass('the other phone on the line sees it active');
  t.equal((await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4002) })).final.status, 403, 'a second call is over the account\'s limit');
  await p1.inDialog(call.dialog!, 'BYE').final;

  const status = await run('npm', ['run', 'status', '--', '--sip-port', String(sip), '--dir', dir, '--http-port', String(http)], { cwd: ROOT });
  t.match(status.stdout, /kamailio: running[\s\S]*service: running[\s\S]*ready: yes/);
  await run('npm', ['stop', '--', '--sip-port', String(sip), '--dir', dir], { cwd: ROOT });
  const after = await run('npm', ['run', 'status', '--', '--sip-port', String(sip), '--dir', dir, '--http-port', String(http)], { cwd: ROOT });
  t.match(after.stdout, /kamailio: stopped[\s\S]*service: stopped/);
});

t.test('npm start with the call-control socket off: the summary, the log and /readyz say calls go uncounted; not with --cc-link', async (t) => {
  const start = async (extra: string[]) => {
    const [sip, evapi, http, jsonrpc, tcp, tls] = await externalPorts(['udp', 'tcp', 'tcp', 'udp', 'tcp', 'tcp']);
    const dir = mkdtempSync(path.join(tmpdir(), 'npm-start-off-'));
    const args = ['--sip-port', String(sip), '--tcp-port', String(tcp), '--tls-port', String(tls), '--evapi-port', String(evapi), '--http-port', String(http),
      '--jsonrpc-port', String(jsonrpc), '--dir', dir];
    t.teardown(() => run('npm', ['stop', '--', '--sip-port', String(sip), '--dir', dir], { cwd: ROOT }).then(() => undefined, () => undefined));
    const started = await run('npm', ['start', '--', ...args, ...extra], { cwd: ROOT });
    const readyz = (await (await fetch(`http://127.0.0.1:${http}/readyz`)).json()) as { status: string; modules: { cc: { detail: Record<string, unknown> } } };
    await run('npm', ['stop', '--', '--sip-port', String(sip), '--dir', dir], { cwd: ROOT });
    return { stdout: started.stdout, readyz, log: readFileSync(path.join(dir, 'service.log'), 'utf8') };
  };
  const off = await start(['--set', 'call_control_socket=']);
  t.match(off.stdout, /^ {2}call control {9}CALL CONTROL OFF: call_control_socket is empty while cc_door is socket: .*every call goes on uncounted/m, 'npm start\'s summary says so');
  t.notMatch(off.stdout, /call-control socket/);
  t.match(off.readyz.modules.cc.detail, { door: 'socket', socket: 'off', warning: /^CALL CONTROL OFF: / }, '/readyz\'s detail too');
  t.equal(off.readyz.status, 'ready', 'SCA still works: ready');
  t.equal(off.log.match(/CALL CONTROL OFF/g)?.length, 1, 'and one line in the service\'s log');
  const link = await start(['--cc-link', '--set', 'call_control_socket=']);
  t.match(link.stdout, /^ {2}call control {9}the link door \(kamailio\/cc-routes\.cfg\)$/m, 'the link door needs no socket');
  t.notMatch(link.stdout + link.log, /CALL CONTROL OFF/);
  t.match(link.readyz.modules.cc.detail, { door: 'link' });
});

t.test('the service alone with no Kamailio to reach: said once in the log, and /readyz says why', async (t) => {
  // The evapi port is only a target nothing listens on; the HTTP port is the service's own.
  const [http, evapi] = await externalPorts(['tcp', 'tcp']);
  const dir = mkdtempSync(path.join(tmpdir(), 'alone-'));
  const child = spawn('npm', ['run', 'service', '--', '--set', `http_port=${http}`, '--set', `evapi_address=127.0.0.1:${evapi}`, '--set', `db_url=sqlite:${dir}/s.sqlite`, '--set', 'call_control_socket=', '--set', 'log_level=debug'], { cwd: ROOT, detached: true });
  let log = '';
  child.stdout.on('data', (d) => { log += String(d); });
  // npm runs the service in a shell of its own: the whole group goes.
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ } });
  const { code, body } = await waitUntil('/readyz to name the unreachable Kamailio', async () => {
    const res = await fetch(`http://127.0.0.1:${http}/readyz`).catch(() => undefined);
    if (!res) return undefined;
    const body = (await res.json()) as { status?: string; kamailio?: Array<{ evapi: string; error: string }> };
    return body.kamailio ? { code: res.status, body } : undefined;
  }, { timeoutMs: 15_000, everyMs: 100 });
  // Several attempts failed (each is a debug line): the warning must still be one.
  const retries = () => log.match(/evapi connect failed; retrying/g)?.length ?? 0;
  await waitUntil('three failed attempts to reach Kamailio', () => retries() >= 3, { timeoutMs: 10_000, last: retries });
  t.equal(code, 503);
  t.equal(body.status, 'not ready');
  t.same(body.kamailio, [{ evapi: `127.0.0.1:${evapi}`, error: `connect ECONNREFUSED 127.0.0.1:${evapi}` }], 'why: which Kamailio, and the error');
  t.equal(log.match(/Kamailio cannot be reached over evapi/g)?.length, 1, 'said once, not at every retry');
});
