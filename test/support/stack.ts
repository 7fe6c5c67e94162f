// Starts the real stack (Kamailio + sca-service) through scripts/stack.sh on free ports (see
// ports.ts: a fixed range below the ephemeral one, retried when a port turns out taken).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseCallInfo, toScaCallInfo } from '../../service/sip/call-info.js';
import type { SipMessage } from '../../service/sip/message.js';
import { onFreePorts } from './ports.js';
import { Phone, hdr, type Received } from './sip-phone.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
export const DOMAIN = 'pbx.example.com';

export interface Stack {
  sipPort: number;
  /** Kamailio's TCP and TLS listeners (127.0.0.1). */
  tcpPort: number;
  tlsPort: number;
  jsonrpcPort: number;
  evapiPort: number;
  httpPort: number;
  dir: string;
  /** A scripted phone; `host` is the loopback address it sends from (default 127.0.0.1). */
  phone(name: string, user: string, host?: string): Promise<Phone>;
  stop(): Promise<void>;
  serviceLog(): string;
  kamailioLog(): string;
  stopService(): Promise<void>;
  /** kill -9 the service only (Kamailio stays up). */
  killService(): Promise<void>;
  /** Starts the service again on the same store; resolves when it is ready. */
  startService(): Promise<void>;
  /** Stops and starts Kamailio (same cfg and ports); resolves when the service is linked again. */
  restartKamailio(): Promise<void>;
  /** kill -9 every Kamailio process (the service stays up). */
  killKamailio(): Promise<void>;
  /** Starts Kamailio again after killKamailio; resolves when the service is linked to it. */
  startKamailio(): Promise<void>;
}

/**
 * Service settings (see service/config.ts); cc_link: 1 runs call control through cc-routes.cfg;
 * auth_db: a SQLite file with Kamailio's subscriber table turns digest authentication on;
 * kamailio_define: defines for kamailio.cfg, ';'-separated (e.g. 'CC_FAIL_CLOSED').
 */
