// The SQLite side of SqliteDatabase: owns the connection in a worker thread so that commits
// (fsync with synchronous=FULL) never block the service's event loop.
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import type { SqlValue } from './database.js';

type Request =
  | { id: number; op: 'exec'; sql: string }
  | { id: number; op: 'query'; sql: string; params: SqlValue[] }
  // A statement's SQL travels once (`define`); transactions name it by number.
  | { id: number; op: 'tx'; define: Array<[number, string]>; statements: Array<[number, SqlValue[]]> }
  | { id: number; op: 'close' };

const db = new Database((workerData as { file: string }).file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');

// Each distinct statement is prepared once.
const prepared = new Map<string, Database.Statement>();
const statement = (sql: string): Database.Statement => {
  let s = prepared.get(sql);
  if (!s) {
    s = db.prepare(sql);
    prepared.set(sql, s);
  }
  return s;
};

// Busy, locked, I/O, full disk, cannot open: worth retrying; a constraint or a type is not.
const TRANSIENT = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_IOERR', 'SQLITE_FULL', 'SQLITE_CANTOPEN', 'SQLITE_PROTOCOL', 'SQLITE_NOMEM', 'SQLITE_READONLY']);
const transient = (code: string | undefined): boolean => code !== undefined && [...TRANSIENT].some((c) => code.startsWith(c));

const byNumber = new Map<number, Database.Statement>();
const runTx = db.transaction((statements: Array<[number, SqlValue[]]>) => {
  for (const [n, params] of statements) byNumber.get(n)!.run(...params);
});

parentPort!.on('message', (req: Request) => {
  try {
    switch (req.op) {
      case 'exec': db.exec(req.sql); parentPort!.postMessage({ id: req.id, ok: true }); break;
      case 'query': {
        const s = statement(req.sql);
        const rows = s.reader ? s.all(...req.params) : (s.run(...req.params), []);
        parentPort!.postMessage({ id: req.id, ok: true, rows });
        break;
      }
      case 'tx':
        for (const [n, sql] of req.define) byNumber.set(n, statement(sql));
        runTx(req.statements);
        parentPort!.postMessage({ id: req.id, ok: true });
        break;
      case 'close': db.close(); parentPort!.postMessage({ id: req.id, ok: true }); break;
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    parentPort!.postMessage({ id: req.id, ok: false, error: (err as Error).message, code, transient: transient(code) });
  }
});
