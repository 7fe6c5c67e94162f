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
  active_pending_timeout: z.coerce.number().positive().default(35),
});

export type ScaConfig = z.infer<typeof scaConfigSchema>;
