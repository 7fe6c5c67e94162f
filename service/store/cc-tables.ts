import { createHash } from 'node:crypto';
import type { CcSnapshot } from '../cc/engine.js';
import type { Rate } from '../cc/rating.js';
import type { Account, BalanceChange, BlacklistEntry, BlacklistKind, Call, Cdr, CcWrite, EndCause } from '../cc/types.js';
import type { CdrFileCursor, CdrSource } from './cdr-log.js';
import type { Change } from './committer.js';
import type { Database, Migration, Row, SqlValue, Statement } from './database.js';

/**
 * Call control's tables (component "cc"): accounts, rates, blacklist, the calls in progress
 * (each a JSON document keyed by Call-ID), and two append-only records: CDRs and the balance
 * history. A call's end (debit, call row gone, CDR, history line) is written in one transaction.
 */
export const CC_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sqlite: [
      `CREATE TABLE cc_accounts (account VARCHAR(255) PRIMARY KEY NOT NULL, max_calls INTEGER, max_duration INTEGER,
        prepaid INTEGER DEFAULT 0 NOT NULL, balance BIGINT DEFAULT 0 NOT NULL, plan VARCHAR(64) DEFAULT 'default' NOT NULL)`,
      `CREATE TABLE cc_rates (plan VARCHAR(64) NOT NULL, prefix VARCHAR(64) NOT NULL, connect_fee BIGINT NOT NULL, price_per_minute BIGINT NOT NULL,
        initial_pulse INTEGER NOT NULL, next_pulse INTEGER NOT NULL, PRIMARY KEY (plan, prefix))`,
      `CREATE TABLE cc_blacklist (kind VARCHAR(16) NOT NULL, value VARCHAR(255) NOT NULL, note VARCHAR(255) DEFAULT '' NOT NULL, PRIMARY KEY (kind, value))`,
      `CREATE TABLE cc_calls (call_id VARCHAR(255) PRIMARY KEY NOT NULL, account VARCHAR(255) NOT NULL, state VARCHAR(8) NOT NULL, data TEXT NOT NULL)`,
      `CREATE TABLE cc_cdrs (id INTEGER PRIMARY KEY, call_id VARCHAR(255) NOT NULL, account VARCHAR(255) NOT NULL, from_uri VARCHAR(512) NOT NULL,
        to_uri VARCHAR(512) NOT NULL, source_ip VARCHAR(64) NOT NULL, start_ms BIGINT NOT NULL, connect_ms BIGINT, end_ms BIGINT NOT NULL,
        setup_seconds REAL NOT NULL, duration INTEGER NOT NULL, billable_seconds INTEGER NOT NULL, connect_fee BIGINT NOT NULL, amount BIGINT NOT NULL,
        rate_prefix VARCHAR(64), cause VARCHAR(16) NOT NULL, code INTEGER, CONSTRAINT cc_cdrs_call UNIQUE (call_id, start_ms))`,
      `CREATE INDEX cc_cdrs_account ON cc_cdrs (account, start_ms)`,
      `CREATE INDEX cc_cdrs_start ON cc_cdrs (start_ms)`,
      `CREATE TABLE cc_balance_history (id INTEGER PRIMARY KEY, account VARCHAR(255) NOT NULL, at REAL NOT NULL, amount BIGINT NOT NULL,
        balance BIGINT NOT NULL, note VARCHAR(255) NOT NULL, who VARCHAR(255) NOT NULL)`,
      `CREATE INDEX cc_balance_history_account ON cc_balance_history (account, at)`,
    ],
    mysql: [
      `CREATE TABLE cc_accounts (account VARCHAR(255) PRIMARY KEY NOT NULL, max_calls INT NULL, max_duration INT NULL,
        prepaid TINYINT DEFAULT 0 NOT NULL, balance BIGINT DEFAULT 0 NOT NULL, plan VARCHAR(64) DEFAULT 'default' NOT NULL)`,
      `CREATE TABLE cc_rates (plan VARCHAR(64) NOT NULL, prefix VARCHAR(64) NOT NULL, connect_fee BIGINT NOT NULL, price_per_minute BIGINT NOT NULL,
        initial_pulse INT NOT NULL, next_pulse INT NOT NULL, PRIMARY KEY (plan, prefix))`,
      `CREATE TABLE cc_blacklist (kind VARCHAR(16) NOT NULL, value VARCHAR(255) NOT NULL, note VARCHAR(255) DEFAULT '' NOT NULL, PRIMARY KEY (kind, value))`,
      `CREATE TABLE cc_calls (call_id VARCHAR(255) PRIMARY KEY NOT NULL, account VARCHAR(255) NOT NULL, state VARCHAR(8) NOT NULL, data TEXT NOT NULL)`,
      `CREATE TABLE cc_cdrs (id BIGINT AUTO_INCREMENT PRIMARY KEY, call_id VARCHAR(255) NOT NULL, account VARCHAR(255) NOT NULL, from_uri VARCHAR(512) NOT NULL,
        to_uri VARCHAR(512) NOT NULL, source_ip VARCHAR(64) NOT NULL, start_ms BIGINT NOT NULL, connect_ms BIGINT NULL, end_ms BIGINT NOT NULL,
        setup_seconds DOUBLE NOT NULL, duration INT NOT NULL, billable_seconds INT NOT NULL, connect_fee BIGINT NOT NULL, amount BIGINT NOT NULL,
        rate_prefix VARCHAR(64) NULL, cause VARCHAR(16) NOT NULL, code INT NULL, CONSTRAINT cc_cdrs_call UNIQUE (call_id, start_ms),
        INDEX cc_cdrs_account (account, start_ms), INDEX cc_cdrs_start (start_ms))`,
      `CREATE TABLE cc_balance_history (id BIGINT AUTO_INCREMENT PRIMARY KEY, account VARCHAR(255) NOT NULL, at DOUBLE NOT NULL, amount BIGINT NOT NULL,
        balance BIGINT NOT NULL, note VARCHAR(255) NOT NULL, who VARCHAR(255) NOT NULL, INDEX cc_balance_history_account (account, at))`,
    ],
  },
  {
    // When the service last knew its counted calls to be in progress (written every second while
    // there are any): after a crash, calls that ended meanwhile are billed up to here.
    version: 2,
    sqlite: [`CREATE TABLE cc_meta (name VARCHAR(32) PRIMARY KEY NOT NULL, value DOUBLE NOT NULL)`],
    mysql: [`CREATE TABLE cc_meta (name VARCHAR(32) PRIMARY KEY NOT NULL, value DOUBLE NOT NULL)`],
  },
  {
    // A CDR's exact duration in milliseconds beside its billed seconds (NULL in older rows); where
    // the CDR file is (the last CDR id whose line it has, which file, up to which byte).
    version: 3,
    sqlite: [
      'CREATE TABLE IF NOT EXISTS cc_cdr_cursor (name VARCHAR(32) PRIMARY KEY NOT NULL, last_id BIGINT NOT NULL, file_id VARCHAR(64) NOT NULL, file_offset BIGINT NOT NULL)',
      'ALTER TABLE cc_cdrs ADD COLUMN duration_ms BIGINT',
    ],
    mysql: [
      'CREATE TABLE IF NOT EXISTS cc_cdr_cursor (name VARCHAR(32) PRIMARY KEY NOT NULL, last_id BIGINT NOT NULL, file_id VARCHAR(64) NOT NULL, file_offset BIGINT NOT NULL)',
      'ALTER TABLE cc_cdrs ADD COLUMN duration_ms BIGINT NULL AFTER duration',
    ],
  },
];

