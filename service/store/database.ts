/**
 * The database under every engine's store: SQLite in a worker thread (the embedded default) or
 * MySQL/MariaDB. Engines' table modules speak SQL through it and own their tables; it only runs
 * statements, one transaction at a time, and keeps each engine's schema version.
 */
export type SqlValue = string | number | null;

export interface Statement {
  readonly sql: string;
  readonly params: readonly SqlValue[];
}

/** One step of an engine's schema, in both dialects. */
export interface Migration {
  readonly version: number;
  readonly sqlite: readonly string[];
  readonly mysql: readonly string[];
}

export type Row = Record<string, unknown>;

export interface Database {
  readonly kind: 'sqlite' | 'mysql';
  open(): Promise<void>;
  /**
   * Applies the migrations above the component's version, each in order; returns the version now.
   * `formerly`: the component name an older release kept the same tables under.
   */
  migrate(component: string, migrations: readonly Migration[], formerly?: string): Promise<number>;
  schemaVersion(component: string): Promise<number>;
  query(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Runs the statements in one transaction; rejects with a StoreError, nothing applied. */
  transaction(statements: readonly Statement[]): Promise<void>;
  /** The restore's bulk reads are over: give back the memory they grew, where that is possible. */
  settle?(): Promise<void>;
  /**
   * HA (MySQL only): a statement every transaction runs first, which must change exactly one row,
   * else the transaction rolls back with a FencedError (service/ha/fence.ts). undefined: none.
   */
  setFence?(fence: Statement | undefined): void;
  close(): Promise<void>;
}

/**
 * A failed write. `transient`: the database is away or busy (retry the same statements later);
 * otherwise the statements themselves cannot be written (a constraint, a value too long).
 */
export class StoreError extends Error {
  constructor(message: string, readonly transient: boolean, readonly code?: string) {
    super(message);
  }
}

/**
 * The write-fence refused the transaction: another node leads now (or this one gave up), so
 * nothing was written and nothing will be. Neither transient nor the rows' fault: the end.
 */
export class FencedError extends StoreError {
  constructor(message: string) {
    super(message, false, 'FENCED');
  }
}

/** The schema-version table every component shares. */
export const SCHEMA_TABLE = 'sca_service_schema';
