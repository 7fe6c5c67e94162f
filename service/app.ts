import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from './config.js';
import { createRole, type Role } from './ha/role.js';
import type { LossReason } from './ha/role-machine.js';
import { haView, standbyFault } from './ha/view.js';
import { registerHaMetrics } from './metrics/ha.js';
import { HA_METHODS } from './rpc/ha-methods.js';
import type { MysqlDatabase } from './store/mysql.js';
import { KamailioLink } from './kamailio/link.js';
import { CcRelayListener } from './relay/listener.js';
import { LinkMetrics } from './metrics/link.js';
import type { ModuleDeps, ServiceModule } from './modules/module.js';
import { ccModule } from './modules/cc.js';
import { scaModule } from './modules/sca.js';
import { Access } from './rpc/access.js';
import { registerRpc } from './rpc/http.js';
import type { Database } from './store/database.js';
import { openDatabase } from './store/open-database.js';
import { registerLiveView } from './web/live-view.js';

export interface AppOptions {
  /** Seconds since the epoch; tests move it. */
  clock?: () => number;
  logger?: boolean | object;
  /** Extra modules (a test's engine), after the built-in ones. */
  modules?: ReadonlyArray<(deps: ModuleDeps) => ServiceModule>;
  /**
   * HA: this node lost its leadership (or its store was fenced). It has closed its links and
   * writes nothing more; the process must exit non-zero (main.ts does) for its supervisor to
   * start it again as a standby.
   */
  onLost?: (reason: LossReason) => void;
}

