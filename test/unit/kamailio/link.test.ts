// The Kamailio link against in-process fakes of Kamailio's evapi side: the SCA engine's methods
// through the whole service (buildApp), and the link alone with a test engine's method table.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { z } from 'zod';
import { buildApp, type ScaApp } from '../../../service/app.js';
import { loadConfig } from '../../../service/config.js';
import { noEffects, type OutboundNotify } from '../../../service/effects.js';
import { KamailioLink, type ApplyEffects } from '../../../service/kamailio/link.js';
import { renderNotify } from '../../../service/kamailio/wire.js';
import { fakeKamailio, until, type FakeKamailio } from '../../support/fake-kamailio.js';
import { CI, P1, subscribeMsg } from '../../support/sip-fixture.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/** The whole service connected to fake Kamailios; stopped at teardown. */
async function service(t: Test, ...fakes: FakeKamailio[]): Promise<ScaApp> {
  const cfg = loadConfig({ env: {}, overrides: {
    evapi_address: fakes.map((k) => `127.0.0.1:${k.port}`), http_port: 0, log_level: 'silent',
    db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'sca-link-'))}/sca.sqlite`, call_control_socket: '',
  } });
  if (!cfg.ok) throw new Error(cfg.error);
  const a = buildApp(cfg.config, { clock: () => 1000 });
  await a.start();
  t.teardown(async () => { await a.stop(); for (const k of fakes) await k.close(); });
  await until(() => a.link.connected === fakes.length);
  return a;
}

async function connected(t: Test): Promise<{ k: FakeKamailio; a: ScaApp }> {
  const k = await fakeKamailio();
  return { k, a: await service(t, k) };
}

t.test('a suspended SUBSCRIBE is answered with its transaction ids, reply and NOTIFYs', async (t) => {
  const { k } = await connected(t);
  k.send({ jsonrpc: '2.0', id: '7:9', method: 'sca.subscribe', params: { tindex: 7, tlabel: 9, msg: subscribeMsg(P1), to_tag: 'tt1' } });
  const [answer] = (await k.next(1)) as Array<{ id: string; result: { tindex: number; tlabel: number; code: number; reason: string; hdrs: string; notifies: Array<{ ruri: string; hdrs: string }> } }>;
  t.equal(answer!.id, '7:9');
  t.same([answer!.result.tindex, answer!.result.tlabel, answer!.result.code, answer!.result.reason], [7, 9, 202, 'Accepted']);
  t.match(answer!.result.hdrs, /^Event: call-info\r\nContact: [^\r]+\r\nAllow-Events: call-info, line-seize\r\nExpires: 3600\r\n$/);
  t.equal(answer!.result.notifies.length, 1);
  t.equal(answer!.result.notifies[0]!.ruri, P1);
  t.match(answer!.result.notifies[0]!.hdrs, /^From: <sip:100@pbx.example.com>;tag=tt1\r\nTo: [^\r]+\r\nCall-ID: [^\r]+\r\nCSeq: 1 NOTIFY\r\n/);
});

t.test('params written as <name>_b64 (the routes\' base64 text) are decoded; a value that is not base64 is refused', async (t) => {
  const { k } = await connected(t);
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  // A quote and a backslash in the Call-ID (SIP allows both): what jansson_set used to escape.
  const msg = subscribeMsg(P1, { callId: 'q"b\\s@10.0.0.11' });
  k.send({ jsonrpc: '2.0', id: '1:1', method: 'sca.subscribe', params: { tindex: 1, tlabel: 1, msg_b64: b64(msg), ruri_b64: b64('sip:100@pbx.example.com'), to_tag_b64: b64('tt1') } });
  const [ok] = (await k.next(1)) as Array<{ result: { code: number; notifies: Array<{ hdrs: string }> } }>;
  t.equal(ok!.result.code, 202, 'decoded, the SUBSCRIBE is handled');
  t.match(ok!.result.notifies[0]!.hdrs, /^From: <[^>]+>;tag=tt1\r\nTo: [^\r]+\r\nCall-ID: q"b\\s@10\.0\.0\.11\r\n/, 'the to-tag and the message came through their _b64 fields');
  k.send({ jsonrpc: '2.0', id: '2:2', method: 'sca.subscribe', params: { tindex: 2, tlabel: 2, msg_b64: b64(subscribeMsg(P1)), to_tag: 'tt2', auth_user_b64: 'not base64!' } });
  const [, bad] = (await k.next(2)) as Array<{ result: { code: number; tindex: number } }>;
  t.same([bad!.result.code, bad!.result.tindex], [500, 2], 'a broken auth_user is refused, not taken as "no auth user"');
});

t.test('bad input from Kamailio gets a JSON-RPC error or a SIP 500, never a crash', async (t) => {
  const { k, a } = await connected(t);
  k.sendRaw('{not json');
  k.send({ jsonrpc: '2.0', id: 1, method: 'sca.subscribe', params: { msg: 5 } });
  k.send({ jsonrpc: '2.0', id: 2, method: 'sca.subscribe', params: { tindex: 1, tlabel: 2, msg: '' } });
  k.send({ jsonrpc: '2.0', id: 3, method: 'sca.nothing', params: {} });
  k.send({ jsonrpc: '2.0', id: 4, method: 'sca.invite', params: { tindex: 3, tlabel: 4, msg: 'INVITE nonsense' } });
  const got = (await k.next(5)) as Array<{ id: unknown; error?: { code: number }; result?: { code: number; tindex: number } }>;
  const byId = (id: unknown) => got.find((g) => g.id === id)!;
  t.equal(byId(null).error?.code, -32700, 'not JSON: parse error');
  t.equal(byId(1).error?.code, -32602, 'no transaction ids: invalid params');
  t.same([byId(2).result?.code, byId(2).result?.tindex], [500, 1], 'transaction ids readable: the SUBSCRIBE still gets an answer');
  t.equal(byId(3).error?.code, -32601, 'unknown method');
  t.same([byId(4).result?.code, byId(4).result?.tindex], [0, 3], 'an unparsable INVITE is relayed untouched');
  t.equal(a.link.counters.bad, 4);
  t.equal(a.link.connected, 1, 'still connected');
});

t.test('frames that are valid JSON but no request (null, [null], a number) get an error answer', async (t) => {
  const { k } = await connected(t);
  for (const raw of ['null', '[null]', '42']) k.sendRaw(raw);
  const got = (await k.next(3)) as Array<{ id: unknown; error?: { code: number } }>;
  t.same(got.map((g) => g.error?.code), [-32600, -32600, -32600]);
});

t.test('call events and NOTIFY replies are answered with the NOTIFYs they cause', async (t) => {
  const { k, a } = await connected(t);
  const engine = a.sca.engine;
  const sub = engine.subscribe({ msg: subscribeMsg(P1), to_tag: 'tt', now: 1000 });
  t.equal(sub.reply.code, 202);
  engine.subscribe({ msg: subscribeMsg(P1, { event: 'line-seize', expires: 15, callInfo: CI(1) }), to_tag: 'ls', now: 1000 });
  const invite = `INVITE sip:200@far.example.net SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nFrom: <sip:100@pbx.example.com>;tag=f1\r\nTo: <sip:200@far.example.net>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <${P1}>\r\nCall-Info: ${CI(1)}\r\nContent-Length: 0\r\n\r\n`;
  k.send({ jsonrpc: '2.0', id: 'e1', method: 'sca.call_event', params: { hook: 'failure', msg: invite, status: '486' } });
  const got = (await k.next(1)) as Array<{ id: string; result: { notifies: Array<{ hdrs: string }> } }>;
  t.equal(got[0]!.id, 'e1');
  t.ok(got[0]!.result.notifies.some((n) => /Subscription-State: terminated;reason=noresource/.test(n.hdrs)), 'the line-seize ends');
  const subCallId = engine.listSubscriptions(1000).find((s) => s.event === 'call-info')!.call_id;
  const acks = k.acks();
  k.send({ jsonrpc: '2.0', id: 'r1', method: 'sca.notify_reply', params: { call_id: subCallId, from_tag: 'tt', code: 481 } });
  await until(() => engine.countSubscriptions('call-info') === 0);
  await until(() => k.acks() > acks, 3000, 'the link.ack that answers a report with nothing in it');
  t.equal(k.received.length, 1, 'answered by the link.ack alone: nothing for Kamailio to decode');
  t.equal(engine.countSubscriptions('call-info'), 0, '481 removed the subscription');
});

t.test('the client reconnects after Kamailio drops it', async (t) => {
  const { k, a } = await connected(t);
  await until(() => k.hellos() === 1);
  t.equal(k.hellos(), 1, 'hello on connecting');
  k.drop();
  await until(() => k.connections() === 2 && a.link.connected === 1 && k.hellos() === 2);
  t.equal(k.connections(), 2);
  t.equal(a.link.connected, 1);
  t.equal(k.hellos(), 2, 'and again after reconnecting');
  // The new connection carries what the service sends: a NOTIFY it starts itself arrives.
  const before = k.received.length;
  t.equal(a.link.sendNotifies([notify(1, 10)]), true);
  await until(() => k.received.length > before);
  t.equal((k.received.at(-1) as { method: string }).method, 'link.notify', 'a NOTIFY goes out on the new connection');
});

t.test('a route set becomes Route headers and the next hop', async (t) => {
  const n = renderNotify({ ruri: 'sip:p@1.2.3.4', route: ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>'], headers: [['From', 'f'], ['To', 't'], ['Call-ID', 'c'], ['CSeq', '1 NOTIFY'], ['Event', 'call-info']] });
  t.equal(n.nexthop, 'sip:p1.example.com;lr');
  t.equal(n.hdrs, 'From: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\nRoute: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\r\nEvent: call-info\r\n');
  t.equal(renderNotify({ ruri: 's', route: [], headers: [] }).nexthop, '');
});

t.test('several Kamailio instances: answers go back where the request came from', async (t) => {
  const ka = await fakeKamailio();
  const kb = await fakeKamailio();
  const a = await service(t, ka, kb);
  kb.send({ jsonrpc: '2.0', id: 'b1', method: 'sca.subscribe', params: { tindex: 1, tlabel: 1, msg: subscribeMsg(P1), to_tag: 'x' } });
  await kb.next(1);
  t.same(kb.received.map((m) => (m as { id: string }).id), ['b1']);
  t.equal(ka.received.length, 0, 'the other instance sees nothing');
  ka.drop();
  await until(() => a.link.connected === 1 || ka.connections() === 2);
  const sub = a.sca.engine.listSubscriptions(1000)[0]!;
  t.equal(sub.subscriber, P1);
  t.ok(a.link.sendNotifies(a.sca.engine.tick(1000 + 7200).notifies), 'service-started NOTIFYs go to a connected instance');
});

// ---- the link alone, with a test engine -------------------------------------------------------

const notify = (i: number, bytes: number): OutboundNotify => ({
  ruri: `sip:p${i}@10.0.0.1`, route: [], callId: `c${i}`, fromTag: 'f', cseq: i, subject: 'sip:a@b',
  headers: [['From', '<sip:a@b>;tag=f'], ['To', '<sip:a@b>;tag=x'], ['Call-ID', `c${i}`], ['CSeq', `${i} NOTIFY`], ['Call-Info', 'x'.repeat(bytes)]],
});

async function bareLink(t: Test, opts: ConstructorParameters<typeof KamailioLink>[2] = {}): Promise<{ k: FakeKamailio; link: KamailioLink }> {
  const k = await fakeKamailio();
  const link = new KamailioLink([`127.0.0.1:${k.port}`], quiet, opts);
  link.start();
  t.teardown(async () => { link.stop(); await k.close(); });
  await until(() => link.connected === 1);
  return { k, link };
}

const applyNow: ApplyEffects = async (effects, answer) => answer(effects.notifies);

t.test('a second engine registers its own methods and is reached through the same link', async (t) => {
  const { k, link } = await bareLink(t);
  const seen: string[] = [];
  link.register({
    'echo.say': {
      params: z.object({ word: z.string().max(20) }).strict(),
      handle: (p) => { seen.push(p.word); return { answer: { said: p.word.toUpperCase() }, effects: noEffects() }; },
    },
  }, applyNow);
  t.throws(() => link.register({ 'echo.say': { params: z.object({}), handle: () => ({ answer: {}, effects: noEffects() }) } }, applyNow), /registered twice/);
  k.send({ jsonrpc: '2.0', id: 'x1', method: 'echo.say', params: { word: 'hello' } });
  k.send({ jsonrpc: '2.0', id: 'x2', method: 'echo.say', params: { word: 'hello', extra: 1 } });
  const got = (await k.next(2)) as Array<{ id: string; result?: { said: string; notifies: unknown[] }; error?: { code: number } }>;
  t.same(got[0], { jsonrpc: '2.0', id: 'x1', result: { said: 'HELLO', notifies: [] } });
  t.equal(got[1]!.error?.code, -32602, 'its schema decides what is valid');
  t.same(seen, ['hello']);
});

t.test('effects are carried out before the answer: the answer waits for the commit', async (t) => {
  const { k, link } = await bareLink(t);
  const order: string[] = [];
  let release!: () => void;
  const committed = new Promise<void>((r) => { release = r; });
  link.register({ 'slow.op': { params: z.object({}), handle: () => ({ answer: { ok: 1 }, effects: { ...noEffects(), writes: ['row'] } }) } },
    async (effects, answer) => { order.push(`commit ${String(effects.writes)}`); await committed; answer(effects.notifies); order.push('answered'); });
  link.register({ 'fast.op': { params: z.object({}), handle: () => ({ answer: { ok: 2 }, effects: noEffects() }) } }, applyNow);
  k.send({ jsonrpc: '2.0', id: 's1', method: 'slow.op', params: {} });
  // A request sent after it is answered at once: had s1's answer gone out, it would be before it.
  k.send({ jsonrpc: '2.0', id: 'f1', method: 'fast.op', params: {} });
  await k.next(1);
  t.same((k.received as Array<{ id: string }>).map((f) => f.id), ['f1'], 'no answer to s1 while its commit runs');
  t.same(order, ['commit row']);
  release();
  await k.next(2);
  t.same(order, ['commit row', 'answered']);
  t.same((k.received as Array<{ id: string }>).map((f) => f.id), ['f1', 's1'], 'then its answer');
});

t.test('an answer whose NOTIFYs do not fit one frame sends the rest as link.notify frames, all under the limit', async (t) => {
  const { k, link } = await bareLink(t, { frameLimit: 4000 });
  const many = Array.from({ length: 30 }, (_, i) => notify(i + 1, 400));
  link.register({ 'big.op': { params: z.object({}), handle: () => ({ answer: { ok: 1 }, effects: { ...noEffects(), notifies: many } }) } }, applyNow);
  k.send({ jsonrpc: '2.0', id: 'b1', method: 'big.op', params: {} });
  type Frame = { id?: string; method?: string; result?: { notifies: Array<{ ruri: string }> }; params?: { notifies: Array<{ ruri: string }> } };
  const carried = (f: Frame): Array<{ ruri: string }> => f.result?.notifies ?? f.params?.notifies ?? [];
  await until(() => (k.received as Frame[]).reduce((sum, f) => sum + carried(f).length, 0) === 30);
  const frames = k.received as Frame[];
  t.equal(frames[0]!.id, 'b1', 'the answer comes first');
  t.ok(frames.length > 2, `split into ${frames.length} frames`);
  t.ok(frames.slice(1).every((f) => f.method === 'link.notify'));
  t.ok(k.sizes.every((s) => s <= 4000), `every frame within the limit (largest ${Math.max(...k.sizes)})`);
  const order = frames.flatMap((f) => carried(f).map((n) => n.ruri));
  t.same(order, many.map((n) => n.ruri), 'every NOTIFY once, in order');
  t.equal(link.counters.split, 1);
});

t.test('a NOTIFY too large for any frame is dropped and counted; the others go', async (t) => {
  const { k, link } = await bareLink(t, { frameLimit: 4000 });
  t.ok(link.sendNotifies([notify(1, 100), notify(2, 5000), notify(3, 100)]));
  await k.next(1);
  const sent = (k.received[0] as { params: { notifies: Array<{ ruri: string }> } }).params.notifies.map((n) => n.ruri);
  t.same(sent, ['sip:p1@10.0.0.1', 'sip:p3@10.0.0.1']);
  t.equal(link.counters.notifiesDropped, 1);
});

t.test('an answer too large even without NOTIFYs is replaced by the method fallback', async (t) => {
  const { k, link } = await bareLink(t, { frameLimit: 4000 });
  link.register({ 'huge.op': {
    params: z.object({ tindex: z.number() }),
    handle: () => ({ answer: { code: 0, add_hdrs: 'x'.repeat(5000) }, effects: noEffects() }),
    fallback: (raw) => ({ code: 500, tindex: (raw as { tindex: number }).tindex }),
  } }, applyNow);
  k.send({ jsonrpc: '2.0', id: 'h1', method: 'huge.op', params: { tindex: 5 } });
  const [got] = (await k.next(1)) as Array<{ id: string; result: { code: number; tindex: number } }>;
  t.same([got!.id, got!.result.code, got!.result.tindex], ['h1', 500, 5]);
  t.ok(k.sizes.every((s) => s <= 4000));
});

t.test('a Kamailio that stops answering pings is noticed and the connection is made again', async (t) => {
  const { k, link } = await bareLink(t, { heartbeatMs: 50, heartbeatTimeoutMs: 200 });
  await until(() => k.pings() >= 3);
  t.equal(k.connections(), 1, 'answered pings keep the connection');
  k.playDead(true);
  await until(() => k.connections() === 2, 3000);
  t.equal(k.connections(), 2, 'reset and reconnected');
  t.ok(link.counters.resets >= 1);
  k.playDead(false);
  await until(() => link.connected === 1);
  t.equal(link.connected, 1);
});

t.test('a pong with nothing to send back is answered by link.ack, so Kamailio gets our TCP ACK at once', async (t) => {
  const { k } = await bareLink(t, { heartbeatMs: 50, heartbeatTimeoutMs: 2000 });
  await until(() => k.pings() >= 3 && k.acks() >= 3);
  t.ok(k.acks() >= 3 && k.acks() <= k.pings(), `${k.pings()} pings, ${k.acks()} acks: one per pong`);
  t.equal(k.received.length, 0, 'and nothing else');
});

t.test('a notification (no id) is carried out, not answered: one link.ack per turn stands in for the answers', async (t) => {
  const { k, link } = await bareLink(t);
  const seen: string[] = [];
  link.register({
    'echo.tell': { params: z.object({ word: z.string() }).strict(), handle: (p) => { seen.push(p.word); return { answer: {}, effects: { ...noEffects(), notifies: p.word === 'n' ? [notify(1, 100)] : [] } }; } },
    'echo.say': { params: z.object({ word: z.string() }).strict(), handle: (p) => ({ answer: { said: p.word }, effects: noEffects() }) },
  }, applyNow);
  // Nine written at once arrive in one or two reads: an ack per turn, not per notification.
  for (let i = 0; i < 9; i++) k.send({ jsonrpc: '2.0', method: 'echo.tell', params: { word: `w${i}` } });
  await until(() => seen.length === 9);
  t.equal(seen.length, 9, 'each is carried out');
  // A request after them is answered: an answer to any notification would have come before.
  k.send({ jsonrpc: '2.0', id: 'marker', method: 'echo.say', params: { word: 'm' } });
  await k.next(1);
  t.same((k.received as Array<{ id?: string }>).map((f) => f.id), ['marker'], 'none is answered');
  k.received.length = 0;
  t.ok(k.acks() >= 1 && k.acks() <= 3, `${k.acks()} link.ack for 9 notifications`);
  // Its NOTIFYs still go, as link.notify.
  k.send({ jsonrpc: '2.0', method: 'echo.tell', params: { word: 'n' } });
  await until(() => k.received.length === 1);
  t.equal((k.received[0] as { method: string }).method, 'link.notify', 'its NOTIFYs follow as link.notify');
  // A request still gets its answer, and no ack besides when the answer went in the same turn.
  const acks = k.acks();
  k.send({ jsonrpc: '2.0', id: 'r1', method: 'echo.say', params: { word: 'x' } });
  await until(() => k.received.length === 2);
  t.same((k.received[1] as { id: string; result: unknown }).result, { said: 'x', notifies: [] }, 'a request is answered');
  t.equal(k.acks(), acks, 'an answered request needs no ack');
  t.equal(link.counters.bad, 0);
});

/** The fake Kamailio has read every byte the link wrote (each frame's netstring header counted). */
const readAll = (k: { bytes(): number; sizes: unknown[] }, link: { backlog: { unread: number } }): boolean => k.bytes() + 16 * k.sizes.length >= link.backlog.unread;

t.test('a full window: each message from Kamailio gets a link.ack at once, within a small reserve under 32 KB', async (t) => {
  // Blocked, the service would write nothing: its delayed TCP ACK would let Nagle on Kamailio's
  // socket hold the pong that opens the window (a 40 ms stall per window at 3,000 SUBSCRIBEs/s).
  const { k, link } = await bareLink(t, { frameLimit: 4000 });
  link.register({ 'echo.say': { params: z.object({ word: z.string() }).strict(), handle: (p) => ({ answer: { said: p.word }, effects: noEffects() }) } }, applyNow);
  k.playDead(true);
  t.ok(link.sendNotifies(Array.from({ length: 300 }, (_, i) => notify(i + 1, 600))));
  // Blocked: the window is full and frames wait; everything written so far is read by the fake.
  await until(() => link.backlog.waiting > 0 && readAll(k, link), 3000, 'a full window, read');
  const blocked = k.bytes();
  t.equal(k.acks(), 0, 'no ack while nothing came from Kamailio');
  k.send({ jsonrpc: '2.0', id: 'e1', method: 'echo.say', params: { word: 'a' } });
  await until(() => k.acks() === 1);
  t.equal(k.acks(), 1, 'a message from Kamailio while blocked is acked at once');
  const before = link.counters.received;
  for (let i = 0; i < 299; i++) k.send({ jsonrpc: '2.0', id: `e${i + 2}`, method: 'echo.say', params: { word: 'b' } });
  await until(() => link.counters.received === before + 299 && readAll(k, link), 3000, 'the 299 messages read by the link, what it wrote read by the fake');
  t.ok(k.acks() > 1 && k.acks() < 300, `acks stop at the reserve (${k.acks()} for 300 messages)`);
  t.ok(k.bytes() <= 32_100, `${k.bytes()} bytes unread at most (was ${blocked} when blocked): every read still takes whole frames`);
  t.notOk((k.received as Array<{ id?: string }>).some((f) => f.id === 'e1'), 'the answer itself waits its turn in the window');
  k.playDead(false);
  await until(() => (k.received as Array<{ id?: string }>).filter((f) => f.id?.startsWith('e')).length === 300);
  t.equal((k.received as Array<{ id?: string }>).filter((f) => f.id?.startsWith('e')).length, 300, 'then every answer arrives');
});

t.test('flow control: never more than the window unread at Kamailio; the rest follows as it reads', async (t) => {
  const { k, link } = await bareLink(t, { frameLimit: 4000 });
  k.playDead(true); // reads, but answers no ping: the service cannot know it read anything
  const many = Array.from({ length: 300 }, (_, i) => notify(i + 1, 600));
  t.ok(link.sendNotifies(many));
  await until(() => link.backlog.waiting > 0 && readAll(k, link), 3000, 'a full window, read');
  t.ok(k.bytes() <= 31_000, `${k.bytes()} bytes written before Kamailio said what it read`);
  k.playDead(false);
  await until(() => (k.received as Array<{ params?: { notifies: unknown[] } }>).reduce((n, f) => n + (f.params?.notifies.length ?? 0), 0) === 300);
  t.equal((k.received as Array<{ params?: { notifies: unknown[] } }>).reduce((n, f) => n + (f.params?.notifies.length ?? 0), 0), 300, 'all of it arrives once Kamailio reads');
  t.equal(link.counters.framesDropped, 0);
});

// ---- when something goes wrong: Kamailio is still answered, and nothing grows without bound ---

t.test('a handler that throws: Kamailio gets the method\'s fallback, or an Internal error', async (t) => {
  const { k, link } = await bareLink(t);
  link.register({
    'bug.withFallback': { params: z.object({ tindex: z.number() }), handle: () => { throw new Error('boom'); }, fallback: (raw) => ({ code: 500, tindex: (raw as { tindex: number }).tindex }) },
    'bug.bare': { params: z.object({}), handle: () => { throw new Error('boom'); } },
  }, applyNow);
  k.send({ jsonrpc: '2.0', id: 'w1', method: 'bug.withFallback', params: { tindex: 4 } });
  k.send({ jsonrpc: '2.0', id: 'b1', method: 'bug.bare', params: {} });
  const got = (await k.next(2)) as Array<{ id: string; result?: { code: number; tindex: number }; error?: { code: number } }>;
  t.same(got.find((g) => g.id === 'w1')?.result, { code: 500, tindex: 4, notifies: [] }, 'the fallback resumes the transaction');
  t.equal(got.find((g) => g.id === 'b1')?.error?.code, -32603, 'without one, a JSON-RPC error');
  t.equal(link.connected, 1, 'the link lives on');
});

t.test('an apply() that rejects (a commit that throws): Kamailio is still answered', async (t) => {
  const { k, link } = await bareLink(t);
  link.register({
    'commit.fails': { params: z.object({ tindex: z.number() }), handle: () => ({ answer: { code: 202 }, effects: { ...noEffects(), writes: ['row'] } }), fallback: (raw) => ({ code: 500, tindex: (raw as { tindex: number }).tindex }) },
    'echo.say': { params: z.object({}), handle: () => ({ answer: { said: 1 }, effects: noEffects() }) },
  }, async (effects, answer) => { if (effects.writes.length > 0) throw new Error('the store threw'); answer(effects.notifies); });
  k.send({ jsonrpc: '2.0', id: 'c1', method: 'commit.fails', params: { tindex: 9 } });
  // A request after it: its answer comes once c1 has been dealt with, one way or the other.
  k.send({ jsonrpc: '2.0', id: 'marker', method: 'echo.say', params: {} });
  await until(() => (k.received as Array<{ id: string }>).some((f) => f.id === 'marker'), 3000, 'the marker\'s answer');
  const answer = (k.received as Array<{ id: string; result?: { code: number; tindex: number } }>).find((f) => f.id === 'c1');
  t.ok(answer, 'c1 is answered');
  t.same(answer?.result && [answer.result.code, answer.result.tindex], [500, 9], 'with the fallback');
});

t.test('frames waiting for Kamailio are dropped and counted when it goes away; the new connection starts clean', async (t) => {
  const { k, link } = await bareLink(t, { frameLimit: 4000 });
  k.playDead(true); // reads, but answers no ping: the window fills and frames wait
  t.ok(link.sendNotifies(Array.from({ length: 100 }, (_, i) => notify(i + 1, 600))));
  await until(() => link.backlog.waiting > 0);
  const waiting = link.backlog.waiting;
  k.drop();
  await until(() => link.counters.framesDropped > 0);
  t.ok(link.counters.framesDropped >= 1, `${link.counters.framesDropped} frames dropped (${waiting} bytes were waiting)`);
  await until(() => k.connections() === 2 && link.connected === 1);
  t.same(link.backlog, { unread: link.backlog.unread, waiting: 0 }, 'nothing waits on the new connection');
  k.playDead(false);
  const before = k.received.length;
  t.ok(link.sendNotifies([notify(999, 10)]));
  await until(() => k.received.length > before);
  const after = (k.received.slice(before) as Array<{ params?: { notifies: Array<{ ruri: string }> } }>).flatMap((f) => f.params?.notifies ?? []).map((n) => n.ruri);
  t.same(after, ['sip:p999@10.0.0.1'], 'only what is sent after it, none of the dropped frames');
});

t.test('at most 64 MiB waits for a Kamailio that reads nothing: the frames beyond are dropped and counted', async (t) => {
  const { k, link } = await bareLink(t);
  k.playDead(true);
  // 2,400 frames of about 29 KB: 70 MB, more than the 64 MiB the link keeps.
  const big = Array.from({ length: 2400 }, (_, i) => notify(i + 1, 28_500));
  t.ok(link.sendNotifies(big));
  t.ok(link.backlog.waiting <= 64 * 1024 * 1024, `${(link.backlog.waiting / 1048576).toFixed(1)} MiB waiting`);
  t.ok(link.backlog.waiting > 60 * 1024 * 1024, 'filled up to the cap');
  t.ok(link.counters.framesDropped > 0, `${link.counters.framesDropped} frames dropped`);
  t.equal(link.counters.notifiesDropped, link.counters.framesDropped, 'each dropped frame\'s NOTIFY counted as dropped');
  k.playDead(false);
  const expected = big.length - link.counters.notifiesDropped;
  await until(() => (k.received as Array<{ params?: { notifies: unknown[] } }>).reduce((n, f) => n + (f.params?.notifies.length ?? 0), 0) >= expected, 60_000);
  t.equal((k.received as Array<{ params?: { notifies: unknown[] } }>).reduce((n, f) => n + (f.params?.notifies.length ?? 0), 0), expected, 'the rest arrive once Kamailio reads');
});

t.test('the NOTIFY-timeout sweep: NOTIFYs without a final reply 40 s after they went are counted as timeouts', async (t) => {
  // The sweep runs every 5 s and reads performance.now(): the clock is moved 41 s on, and the
  // heartbeat kept out of the way (it reads the same clock).
  const { k, link } = await bareLink(t, { heartbeatMs: 3_600_000 });
  const timedOut: number[] = [];
  const answered: number[] = [];
  link.observer = { notifiesSent: () => undefined, notifyAnswered: (code) => answered.push(code), notifyTimedOut: (n) => timedOut.push(n) };
  t.ok(link.sendNotifies([notify(1, 10), notify(2, 10), notify(3, 10)]));
  await until(() => k.received.length === 1);
  link.notifyAnswered('c2', 'f', 2, 200);
  const real = performance.now.bind(performance);
  performance.now = () => real() + 41_000;
  t.teardown(() => { performance.now = real; });
  await until(() => timedOut.length > 0, 7000);
  t.same(timedOut, [2], 'the two unanswered ones, in one sweep');
  t.same(answered, [200]);
  // A late reply to a timed-out NOTIFY is still counted by its code, without a latency.
  link.notifyAnswered('c1', 'f', 1, 200);
  t.same(answered, [200, 200]);
});

t.test('a method\'s fallback runs only when its answer cannot go (the link door\'s counts a refusal)', async (t) => {
  const { k, link } = await bareLink(t);
  let fallbacks = 0;
  link.register({
    'echo.admit': {
      params: z.object({ n: z.number() }).strict(),
      handle: (p) => ({ answer: { n: p.n, ok: true }, effects: noEffects() }),
      fallback: () => { fallbacks++; return { ok: false }; },
    },
  }, applyNow);
  k.send({ jsonrpc: '2.0', id: 'a1', method: 'echo.admit', params: { n: 1 } });
  const [got] = (await k.next(1)) as Array<{ result: { ok: boolean } }>;
  t.equal(got!.result.ok, true, 'answered');
  t.equal(fallbacks, 0, 'the fallback was not built for an answer that went');
  k.send({ jsonrpc: '2.0', id: 'a2', method: 'echo.admit', params: { n: 'x' } });
  const [, bad] = (await k.next(2)) as Array<{ result: { ok: boolean } }>;
  t.same([bad!.result.ok, fallbacks], [false, 1], 'params it cannot read: the fallback answers');
});

t.test('a fallback reads the params as the schema does: <name>_b64 decoded into <name>', async (t) => {
  const { k, link } = await bareLink(t);
  link.register({
    'echo.named': {
      params: z.object({ call_id: z.string(), n: z.number() }).strict(),
      handle: (p) => ({ answer: { call_id: p.call_id }, effects: noEffects() }),
      fallback: (raw) => ({ refused: (raw as { call_id?: unknown }).call_id ?? 'unnamed' }),
    },
  }, applyNow);
  k.send({ jsonrpc: '2.0', id: 'f1', method: 'echo.named', params: { call_id_b64: Buffer.from('abc@host').toString('base64'), n: 'x' } });
  const [got] = (await k.next(1)) as Array<{ result: { refused: string } }>;
  t.equal(got!.result.refused, 'abc@host', 'the fallback names the call it refuses');
});
