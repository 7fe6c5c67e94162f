import { z } from 'zod';
import { CDR_FIELDS, type CdrField } from './cdr.js';

/** "486 Too Many Calls": a SIP reply as the operator writes it. */
const sipReply = z.string().regex(/^[3-6]\d\d [^\r\n]{1,100}$/, 'a SIP code 300-699 and a reason, e.g. "486 Busy Here"');

/**
 * Call control's settings. `call_control_socket` is what Kamailio's call_control module calls
 * `socket_name`; the rest are the service's own (cc_ prefix).
 */
export const ccConfigSchema = z.object({
  /** Where the stock call_control module connects ("" turns the socket off). */
  call_control_socket: z.string().default('/var/run/callcontrol/socket'),
  /**
   * The door Kamailio's script asks: `socket` (call_control.so, kamailio.cfg's default), `link`
   * (cc-routes.cfg, -A WITH_CC_LINK, no socket needed) or `none` (no call control in the script).
   * With `socket` and no call_control_socket every call would go on uncounted: the service says so.
   */
  cc_door: z.enum(['socket', 'link', 'none']).default('socket'),
  /** Mode and group of the socket file, so that Kamailio's user can connect (octal text or number). */
  call_control_socket_mode: z.union([z.number().int().min(0).max(0o777), z.string().regex(/^0?[0-7]{3}$/).transform((s) => Number.parseInt(s, 8))]).default(0o660),
  call_control_socket_group: z.string().min(1).optional(),
  /**
   * Where sca-cc-relay connects (host:port, '' = off): the relay on each proxy host serves
   * call_control.so's unix socket and forwards its requests here with its PROXY_ID. Every node
   * listens; only the leader serves (a standby refuses and names the leader). Needs cc_relay_token.
   */
  cc_relay_listen: z.string().regex(/^$|^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'host:port, or empty (off)').default(''),
  /** The secret every relay presents (its token); never logged. */
  cc_relay_token: z.string().min(16, 'cc_relay_token: at least 16 characters').optional(),
  /** Kamailio's jsonrpcs datagram socket (dgram_socket), where calls are ended. */
  cc_jsonrpc_address: z.string().regex(/^udp:(\[[0-9a-fA-F:]+\]|[^\s:\[\]]+):\d{1,5}$/, 'udp:host:port').default('udp:127.0.0.1:5810'),
  /** A call admitted and never answered (no start) is released after this many seconds. */
  cc_setup_timeout: z.coerce.number().int().min(5).max(3600).default(90),
  /** Calls of accounts the service does not know: not counted, or refused. */
  cc_unknown_account: z.enum(['no-limit', 'refuse']).default('no-limit'),
  /** Longest call anyone may make (a cap for free destinations and unlimited accounts); 0 = none. */
  cc_max_call_duration: z.coerce.number().int().min(0).max(7 * 86400).default(0),
  /** What the link door answers for each refusal (the socket door has only Locked and No credit). */
  cc_reply_blacklisted: sipReply.default('403 Forbidden'),
  cc_reply_limit: sipReply.default('486 Too Many Calls'),
  cc_reply_no_credit: sipReply.default('402 Payment Required'),
  cc_reply_no_rate: sipReply.default('403 No Rate For Destination'),
  /** The reply a ringing call gets when it is ended (credit gone, limit lowered, operator). */
  cc_reply_cancelled: sipReply.default('480 Call Limit Reached'),
  /** CDRs as CSV lines, besides the database: a file ('' = none) and/or syslog (local0.info). */
  cc_cdr_file: z.string().default(''),
  cc_cdr_syslog: z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((s) => ['true', '1', 'yes'].includes(s))]).default(false),
  cc_cdr_syslog_socket: z.string().min(1).default('/dev/log'),
  cc_cdr_syslog_tag: z.string().regex(/^[\w.-]{1,32}$/).default('sca-cc-cdr'),
  /**
   * Opt-in: the metric cc_account_calls{account} for the N accounts with the most calls in
   * progress (0 = off, the default: no label then carries an account). Bounded: at most N series.
   */
  cc_metrics_top_accounts: z.coerce.number().int().min(0).max(50).default(0),
  /** The CSV fields, in order (SEMS cdr_format style), comma-separated. */
  cc_cdr_fields: z.union([z.array(z.string()), z.string().transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x !== ''))])
    .pipe(z.array(z.enum(CDR_FIELDS)).min(1)).default([...CDR_FIELDS] as CdrField[]),
});

export type CcConfig = z.infer<typeof ccConfigSchema>;

export const replyOf = (text: string): { code: number; reason: string } => ({ code: Number(text.slice(0, 3)), reason: text.slice(4) });
