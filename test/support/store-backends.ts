// The two real store backends, each with a fresh database per call, and raw access for tests.
import BetterSqlite from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import type { ScaWrite } from '../../service/sca/journal.js';
import type { LineSnapshot } from '../../service/sca/snapshot.js';
import { Committer } from '../../service/store/committer.js';
import type { Database } from '../../service/store/database.js';
import { MysqlDatabase } from '../../service/store/mysql.js';
import { ScaStore } from '../../service/store/sca-tables.js';
import { SqliteDatabase } from '../../service/store/sqlite.js';

export const MYSQL_ROOT = process.env.SCA_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306';
const created: string[] = [];

/** Drops the databases this process created. */
export async function dropTestDatabases(): Promise<void> {
  if (created.length === 0) return;
  const admin = await mysql.createConnection({ uri: MYSQL_ROOT });
  for (const db of created.splice(0)) await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.end();
}

/** The SCA store as the service runs it: the database, the tables, the committer. */
export interface Store {
  open(): Promise<void>;
  /** Commits the engine's writes. */
  apply(writes: readonly ScaWrite[]): Promise<void>;
  loadLines(): Promise<{ lines: LineSnapshot[]; skipped: number }>;
  close(): Promise<void>;
  readonly db: Database;
}

const quietLog = { error: () => undefined, warn: () => undefined, info: () => undefined };

function scaStore(db: Database, serverId: number): Store {
  const tables = new ScaStore(db, serverId);
  const committer = new Committer(db, quietLog);
  return {
    db,
    async open() { await db.open(); await tables.migrate(); },
    apply: (writes) => committer.commit(tables.changes(writes)),
    loadLines: () => tables.load(),
    async close() { await committer.drain(2000); await db.close(); },
  };
}

export interface Backend {
  name: string;
  /** A new empty database; stores made from it share it. */
  fresh(): Promise<{ url: string; make: (serverId?: number) => Store; database: () => Database; exec: (sql: string) => Promise<void>; query: (sql: string) => Promise<Array<Record<string, unknown>>>; version: (s: Store) => Promise<number> }>;
}

export const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    async fresh() {
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'sca-store-')), 'sca.sqlite');
      const raw = () => new BetterSqlite(file);
      return {
        url: `sqlite:${file}`,
        make: (serverId = 0) => scaStore(new SqliteDatabase(file), serverId),
        database: () => new SqliteDatabase(file),
        exec: async (sql) => { const db = raw(); db.exec(sql); db.close(); },
        query: async (sql) => { const db = raw(); const r = db.prepare(sql).all() as Array<Record<string, unknown>>; db.close(); return r; },
        version: (s) => s.db.schemaVersion('sca'),
      };
    },
  },
  {
    name: 'mysql',
    async fresh() {
      const { url, query } = await freshMysqlDatabase();
      return {
        url,
        make: (serverId = 0) => scaStore(new MysqlDatabase(url), serverId),
        database: () => new MysqlDatabase(url),
        exec: async (sql) => { await query(sql); },
        query,
        version: (s) => s.db.schemaVersion('sca'),
      };
    },
  },
];

/** A new empty database on the local MariaDB (dropped by dropTestDatabases), and a way to query it. */
export async function freshMysqlDatabase(): Promise<{ url: string; query: (sql: string) => Promise<Array<Record<string, unknown>>> }> {
  const db = `sca_test_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: MYSQL_ROOT });
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
  created.push(db);
  const url = `${MYSQL_ROOT}/${db}`;
  const query = async (sql: string) => {
    const c = await mysql.createConnection({ uri: url });
    try { return (await c.query(sql))[0] as Array<Record<string, unknown>>; } finally { await c.end(); }
  };
  return { url, query };
}
