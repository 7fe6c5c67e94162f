// The high-availability product on one box: a MariaDB Galera cluster, several Kamailio proxies
// (kamailio/kamailio.cfg with the link door, each its PROXY_ID) and several service nodes (the
// compiled service with ha_enabled, each linking to every proxy while it leads). With
// ccDoor 'relay' the proxies run Kamailio's stock call_control.so instead, each against a
// sca-cc-relay of its own that forwards to the nodes' cc_relay_listen. Every process is a child
// started here and stopped by PID. Used by `npm run ha` (scripts/ha/cli.ts) and the HA suite
// (test/ha/). Ports come from blocks below the ephemeral range (ports.ts).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GaleraCluster } from './galera.js';
import { claimPortBlock, type PortBlock } from './ports.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const DOMAIN = 'pbx.example.com';

const alive = (p: ChildProcess | undefined): boolean => p !== undefined && p.exitCode === null && p.signalCode === null;

async function waitFor(what: string, probe: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const listening = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); resolve(true); });
  s.once('error', () => resolve(false));
});

/** Stops a child: TERM, then KILL after `graceMs`; resolves when it is gone. */
async function stopChild(p: ChildProcess | undefined, graceMs = 5000): Promise<void> {
  if (!p || !alive(p)) return;
  const gone = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => { if (alive(p)) p.kill('SIGKILL'); }, graceMs);
  await gone;
  clearTimeout(timer);
}

/** One Kamailio proxy of the topology. */
export class Proxy {
  proc: ChildProcess | undefined;
  constructor(
    readonly id: string, readonly sipPort: number, readonly tcpPort: number, readonly evapiPort: number, readonly jsonrpcPort: number, readonly dir: string, private readonly defines: readonly string[],
    /** Call control through cc-routes.cfg on the link (WITH_CC_LINK), or call_control.so on CC_SOCKET. */
    readonly ccLink = true,
  ) {}

  /** call_control.so's socket_name (the socket door: its sca-cc-relay serves it). */
  get ccSocket(): string {
    return path.join(this.dir, 'cc.sock');
  }

  get logFile(): string {
    return path.join(this.dir, 'kamailio.log');
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const out = openSync(this.logFile, 'a');
    this.proc = spawn('kamailio', [
      '-DD', '-E', '-f', path.join(ROOT, 'kamailio/kamailio.cfg'), '-m', '128', '-M', '16', '-Y', this.dir,
      // UDP and TCP; no TLS listener here (no certificate to make for a trial on one box).
      '-A', 'SIP_IP=127.0.0.1', '-A', `SIP_PORT=${this.sipPort}`, '-A', `TCP_PORT=${this.tcpPort}`, '-A', 'WITHOUT_TLS',
      '-A', `SIP_DOMAIN="${DOMAIN}"`, '-A', `CTL_SOCK="unix:${this.dir}/kamailio_ctl"`,
      '-A', `EVAPI_BIND="127.0.0.1:${this.evapiPort}"`, '-A', `CC_SOCKET="${this.ccSocket}"`, '-A', `JSONRPC_SOCK="udp:127.0.0.1:${this.jsonrpcPort}"`,
      ...(this.ccLink ? ['-A', 'WITH_CC_LINK'] : []), '-A', `PROXY_ID="${this.id}"`, ...this.defines.flatMap((d) => ['-A', d]),
    ], { stdio: ['ignore', out, out] });
    closeSync(out);
    await waitFor(`proxy ${this.id} listening`, async () => {
      if (!alive(this.proc)) throw new Error(`proxy ${this.id} exited: ${this.log().split('\n').slice(-15).join('\n')}`);
      return listening(this.evapiPort);
    }, 15_000);
  }

  /** kill -9 every process of it (the main one and its children); resolves once they are gone. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || !alive(p)) return;
    const children = (): number[] => {
      try {
        return execFileSync('pgrep', ['-P', String(p.pid)], { encoding: 'utf8' }).split('\n').filter((x) => x !== '').map(Number);
      } catch {
        return []; // pgrep exits 1 when there is none
      }
    };
    const kids = children();
    for (const pid of kids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    p.kill('SIGKILL');
    await waitFor(`proxy ${this.id}'s processes gone`, () => kids.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }) && !alive(p), 10_000);
  }

  async stop(): Promise<void> {
    await stopChild(this.proc);
  }
}

/** The sca-cc-relay of one proxy host (the compiled one): call_control.so's socket → the leading node. */
export class CcRelayProcess {
  proc: ChildProcess | undefined;
  constructor(readonly proxy: Proxy, private readonly env: Readonly<Record<string, string>>) {}

