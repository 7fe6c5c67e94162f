// The link's hello and credit, against an in-process fake of Kamailio's evapi side: a Kamailio
// counts as linked once it answered our hello (with its PROXY_ID); the hello says this node and
// its epoch; what the service reads of Kamailio's requests is credited (link.credit), so that
// Kamailio (link.cfg) can stop writing to a service that froze.
import t from 'tap';
import { noEffects } from '../../../service/effects.js';
import { KamailioLink } from '../../../service/kamailio/link.js';
import { fakeKamailio, until } from '../../support/fake-kamailio.js';
import { z } from 'zod';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

t.test('linked once Kamailio answers the hello, which names this node and its epoch', async (t) => {
  const k = await fakeKamailio();
  let epoch = 7;
  const link = new KamailioLink([`127.0.0.1:${k.port}`], quiet, { node: 'node-a', epoch: () => epoch });
  let ups = 0;
  link.onUp(() => ups++);
  link.start();
  t.teardown(async () => { link.stop(); await k.close(); });
  await until(() => link.connected === 1);
  t.same(link.proxies, ['fake'], 'the proxy it names');
  t.same(k.lastHello(), { node: 'node-a', epoch: 7 });
  t.equal(ups, 1, 'up once linked');
  epoch = 8;
  k.drop();
  await until(() => k.hellos() === 2 && link.connected === 1);
  t.same([ups, k.lastHello()], [2, { node: 'node-a', epoch: 8 }], 'again after a reconnection, with the epoch of now');
});

t.test('Kamailio\'s requests are credited by their bytes; answers to our pings are not', async (t) => {
  const k = await fakeKamailio();
  const link = new KamailioLink([`127.0.0.1:${k.port}`], quiet, { heartbeatMs: 50 });
  link.register({ 'echo.say': { params: z.object({ word: z.string() }), handle: (p) => ({ answer: { said: p.word }, effects: noEffects() }) } }, async (_e, answer) => answer([]));
  link.start();
  t.teardown(async () => { link.stop(); await k.close(); });
  await until(() => link.connected === 1);
  const frames = Array.from({ length: 40 }, (_, i) => JSON.stringify({ jsonrpc: '2.0', id: `x${i}`, method: 'echo.say', params: { word: 'w'.repeat(i * 100) } }));
  for (const f of frames) k.sendRaw(f);
  const sent = frames.reduce((n, f) => n + Buffer.byteLength(f), 0);
  await until(() => k.credited() === sent, 5000);
  t.equal(k.credited(), sent, `all ${sent} bytes credited`);
  await until(() => k.pings() >= 3);
  t.equal(k.credited(), sent, 'pongs credit nothing (Kamailio does not count them)');
});

t.test('the stalls Kamailio\'s pongs report are what the link says (for sca_link_credit_stalls)', async (t) => {
  const k = await fakeKamailio();
  const link = new KamailioLink([`127.0.0.1:${k.port}`], quiet, { heartbeatMs: 30 });
  link.start();
  t.teardown(async () => { link.stop(); await k.close(); });
  await until(() => link.connected === 1);
  await until(() => k.pings() >= 1);
  t.equal(link.creditStalls, 0, 'none reported');
  k.setStalls(3);
  await until(() => link.creditStalls === 3, 3000, 'the next pong to report 3 stalls');
  t.equal(link.creditStalls, 3);
});

t.test('a burst over 64 KB is credited at once, not only after the timer', async (t) => {
  const k = await fakeKamailio();
  const link = new KamailioLink([`127.0.0.1:${k.port}`], quiet);
  link.register({ 'echo.say': { params: z.object({ word: z.string() }), handle: () => ({ answer: {}, effects: noEffects() }) } }, async (_e, answer) => answer([]));
  link.start();
  t.teardown(async () => { link.stop(); await k.close(); });
  await until(() => link.connected === 1);
  const big = JSON.stringify({ jsonrpc: '2.0', method: 'echo.say', params: { word: 'w'.repeat(70_000) } });
  k.sendRaw(big);
  await until(() => k.credited() >= Buffer.byteLength(big), 5000);
  t.equal(k.credited(), Buffer.byteLength(big));
});

t.test('several proxies: each NOTIFY goes out through its subscriber\'s own proxy, whichever proxy asked', async (t) => {
  const [a, b] = await Promise.all([fakeKamailio({ proxy: 'A' }), fakeKamailio({ proxy: 'B' })]);
  const link = new KamailioLink([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], quiet);
  const notify = (proxy: string | undefined, n: number) => ({
    ruri: `sip:p${n}@10.0.0.${n}`, route: [], callId: `c${n}`, fromTag: 't', cseq: n, headers: [['CSeq', `${n} NOTIFY`]] as Array<[string, string]>, subject: 'sip:100@x', proxy,
  });
  link.register({
    'line.event': { params: z.object({}), handle: (_p, from) => ({ answer: { from: from.proxy }, effects: { ...noEffects(), notifies: [notify('A', 1), notify('B', 2), notify(undefined, 3)] } }) },
  }, async (effects, answer) => answer(effects.notifies));
  link.start();
  let aClosed = false;
  t.teardown(async () => { link.stop(); if (!aClosed) await a.close(); await b.close(); });
  await until(() => link.connected === 2);
  t.same(link.proxies.sort(), ['A', 'B']);
  b.send({ jsonrpc: '2.0', id: 'e1', method: 'line.event', params: {} });
  const [answer] = (await b.next(1)) as Array<{ id: string; result: { from: string; notifies: Array<{ ruri: string }> } }>;
  t.same([answer!.id, answer!.result.from], ['e1', 'B'], 'the handler learns which proxy asked');
  t.same(answer!.result.notifies.map((n) => n.ruri), ['sip:p2@10.0.0.2', 'sip:p3@10.0.0.3'], 'B\'s answer carries B\'s subscriber and the one of no proxy');
  const [frame] = (await a.next(1)) as Array<{ method: string; params: { notifies: Array<{ ruri: string }> } }>;
  t.same([frame!.method, frame!.params.notifies.map((n) => n.ruri)], ['link.notify', ['sip:p1@10.0.0.1']], 'A\'s subscriber\'s NOTIFY goes through A');
  aClosed = true;
  await a.close(); // gone for good: no reconnection
  await until(() => link.connected === 1);
  t.notOk(link.sendNotifies([notify('A', 4)]), 'a subscriber\'s proxy not linked: the NOTIFY is dropped, not sent through another');
});
