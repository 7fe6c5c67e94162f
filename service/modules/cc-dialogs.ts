import { randomBytes } from 'node:crypto';
import type { CcEffects, CcEngine, KamailioDialog } from '../cc/engine.js';
import type { KamailioCommand } from '../effects.js';
import { DlgState, type DialogInfo, type DialogRpc } from '../kamailio/dialog-rpc.js';

/**
 * What call control asks of Kamailio's dialogs (jsonrpcs), and what it does with the answers:
 * ending calls (BYE, or a final reply to a ringing one), looking a call up, and reconciling the
 * counted calls with the dialogs Kamailio holds. Kamailio can lose the report of an end (its
 * call_control module drops start/stop for 10 s after any failure; a `kill -9` or restart loses
 * them all), so counted calls are reconciled when Kamailio comes (back), every minute for calls
 * older than a minute, and a pass that could not ask Kamailio is tried again.
 */

export interface CcDialogsDeps {
  readonly engine: CcEngine;
  /** Kamailio's dialog RPCs at a proxy (PROXY_ID; undefined: over jsonrpcs' datagram socket). */
  dialogs(proxy: string | undefined): DialogRpc;
  run(effects: CcEffects): Promise<void>;
  readonly clock: () => number;
  readonly log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  changed(): void;
}

/** A call admitted this recently may not have its dialog yet (it is made as the INVITE is relayed). */
const GRACE_SECONDS = 5;
/** The periodic pass: every minute, for calls older than a minute. */
const SWEEP_SECONDS = 60;
/** A pass that could not reach Kamailio is tried again this soon. */
const RETRY_SECONDS = 5;
/**
 * After a connection of call_control.so failed, its worker drops start and stop for 10 s
 * (call_control.c's RETRY_INTERVAL): the pass comes after that, when the ends that do arrive are in.
 */
const AFTER_LOSS_SECONDS = 11;

const asKamailioDialog = (d: DialogInfo | undefined): KamailioDialog | undefined =>
  d !== undefined && d.state < DlgState.deleted
    ? { state: d.state >= DlgState.confirmedNoAck ? 'answered' : 'ringing', startTs: d.startTs, hEntry: d.hEntry, hId: d.hId }
    : undefined;

export class CcDialogs {
  /** When the service lost Kamailio (every connection to it closed), until a pass has run since. */
  private lostAt: number | undefined;
  private passing = false;
  private again: { minAge: number } | undefined;
  private timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly stats = { passes: 0, lookupFailures: 0, endFailures: 0, ended: 0 };

  constructor(private readonly deps: CcDialogsDeps) {}

  /** The periodic pass. */
  start(): void {
    const sweep = setInterval(() => void this.reconcile(SWEEP_SECONDS), SWEEP_SECONDS * 1000);
    sweep.unref();
    this.timers.push(sweep);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /**
   * From `at` on, the end of a call may not reach the service (Kamailio stopped, a connection of
   * call_control.so failed, the service itself stopped): calls found gone at the next pass are
   * billed at least up to `at`, when they were still known to run. `pass`: check after the pause.
   */
  suspectLoss(at: number, pass: boolean): void {
    if (this.lostAt === undefined || at < this.lostAt) this.lostAt = at;
    if (!pass || this.stopped) return;
    const t = setTimeout(() => void this.reconcile(GRACE_SECONDS), AFTER_LOSS_SECONDS * 1000);
    t.unref();
    this.timers.push(t);
  }

  /** Kamailio connected (again): every counted call but the newest is checked. */
  kamailioBack(): void {
    void this.reconcile(GRACE_SECONDS);
  }

  /** Carries out one engine command and gives the engine what Kamailio answered. */
  async carryOut(c: KamailioCommand): Promise<void> {
    const { engine, clock, log } = this.deps;
    const dialogs = this.deps.dialogs(c.proxy);
    if (c.kind === 'check-call') {
      const d = await dialogs.findDialog(c.callId, c.fromTag);
      if (d === 'failed') {
        this.stats.lookupFailures++;
        log.warn({ callId: c.callId }, 'a call past its setup time could not be looked up at Kamailio: the next pass tries again');
        this.retrySoon();
        return;
      }
      await this.apply(engine.reconcile(c.callId, asKamailioDialog(d), clock()));
      return;
    }
    const outcome = c.kind === 'end-dialog'
      ? await dialogs.endAnswered(c.callId, c.hEntry, c.hId)
      : await dialogs.endCall(c.callId, c.fromTag, { code: c.code, reason: c.reason, toTag: `cc${randomBytes(6).toString('hex')}` });
    if (outcome === 'failed') {
      this.stats.endFailures++;
      log.error({ callId: c.callId, command: c.kind }, 'CALL NOT ENDED: Kamailio did not end it; it stays counted and is tried again');
    } else {
      if (outcome !== 'not-found') this.stats.ended++;
      log[outcome === 'not-found' ? 'warn' : 'info']({ callId: c.callId, command: c.kind, outcome }, `ending the call through Kamailio: ${outcome}`);
    }
    await this.apply(engine.endOutcome(c.callId, outcome, clock()));
  }

  /**
   * Looks up every counted call at least `minAge` seconds old and tells the engine what Kamailio
   * knows. One pass at a time; a request for another while one runs makes one more follow.
   */
  async reconcile(minAge: number): Promise<void> {
    if (this.stopped) return;
    if (this.passing) {
      this.again = { minAge: Math.min(minAge, this.again?.minAge ?? minAge) };
      return;
    }
    this.passing = true;
    const { engine, clock, log } = this.deps;
    const lostAt = this.lostAt;
    let kept = 0;
    let ended = 0;
    let failed = 0;
    const all = engine.callsOf();
    const calls = all.filter((c) => clock() - c.createdAt >= minAge);
    try {
      for (const c of calls) {
        if (this.stopped) return;
        const d = await this.deps.dialogs(c.proxy).findDialog(c.callId, c.fromTag);
        if (d === 'failed') {
          failed++;
          continue;
        }
        const out = engine.reconcile(c.callId, asKamailioDialog(d), clock(), lostAt);
        await this.apply(out);
        if (out.outcome === 'ended') ended++;
        else kept++;
      }
    } finally {
      this.passing = false;
    }
    this.stats.passes++;
    this.stats.lookupFailures += failed;
    if (failed > 0) {
      log.error({ calls: calls.length, failed }, 'RECONCILE INCOMPLETE: Kamailio did not answer for some calls; trying again');
      this.retrySoon();
    } else if (lostAt !== undefined && all.some((c) => c.createdAt <= lostAt && !calls.includes(c))) {
      // Calls from before the loss too new to check yet: the loss stays known for them, and they
      // are checked once old enough.
      this.retrySoon();
    } else if (lostAt !== undefined && this.lostAt === lostAt) {
      this.lostAt = undefined;
    }
    if (calls.length > 0) log.info({ calls: calls.length, kept, ended, failed, minAge }, 'calls reconciled with Kamailio');
    const next = this.again;
    this.again = undefined;
    if (next) await this.reconcile(next.minAge);
  }

  private retrySoon(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.reconcile(GRACE_SECONDS);
    }, RETRY_SECONDS * 1000);
    this.retryTimer.unref();
  }

  private async apply(effects: CcEffects): Promise<void> {
    await this.deps.run(effects);
    this.deps.changed();
  }
}
