import { randomBytes } from 'node:crypto';
import type { Migration } from '../store/database.js';
import type { DedicatedSession, MysqlDatabase } from '../store/mysql.js';
import { clockOffset } from './clock-offset.js';

/**
 * The leader's lease: one row per lease name whose expiry only the database's clock decides, and
 * whose epoch goes up by one at every takeover and is copied into the fence row in the same
 * transaction. It talks over a connection of its own, so a renewal never queues behind commits.
 * Every outcome is a value; nothing here throws.
 */

export const HA_COMPONENT = 'ha';

export const HA_MIGRATIONS: readonly Migration[] = [{
  version: 1,
  sqlite: [], // HA needs a database the nodes share: config.ts refuses ha_enabled with sqlite.
  mysql: [
    `CREATE TABLE IF NOT EXISTS sca_ha_lease (
      name VARCHAR(32) NOT NULL PRIMARY KEY,
      holder VARCHAR(128) NOT NULL,
      epoch BIGINT NOT NULL,
      expires_at DATETIME(6) NOT NULL
    ) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS sca_ha_fence (
      name VARCHAR(32) NOT NULL PRIMARY KEY,
      epoch BIGINT NOT NULL,
      seq BIGINT NOT NULL
    ) ENGINE=InnoDB`,
  ],
}];

export type AcquireResult =
  | { readonly kind: 'acquired'; readonly epoch: number }
  | { readonly kind: 'held'; readonly holder: string; readonly epoch: number }
  | { readonly kind: 'error'; readonly error: string; readonly code: string | undefined };
export type RenewResult =
  | { readonly kind: 'renewed' }
  | { readonly kind: 'deposed' }
  | { readonly kind: 'error'; readonly error: string; readonly code: string | undefined };
export type OffsetResult =
  | { readonly kind: 'measured'; readonly offsetS: number; readonly rttMs: number }
  | { readonly kind: 'error'; readonly error: string; readonly code: string | undefined };
export type PrepareResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

export interface LeaseOptions {
  /** The lease (and fence) row. */
  readonly name: string;
  /** Who takes it: node id + incarnation (Lease.holderFor). */
  readonly holder: string;
  readonly ttlS: number;
  /** Every statement on the lease connection answers within this, or the connection is dropped. */
  readonly timeoutMs: number;
  /** Local wall clock, ms since the epoch (tests move it). */
  readonly wall?: () => number;
}

const errorOf = (err: unknown) => ({ kind: 'error' as const, error: (err as Error).message ?? String(err), code: (err as { code?: string }).code });

// The lease connection: expiry in UTC whatever the server's zone; a lock (a frozen leader's
// transaction) is waited for briefly, the next poll tries again.
const SESSION_SETUP = ["SET time_zone = '+00:00'", 'SET SESSION innodb_lock_wait_timeout = 1'];

export class Lease {
  private session: DedicatedSession | undefined;
  private readonly ttlMicros: number;
  private readonly wall: () => number;

  /** A restarted process is a new term: the same node id never reuses an incarnation. */
  static holderFor(nodeId: string): string {
    return `${nodeId}/${randomBytes(4).toString('hex')}`;
  }

  constructor(private readonly db: MysqlDatabase, private readonly opts: LeaseOptions) {
    this.ttlMicros = Math.round(opts.ttlS * 1e6);
    this.wall = opts.wall ?? Date.now;
  }

  get holder(): string {
    return this.opts.holder;
  }

