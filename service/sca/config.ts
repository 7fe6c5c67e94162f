import { z } from 'zod';

/**
 * The SCA settings: one schema for the engine and the service. Names follow Kamailio's sca
 * module where it has the parameter (call_info_max_expires, line_seize_max_expires,
 * purge_expired_interval, server_address); the stale timers are the module's compile-time ones.
 */
export const scaConfigSchema = z.object({
  call_info_max_expires: z.coerce.number().int().positive().default(3600),
  line_seize_max_expires: z.coerce.number().int().positive().default(15),
  /** Seconds between purge passes; below Node's timer limit. */
  purge_expired_interval: z.coerce.number().positive().max(86_400).default(120),
  max_appearances: z.coerce.number().int().min(1).max(999).default(24),
  /** Per-AoR overrides of max_appearances. */
  aor_max_appearances: z.record(z.string(), z.number().int().min(1).max(999)).default({}),
  server_address: z.string().min(1).optional(),
  seized_timeout: z.coerce.number().positive().default(120),
  /**
   * Who may subscribe to a line, when the proxy authenticated the SUBSCRIBE: the line's own user
   * (`user`), that user or the members listed in aor_members (`members`), anyone (`open`, the
   * native module). Unauthenticated SUBSCRIBEs (authentication off in the proxy) are not checked.
   */
  line_membership: z.enum(['members', 'user', 'open']).default('members'),
  /** Per-AoR lists of the authentication users (user or user@domain) allowed on the line. */
  aor_members: z.record(z.string(), z.array(z.string().min(1))).default({}),
  /** Bounds on memory: new subscriptions past these get 403 (per line) or 503 (in all). */
  max_subscriptions_per_line: z.coerce.number().int().min(1).max(100_000).default(200),
  max_subscriptions: z.coerce.number().int().min(1).max(10_000_000).default(500_000),
  active_pending_timeout: z.coerce.number().positive().default(35),
  /**
   * NOTIFYs go to the flow the subscription's last SUBSCRIBE came from (source address, port,
   * transport, local socket), not to its Contact: phones behind NAT and on TCP/TLS connections
   * get them. false: to the Contact, as the native module (a Contact with ;ob, RFC 5626, still
   * gets its flow).
   */
  notify_to_flow: z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((s) => ['true', '1', 'yes'].includes(s))]).default(true),
});

export type ScaConfig = z.infer<typeof scaConfigSchema>;
