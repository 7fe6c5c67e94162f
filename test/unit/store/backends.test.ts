// Both store backends for real (a SQLite file; a database on the local MariaDB): migrations,
// line round trips, server_id isolation, bad rows.
import t from 'tap';
import { ScaEngine } from '../../../service/sca/engine.js';
import { AOR, Bench, CI, P1, P2, P3, SDP, B, reply, subscribeMsg } from '../../support/sip-fixture.js';
import { BACKENDS, dropTestDatabases } from '../../support/store-backends.js';

t.teardown(dropTestDatabases);

const P3_FLOW = { proto: 'tcp', address: '198.51.100.7', port: 40123, socket: 'tcp:192.0.2.1:5060', proxy: 'edge-b' } as const;
const BOB_FLOW = { proto: 'udp', address: '203.0.113.9', port: 5062, socket: 'udp:192.0.2.1:5060' } as const;

const KAMCTL_COLUMNS = ['id', 'subscriber', 'aor', 'event', 'expires', 'state', 'app_idx', 'call_id', 'from_tag', 'to_tag', 'record_route', 'notify_cseq', 'subscribe_cseq', 'server_id'];

for (const backend of BACKENDS) {
  t.test(`${backend.name}: migrations create the kamctl sca_subscriptions layout, version 2, and our tables, once (schema 2: one row per subscriber, AoR and event; 3: flows beside it; 4: the proxy of a flow)`, async (t) => {
    const db = await backend.fresh();
    const store = db.make();
    await store.open();
    t.equal(await db.version(store), 4);
    await store.close();
    const again = db.make();
    await again.open();
    t.equal(await db.version(again), 4, "a second start applies nothing twice");
    await again.close();
    const cols = backend.name === 'sqlite'
      ? (await db.query('PRAGMA table_info(sca_subscriptions)')).map((c) => c.name)
      : (await db.query("SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'sca_subscriptions' ORDER BY ordinal_position")).map((c) => c.name ?? c.NAME);
    t.same(cols, KAMCTL_COLUMNS);
    t.same((await db.query("SELECT table_version FROM version WHERE table_name = 'sca_subscriptions'")).map((r) => Number(r.table_version)), [2]);
  });

  t.test(`${backend.name}: lines round-trip: subscriptions, appearances with dialogs, route sets, CSeqs`, async (t) => {
    const b = new Bench();
    b.callInfo(P2, { recordRoute: '<sip:p1.example.com;lr>, <sip:p2.example.com;lr>' });
    b.callInfo(P1);
    b.lineSeize(P1, 1);
    b.req('INVITE', { callId: 'c1', from: `<${AOR}>`, fromTag: 'f1', to: `"Bob" <${B}>`, contact: P1, callInfo: CI(1), body: SDP(null) });
    b.engine.callEvent({ hook: 'reply', msg: reply(200, 'OK', 'INVITE', { callId: 'c1', from: `<${AOR}>`, fromTag: 'f1', to: `"Bob" <${B}>`, toTag: 't1', contact: 'sip:200@192.0.2.20' }),
      flow: BOB_FLOW, now: b.now });
    // A phone behind NAT: its flow is stored beside its native row.
    b.engine.subscribe({ msg: subscribeMsg(P3, { callId: 'nat1', fromTag: 'nf1' }), to_tag: 'nt1', flow: P3_FLOW, now: b.now });
    const db = await backend.fresh();
    const store = db.make();
    await store.open();
    await store.apply(b.takeWrites());
    await store.close();

    const reopened = db.make();
    await reopened.open();
    const { lines, skipped } = await reopened.loadLines();
    t.equal(skipped, 0);
    const e = new ScaEngine();
    e.restore(lines, b.now);
    t.same(e.listAppearances(), b.engine.listAppearances());
    const bySub = (x: { subscriber: string; event: string }, y: { subscriber: string; event: string }) => x.subscriber.localeCompare(y.subscriber) || x.event.localeCompare(y.event);
    const strip = (list: ReturnType<ScaEngine['listSubscriptions']>) => list.map((s) => ({ ...s, expires: Math.round(s.expires), ttl: 0 })).sort(bySub);
    t.same(strip(e.listSubscriptions(b.now)), strip(b.engine.listSubscriptions(b.now)));
    t.same(e.showSubscription(AOR, 'call-info', P2, b.now)[0]!.route_set, ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    t.same(e.subscribers(AOR, b.now)[0]!.call_info.map((s) => s.subscriber), [P3, P1, P2], 'group order (newest first) survives');
    t.same(e.ctx.subscriptions.get(AOR, 'call-info', P3)!.flow, P3_FLOW, 'a subscription\'s flow survives, and the proxy it came through');
    t.equal(e.ctx.subscriptions.get(AOR, 'call-info', P1)!.flow, undefined, 'one without stays without');
    t.same(e.ctx.appearances.get(AOR, 1)!.calleeFlow, BOB_FLOW, 'where the held party answered from survives');
    const before = b.engine.showSubscription(AOR, 'call-info', P1, b.now)[0]!.notify_cseq;
    const n = e.notifyEveryone(b.now).notifies.find((x) => x.subscriber === P1)!;
    t.equal(n.headers.find(([k]) => k === 'CSeq')![1], `${before + 1} NOTIFY`, 'the next NOTIFY continues the dialog CSeq');
    await reopened.close();
  });

  t.test(`${backend.name}: a line that stops being shared is deleted; other servers' rows are left alone`, async (t) => {
    const db = await backend.fresh();
    const mine = db.make(1);
    const other = db.make(2);
    await mine.open();
    await other.open();
    const b = new Bench();
    const ci = b.callInfo(P1);
    const writes = b.takeWrites();
    await mine.apply(writes);
    await other.apply(writes.map((w) => (w.kind === 'subscription' && w.value ? { ...w, value: { ...w.value, callId: `${w.value.callId}-2` } } : w)));
    // The line stops being shared: its only watcher unsubscribes, then it calls without Call-Info.
    b.subscribe(P1, { callId: ci.callId, fromTag: ci.fromTag, toTag: ci.toTag, expires: 0 });
    b.req('INVITE', { callId: 'c9', from: `<${AOR}>`, fromTag: 'f9', to: `<${B}>`, contact: P1, body: SDP(null) });
    await mine.apply(b.takeWrites());
    t.equal((await mine.loadLines()).lines.length, 0);
    t.equal((await other.loadLines()).lines[0]!.subscriptions.length, 1, 'server 2 keeps its line');
    await mine.close();
    await other.close();
  });

  t.test(`${backend.name}: bad rows are skipped and counted, never a crash`, async (t) => {
    const db = await backend.fresh();
    const store = db.make();
    await store.open();
    const b = new Bench();
    b.callInfo(P1);
    b.lineSeize(P1, 1);
    await store.apply(b.takeWrites());
    await db.exec("INSERT INTO sca_subscriptions (subscriber, aor, event, expires, state, app_idx, call_id, from_tag, to_tag, notify_cseq, subscribe_cseq) VALUES ('sip:x@y', 'sip:a@b', 9, 0, 0, 0, 'c', 'f', 't', 0, 0)");
    await db.exec("INSERT INTO sca_appearances (aor, app_index, state, owner, callee, uri, ctime, mtime) VALUES ('sip:a@b', 2, 'dancing', 'x', '', '', 0, 0)");
    await db.exec("INSERT INTO sca_appearances (aor, app_index, state, owner, callee, uri, ctime, mtime, pending) VALUES ('sip:a@b', 3, 'held', 'x', '', '', 0, 0, '{broken')");
    const { lines, skipped } = await store.loadLines();
    t.equal(skipped, 3);
    const e = new ScaEngine();
    e.restore(lines, b.now);
    t.equal(e.listAppearances().length, 1, 'the good rows are there');
    await store.close();
  });
}
