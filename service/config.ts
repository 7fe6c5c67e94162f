import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseDbHost } from './store/db-hosts.js';
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
   * Several MySQL/MariaDB hosts (host:port, e.g. the nodes of a Galera cluster), tried in this
   * order in place of db_url's host; user, password and database stay db_url's. A lost connection
   * moves every connection to the next host, where they stay (sticky failover).
   */
  db_hosts: z.array(z.string().refine((h) => parseDbHost(h) !== undefined, 'host:port')).default([]),
  /**
   * High availability (docs/ha.md): active/standby nodes over one MySQL/MariaDB (Galera for full HA).
   * The leader holds a lease row whose epoch fences every commit.
   */
  ha_enabled: z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((s) => ['true', '1', 'yes'].includes(s))]).default(false),
  /** This node's name in the lease (a restarted process adds a new random incarnation to it). */
  ha_node_id: z.string().regex(/^[A-Za-z0-9._-]{1,48}$/, 'ha_node_id: 1 to 48 of A-Z a-z 0-9 . _ -').optional(),
  /** Seconds a lease lasts on the database's clock; the leader stops on its own after 0.8 of it without a renewal. */
  ha_lease_ttl: z.coerce.number().min(0.5).max(300).default(3),
  /** Seconds between the leader's renewals. */
  ha_renew_interval: z.coerce.number().min(0.05).max(100).default(1),
  /** Seconds between a standby's attempts to take the lease. */
  ha_poll_interval: z.coerce.number().min(0.05).max(60).default(0.5),
  /** A node whose clock is further than this (s) from the database's refuses leadership. */
  ha_max_clock_offset: z.coerce.number().min(0.001).max(60).default(1),
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
}).refine((c) => !c.ha_enabled || c.db_url.startsWith('mysql://'), {
  message: 'needs a shared MySQL/MariaDB db_url (mysql://...): the lease and the write-fence live in the database all nodes share, and a sqlite: file belongs to one process',
  path: ['ha_enabled'],
}).refine((c) => c.db_hosts.length === 0 || c.db_url.startsWith('mysql://'), {
  message: 'MySQL/MariaDB hosts: db_url must be mysql://...',
  path: ['db_hosts'],
}).refine((c) => !c.ha_enabled || c.ha_node_id !== undefined, {
  message: 'needs ha_node_id (this node\'s name in the lease, e.g. its host name)',
  path: ['ha_node_id'],
}).refine((c) => c.cc_relay_listen === '' || c.cc_relay_token !== undefined, {
  message: 'cc_relay_listen needs cc_relay_token: the relays prove who they are with it',
  path: ['cc_relay_token'],
}).refine((c) => c.ha_renew_interval <= 0.4 * c.ha_lease_ttl, {
  message: 'at most 0.4 × ha_lease_ttl: the leader stops 0.8 × ha_lease_ttl after its last renewal, so one lost renewal must not stop it',
  path: ['ha_renew_interval'],
});

export type Config = z.infer<typeof configSchema>;

const LISTS = new Set(['evapi_address', 'db_hosts']);
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
