// A second engine on the generic link, through the real Kamailio: the test's "echo" engine is
// registered next to SCA, test/support/echo-engine.cfg sends it MESSAGEs (suspended) and
// OPTIONS (reported), and its answers come back as replies and edits.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { z } from 'zod';
import { buildApp } from '../../service/app.js';
import { loadConfig } from '../../service/config.js';
import { noEffects } from '../../service/effects.js';
import { resume } from '../../service/kamailio/wire.js';
import type { ServiceModule } from '../../service/modules/module.js';
import { until } from '../support/fake-kamailio.js';
import { hdr, Phone } from '../support/sip-phone.js';
import { onFreePorts } from '../support/ports.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const seen: string[] = [];

const ids = { tindex: z.number().int().nonnegative(), tlabel: z.number().int().nonnegative() };
const echoModule = (): ServiceModule => ({
  name: 'echo',
  link: {
    methods: {
      'echo.message': {
        params: z.object({ ...ids, body: z.string() }),
        handle: (p) => ({
          answer: p.body === 'refuse'
            ? { ...resume(p, { code: 488, reason: 'Echo Refuses', headers: [['X-Why', 'asked to']] }, undefined) }
            : { ...resume(p, undefined, { removeHeaders: ['Subject'], appendHeaders: [['X-Echoed', p.body.toUpperCase()]], ruri: `sip:echoed@127.0.0.1:${phone.port}`, flags: p.body === 'loud' ? ['loud'] : [] }) },
          effects: noEffects(),
        }),
      },
      'echo.seen': { params: z.object({ from: z.string() }), handle: (p) => { seen.push(p.from); return { answer: {}, effects: noEffects() }; } },
    },
    apply: async (effects, answer) => answer(effects.notifies),
  },
  status: () => ({ ready: true, degraded: false, detail: {} }),
  start: async () => undefined,
  stop: async () => 0,
});

let kamailio: ChildProcess;
let phone: Phone;
let app: ReturnType<typeof buildApp>;

t.before(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'echo-e2e-'));
  // Kamailio on ports from the fixed range; started again on others if one was taken meanwhile.
  const [sipPort, evapiPort] = await onFreePorts(['udp', 'tcp'], async ([sip, evapi]) => {
    const k = spawn('kamailio', ['-DD', '-E', '-f', path.join(ROOT, 'test/support/echo-engine.cfg'), '-Y', dir, '-m', '64',
      '-A', `SIP_PORT=${sip}`, '-A', `EVAPI_BIND="127.0.0.1:${evapi}"`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    k.stderr!.on('data', (d: Buffer) => { log += d.toString('utf8'); });
    const listening = async (): Promise<boolean> => new Promise((resolve) => {
      const c = net.connect(evapi!, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    for (let i = 0; i < 100; i++) {
      if (k.exitCode !== null) throw Object.assign(new Error('kamailio exited at start'), { stderr: log });
      if (await listening()) { kamailio = k; return [sip!, evapi!]; }
      await new Promise((r) => setTimeout(r, 100));
    }
    k.kill('SIGTERM');
    throw Object.assign(new Error('kamailio does not listen after 10 s'), { stderr: log });
  });
  const cfg = loadConfig({ env: {}, overrides: {
    evapi_address: [`127.0.0.1:${evapiPort}`], http_port: 0, log_level: 'silent', db_url: `sqlite:${dir}/sca.sqlite`, call_control_socket: '',
    link_heartbeat_interval: 0.1, link_heartbeat_timeout: 1,
  } });
  if (!cfg.ok) throw new Error(cfg.error);
  app = buildApp(cfg.config, { modules: [echoModule] });
  await app.start();
  await until(() => app.link.connected === 1, 10_000);
  phone = new Phone('p', '100', '127.0.0.1', sipPort);
  await phone.start();
});

t.teardown(async () => {
  phone?.stop();
  await app?.stop();
  kamailio?.kill('SIGTERM');
});

const message = (body: string, headers: Array<[string, string]> = []) =>
  phone.request('MESSAGE', { ruri: 'sip:echo@127.0.0.1', to: '<sip:echo@127.0.0.1>', headers, body }).final;

/** Sends a MESSAGE and answers it when it comes back to the phone, edited by the engine. */
async function relayed(body: string, headers: Array<[string, string]> = []) {
  const final = message(body, headers);
  const got = await phone.waitFor((r) => r.msg.method === 'MESSAGE' && r.msg.body === body && !answered.has(r), 4000, 'relayed MESSAGE');
  answered.add(got);
  phone.respond(got, 200, 'OK');
  return { got, final: await final };
}
const answered = new Set<unknown>();

t.test('the echo engine answers a suspended MESSAGE with an edit its resume route applies', async (t) => {
  t.equal(app.link.connected, 1, 'connected to the real Kamailio');
  const { got, final } = await relayed('hello', [['Subject', 'to be removed']]);
  t.equal(final.status, 200, 'relayed and answered');
  t.equal(got.msg.ruri, `sip:echoed@127.0.0.1:${phone.port}`, 'the R-URI the engine set');
  t.equal(hdr(got.msg, 'x-echoed'), 'HELLO', 'the header the engine added');
  t.equal(hdr(got.msg, 'subject'), undefined, 'the header the engine removed');
  t.equal(hdr(got.msg, 'x-loud'), undefined);
  t.equal(hdr((await relayed('loud')).got.msg, 'x-loud'), 'yes', 'flags reach the engine route');
});

t.test('the echo engine refuses with its own code, reason and headers', async (t) => {
  const r = await message('refuse');
  t.same([r.status, r.reason, hdr(r, 'x-why')], [488, 'Echo Refuses', 'asked to']);
});

t.test('reported events reach the engine without Kamailio waiting', async (t) => {
  const r = await phone.request('OPTIONS', { ruri: 'sip:echo@127.0.0.1', to: '<sip:echo@127.0.0.1>' }).final;
  t.equal(r.status, 200);
  await until(() => seen.length > 0);
  t.same(seen, ['100']);
});

t.test('Kamailio answers the heartbeat through link.cfg, so a live proxy is never reset', async (t) => {
  const before = app.link.counters.pongs;
  await until(() => app.link.counters.pongs >= before + 5, 3000);
  t.ok(app.link.counters.pongs >= before + 5, `${app.link.counters.pongs - before} pongs`);
  t.equal(app.link.counters.resets, 0);
});