export async function startStack(settings: Record<string, string | number> = {}): Promise<Stack> {
  const { cc_link: ccLink, auth_db: authDb, kamailio_define: defines, ...serviceSettings } = settings;
  const sets = Object.entries({ log_level: 'debug', ...serviceSettings }).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
  // Ports from the range below the ephemeral one; a start that finds one taken is made again.
  const { sipPort, tcpPort, tlsPort, evapiPort, httpPort, jsonrpcPort, dir, args } = await onFreePorts(['udp', 'tcp', 'tcp', 'tcp', 'tcp', 'udp'], async ([sip, tcp, tls, evapi, http, jsonrpc]) => {
    const d = mkdtempSync(path.join(tmpdir(), 'sca-e2e-'));
    const a = ['--sip-port', String(sip), '--tcp-port', String(tcp), '--tls-port', String(tls), '--evapi-port', String(evapi), '--http-port', String(http),
      '--jsonrpc-port', String(jsonrpc), '--dir', d, '--domain', DOMAIN, ...(ccLink ? ['--cc-link'] : []), ...(authDb ? ['--auth-db', String(authDb)] : []),
      ...String(defines ?? '').split(';').filter((x) => x !== '').flatMap((x) => ['--define', x])];
    try {
      await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'start', ...a, ...sets], { cwd: ROOT });
    } catch (err) {
      await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'stop', '--dir', d, '--sip-port', String(sip)], { cwd: ROOT }).catch(() => undefined);
      // The logs say which port was taken (stack.sh prints only their last lines).
      const logs = ['kamailio.log', 'service.log'].map((f) => { try { return readFileSync(path.join(d, f), 'utf8'); } catch { return ''; } }).join('\n');
      throw Object.assign(err as Error, { stderr: `${(err as { stderr?: string }).stderr ?? ''}\n${logs}` });
    }
    return { sipPort: sip!, tcpPort: tcp!, tlsPort: tls!, evapiPort: evapi!, httpPort: http!, jsonrpcPort: jsonrpc!, dir: d, args: a };
  });
  const phones: Phone[] = [];
  return {
    sipPort, tcpPort, tlsPort, evapiPort, httpPort, dir, jsonrpcPort,
    async phone(name, user, host) {
      const p = new Phone(name, user, DOMAIN, sipPort, host);
      await p.start();
      phones.push(p);
      return p;
    },
    async stop() {
      for (const p of phones) p.stop();
      await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'stop', '--dir', dir, '--sip-port', String(sipPort)], { cwd: ROOT });
    },
    serviceLog: () => readFileSync(path.join(dir, 'service.log'), 'utf8'),
    async killService() {
      await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'kill-service', ...args], { cwd: ROOT });
    },
    async startService() {
      await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'start-service', ...args, ...sets], { cwd: ROOT });
    },
    async restartKamailio() {
      await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'restart-kamailio', ...args], { cwd: ROOT });
    },
    async killKamailio() {
      await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'kill-kamailio', ...args], { cwd: ROOT });
    },
    async startKamailio() {
      await run('bash', [path.join(ROOT, 'scripts/stack.sh'), 'start-kamailio', ...args], { cwd: ROOT });
    },
    kamailioLog: () => readFileSync(path.join(dir, 'kamailio.log'), 'utf8'),
    async stopService() {
      const pid = Number(readFileSync(path.join(dir, 'service.pid'), 'utf8'));
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 50; i++) {
        try { process.kill(pid, 0); } catch { return; }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** "1:seized,2:active" from a call-info NOTIFY (the idle * tail is checked and left out). */
export function lineState(r: Received): string {
  const header = hdr(r.msg, 'call-info') ?? '';
  const parsed = parseCallInfo(header);
  if (!parsed.ok) throw new Error(`bad Call-Info in NOTIFY: ${header}`);
  const values = parsed.value.map((v) => toScaCallInfo(v)).map((x) => (x.ok ? x.value : undefined));
  const tail = values.at(-1);
  if (!tail || tail.index !== '*' || tail.state !== 'idle') throw new Error(`no idle tail: ${header}`);
  return values.slice(0, -1).map((v) => `${v!.index}:${v!.state}`).join(',');
}

export const subscribeCallInfo = (p: Phone, expires = 3600) =>
  p.request('SUBSCRIBE', { ruri: p.aor, to: `<${p.aor}>`, headers: [['Event', 'call-info'], ['Expires', String(expires)]] }).final;

/** A call-info subscription whose dialog the test keeps, to refresh it in-dialog later. */
export async function callInfoDialog(p: Phone, expires = 3600): Promise<{ refresh: (expires: number) => Promise<SipMessage> }> {
  const fromTag = `s${p.name}${Date.now()}`;
  const callId = `sub-${fromTag}`;
  const first = await p.request('SUBSCRIBE', { ruri: p.aor, to: `<${p.aor}>`, fromTag, callId, headers: [['Event', 'call-info'], ['Expires', String(expires)]] }).final;
  const toTag = /;\s*tag=([^;>\s]+)/.exec(hdr(first, 'to') ?? '')?.[1];
  let cseq = 1;
  return {
    refresh: (e) => p.request('SUBSCRIBE', { ruri: hdr(first, 'contact')!, to: `<${p.aor}>`, toTag, fromTag, callId, cseq: ++cseq, headers: [['Event', 'call-info'], ['Expires', String(e)]] }).final,
  };
}

export const lineSeize = (p: Phone, index: number, expires = 15) =>
  p.request('SUBSCRIBE', { ruri: p.aor, to: `<${p.aor}>`, headers: [['Event', 'line-seize'], ['Expires', String(expires)], ['Call-Info', `<sip:${DOMAIN}>;appearance-index=${index}`]] }).final;

/**
 * A round trip through the proxy to a registered phone: an OPTIONS from `from` to `to`'s AoR,
 * resolved when `to` has it. Whatever the proxy sent `to` before is in `to`'s hands by then:
 * "nothing arrived" is checked after it instead of after a sleep.
 */
export async function marker(from: Phone, to: Phone, timeoutMs = 5000): Promise<void> {
  const callId = `marker-${Date.now()}-${Math.random().toString(36).slice(2)}@${from.name}`;
  const tx = from.request('OPTIONS', { ruri: to.aor, to: `<${to.aor}>`, callId });
  await to.waitFor((r) => r.msg.method === 'OPTIONS' && hdr(r.msg, 'call-id') === callId, timeoutMs, `the marker OPTIONS from ${from.name}`);
  await tx.final;
}

/** How many call-info NOTIFYs each phone has had: take it before an action, wait after it. */
export const mark = (...phones: Phone[]): number[] => phones.map((p) => p.notifies('call-info').length);

/** Waits until the phone's newest call-info NOTIFY, received after `after` of them, shows `state`. */
export async function waitLine(p: Phone, state: string, after: number, timeoutMs = 4000): Promise<Received> {
  const isIt = (r: Received): boolean => {
    const list = p.notifies('call-info');
    const at = list.indexOf(r);
    return at >= after && at === list.length - 1 && lineState(r) === state;
  };
  return p.waitFor((r) => r.msg.method === 'NOTIFY' && hdr(r.msg, 'event') === 'call-info' && isIt(r), timeoutMs, `call-info NOTIFY "${state}"`)
    .catch((err: Error) => {
      const last = p.notifies('call-info').at(-1);
      throw new Error(`${err.message}; last seen: ${last ? lineState(last) : 'none'}`);
    });
}

/** A stack with phones (name → user) started before a test file's tests and stopped after them. */
export function withStack<N extends string>(
  tap: { before(fn: () => Promise<void>): void; teardown(fn: () => Promise<void>): void },
  users: Record<N, string>, settings: Record<string, string | number> = {},
): { stack: Stack; phones: Record<N, Phone> } {
  const env = {} as { stack: Stack; phones: Record<N, Phone> };
  tap.before(async () => {
    env.stack = await startStack(settings);
    const names = Object.keys(users) as N[];
    const made = await Promise.all(names.map((n) => env.stack.phone(n, users[n])));
    env.phones = Object.fromEntries(names.map((n, i) => [n, made[i]!])) as Record<N, Phone>;
  });
  tap.teardown(async () => env.stack?.stop());
  return env;
}
