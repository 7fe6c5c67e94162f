import type { Effects, KamailioCommand, OutboundNotify, TimerEffect } from './effects.js';

/** Where the runner sends what the service starts itself. */
export interface EffectPorts<W> {
  /**
   * Resolves once the writes are committed, or after `withinMs` when an answer cannot wait
   * longer (the store is then degraded, see Committer), or at once while the store is away.
   */
  commit(writes: readonly W[], withinMs?: number): Promise<void>;
  /** NOTIFYs no request is waiting for (purge, RPC, restore). */
  sendNotifies(notifies: readonly OutboundNotify[]): void;
  run?(commands: readonly KamailioCommand[]): void;
  /** The engine's timer fired. */
  timerFired?(key: string): void;
}

/**
 * The one place that carries out effects, always in this order: commit the writes, then answer
 * Kamailio (the caller's answer carries the NOTIFYs), then send the commands and arm the timers.
 * Effects of one engine are carried out in the order they were made.
 */
export class EffectsRunner<W> {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly ports: EffectPorts<W>, private readonly clock: () => number) {}

  /** `answerWithinMs`: Kamailio waits for this answer; it goes after that long even without its commit. */
  async run(effects: Effects<W>, answer?: (notifies: readonly OutboundNotify[]) => void, answerWithinMs?: number): Promise<void> {
    await this.ports.commit(effects.writes, answerWithinMs);
    if (answer) answer(effects.notifies);
    else if (effects.notifies.length > 0) this.ports.sendNotifies(effects.notifies);
    if (effects.commands.length > 0) this.ports.run?.(effects.commands);
    for (const t of effects.timers) this.arm(t);
  }

  /** Timers armed and not fired. */
  get armed(): number {
    return this.timers.size;
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private arm(t: TimerEffect): void {
    const old = this.timers.get(t.key);
    if (old) clearTimeout(old);
    this.timers.delete(t.key);
    if (t.at === undefined) return;
    // Node fires a delay over 2^31-1 ms at once: a far timer is re-armed on the way.
    const ms = Math.max(0, Math.min((t.at - this.clock()) * 1000, 2 ** 31 - 1));
    const far = (t.at - this.clock()) * 1000 > ms;
    this.timers.set(t.key, setTimeout(() => {
      this.timers.delete(t.key);
      if (far) this.arm(t);
      else this.ports.timerFired?.(t.key);
    }, ms));
  }
}
