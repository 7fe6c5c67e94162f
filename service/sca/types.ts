import type { Flow, OutboundNotify } from '../effects.js';
import type { TerminationReason } from '../sip/subscription-state.js';

export type { Flow, SipReply } from '../effects.js';
export type { ScaConfig as EngineConfig } from './config.js';

export type EventPackage = 'call-info' | 'line-seize';

/**
 * Appearance states. 'active-pending' is the callee side between its 200 and the ACK; it is sent
 * as "active" on the wire. An idle appearance is not stored: it is absent from its line.
 */
export const APPEARANCE_STATES = ['seized', 'progressing', 'alerting', 'active-pending', 'active', 'held', 'held-private'] as const;
export type AppearanceState = (typeof APPEARANCE_STATES)[number];

export const isAppearanceState = (s: string): s is AppearanceState => (APPEARANCE_STATES as readonly string[]).includes(s);

export const wireState = (s: AppearanceState): string => (s === 'active-pending' ? 'active' : s);

/** Dialog ids in the orientation of the call's initial INVITE (from = caller, to = callee). */
export interface DialogId {
  readonly callId: string;
  readonly fromTag: string;
  readonly toTag: string;
}

/** Changed only through AppearanceTable (states through the transition table). */
export interface Appearance {
  readonly index: number;
  readonly state: AppearanceState;
  readonly owner: string; // Contact URI of the member using it
  readonly callee: string; // remote target: its Contact (outgoing) or URI (incoming)
  readonly uri: string; // appearance-uri as shown to members: [display ]<uri>
  readonly dialog: DialogId | undefined;
  /** outgoing: the member is the caller; incoming: the member answered. */
  readonly direction: 'outgoing' | 'incoming' | undefined;
  readonly ctime: number;
  readonly mtime: number; // last state change, seconds
  /** Where the remote party's Contact was reached from (its 2xx's flow): a pickup goes there. */
  readonly calleeFlow?: Flow | undefined;
  /** What to put back if an in-flight re-INVITE or pickup fails (the call is still up). */
  readonly pending: PendingChange | undefined;
}

/** The fields of an appearance that are not its state or index. */
export type AppearanceDetails = Partial<Pick<Appearance, 'owner' | 'callee' | 'calleeFlow' | 'uri' | 'dialog' | 'direction' | 'pending'>>;

export interface PendingChange {
  readonly kind: 'reinvite' | 'pickup';
  readonly callId: string;
  readonly restore: Omit<Appearance, 'pending' | 'index'>;
}

/** Changed only through SubscriptionTable. */
export interface Subscription {
  readonly aor: string;
  readonly event: EventPackage;
  readonly subscriber: string; // Contact URI, the identity within (aor, event)
  readonly expires: number; // absolute, seconds
  readonly state: 'active' | 'terminated';
  readonly reason: TerminationReason | undefined;
  readonly index: number; // the seized index of a line-seize subscription, else 0
  readonly callId: string;
  readonly fromTag: string; // the subscriber's tag
  readonly toTag: string; // ours
  readonly notifyCseq: number; // CSeq of the last NOTIFY sent
  readonly routeSet: readonly string[]; // Record-Route of the initial SUBSCRIBE, in received order
  readonly seq: number; // creation order; group NOTIFYs go newest first, as the module's list does
  /** Where its last SUBSCRIBE came from: NOTIFYs go there (undefined: to the Contact). */
  readonly flow?: Flow | undefined;
}

/** The route set of the many subscriptions without Record-Route: one shared empty list. */
export const NO_ROUTE: readonly string[] = Object.freeze([]);
export type SubscriptionChange = Partial<Omit<Subscription, 'aor' | 'event' | 'subscriber' | 'seq'>>;

/** A NOTIFY for the transport to send within the subscription's dialog. */
export interface Notify extends OutboundNotify {
  readonly aor: string;
  readonly event: EventPackage;
  readonly subscriber: string;
}
