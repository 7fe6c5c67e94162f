import { EventEmitter } from 'node:events';
import type { FencedError, Statement } from '../store/database.js';
import type { MysqlDatabase } from '../store/mysql.js';
import { closedFence, fenceStatement } from './fence.js';
import { Lease, type AcquireResult, type OffsetResult, type PrepareResult, type RenewResult } from './lease.js';
import { INITIAL_STATE, step, type LossReason, type RoleAction, type RoleEvent, type RoleLimits, type RoleState } from './role-machine.js';

/**
 * This node's role, carried out: a standby polls the lease, a leader renews it and fences the
 * store with its epoch, and leadership ends once, for good ('lost': the process must exit
 * non-zero; its supervisor starts it again as a standby). Decisions are role-machine.ts's; this
 * file has the timers, the lease connection and the store's fence.
 */

export interface HaLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the role needs of the lease (lease.ts; a fake in unit tests). */
export interface LeasePort {
  readonly holder: string;
  prepare(): Promise<PrepareResult>;
  measureOffset(): Promise<OffsetResult>;
  acquire(): Promise<AcquireResult>;
  /** Who holds it ('held' or 'error'), without trying to take it. */
  read(): Promise<AcquireResult>;
  renew(epoch: number): Promise<RenewResult>;
  release(epoch: number): Promise<boolean>;
  close(): void;
}

/** Where the fence goes: every transaction of the store starts with it. */
export interface FenceTarget {
  setFence(fence: Statement | undefined): void;
}

export interface RoleOptions {
  /** The lease and fence row; nodes serving the same data share it. */
  readonly name: string;
  readonly ttlS: number;
  readonly renewIntervalS: number;
  readonly pollIntervalS: number;
  readonly maxClockOffsetS: number;
  readonly log: HaLog;
  /** Monotonic ms (tests move it). */
  readonly mono?: () => number;
  /** Wall clock, ms since the epoch (tests move it). */
  readonly wall?: () => number;
}

/** What metrics and /readyz show. */
export interface RoleSnapshot {
  readonly role: 'standby' | 'leader' | 'lost';
  /** This process in the lease: node id / incarnation. */
  readonly holder: string;
  /** This node's epoch while it leads (or led, once lost). */
  readonly epoch: number | undefined;
  /** The leader as last seen (itself while leading). */
  readonly leader: { readonly holder: string; readonly epoch: number } | undefined;
  /** Times this process became leader. */
  readonly takeovers: number;
  /** Database clock minus this node's at the last measurement, seconds. */
  readonly clockOffsetS: number | undefined;
  /** The clock is off by more than the limit: this node does not stand for leadership. */
  readonly refusing: boolean;
  readonly lostReason: LossReason | undefined;
}

type RoleEvents = { leader: [epoch: number]; lost: [reason: LossReason] };

export class Role {
  private state: RoleState = INITIAL_STATE;
  private readonly events = new EventEmitter<RoleEvents>();
  private readonly limits: RoleLimits;
  private readonly mono: () => number;
  private readonly wall: () => number;
  private pollTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private offsetS: number | undefined;
  private leader: { holder: string; epoch: number } | undefined;
  private takeovers = 0;
  private started = false;
  private stopped = false;
  /** The database failing, logged once per spell (a standby polls every half second). */
  private dbTrouble: string | undefined;

  constructor(private readonly lease: LeasePort, private readonly store: FenceTarget, private readonly opts: RoleOptions) {
    this.limits = { ttlMs: opts.ttlS * 1000, maxClockOffsetS: opts.maxClockOffsetS };
    this.mono = opts.mono ?? (() => performance.now());
    this.wall = opts.wall ?? Date.now;
  }

  onLeader(fn: (epoch: number) => void): void {
    this.events.on('leader', fn);
  }

  /** Leadership ended (or a standby's store was fenced): the process must exit non-zero. */
  onLost(fn: (reason: LossReason) => void): void {
    this.events.on('lost', fn);
  }

