import { z } from 'zod';
import { FLOW_PROTOS } from '../effects.js';

/**
 * The engine's inputs as plain JSON, validated where they cross a boundary: the Kamailio link
 * takes these without `now` (the service's clock adds it) and with the transaction ids.
 */

const seconds = z.number().finite().nonnegative();

/** An IP address as Kamailio prints $si/$Ri: dotted IPv4, or IPv6 without brackets. */
const ipAddress = z.string().max(64).regex(/^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/, 'an IP address');
const port = z.coerce.number().int().min(1).max(65535);
/** A socket as t_uac_send() takes it: proto:ip:port, an IPv6 ip in brackets. */
export const socketText = z.string().max(80).regex(/^(?:udp|tcp|tls|sctp|ws|wss):(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/, 'proto:ip:port');

/** Where a message came from and the local socket it arrived on (see Flow in effects.ts). */
export const flowInput = z.object({
  proto: z.string().transform((p) => p.toLowerCase()).pipe(z.enum(FLOW_PROTOS)),
  address: ipAddress,
  port,
  socket: socketText,
  proxy: z.string().regex(/^[\w.:-]{1,64}$/).optional(),
}).strict();

/** A flow and the proxy (PROXY_ID) whose link carried it. */
export const throughProxy = <F extends z.infer<typeof flowInput>>(flow: F | undefined, proxy: string | undefined): F | undefined =>
  flow && proxy !== undefined && /^[\w.:-]{1,64}$/.test(proxy) ? { ...flow, proxy } : flow;

/** Kamailio's $pr/$si/$sp/$Ri/$Rp as the routes send them (flat fields), to a flow; undefined if any is missing. */
export function flowFromFields(f: { proto?: string | undefined; src_ip?: string | undefined; src_port?: number | undefined; rcv_ip?: string | undefined; rcv_port?: number | undefined }): z.infer<typeof flowInput> | undefined {
  if (!f.proto || !f.src_ip || !f.src_port || !f.rcv_ip || !f.rcv_port) return undefined;
  const proto = f.proto.toLowerCase();
  const local = f.rcv_ip.includes(':') ? `[${f.rcv_ip}]` : f.rcv_ip;
  const parsed = flowInput.safeParse({ proto, address: f.src_ip, port: f.src_port, socket: `${proto}:${local}:${f.rcv_port}` });
  return parsed.success ? parsed.data : undefined;
}

/** The flat flow fields of a link request (all optional: a cfg that sends none gets the Contact). */
export const flowFields = {
  proto: z.string().max(8).optional(),
  src_ip: z.string().max(64).optional(),
  src_port: z.coerce.number().int().nonnegative().optional(),
  rcv_ip: z.string().max(64).optional(),
  rcv_port: z.coerce.number().int().nonnegative().optional(),
};

export const subscribeInput = z.object({
  /** The whole SIP message as received ($mb). */
  msg: z.string().min(1),
  /** The current R-URI if the script rewrote it ($ru). */
  ruri: z.string().min(1).optional(),
  /** The To-tag the proxy's reply will carry ($ltt(t)). */
  to_tag: z.string().min(1).optional(),
  /** Who the proxy authenticated ($au), if it did. */
  auth_user: z.string().min(1).max(255).optional(),
  /** Where the SUBSCRIBE came from: its NOTIFYs go back there. */
  flow: flowInput.optional(),
  now: seconds,
}).strict();
export type SubscribeJson = z.infer<typeof subscribeInput>;

export const callEventInput = z.object({
  hook: z.enum(['request', 'reply', 'failure', 'local-reply']),
  msg: z.string().min(1),
  /** The final reply code, for failure and local-reply (msg is then the INVITE). */
  status: z.coerce.number().int().min(100).max(699).optional(),
  mask: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]).optional(),
  /** Where the message came from (a reply: the party that sent it). */
  flow: flowInput.optional(),
  now: seconds,
}).strict();
export type CallEventJson = z.infer<typeof callEventInput>;

export const notifyReplyInput = z.object({
  call_id: z.string().min(1),
  /** The NOTIFY's From-tag: the tag we gave the subscription. */
  from_tag: z.string().min(1),
  /** The NOTIFY's CSeq, to time its reply. */
  cseq: z.coerce.number().int().nonnegative().optional(),
  code: z.coerce.number().int().min(100).max(699),
  now: seconds,
}).strict();
export type NotifyReplyJson = z.infer<typeof notifyReplyInput>;
