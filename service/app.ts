import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from './config.js';
import { KamailioLink } from './kamailio/link.js';
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
}

/** Builds the whole service from a validated config; nothing listens until start(). */
export function buildApp(config: Config, opts: AppOptions = {}) {
  const clock = opts.clock ?? (() => Date.now() / 1000);
  // Request log lines name the path only: a query string is nobody's business in the logs.
  const serializers = { req: (req: { method: string; url: string; ip: string }) => ({ method: req.method, url: req.url.split('?')[0], ip: req.ip }) };
  const logger = opts.logger === false ? false : { level: config.log_level, ...(typeof opts.logger === 'object' ? opts.logger : {}), serializers };
  const http: FastifyInstance = Fastify({ logger, bodyLimit: 20 * 1024 * 1024 });
  const access = new Access(config.admin_token);
  const db: Database = openDatabase(config.db_url, { queryTimeoutMs: config.db_query_timeout * 1000 });
  const link = new KamailioLink(config.evapi_address, http.log.child({ component: 'kamailio' }), {
    heartbeatMs: config.link_heartbeat_interval * 1000, heartbeatTimeoutMs: config.link_heartbeat_timeout * 1000,
  });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  link.observer = new LinkMetrics(registry, link);
  let viewChanged = (): void => undefined;
  const deps: ModuleDeps = { config, db, link, clock, log: http.log, registry, changed: () => viewChanged() };

  const sca = scaModule(deps);
  const cc = ccModule(deps);
  const modules: ServiceModule[] = [sca, cc, ...(opts.modules ?? []).map((make) => make(deps))];
  const view = registerLiveView(http, {
    clock, access,
    views: modules.flatMap((m) => (m.view ? [m.view] : [])),
  });
  viewChanged = view.changed;
  for (const m of modules) {
    const { link: onLink } = m;
    // Every answer on the link may have changed what the live view shows.
    if (onLink) link.register(onLink.methods, async (effects, answer) => { await onLink.apply(effects, answer); view.changed(); });
    link.onUp(() => m.linkUp?.());
  }
  registerRpc(http, { clock, access, modules: modules.flatMap((m) => (m.rpc ? [m.rpc] : [])), changed: view.changed });

  // A request whose Host is not this service's is refused (DNS rebinding, without a token).
  http.addHook('onRequest', async (req, reply) => {
    if (!access.hostAllowed(req.headers.host)) {
      http.log.warn({ ip: req.ip, host: req.headers.host }, 'request refused: foreign Host');
      return reply.code(403).send({ error: 'this service answers to its own address only' });
    }
  });

  let storeOpen = false;
  // Probes and scrapes come every few seconds: their request log lines would drown the rest.
  const quiet = { logLevel: 'warn' as const };
  http.get('/healthz', quiet, async () => ({ status: 'ok' }));
  // Ready: connected to Kamailio and the store open. A failing store leaves the service serving
  // from memory: still ready, but "degraded".
  http.get('/readyz', quiet, async (_req, reply) => {
    const statuses = Object.fromEntries(modules.map((m) => [m.name, m.status()]));
    const ready = link.connected > 0 && storeOpen && Object.values(statuses).every((s) => s.ready);
    const degraded = Object.values(statuses).some((s) => s.degraded);
    const status = !ready ? 'not ready' : degraded ? 'degraded' : 'ready';
    return reply.code(ready ? 200 : 503).send({
      status, evapi_connected: link.connected, kamailio: link.problems,
      store: { kind: db.kind, open: storeOpen, degraded }, modules: statuses,
    });
  });
  http.get('/metrics', quiet, async (req, reply) => {
    if (access.check(req.ip, req.headers.authorization) === undefined) return reply.code(401).send('unauthorized\n');
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  return {
    config, http, link, db, registry, sca, cc, modules,
    async start(): Promise<string> {
      await db.open();
      for (const m of modules) await m.start();
      await db.settle?.();
      storeOpen = true;
      link.start();
      return http.listen({ host: config.http_host, port: config.http_port });
    },
    async stop(): Promise<void> {
      view.close();
      link.stop();
      await http.close();
      for (const m of modules) await m.stop();
      await db.close();
    },
  };
}

export type ScaApp = ReturnType<typeof buildApp>;
