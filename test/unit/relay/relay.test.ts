// sca-cc-relay against real sockets: a call_control.so worker on its unix socket, the relay, and
// service nodes played by the service's own relay listener (service/relay/listener.ts) with a
// handler standing in for the socket door. Forwarding with the proxy id, standbys refusing, a
// leader lost with stops in flight, stops kept while no node leads and replayed in order, the
// outbox's bounds, a silent leader, bad input on both sides.
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { CallControlRequest } from '../../../service/kamailio/call-control-socket.js';
import { loadRelayConfig } from '../../../service/relay/config.js';
import { CcRelayListener, type Serving } from '../../../service/relay/listener.js';
import { jsonLogger } from '../../../service/relay/log.js';
import { startRelay, type RunningRelay } from '../../../service/relay/program.js';
import { ccInit, ccStart, ccStop, CcWorker } from '../../support/cc-worker.js';
import { deferred, until } from '../../support/wait.js';

const TOKEN = 'relay-token-0123456789';

interface Seen { proxy: string; command: string; callid: string | undefined; heldMs: number }
interface FakeNode {
  readonly address: string;
  readonly listener: CcRelayListener;
  readonly got: Seen[];
  readonly closedAt: string[];
  serving: Serving;
  answer: (req: CallControlRequest) => Promise<string> | string;
}