  get logFile(): string {
    return path.join(this.proxy.dir, 'sca-cc-relay.log');
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Resolves once its socket answers: call_control.so connects when Kamailio starts. */
  async start(): Promise<void> {
    mkdirSync(this.proxy.dir, { recursive: true });
    const out = openSync(this.logFile, 'a');
    this.proc = spawn(process.execPath, [path.join(ROOT, 'dist/service/relay/main.js')], { stdio: ['ignore', out, out], env: { ...process.env, ...this.env } });
    closeSync(out);
    await waitFor(`sca-cc-relay of ${this.proxy.id} listening`, async () => {
      if (!alive(this.proc)) throw new Error(`sca-cc-relay of ${this.proxy.id} exited: ${this.log().split('\n').slice(-10).join('\n')}`);
      return new Promise<boolean>((resolve) => {
        const c = net.connect(this.proxy.ccSocket);
        c.once('connect', () => { c.destroy(); resolve(true); });
        c.once('error', () => resolve(false));
      });
    }, 10_000);
  }

  async stop(): Promise<void> {
    await stopChild(this.proc);
  }
}

/** One service node of the topology (the compiled service, ha_enabled). */
export class ServiceNode {
  proc: ChildProcess | undefined;
  constructor(
    readonly id: string, readonly httpPort: number, readonly dir: string, private readonly args: readonly string[],
    /** Settings given in the environment (secrets: not on the command line). */
    private readonly env: Readonly<Record<string, string>> = {},
    /** Where relays reach it (cc_relay_listen), when the proxies use them. */
    readonly relayPort?: number,
  ) {}

