// The bridge against an in-process TCP server that plays Kamailio's evapi side.
import net from 'node:net';
import t, { type Test } from 'tap';
import { KamailioBridge } from '../../../service/kamailio/bridge.js';
import { NetstringDecoder, encodeNetstring } from '../../../service/kamailio/netstring.js';
import { renderNotify } from '../../../service/kamailio/messages.js';
import { ScaEngine } from '../../../service/sca/engine.js';
import { CI, P1, subscribeMsg } from '../../support/sip-fixture.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/** A fake Kamailio: accepts the service, collects decoded messages. */
async function fakeKamailio(): Promise<{ port: number; received: unknown[]; hellos: () => number; send: (o: unknown) => void; sendRaw: (s: string) => void; drop: () => void; close: () => Promise<void>; connections: () => number; next: (n: number) => Promise<unknown[]> }> {
  const received: unknown[] = [];
  let hellos = 0;
  let socket: net.Socket | undefined;
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    socket = s;
    const d = new NetstringDecoder();
    s.on('data', (c) => {
      for (const f of d.push(c).frames.map((x) => JSON.parse(x) as { method?: string })) {
        if (f.method === 'sca.hello') hellos++; // asks Kamailio to replay what it queued
        else received.push(f);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    hellos: () => hellos,
    send: (o) => socket!.write(encodeNetstring(JSON.stringify(o))),
    sendRaw: (s) => socket!.write(encodeNetstring(s)),
    drop: () => socket?.destroy(),
    close: () => new Promise((r) => { socket?.destroy(); server.close(() => r()); }),
    connections: () => connections,
    next: async (n) => {
      for (let i = 0; i < 200 && received.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      return received;
    },
  };
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};


/** A fake Kamailio with a started bridge already connected to it; stopped at teardown. */
async function connected(t: Test, engine = new ScaEngine()): Promise<{ k: Awaited<ReturnType<typeof fakeKamailio>>; bridge: KamailioBridge; engine: ScaEngine }> {
  const k = await fakeKamailio();
  const bridge = new KamailioBridge(engine, [`127.0.0.1:${k.port}`], () => 1000, quiet);
  bridge.start();
  t.teardown(async () => { bridge.stop(); await k.close(); });
  await until(() => bridge.connected === 1);
  return { k, bridge, engine };
}

t.test('a suspended SUBSCRIBE is answered with its transaction ids, reply and NOTIFYs', async (t) => {
  const { k, bridge } = await connected(t);
  k.send({ jsonrpc: '2.0', id: '7:9', method: 'sca.subscribe', params: { tindex: 7, tlabel: 9, msg: subscribeMsg(P1), to_tag: 'tt1' } });
  const [answer] = (await k.next(1)) as Array<{ id: string; result: { tindex: number; tlabel: number; code: number; reason: string; hdrs: string; notifies: Array<{ ruri: string; hdrs: string }> } }>;
  t.equal(answer!.id, '7:9');
  t.same([answer!.result.tindex, answer!.result.tlabel, answer!.result.code, answer!.result.reason], [7, 9, 202, 'Accepted']);
  t.match(answer!.result.hdrs, /^Event: call-info\r\nContact: [^\r]+\r\nAllow-Events: call-info, line-seize\r\nExpires: 3600\r\n$/);
  t.equal(answer!.result.notifies.length, 1);
  t.equal(answer!.result.notifies[0]!.ruri, P1);
  t.match(answer!.result.notifies[0]!.hdrs, /^From: <sip:100@pbx.example.com>;tag=tt1\r\nTo: [^\r]+\r\nCall-ID: [^\r]+\r\nCSeq: 1 NOTIFY\r\n/);
});

t.test('bad input from Kamailio gets a JSON-RPC error or a SIP 500, never a crash', async (t) => {
  const { k, bridge, engine } = await connected(t);
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
  t.equal(bridge.counters.bad, 4);
  t.equal(bridge.connected, 1, 'still connected');
});

t.test('call events and NOTIFY replies are answered with the NOTIFYs they cause', async (t) => {
  const { k, bridge, engine } = await connected(t);
  const sub = engine.subscribe({ msg: subscribeMsg(P1), to_tag: 'tt', now: 1000 });
  t.equal(sub.reply.code, 202);
  engine.subscribe({ msg: subscribeMsg(P1, { event: 'line-seize', expires: 15, callInfo: CI(1) }), to_tag: 'ls', now: 1000 });
  const invite = `INVITE sip:200@far.example.net SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nFrom: <sip:100@pbx.example.com>;tag=f1\r\nTo: <sip:200@far.example.net>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <${P1}>\r\nCall-Info: ${CI(1)}\r\nContent-Length: 0\r\n\r\n`;
  k.send({ jsonrpc: '2.0', id: 'e1', method: 'sca.call_event', params: { hook: 'failure', msg: invite, status: '486' } });
  const got = (await k.next(1)) as Array<{ id: string; result: { notifies: Array<{ hdrs: string }> } }>;
  t.equal(got[0]!.id, 'e1');
  t.ok(got[0]!.result.notifies.some((n) => /Subscription-State: terminated;reason=noresource/.test(n.hdrs)), 'the line-seize ends');
  const subCallId = engine.listSubscriptions(1000).find((s) => s.event === 'call-info')!.call_id;
  k.send({ jsonrpc: '2.0', id: 'r1', method: 'sca.notify_reply', params: { call_id: subCallId, from_tag: 'tt', code: 481 } });
  await until(() => engine.countSubscriptions('call-info') === 0);
  t.same(((await k.next(2))[1] as { result: unknown }).result, { notifies: [] }, 'answered too');
  t.equal(engine.countSubscriptions('call-info'), 0, '481 removed the subscription');
});

t.test('the client reconnects after Kamailio drops it', async (t) => {
  const { k, bridge } = await connected(t);
  await until(() => k.hellos() === 1);
  t.equal(k.hellos(), 1, 'hello on connecting');
  k.drop();
  await until(() => k.connections() === 2 && bridge.connected === 1 && k.hellos() === 2);
  t.equal(k.connections(), 2);
  t.equal(bridge.connected, 1);
  t.equal(k.hellos(), 2, 'and again after reconnecting');
  t.equal(bridge.sendNotifies([]), true);
});

t.test('a route set becomes Route headers and the next hop', async (t) => {
  const n = renderNotify({ aor: 'sip:a@b', event: 'call-info', subscriber: 'sip:p@1.2.3.4', ruri: 'sip:p@1.2.3.4', route: ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>'], headers: [['From', 'f'], ['To', 't'], ['Call-ID', 'c'], ['CSeq', '1 NOTIFY'], ['Event', 'call-info']] });
  t.equal(n.nexthop, 'sip:p1.example.com;lr');
  t.equal(n.hdrs, 'From: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\nRoute: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\r\nEvent: call-info\r\n');
  t.equal(renderNotify({ aor: 'a', event: 'call-info', subscriber: 's', ruri: 's', route: [], headers: [] }).nexthop, '');
});

t.test('several Kamailio instances: answers go back where the request came from', async (t) => {
  const a = await fakeKamailio();
  const b = await fakeKamailio();
  const engine = new ScaEngine();
  const bridge = new KamailioBridge(engine, [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], () => 1000, quiet);
  bridge.start();
  t.teardown(async () => { bridge.stop(); await a.close(); await b.close(); });
  await until(() => bridge.connected === 2);
  b.send({ jsonrpc: '2.0', id: 'b1', method: 'sca.subscribe', params: { tindex: 1, tlabel: 1, msg: subscribeMsg(P1), to_tag: 'x' } });
  await b.next(1);
  t.same(b.received.map((m) => (m as { id: string }).id), ['b1']);
  t.equal(a.received.length, 0, 'the other instance sees nothing');
  a.drop();
  await until(() => bridge.connected === 1 || a.connections() === 2);
  const sub = engine.listSubscriptions(1000)[0]!;
  t.equal(sub.subscriber, P1);
  t.ok(bridge.sendNotifies(engine.tick(1000 + 7200)), 'service-started NOTIFYs go to a connected instance');
});
