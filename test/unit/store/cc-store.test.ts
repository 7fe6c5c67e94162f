// The call-control store on both real backends (a SQLite file; a private database on the local
// MariaDB): what the engine writes through the committer is what a restarted service loads, CDRs
// and the balance history read back newest first and filtered, later changes replace or delete
// rows, a CDR written twice is kept once, and rows that make no sense are skipped and counted.
import t from 'tap';
import { CcEngine } from '../../../service/cc/engine.js';
import type { CcWrite } from '../../../service/cc/types.js';
import { CcStore } from '../../../service/store/cc-tables.js';
import { Committer } from '../../../service/store/committer.js';
import type { Database } from '../../../service/store/database.js';
import { BACKENDS, dropTestDatabases } from '../../support/store-backends.js';

t.teardown(dropTestDatabases);

const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined };
const NOW = 1_700_000_000;
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const admitReq = (callId: string) => ({
  callId, fromTag: `f-${callId}`, from: `<sip:${ALICE}>;tag=f-${callId}`, ruri: 'sip:200@example.com', diverter: undefined, sourceIp: '192.0.2.1', door: 'socket' as const,
});

/** An engine result's writes; a refused operation fails the test. */
function writesOf(r: { ok?: boolean; writes?: readonly CcWrite[] } | { ok: false; message: string }): readonly CcWrite[] {
  if ('ok' in r && r.ok === false) throw new Error(`refused: ${(r as { message: string }).message}`);
  return (r as { writes: readonly CcWrite[] }).writes;
}

async function opened(db: Database): Promise<{ store: CcStore; committer: Committer; apply: (w: readonly CcWrite[]) => Promise<void> }> {
  await db.open();
  const store = new CcStore(db);
  await store.migrate();
  const committer = new Committer(db, quiet);
  return { store, committer, apply: (w) => committer.commit(store.changes(w)) };
}

