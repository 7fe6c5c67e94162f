import { APPEARANCE_STATES, type AppearanceState } from './types.js';

/**
 * The appearance state table: every state change of an existing appearance, in one place. A
 * trigger moves an appearance only from the listed states; from any other state it is ignored
 * (so a late 180 never pulls an answered call back to progressing, and a repeated 18x NOTIFYs
 * nothing). Rows whose target is 'named' take the state the trigger names (what a phone's
 * Call-Info reports, what an operator sets, what a failed re-INVITE puts back).
 * Creation ("absent → seized/active-pending") and release ("→ absent") live in appearances.ts.
 */
export type Trigger =
  | 'ringing' // 180/183 to the member's INVITE
  | 'answered' // 2xx to the member's INVITE
  | 'member-answered' // a member's 2xx to a call to the line, on the index it seized
  | 'reported' // a member's 2xx names the appearance's state in its Call-Info
  | 'acked' // ACK to the 2xx the member sent as callee
  | 'hold' // hold re-INVITE (or held SDP in an ACK) from the member
  | 'hold-private' // hold re-INVITE whose Call-Info says held-private
  | 'unhold' // re-INVITE from the member that is not on hold
  | 'picked-up' // another member retrieved the held call
  | 'restored' // a refused re-INVITE or pickup: back to the state before it
  | 'operator'; // sca.update_appearance

const ANY = APPEARANCE_STATES;
const IN_CALL: readonly AppearanceState[] = ['active', 'active-pending', 'held', 'held-private'];

const TABLE: Record<Trigger, { from: readonly AppearanceState[]; to: AppearanceState | 'named' }> = {
  ringing: { from: ['seized'], to: 'progressing' },
  answered: { from: ['seized', 'progressing', 'alerting', 'active-pending', 'active'], to: 'active' },
  'member-answered': { from: ['seized'], to: 'active-pending' },
  reported: { from: ANY, to: 'named' },
  acked: { from: ['active-pending'], to: 'active' },
  hold: { from: IN_CALL, to: 'held' },
  'hold-private': { from: IN_CALL, to: 'held-private' },
  unhold: { from: IN_CALL, to: 'active' },
  'picked-up': { from: ['held', 'held-private'], to: 'active' },
  restored: { from: ANY, to: 'named' },
  operator: { from: ANY, to: 'named' },
};

/** The state after `trigger`, or undefined when the trigger does not apply in `from`. */
export function nextState(from: AppearanceState, trigger: Trigger, named?: AppearanceState): AppearanceState | undefined {
  const row = TABLE[trigger];
  if (!row.from.includes(from)) return undefined;
  return row.to === 'named' ? named : row.to;
}
