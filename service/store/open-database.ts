import path from 'node:path';
import type { Database } from './database.js';
import { MysqlDatabase, type MysqlOptions } from './mysql.js';
import { SqliteDatabase } from './sqlite.js';

/**
 * db_url: "sqlite:<file>" (the embedded default) or "mysql://user:pass@host:port/db";
 * `mysqlOptions` (MySQL only): the statement timeout, several hosts (db_hosts), HA sessions.
 */
export function openDatabase(dbUrl: string, mysqlOptions: MysqlOptions = {}): Database {
  const sqlite = /^sqlite:(?:\/\/)?(.+)$/.exec(dbUrl);
  if (sqlite) return new SqliteDatabase(path.resolve(sqlite[1]!));
  if (/^mysql:\/\//.test(dbUrl)) return new MysqlDatabase(dbUrl, mysqlOptions);
  throw new Error(`db_url ${dbUrl}: use sqlite:<file> or mysql://user:pass@host:port/db`);
}
