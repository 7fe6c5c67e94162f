import type { ScaEngine } from '../sca/engine.js';
import type { Store } from './store.js';

export interface PersisterLog {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * Durable before acknowledged: commit() takes the lines the engine marked dirty and resolves once
 * they are stored. Everything asked for within one event-loop turn goes in one transaction
 * (group commit). If the store fails, the service keeps serving from memory: the lines stay
 * queued, are retried with backoff, and `degraded` is true until a write succeeds again.
 */
export class Persister {
  private readonly queued = new Set<string>();
  private waiters: Array<() => void> = [];
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = 200;
  degraded = false;
  readonly stats = { commits: 0, lines: 0, errors: 0 };

  constructor(private readonly engine: ScaEngine, private readonly store: Store, private readonly log: PersisterLog) {}

  commit(): Promise<void> {
    for (const aor of this.engine.takeDirty()) this.queued.add(aor);
    if (this.queued.size === 0) return Promise.resolve();
    // While the store is down nobody waits for it: the lines stay queued for the next retry.
    if (this.degraded) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.retryTimer) return;
    this.scheduled = true;
    setImmediate(() => void this.write());
  }

  private async write(): Promise<void> {
    this.scheduled = false;
    const aors = [...this.queued];
    const waiters = this.waiters;
    this.queued.clear();
    this.waiters = [];
    try {
      await this.store.saveLines(aors.map((aor) => this.engine.lineSnapshot(aor)));
      this.stats.commits++;
      this.stats.lines += aors.length;
      if (this.degraded) this.log.info({ lines: aors.length }, 'store is back; queued lines written');
      this.degraded = false;
      this.backoffMs = 200;
    } catch (err) {
      this.stats.errors++;
      for (const aor of aors) this.queued.add(aor);
      this.degraded = true;
      this.log.error({ err: (err as Error).message, lines: this.queued.size, retryMs: this.backoffMs }, 'STORE WRITE FAILED: serving from memory, will retry');
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.schedule();
      }, this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, 10_000);
    }
    for (const w of waiters) w();
    if (this.queued.size > 0 && !this.degraded) this.schedule();
  }

  /** Waits until nothing is queued (shutdown). */
  async drain(): Promise<void> {
    for (let i = 0; i < 50 && (this.queued.size > 0 || this.scheduled); i++) await new Promise((r) => setTimeout(r, 20));
  }

  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }
}
