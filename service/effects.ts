/**
 * Effects as values: what an engine operation asks the service to do. Engines return them and
 * never act; one place (service/effects-runner.ts) carries them out in a fixed order: commit the
 * writes, then answer Kamailio (reply or edit, with the NOTIFYs), then send what the service
 * starts itself, run the commands and arm the timers.
 */

export type Header = readonly [name: string, value: string];

/**
 * Where a request came from, as the proxy saw it ($pr, $si, $sp) and the local socket it arrived
 * on ($Ri:$Rp): the only way back to a phone behind NAT (its Contact is a private address) or
 * on a TCP/TLS connection it opened (a request to it must reuse that connection).
 */
export interface Flow {
  readonly proto: FlowProto;
  readonly address: string;
  readonly port: number;
  /** The local socket, as t_uac_send() and $fs take it: proto:ip:port (an IPv6 ip in brackets). */
  readonly socket: string;
  /**
   * The Kamailio it came through (its PROXY_ID): with several proxies, a NOTIFY goes out through
   * this one, whatever proxy carried the event that caused it (the NAT binding or the TCP/TLS
   * connection exists only there).
   */
  readonly proxy?: string | undefined;
}

export const FLOW_PROTOS = ['udp', 'tcp', 'tls', 'sctp', 'ws', 'wss'] as const;
export type FlowProto = (typeof FLOW_PROTOS)[number];
/** Connection-oriented: reaching the phone means reusing its connection, never opening one. */
export const isStreamFlow = (f: Flow): boolean => f.proto !== 'udp';

/** A SIP reply Kamailio sends for a suspended transaction. */
export interface SipReply {
  readonly code: number;
  readonly reason: string;
  readonly headers: readonly Header[];
}

/** How Kamailio changes a suspended request before it goes on. */
export interface MessageEdit {
  /** Header names whose every instance is removed (before the appends). */
  readonly removeHeaders: readonly string[];
  readonly appendHeaders: readonly Header[];
  /** A new Request-URI. */
  readonly ruri: string | undefined;
  /** Names the engine's resume route acts on (message or transaction flags). */
  readonly flags: readonly string[];
  /** Where the request goes instead of its R-URI's host ($du and $fs): a party behind NAT. */
  readonly dst?: Flow | undefined;
}

export const NO_EDIT: MessageEdit = { removeHeaders: [], appendHeaders: [], ruri: undefined, flags: [] };

/** A NOTIFY within a subscription dialog, as tm's t_uac_send() takes it; the ids are fields. */
export interface OutboundNotify {
  readonly ruri: string;
  /** The subscription's route set (Record-Route of the SUBSCRIBE), in received order. */
  readonly route: readonly string[];
  readonly callId: string;
  /** Our tag: the NOTIFY's From-tag. */
  readonly fromTag: string;
  readonly cseq: number;
  /** Every header in sending order (From, To, Call-ID, CSeq, ...). */
  readonly headers: readonly Header[];
  /** What the log line of a lost NOTIFY names (an AoR). */
  readonly subject: string;
  /**
   * The subscriber's flow: the NOTIFY is sent there (next hop and send socket) unless a route
   * set says otherwise; undefined: to the R-URI (the Contact), as the native module does.
   */
  readonly flow?: Flow | undefined;
  /**
   * The proxy (PROXY_ID) it goes out through: the one its subscriber's last SUBSCRIBE came
   * through. Undefined: the proxy that asked, or any (a single proxy).
   */
  readonly proxy?: string | undefined;
}

/**
 * Something Kamailio is told to do outside any transaction (through its dialog RPCs), by the
 * proxy that holds the call (`proxy`, its PROXY_ID; undefined: the one reached over jsonrpcs).
 */
export type KamailioCommand = { readonly proxy?: string | undefined } & (
  /** BYE both ways for an answered call. */
  | { readonly kind: 'end-dialog'; readonly callId: string; readonly hEntry: number; readonly hId: number }
  /** Ends a call whatever its state: a ringing one gets this final reply (and its callee CANCEL). */
  | { readonly kind: 'cancel-call'; readonly callId: string; readonly fromTag: string; readonly code: number; readonly reason: string }
  /** Asks Kamailio what it knows of a call (dlg.dlg_list); the answer goes back to the engine. */
  | { readonly kind: 'check-call'; readonly callId: string; readonly fromTag: string });

/** Arms (at = seconds since the epoch) or cancels (at undefined) the engine's timer `key`. */
export interface TimerEffect {
  readonly key: string;
  readonly at: number | undefined;
}

export interface Effects<W, N extends OutboundNotify = OutboundNotify> {
  readonly notifies: readonly N[];
  readonly writes: readonly W[];
  readonly commands: readonly KamailioCommand[];
  readonly timers: readonly TimerEffect[];
}

export const noEffects = <W>(): Effects<W> => ({ notifies: [], writes: [], commands: [], timers: [] });