  /** The tables and this lease's rows (an expired lease at epoch 0); idempotent, any node. */
  async prepare(): Promise<PrepareResult> {
    try {
      await this.db.migrate(HA_COMPONENT, HA_MIGRATIONS);
      for (let attempt = 1; ; attempt++) {
        try {
          await this.db.query("INSERT IGNORE INTO sca_ha_lease (name, holder, epoch, expires_at) VALUES (?, '', 0, '2000-01-01 00:00:00')", [this.opts.name]);
          await this.db.query('INSERT IGNORE INTO sca_ha_fence (name, epoch, seq) VALUES (?, 0, 0)', [this.opts.name]);
          return { ok: true };
        } catch (err) {
          // Two nodes seeding at once on Galera: one is told to try again (1213).
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
      }
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  /** Database clock minus ours, RTT-corrected. */
  async measureOffset(): Promise<OffsetResult> {
    try {
      const s = await this.connection();
      const sentWallMs = this.wall();
      const { rows } = await s.run('SELECT UNIX_TIMESTAMP(NOW(6)) AS t');
      const receivedWallMs = this.wall();
      return { kind: 'measured', ...clockOffset({ sentWallMs, receivedWallMs, dbSeconds: Number(rows[0]?.t) }) };
    } catch (err) {
      return errorOf(err);
    }
  }

  /**
   * Takes the lease if it expired (by the database's clock), one transaction: the next epoch in
   * the lease row and the same in the fence row. Otherwise says who holds it.
   */
  async acquire(): Promise<AcquireResult> {
    const { name, holder } = this.opts;
    try {
      const s = await this.connection();
      await s.run('START TRANSACTION');
      const took = await s.run('UPDATE sca_ha_lease SET holder = ?, epoch = epoch + 1, expires_at = NOW(6) + INTERVAL ? MICROSECOND WHERE name = ? AND expires_at < NOW(6)', [holder, this.ttlMicros, name]);
      if (took.affectedRows !== 1) {
        await s.run('ROLLBACK');
        return await this.read();
      }
      const { rows } = await s.run('SELECT epoch FROM sca_ha_lease WHERE name = ?', [name]);
      const epoch = Number(rows[0]?.epoch);
      // seq moves too, so the row is in the write set even if its epoch were already this one.
      const fenced = await s.run('UPDATE sca_ha_fence SET epoch = ?, seq = seq + 1 WHERE name = ?', [epoch, name]);
      if (fenced.affectedRows !== 1) {
        await s.run('ROLLBACK');
        return { kind: 'error', error: `fence row ${name} is missing (prepare() not run?)`, code: undefined };
      }
      await s.run('COMMIT');
      return { kind: 'acquired', epoch };
    } catch (err) {
      // The session drops itself on any error: the server rolls the transaction back.
      return errorOf(err);
    }
  }

  /** Who holds the lease (as the database says now), without trying to take it. */
  async read(): Promise<AcquireResult> {
    try {
      const s = await this.connection();
      const { rows } = await s.run('SELECT holder, epoch FROM sca_ha_lease WHERE name = ?', [this.opts.name]);
      if (rows.length === 0) return { kind: 'error', error: `lease row ${this.opts.name} is missing (prepare() not run?)`, code: undefined };
      return { kind: 'held', holder: String(rows[0]!.holder), epoch: Number(rows[0]!.epoch) };
    } catch (err) {
      return errorOf(err);
    }
  }

  /** Pushes expiry to now + ttl on the database's clock, if this holder and epoch still hold it. */
  async renew(epoch: number): Promise<RenewResult> {
    try {
      const s = await this.connection();
      const r = await s.run('UPDATE sca_ha_lease SET expires_at = NOW(6) + INTERVAL ? MICROSECOND WHERE name = ? AND holder = ? AND epoch = ?', [this.ttlMicros, this.opts.name, this.opts.holder, epoch]);
      return r.affectedRows === 1 ? { kind: 'renewed' } : { kind: 'deposed' };
    } catch (err) {
      return errorOf(err);
    }
  }

  /** A clean stop: lets a standby take over at its next poll instead of at expiry. */
  async release(epoch: number): Promise<boolean> {
    try {
      const s = await this.connection();
      const r = await s.run('UPDATE sca_ha_lease SET expires_at = NOW(6) - INTERVAL 1 MICROSECOND WHERE name = ? AND holder = ? AND epoch = ?', [this.opts.name, this.opts.holder, epoch]);
      return r.affectedRows === 1;
    } catch {
      return false;
    }
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  private async connection(): Promise<DedicatedSession> {
    if (this.session && !this.session.closed) return this.session;
    this.session?.close();
    this.session = undefined;
    this.session = await this.db.dedicated({ timeoutMs: this.opts.timeoutMs, setup: SESSION_SETUP });
    return this.session;
  }
}
