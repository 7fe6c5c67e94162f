import type { AppearanceState } from './types.js';

/**
 * The appearance state table: every automatic transition, in one place. A trigger moves an
 * appearance only from the listed states; from any other state it is ignored (so a late 180
 * never pulls an answered call back to progressing, and a repeated 18x NOTIFYs nothing).
 * Creation ("absent → seized/active-pending") and release ("→ absent") live in appearances.ts.
 */
export type Trigger =
  | 'ringing' // 180/183 to the member's INVITE
  | 'answered' // 2xx to the member's INVITE
  | 'acked' // ACK to the 2xx the member sent as callee
  | 'hold' // hold re-INVITE (or held SDP in an ACK) from the member
  | 'hold-private' // hold re-INVITE whose Call-Info says held-private
  | 'unhold' // re-INVITE from the member that is not on hold
  | 'picked-up'; // another member retrieved the held call

const TABLE: Record<Trigger, { from: readonly AppearanceState[]; to: AppearanceState }> = {
  ringing: { from: ['seized'], to: 'progressing' },
  answered: { from: ['seized', 'progressing', 'alerting', 'active-pending', 'active'], to: 'active' },
  acked: { from: ['active-pending'], to: 'active' },
  hold: { from: ['active', 'active-pending', 'held', 'held-private'], to: 'held' },
  'hold-private': { from: ['active', 'active-pending', 'held', 'held-private'], to: 'held-private' },
  unhold: { from: ['active', 'active-pending', 'held', 'held-private'], to: 'active' },
  'picked-up': { from: ['held', 'held-private'], to: 'active' },
};

/** The state after `trigger`, or undefined when the trigger does not apply in `from`. */
export function nextState(from: AppearanceState, trigger: Trigger): AppearanceState | undefined {
  const row = TABLE[trigger];
  return row.from.includes(from) ? row.to : undefined;
}
