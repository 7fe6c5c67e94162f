// DialogRpc against a fake jsonrpcs datagram server that answers with the bytes Kamailio 5.6.3
// sent in the probe run (srjson pretty-printing with tabs; shapes and fault codes as observed).
import dgram from 'node:dgram';
import { waitUntil } from '../../support/wait.js';
import t, { type Test } from 'tap';
import { DialogRpc, parseDialogId, parseUdpAddress, type DialogRpcLogger } from '../../../service/kamailio/dialog-rpc.js';

// Two replies exactly as received from Kamailio 5.6.3 (dlg.dlg_list of a ringing call, dlg.end_dlg
// of an unknown dialog): they pin the srjson() printer below that renders all the other replies.
const EARLY_DLG_LIST =
  '{\n\t"jsonrpc":\t"2.0",\n\t"result":\t{\n\t\t"h_entry":\t102,\n\t\t"h_id":\t8557,\n\t\t"ref":\t1,\n\t\t"call-id":\t"dlgrpc-6e29b2e1@127.0.0.1",\n\t\t"from_uri":\t"sip:caller@127.0.0.1:27080",\n\t\t"to_uri":\t"sip:callee@127.0.0.1:27060",\n\t\t"state":\t2,\n\t\t"start_ts":\t0,\n\t\t"init_ts":\t1795651716,\n\t\t"end_ts":\t0,\n\t\t"duration":\t0,\n\t\t"timeout":\t0,\n\t\t"lifetime":\t43200,\n\t\t"dflags":\t512,\n\t\t"sflags":\t0,\n\t\t"iflags":\t0,\n\t\t"caller":\t{\n\t\t\t"tag":\t"caller-f5d2cc79",\n\t\t\t"contact":\t"sip:caller@127.0.0.1:27080",\n\t\t\t"cseq":\t"467",\n\t\t\t"route_set":\t"",\n\t\t\t"socket":\t"udp:127.0.0.1:27060"\n\t\t},\n\t\t"callee":\t{\n\t\t\t"tag":\tnull,\n\t\t\t"contact":\tnull,\n\t\t\t"cseq":\tnull,\n\t\t\t"route_set":\tnull,\n\t\t\t"socket":\tnull\n\t\t},\n\t\t"profiles":\t[],\n\t\t"variables":\t[]\n\t},\n\t"id":\t1\n}';
const END_DLG_404 = '{\n\t"jsonrpc":\t"2.0",\n\t"error":\t{\n\t\t"code":\t404,\n\t\t"message":\t"Dialog not found"\n\t},\n\t"id":\t10\n}';