const ACCOUNT_COLUMNS = ['account', 'max_calls', 'max_duration', 'prepaid', 'balance', 'plan'] as const;
const RATE_COLUMNS = ['plan', 'prefix', 'connect_fee', 'price_per_minute', 'initial_pulse', 'next_pulse'] as const;
const CDR_COLUMNS = ['call_id', 'account', 'from_uri', 'to_uri', 'source_ip', 'start_ms', 'connect_ms', 'end_ms', 'setup_seconds', 'duration',
  'duration_ms', 'billable_seconds', 'connect_fee', 'amount', 'rate_prefix', 'cause', 'code'] as const;
const CAUSES: readonly EndCause[] = ['caller', 'callee', 'normal', 'limit', 'credit', 'admin', 'stale', 'failed'];

/**
 * A Call-ID as its key column holds it: itself when it fits (255 characters), else a digest (the
 * whole Call-ID stays in the call's data). SIP sets no length; the columns do.
 */
export const callKey = (callId: string): string =>
  callId.length <= 255 ? callId : `~sha256:${createHash('sha256').update(callId).digest('hex')}`;
/** Text cut to a column's size, marked as cut. */
const fit = (v: string, max: number): string => (v.length <= max ? v : `${v.slice(0, max - 1)}…`);

const n = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
const marks = (k: number): string => Array.from({ length: k }, () => '?').join(', ');

