import type { TerminationReason } from '../sip/subscription-state.js';

export type EventPackage = 'call-info' | 'line-seize';

/**
 * Appearance states. 'active-pending' is the callee side between its 200 and the ACK; it is sent
 * as "active" on the wire. An idle appearance is not stored: it is absent from its line.
 */
export type AppearanceState =
  | 'seized' | 'progressing' | 'alerting' | 'active-pending' | 'active' | 'held' | 'held-private';

export const wireState = (s: AppearanceState): string => (s === 'active-pending' ? 'active' : s);

/** Dialog ids in the orientation of the call's initial INVITE (from = caller, to = callee). */
export interface DialogId {
  readonly callId: string;
  readonly fromTag: string;
  readonly toTag: string;
}

export interface Appearance {
  readonly index: number;
  state: AppearanceState;
  owner: string; // Contact URI of the member using it
  callee: string; // remote target: its Contact (outgoing) or URI (incoming)
  uri: string; // appearance-uri as shown to members: [display ]<uri>
  dialog: DialogId | undefined;
  /** outgoing: the member is the caller; incoming: the member answered. */
  direction: 'outgoing' | 'incoming' | undefined;
  ctime: number;
  mtime: number; // last state change, seconds
  /** What to put back if an in-flight re-INVITE or pickup fails (the call is still up). */
  pending: PendingChange | undefined;
}

export interface PendingChange {
  readonly kind: 'reinvite' | 'pickup';
  readonly callId: string;
  readonly restore: Omit<Appearance, 'pending' | 'index'>;
}

export interface Subscription {
  readonly aor: string;
  readonly event: EventPackage;
  readonly subscriber: string; // Contact URI, the identity within (aor, event)
  expires: number; // absolute, seconds
  state: 'active' | 'terminated';
  reason: TerminationReason | undefined;
  index: number; // the seized index of a line-seize subscription, else 0
  callId: string;
  fromTag: string; // the subscriber's tag
  toTag: string; // ours
  notifyCseq: number; // CSeq of the last NOTIFY sent
  routeSet: string[]; // Record-Route of the initial SUBSCRIBE, in received order
  readonly seq: number; // creation order; group NOTIFYs go newest first, as the module's list does
}

/** A NOTIFY for the transport to send within the subscription's dialog. */
export interface Notify {
  readonly aor: string;
  readonly event: EventPackage;
  readonly subscriber: string;
  readonly ruri: string;
  readonly route: readonly string[];
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>;
}

export interface SipReply {
  readonly code: number;
  readonly reason: string;
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>;
}

export interface EngineConfig {
  readonly call_info_max_expires: number;
  readonly line_seize_max_expires: number;
  readonly max_appearances: number;
  /** per-AoR overrides of max_appearances */
  readonly aor_max_appearances: Readonly<Record<string, number>>;
  readonly server_address: string | undefined;
  /** The module's compile-time stale timers, seconds. */
  readonly seized_timeout: number;
  readonly active_pending_timeout: number;
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  call_info_max_expires: 3600,
  line_seize_max_expires: 15,
  max_appearances: 24,
  aor_max_appearances: {},
  server_address: undefined,
  seized_timeout: 120,
  active_pending_timeout: 35,
};
