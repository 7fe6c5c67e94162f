import { Counter, Gauge, type Registry } from 'prom-client';
import type { ScaEngine } from '../sca/engine.js';
import type { SubscribeOutcome } from '../sca/subscribe.js';
import { APPEARANCE_STATES, wireState } from '../sca/types.js';
import type { Committer } from '../store/committer.js';

/** The shared lines' metrics, sca_ prefix, no AoR labels. Gauges are read at scrape time. */
export class ScaMetrics {
  private readonly lineSeize: Counter<'result'>;

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
    this.lineSeize = new Counter({ name: 'sca_line_seize_total', help: 'line-seize SUBSCRIBE results', labelNames: ['result'], registers: [registry] });
    for (const result of ['granted', 'rejected', 'released', 'error']) this.lineSeize.inc({ result }, 0);
  }

  subscribed(out: SubscribeOutcome): void {
    if (out.event !== 'line-seize') return;
    const code = out.reply.code;
    const result = code === 480 ? 'rejected' : code >= 300 ? 'error' : out.expires === 0 ? 'released' : 'granted';
    this.lineSeize.inc({ result });
  }
}
