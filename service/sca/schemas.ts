import { z } from 'zod';

/**
 * The engine's inputs as plain JSON, validated where they cross a boundary: the Kamailio link
 * takes these without `now` (the service's clock adds it) and with the transaction ids.
 */

const seconds = z.number().finite().nonnegative();

export const subscribeInput = z.object({
  /** The whole SIP message as received ($mb). */
  msg: z.string().min(1),
  /** The current R-URI if the script rewrote it ($ru). */
  ruri: z.string().min(1).optional(),
  /** The To-tag the proxy's reply will carry ($ltt(t)). */
  to_tag: z.string().min(1).optional(),
  /** Who the proxy authenticated ($au), if it did. */
  auth_user: z.string().min(1).max(255).optional(),
  now: seconds,
}).strict();
export type SubscribeJson = z.infer<typeof subscribeInput>;

export const callEventInput = z.object({
  hook: z.enum(['request', 'reply', 'failure', 'local-reply']),
  msg: z.string().min(1),
  /** The final reply code, for failure and local-reply (msg is then the INVITE). */
  status: z.coerce.number().int().min(100).max(699).optional(),
  mask: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]).optional(),
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