/** A CDR as its row holds it: a long Call-ID by its digest, long texts cut (what the CDR lines show too). */
export const asStored = (c: Cdr): Cdr => ({ ...c, callId: callKey(c.callId), from: fit(c.from, 512), to: fit(c.to, 512), sourceIp: fit(c.sourceIp, 64) });

/** A CDR as stored, back to the engine's shape. */
export function cdrFromRow(r: Row): Cdr {
  return {
    callId: String(r.call_id), account: String(r.account), from: String(r.from_uri), to: String(r.to_uri), sourceIp: String(r.source_ip),
    startMs: Number(r.start_ms), connectMs: n(r.connect_ms), endMs: Number(r.end_ms), setupSeconds: Number(r.setup_seconds),
    durationSeconds: Number(r.duration), durationMs: n(r.duration_ms), billableSeconds: Number(r.billable_seconds), connectFee: Number(r.connect_fee), amount: Number(r.amount),
    ratePrefix: r.rate_prefix === null || r.rate_prefix === undefined ? undefined : String(r.rate_prefix),
    cause: CAUSES.includes(r.cause as EndCause) ? (r.cause as EndCause) : 'normal', code: n(r.code),
  };
}

export const rateFromRow = (r: Row): Rate => ({
  plan: String(r.plan), prefix: String(r.prefix), connectFee: Number(r.connect_fee), pricePerMinute: Number(r.price_per_minute),
  initialPulse: Number(r.initial_pulse), nextPulse: Number(r.next_pulse),
});

/** The call-control engine's store: loads its state at start, turns its writes into statements, answers queries. */
export class CcStore {
  private readonly sql: Record<'upsertCdrFile' | 'upsertMeta' | 'upsertAccount' | 'deleteAccount' | 'upsertRate' | 'deleteRate' | 'deletePlan' | 'upsertBlacklist' | 'deleteBlacklist' | 'upsertCall' | 'deleteCall' | 'insertCdr' | 'insertHistory', string>;

  /** `settled`: resolves when the writes answered so far are in (records read after them). */
  constructor(private readonly db: Database, private readonly settled: () => Promise<void> = () => Promise.resolve()) {
    const upsert = (table: string, cols: readonly string[], key: readonly string[]): string => {
      const insert = `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${marks(cols.length)})`;
      const rest = cols.filter((c) => !key.includes(c));
      return db.kind === 'sqlite'
        ? `${insert} ON CONFLICT(${key.join(', ')}) DO UPDATE SET ${rest.map((c) => `${c} = excluded.${c}`).join(', ')}`
        : `${insert} ON DUPLICATE KEY UPDATE ${rest.map((c) => `${c} = VALUES(${c})`).join(', ')}`;
    };
    const ignore = db.kind === 'sqlite' ? 'INSERT OR IGNORE' : 'INSERT IGNORE';
    this.sql = {
      upsertMeta: upsert('cc_meta', ['name', 'value'], ['name']),
      upsertCdrFile: upsert('cc_cdr_cursor', ['name', 'last_id', 'file_id', 'file_offset'], ['name']),
      upsertAccount: upsert('cc_accounts', ACCOUNT_COLUMNS, ['account']),
      deleteAccount: 'DELETE FROM cc_accounts WHERE account = ?',
      upsertRate: upsert('cc_rates', RATE_COLUMNS, ['plan', 'prefix']),
      deleteRate: 'DELETE FROM cc_rates WHERE plan = ? AND prefix = ?',
      deletePlan: 'DELETE FROM cc_rates WHERE plan = ?',
      upsertBlacklist: upsert('cc_blacklist', ['kind', 'value', 'note'], ['kind', 'value']),
      deleteBlacklist: 'DELETE FROM cc_blacklist WHERE kind = ? AND value = ?',
      upsertCall: upsert('cc_calls', ['call_id', 'account', 'state', 'data'], ['call_id']),
      deleteCall: 'DELETE FROM cc_calls WHERE call_id = ?',
      insertCdr: `${ignore} INTO cc_cdrs (${CDR_COLUMNS.join(', ')}) VALUES (${marks(CDR_COLUMNS.length)})`,
      insertHistory: 'INSERT INTO cc_balance_history (account, at, amount, balance, note, who) VALUES (?, ?, ?, ?, ?, ?)',
    };
  }

