// Counted calls reconciled with Kamailio's dialogs (service/modules/cc-dialogs.ts) against a
// jsonrpcs datagram server in the test that answers dlg.dlg_list as Kamailio 5.6 does: a stop
// that never arrived is found by the pass, billed to the last moment the call was seen; a call
// too new is left for later; a Kamailio that does not answer leaves every call counted.
import dgram from 'node:dgram';
import t, { type Test } from 'tap';
import { CcEngine } from '../../../service/cc/engine.js';
import type { CcWrite } from '../../../service/cc/types.js';
import { DialogRpc } from '../../../service/kamailio/dialog-rpc.js';
import { CcDialogs } from '../../../service/modules/cc-dialogs.js';

const T0 = 1_800_000_000;
const JOE = 'joe@example.com';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** dlg.dlg_list answered from `dialogs` (Call-ID → live or not); silence while `mute`. */
async function jsonrpcs(t: Test, dialogs: Map<string, { state: number; startTs: number }>) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r)); // bound and kept: the port is ours
  const state = { mute: false, asked: [] as string[] };
  socket.on('message', (buf, rinfo) => {
    const req = JSON.parse(buf.toString()) as { id: number; method: string; params: string[] };
    state.asked.push(req.params[0]!);
    if (state.mute) return;
    const d = dialogs.get(req.params[0]!);
    const result = d ? { h_entry: 1, h_id: 2, state: d.state, start_ts: d.startTs, caller: { tag: req.params[1] ?? 'f', cseq: '1' } } : {};
    socket.send(JSON.stringify({ jsonrpc: '2.0', result, id: req.id }), rinfo.port, rinfo.address);
  });
  t.teardown(() => socket.close());
  return { port: (socket.address()).port, state };
}

t.test('the minute\'s pass: a lost stop is found, billed to when the call was last seen; a new call waits', async (t) => {
  const live = new Map<string, { state: number; startTs: number }>();
  const k = await jsonrpcs(t, live);
  let now = T0;
  const engine = new CcEngine();
  engine.setAccount(JOE, { prepaid: true, balance: 10_000 }, T0);
  engine.setRate({ plan: 'default', prefix: '', connectFee: 0, pricePerMinute: 60, initialPulse: 1, nextPulse: 1 });
  const writes: CcWrite[] = [];
  const rpc = new DialogRpc({ address: `udp:127.0.0.1:${k.port}`, timeoutMs: 300, log: quiet });
  t.teardown(() => rpc.close());
  const cc = new CcDialogs({ engine, dialogs: () => rpc, clock: () => now, log: quiet, changed: () => undefined, run: async (e) => { writes.push(...e.writes); } });
  t.teardown(() => cc.stop());
  const admit = (callId: string) => engine.admit({ callId, fromTag: `f-${callId}`, from: `<sip:${JOE}>;tag=x`, ruri: 'sip:200@example.com', diverter: undefined, sourceIp: '192.0.2.1', door: 'socket' }, now);
  admit('old');
  engine.answered({ callId: 'old', hEntry: 1, hId: 2 }, T0);
  live.set('old', { state: 4, startTs: T0 });
  now = T0 + 70;
  await cc.reconcile(60);
  t.same(k.state.asked, ['old'], 'asked for');
  now = T0 + 100;
  admit('new');
  t.equal(engine.callsOf().find((c) => c.callId === 'old')?.seenAt, T0 + 70, 'found: seen now');
  live.delete('old'); // its stop is lost (call_control.so's 10 s pause after a failure)
  now = T0 + 130;
  await cc.reconcile(60);
  t.same(k.state.asked, ['old', 'old'], 'only calls older than a minute are asked for');
  const cdr = writes.flatMap((w) => (w.kind === 'cdr' ? [w.cdr] : [])).find((c) => c.callId === 'old');
  t.same([cdr?.cause, cdr?.durationSeconds, cdr?.amount], ['stale', 70, 70], 'billed up to the pass that last found it, not to now');
  t.same(engine.callsOf().map((c) => c.callId), ['new'], 'the new call is still counted');
});

t.test('Kamailio not answering: every call stays counted, and a loss is remembered until a pass completes', async (t) => {
  const k = await jsonrpcs(t, new Map());
  let now = T0;
  const engine = new CcEngine();
  engine.setAccount(JOE, { maxCalls: 5 }, T0);
  const rpc = new DialogRpc({ address: `udp:127.0.0.1:${k.port}`, timeoutMs: 200, log: quiet });
  t.teardown(() => rpc.close());
  const writes: CcWrite[] = [];
  const cc = new CcDialogs({ engine, dialogs: () => rpc, clock: () => now, log: quiet, changed: () => undefined, run: async (e) => { writes.push(...e.writes); } });
  t.teardown(() => cc.stop());
  engine.admit({ callId: 'c1', fromTag: 'f1', from: `<sip:${JOE}>;tag=x`, ruri: 'sip:200@example.com', diverter: undefined, sourceIp: '192.0.2.1', door: 'socket' }, T0);
  engine.answered({ callId: 'c1', hEntry: 1, hId: 1 }, T0);
  cc.suspectLoss(T0 + 4, false); // Kamailio went away at T0 + 4
  k.state.mute = true;
  now = T0 + 10;
  await cc.reconcile(5);
  t.equal(engine.callsOf().length, 1, 'no answer: not ended');
  k.state.mute = false;
  now = T0 + 20;
  await cc.reconcile(5);
  t.equal(engine.callsOf().length, 0, 'gone at the next pass');
  const [cdr] = writes.flatMap((w) => (w.kind === 'cdr' ? [w.cdr] : []));
  t.same([cdr?.cause, cdr?.durationSeconds], ['stale', 4], 'answered at T0, lost with Kamailio at T0 + 4: 4 s, not the 20 s to the pass');
});