for (const backend of BACKENDS) {
  t.test(`${backend.name}: what the engine wrote is what a restart loads; CDRs and history read back`, async (t) => {
    const fresh = await backend.fresh();
    const db = fresh.database();
    const { committer, apply } = await opened(db);
    const e = new CcEngine();
    await apply(writesOf(e.setAccount(ALICE, { prepaid: true, balance: 1000, maxCalls: 3 }, NOW)));
    await apply(writesOf(e.setAccount(BOB, { maxDuration: 60 }, NOW)));
    await apply(writesOf(e.setRate({ plan: 'default', prefix: '2', connectFee: 5, pricePerMinute: 60, initialPulse: 1, nextPulse: 1 })));
    await apply(writesOf(e.setBlacklisted('source_ip', '203.0.113.9', true, 'scanner')));
    const first = e.admit(admitReq('c1'), NOW + 1);
    t.equal(first.decision.result, 'admitted');
    await apply(first.writes);
    await apply(e.answered({ callId: 'c1', hEntry: 11, hId: 22, toTag: 'tt' }, NOW + 2).writes);
    await apply(e.admit(admitReq('c2'), NOW + 3).writes);
    await apply(writesOf(e.addBalance(ALICE, 500, 'top-up', 'ops', NOW + 4)));
    const end = e.ended({ callId: 'c1', cause: 'caller' }, NOW + 34);
    t.ok(end.cdr, 'the end makes a CDR');
    await apply(end.writes);
    t.equal(committer.pending, 0);
    await db.close();

    // A restart: another connection loads everything the engine holds.
    const again = fresh.database();
    const { store: loaded } = await opened(again);
    t.teardown(() => again.close());
    const { snapshot, skipped } = await loaded.load();
    t.equal(skipped, 0);
    const byId = <T extends { id: string }>(xs: readonly T[]) => [...xs].sort((a, b) => a.id.localeCompare(b.id));
    t.same(byId(snapshot.accounts), e.listAccounts(), 'accounts, with the debited balance');
    t.equal(snapshot.accounts.find((a) => a.id === ALICE)!.balance, e.account(ALICE)!.balance);
    t.ok(e.account(ALICE)!.balance < 1500, 'the call was debited');
    t.same(snapshot.rates, e.rates(), 'rates');
    t.same(snapshot.blacklist, e.blacklisted(), 'blacklist');
    // A call is kept as JSON: a field without a value comes back absent rather than undefined.
    const json = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;
    t.same(json(snapshot.calls), json(e.callsOf()), 'the call in progress, and not the ended one');
    const restored = new CcEngine();
    restored.restore(snapshot);
    t.same(json(restored.callsOf()), json(e.callsOf()), 'a restored engine counts the same calls');
    t.equal(restored.reserved(ALICE), e.reserved(ALICE), 'and reserves the same credit');

    const cdrs = await loaded.cdrs({ account: ALICE, limit: 10 });
    t.same(cdrs, [end.cdr], 'the CDR, field for field');
    t.same(await loaded.cdrs({ account: BOB, limit: 10 }), [], 'filtered by account');
    t.same(await loaded.cdrs({ fromMs: end.cdr!.startMs + 1, limit: 10 }), [], 'and by time: from');
    t.same(await loaded.cdrs({ toMs: end.cdr!.startMs, limit: 10 }), [], 'to (exclusive)');
    t.equal((await loaded.cdrs({ fromMs: end.cdr!.startMs, toMs: end.cdr!.startMs + 1, limit: 10 })).length, 1);
    const history = await loaded.history(ALICE, 10);
    t.same(history.map((h) => [h.amount, h.note, h.who]), [[-end.cdr!.amount, 'call c1', 'call'], [500, 'top-up', 'ops'], [1000, 'set', '']],
      'newest first: the call\'s debit, the top-up, the opening balance');
    t.same(history.map((h) => h.balance), [e.account(ALICE)!.balance, 1500, 1000], 'each with the balance after it');
    t.equal((await loaded.history(ALICE, 1)).length, 1, 'limited');
  });

  t.test(`${backend.name}: later changes replace and delete rows; a CDR written twice is kept once`, async (t) => {
    const fresh = await backend.fresh();
    const db = fresh.database();
    const { store, apply } = await opened(db);
    t.teardown(() => db.close());
    const e = new CcEngine();
    await apply(writesOf(e.setAccount(ALICE, { maxCalls: 1 }, NOW)));
    await apply(writesOf(e.setAccount(BOB, { maxCalls: 1 }, NOW)));
    await apply(writesOf(e.setRate({ plan: 'default', prefix: '2', connectFee: 5, pricePerMinute: 60, initialPulse: 1, nextPulse: 1 })));
    await apply(writesOf(e.setRate({ plan: 'gold', prefix: '3', connectFee: 0, pricePerMinute: 30, initialPulse: 60, nextPulse: 60 })));
    await apply(writesOf(e.setBlacklisted('caller', BOB, true, 'fraud')));
    await apply(writesOf(e.setAccount(ALICE, { maxCalls: null, maxDuration: 120, plan: 'gold' }, NOW + 1)));
    await apply(writesOf(e.deleteAccount(BOB)));
    await apply(writesOf(e.setBlacklisted('caller', BOB, false, '')));
    await apply(writesOf(e.loadRates('default', [{ plan: 'default', prefix: '4', connectFee: 1, pricePerMinute: 10, initialPulse: 1, nextPulse: 1 }])));
    const call = e.admit(admitReq('c9'), NOW + 2);
    await apply(call.writes);
    const end = e.ended({ callId: 'c9', cause: 'failed', code: 486 }, NOW + 3);
    await apply(end.writes);
    await apply(end.writes.filter((w) => w.kind === 'cdr')); // the same CDR again (a replayed end)

    const { snapshot } = await store.load();
    t.same(snapshot.accounts, [{ id: ALICE, maxCalls: undefined, maxDuration: 120, prepaid: false, balance: 0, plan: 'gold' }], 'Bob is gone, Alice changed');
    t.same([...snapshot.rates].sort((a, b) => a.prefix.localeCompare(b.prefix)).map((r) => `${r.plan}/${r.prefix}`), ['gold/3', 'default/4'], 'the default plan replaced whole');
    t.same(snapshot.blacklist, [], 'unlisted');
    t.same(snapshot.calls, [], 'no call left');
    const cdrs = await store.cdrs({ limit: 10 });
    t.equal(cdrs.length, 1, 'one CDR');
    t.same([cdrs[0]!.cause, cdrs[0]!.code, cdrs[0]!.connectMs], ['failed', 486, undefined], 'a failed call with its code');
  });

  t.test(`${backend.name}: rows that make no sense are skipped and counted; the others load`, async (t) => {
    const fresh = await backend.fresh();
    const db = fresh.database();
    const { store, apply } = await opened(db);
    t.teardown(() => db.close());
    const e = new CcEngine();
    await apply(writesOf(e.setAccount(ALICE, { maxCalls: 5 }, NOW)));
    await apply(e.admit(admitReq('good'), NOW).writes);
    await fresh.exec("INSERT INTO cc_calls (call_id, account, state, data) VALUES ('broken', 'x@y', 'setup', '{not json')");
    await fresh.exec(`INSERT INTO cc_calls (call_id, account, state, data) VALUES ('mismatch', 'x@y', 'setup', '${JSON.stringify({ ...e.callsOf()[0], callId: 'other' })}')`);
    await fresh.exec(`INSERT INTO cc_calls (call_id, account, state, data) VALUES ('ringing', 'x@y', 'setup', '${JSON.stringify({ ...e.callsOf()[0], callId: 'ringing', state: 'ringing' })}')`);
    await fresh.exec(`INSERT INTO cc_calls (call_id, account, state, data) VALUES ('noaccount', 'x@y', 'setup', '${JSON.stringify({ ...e.callsOf()[0], callId: 'noaccount', account: 7 })}')`);
    const { snapshot, skipped } = await store.load();
    t.equal(skipped, 4, 'four bad rows');
    t.same(snapshot.calls.map((c) => c.callId), ['good'], 'the good call loads');
    t.equal(snapshot.accounts.length, 1);
  });
}
