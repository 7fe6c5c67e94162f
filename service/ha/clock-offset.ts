/**
 * The offset of the database's clock from this node's, corrected for the round trip: the
 * database read its clock somewhere between send and receive, so compare it with the midpoint.
 * The error is at most half the round trip.
 */
export interface ClockSample {
  /** Local wall clock (ms since the epoch) when the question was sent and when the answer came. */
  readonly sentWallMs: number;
  readonly receivedWallMs: number;
  /** The database's clock, seconds since the epoch. */
  readonly dbSeconds: number;
}

/** Database minus local, in seconds; positive: this node's clock is behind. */
export function clockOffset(s: ClockSample): { offsetS: number; rttMs: number } {
  const midS = (s.sentWallMs + s.receivedWallMs) / 2000;
  return { offsetS: s.dbSeconds - midS, rttMs: s.receivedWallMs - s.sentWallMs };
}
