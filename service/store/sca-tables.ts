import type { Change } from './committer.js';
import type { Database, Migration, SqlValue, Statement } from './database.js';
import type { ScaWrite } from '../sca/journal.js';
import type { LineSnapshot } from '../sca/snapshot.js';
import { flowInput } from '../sca/schemas.js';
import { isAppearanceState, type Appearance, type EventPackage, type Flow, type Subscription } from '../sca/types.js';

/**
 * The SCA engine's tables: subscriptions in Kamailio's own sca_subscriptions layout (the kamctl
 * schema, version 2 of the sca module, so an operator's existing table works as it is; app_idx
 * carries a line-seize's index), appearances and shared lines in ours. Rows of other server_ids
 * are left alone. Each engine write becomes the statements for exactly the row it names.
 */
export const SCA_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sqlite: [
      `CREATE TABLE IF NOT EXISTS version (table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_table_name_idx UNIQUE (table_name))`,
      `CREATE TABLE IF NOT EXISTS sca_subscriptions (id INTEGER PRIMARY KEY NOT NULL, subscriber VARCHAR(255) NOT NULL, aor VARCHAR(255) NOT NULL,
        event INTEGER DEFAULT 0 NOT NULL, expires INTEGER DEFAULT 0 NOT NULL, state INTEGER DEFAULT 0 NOT NULL, app_idx INTEGER DEFAULT 0 NOT NULL,
        call_id VARCHAR(255) NOT NULL, from_tag VARCHAR(128) NOT NULL, to_tag VARCHAR(128) NOT NULL, record_route TEXT,
        notify_cseq INTEGER NOT NULL, subscribe_cseq INTEGER NOT NULL, server_id INTEGER DEFAULT 0 NOT NULL,
        CONSTRAINT sca_subscriptions_idx UNIQUE (subscriber, call_id, from_tag, to_tag))`,
      `CREATE INDEX IF NOT EXISTS sca_expires_idx ON sca_subscriptions (server_id, expires)`,
      `CREATE INDEX IF NOT EXISTS sca_subscribers_idx ON sca_subscriptions (subscriber, event)`,
      `CREATE INDEX IF NOT EXISTS sca_service_aor_idx ON sca_subscriptions (aor, server_id)`,
      `INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('sca_subscriptions', 2)`,
      `CREATE TABLE sca_lines (aor VARCHAR(255) NOT NULL, server_id INTEGER DEFAULT 0 NOT NULL, PRIMARY KEY (aor, server_id))`,
      `CREATE TABLE sca_appearances (aor VARCHAR(255) NOT NULL, app_index INTEGER NOT NULL, state VARCHAR(16) NOT NULL,
        owner VARCHAR(255) NOT NULL, callee VARCHAR(255) NOT NULL, uri VARCHAR(512) NOT NULL, call_id VARCHAR(255), from_tag VARCHAR(128),
        to_tag VARCHAR(128), direction VARCHAR(8), ctime REAL NOT NULL, mtime REAL NOT NULL, pending TEXT, server_id INTEGER DEFAULT 0 NOT NULL,
        PRIMARY KEY (aor, app_index, server_id))`,
    ],
    mysql: [
      `CREATE TABLE IF NOT EXISTS version (table_name VARCHAR(32) NOT NULL, table_version INT UNSIGNED DEFAULT 0 NOT NULL,
        CONSTRAINT version_table_name_idx UNIQUE (table_name))`,
      `CREATE TABLE IF NOT EXISTS sca_subscriptions (id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL, subscriber VARCHAR(255) NOT NULL,
        aor VARCHAR(255) NOT NULL, event INT DEFAULT 0 NOT NULL, expires INT(11) DEFAULT 0 NOT NULL, state INT DEFAULT 0 NOT NULL,
        app_idx INT DEFAULT 0 NOT NULL, call_id VARCHAR(255) NOT NULL, from_tag VARCHAR(128) NOT NULL, to_tag VARCHAR(128) NOT NULL,
        record_route TEXT, notify_cseq INT(11) NOT NULL, subscribe_cseq INT(11) NOT NULL, server_id INT(11) DEFAULT 0 NOT NULL,
        CONSTRAINT sca_subscriptions_idx UNIQUE (subscriber, call_id, from_tag, to_tag),
        INDEX sca_expires_idx (server_id, expires), INDEX sca_subscribers_idx (subscriber, event))`,
      'INDEX sca_service_aor_idx ON sca_subscriptions (aor, server_id)', // created only if missing
      `INSERT IGNORE INTO version (table_name, table_version) VALUES ('sca_subscriptions', 2)`,
      `CREATE TABLE sca_lines (aor VARCHAR(255) NOT NULL, server_id INT(11) DEFAULT 0 NOT NULL, PRIMARY KEY (aor, server_id))`,
      `CREATE TABLE sca_appearances (aor VARCHAR(255) NOT NULL, app_index INT NOT NULL, state VARCHAR(16) NOT NULL,
        owner VARCHAR(255) NOT NULL, callee VARCHAR(255) NOT NULL, uri VARCHAR(512) NOT NULL, call_id VARCHAR(255), from_tag VARCHAR(128),
        to_tag VARCHAR(128), direction VARCHAR(8), ctime DOUBLE NOT NULL, mtime DOUBLE NOT NULL, pending TEXT, server_id INT(11) DEFAULT 0 NOT NULL,
        PRIMARY KEY (aor, app_index, server_id))`,
    ],
  },
  {
    // One row per (subscriber, AoR, event): what the engine keys on, so a change is one upsert.
    version: 2,
    sqlite: [
      `DELETE FROM sca_subscriptions WHERE id NOT IN (SELECT MAX(id) FROM sca_subscriptions GROUP BY subscriber, aor, event, server_id)`,
      `CREATE UNIQUE INDEX IF NOT EXISTS sca_service_sub_key ON sca_subscriptions (subscriber, aor, event, server_id)`,
    ],
    mysql: [
      `DELETE s FROM sca_subscriptions s JOIN sca_subscriptions t ON s.subscriber = t.subscriber AND s.aor = t.aor AND s.event = t.event AND s.server_id = t.server_id AND s.id < t.id`,
      'INDEX UNIQUE sca_service_sub_key ON sca_subscriptions (subscriber, aor, event, server_id)',
    ],
  },
  {
    // Where each subscription's last SUBSCRIBE came from (its NOTIFYs go there), beside the native
    // sca_subscriptions rows, whose layout the module still reads; where a held party answered from.
    version: 3,
    sqlite: [
      `CREATE TABLE sca_subscription_flows (subscriber VARCHAR(255) NOT NULL, aor VARCHAR(255) NOT NULL, event INTEGER NOT NULL,
        server_id INTEGER DEFAULT 0 NOT NULL, proto VARCHAR(8) NOT NULL, address VARCHAR(64) NOT NULL, port INTEGER NOT NULL,
        socket VARCHAR(80) NOT NULL, PRIMARY KEY (subscriber, aor, event, server_id))`,
      `ALTER TABLE sca_appearances ADD COLUMN callee_flow VARCHAR(255)`,
    ],
    mysql: [
      `CREATE TABLE sca_subscription_flows (subscriber VARCHAR(255) NOT NULL, aor VARCHAR(255) NOT NULL, event INT NOT NULL,
        server_id INT(11) DEFAULT 0 NOT NULL, proto VARCHAR(8) NOT NULL, address VARCHAR(64) NOT NULL, port INT NOT NULL,
        socket VARCHAR(80) NOT NULL, PRIMARY KEY (subscriber, aor, event, server_id))`,
      `ALTER TABLE sca_appearances ADD COLUMN callee_flow VARCHAR(255)`,
    ],
  },
  {
    // The proxy (PROXY_ID) a subscription's last SUBSCRIBE came through: with several proxies,
    // its NOTIFYs go out through that one.
    version: 4,
    sqlite: [`ALTER TABLE sca_subscription_flows ADD COLUMN proxy VARCHAR(64)`],
    mysql: [`ALTER TABLE sca_subscription_flows ADD COLUMN proxy VARCHAR(64) NULL`],
  },
];