  get logFile(): string {
    return path.join(this.dir, `${this.id}.log`);
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  get pid(): number | undefined {
    return this.proc && alive(this.proc) ? this.proc.pid : undefined;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const out = openSync(this.logFile, 'a');
    this.proc = spawn(process.execPath, [path.join(ROOT, 'dist/service/main.js'), ...this.args], { stdio: ['ignore', out, out], env: { ...process.env, ...this.env } });
    closeSync(out);
    await waitFor(`node ${this.id} answering`, async () => {
      if (!alive(this.proc)) throw new Error(`node ${this.id} exited: ${this.log().split('\n').slice(-10).join('\n')}`);
      return (await this.get('/healthz'))?.status === 'ok';
    }, 20_000);
  }

  /** GET a JSON document of the node (undefined when it does not answer). */
  async get(url: string): Promise<Record<string, any> | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.httpPort}${url}`, { signal: AbortSignal.timeout(2000) });
      return (await res.json()) as Record<string, any>;
    } catch {
      return undefined;
    }
  }

  async role(): Promise<string | undefined> {
    return (await this.get('/leader'))?.role as string | undefined;
  }

  kill9(): void {
    if (alive(this.proc)) this.proc!.kill('SIGKILL');
  }

  pause(): void {
    if (alive(this.proc)) this.proc!.kill('SIGSTOP');
  }

  resume(): void {
    if (alive(this.proc)) this.proc!.kill('SIGCONT');
  }

  /** Resolves with its exit code once it has exited. */
  exited(): Promise<number | null> {
    const p = this.proc;
    if (p === undefined) return Promise.resolve(null);
    if (!alive(p)) return Promise.resolve(p.exitCode);
    return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
  }

  async stop(): Promise<void> {
    await stopChild(this.proc, 8000);
  }
}

export interface TopologyOptions {
  proxies?: readonly string[];
  nodes?: readonly string[];
  /** Service settings for every node (name → value). */
  settings?: Readonly<Record<string, string | number>>;
  /** Defines for every proxy's kamailio.cfg (-A). */
  defines?: readonly string[];
  log?: (msg: string) => void;
  /** Where logs go (default: a new directory under the system's temp). */
  dir?: string;
  /**
   * How the proxies ask for call control: 'link' (cc-routes.cfg over each proxy's link, the
   * default) or 'relay' (Kamailio's stock call_control.so, a sca-cc-relay per proxy).
   */
  ccDoor?: 'link' | 'relay';
}

export class HaTopology {
  private constructor(
    readonly dir: string, readonly galera: GaleraCluster, readonly proxies: Proxy[], readonly nodes: ServiceNode[], private readonly block: PortBlock,
    readonly relays: CcRelayProcess[] = [],
  ) {}

  static async start(opts: TopologyOptions = {}): Promise<HaTopology> {
    const log = opts.log ?? (() => undefined);
    if (!existsSync(path.join(ROOT, 'dist/service/main.js'))) throw new Error('the service is not built: npm run build');
    const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'sca-ha-'));
    const galera = await GaleraCluster.start({ log });
    const block = await claimPortBlock();
    let port = block.base;
    const viaRelay = opts.ccDoor === 'relay';
    const proxies = (opts.proxies ?? ['A', 'B']).map((id) => new Proxy(id, port++, port++, port++, port++, path.join(dir, `proxy-${id}`), opts.defines ?? [], !viaRelay));
    const evapi = proxies.map((p) => `127.0.0.1:${p.evapiPort}`).join(',');
    const settings: Record<string, string | number> = {
      log_level: 'info', db_url: galera.url, db_hosts: galera.hosts.join(','), ha_enabled: 'true', evapi_address: evapi,
      // The link door is the HA door: calls are admitted over the link of the proxy that carries them.
      // Through relays, the socket door: call_control.so's requests come over TCP from each relay.
      call_control_socket: '', cc_jsonrpc_address: 'udp:127.0.0.1:9', cc_door: viaRelay ? 'socket' : 'link', ...opts.settings,
    };
    const token = randomBytes(16).toString('hex');
    const nodes = (opts.nodes ?? ['n1', 'n2']).map((id) => {
      const httpPort = port++;
      const relayPort = viaRelay ? port++ : undefined;
      const own = { ...settings, ha_node_id: id, http_port: httpPort, ...(relayPort ? { cc_relay_listen: `127.0.0.1:${relayPort}` } : {}) };
      const args = Object.entries(own).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
      return new ServiceNode(id, httpPort, dir, args, viaRelay ? { SCA_CC_RELAY_TOKEN: token } : {}, relayPort);
    });
    const relays = viaRelay
      ? proxies.map((p) => new CcRelayProcess(p, {
        SCA_RELAY_SOCKET: p.ccSocket, SCA_RELAY_NODES: nodes.map((n) => `127.0.0.1:${n.relayPort}`).join(','), SCA_RELAY_PROXY_ID: p.id,
        SCA_RELAY_TOKEN: token,
      }))
      : [];
    const topology = new HaTopology(dir, galera, proxies, nodes, block, relays);
    try {
      // Nodes first: the proxies' link routes wait for a leader's hello. Each relay before its
      // proxy: call_control.so connects when Kamailio starts (and pauses 10 s if it cannot).
      for (const n of nodes) await n.start();
      for (const r of relays) await r.start();
      for (const p of proxies) await p.start();
      log(`ha: ${proxies.length} proxies (${proxies.map((p) => `${p.id} udp:127.0.0.1:${p.sipPort}`).join(', ')}), ${nodes.length} service nodes (${nodes.map((n) => `${n.id} http://127.0.0.1:${n.httpPort}`).join(', ')}), logs in ${dir}`);
      return topology;
    } catch (err) {
      await topology.stop();
      throw err;
    }
  }

  proxy(id: string): Proxy {
    const p = this.proxies.find((x) => x.id === id);
    if (!p) throw new Error(`no proxy ${id}`);
    return p;
  }

  relay(proxy: string): CcRelayProcess {
    const r = this.relays.find((x) => x.proxy.id === proxy);
    if (!r) throw new Error(`no relay of proxy ${proxy}`);
    return r;
  }

  node(id: string): ServiceNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** The node that leads and is linked to every proxy, once there is one. */
  async leader(timeoutMs = 20_000): Promise<ServiceNode> {
    let found: ServiceNode | undefined;
    await waitFor('a leader linked to every proxy', async () => {
      for (const n of this.nodes) {
        const r = await n.get('/readyz');
        if (r?.ha?.role === 'leader' && Array.isArray(r.proxies) && r.proxies.length === this.proxies.length) {
          found = n;
          return true;
        }
      }
      return false;
    }, timeoutMs);
    return found!;
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) n.resume();
    await Promise.all([...this.nodes.map((n) => n.stop()), ...this.proxies.map((p) => p.stop())]);
    await Promise.all(this.relays.map((r) => r.stop()));
    await this.galera.stop();
    this.block.release();
  }
}
