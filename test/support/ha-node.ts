// An HA node in the test process: a MySQL store (its own hosts), a role over a lease the test
// can silence, and a strict committer writing rows of a test table, with its log lines kept.
import { Lease } from '../../service/ha/lease.js';
import { Role, type HaLog, type LeasePort } from '../../service/ha/role.js';
import type { LossReason } from '../../service/ha/role-machine.js';
import { Committer, type Change } from '../../service/store/committer.js';
import type { FencedError } from '../../service/store/database.js';
import { MysqlDatabase } from '../../service/store/mysql.js';
import { deferred } from './wait.js';

export interface LogLine { level: string; msg: string; fields: Record<string, unknown>; at: number }

export function collectingLog(name: string, echo?: (line: string) => void): HaLog & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const put = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, msg, fields: obj as Record<string, unknown>, at: performance.now() });
    echo?.(`${name} ${level}: ${msg} ${JSON.stringify(obj)}`);
  };
  return { lines, info: put('info'), warn: put('warn'), error: put('error') };
}

/** The real lease, whose renewals a test can stop (as if the process froze between them). */
export class SilenceableLease implements LeasePort {
  renewals: 'on' | 'hang' = 'on';
  /** performance.now() when each successful renewal was sent. */
  readonly renewedSentAt: number[] = [];
  acquiredSentAt: number | undefined;
  constructor(readonly inner: Lease) {}
  get holder(): string { return this.inner.holder; }
  prepare() { return this.inner.prepare(); }
  measureOffset() { return this.inner.measureOffset(); }
  read() { return this.inner.read(); }
  async acquire() {
    const sent = performance.now();
    const r = await this.inner.acquire();
    if (r.kind === 'acquired') this.acquiredSentAt = sent;
    return r;
  }
  async renew(epoch: number) {
    if (this.renewals === 'hang') return new Promise<never>(() => undefined);
    const sent = performance.now();
    const r = await this.inner.renew(epoch);
    if (r.kind === 'renewed') this.renewedSentAt.push(sent);
    return r;
  }
  /** When the lease this node holds was last pushed forward (sent). */
  get lastGoodSend(): number | undefined {
    return this.renewedSentAt.at(-1) ?? this.acquiredSentAt;
  }
  release(epoch: number) { return this.inner.release(epoch); }
  close() { this.inner.close(); }
}

export const KV_TABLE = 'CREATE TABLE IF NOT EXISTS ha_kv (k VARCHAR(64) PRIMARY KEY, v BIGINT NOT NULL, node VARCHAR(16) NOT NULL) ENGINE=InnoDB';

export interface HaNodeOptions {
  readonly name: string;
  readonly url: string;
  readonly hosts?: readonly string[];
  readonly ttlS?: number;
  readonly renewIntervalS?: number;
  readonly pollIntervalS?: number;
  readonly maxClockOffsetS?: number;
  readonly wall?: () => number;
  readonly echo?: (line: string) => void;
}

export class HaNode {
  readonly db: MysqlDatabase;
  readonly lease: SilenceableLease;
  readonly role: Role;
  readonly committer: Committer;
  readonly log: HaLog & { lines: LogLine[] };
  readonly fencedErrors: FencedError[] = [];
  /** Resolve with the epoch / the reason, once. */
  readonly leader: Promise<number>;
  readonly lost: Promise<LossReason>;
  leaderAt: number | undefined;
  lostAt: number | undefined;

  constructor(readonly opts: HaNodeOptions) {
    const ttlS = opts.ttlS ?? 3;
    this.log = collectingLog(opts.name, opts.echo);
    this.db = new MysqlDatabase(opts.url, { hosts: opts.hosts ?? [], ha: { idleWriteTimeoutS: ttlS } });
    this.lease = new SilenceableLease(new Lease(this.db, { name: 'sca', holder: Lease.holderFor(opts.name), ttlS, timeoutMs: ttlS * 1000, ...(opts.wall ? { wall: opts.wall } : {}) }));
    this.role = new Role(this.lease, this.db, {
      name: 'sca', ttlS, renewIntervalS: opts.renewIntervalS ?? 1, pollIntervalS: opts.pollIntervalS ?? 0.5,
      maxClockOffsetS: opts.maxClockOffsetS ?? 1, log: this.log, ...(opts.wall ? { wall: opts.wall } : {}),
    });
    this.committer = new Committer(this.db, this.log, { strict: true, onFenced: (e) => { this.fencedErrors.push(e); this.role.fenced(e); } });
    const leader = deferred<number>();
    const lost = deferred<LossReason>();
    this.role.onLeader((e) => { this.leaderAt = performance.now(); leader.resolve(e); });
    this.role.onLost((r) => { this.lostAt = performance.now(); lost.resolve(r); });
    this.leader = leader.promise;
    this.lost = lost.promise;
  }

  async start(): Promise<void> {
    await this.db.open();
    await this.db.query(KV_TABLE);
    const r = await this.role.start();
    if (!r.ok) throw new Error(`${this.opts.name}: role did not start: ${r.error}`);
  }

  /** One row through the strict committer (what an engine's effects runner does). */
  put(k: string, v: number): Promise<void> {
    return this.committer.commit([row(k, v, this.opts.name)]);
  }

  /** Stops timers and connections (a lost node would exit here). */
  async close(): Promise<void> {
    this.committer.stop();
    await this.role.stop();
    await Promise.race([this.db.close(), new Promise((r) => setTimeout(r, 2000))]);
  }
}

export function row(k: string, v: number, node: string): Change {
  return { key: k, statements: [{ sql: 'INSERT INTO ha_kv (k, v, node) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v), node = VALUES(node)', params: [k, v, node] }] };
}