  migrate(): Promise<number> {
    return this.db.migrate('cc', CC_MIGRATIONS);
  }

  /** Everything the engine keeps; rows that make no sense are skipped and counted. */
  async load(): Promise<{ snapshot: CcSnapshot; skipped: number }> {
    let skipped = 0;
    const accounts = (await this.db.query('SELECT * FROM cc_accounts')).map((r): Account => ({
      id: String(r.account), maxCalls: n(r.max_calls), maxDuration: n(r.max_duration), prepaid: Number(r.prepaid) === 1,
      balance: Number(r.balance), plan: String(r.plan),
    }));
    const rates = (await this.db.query('SELECT * FROM cc_rates')).map(rateFromRow);
    const blacklist = (await this.db.query('SELECT * FROM cc_blacklist')).map((r): BlacklistEntry => ({ kind: String(r.kind) as BlacklistKind, value: String(r.value), note: String(r.note) }));
    const calls: Call[] = [];
    for (const r of await this.db.query('SELECT call_id, data FROM cc_calls')) {
      try {
        const c = JSON.parse(String(r.data)) as Call;
        if (typeof c.callId === 'string' && callKey(c.callId) === r.call_id && typeof c.account === 'string' && (c.state === 'setup' || c.state === 'active')) calls.push(c);
        else skipped++;
      } catch {
        skipped++;
      }
    }
    return { snapshot: { accounts, rates, blacklist, calls }, skipped };
  }

  /** The last moment the service knew its counted calls to be in progress (see aliveChange). */
  async aliveAt(): Promise<number | undefined> {
    const rows = await this.db.query("SELECT value FROM cc_meta WHERE name = 'alive_at'");
    return rows.length > 0 ? Number(rows[0]!.value) : undefined;
  }

  /** The row saying the service is alive at `at` with its calls counted. */
  aliveChange(at: number): Change {
    return { key: 'meta\u0000alive_at', statements: [{ sql: this.sql.upsertMeta, params: ['alive_at', at] }] };
  }

  /** The CDR table as the CDR file reads it: in id order, from where the file is. */
  cdrSource(save: (changes: Change[]) => void): CdrSource {
    const first = (rows: Row[]): number | undefined => (rows.length > 0 && rows[0]!.id !== null && rows[0]!.id !== undefined ? Number(rows[0]!.id) : undefined);
    return {
      after: async (id, limit) => (await this.db.query(`SELECT * FROM cc_cdrs WHERE id > ? ORDER BY id LIMIT ${Math.max(1, Math.floor(limit))}`, [id]))
        .map((r) => ({ id: Number(r.id), cdr: cdrFromRow(r) })),
      countAfter: async (id) => Number((await this.db.query('SELECT COUNT(*) AS n FROM cc_cdrs WHERE id > ?', [id]))[0]?.n ?? 0),
      nthAfter: async (id, nth) => first(await this.db.query(`SELECT id FROM cc_cdrs WHERE id > ? ORDER BY id LIMIT 1 OFFSET ${Math.max(0, Math.floor(nth) - 1)}`, [id])),
      lastId: async () => first(await this.db.query('SELECT MAX(id) AS id FROM cc_cdrs')) ?? 0,
      cursor: async () => {
        const [r] = await this.db.query("SELECT * FROM cc_cdr_cursor WHERE name = 'file'");
        return r ? { lastId: Number(r.last_id), file: String(r.file_id), offset: Number(r.file_offset) } : undefined;
      },
      saveCursor: (c: CdrFileCursor) => save([{ key: 'cdr-file\u0000file', statements: [{ sql: this.sql.upsertCdrFile, params: ['file', c.lastId, c.file, c.offset] }] }]),
    };
  }

