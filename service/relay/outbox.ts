/**
 * The relay's outbox: every `start` and `stop` from call_control.so until a leader has answered
 * it. Sent in arrival order; what a lost connection carried unanswered is sent again, in the
 * same order, before anything newer (a repeat is harmless: the engine takes a second start or
 * stop of a call as a repeat). Bounded: past its limits the oldest entry goes, counted.
 *
 * Invariant: entries are sent in sequence order and a lost connection puts every sent one back,
 * so `sent` holds only sequences below those in `waiting`.
 */

export interface OutboxEntry {
  readonly seq: number;
  readonly command: string;
  readonly fields: Readonly<Record<string, string>>;
  /** What it costs to hold (its fields' bytes, roughly). */
  readonly bytes: number;
  /** When call_control.so sent it (performance.now()): a replay says how long ago that was. */
  readonly since: number;
}

export class Outbox {
  private sent = new Map<number, OutboxEntry>();
  private waiting = new Map<number, OutboxEntry>();
  private held = 0;
  /** Entries dropped because the outbox was full, since start. */
  dropped = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.sent.size + this.waiting.size;
  }

  get bytes(): number {
    return this.held;
  }

  /** Entries sent and not answered yet. */
  get inFlight(): number {
    return this.sent.size;
  }

  has(seq: number): boolean {
    return this.sent.has(seq) || this.waiting.has(seq);
  }

  /** Adds an entry (its seq above every other); returns those dropped to make room, oldest first. */
  add(entry: OutboxEntry): OutboxEntry[] {
    this.waiting.set(entry.seq, entry);
    this.held += entry.bytes;
    const dropped: OutboxEntry[] = [];
    while (this.size > this.maxEntries || (this.held > this.maxBytes && this.size > 1)) {
      const oldest = this.sent.size > 0 ? this.sent : this.waiting;
      const [seq, e] = oldest.entries().next().value as [number, OutboxEntry];
      oldest.delete(seq);
      this.held -= e.bytes;
      this.dropped++;
      dropped.push(e);
    }
    return dropped;
  }

  /** The next entry to send, in order, now counted as sent; undefined when none waits. */
  takeNext(): OutboxEntry | undefined {
    const first = this.waiting.entries().next();
    if (first.done) return undefined;
    const [seq, e] = first.value;
    this.waiting.delete(seq);
    this.sent.set(seq, e);
    return e;
  }

  /** A leader answered it: it is done. */
  answered(seq: number): boolean {
    const e = this.sent.get(seq) ?? this.waiting.get(seq);
    if (!e) return false;
    this.sent.delete(seq);
    this.waiting.delete(seq);
    this.held -= e.bytes;
    return true;
  }

  /** The connection that carried the sent entries is gone: all of them are to be sent again, first. */
  resend(): number {
    const n = this.sent.size;
    if (n > 0) {
      this.waiting = new Map([...this.sent, ...this.waiting]);
      this.sent = new Map();
    }
    return n;
  }
}
