import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BridgeObserver } from './kamailio/bridge.js';
import type { ScaEngine } from './sca/engine.js';
import type { SubscribeOutcome } from './sca/subscribe.js';

const STATES = ['seized', 'progressing', 'alerting', 'active', 'held', 'held-private'] as const;

/**
 * Prometheus metrics, sca_ prefix, low-cardinality labels only (never an AoR or Call-ID).
 * Gauges are read from the engine at scrape time; counters are fed by the bridge.
 */
export class ScaMetrics implements Omit<BridgeObserver, 'changed'> {
  readonly registry = new Registry();
  private readonly lineSeize: Counter<'result'>;
  private readonly notifies: Counter<'class'>;
  private readonly notifyLatency: Histogram;
  private readonly sent: Counter;

  constructor(engine: ScaEngine, evapiConnected: () => number, storeErrors: () => number) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry });
    new Gauge({
      name: 'sca_subscriptions', help: 'Subscriptions by event package', labelNames: ['event'], registers: [registry],
      collect() {
        this.set({ event: 'call-info' }, engine.countSubscriptions('call-info'));
        this.set({ event: 'line-seize' }, engine.countSubscriptions('line-seize'));
      },
    });
    new Gauge({
      name: 'sca_appearances', help: 'Appearances by state (idle ones are not stored)', labelNames: ['state'], registers: [registry],
      collect() {
        const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
        for (const a of engine.listAppearances()) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'sca_evapi_connected', help: 'Kamailio evapi connections up', registers: [registry],
      collect() { this.set(evapiConnected()); },
    });
    new Counter({
      name: 'sca_orphans_released_total', help: 'Appearances released by the stale timers (seized unused, callee never ACKed)', registers: [registry],
      collect() { this.reset(); this.inc(engine.ctx.stats.orphansReleased); },
    });
    new Counter({
      name: 'sca_store_errors_total', help: 'Failed store writes (the service then serves from memory and retries)', registers: [registry],
      collect() { this.reset(); this.inc(storeErrors()); },
    });
    this.lineSeize = new Counter({ name: 'sca_line_seize_total', help: 'line-seize SUBSCRIBE results', labelNames: ['result'], registers: [registry] });
    this.sent = new Counter({ name: 'sca_notify_sent_total', help: 'NOTIFYs handed to Kamailio', registers: [registry] });
    this.notifies = new Counter({ name: 'sca_notify_total', help: 'NOTIFY outcomes by reply class (2xx..6xx, timeout)', labelNames: ['class'], registers: [registry] });
    this.notifyLatency = new Histogram({
      name: 'sca_notify_latency_seconds', help: 'From handing a NOTIFY to Kamailio to its final reply', registers: [registry],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 32],
    });
    for (const result of ['granted', 'rejected', 'released', 'error']) this.lineSeize.inc({ result }, 0);
    for (const c of ['2xx', '3xx', '4xx', '5xx', '6xx', 'timeout']) this.notifies.inc({ class: c }, 0);
  }

  subscribed(out: SubscribeOutcome): void {
    if (out.event !== 'line-seize') return;
    const code = out.reply.code;
    const result = code === 480 ? 'rejected' : code >= 300 ? 'error' : out.expires === 0 ? 'released' : 'granted';
    this.lineSeize.inc({ result });
  }

  notifySent(count: number): void {
    this.sent.inc(count);
  }

  notifyAnswered(code: number, seconds: number | undefined): void {
    this.notifies.inc({ class: `${Math.floor(code / 100)}xx` });
    if (seconds !== undefined) this.notifyLatency.observe(seconds);
  }

  notifyTimedOut(count: number): void {
    this.notifies.inc({ class: 'timeout' }, count);
  }
}
