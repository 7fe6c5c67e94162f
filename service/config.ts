import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { isLoopback } from './rpc/access.js';
import { ccConfigSchema } from './cc/config.js';
import { scaConfigSchema } from './sca/config.js';

/**
 * The one configuration schema: the service's own settings plus each engine's section (flat keys,
 * named after the Kamailio module's parameters where one exists: sca/config.ts).
 * Sources, later ones winning: defaults, a JSON file (--config FILE or SCA_CONFIG), environment
 * variables SCA_<NAME in upper case> (lists comma-separated, maps as JSON).
 */
export const configSchema = z.object({
  ...scaConfigSchema.shape,
  ...ccConfigSchema.shape,
  /** Where lines are stored: sqlite:<file> (embedded, the default) or mysql://user:pass@host:port/db. */
  db_url: z.string().regex(/^(sqlite:|mysql:\/\/)/, 'db_url: sqlite:<file> or mysql://user:pass@host:port/db').default('sqlite:sca.sqlite'),
  /**
   * The longest (s) an answer Kamailio waits for (a SIP reply, a call-control decision) waits for
   * its store write: past it the answer goes from memory and the store is degraded until it keeps
   * up (Kamailio's call_control gives up after its socket_timeout, 500 ms; the link after 2 s).
   * 0: always wait.
   */
  db_write_timeout: z.coerce.number().min(0).max(60).default(0.4),
  /** MySQL/MariaDB: a connect or statement taking longer (s) fails and its connection is dropped. */
  db_query_timeout: z.coerce.number().min(0.1).max(600).default(5),
  /** Kamailio's server_id: rows of other servers in a shared table are left alone. */
  server_id: z.coerce.number().int().nonnegative().default(0),
  /** evapi endpoints of the Kamailio instances (host:port), each one's bind_addr. */
  evapi_address: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'host:port').refine((a) => Number(a.split(':').at(-1)) >= 1 && Number(a.split(':').at(-1)) <= 65535, 'a port from 1 to 65535'))
    .min(1).default(['127.0.0.1:8448']),
  /** The link pings every Kamailio this often (s); one silent for link_heartbeat_timeout is reconnected. */
  link_heartbeat_interval: z.coerce.number().min(0.05).max(3600).default(5),
  link_heartbeat_timeout: z.coerce.number().min(0.1).max(3600).default(15),
  /** RPC, metrics and the live view listen here; anything but loopback needs admin_token. */
  http_host: z.string().min(1).default('127.0.0.1'),
  http_port: z.coerce.number().int().min(0).max(65535).default(8090),
  admin_token: z.string().min(16, 'admin_token: at least 16 characters').optional(),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).strict().refine((c) => isLoopback(c.http_host) || c.admin_token !== undefined, {
  message: 'binding http_host to a non-loopback address needs admin_token',
  path: ['admin_token'],
});

export type Config = z.infer<typeof configSchema>;

const LISTS = new Set(['evapi_address']);
const MAPS = new Set(['aor_max_appearances', 'aor_members']);

/** A setting written as text (an environment variable, --set): lists comma-separated, maps JSON. */
export function settingFromText(key: string, value: string): unknown {
  if (LISTS.has(key)) return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (MAPS.has(key)) return JSON.parse(value) as unknown;
  return value;
}

/** Reads SCA_* variables for the schema's keys. */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[`SCA_${key.toUpperCase()}`];
    if (value !== undefined) out[key] = settingFromText(key, value);
  }
  return out;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; error: string };

/** Merges the file and environment over the defaults; errors name the offending setting. */
export function loadConfig(opts: { file?: string | undefined; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> }): ConfigResult {
  let fromFile: Record<string, unknown> = {};
  const file = opts.file ?? opts.env?.SCA_CONFIG;
  try {
    if (file) fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    return { ok: false, error: `config file ${file}: ${(err as Error).message}` };
  }
  let fromEnv: Record<string, unknown>;
  try {
    fromEnv = configFromEnv(opts.env ?? {});
  } catch (err) {
    return { ok: false, error: `environment: ${(err as Error).message}` };
  }
  const parsed = configSchema.safeParse({ ...fromFile, ...fromEnv, ...opts.overrides });
  if (!parsed.success) {
    return { ok: false, error: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  return { ok: true, config: parsed.data };
}