/** A service node: the real listener, a door that records what it is handed and answers like the socket door. */
async function node(t: Test, name: string, serving: Serving = { ok: true, node: `${name}/x`, epoch: 1 }): Promise<FakeNode> {
  const n: FakeNode = {
    address: '', listener: undefined as never, got: [], closedAt: [], serving,
    answer: (req) => (req.command === 'init' ? 'Limited' : 'Ok'),
  };
  const listener = new CcRelayListener({
    listen: '127.0.0.1:0', token: TOKEN, serving: () => n.serving,
    handle: async (req, proxy, heldMs) => {
      n.got.push({ proxy, command: req.command, callid: req.fields.callid, heldMs });
      return n.answer(req);
    },
    clientClosed: (proxy) => n.closedAt.push(proxy),
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const port = await listener.listen();
  t.teardown(() => listener.close());
  return Object.assign(n, { address: `127.0.0.1:${port}`, listener });
}

interface Logged { level: number; msg: string; [k: string]: unknown }

async function relayTo(t: Test, nodes: string[], settings: Record<string, unknown> = {}): Promise<{ running: RunningRelay; file: string; logs: Logged[]; worker: () => Promise<CcWorker> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-relay-'));
  const file = path.join(dir, 'callcontrol', 'socket');
  const cfg = loadRelayConfig({
    env: {},
    overrides: {
      socket: file, nodes, token: TOKEN, proxy_id: 'A', reply_timeout: 0.3, retry_interval: 0.05, ping_interval: 0.1, dead_after: 0.5, connect_timeout: 0.5, ...settings,
    },
  });
  if (!cfg.ok) throw new Error(cfg.error);
  const logs: Logged[] = [];
  const running = await startRelay(cfg.config, jsonLogger('info', {}, (l) => void logs.push(JSON.parse(l) as Logged)));
  t.teardown(() => running.stop());
  const workers: CcWorker[] = [];
  t.teardown(() => { for (const w of workers) w.close(); });
  return { running, file, logs, worker: async () => { const w = await CcWorker.connect(file); workers.push(w); return w; } };
}

const leaderOf = (r: RunningRelay) => r.relay.status().leader?.node;

t.test('init, start and stop go to the leading node with the proxy id; its replies come back word for word', async (t) => {
  const n1 = await node(t, 'n1');
  const { running, worker } = await relayTo(t, [n1.address]);
  await until(() => leaderOf(running) === 'n1/x', 5000, 'the relay to reach n1');
  const w = await worker();
  n1.answer = (req) => (req.command === 'init' ? 'No credit' : 'Not found');
  t.same((await w.ask(ccInit('c1'))).reply, 'No credit', 'the leader\'s reply to init, as it gave it');
  n1.answer = (req) => (req.command === 'init' ? 'Limited' : 'Ok');
  const init = await w.ask(ccInit('c2'));
  const start = await w.ask(ccStart('c2', '288:3830'));
  const stop = await w.ask(ccStop('c2'));
  t.same([init.reply, start.reply, stop.reply], ['Limited', 'Ok', 'Ok']);
  t.same(n1.got, [
    { proxy: 'A', command: 'init', callid: 'c1', heldMs: 0 }, { proxy: 'A', command: 'init', callid: 'c2', heldMs: 0 },
    { proxy: 'A', command: 'start', callid: 'c2', heldMs: 0 }, { proxy: 'A', command: 'stop', callid: 'c2', heldMs: 0 },
  ], 'each request reached the node once, with this relay\'s proxy id, not held');
  t.comment(`measured: init ${init.ms.toFixed(1)} ms, start ${start.ms.toFixed(1)} ms, stop ${stop.ms.toFixed(1)} ms through the relay`);
  t.same(running.relay.status().queued, 0, 'nothing kept once answered');
});

t.test('a standby refuses (naming the leader); the relay uses the node that leads, and follows leadership when it moves', async (t) => {
  const n1 = await node(t, 'n1', { ok: false, why: 'standby', leader: 'n2/x' });
  const n2 = await node(t, 'n2');
  const { running, worker, logs } = await relayTo(t, [n1.address, n2.address]);
  await until(() => leaderOf(running) === 'n2/x', 5000, 'the relay to reach n2');
  const w = await worker();
  t.equal((await w.ask(ccInit('s1'))).reply, 'Limited');
  t.same([n1.got.length, n2.got.length], [0, 1], 'only the leader was asked');
  t.ok(logs.some((l) => l.msg === 'node refused the relay' && l.why === 'standby' && l.leader === 'n2/x'), 'the refusal is logged with the leader it names');
  // n2 loses its leadership (it closes its relays, as app.ts does on loss), n1 takes over.
  n2.serving = { ok: false, why: 'lost its leadership' };
  n1.serving = { ok: true, node: 'n1/y', epoch: 2 };
  n2.listener.closeAll();
  await until(() => leaderOf(running) === 'n1/y', 5000, 'the relay to reach n1');
  t.equal((await w.ask(ccInit('s2'))).reply, 'Limited');
  t.same(n1.got.map((g) => g.callid), ['s2'], 'the new leader gets what comes next');
});

t.test('no node leads: init is answered Error (-5) at once, never an admission; start/stop are kept and delivered in order to the first leader', async (t) => {
  const n1 = await node(t, 'n1', { ok: false, why: 'standby' });
  const { running, worker, logs } = await relayTo(t, [n1.address]);
  const w = await worker();
  const init = await w.ask(ccInit('u1'));
  t.equal(init.reply, 'Error', 'init: Error, which call_control.so maps to -5 without pausing');
  t.comment(`measured: init answered Error ${init.ms.toFixed(1)} ms after it was sent, with no leader`);
  const order = ['a', 'b', 'c', 'd'].flatMap((c) => [['start', c], ['stop', c]] as const);
  for (const [cmd, c] of order) t.equal((await w.ask(cmd === 'start' ? ccStart(c) : ccStop(c))).reply, 'Error', `${cmd} ${c}: not confirmed by any leader`);
  t.equal(running.relay.status().queued, order.length, 'all of them kept');
  t.same(n1.got, [], 'nothing handed to a standby');
  const keptAt = performance.now();
  await until(() => performance.now() - keptAt > 300, 1000, '300 ms of the outage'); // the outage's length: the scenario
  n1.serving = { ok: true, node: 'n1/x', epoch: 3 };
  await until(() => n1.got.length === order.length, 5000, 'the kept start/stop delivered');
  t.same(n1.got.map((g) => [g.command, g.callid]), order, 'in the order call_control.so sent them');
  t.ok(n1.got.every((g) => g.heldMs >= 300), `each says how long it was held, for billing to when it happened (${n1.got.map((g) => g.heldMs).join(', ')} ms)`);
  await until(() => running.relay.status().queued === 0, 5000, 'the outbox empty once answered');
  t.ok(logs.some((l) => /replaying/.test(l.msg) && l.replaying === order.length), 'the replay is logged');
  t.equal((await w.ask(ccInit('u2'))).reply, 'Limited', 'and new calls are admitted again');
});

t.test('the leader dies with stops unanswered: the next leader gets them again, in order, before newer ones', async (t) => {
  const n1 = await node(t, 'n1');
  const n2 = await node(t, 'n2', { ok: false, why: 'standby', leader: 'n1/x' });
  const { running, worker } = await relayTo(t, [n1.address, n2.address]);
  await until(() => leaderOf(running) === 'n1/x', 5000, 'the relay to reach n1');
  // n1 takes the stops in but never answers them (a leader about to die mid-commit).
  const never = deferred<string>();
  n1.answer = () => never.promise;
  const workers = await Promise.all([1, 2, 3].map(() => worker()));
  const asked = ['x1', 'x2', 'x3'].map((c, i) => workers[i]!.ask(ccStop(c)));
  await until(() => n1.got.length === 3, 5000, 'n1 to have the three stops');
  t.same((await Promise.all(asked)).map((a) => a.reply), ['Error', 'Error', 'Error'], 'unanswered in time: Error to call_control.so (it ignores a stop\'s reply)');
  t.equal(running.relay.status().inFlight, 3, 'kept, in flight');
  n1.serving = { ok: false, why: 'lost its leadership' };
  n2.serving = { ok: true, node: 'n2/x', epoch: 2 };
  n1.listener.closeAll();
  const later = workers[0]!.ask(ccStop('x4'));
  await until(() => n2.got.length === 4, 5000, 'n2 to have every stop');
  t.same(n2.got.map((g) => g.callid), ['x1', 'x2', 'x3', 'x4'], 'the lost leader\'s stops first, in order, then the new one');
  t.equal((await later).reply, 'Ok');
  await until(() => running.relay.status().queued === 0, 5000, 'nothing kept');
});

t.test('a leader that stops leading answers "unserved": the stop is not lost, the next leader gets it', async (t) => {
  const n1 = await node(t, 'n1');
  const n2 = await node(t, 'n2', { ok: false, why: 'standby', leader: 'n1/x' });
  const { running, worker } = await relayTo(t, [n1.address, n2.address]);
  await until(() => leaderOf(running) === 'n1/x', 5000, 'the relay to reach n1');
  n1.serving = { ok: false, why: 'lost its leadership' }; // its relays not closed yet: the next request finds out
  const w = await worker();
  t.equal((await w.ask(ccStop('u9'))).reply, 'Error', 'not served');
  t.same(n1.got, [], 'n1 handed nothing to its door');
  n2.serving = { ok: true, node: 'n2/x', epoch: 2 };
  await until(() => n2.got.length === 1, 5000, 'n2 to get the stop');
  t.same(n2.got.map((g) => [g.command, g.callid]), [['stop', 'u9']]);
  await until(() => running.relay.status().queued === 0, 5000, 'nothing kept');
});

t.test('a relay stopped on purpose waits for the leader to take what it kept before it goes', async (t) => {
  const n1 = await node(t, 'n1');
  const { running, worker, logs } = await relayTo(t, [n1.address]);
  await until(() => leaderOf(running) === 'n1/x', 5000, 'the relay to reach n1');
  const slow = deferred<string>();
  n1.answer = () => slow.promise; // a commit that takes its time
  const w = await worker();
  t.equal((await w.ask(ccStop('d1'))).reply, 'Error', 'not answered in time');
  t.equal(running.relay.status().queued, 1);
  const stopped = running.stop();
  setTimeout(() => slow.resolve('Ok'), 200);
  await stopped;
  t.equal(running.relay.status().queued, 0, 'the leader answered it before the relay went');
  t.notOk(logs.some((l) => /^RELAY STOPPED WITH START\/STOP UNDELIVERED/.test(l.msg)));
});

t.test('the outbox is bounded: past queue_max the oldest go, counted and logged once', async (t) => {
  const n1 = await node(t, 'n1', { ok: false, why: 'standby' });
  const { running, worker, logs } = await relayTo(t, [n1.address], { queue_max: 5 });
  const w = await worker();
  for (let i = 1; i <= 8; i++) await w.ask(ccStop(`q${i}`));
  t.match(running.relay.status(), { queued: 5, dropped: 3 });
  t.equal(logs.filter((l) => /^RELAY OUTBOX FULL/.test(l.msg)).length, 1, 'one error line for the episode');
  n1.serving = { ok: true, node: 'n1/x', epoch: 1 };
  await until(() => n1.got.length === 5, 5000, 'the kept stops delivered');
  t.same(n1.got.map((g) => g.callid), ['q4', 'q5', 'q6', 'q7', 'q8'], 'the newest five, in order');
});

t.test('the outbox is bounded in bytes too', async (t) => {
  const n1 = await node(t, 'n1', { ok: false, why: 'standby' });
  const { running, worker } = await relayTo(t, [n1.address], { queue_max_bytes: 4096 });
  const w = await worker();
  const long = 'x'.repeat(1000);
  for (let i = 0; i < 10; i++) await w.ask(ccStop(`${long}-${i}`));
  const s = running.relay.status();
  t.ok(s.queuedBytes <= 4096 && s.queued < 10 && s.dropped === 10 - s.queued, `${s.queued} kept in ${s.queuedBytes} bytes, ${s.dropped} dropped`);
});

t.test('a leader that answers nothing in time: init gets Error at reply_timeout; a silent leader is given up on for the next', async (t) => {
  const n1 = await node(t, 'n1');
  const { running, worker } = await relayTo(t, [n1.address], { reply_timeout: 0.2 });
  await until(() => leaderOf(running) === 'n1/x', 5000, 'the relay to reach n1');
  const w = await worker();
  n1.answer = () => new Promise(() => undefined);
  const slow = await w.ask(ccInit('slow'));
  t.equal(slow.reply, 'Error');
  t.comment(`measured: Error after ${slow.ms.toFixed(0)} ms (reply_timeout 200 ms; call_control.so waits 500)`);

  // A node that welcomes and then never answers a ping (frozen): a raw server.
  const frozen = net.createServer((s) => { s.on('error', () => undefined); s.once('data', () => s.write('{"t":"welcome","node":"frozen","epoch":9}\n')); });
  await new Promise<void>((r) => frozen.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => frozen.close(() => r())));
  const n2 = await node(t, 'n2', { ok: false, why: 'standby', leader: 'frozen' });
  const r2 = await relayTo(t, [`127.0.0.1:${(frozen.address() as net.AddressInfo).port}`, n2.address]);
  await until(() => leaderOf(r2.running) === 'frozen', 5000, 'the relay to take the frozen node');
  n2.serving = { ok: true, node: 'n2/x', epoch: 10 };
  await until(() => leaderOf(r2.running) === 'n2/x', 5000, 'the relay to give up on the silent node and reach n2');
  t.ok(r2.logs.some((l) => /^LEADER LOST/.test(l.msg) && /silent for/.test(String(l.why))), 'logged as silent');
});

t.test('bad input at the unix socket: an unreadable init is refused (Locked), a stop without Call-ID is not kept', async (t) => {
  const n1 = await node(t, 'n1');
  const { running, worker } = await relayTo(t, [n1.address]);
  await until(() => leaderOf(running) === 'n1/x', 5000, 'the relay to reach n1');
  const w = await worker();
  t.equal((await w.ask('init\r\nruri sip:x\r\n\r\n')).reply, 'Locked', 'an init that cannot be read: refused, never waved through');
  t.equal((await w.ask('stop\r\nfrom: x\r\n\r\n')).reply, 'Error', 'a stop without callid');
  t.equal((await w.ask('start\r\ncallid: z\r\n\r\n')).reply, 'Error', 'a start without dialogid');
  t.same(n1.got, [], 'none of it forwarded');
  t.equal(running.relay.status().queued, 0, 'none of it kept');
  t.equal((await w.ask(ccInit('fine'))).reply, 'Limited', 'the connection still serves');
});

t.test('bad input at the node: a wrong token is refused and nothing is forwarded; junk, an over-long hello and a request before the hello close the connection', async (t) => {
  const n1 = await node(t, 'n1');
  const { running, worker, logs } = await relayTo(t, [n1.address], { token: 'not-the-right-token-xyz' });
  await until(() => logs.some((l) => l.msg === 'node refused the relay' && l.why === 'wrong token'), 5000, 'the refusal');
  const w = await worker();
  t.equal((await w.ask(ccInit('tok'))).reply, 'Error');
  t.same([n1.got, leaderOf(running)], [[], undefined]);
  t.notOk(JSON.stringify(logs).includes('not-the-right-token-xyz'), 'the token is in no log line');

  const raw = async (bytes: string | Buffer): Promise<string> => {
    const s = net.connect(Number(n1.address.split(':')[1]), '127.0.0.1');
    let got = '';
    s.on('data', (c) => (got += c.toString()));
    s.on('error', () => undefined);
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write(bytes);
    await closed;
    return got;
  };
  t.equal(await raw('this is not json\n'), '', 'junk: closed, nothing said');
  t.equal(await raw(`{"t":"hello","v":1,"proxy":"A","token":"${'y'.repeat(8000)}"}\n`), '', 'a hello over 4 KB: closed');
  t.equal(await raw('{"t":"req","id":1,"command":"stop","fields":{"callid":"x"}}\n'), '', 'a request before the hello: closed');
  t.equal(await raw(`{"t":"hello","v":1,"proxy":"A;rm -rf","token":"${TOKEN}"}\n`), '', 'a proxy id that is not one: closed');
  const hello = await raw(`{"t":"hello","v":1,"proxy":"B","token":"${TOKEN}"}\n{"t":"req","id":7,"command":"stop","fields":{"callid":{"x":1}}}\n`);
  t.match(hello, /^\{"t":"welcome"/, 'a good hello is welcomed; the bad request after it closes the connection');
  t.same(n1.got, [], 'nothing reached the door');
});

t.test('bad input at the relay: a node that sends junk is dropped and tried again, the relay keeps serving', async (t) => {
  const junk = net.createServer((s) => { s.on('error', () => undefined); s.once('data', () => s.write('{"t":"welcome","node":"j","epoch":1}\n{"t":"reply","id":"x"}\n')); });
  await new Promise<void>((r) => junk.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => junk.close(() => r())));
  const { running, worker, logs } = await relayTo(t, [`127.0.0.1:${(junk.address() as net.AddressInfo).port}`]);
  await until(() => logs.some((l) => /^LEADER LOST/.test(l.msg) && /unreadable frame/.test(String(l.why))), 5000, 'the junk node dropped');
  const w = await worker();
  t.equal((await w.ask(ccInit('j1'))).reply, 'Error');
  t.ok(running.relay.status().leader === undefined || running.relay.status().leader?.node === 'j');
});

t.test('a call_control.so connection that closes is told to the leader (it reconciles: that worker drops start/stop for 10 s)', async (t) => {
  const n1 = await node(t, 'n1');
  const { running, worker } = await relayTo(t, [n1.address]);
  await until(() => leaderOf(running) === 'n1/x', 5000, 'the relay to reach n1');
  const w = await worker();
  await w.ask(ccInit('cl'));
  w.close();
  await until(() => n1.closedAt.length === 1, 5000, 'the node told');
  t.same(n1.closedAt, ['A']);
});

t.test('relay settings: token or token_file (read, never echoed), nodes as host:port, a proxy id Kamailio could give', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-relay-cfg-'));
  writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  const env = { SCA_RELAY_NODES: '10.0.0.1:8460, [fd00::2]:8460', SCA_RELAY_PROXY_ID: 'edge-a.1', SCA_RELAY_TOKEN_FILE: path.join(dir, 'token') };
  const ok = loadRelayConfig({ env });
  t.ok(ok.ok);
  if (ok.ok) t.match(ok.config, { nodes: ['10.0.0.1:8460', '[fd00::2]:8460'], proxy_id: 'edge-a.1', token: TOKEN, reply_timeout: 0.3, socket: '/run/callcontrol/socket' });
  const bad = (env: Record<string, string>) => { const r = loadRelayConfig({ env }); return r.ok ? '' : r.error; };
  t.match(bad({ SCA_RELAY_NODES: 'n1:8460', SCA_RELAY_PROXY_ID: 'A' }), /exactly one of token and token_file/);
  t.match(bad({ SCA_RELAY_NODES: 'n1', SCA_RELAY_PROXY_ID: 'A', SCA_RELAY_TOKEN: TOKEN }), /nodes\.0: host:port/);
  t.match(bad({ SCA_RELAY_NODES: 'n1:1', SCA_RELAY_PROXY_ID: 'A B', SCA_RELAY_TOKEN: TOKEN }), /proxy_id/);
  t.match(bad({ SCA_RELAY_NODES: 'n1:1', SCA_RELAY_PROXY_ID: 'A', SCA_RELAY_TOKEN: 'short' }), /at least 16/);
  const missing = bad({ SCA_RELAY_NODES: 'n1:1', SCA_RELAY_PROXY_ID: 'A', SCA_RELAY_TOKEN_FILE: path.join(dir, 'nope') });
  t.match(missing, /token_file: ENOENT/);
  t.notOk(bad({ SCA_RELAY_NODES: 'n1:1', SCA_RELAY_PROXY_ID: 'A', SCA_RELAY_TOKEN: `${TOKEN}!`, SCA_RELAY_WINDOW: '0' }).includes(TOKEN), 'an error never shows the token');
});
