import type { Statement } from '../store/database.js';

export { FencedError } from '../store/database.js';

/**
 * The write-fence: the statement every leader transaction starts with (Database.setFence). It
 * must be a write: Galera certifies write sets only, so a locking read of the epoch would let a
 * zombie leader commit through another node; this UPDATE puts the fence row in the write set,
 * and a takeover (which rewrites the row's epoch) and a zombie's commit cannot both succeed.
 * A count other than 1 means the epoch moved on: the transaction rolls back with a FencedError.
 */
export function fenceStatement(name: string, epoch: number): Statement {
  return { sql: 'UPDATE sca_ha_fence SET seq = seq + 1 WHERE name = ? AND epoch = ?', params: [name, epoch] };
}

/** Epochs start at 1: this one matches no row, so nothing is written (a standby, a lost leader). */
export const CLOSED_EPOCH = -1;

export function closedFence(name: string): Statement {
  return fenceStatement(name, CLOSED_EPOCH);
}