  /** Prepares the lease rows, closes the store's fence, and stands for leadership. */
  async start(): Promise<PrepareResult> {
    if (this.started) return { ok: true };
    this.started = true;
    // Until this node leads, no transaction of its store may commit.
    this.store.setFence(closedFence(this.opts.name));
    const prepared = await this.lease.prepare();
    if (!prepared.ok) return prepared;
    this.schedulePoll(0);
    return prepared;
  }

  get snapshot(): RoleSnapshot {
    const s = this.state;
    return {
      role: s.role,
      holder: this.lease.holder,
      epoch: s.role === 'standby' ? undefined : s.epoch,
      leader: s.role === 'leader' ? { holder: this.lease.holder, epoch: s.epoch } : this.leader,
      takeovers: this.takeovers,
      clockOffsetS: this.offsetS,
      refusing: s.role === 'standby' && s.refusing,
      lostReason: s.role === 'lost' ? s.reason : undefined,
    };
  }

  /** May this node act as leader now? Asked before answering: timers can be late, this is not. */
  leading(): boolean {
    if (this.state.role !== 'leader') return false;
    this.apply({ type: 'tick' });
    return this.state.role === 'leader';
  }

  /** The engines' clock in HA: this node's wall clock corrected by the database's (seconds). */
  clock(): number {
    return (this.wall() + (this.offsetS ?? 0) * 1000) / 1000;
  }

  /** The store's committer met the fence (CommitterOptions.onFenced). */
  fenced(err?: FencedError): void {
    this.apply({ type: 'fenced' }, err ? { err: err.message } : {});
  }

