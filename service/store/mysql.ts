import mysql, { type Pool, type PoolConnection, type RowDataPacket } from 'mysql2/promise';
import type { LineSnapshot } from '../sca/snapshot.js';
import { MIGRATIONS } from './migrations.js';
import { appearanceRow, linesFromRows, subscriptionRow, type AppearanceRow, type Store, type SubscriptionRow } from './store.js';

const SUB_COLUMNS = ['subscriber', 'aor', 'event', 'expires', 'state', 'app_idx', 'call_id', 'from_tag', 'to_tag', 'record_route', 'notify_cseq', 'subscribe_cseq', 'server_id'] as const;
const APP_COLUMNS = ['aor', 'app_index', 'state', 'owner', 'callee', 'uri', 'call_id', 'from_tag', 'to_tag', 'direction', 'ctime', 'mtime', 'pending'] as const;

/**
 * MySQL/MariaDB through mysql2 (db_url mysql://user:pass@host:port/db). The pool reconnects by
 * itself after an outage; the persister retries the lines that could not be written.
 */
export class MysqlStore implements Store {
  readonly kind = 'mysql';
  private pool: Pool | undefined;

  constructor(private readonly url: string, private readonly serverId = 0) {}

  async open(): Promise<void> {
    const pool = mysql.createPool({ uri: this.url, connectionLimit: 4, connectTimeout: 3000, enableKeepAlive: true });
    this.pool = pool;
    await pool.query('CREATE TABLE IF NOT EXISTS sca_service_schema (component VARCHAR(32) PRIMARY KEY, version INT NOT NULL)');
    const [rows] = await pool.query<RowDataPacket[]>("SELECT version FROM sca_service_schema WHERE component = 'store'");
    const current = (rows[0]?.version as number | undefined) ?? 0;
    for (const m of MIGRATIONS.filter((x) => x.version > current)) {
      for (const sql of m.mysql) {
        if (sql.startsWith('INDEX ')) await this.createIndexIfMissing(pool, sql);
        else await pool.query(sql);
      }
      await pool.query("INSERT INTO sca_service_schema (component, version) VALUES ('store', ?) ON DUPLICATE KEY UPDATE version = VALUES(version)", [m.version]);
    }
  }

  /** "INDEX name ON table (cols)": an operator's existing sca_subscriptions may lack ours. */
  private async createIndexIfMissing(pool: Pool, spec: string): Promise<void> {
    const m = /^INDEX (\w+) ON (\w+) (\(.+\))/.exec(spec)!;
    const [found] = await pool.query<RowDataPacket[]>('SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?', [m[2], m[1]]);
    if (found.length === 0) await pool.query(`CREATE INDEX ${m[1]} ON ${m[2]} ${m[3]}`);
  }

  async schemaVersion(): Promise<number> {
    const [rows] = await this.handle().query<RowDataPacket[]>("SELECT version FROM sca_service_schema WHERE component = 'store'");
    return rows[0]!.version as number;
  }

  async loadLines(): Promise<{ lines: LineSnapshot[]; skipped: number }> {
    const pool = this.handle();
    const [subs] = await pool.query<RowDataPacket[]>('SELECT * FROM sca_subscriptions WHERE server_id = ? ORDER BY id', [this.serverId]);
    const [apps] = await pool.query<RowDataPacket[]>('SELECT * FROM sca_appearances WHERE server_id = ? ORDER BY aor, app_index', [this.serverId]);
    const [aors] = await pool.query<RowDataPacket[]>('SELECT aor FROM sca_lines WHERE server_id = ?', [this.serverId]);
    return linesFromRows(subs as SubscriptionRow[], apps as AppearanceRow[], aors.map((r) => r.aor as string));
  }

  async saveLines(lines: readonly LineSnapshot[]): Promise<void> {
    if (lines.length === 0) return;
    const conn: PoolConnection = await this.handle().getConnection();
    try {
      await conn.beginTransaction();
      const aors = lines.map((l) => l.aor);
      await conn.query('DELETE FROM sca_subscriptions WHERE server_id = ? AND aor IN (?)', [this.serverId, aors]);
      await conn.query('DELETE FROM sca_appearances WHERE server_id = ? AND aor IN (?)', [this.serverId, aors]);
      await conn.query('DELETE FROM sca_lines WHERE server_id = ? AND aor IN (?)', [this.serverId, aors]);
      const shared = lines.filter((l) => l.shared);
      if (shared.length > 0) await conn.query('INSERT INTO sca_lines (aor, server_id) VALUES ?', [shared.map((l) => [l.aor, this.serverId])]);
      const subRows = shared.flatMap((l) => [...l.subscriptions].sort((a, b) => a.seq - b.seq).map((s) => subscriptionRow(s, this.serverId)));
      if (subRows.length > 0) {
        await conn.query(`INSERT INTO sca_subscriptions (${SUB_COLUMNS.join(', ')}) VALUES ?`, [subRows.map((r) => SUB_COLUMNS.map((c) => r[c]))]);
      }
      const appRows = shared.flatMap((l) => l.appearances.map((a) => appearanceRow(l.aor, a)));
      if (appRows.length > 0) {
        await conn.query(`INSERT INTO sca_appearances (${APP_COLUMNS.join(', ')}, server_id) VALUES ?`, [appRows.map((r) => [...APP_COLUMNS.map((c) => r[c]), this.serverId])]);
      }
      await conn.commit();
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
  }

  async close(): Promise<void> {
    await this.pool?.end();
    this.pool = undefined;
  }

  private handle(): Pool {
    if (!this.pool) throw new Error('store is not open');
    return this.pool;
  }
}
