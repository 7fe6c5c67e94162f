/**
 * Schema versions of the service's own tables, applied in order. sca_subscriptions keeps the
 * kamctl layout (version 2 of the sca module) so an operator's existing table works as it is.
 */
export interface Migration {
  readonly version: number;
  readonly sqlite: readonly string[];
  readonly mysql: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
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
];