  /** CDRs, newest first, filtered by account and a time range (ms since the epoch). */
  async cdrs(f: { account?: string; fromMs?: number; toMs?: number; limit: number }): Promise<Cdr[]> {
    await this.settled();
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.account !== undefined) { where.push('account = ?'); params.push(f.account); }
    if (f.fromMs !== undefined) { where.push('start_ms >= ?'); params.push(f.fromMs); }
    if (f.toMs !== undefined) { where.push('start_ms < ?'); params.push(f.toMs); }
    const rows = await this.db.query(`SELECT * FROM cc_cdrs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY start_ms DESC, id DESC LIMIT ${Math.max(1, Math.min(10_000, Math.floor(f.limit)))}`, params);
    return rows.map(cdrFromRow);
  }

  async history(account: string, limit: number): Promise<BalanceChange[]> {
    await this.settled();
    const rows = await this.db.query(`SELECT * FROM cc_balance_history WHERE account = ? ORDER BY at DESC, id DESC LIMIT ${Math.max(1, Math.min(10_000, Math.floor(limit)))}`, [account]);
    return rows.map((r) => ({ account: String(r.account), at: Number(r.at), amount: Number(r.amount), balance: Number(r.balance), note: String(r.note), who: String(r.who) }));
  }

  changes(writes: readonly CcWrite[]): Change[] {
    return writes.map((w) => this.change(w));
  }

  private change(w: CcWrite): Change {
    const s = (sql: string, params: SqlValue[]): Statement => ({ sql, params });
    switch (w.kind) {
      case 'account': {
        const a = w.value;
        return { key: `account\u0000${w.id}`, statements: [a
          ? s(this.sql.upsertAccount, [a.id, a.maxCalls ?? null, a.maxDuration ?? null, a.prepaid ? 1 : 0, a.balance, a.plan])
          : s(this.sql.deleteAccount, [w.id])] };
      }
      case 'rate':
        return { key: `rates\u0000${w.plan}`, append: true, statements: [w.value
          ? s(this.sql.upsertRate, rateParams(w.value))
          : s(this.sql.deleteRate, [w.plan, w.prefix])] };
      case 'rates':
        return { key: `rates\u0000${w.plan}`, append: true, statements: [s(this.sql.deletePlan, [w.plan]), ...w.rates.map((r) => s(this.sql.upsertRate, rateParams(r)))] };
      case 'blacklist':
        return { key: `blacklist\u0000${w.entry.kind}\u0000${w.entry.value}`, statements: [w.value
          ? s(this.sql.upsertBlacklist, [w.value.kind, w.value.value, w.value.note])
          : s(this.sql.deleteBlacklist, [w.entry.kind, w.entry.value])] };
      case 'call':
        return { key: `call\u0000${w.callId}`, statements: [w.value
          ? s(this.sql.upsertCall, [callKey(w.callId), w.value.account, w.value.state, JSON.stringify(w.value)])
          : s(this.sql.deleteCall, [callKey(w.callId)])] };
      case 'cdr': {
        const c = asStored(w.cdr);
        return { key: `cdr\u0000${c.callId}`, append: true, statements: [s(this.sql.insertCdr, [c.callId, c.account, c.from, c.to, c.sourceIp, c.startMs, c.connectMs ?? null,
          c.endMs, c.setupSeconds, c.durationSeconds, c.durationMs ?? null, c.billableSeconds, c.connectFee, c.amount, c.ratePrefix ?? null, c.cause, c.code ?? null])] };
      }
      case 'balance': {
        const h = w.change;
        return { key: `history\u0000${h.account}`, append: true, statements: [s(this.sql.insertHistory, [h.account, h.at, h.amount, h.balance, fit(h.note, 255), fit(h.who, 255)])] };
      }
    }
  }
}

const rateParams = (r: Rate): SqlValue[] => [r.plan, r.prefix, r.connectFee, r.pricePerMinute, r.initialPulse, r.nextPulse];
