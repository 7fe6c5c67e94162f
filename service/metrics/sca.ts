import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ScaEngine } from '../sca/engine.js';
import type { SubscribeOutcome } from '../sca/subscribe.js';
import { APPEARANCE_STATES, wireState } from '../sca/types.js';
import type { Committer } from '../store/committer.js';

/** The shared lines' metrics, sca_ prefix, no AoR labels. Gauges are read at scrape time. */
export class ScaMetrics {
  private readonly lineSeize: Counter<'result'>;
  private readonly subscribes: Counter<'event' | 'class'>;
  private readonly subscribeSeconds: Histogram<'event'>;

  constructor(registry: Registry, engine: ScaEngine, committer: Committer) {
    const states = [...new Set(APPEARANCE_STATES.map(wireState))];
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
        const counts = new Map<string, number>(states.map((s) => [s, 0]));
        for (const a of engine.listAppearances()) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Counter({
      name: 'sca_orphans_released_total', help: 'Appearances released by the stale timers (seized unused, callee never ACKed)', registers: [registry],
      collect() { this.reset(); this.inc(engine.ctx.stats.orphansReleased); },
    });
    new Counter({
      name: 'sca_store_errors_total', help: 'Failed store writes (the service then serves from memory and retries)', registers: [registry],
      collect() { this.reset(); this.inc(committer.stats.errors); },
    });
    new Counter({
      name: 'sca_store_rows_set_aside_total', help: 'Rows the database refused for their content, logged and not written', registers: [registry],
      collect() { this.reset(); this.inc(committer.stats.setAside); },
    });
    new Gauge({
      name: 'sca_store_pending_rows', help: 'Rows changed and not yet committed to the store (the store lag; grows while the database is away)', registers: [registry],
      collect() { this.set(committer.pending); },
    });
    new Gauge({
      name: 'sca_store_degraded', help: '1 while the store fails and the service serves from memory', registers: [registry],
      collect() { this.set(committer.degraded ? 1 : 0); },
    });
    this.lineSeize = new Counter({ name: 'sca_line_seize_total', help: 'line-seize SUBSCRIBE results', labelNames: ['result'], registers: [registry] });
    for (const result of ['granted', 'rejected', 'released', 'error']) this.lineSeize.inc({ result }, 0);
    this.subscribes = new Counter({
      name: 'sca_subscribe_total', help: 'SUBSCRIBEs answered, by event package (call-info, line-seize, other) and reply class (2xx..6xx)',
      labelNames: ['event', 'class'], registers: [registry],
    });
    this.subscribeSeconds = new Histogram({
      name: 'sca_subscribe_duration_seconds', help: 'From a SUBSCRIBE reaching the service to its answer to Kamailio (store commit included)',
      labelNames: ['event'], registers: [registry], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
    });
    for (const event of ['call-info', 'line-seize']) {
      this.subscribes.inc({ event, class: '2xx' }, 0);
      this.subscribeSeconds.zero({ event });
    }
  }

  /** A SUBSCRIBE was answered `seconds` after it came (its commit included). */
  subscribeAnswered(out: SubscribeOutcome, seconds: number): void {
    const event = out.event ?? 'other';
    this.subscribes.inc({ event, class: `${Math.floor(out.reply.code / 100)}xx` });
    this.subscribeSeconds.observe({ event }, seconds);
  }

  subscribed(out: SubscribeOutcome): void {
    if (out.event !== 'line-seize') return;
    const code = out.reply.code;
    const result = code === 480 ? 'rejected' : code >= 300 ? 'error' : out.expires === 0 ? 'released' : 'granted';
    this.lineSeize.inc({ result });
  }
}
