import path from 'node:path';
import { MysqlStore } from './mysql.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './store.js';

/** db_url: "sqlite:<file>" (the embedded default) or "mysql://user:pass@host:port/db". */
export function openStore(dbUrl: string, serverId: number): Store {
  const sqlite = /^sqlite:(?:\/\/)?(.+)$/.exec(dbUrl);
  if (sqlite) return new SqliteStore(path.resolve(sqlite[1]!), serverId);
  if (/^mysql:\/\//.test(dbUrl)) return new MysqlStore(dbUrl, serverId);
  throw new Error(`db_url ${dbUrl}: use sqlite:<file> or mysql://user:pass@host:port/db`);
}