/** Kamailio's srjson printing: tab indents, `"key":\tvalue`, empty object as `{\n<indent>}`. */
function srjson(v: unknown, depth = 0): string {
  if (Array.isArray(v)) return v.length === 0 ? '[]' : `[${v.map((x) => srjson(x, depth + 1)).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    const pad = '\t'.repeat(depth + 1);
    const body = Object.entries(v).map(([k, x]) => `${pad}${JSON.stringify(k)}:\t${srjson(x, depth + 1)}`);
    return `{\n${body.join(',\n')}${body.length ? '\n' : ''}${'\t'.repeat(depth)}}`;
  }
  return JSON.stringify(v);
}

const ok = (id: number, result: unknown): string => srjson({ jsonrpc: '2.0', result, id });
const fault = (id: number, code: number, message: string): string => srjson({ jsonrpc: '2.0', error: { code, message }, id });

const leg = (tag: string | null, cseq: string | null) => ({ tag, contact: tag && 'sip:x@127.0.0.1', cseq, route_set: tag && '', socket: tag && 'udp:127.0.0.1:5060' });
/** A dlg.dlg_list result with every field Kamailio 5.6 prints. */
function dialog(o: { hEntry: number; hId: number; state: number; callId?: string; fromTag?: string; cseq?: string; startTs?: number }) {
  const answered = o.state >= 3;
  return {
    h_entry: o.hEntry, h_id: o.hId, ref: answered ? 2 : 1, 'call-id': o.callId ?? 'c1@h', from_uri: 'sip:a@h', to_uri: 'sip:b@h',
    state: o.state, start_ts: o.startTs ?? (answered ? 1795651717 : 0), init_ts: 1795651717, end_ts: 0, duration: 0,
    timeout: answered ? 1795694917 : 0, lifetime: 43200, dflags: answered ? 515 : 512, sflags: 0, iflags: 0,
    caller: leg(o.fromTag ?? 'ft1', o.cseq ?? '1'), callee: answered ? leg('tt1', '0') : leg(null, null), profiles: [], variables: [],
  };
}

interface Req { jsonrpc: string; method: string; params: unknown[]; id: number; raw: string }
type Answer = string | undefined | { text: string; delayMs: number };
type Handler = (req: Req) => Answer;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Waits until `cond` holds; fails loudly if it does not within `ms`. */
const until = (cond: () => boolean, ms = 3000): Promise<void> => waitUntil('the condition', () => cond(), { timeoutMs: ms, everyMs: 2 }).then(() => undefined);

/** A UDP socket on a free port in 27000-27999 (the range this suite may use). */
async function bindInRange(t: Test): Promise<{ socket: dgram.Socket; port: number }> {
  for (let i = 0; i < 200; i++) {
    const port = 27000 + Math.floor(Math.random() * 1000);
    const socket = dgram.createSocket('udp4');
    const bound = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => resolve(true));
    });
    if (bound) {
      t.teardown(() => {
        try {
          socket.close();
        } catch {
          // the test closed it
        }
      });
      return { socket, port };
    }
    socket.close();
  }
  throw new Error('no free UDP port in 27000-27999');
}

/** The fake jsonrpcs: records every request and answers what `handle` returns (undefined: silence). */
async function fakeKamailio(t: Test, handle: Handler) {
  const { socket, port } = await bindInRange(t);
  const requests: Req[] = [];
  const peers: dgram.RemoteInfo[] = [];
  socket.on('message', (buf, rinfo) => {
    const raw = buf.toString('utf8');
    const req = { ...(JSON.parse(raw) as Omit<Req, 'raw'>), raw };
    requests.push(req);
    peers.push(rinfo);
    const a = handle(req);
    if (a === undefined) return;
    const send = (text: string) => socket.send(text, rinfo.port, rinfo.address);
    if (typeof a === 'string') send(a);
    else setTimeout(() => send(a.text), a.delayMs);
  });
  /** Sends any datagram to the client, as Kamailio would reply. */
  const push = (text: string, to = peers[0]) => new Promise<void>((r) => socket.send(text, to!.port, to!.address, () => r()));
  return { port, requests, peers, push };
}

type Logged = { level: 'warn' | 'error'; obj: Record<string, unknown>; msg: string };

function client(t: Test, port: number, timeoutMs = 500, ackWaitMs = 1000) {
  const logs: Logged[] = [];
  const at = (level: Logged['level']) => (obj: object, msg: string) => void logs.push({ level, obj: obj as Record<string, unknown>, msg });
  const log: DialogRpcLogger = { warn: at('warn'), error: at('error') };
  const rpc = new DialogRpc({ address: `udp:127.0.0.1:${port}`, timeoutMs, ackWaitMs, log });
  t.teardown(() => rpc.close());
  return { rpc, logs };
}

t.test('srjson() reproduces the bytes Kamailio sent, so the fake answers like the real one', async (t) => {
  t.equal(ok(1, dialog({ hEntry: 0, hId: 0, state: 2 })).split('\n').length, EARLY_DLG_LIST.split('\n').length);
  const early = JSON.parse(EARLY_DLG_LIST) as { result: Record<string, unknown> };
  t.equal(srjson(early), EARLY_DLG_LIST);
  t.equal(fault(10, 404, 'Dialog not found'), END_DLG_404);
  t.equal(ok(9, {}), '{\n\t"jsonrpc":\t"2.0",\n\t"result":\t{\n\t},\n\t"id":\t9\n}');
});

t.test('parseDialogId takes "h_entry:h_id" as two unsigned 32-bit decimals and nothing else', async (t) => {
  t.same(parseDialogId('288:3830'), { hEntry: 288, hId: 3830 });
  t.same(parseDialogId('0:0'), { hEntry: 0, hId: 0 });
  t.same(parseDialogId('4294967295:4294967295'), { hEntry: 4294967295, hId: 4294967295 });
  for (const junk of [
    '', ':', '1', '1:', ':1', '1:2:3', '4294967296:1', '1:4294967296', '99999999999:1', '-1:5', '1:-5', '+1:2',
    ' 1:2', '1:2 ', '1 :2', '1.5:2', '1e3:1', '0x10:1', '01:2', '1:02', 'abc:def', '١:٢', '1:2\n',
  ]) {
    t.equal(parseDialogId(junk), undefined, JSON.stringify(junk));
  }
});

t.test('addresses: udp:host:port only; a bad one is a configuration error at construction', async (t) => {
  t.same(parseUdpAddress('udp:127.0.0.1:5810'), { host: '127.0.0.1', port: 5810 });
  t.same(parseUdpAddress('udp:[::1]:5810'), { host: '::1', port: 5810 });
  t.same(parseUdpAddress('udp:kamailio.local:5810'), { host: 'kamailio.local', port: 5810 });
  for (const bad of ['unix:/run/kamailio/kamailio_rpc.sock', 'tcp:127.0.0.1:5810', 'udp:127.0.0.1', 'udp:127.0.0.1:0',
    'udp:127.0.0.1:65536', 'udp:::1:5810', 'udp:[nothost]:5810', '127.0.0.1:5810']) {
    t.equal(parseUdpAddress(bad), undefined, bad);
  }
  t.throws(() => new DialogRpc({ address: '/run/kamailio/rpc.sock', log: { warn() {}, error() {} } }), TypeError);
});

t.test('the request is one JSON-RPC 2.0 datagram with integer params and a numeric id', async (t) => {
  const k = await fakeKamailio(t, (r) => ok(r.id, {}));
  const { rpc } = client(t, k.port);
  t.equal(await rpc.endDialog(3012, 4177), 'ended');
  t.equal(k.requests.length, 1);
  t.equal(k.requests[0]!.raw, `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[3012,4177],"id":${k.requests[0]!.id}}`);
  t.ok(Number.isInteger(k.requests[0]!.id) && k.requests[0]!.id > 0);
});

t.test('concurrent calls each get their own reply, though Kamailio answers them in reverse order', async (t) => {
  const held: Req[] = [];
  const k = await fakeKamailio(t, (r) => void held.push(r));
  const { rpc } = client(t, k.port, 2000);
  const n = 50;
  const calls = Array.from({ length: n }, (_, i) => rpc.call('test.echo', [i, `p${i}`]));
  await until(() => held.length === n);
  t.equal(held.length, n);
  t.equal(new Set(held.map((r) => r.id)).size, n, 'ids are distinct');
  for (const r of [...held].reverse()) await k.push(ok(r.id, { echoed: r.params }));
  const results = await Promise.all(calls);
  results.forEach((r, i) => t.same(r, { ok: true, result: { echoed: [i, `p${i}`] } }, `call ${i}`));
});

t.test('a call without reply times out alone; its late reply is ignored with a warning', async (t) => {
  const k = await fakeKamailio(t, (r) =>
    r.method === 'dlg.list' ? undefined : r.method === 'slow' ? { text: ok(r.id, 'late'), delayMs: 50 } : ok(r.id, r.method));
  const { rpc, logs } = client(t, k.port, 150);
  const [lost, fine] = await Promise.all([rpc.call('dlg.list', []), rpc.call('dlg.stats_active', [])]);
  t.same(fine, { ok: true, result: 'dlg.stats_active' }, 'the answered call is not held up by the lost one');
  t.match(lost, { ok: false, code: 'timeout' }, 'the lost one ends by its timeout');
  t.same(await rpc.call('slow', []), { ok: true, result: 'late' }, 'a reply inside the timeout still counts');

  const lostId = k.requests.find((r) => r.method === 'dlg.list')!.id;
  await k.push(ok(lostId, [{ h_entry: 1 }]));
  await until(() => logs.length > 0);
  t.equal(logs.length, 1);
  t.match(logs[0], { level: 'warn', obj: { id: lostId } });
  t.same(await rpc.call('after', []), { ok: true, result: 'after' }, 'the client keeps working');
});

t.test('junk datagrams are ignored with a warning and never settle a call', async (t) => {
  const held: Req[] = [];
  const k = await fakeKamailio(t, (r) => void held.push(r));
  const { rpc, logs } = client(t, k.port, 2000);
  const pending = rpc.call('dlg.stats_active', []);
  await until(() => held.length === 1);
  const id = held[0]!.id;
  const junk = [
    'this is not json', '', '{"jsonrpc":"2.0","result":{},"id":', srjson([{ id }]), ok(id + 1000, {}),
    srjson({ jsonrpc: '2.0', result: {}, id: String(id) }), srjson({ jsonrpc: '2.0', result: {} }), 'null',
  ];
  for (const j of junk) await k.push(j);
  await until(() => logs.length >= junk.length);
  t.equal(logs.length, junk.length, 'one warning per junk datagram');
  t.ok(logs.every((l) => l.level === 'warn'));
  const early = await Promise.race([pending.then(() => 'settled'), sleep(30).then(() => 'still waiting')]);
  t.equal(early, 'still waiting');
  await k.push(fault(id, 500, 'Method Not Found'));
  t.same(await pending, { ok: false, code: 500, message: 'Method Not Found' });
});

t.test('only the peer can answer: a forged reply from another port does not reach the client', async (t) => {
  const held: Req[] = [];
  const k = await fakeKamailio(t, (r) => void held.push(r));
  const { rpc, logs } = client(t, k.port, 1000);
  const pending = rpc.call('dlg.end_dlg', [1, 2]);
  await until(() => held.length === 1);
  const { socket: forger } = await bindInRange(t);
  await new Promise<void>((r) => forger.send(fault(held[0]!.id, 404, 'Dialog not found'), k.peers[0]!.port, '127.0.0.1', () => r()));
  await sleep(30);
  await k.push(ok(held[0]!.id, {}));
  t.same(await pending, { ok: true, result: {} });
  t.equal(logs.length, 0);
});

t.test('endDialog: {} is ended, 404 is not-found, anything else (fault, timeout) is failed', async (t) => {
  const k = await fakeKamailio(t, (r) => {
    const [hEntry] = r.params as number[];
    if (hEntry === 1) return ok(r.id, {});
    if (hEntry === 2) return fault(r.id, 404, 'Dialog not found');
    if (hEntry === 3) return fault(r.id, 500, 'Invalid parameters');
    return undefined;
  });
  const { rpc, logs } = client(t, k.port, 100);
  t.equal(await rpc.endDialog(1, 10), 'ended');
  t.equal(await rpc.endDialog(2, 10), 'not-found');
  t.equal(await rpc.endDialog(3, 10), 'failed');
  t.equal(await rpc.endDialog(4, 10), 'failed');
  t.equal(logs.filter((l) => l.level === 'warn').length, 2, 'the two failures are logged, not-found is not');
});

t.test('findDialog maps the dlg.dlg_list shape; {} is undefined; the From-tag is sent only when given', async (t) => {
  const k = await fakeKamailio(t, (r) => {
    const [callId] = r.params as string[];
    if (callId === 'dlgrpc-6e29b2e1@127.0.0.1') return EARLY_DLG_LIST.replace('"id":\t1', `"id":\t${r.id}`);
    if (callId === 'up@h') return ok(r.id, dialog({ hEntry: 576, hId: 9208, state: 4, callId, fromTag: 'caller-96bd61ba', cseq: '192', startTs: 1795651717 }));
    if (callId === 'odd@h') return ok(r.id, { ...dialog({ hEntry: 1, hId: 1, state: 4 }), h_id: '1' });
    if (callId === 'oddcseq@h') return ok(r.id, dialog({ hEntry: 1, hId: 1, state: 2, cseq: '1 INVITE' }));
    if (callId === 'err@h') return fault(r.id, 500, 'Internal error');
    return ok(r.id, {});
  });
  const { rpc } = client(t, k.port);
  t.same(await rpc.findDialog('dlgrpc-6e29b2e1@127.0.0.1', 'caller-f5d2cc79'),
    { hEntry: 102, hId: 8557, state: 2, startTs: 0, fromTag: 'caller-f5d2cc79', callerCseq: '467' });
  t.same(k.requests.at(-1)!.params, ['dlgrpc-6e29b2e1@127.0.0.1', 'caller-f5d2cc79']);
  t.same(await rpc.findDialog('up@h'), { hEntry: 576, hId: 9208, state: 4, startTs: 1795651717, fromTag: 'caller-96bd61ba', callerCseq: '192' });
  t.same(k.requests.at(-1)!.params, ['up@h']);
  t.equal(await rpc.findDialog('missing@h', 'x'), undefined);
  t.equal(await rpc.findDialog('odd@h'), 'failed', 'an h_id that is not a number');
  t.equal(await rpc.findDialog('oddcseq@h'), 'failed', 'a CSeq that tm could not look up');
  t.equal(await rpc.findDialog('err@h'), 'failed');
});

t.test('cancelRinging without a reply is tm.cancel [callid, "cseq"] and maps its 400s by message', async (t) => {
  const k = await fakeKamailio(t, (r) => {
    const [callId] = r.params as string[];
    if (callId === 'ring@h') return ok(r.id, 'branches remaining (waiting for timeout)');
    if (callId === 'gone@h') return fault(r.id, 400, 'Transaction not found');
    return fault(r.id, 400, 'Callid and CSeq expected as parameters');
  });
  const { rpc } = client(t, k.port);
  t.equal(await rpc.cancelRinging('ring@h', '467'), 'cancelled');
  t.match(k.requests.at(-1), { method: 'tm.cancel', params: ['ring@h', '467'] });
  t.equal(typeof k.requests.at(-1)!.params[1], 'string', 'a numeric CSeq is refused by tm.cancel on 5.6');
  t.equal(await rpc.cancelRinging('gone@h', '1'), 'not-found');
  t.equal(await rpc.cancelRinging('other@h', '1'), 'failed');
  await t.rejects(rpc.cancelRinging('ring@h', '467 INVITE'), RangeError, 'a CSeq with the method is a bug, not a value');
});

t.test('cancelRinging with a reply is tm.reply_callid with a numeric code and our To-tag', async (t) => {
  const k = await fakeKamailio(t, (r) => {
    const callId = r.params[2];
    if (callId === 'ring@h') return ok(r.id, {});
    if (callId === 'gone@h') return fault(r.id, 404, 'Transaction not found');
    if (callId === 'answered@h') return fault(r.id, 500, 'Reply failed');
    return fault(r.id, 400, 'To tag expected');
  });
  const { rpc } = client(t, k.port);
  const reply = { code: 402, reason: 'Payment Required', toTag: 'svc-1' };
  t.equal(await rpc.cancelRinging('ring@h', '467', reply), 'cancelled');
  t.equal(k.requests.at(-1)!.raw,
    `{"jsonrpc":"2.0","method":"tm.reply_callid","params":[402,"Payment Required","ring@h","467","svc-1"],"id":${k.requests.at(-1)!.id}}`);
  t.equal(await rpc.cancelRinging('gone@h', '1', reply), 'not-found');
  t.equal(await rpc.cancelRinging('answered@h', '1', reply), 'already-final');
  t.equal(await rpc.cancelRinging('other@h', '1', reply), 'failed');
  const sent = k.requests.length;
  await t.rejects(rpc.cancelRinging('ring@h', '1', { ...reply, code: 200 }), RangeError);
  await t.rejects(rpc.cancelRinging('ring@h', '1', { ...reply, code: 480.5 }), RangeError);
  t.equal(k.requests.length, sent, 'nothing is sent for a code Kamailio would garble');
});

t.test('endCall: BYE once answered, CANCEL while ringing (never dlg.end_dlg, a no-op there on 5.6)', async (t) => {
  const states: Record<string, number> = { 'up@h': 4, 'noack@h': 3, 'ring@h': 2, 'new@h': 1, 'over@h': 5 };
  let noAckLooks = 0;
  const k = await fakeKamailio(t, (r) => {
    if (r.method === 'dlg.dlg_list') {
      // The ACK of noack@h arrives after two looks.
      const state = r.params[0] === 'noack@h' && ++noAckLooks > 2 ? 4 : states[r.params[0] as string];
      return ok(r.id, state === undefined ? {} : dialog({ hEntry: state, hId: 77, state, cseq: '31' }));
    }
    return ok(r.id, r.method === 'tm.cancel' ? 'branches remaining (waiting for timeout)' : {});
  });
  const { rpc } = client(t, k.port);
  const sentFor = async (callId: string) => {
    const from = k.requests.length;
    const out = await rpc.endCall(callId, 'ft1');
    return { out, sent: k.requests.slice(from).map((r) => `${r.method} ${JSON.stringify(r.params)}`) };
  };
  t.same(await sentFor('up@h'), { out: 'ended', sent: ['dlg.dlg_list ["up@h","ft1"]', 'dlg.end_dlg [4,77]'] });
  t.same(await sentFor('noack@h'), { out: 'ended', sent: [...Array(3).fill('dlg.dlg_list ["noack@h","ft1"]'), 'dlg.end_dlg [4,77]'] },
    'answered but not ACKed: waits for the ACK (dlg.end_dlg does nothing before it on 5.6)');
  t.same(await sentFor('ring@h'), { out: 'cancelled', sent: ['dlg.dlg_list ["ring@h","ft1"]', 'tm.cancel ["ring@h","31"]'] });
  t.same(await sentFor('new@h'), { out: 'cancelled', sent: ['dlg.dlg_list ["new@h","ft1"]', 'tm.cancel ["new@h","31"]'] });
  t.same(await sentFor('over@h'), { out: 'not-found', sent: ['dlg.dlg_list ["over@h","ft1"]'] }, 'state 5 lingers in the table');
  t.same(await sentFor('none@h'), { out: 'not-found', sent: ['dlg.dlg_list ["none@h","ft1"]'] });
});

t.test('endAnswered: waits for the ACK before dlg.end_dlg; without one it gives up and says so', async (t) => {
  let looks = 0;
  const k = await fakeKamailio(t, (r) => {
    if (r.method === 'dlg.dlg_list') {
      if (r.params[0] === 'gone@h') return ok(r.id, {});
      if (r.params[0] === 'never@h') return ok(r.id, dialog({ hEntry: 5, hId: 6, state: 3 }));
      return ok(r.id, dialog({ hEntry: 5, hId: 6, state: looks++ < 3 ? 3 : 4 }));
    }
    return ok(r.id, {});
  });
  const { rpc, logs } = client(t, k.port, 500, 400);
  t.equal(await rpc.endAnswered('late@h', 5, 6), 'ended');
  t.same(k.requests.map((r) => r.method), ['dlg.dlg_list', 'dlg.dlg_list', 'dlg.dlg_list', 'dlg.dlg_list', 'dlg.end_dlg']);
  t.equal(await rpc.endAnswered('gone@h', 5, 6), 'not-found');
  const before = k.requests.length;
  t.equal(await rpc.endAnswered('never@h', 5, 6), 'failed');
  t.notOk(k.requests.slice(before).some((r) => r.method === 'dlg.end_dlg'), 'no dlg.end_dlg that would do nothing');
  t.match(logs.at(-1)!.msg, /without ACK/);
});

t.test('endCall: when the callee answered before our reply, it looks again and sends BYE', async (t) => {
  let looks = 0;
  const k = await fakeKamailio(t, (r) => {
    if (r.method === 'dlg.dlg_list') return ok(r.id, dialog({ hEntry: 9, hId: 8, state: looks++ === 0 ? 2 : 4, cseq: '5' }));
    if (r.method === 'tm.reply_callid') return fault(r.id, 500, 'Reply failed');
    return ok(r.id, {});
  });
  const { rpc } = client(t, k.port);
  t.equal(await rpc.endCall('c@h', 'ft1', { code: 480, reason: 'Temporarily Unavailable', toTag: 'svc-2' }), 'ended');
  t.same(k.requests.map((r) => r.method), ['dlg.dlg_list', 'tm.reply_callid', 'dlg.dlg_list', 'dlg.end_dlg']);
  t.same(k.requests.at(-1)!.params, [9, 8]);
});

t.test('endCall: a lookup failure ends nothing', async (t) => {
  const k = await fakeKamailio(t, () => undefined);
  const { rpc } = client(t, k.port, 80);
  t.equal(await rpc.endCall('c@h', 'ft1'), 'failed');
  t.same(k.requests.map((r) => r.method), ['dlg.dlg_list']);
});

t.test('close(): calls in flight and later calls resolve as transport failures, twice is harmless', async (t) => {
  const k = await fakeKamailio(t, () => undefined);
  const { rpc } = client(t, k.port, 5000);
  const inFlight = rpc.call('dlg.list', []);
  await until(() => k.requests.length === 1);
  rpc.close();
  t.same(await inFlight, { ok: false, code: 'transport', message: 'closed' });
  t.same(await rpc.call('dlg.list', []), { ok: false, code: 'transport', message: 'closed' });
  t.equal(await rpc.endDialog(1, 2), 'failed');
  t.doesNotThrow(() => rpc.close());
});

t.test('nothing listening: calls fail as transport errors at once instead of waiting the timeout', async (t) => {
  const { socket, port } = await bindInRange(t);
  await new Promise<void>((r) => socket.close(() => r()));
  // A timeout far beyond the test's own: only the refusal can end the call in time, and its code says so.
  const { rpc, logs } = client(t, port, 600_000);
  const r = await rpc.call('dlg.stats_active', []);
  t.match(r, { ok: false, code: 'transport', message: /refused/ }, 'a transport error (the refusal), not a timeout');
  t.equal(logs.length, 1);
  t.match(logs[0], { level: 'warn', msg: /refused/ });
});