/** Builds the whole service from a validated config; nothing listens until start(). */
export function buildApp(config: Config, opts: AppOptions = {}) {
  // Request log lines name the path only: a query string is nobody's business in the logs.
  const serializers = { req: (req: { method: string; url: string; ip: string }) => ({ method: req.method, url: req.url.split('?')[0], ip: req.ip }) };
  const logger = opts.logger === false ? false : { level: config.log_level, ...(typeof opts.logger === 'object' ? opts.logger : {}), serializers };
  const http: FastifyInstance = Fastify({ logger, bodyLimit: 20 * 1024 * 1024 });
  const access = new Access(config.admin_token);
  const db: Database = openDatabase(config.db_url, {
    queryTimeoutMs: config.db_query_timeout * 1000, hosts: config.db_hosts, ha: config.ha_enabled ? { idleWriteTimeoutS: config.ha_lease_ttl } : undefined,
  });
  // HA: one node leads (a lease on the database's clock, a fence on every commit); it alone loads
  // the state, links to the proxies and answers. The others stand by.
  const role: Role | undefined = config.ha_enabled
    ? createRole(db as MysqlDatabase, { ...config, ha_node_id: config.ha_node_id! }, http.log.child({ component: 'ha' }))
    : undefined;
  const clock = opts.clock ?? (role ? () => role.clock() : () => Date.now() / 1000);
  const link = new KamailioLink(config.evapi_address, http.log.child({ component: 'kamailio' }), {
    heartbeatMs: config.link_heartbeat_interval * 1000, heartbeatTimeoutMs: config.link_heartbeat_timeout * 1000,
    node: config.ha_node_id ?? 'sca-service', epoch: () => role?.snapshot.epoch ?? 0, mayWrite: () => role?.leading() ?? true,
  });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  link.observer = new LinkMetrics(registry, link);
  if (role) registerHaMetrics(registry, () => role.snapshot);
  let viewChanged = (): void => undefined;
  const deps: ModuleDeps = {
    config, db, link, clock, log: http.log, registry, changed: () => viewChanged(),
    committerOptions: role ? { strict: true, onFenced: (err) => role.fenced(err) } : undefined,
  };

  const sca = scaModule(deps);
  const cc = ccModule(deps);
  const modules: ServiceModule[] = [sca, cc, ...(opts.modules ?? []).map((make) => make(deps))];
  // What the page shows of this node: its role (HA), its epoch, who leads, the proxies linked.
  const nodeNow = (): Record<string, unknown> => ({ ...(role ? haView(role) : { role: 'single' }), proxies: link.proxies });
  let nodeShown = '';
  const nodeView = {
    all: () => ({ node: nodeNow() }),
    changes() {
      const now = JSON.stringify(nodeNow());
      if (now === nodeShown) return undefined;
      nodeShown = now;
      return { node: nodeNow() };
    },
    forget: () => { nodeShown = ''; },
  };
  const view = registerLiveView(http, {
    clock, access,
    views: [...modules.flatMap((m) => (m.view ? [m.view] : [])), nodeView],
  });
  link.onUp(() => view.changed());
  link.onDown(() => view.changed());
  role?.onLeader(() => view.changed());
  viewChanged = view.changed;
  for (const m of modules) {
    const { link: onLink } = m;
    // Every answer on the link may have changed what the live view shows.
    if (onLink) link.register(onLink.methods, async (effects, answer) => { await onLink.apply(effects, answer); view.changed(); });
    link.onUp((proxy) => m.linkUp?.(proxy));
  }
  let storeOpen = false;
  // sca-cc-relay (cc_relay_listen): every node listens, so a relay learns who leads; only the
  // leader with its state loaded serves it.
  const relay = config.cc_relay_listen === '' ? undefined : new CcRelayListener({
    listen: config.cc_relay_listen, token: config.cc_relay_token!, handle: cc.relayDoor.handle, clientClosed: cc.relayDoor.clientClosed,
    log: http.log.child({ component: 'cc-relay' }),
    serving: () => {
      if (role && !role.leading()) return { ok: false, why: role.snapshot.role === 'lost' ? 'lost its leadership' : 'standby', leader: role.snapshot.leader?.holder };
      if (!storeOpen) return { ok: false, why: 'loading its state' };
      return { ok: true, node: role?.snapshot.holder ?? 'sca-service', epoch: role?.snapshot.epoch ?? 0 };
    },
  });
  const haRpc = { table: HA_METHODS, engine: { role, link }, apply: async () => undefined };
  registerRpc(http, {
    clock, access, modules: [...modules.flatMap((m) => (m.rpc ? [m.rpc] : [])), haRpc], changed: view.changed,
    // A standby holds no state: its commands would read nothing or change what the leader does not
    // know. It names the leader instead (ha.status works everywhere).
    refuse: (method) => (role && !role.leading() && !(method in HA_METHODS) ? standbyFault(role) : undefined),
  });

  // A request whose Host is not this service's is refused (DNS rebinding, without a token).
  http.addHook('onRequest', async (req, reply) => {
    if (!access.hostAllowed(req.headers.host)) {
      http.log.warn({ ip: req.ip, host: req.headers.host }, 'request refused: foreign Host');
      return reply.code(403).send({ error: 'this service answers to its own address only' });
    }
  });

  // Probes and scrapes come every few seconds: their request log lines would drown the rest.
  const quiet = { logLevel: 'warn' as const };
  http.get('/healthz', quiet, async () => ({ status: 'ok' }));
  // Ready: connected to Kamailio and the store open. A failing store leaves the service serving
  // from memory: still ready, but "degraded".
  http.get('/readyz', quiet, async (_req, reply) => {
    const statuses = Object.fromEntries(modules.map((m) => [m.name, m.status()]));
    const standby = role !== undefined && !role.leading();
    const ready = !standby && link.connected > 0 && storeOpen && Object.values(statuses).every((s) => s.ready);
    const degraded = Object.values(statuses).some((s) => s.degraded);
    const status = standby ? 'standby' : !ready ? 'not ready' : degraded ? 'degraded' : 'ready';
    return reply.code(ready ? 200 : 503).send({
      status, evapi_connected: link.connected, proxies: link.proxies, kamailio: link.problems,
      store: { kind: db.kind, open: storeOpen, degraded }, modules: statuses,
      ...(role ? { ha: haView(role) } : {}), ...(relay ? { cc_relay: relay.status() } : {}),
    });
  });
  // Who leads (HA): a load balancer or sca-ctl finds the leader here, from any node.
  http.get('/leader', quiet, async (_req, reply) => (role ? reply.send(haView(role)) : reply.code(404).send({ error: 'not a high-availability node (ha_enabled is off)' })));
  http.get('/metrics', quiet, async (req, reply) => {
    if (access.check(req.ip, req.headers.authorization) === undefined) return reply.code(401).send('unauthorized\n');
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  /** Loads every module's state, then links to Kamailio: at start, or when this node comes to lead. */
  const serve = async (): Promise<void> => {
    for (const m of modules) await m.start();
    await db.settle?.();
    storeOpen = true;
    link.start();
  };
  let lost = false;
  role?.onLost((reason) => {
    if (lost) return;
    lost = true;
    // Crash-only: nothing more goes to Kamailio, nothing more is committed (the fence is shut).
    link.stop();
    relay?.closeAll();
    http.log.fatal({ reason, ...haView(role) }, 'HA: leadership lost; this node stops');
    opts.onLost?.(reason);
  });
  role?.onLeader((epoch) => {
    http.log.info({ epoch, node: config.ha_node_id }, 'HA: this node leads; loading the state and linking to the proxies');
    serve().catch((err: unknown) => {
      http.log.fatal({ err: String(err) }, 'HA: the new leader could not load its state; this node stops');
      role.fenced();
    });
  });

  return {
    config, http, link, db, registry, sca, cc, modules, role, relay,
    async start(): Promise<string> {
      await db.open();
      await relay?.listen();
      if (role) {
        const prepared = await role.start();
        if (!prepared.ok) throw new Error(`HA: ${prepared.error}`);
        // A standby answers /healthz, /readyz (standby) and /leader, and names the leader to commands.
        return http.listen({ host: config.http_host, port: config.http_port });
      }
      await serve();
      return http.listen({ host: config.http_host, port: config.http_port });
    },
    async stop(): Promise<void> {
      view.close();
      link.stop();
      await relay?.close();
      await http.close();
      if (storeOpen) for (const m of modules) await m.stop();
      await role?.stop();
      await db.close();
    },
  };
}

export type ScaApp = ReturnType<typeof buildApp>;
