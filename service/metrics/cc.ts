import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CcEngine } from '../cc/engine.js';
import type { AdmissionResult, EndCause } from '../cc/types.js';
import type { Committer } from '../store/committer.js';

const RESULTS: readonly AdmissionResult[] = ['admitted', 'untracked', 'blacklisted', 'limit', 'no-credit', 'no-rate', 'bad-request', 'duplicate'];
const CAUSES: readonly EndCause[] = ['caller', 'callee', 'normal', 'limit', 'credit', 'admin', 'stale', 'failed'];

/** Call control's metrics, cc_ prefix; no label carries an account or a Call-ID. */
export class CcMetrics {
  private readonly latency: Histogram<'door'>;

  constructor(registry: Registry, engine: CcEngine, committer: Committer, kamailio: { readonly stats: { readonly endFailures: number; readonly lookupFailures: number } }, clock: () => number) {
    new Counter({
      name: 'cc_decisions_total', help: 'Admission decisions by result', labelNames: ['result'], registers: [registry],
      collect() { this.reset(); for (const r of RESULTS) this.inc({ result: r }, engine.stats.decisions[r] ?? 0); },
    });
    new Counter({
      name: 'cc_calls_ended_total', help: 'Calls ended, by cause (caller, callee, normal, limit, credit, admin, stale, failed)', labelNames: ['cause'], registers: [registry],
      collect() { this.reset(); for (const c of CAUSES) this.inc({ cause: c }, engine.stats.ended[c] ?? 0); },
    });
    new Gauge({
      name: 'cc_calls', help: 'Calls counted now: setting up (admitted, not answered) and active', labelNames: ['state'], registers: [registry],
      collect() { this.set({ state: 'setup' }, engine.countCalls('setup')); this.set({ state: 'active' }, engine.countCalls('active')); },
    });
    new Gauge({
      name: 'cc_reserved_credit', help: 'Credit reserved by prepaid calls in progress (minor units)', registers: [registry],
      collect() { this.set(engine.reserved()); },
    });
    new Gauge({
      name: 'cc_calls_overrunning', help: 'Calls the service asked Kamailio to end (limit, credit, operator, setup timeout) more than 5 s ago that still run', registers: [registry],
      collect() { this.set(engine.overrunning(clock())); },
    });
    new Counter({
      name: 'cc_end_failures_total', help: 'Attempts to end a call through Kamailio that failed (the call stays counted and is tried again)', registers: [registry],
      collect() { this.reset(); this.inc(kamailio.stats.endFailures); },
    });
    new Counter({
      name: 'cc_reconcile_failures_total', help: 'Counted calls Kamailio could not be asked about (reconcile tried again)', registers: [registry],
      collect() { this.reset(); this.inc(kamailio.stats.lookupFailures); },
    });
    new Counter({
      name: 'cc_store_errors_total', help: 'Failed call-control store writes (served from memory, retried)', registers: [registry],
      collect() { this.reset(); this.inc(committer.stats.errors); },
    });
    this.latency = new Histogram({
      name: 'cc_decision_latency_seconds', help: 'From a request reaching the service to its answer (store commit included)', labelNames: ['door'], registers: [registry],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5],
    });
  }

  decided(door: 'socket' | 'link', seconds: number): void {
    this.latency.observe({ door }, seconds);
  }
}
