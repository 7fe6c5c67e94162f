import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseHostPort, proxyIdSchema } from './wire.js';

/**
 * sca-cc-relay's settings. Sources, later ones winning: defaults, a JSON file (--config FILE or
 * SCA_RELAY_CONFIG), environment variables SCA_RELAY_<NAME in upper case> (nodes comma-separated),
 * --set name=value. The token comes from `token` or, better (it stays out of the environment),
 * `token_file`; it is never logged.
 */
const seconds = (min: number, max: number, def: number) => z.coerce.number().min(min).max(max).default(def);
export const relayConfigSchema = z.object({
  /** The unix socket call_control.so connects to (its socket_name). */
  socket: z.string().min(1).default('/run/callcontrol/socket'),
  socket_mode: z.union([z.number().int().min(0).max(0o777), z.string().regex(/^0?[0-7]{3}$/).transform((s) => Number.parseInt(s, 8))]).default(0o660),
  /** chown group of the socket, so that Kamailio's user can connect (e.g. kamailio). */
  socket_group: z.string().min(1).optional(),
  /** The service nodes' cc_relay_listen (host:port), tried in this order; the leader accepts, standbys refuse. */
  nodes: z.array(z.string().refine((s) => parseHostPort(s) !== undefined, 'host:port')).min(1),
  /** The nodes' cc_relay_token. */
  token: z.string().min(16, 'token: at least 16 characters').optional(),
  token_file: z.string().min(1).optional(),
  /** This proxy's PROXY_ID, exactly as its kamailio.cfg gives it to the link. */
  proxy_id: proxyIdSchema,
  /** call_control.so gets an answer by then (s): the leader's, else Error (-5). Below its socket_timeout (500 ms). */
  reply_timeout: seconds(0.01, 10, 0.3),
  /** While no node leads, every node is tried this often (s). */
  retry_interval: seconds(0.05, 10, 0.25),
  ping_interval: seconds(0.05, 10, 0.5),
  /** A leader silent this long (s) is given up on and the nodes are searched again. */
  dead_after: seconds(0.1, 60, 1.5),
  connect_timeout: seconds(0.05, 30, 1),
  /** start/stop kept for a leader at most (entries, bytes); past them the oldest go. */
  queue_max: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  queue_max_bytes: z.coerce.number().int().min(1024).max(4 * 1024 ** 3).default(64 * 1024 ** 2),
  /** start/stop sent and unanswered at most. */
  window: z.coerce.number().int().min(1).max(100_000).default(256),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).strict().refine((c) => (c.token === undefined) !== (c.token_file === undefined), {
  message: 'exactly one of token and token_file (the nodes\' cc_relay_token)', path: ['token'],
}).refine((c) => c.ping_interval < c.dead_after, { message: 'dead_after must exceed ping_interval', path: ['dead_after'] });

export type RelayConfig = z.infer<typeof relayConfigSchema> & { readonly token: string };

/** A setting written as text: the node list comma-separated. */
export function relaySettingFromText(key: string, value: string): unknown {
  return key === 'nodes' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : value;
}

export type RelayConfigResult = { ok: true; config: RelayConfig } | { ok: false; error: string };

export function loadRelayConfig(opts: { file?: string | undefined; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> }): RelayConfigResult {
  const env = opts.env ?? {};
  let fromFile: Record<string, unknown> = {};
  const file = opts.file ?? env.SCA_RELAY_CONFIG;
  try {
    if (file) fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    return { ok: false, error: `config file ${file}: ${(err as Error).message}` };
  }
  const fromEnv: Record<string, unknown> = {};
  for (const key of Object.keys(relayConfigSchema.shape)) {
    const v = env[`SCA_RELAY_${key.toUpperCase()}`];
    if (v !== undefined) fromEnv[key] = relaySettingFromText(key, v);
  }
  const parsed = relayConfigSchema.safeParse({ ...fromFile, ...fromEnv, ...opts.overrides });
  if (!parsed.success) return { ok: false, error: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  let token = parsed.data.token;
  if (token === undefined) {
    try {
      token = readFileSync(parsed.data.token_file!, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      return { ok: false, error: `token_file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    if (token.length < 16) return { ok: false, error: 'token_file: the token is shorter than 16 characters' };
  }
  return { ok: true, config: { ...parsed.data, token } };
}
