// Seeds flow (d) of the comparison: LINES shared lines of PER_LINE call-info subscribers each,
// the same subscriptions in both stores, so each side starts its run with them restored:
//   - sca-service's store (SQLite, through the service's own ScaStore),
//   - the native sca module's sca_subscriptions table (SQLite, Kamailio's schema),
//   - SIPp's CSV: row k is the subscription whose Call-ID is ref-k@bench (SIPp -cid_str "ref-%u@bench").
// Row order walks the lines first, so consecutive refreshes hit different lines.
//   node --import tsx scripts/bench/seed-refresh.ts --dir DIR --port SIPP_PORT [--lines 10000] [--per-line 10] [--domain 127.0.0.1]
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import type { ScaWrite } from '../../service/sca/journal.js';
import type { Subscription } from '../../service/sca/types.js';
import { Committer } from '../../service/store/committer.js';
import { openDatabase } from '../../service/store/open-database.js';
import { ScaStore } from '../../service/store/sca-tables.js';

const { values } = parseArgs({ options: {
  dir: { type: 'string' }, port: { type: 'string' }, lines: { type: 'string', default: '10000' },
  'per-line': { type: 'string', default: '10' }, domain: { type: 'string', default: '127.0.0.1' },
} });
if (!values.dir || !values.port) { console.error('usage: seed-refresh.ts --dir DIR --port SIPP_PORT [--lines N] [--per-line K]'); process.exit(2); }
const LINES = Number(values.lines);
const PER_LINE = Number(values['per-line']);
const dir = path.resolve(values.dir);
mkdirSync(dir, { recursive: true });
const expires = Math.floor(Date.now() / 1000) + 7200;

/** Subscription k (1-based): line (k-1) mod LINES, member (k-1) div LINES. */
function row(k: number): { user: string; contactUser: string; sub: Subscription } {
  const line = (k - 1) % LINES;
  const user = `aor${line}`;
  const contactUser = `r${k}`;
  const aor = `sip:${user}@${values.domain}`;
  return { user, contactUser, sub: {
    aor, event: 'call-info', subscriber: `sip:${contactUser}@127.0.0.1:${values.port}`, expires, state: 'active', reason: undefined,
    index: 0, callId: `ref-${k}@bench`, fromTag: `rf${k}`, toTag: `rt${k}`, notifyCseq: 1, routeSet: [], seq: k,
  } };
}
const total = LINES * PER_LINE;
const rows = Array.from({ length: total }, (_, i) => row(i + 1));

// SIPp's CSV.
writeFileSync(path.join(dir, 'refresh.csv'), ['SEQUENTIAL', ...rows.map((r) => `${r.user};${r.contactUser};${r.sub.fromTag};${r.sub.toTag};`)].join('\n') + '\n');

// sca-service's store.
const ours = path.join(dir, 'ours.sqlite');
for (const f of [ours, `${ours}-wal`, `${ours}-shm`]) rmSync(f, { force: true });
const quiet = { error: (o: object, m: string) => console.error(m, o), warn: () => undefined, info: () => undefined };
const db = openDatabase(`sqlite:${ours}`);
await db.open();
const tables = new ScaStore(db, 0);
await tables.migrate();
const committer = new Committer(db, quiet);
const byLine = new Map<string, Subscription[]>();
for (const r of rows) (byLine.get(r.sub.aor) ?? byLine.set(r.sub.aor, []).get(r.sub.aor)!).push(r.sub);
let batch: ScaWrite[] = [];
for (const [aor, subs] of byLine) {
  batch.push({ kind: 'line', aor, shared: true }, ...subs.map((s): ScaWrite => ({ kind: 'subscription', aor, event: s.event, subscriber: s.subscriber, value: s })));
  if (batch.length >= 10_000) { await committer.commit(tables.changes(batch)); batch = []; }
}
if (batch.length > 0) await committer.commit(tables.changes(batch));
await committer.drain(60_000);
await db.close();

// The native module's table (restored at its start; state 0 = active, event 1 = call-info).
const native = path.join(dir, 'native.sqlite');
rmSync(native, { force: true });
const n = new Database(native);
n.exec([
  '/usr/share/kamailio/db_sqlite/standard-create.sql',
  '/usr/share/kamailio/db_sqlite/sca-create.sql',
].map((f) => readFileSync(f, 'utf8')).join('\n'));
const insert = n.prepare("INSERT INTO sca_subscriptions (subscriber, aor, event, expires, state, app_idx, call_id, from_tag, to_tag, record_route, notify_cseq, subscribe_cseq, server_id) VALUES (?, ?, 1, ?, 0, 0, ?, ?, ?, '', 1, 1, 0)");
n.transaction(() => { for (const r of rows) insert.run(r.sub.subscriber, r.sub.aor, expires, r.sub.callId, r.sub.fromTag, r.sub.toTag); })();
n.close();
console.log(`seeded ${total} call-info subscriptions on ${LINES} lines in ${dir} (ours.sqlite, native.sqlite, refresh.csv)`);

