import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CcEngine } from '../cc/engine.js';
import type { AdmissionResult, Cdr, EndCause } from '../cc/types.js';
import type { Committer } from '../store/committer.js';

const RESULTS: readonly AdmissionResult[] = ['admitted', 'untracked', 'blacklisted', 'limit', 'no-credit', 'no-rate', 'bad-request', 'duplicate'];
const CAUSES: readonly EndCause[] = ['caller', 'callee', 'normal', 'limit', 'credit', 'admin', 'stale', 'failed'];

/**
 * Call control's metrics, cc_ prefix; no label carries an account or a Call-ID, except the
 * opt-in, bounded cc_account_calls (cc_metrics_top_accounts).
 */
export class CcMetrics {
  private readonly latency: Histogram<'door'>;
  private readonly spent: Counter;

  constructor(registry: Registry, engine: CcEngine, committer: Committer, kamailio: { readonly stats: { readonly endFailures: number; readonly lookupFailures: number } }, clock: () => number,
    cdrFile?: { readonly behind: number; readonly error: string | undefined; readonly stats: { readonly errors: number } }) {
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
    new Gauge({
      name: 'cc_store_pending_rows', help: 'Call-control rows changed and not yet committed to the store (the store lag)', registers: [registry],
      collect() { this.set(committer.pending); },
    });
    new Gauge({
      name: 'cc_store_degraded', help: '1 while the call-control store fails and the service serves from memory', registers: [registry],
      collect() { this.set(committer.degraded ? 1 : 0); },
    });
    // The CDR file, when there is one: 0 while it keeps up.
    new Gauge({
      name: 'cc_cdr_lines_behind', help: 'CDRs in the database whose CSV lines are not in the CDR file yet (it failed: a full disk, a file that cannot be opened; retried)', registers: [registry],
      collect() { this.set(cdrFile?.behind ?? 0); },
    });
    new Gauge({
      name: 'cc_cdr_file_failing', help: '1 while the CDR file cannot be written (CDR lines are behind and retried)', registers: [registry],
      collect() { this.set(cdrFile?.error !== undefined ? 1 : 0); },
    });
    new Counter({
      name: 'cc_cdr_file_errors_total', help: 'Failed attempts to write CDR lines to the CDR file (each retried)', registers: [registry],
      collect() { this.reset(); this.inc(cdrFile?.stats.errors ?? 0); },
    });
    this.spent = new Counter({
      name: 'cc_credit_spent_total', help: 'Credit debited from prepaid balances for ended calls (minor units)', registers: [registry],
    });
    const top = engine.config.cc_metrics_top_accounts;
    if (top > 0) {
      new Gauge({
        name: 'cc_account_calls', help: `Calls in progress of the ${top} accounts with the most (opt-in: cc_metrics_top_accounts)`, labelNames: ['account'], registers: [registry],
        collect() {
          this.reset();
          const byAccount = new Map<string, number>();
          for (const c of engine.callsOf()) byAccount.set(c.account, (byAccount.get(c.account) ?? 0) + 1);
          const counts = [...byAccount].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
          for (const [account, n] of counts.slice(0, top)) this.set({ account }, n);
        },
      });
    }
    this.latency = new Histogram({
      name: 'cc_decision_latency_seconds', help: 'From a request reaching the service to its answer (store commit included)', labelNames: ['door'], registers: [registry],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5],
    });
    // Both doors from the start: a dashboard shows 0 for a door not used yet, not "no data".
    for (const door of ['socket', 'link'] as const) this.latency.zero({ door });
  }

  decided(door: 'socket' | 'link', seconds: number): void {
    this.latency.observe({ door }, seconds);
  }

  /**
   * CDRs committed: their amounts are credit spent. The module calls it where it writes the CDR
   * lines (service/modules/cc.ts, the runner's commit).
   */
  billed(cdrs: readonly Cdr[]): void {
    for (const c of cdrs) if (c.amount > 0) this.spent.inc(c.amount);
  }
}
