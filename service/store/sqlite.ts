import Database from 'better-sqlite3';
import type { LineSnapshot } from '../sca/snapshot.js';
import { MIGRATIONS } from './migrations.js';
import { appearanceRow, linesFromRows, subscriptionRow, type AppearanceRow, type Store, type SubscriptionRow } from './store.js';

/**
 * The embedded default: SQLite through better-sqlite3 in WAL mode with synchronous=FULL, so a
 * committed line survives kill -9 and power loss. One file, no server.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private db: Database.Database | undefined;

  constructor(private readonly file: string, private readonly serverId = 0) {}

  async open(): Promise<void> {
    const db = new Database(this.file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec('CREATE TABLE IF NOT EXISTS sca_service_schema (component VARCHAR(32) PRIMARY KEY, version INTEGER NOT NULL)');
    const current = (db.prepare("SELECT version FROM sca_service_schema WHERE component = 'store'").get() as { version: number } | undefined)?.version ?? 0;
    const migrate = db.transaction(() => {
      for (const m of MIGRATIONS.filter((x) => x.version > current)) {
        for (const sql of m.sqlite) db.exec(sql);
        db.prepare("INSERT INTO sca_service_schema (component, version) VALUES ('store', ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version").run(m.version);
      }
    });
    migrate();
    this.db = db;
  }

  schemaVersion(): number {
    return (this.handle().prepare("SELECT version FROM sca_service_schema WHERE component = 'store'").get() as { version: number }).version;
  }

  async loadLines(): Promise<{ lines: LineSnapshot[]; skipped: number }> {
    const db = this.handle();
    const subs = db.prepare('SELECT * FROM sca_subscriptions WHERE server_id = ? ORDER BY id').all(this.serverId) as SubscriptionRow[];
    const apps = db.prepare('SELECT * FROM sca_appearances WHERE server_id = ? ORDER BY aor, app_index').all(this.serverId) as AppearanceRow[];
    const aors = (db.prepare('SELECT aor FROM sca_lines WHERE server_id = ?').all(this.serverId) as Array<{ aor: string }>).map((r) => r.aor);
    return linesFromRows(subs, apps, aors);
  }

  async saveLines(lines: readonly LineSnapshot[]): Promise<void> {
    const db = this.handle();
    const delSubs = db.prepare('DELETE FROM sca_subscriptions WHERE aor = ? AND server_id = ?');
    const delApps = db.prepare('DELETE FROM sca_appearances WHERE aor = ? AND server_id = ?');
    const delLine = db.prepare('DELETE FROM sca_lines WHERE aor = ? AND server_id = ?');
    const insLine = db.prepare('INSERT INTO sca_lines (aor, server_id) VALUES (?, ?)');
    const insSub = db.prepare(`INSERT INTO sca_subscriptions (subscriber, aor, event, expires, state, app_idx, call_id, from_tag, to_tag, record_route, notify_cseq, subscribe_cseq, server_id)
      VALUES (@subscriber, @aor, @event, @expires, @state, @app_idx, @call_id, @from_tag, @to_tag, @record_route, @notify_cseq, @subscribe_cseq, @server_id)`);
    const insApp = db.prepare(`INSERT INTO sca_appearances (aor, app_index, state, owner, callee, uri, call_id, from_tag, to_tag, direction, ctime, mtime, pending, server_id)
      VALUES (@aor, @app_index, @state, @owner, @callee, @uri, @call_id, @from_tag, @to_tag, @direction, @ctime, @mtime, @pending, ${this.serverId})`);
    db.transaction(() => {
      for (const line of lines) {
        delSubs.run(line.aor, this.serverId);
        delApps.run(line.aor, this.serverId);
        delLine.run(line.aor, this.serverId);
        if (!line.shared) continue;
        insLine.run(line.aor, this.serverId);
        // Oldest first, so that row ids keep the creation order the group NOTIFYs follow.
        for (const s of [...line.subscriptions].sort((a, b) => a.seq - b.seq)) insSub.run(subscriptionRow(s, this.serverId));
        for (const a of line.appearances) insApp.run(appearanceRow(line.aor, a));
      }
    })();
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }

  private handle(): Database.Database {
    if (!this.db) throw new Error('store is not open');
    return this.db;
  }
}
