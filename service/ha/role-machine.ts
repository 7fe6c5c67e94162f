/**
 * The role machine, pure: standby → leader → lost (crash-only: a lost leader exits, and its
 * supervisor starts it again as a standby). step() takes the state, an event and the monotonic
 * time, and returns the next state and what to do, as values; role.ts carries them out.
 */

/** Why leadership ended: renewal found another holder, a commit was fenced, the local deadline passed, the clock is off. */
export type LossReason = 'deposed' | 'fenced' | 'deadline' | 'clock';

export type RoleState =
  | { readonly role: 'standby'; readonly refusing: boolean }
  /** deadlineMs: monotonic ms after which this node must not act as leader. */
  | { readonly role: 'leader'; readonly epoch: number; readonly deadlineMs: number }
  | { readonly role: 'lost'; readonly reason: LossReason; readonly epoch: number | undefined };

export type RoleEvent =
  /** The clock was measured against the database's (RTT-corrected): database minus local, seconds. */
  | { readonly type: 'offset'; readonly offsetS: number }
  /** The lease was taken; sentAtMs: monotonic time the acquiring transaction was sent. */
  | { readonly type: 'acquired'; readonly epoch: number; readonly sentAtMs: number }
  /** A renewal changed the row; sentAtMs: monotonic time it was sent. */
  | { readonly type: 'renewed'; readonly sentAtMs: number }
  /** A renewal changed no row: another holder or epoch. */
  | { readonly type: 'deposed' }
  /** A commit met the write-fence. */
  | { readonly type: 'fenced' }
  /** Time passed (the deadline timer, a failed renewal, a question whether this node may act). */
  | { readonly type: 'tick' };

export type RoleAction =
  | { readonly do: 'acquire' }
  | { readonly do: 'lead'; readonly epoch: number }
  | { readonly do: 'exit'; readonly reason: LossReason }
  | { readonly do: 'log'; readonly level: 'info' | 'warn' | 'error'; readonly msg: string; readonly fields: Readonly<Record<string, unknown>> };

export interface RoleLimits {
  readonly ttlMs: number;
  readonly maxClockOffsetS: number;
}

/** The share of the lease a leader acts on: the rest is margin for clock rates and delivery. */
export const DEADLINE_SHARE = 0.8;

/**
 * Local deadline: send time of the last successful renewal (or the acquire) + 0.8 ttl, on the
 * monotonic clock. The database set expiry after receiving that statement, so the lease there
 * runs at least 0.2 ttl past this.
 */
export function deadlineAfter(sentAtMs: number, ttlMs: number): number {
  return sentAtMs + DEADLINE_SHARE * ttlMs;
}

export const INITIAL_STATE: RoleState = { role: 'standby', refusing: false };

type Step = { readonly state: RoleState; readonly actions: readonly RoleAction[] };

const lose = (reason: LossReason, epoch: number | undefined, fields: Record<string, unknown>): Step => ({
  state: { role: 'lost', reason, epoch },
  actions: [
    { do: 'log', level: 'error', msg: `HA: LEADERSHIP LOST (${reason}); this process must exit and restart as a standby`, fields: { reason, epoch, ...fields } },
    { do: 'exit', reason },
  ],
});

const offsetFields = (offsetS: number, limits: RoleLimits) => ({ offsetS: Number(offsetS.toFixed(6)), maxClockOffsetS: limits.maxClockOffsetS });

export function step(state: RoleState, event: RoleEvent, nowMs: number, limits: RoleLimits): Step {
  switch (state.role) {
    case 'lost':
      return { state, actions: [] };

    case 'standby':
      switch (event.type) {
        case 'offset': {
          const off = Math.abs(event.offsetS) > limits.maxClockOffsetS;
          if (off) {
            return {
              state: { role: 'standby', refusing: true },
              actions: state.refusing ? [] : [{ do: 'log', level: 'warn', msg: 'HA CLOCK OFFSET: this node\'s clock is too far from the database\'s; refusing leadership', fields: offsetFields(event.offsetS, limits) }],
            };
          }
          const back: RoleAction[] = state.refusing ? [{ do: 'log', level: 'info', msg: 'HA: clock within the limit again; standing for leadership', fields: offsetFields(event.offsetS, limits) }] : [];
          return { state: { role: 'standby', refusing: false }, actions: [...back, { do: 'acquire' }] };
        }
        case 'acquired': {
          const deadlineMs = deadlineAfter(event.sentAtMs, limits.ttlMs);
          // The answer came too late to act on: the lease is ours, but not for long enough.
          if (nowMs >= deadlineMs) return lose('deadline', event.epoch, { lateMs: Math.round(nowMs - event.sentAtMs) });
          return {
            state: { role: 'leader', epoch: event.epoch, deadlineMs },
            actions: [{ do: 'log', level: 'info', msg: 'HA: leader', fields: { epoch: event.epoch } }, { do: 'lead', epoch: event.epoch }],
          };
        }
        // A standby's committer is closed by its fence: a commit reaching it is a bug to restart from.
        case 'fenced':
          return lose('fenced', undefined, {});
        default:
          return { state, actions: [] };
      }

    case 'leader': {
      if (nowMs >= state.deadlineMs && event.type !== 'deposed' && event.type !== 'fenced') {
        return lose('deadline', state.epoch, { overdueMs: Math.round(nowMs - state.deadlineMs) });
      }
      switch (event.type) {
        case 'offset':
          if (Math.abs(event.offsetS) > limits.maxClockOffsetS) return lose('clock', state.epoch, offsetFields(event.offsetS, limits));
          return { state, actions: [] };
        case 'renewed': {
          const deadlineMs = Math.max(state.deadlineMs, deadlineAfter(event.sentAtMs, limits.ttlMs));
          if (nowMs >= deadlineMs) return lose('deadline', state.epoch, { lateMs: Math.round(nowMs - event.sentAtMs) });
          return { state: { ...state, deadlineMs }, actions: [] };
        }
        case 'deposed':
          return lose('deposed', state.epoch, {});
        case 'fenced':
          return lose('fenced', state.epoch, {});
        default:
          return { state, actions: [] };
      }
    }
  }
}