  /**
   * A clean stop (SIGTERM): no more renewals; a leader closes its fence and releases the lease so
   * a standby takes over at its next poll. Call after the store's queue is written.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    const s = this.state;
    this.store.setFence(closedFence(this.opts.name));
    if (s.role === 'leader') {
      const released = await this.lease.release(s.epoch);
      this.opts.log.info({ epoch: s.epoch, released }, 'HA: leader stopped; lease released');
    }
    this.lease.close();
  }

  private apply(event: RoleEvent, extra: Record<string, unknown> = {}): readonly RoleAction[] {
    const out = step(this.state, event, this.mono(), this.limits);
    this.state = out.state;
    for (const a of out.actions) this.carryOut(a, extra);
    return out.actions;
  }

  private carryOut(a: RoleAction, extra: Record<string, unknown>): void {
    switch (a.do) {
      case 'log':
        this.opts.log[a.level]({ component: 'ha', holder: this.lease.holder, ...a.fields, ...extra }, a.msg);
        return;
      case 'lead':
        this.store.setFence(fenceStatement(this.opts.name, a.epoch));
        this.takeovers++;
        this.leader = { holder: this.lease.holder, epoch: a.epoch };
        this.clearTimers();
        this.armDeadline();
        this.scheduleRenew(this.opts.renewIntervalS * 1000);
        this.events.emit('leader', a.epoch);
        return;
      case 'exit':
        this.store.setFence(closedFence(this.opts.name));
        this.clearTimers();
        this.lease.close();
        this.events.emit('lost', a.reason);
        return;
      case 'acquire':
        return; // poll() goes on to acquire when it sees this action
    }
  }

  private schedulePoll(ms: number): void {
    if (this.stopped || this.state.role !== 'standby') return;
    this.pollTimer = setTimeout(() => void this.poll(), ms);
  }

  private async poll(): Promise<void> {
    this.pollTimer = undefined;
    const measured = await this.lease.measureOffset();
    if (this.stopped || this.state.role !== 'standby') return;
    if (measured.kind === 'error') {
      this.troubled(measured.error);
      this.schedulePoll(this.opts.pollIntervalS * 1000);
      return;
    }
    this.offsetS = measured.offsetS;
    const actions = this.apply({ type: 'offset', offsetS: measured.offsetS }, { rttMs: Number(measured.rttMs.toFixed(3)) });
    // A node refusing leadership still reads who leads (for /leader and the metrics).
    const standing = actions.some((a) => a.do === 'acquire');
    const sentAtMs = this.mono();
    const r = standing ? await this.lease.acquire() : await this.lease.read();
    if (this.stopped) {
      if (r.kind === 'acquired') await this.lease.release(r.epoch);
      return;
    }
    if (r.kind === 'acquired') {
      this.healthy();
      this.apply({ type: 'acquired', epoch: r.epoch, sentAtMs });
    } else if (r.kind === 'held') {
      this.healthy();
      this.leader = { holder: r.holder, epoch: r.epoch };
    } else {
      this.troubled(r.error);
    }
    this.schedulePoll(this.opts.pollIntervalS * 1000);
  }

  private scheduleRenew(ms: number): void {
    if (this.stopped || this.state.role !== 'leader') return;
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(0, ms));
  }

  private async renew(): Promise<void> {
    this.renewTimer = undefined;
    const s = this.state;
    if (s.role !== 'leader') return;
    const sentAtMs = this.mono();
    const r = await this.lease.renew(s.epoch);
    if (this.stopped || this.state.role !== 'leader') return;
    if (r.kind === 'renewed') {
      this.healthy();
      this.apply({ type: 'renewed', sentAtMs });
      this.armDeadline();
      const measured = await this.lease.measureOffset();
      if (this.stopped || this.state.role !== 'leader') return;
      if (measured.kind === 'measured') {
        this.offsetS = measured.offsetS;
        this.apply({ type: 'offset', offsetS: measured.offsetS }, { rttMs: Number(measured.rttMs.toFixed(3)) });
      }
    } else if (r.kind === 'deposed') {
      this.apply({ type: 'deposed' });
    } else {
      this.troubled(r.error);
      this.apply({ type: 'tick' });
    }
    // Renewals keep their rhythm from the send time; a slow one is followed at once.
    this.scheduleRenew(sentAtMs + this.opts.renewIntervalS * 1000 - this.mono());
  }

  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    const s = this.state;
    if (s.role !== 'leader') return;
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      this.apply({ type: 'tick' });
      this.armDeadline();
    }, Math.max(0, s.deadlineMs - this.mono()) + 1);
  }

  private clearTimers(): void {
    for (const t of [this.pollTimer, this.renewTimer, this.deadlineTimer]) if (t) clearTimeout(t);
    this.pollTimer = this.renewTimer = this.deadlineTimer = undefined;
  }

  private troubled(error: string): void {
    if (this.dbTrouble === undefined) this.opts.log.warn({ component: 'ha', role: this.state.role, err: error }, 'HA: the lease cannot be read or written; trying again');
    this.dbTrouble = error;
  }

  private healthy(): void {
    if (this.dbTrouble !== undefined) this.opts.log.info({ component: 'ha', role: this.state.role }, 'HA: the lease answers again');
    this.dbTrouble = undefined;
  }
}

/** The settings of config.ts (ha_*) a role is made from. */
export interface HaSettings {
  readonly ha_node_id: string;
  readonly ha_lease_ttl: number;
  readonly ha_renew_interval: number;
  readonly ha_poll_interval: number;
  readonly ha_max_clock_offset: number;
}

/** A role over a MySQL store: its lease on a connection of its own, its fence on the store. */
export function createRole(db: MysqlDatabase, settings: HaSettings, log: HaLog, more: Partial<Pick<RoleOptions, 'name' | 'mono' | 'wall'>> = {}): Role {
  const name = more.name ?? 'sca';
  const lease = new Lease(db, {
    name, holder: Lease.holderFor(settings.ha_node_id), ttlS: settings.ha_lease_ttl,
    // A statement slower than the lease is of no use to it; the session is dropped and made anew.
    timeoutMs: Math.max(500, settings.ha_lease_ttl * 1000), ...(more.wall ? { wall: more.wall } : {}),
  });
  return new Role(lease, db, {
    name, ttlS: settings.ha_lease_ttl, renewIntervalS: settings.ha_renew_interval, pollIntervalS: settings.ha_poll_interval,
    maxClockOffsetS: settings.ha_max_clock_offset, log, ...more,
  });
}
