// Call control's CDR table on both real backends (a SQLite file; a database on the local MariaDB):
// schema 3 adds the exact duration beside the billed seconds, older rows read without it.
import t from 'tap';
import type { Cdr } from '../../../service/cc/types.js';
import { cdrView } from '../../../service/rpc/cc-methods.js';
import { CC_MIGRATIONS, CcStore } from '../../../service/store/cc-tables.js';
import { Committer } from '../../../service/store/committer.js';
import { openDatabase } from '../../../service/store/open-database.js';
import { BACKENDS, dropTestDatabases } from '../../support/store-backends.js';

t.teardown(dropTestDatabases);
const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined };
const T = Date.UTC(2027, 0, 15, 12);
export const cdr = (o: Partial<Cdr> = {}): Cdr => ({
  callId: 'c1@host', account: 'joe@example.com', from: '<sip:joe@example.com>', to: 'sip:200@example.com', sourceIp: '192.0.2.10',
  startMs: T, connectMs: T + 1000, endMs: T + 1035, setupSeconds: 1, durationSeconds: 1, durationMs: 35, billableSeconds: 30, connectFee: 5, amount: 35,
  ratePrefix: '31', cause: 'caller', code: undefined, ...o,
});

for (const backend of BACKENDS) {
  t.test(`${backend.name}: schema 3 keeps duration_ms beside duration; CDRs written before it read as null`, async (t) => {
    const fresh = await backend.fresh();
    const db = openDatabase(fresh.url);
    await db.open();
    t.teardown(() => db.close());
    t.equal(await db.migrate('cc', CC_MIGRATIONS.slice(0, 2)), 2, 'a store of the previous release');
    await fresh.exec(`INSERT INTO cc_cdrs (call_id, account, from_uri, to_uri, source_ip, start_ms, connect_ms, end_ms, setup_seconds, duration, billable_seconds, connect_fee, amount, cause)
      VALUES ('old@host', 'joe@example.com', '<sip:joe@example.com>', 'sip:200@example.com', '192.0.2.10', ${T - 60_000}, ${T - 59_000}, ${T - 50_000}, 1, 9, 9, 0, 9, 'caller')`);
    const store = new CcStore(db);
    t.equal(await store.migrate(), 3);
    t.equal(await store.migrate(), 3, 'applied once');
    const committer = new Committer(db, quiet);
    await committer.commit(store.changes([{ kind: 'cdr', cdr: cdr() }]));
    const [now, old] = await store.cdrs({ limit: 10 });
    t.same([now!.durationSeconds, now!.durationMs, now!.billableSeconds], [1, 35, 30], 'a 35 ms call: 1 s billed, 35 ms kept');
    t.same([old!.durationSeconds, old!.durationMs], [9, undefined], 'an older row has no exact duration');
    t.same([cdrView(now!).duration, cdrView(now!).duration_ms, cdrView(old!).duration_ms], [1, 35, null], 'cc.cdrs shows both');
  });

  t.test(`${backend.name}: the CDR file's reading of the table: in id order from a cursor, which is stored`, async (t) => {
    const fresh = await backend.fresh();
    const db = openDatabase(fresh.url);
    await db.open();
    t.teardown(() => db.close());
    const store = new CcStore(db);
    await store.migrate();
    const committer = new Committer(db, quiet);
    const source = store.cdrSource((changes) => void committer.commit(changes));
    t.same([await source.lastId(), await source.cursor(), await source.after(0, 10)], [0, undefined, []], 'an empty table');
    await committer.commit(store.changes(['a', 'b', 'c', 'd'].map((id, i) => ({ kind: 'cdr' as const, cdr: cdr({ callId: id, startMs: T - i }) }))));
    const all = await source.after(0, 10);
    t.same(all.map((r) => r.cdr.callId), ['a', 'b', 'c', 'd'], 'in the order they were written, not by start');
    const ids = all.map((r) => r.id);
    t.same((await source.after(ids[1]!, 1)).map((r) => r.cdr.callId), ['c'], 'after an id, at most limit');
    t.same([await source.countAfter(ids[0]!), await source.nthAfter(ids[0]!, 2), await source.nthAfter(ids[0]!, 9), await source.lastId()], [3, ids[2], undefined, ids[3]]);
    source.saveCursor({ lastId: ids[2]!, file: '2049:123456789012', offset: 1234 });
    source.saveCursor({ lastId: ids[3]!, file: '2049:123456789012', offset: 5678 });
    await committer.drain(2000);
    t.same(await source.cursor(), { lastId: ids[3], file: '2049:123456789012', offset: 5678 }, 'the latest cursor');
  });
}
