import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { KamailioBridge } from './kamailio/bridge.js';
import { ScaMetrics } from './metrics.js';
import { Access } from './rpc/access.js';
import { registerRpc } from './rpc/http.js';
import { ScaEngine } from './sca/engine.js';
import { openStore } from './store/open-store.js';
import { Persister } from './store/persister.js';
import type { Store } from './store/store.js';
import { registerLiveView } from './web/live-view.js';

export interface ScaApp {
  readonly config: Config;
  readonly http: FastifyInstance;
  readonly engine: ScaEngine;
  readonly bridge: KamailioBridge;
  readonly metrics: ScaMetrics;
  readonly store: Store;
  readonly persister: Persister;
  start(): Promise<string>;
  stop(): Promise<void>;
}

export interface AppOptions {
  /** Seconds since the epoch; tests move it. */
  clock?: () => number;
  logger?: boolean | object;
}

/** Builds the whole service from a validated config; nothing listens until start(). */
export function buildApp(config: Config, opts: AppOptions = {}): ScaApp {
  const clock = opts.clock ?? (() => Date.now() / 1000);
  const http = Fastify({ logger: opts.logger ?? { level: config.log_level } });
  const engine = new ScaEngine({
    call_info_max_expires: config.call_info_max_expires,
    line_seize_max_expires: config.line_seize_max_expires,
    max_appearances: config.max_appearances,
    aor_max_appearances: config.aor_max_appearances,
    server_address: config.server_address,
    seized_timeout: config.seized_timeout,
    active_pending_timeout: config.active_pending_timeout,
  });
  const access = new Access(config.admin_token);
  const store = openStore(config.db_url, config.server_id);
  const persister = new Persister(engine, store, http.log.child({ component: 'store' }));
  // Read at scrape time, after the bridge below exists.
  const metrics = new ScaMetrics(engine, () => bridge.connected, () => persister.stats.errors);
  const liveView = registerLiveView(http, { engine, clock, access });
  const bridge = new KamailioBridge(engine, config.evapi_address, clock, http.log.child({ component: 'kamailio' }), {
    subscribed: (out) => metrics.subscribed(out),
    notifySent: (n) => metrics.notifySent(n),
    notifyAnswered: (code, s) => metrics.notifyAnswered(code, s),
    notifyTimedOut: (n) => metrics.notifyTimedOut(n),
    changed: () => liveView.changed(),
  }, () => persister.commit());
  registerRpc(http, { engine, clock, access, commitAndNotify: (n) => bridge.commitAndNotify(n), changed: () => liveView.changed() });
  let purgeTimer: NodeJS.Timeout | undefined;

  // Probes and scrapes come every few seconds: their request log lines would drown the rest.
  const quiet = { logLevel: 'warn' as const };
  http.get('/healthz', quiet, async () => ({ status: 'ok' }));
  let storeOpen = false;
  // Ready: connected to Kamailio and the store open. A failing store leaves the service serving
  // from memory: still ready, but "degraded".
  http.get('/readyz', quiet, async (_req, reply) => {
    const ready = bridge.connected > 0 && storeOpen;
    const status = !ready ? 'not ready' : persister.degraded ? 'degraded' : 'ready';
    return reply.code(ready ? 200 : 503).send({ status, evapi_connected: bridge.connected, store: { kind: store.kind, open: storeOpen, degraded: persister.degraded } });
  });
  http.get('/metrics', quiet, async (req, reply) => {
    if (access.check(req.ip, req.headers.authorization) === undefined) return reply.code(401).send('unauthorized\n');
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return {
    config, http, engine, bridge, metrics, store, persister,
    async start() {
      await store.open();
      const loaded = await store.loadLines();
      const restored = engine.restore(loaded.lines, clock());
      http.log.info({ store: store.kind, ...restored, skipped: loaded.skipped }, 'state restored');
      if (loaded.skipped > 0) http.log.warn({ skipped: loaded.skipped }, 'bad rows skipped while restoring');
      await persister.commit();
      storeOpen = true;
      // After a restart every phone gets the full state once Kamailio is there to carry it.
      let greeted = restored.subscriptions === 0;
      bridge.onUp(() => {
        if (greeted) return;
        greeted = true;
        void bridge.commitAndNotify(engine.notifyEveryone(clock()));
      });
      bridge.start();
      purgeTimer = setInterval(() => {
        const notifies = engine.tick(clock());
        if (notifies.length > 0) http.log.info({ notifies: notifies.length }, 'purge');
        void bridge.commitAndNotify(notifies);
        liveView.changed();
      }, config.purge_expired_interval * 1000);
      return http.listen({ host: config.http_host, port: config.http_port });
    },
    async stop() {
      if (purgeTimer) clearInterval(purgeTimer);
      liveView.close();
      bridge.stop();
      await http.close();
      await persister.drain();
      persister.stop();
      await store.close();
    },
  };
}