const SUB_COLUMNS = ['subscriber', 'aor', 'event', 'expires', 'state', 'app_idx', 'call_id', 'from_tag', 'to_tag', 'record_route', 'notify_cseq', 'subscribe_cseq', 'server_id'] as const;
const SUB_KEY = ['subscriber', 'aor', 'event', 'server_id'];
const FLOW_COLUMNS = ['subscriber', 'aor', 'event', 'server_id', 'proto', 'address', 'port', 'socket', 'proxy'] as const;
const APP_COLUMNS = ['aor', 'app_index', 'state', 'owner', 'callee', 'uri', 'call_id', 'from_tag', 'to_tag', 'direction', 'ctime', 'mtime', 'pending', 'callee_flow', 'server_id'] as const;
const APP_KEY = ['aor', 'app_index', 'server_id'];

/** INSERT ... or update the non-key columns, in the database's dialect. */
function upsertSql(kind: Database['kind'], table: string, columns: readonly string[], key: readonly string[]): string {
  const insert = `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
  const rest = columns.filter((c) => !key.includes(c));
  return kind === 'sqlite'
    ? `${insert} ON CONFLICT(${key.join(', ')}) DO UPDATE SET ${rest.map((c) => `${c} = excluded.${c}`).join(', ')}`
    : `${insert} ON DUPLICATE KEY UPDATE ${rest.map((c) => `${c} = VALUES(${c})`).join(', ')}`;
}

/** The SCA engine's store: loads its lines at start and turns its writes into statements. */
export class ScaStore {
  private readonly sql: Record<'insertLine' | 'deleteLine' | 'upsertSub' | 'deleteSub' | 'upsertFlow' | 'deleteFlow' | 'upsertApp' | 'deleteApp', string>;

  constructor(private readonly db: Database, private readonly serverId = 0) {
    this.sql = {
      insertLine: `INSERT ${db.kind === 'sqlite' ? 'OR IGNORE' : 'IGNORE'} INTO sca_lines (aor, server_id) VALUES (?, ?)`,
      deleteLine: 'DELETE FROM sca_lines WHERE aor = ? AND server_id = ?',
      upsertSub: upsertSql(db.kind, 'sca_subscriptions', SUB_COLUMNS, SUB_KEY),
      deleteSub: 'DELETE FROM sca_subscriptions WHERE subscriber = ? AND aor = ? AND event = ? AND server_id = ?',
      upsertFlow: upsertSql(db.kind, 'sca_subscription_flows', FLOW_COLUMNS, SUB_KEY),
      deleteFlow: 'DELETE FROM sca_subscription_flows WHERE subscriber = ? AND aor = ? AND event = ? AND server_id = ?',
      upsertApp: upsertSql(db.kind, 'sca_appearances', APP_COLUMNS, APP_KEY),
      deleteApp: 'DELETE FROM sca_appearances WHERE aor = ? AND app_index = ? AND server_id = ?',
    };
  }

  /** Creates or upgrades the tables (component "sca"; releases before 0.2 called it "store"). */
  migrate(): Promise<number> {
    return this.db.migrate('sca', SCA_MIGRATIONS, 'store');
  }

  /**
   * Every line of this server. Subscriptions come LOAD_PAGE rows at a time, each page turned into
   * subscriptions before the next is read: neither the database's thread nor ours ever holds
   * every row at once (100k rows held whole cost the service about 100 MiB of RSS for good).
   */
  async load(): Promise<{ lines: LineSnapshot[]; skipped: number }> {
    const aors = await this.db.query('SELECT aor FROM sca_lines WHERE server_id = ?', [this.serverId]);
    const lines = new LineCollector(aors.map((r) => String(r.aor)));
    for (let last = -1; ;) {
      const page = await this.db.query(`SELECT s.*, f.proto AS flow_proto, f.address AS flow_address, f.port AS flow_port, f.socket AS flow_socket, f.proxy AS flow_proxy
        FROM sca_subscriptions s LEFT JOIN sca_subscription_flows f
          ON f.subscriber = s.subscriber AND f.aor = s.aor AND f.event = s.event AND f.server_id = s.server_id
        WHERE s.server_id = ? AND s.id > ? ORDER BY s.id LIMIT ${LOAD_PAGE}`, [this.serverId, last]);
      lines.subscriptions(page as unknown as SubscriptionRow[]);
      if (page.length < LOAD_PAGE) break;
      last = Number(page.at(-1)!.id);
    }
    lines.appearances(await this.db.query('SELECT * FROM sca_appearances WHERE server_id = ? ORDER BY aor, app_index', [this.serverId]) as unknown as AppearanceRow[]);
    return lines.result();
  }

  /** Each write as the statements for its row, keyed so that a later write of a row replaces an earlier one. */
  changes(writes: readonly ScaWrite[]): Change[] {
    return writes.map((w) => this.change(w));
  }

  private change(w: ScaWrite): Change {
    const s = (sql: string, params: SqlValue[]): Statement => ({ sql, params });
    const id = this.serverId;
    switch (w.kind) {
      case 'line':
        return {
          key: `line\u0000${w.aor}`,
          // Its subscriptions and appearances go by their own writes: each change sets one row.
          statements: [s(w.shared ? this.sql.insertLine : this.sql.deleteLine, [w.aor, id])],
        };
      case 'subscription': {
        const key = `sub\u0000${w.aor}\u0000${w.event}\u0000${w.subscriber}`;
        if (!w.value) return { key, statements: [s(this.sql.deleteSub, [w.subscriber, w.aor, EVENT_INT[w.event], id])] };
        const row = subscriptionRow(w.value, id);
        return { key, statements: [s(this.sql.upsertSub, SUB_COLUMNS.map((c) => row[c]))] };
      }
      case 'flow': {
        const key = `flow\u0000${w.aor}\u0000${w.event}\u0000${w.subscriber}`;
        const keyParams = [w.subscriber, w.aor, EVENT_INT[w.event], id];
        const f = w.value;
        return { key, statements: [f ? s(this.sql.upsertFlow, [...keyParams, f.proto, f.address, f.port, f.socket, f.proxy ?? null]) : s(this.sql.deleteFlow, keyParams)] };
      }
      case 'appearance': {
        const key = `app\u0000${w.aor}\u0000${w.index}`;
        if (!w.value) return { key, statements: [s(this.sql.deleteApp, [w.aor, w.index, id])] };
        const row: Record<string, SqlValue> = { ...appearanceRow(w.aor, w.value), server_id: id };
        return { key, statements: [s(this.sql.upsertApp, APP_COLUMNS.map((c) => row[c] ?? null))] };
      }
    }
  }
}

/** Subscription rows read per query at restore. */
const LOAD_PAGE = 5000;

/** The sca module's state ints (spec §2.2) for the sca_subscriptions.state column. */
const STATE_INT: Record<string, number> = { active: 0, pending: 1, terminated: 2, deactivated: 3, giveup: 4, noresource: 5, probation: 6, rejected: 7, timeout: 8 };
export const EVENT_INT: Record<EventPackage, number> = { 'call-info': 1, 'line-seize': 2 };

/** One sca_subscriptions row, in the kamctl schema's columns (app_idx carries the line-seize index). */
export interface SubscriptionRow {
  id?: number;
  subscriber: string;
  aor: string;
  event: number;
  expires: number;
  state: number;
  app_idx: number;
  call_id: string;
  from_tag: string;
  to_tag: string;
  record_route: string | null;
  notify_cseq: number;
  subscribe_cseq: number;
  server_id: number;
  /** From sca_subscription_flows (null: none stored, e.g. a row the native module wrote). */
  flow_proto?: string | null;
  flow_address?: string | null;
  flow_port?: number | null;
  flow_socket?: string | null;
  flow_proxy?: string | null;
}

export interface AppearanceRow {
  aor: string;
  app_index: number;
  state: string;
  owner: string;
  callee: string;
  uri: string;
  call_id: string | null;
  from_tag: string | null;
  to_tag: string | null;
  direction: string | null;
  ctime: number;
  mtime: number;
  pending: string | null;
  callee_flow?: string | null;
}

export function subscriptionRow(s: Subscription, serverId: number): SubscriptionRow {
  return {
    subscriber: s.subscriber, aor: s.aor, event: EVENT_INT[s.event], expires: Math.round(s.expires),
    state: s.state === 'active' ? 0 : STATE_INT[s.reason ?? 'terminated']!, app_idx: s.index, call_id: s.callId,
    from_tag: s.fromTag, to_tag: s.toTag, record_route: s.routeSet.length > 0 ? s.routeSet.join(',') : null,
    notify_cseq: s.notifyCseq, subscribe_cseq: 0, server_id: serverId,
  };
}

/** A row back to a subscription; undefined (and counted as skipped) when it cannot be one. */
export function subscriptionFromRow(r: SubscriptionRow): Subscription | undefined {
  const event: EventPackage | undefined = Number(r.event) === 1 ? 'call-info' : Number(r.event) === 2 ? 'line-seize' : undefined;
  if (!event || !r.subscriber || !r.aor || !r.call_id || !r.to_tag || !r.from_tag) return undefined;
  const expires = Number(r.expires);
  if (!Number.isFinite(expires)) return undefined;
  return {
    aor: r.aor, event, subscriber: r.subscriber, expires, state: Number(r.state) === 0 ? 'active' : 'terminated', reason: undefined,
    index: Number(r.app_idx) || 0, callId: r.call_id, fromTag: r.from_tag, toTag: r.to_tag,
    notifyCseq: Number(r.notify_cseq) || 0,
    routeSet: r.record_route ? splitRoutes(r.record_route) : [],
    seq: Number(r.id ?? 0),
    flow: r.flow_proto ? readFlow({ proto: r.flow_proto, address: r.flow_address, port: Number(r.flow_port), socket: r.flow_socket, ...(r.flow_proxy ? { proxy: r.flow_proxy } : {}) }) : undefined,
  };
}

/** A stored flow, validated as if it came from Kamailio; one that does not parse is dropped (NOTIFYs then go to the Contact). */
const readFlow = (raw: unknown): Flow | undefined => {
  const f = flowInput.safeParse(raw);
  return f.success ? f.data : undefined;
};

const readJsonFlow = (text: string): Flow | undefined => {
  try {
    return readFlow(JSON.parse(text));
  } catch {
    return undefined;
  }
};

const splitRoutes = (rr: string): string[] => rr.split(/,(?=\s*<)/).map((x) => x.trim()).filter((x) => x !== '');

export function appearanceRow(aor: string, a: Appearance): AppearanceRow {
  return {
    aor, app_index: a.index, state: a.state, owner: a.owner, callee: a.callee, uri: a.uri,
    call_id: a.dialog?.callId ?? null, from_tag: a.dialog?.fromTag ?? null, to_tag: a.dialog?.toTag ?? null,
    direction: a.direction ?? null, ctime: a.ctime, mtime: a.mtime, pending: a.pending ? JSON.stringify(a.pending) : null,
    callee_flow: a.calleeFlow ? JSON.stringify(a.calleeFlow) : null,
  };
}

export function appearanceFromRow(r: AppearanceRow): Appearance | undefined {
  const index = Number(r.app_index);
  if (!isAppearanceState(r.state) || !Number.isInteger(index) || index < 1 || !r.owner) return undefined;
  let pending;
  try {
    pending = r.pending ? JSON.parse(r.pending) : undefined;
  } catch {
    return undefined;
  }
  return {
    index, state: r.state as Appearance['state'], owner: r.owner, callee: r.callee ?? '', uri: r.uri ?? '',
    dialog: r.call_id ? { callId: r.call_id, fromTag: r.from_tag ?? '', toTag: r.to_tag ?? '' } : undefined,
    direction: r.direction === 'incoming' || r.direction === 'outgoing' ? r.direction : undefined,
    ctime: Number(r.ctime), mtime: Number(r.mtime), pending,
    calleeFlow: r.callee_flow ? readJsonFlow(r.callee_flow) : undefined,
  };
}

/** Groups loaded rows into lines; rows that do not make sense are skipped and counted. */
export function linesFromRows(subRows: SubscriptionRow[], appRows: AppearanceRow[], lineAors: string[]): { lines: LineSnapshot[]; skipped: number } {
  const lines = new LineCollector(lineAors);
  lines.subscriptions(subRows);
  lines.appearances(appRows);
  return lines.result();
}

/** Rows read in pages, gathered into lines as they come; a row that does not parse is counted. */
class LineCollector {
  private readonly lines = new Map<string, { subscriptions: Subscription[]; appearances: Appearance[] }>();
  private skipped = 0;

  constructor(lineAors: readonly string[]) {
    for (const aor of lineAors) this.line(aor);
  }

  subscriptions(rows: readonly SubscriptionRow[]): void {
    for (const r of rows) {
      const s = subscriptionFromRow(r);
      if (s) this.line(s.aor).subscriptions.push(s);
      else this.skipped++;
    }
  }

  appearances(rows: readonly AppearanceRow[]): void {
    for (const r of rows) {
      const a = appearanceFromRow(r);
      if (a) this.line(r.aor).appearances.push(a);
      else this.skipped++;
    }
  }

  result(): { lines: LineSnapshot[]; skipped: number } {
    return { lines: [...this.lines].map(([aor, l]) => ({ aor, shared: true, ...l })), skipped: this.skipped };
  }

  private line(aor: string): { subscriptions: Subscription[]; appearances: Appearance[] } {
    let l = this.lines.get(aor);
    if (!l) this.lines.set(aor, (l = { subscriptions: [], appearances: [] }));
    return l;
  }
}
