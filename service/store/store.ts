import type { LineSnapshot } from '../sca/snapshot.js';
import type { Appearance, EventPackage, Subscription } from '../sca/types.js';

/**
 * Where the engine's lines live between restarts. A line (one AoR: its subscriptions and
 * appearances) is the unit of writing: saveLines replaces each given line in one transaction.
 */
export interface Store {
  readonly kind: string;
  open(): Promise<void>;
  loadLines(): Promise<{ lines: LineSnapshot[]; skipped: number }>;
  saveLines(lines: readonly LineSnapshot[]): Promise<void>;
  close(): Promise<void>;
}

/** The sca module's state ints (spec §2.2) for the sca_subscriptions.state column. */
const STATE_INT: Record<string, number> = { active: 0, pending: 1, terminated: 2, deactivated: 3, giveup: 4, noresource: 5, probation: 6, rejected: 7, timeout: 8 };
export const EVENT_INT: Record<EventPackage, number> = { 'call-info': 1, 'line-seize': 2 };

/** One sca_subscriptions row, in the kamctl schema's columns (app_idx carries the line-seize index). */
export interface SubscriptionRow {
  id?: number;
  subscriber: string;
  aor: string;
  event: number;
  expires: number;
  state: number;
  app_idx: number;
  call_id: string;
  from_tag: string;
  to_tag: string;
  record_route: string | null;
  notify_cseq: number;
  subscribe_cseq: number;
  server_id: number;
}

export interface AppearanceRow {
  aor: string;
  app_index: number;
  state: string;
  owner: string;
  callee: string;
  uri: string;
  call_id: string | null;
  from_tag: string | null;
  to_tag: string | null;
  direction: string | null;
  ctime: number;
  mtime: number;
  pending: string | null;
}

export function subscriptionRow(s: Subscription, serverId: number): SubscriptionRow {
  return {
    subscriber: s.subscriber, aor: s.aor, event: EVENT_INT[s.event], expires: Math.round(s.expires),
    state: s.state === 'active' ? 0 : STATE_INT[s.reason ?? 'terminated']!, app_idx: s.index, call_id: s.callId,
    from_tag: s.fromTag, to_tag: s.toTag, record_route: s.routeSet.length > 0 ? s.routeSet.join(',') : null,
    notify_cseq: s.notifyCseq, subscribe_cseq: 0, server_id: serverId,
  };
}

/** A row back to a subscription; undefined (and counted as skipped) when it cannot be one. */
export function subscriptionFromRow(r: SubscriptionRow): Subscription | undefined {
  const event: EventPackage | undefined = Number(r.event) === 1 ? 'call-info' : Number(r.event) === 2 ? 'line-seize' : undefined;
  if (!event || !r.subscriber || !r.aor || !r.call_id || !r.to_tag || !r.from_tag) return undefined;
  const expires = Number(r.expires);
  if (!Number.isFinite(expires)) return undefined;
  return {
    aor: r.aor, event, subscriber: r.subscriber, expires, state: Number(r.state) === 0 ? 'active' : 'terminated', reason: undefined,
    index: Number(r.app_idx) || 0, callId: r.call_id, fromTag: r.from_tag, toTag: r.to_tag,
    notifyCseq: Number(r.notify_cseq) || 0,
    routeSet: r.record_route ? splitRoutes(r.record_route) : [],
    seq: Number(r.id ?? 0),
  };
}

const splitRoutes = (rr: string): string[] => rr.split(/,(?=\s*<)/).map((x) => x.trim()).filter((x) => x !== '');

export function appearanceRow(aor: string, a: Appearance): AppearanceRow {
  return {
    aor, app_index: a.index, state: a.state, owner: a.owner, callee: a.callee, uri: a.uri,
    call_id: a.dialog?.callId ?? null, from_tag: a.dialog?.fromTag ?? null, to_tag: a.dialog?.toTag ?? null,
    direction: a.direction ?? null, ctime: a.ctime, mtime: a.mtime, pending: a.pending ? JSON.stringify(a.pending) : null,
  };
}

const STATES = new Set(['seized', 'progressing', 'alerting', 'active-pending', 'active', 'held', 'held-private']);

export function appearanceFromRow(r: AppearanceRow): Appearance | undefined {
  const index = Number(r.app_index);
  if (!STATES.has(r.state) || !Number.isInteger(index) || index < 1 || !r.owner) return undefined;
  let pending;
  try {
    pending = r.pending ? JSON.parse(r.pending) : undefined;
  } catch {
    return undefined;
  }
  return {
    index, state: r.state as Appearance['state'], owner: r.owner, callee: r.callee ?? '', uri: r.uri ?? '',
    dialog: r.call_id ? { callId: r.call_id, fromTag: r.from_tag ?? '', toTag: r.to_tag ?? '' } : undefined,
    direction: r.direction === 'incoming' || r.direction === 'outgoing' ? r.direction : undefined,
    ctime: Number(r.ctime), mtime: Number(r.mtime), pending,
  };
}

/** Groups loaded rows into lines; rows that do not make sense are skipped and counted. */
export function linesFromRows(subRows: SubscriptionRow[], appRows: AppearanceRow[], lineAors: string[]): { lines: LineSnapshot[]; skipped: number } {
  const lines = new Map<string, { subscriptions: Subscription[]; appearances: Appearance[] }>();
  const line = (aor: string) => {
    let l = lines.get(aor);
    if (!l) lines.set(aor, (l = { subscriptions: [], appearances: [] }));
    return l;
  };
  let skipped = 0;
  for (const aor of lineAors) line(aor);
  for (const r of subRows) {
    const s = subscriptionFromRow(r);
    if (s) line(s.aor).subscriptions.push(s);
    else skipped++;
  }
  for (const r of appRows) {
    const a = appearanceFromRow(r);
    if (a) line(r.aor).appearances.push(a);
    else skipped++;
  }
  return { lines: [...lines].map(([aor, l]) => ({ aor, shared: true, ...l })), skipped };
}
