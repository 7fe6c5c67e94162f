// The call-control socket against real unix sockets, with clients that send the bytes
// Kamailio 5.6's call_control.so sends (spec call-control.md, section 8).
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitUntil } from '../../support/wait.js';
import t, { type Test } from 'tap';
import {
  CallControlFramer,
  CallControlSocketServer,
  parseRequest,
  type CallControlRequest,
  type CallControlSocketOptions,
} from '../../../service/kamailio/call-control-socket.js';

// As received from call_control.so (JSON-unquoted), section 8.
const INIT = 'init\r\nruri: sip:1000@127.0.0.1:5800\r\ndiverter: None\r\nsourceip: 127.0.0.1\r\ncallid: 1-9069@127.0.0.1\r\nfrom: sipp <sip:sipp@127.0.0.1:5830>\r\nfromtag: 9069SIPpTag001\r\nsip_application: audio\r\n\r\n';
const START = 'start\r\ncallid: 1-9069@127.0.0.1\r\ndialogid: 288:3830\r\n\r\n';
const STOP = 'stop\r\ncallid: 1-9203@127.0.0.1\r\n\r\n';
const INIT_FIELDS = {
  ruri: 'sip:1000@127.0.0.1:5800',
  diverter: 'None',
  sourceip: '127.0.0.1',
  callid: '1-9069@127.0.0.1',
  from: 'sipp <sip:sipp@127.0.0.1:5830>',
  fromtag: '9069SIPpTag001',
  sip_application: 'audio',
};
const stop = (callid: string): string => `stop\r\ncallid: ${callid}\r\n\r\n`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Waits until `cond` holds; fails loudly if it does not within `ms`. */
const until = (cond: () => boolean, ms = 3000): Promise<void> => waitUntil('the condition', () => cond(), { timeoutMs: ms, everyMs: 5 }).then(() => undefined);

/** What the fake server of the section-8 run answered: Limited to init, Ok to the rest. */
const likeSection8 = (req: CallControlRequest): string => (req.command === 'init' ? 'Limited' : 'Ok');

type Logged = { level: 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string };

/** A listening server in a fresh temp dir (the socket's parent dirs do not exist yet); closed at teardown. */
async function serve(t: Test, opts: Partial<CallControlSocketOptions> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-cc-'));
  const file = opts.path ?? path.join(dir, 'run', 'callcontrol', 'socket');
  const logs: Logged[] = [];
  const seen: CallControlRequest[] = [];
  const at = (level: Logged['level']) => (obj: object, msg: string) => void logs.push({ level, obj: obj as Record<string, unknown>, msg });
  const inner = opts.handle ?? likeSection8;
  const server = new CallControlSocketServer({
    path: file,
    log: { info: at('info'), warn: at('warn'), error: at('error') },
    ...opts,
    handle: (req) => {
      seen.push(req);
      return inner(req);
    },
  });
  await server.listen();
  t.teardown(() => server.close());
  const logged = (level: Logged['level']) => logs.filter((l) => l.level === level);
  return { server, file, dir, seen, logged };
}

/** Plays one call_control worker: writes raw bytes, keeps every byte the server sends. */
class Worker {
  received = '';
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => (this.received += c.toString('utf8')));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static connect(t: Test, file: string): Promise<Worker> {
    return new Promise((resolve, reject) => {
      const s = net.connect(file);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        t.teardown(() => void s.destroy());
        resolve(new Worker(s));
      });
    });
  }

  send(bytes: string): Promise<void> {
    return new Promise((r) => this.socket.write(bytes, () => r()));
  }

  /** Like the module: send one request, read until a chunk holds CRLF, return what came. */
  async ask(bytes: string): Promise<string> {
    const from = this.received.length;
    await this.send(bytes);
    await until(() => this.received.slice(from).includes('\r\n'));
    return this.received.slice(from);
  }

  async replies(n: number): Promise<string> {
    await until(() => this.received.split('\r\n').length > n);
    return this.received;
  }
}

t.test('parseRequest: the section-8 init gives its command and every field verbatim', async (t) => {
  const r = parseRequest(INIT.split('\r\n').filter(Boolean));
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.value.command, 'init');
  t.same({ ...r.value.fields }, INIT_FIELDS);
});

t.test('parseRequest: keys are lower-cased, values split at the first colon-whitespace only', async (t) => {
  const r = parseRequest(['start', 'CallID: a84b4c76e66710@pc33', 'DialogId:\t3012:4177', 'from: "A: B" <sip:a@b>;tag=1']);
  t.same(r.ok && { ...r.value.fields }, { callid: 'a84b4c76e66710@pc33', dialogid: '3012:4177', from: '"A: B" <sip:a@b>;tag=1' });
});

t.test('parseRequest: a field line without colon-whitespace or with an empty key is an error value', async (t) => {
  for (const bad of [['init', 'ruri sip:1000@x'], ['init', 'ruri:sip:1000@x'], ['init', 'diverter:'], ['stop', ': x'], []]) {
    const r = parseRequest(bad);
    t.equal(r.ok, false, JSON.stringify(bad));
    t.match(!r.ok && r.error, /bad field line|empty request/);
  }
});

t.test('the framer yields the same requests however the bytes are split; bare LF and blank lines between requests are fine', async (t) => {
  const wire = Buffer.from(`\r\n\r\n${INIT}${START}\n  \n${STOP.replace(/\r\n/g, '\n')}`);
  for (const step of [1, 2, 7, wire.length]) {
    const f = new CallControlFramer();
    const got: string[] = [];
    for (let i = 0; i < wire.length; i += step) {
      f.push(wire.subarray(i, i + step));
      for (let r = f.next(); r; r = f.next()) got.push(r.ok ? `${r.value.command} ${r.value.fields.callid}` : `error ${r.error}`);
    }
    t.same(got, ['init 1-9069@127.0.0.1', 'start 1-9069@127.0.0.1', 'stop 1-9203@127.0.0.1'], `chunks of ${step}`);
    t.equal(f.buffered, 0);
  }
});

t.test('the framer turns an over-long line or request into one error and then carries on', async (t) => {
  const f = new CallControlFramer(64, 256);
  f.push(Buffer.from(`init\r\nfrom: ${'x'.repeat(100)}\r\ncallid: 1\r\n\r\n${STOP}`));
  t.match(f.next(), { ok: false, error: 'line over 64 bytes' });
  t.match(f.next(), { ok: true, value: { command: 'stop' } });
  t.equal(f.next(), undefined);

  const pad = Array.from({ length: 10 }, (_, i) => `x-pad${i}: ${'y'.repeat(40)}\r\n`).join('');
  f.push(Buffer.from(`init\r\n${pad}\r\n${STOP}`));
  t.match(f.next(), { ok: false, error: 'request over 256 bytes' });
  t.match(f.next(), { ok: true, value: { command: 'stop' } });
  t.equal(f.next(), undefined);
});

t.test('the framer keeps at most a line limit plus one chunk of a line that never ends, and answers it once', async (t) => {
  const f = new CallControlFramer(64, 256);
  let most = 0;
  f.push(Buffer.from('init\r\nfrom: '));
  let early = 0;
  for (let i = 0; i < 1000; i++) {
    f.push(Buffer.alloc(1000, 0x78));
    if (f.next()) early++;
    most = Math.max(most, f.buffered);
  }
  t.equal(early, 0, 'no answer before the request ends');
  t.ok(most <= 64, `buffered at most ${most} bytes after framing`);
  f.push(Buffer.from(`xxx\r\ncallid: 1\r\n\r\n${STOP}`));
  t.match(f.next(), { ok: false, error: 'line over 64 bytes' });
  t.match(f.next(), { ok: true, value: { command: 'stop' } });
  t.equal(f.next(), undefined);
});

t.test('the section-8 exchange: byte-exact replies, and the handler sees the parsed fields', async (t) => {
  const { file, seen } = await serve(t);
  const w = await Worker.connect(t, file);
  t.equal(await w.ask(INIT), 'Limited\r\n');
  t.equal(await w.ask(START), 'Ok\r\n');
  t.equal(await w.ask(STOP), 'Ok\r\n');
  // The 1.3 example, with a quoted display name and the whole From body.
  const alice = 'init\r\nruri: sip:0031650222333@example.com\r\ndiverter: None\r\nsourceip: 192.0.2.10\r\ncallid: a84b4c76e66710@pc33\r\nfrom: "Alice" <sip:alice@example.com>;tag=1928301774\r\nfromtag: 1928301774\r\nsip_application: audio\r\n\r\n';
  t.equal(await w.ask(alice), 'Limited\r\n');
  // One more request: its reply follows the others directly, so nothing else was written between.
  t.equal(await w.ask(STOP), 'Ok\r\n');
  t.equal(w.received, 'Limited\r\nOk\r\nOk\r\nLimited\r\nOk\r\n', 'nothing else is ever written');
  t.same(seen.map((r) => r.command), ['init', 'start', 'stop', 'init', 'stop']);
  t.same({ ...seen[0]?.fields }, INIT_FIELDS);
  t.same({ ...seen[1]?.fields }, { callid: '1-9069@127.0.0.1', dialogid: '288:3830' });
  t.same({ ...seen[2]?.fields }, { callid: '1-9203@127.0.0.1' });
  t.equal(seen[3]?.fields.from, '"Alice" <sip:alice@example.com>;tag=1928301774');
});

t.test('two requests in one chunk and a third while they wait: answered in order, each handler starting only after the previous reply is written', async (t) => {
  const events: string[] = [];
  const { file } = await serve(t, {
    handle: async (req) => {
      events.push(`start ${req.command}`);
      if (req.command === 'init') await sleep(80); // slower than the second, so overlap would reorder
      events.push(`end ${req.command}`);
      return likeSection8(req);
    },
  });
  const w = await Worker.connect(t, file);
  // Record the server's writes: the order of handler calls and replies is the point of this test.
  // Restored before the first assertion, as tap's own output goes through a socket too.
  const realWrite = net.Socket.prototype.write;
  const restore = (): void => void (net.Socket.prototype.write = realWrite);
  t.teardown(restore);
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]): boolean {
    if (this !== w.socket) events.push(`write ${String(args[0])}`);
    return Reflect.apply(realWrite, this, args) as boolean;
  } as typeof realWrite;

  await w.send(INIT + STOP);
  await until(() => events.includes('start init'), 2000);
  await w.send(START); // arrives while init is still being handled
  const got = await w.replies(3);
  restore();
  t.equal(got, 'Limited\r\nOk\r\nOk\r\n');
  t.same(events, ['start init', 'end init', 'write Limited\r\n', 'start stop', 'end stop', 'write Ok\r\n', 'start start', 'end start', 'write Ok\r\n']);
});

t.test('a request written one byte at a time is handled once, when its empty line is complete', async (t) => {
  const { file, seen } = await serve(t);
  const w = await Worker.connect(t, file);
  for (const byte of INIT.slice(0, -1)) {
    await w.send(byte);
    await new Promise((r) => setImmediate(r));
  }
  await sleep(30);
  t.equal(seen.length, 0, 'no handler call before the last byte');
  t.equal(w.received, '');
  await w.send('\n');
  t.equal(await w.replies(1), 'Limited\r\n');
  t.equal(seen.length, 1);
  t.same({ ...seen[0]?.fields }, INIT_FIELDS);
});

t.test('20 connections at once are served concurrently, each getting its own reply', async (t) => {
  let inflight = 0;
  let most = 0;
  let peakConnections = 0;
  let allIn: () => void = () => undefined;
  const everyone = new Promise<void>((r) => (allIn = r));
  const { server, file } = await serve(t, {
    handle: async (req) => {
      most = Math.max(most, ++inflight);
      peakConnections = Math.max(peakConnections, server.connections);
      if (inflight === 20) allIn();
      await Promise.race([everyone, sleep(2000)]); // a server that serialised connections would stall here
      inflight--;
      return Number(req.fields.callid) % 2 === 0 ? 'Limited' : 'No limit';
    },
  });
  const workers = await Promise.all(Array.from({ length: 20 }, () => Worker.connect(t, file)));
  const replies = await Promise.all(workers.map((w, i) => w.ask(INIT.replace('callid: 1-9069@127.0.0.1', `callid: ${i}`))));
  t.equal(most, 20, 'all 20 handlers were in flight together');
  t.equal(peakConnections, 20);
  t.same(replies, workers.map((_, i) => (i % 2 === 0 ? 'Limited\r\n' : 'No limit\r\n')));
});

t.test('malformed requests get Error without reaching the handler, and the connection serves the next request', async (t) => {
  const { file, seen, logged } = await serve(t, { maxLineBytes: 256, maxRequestBytes: 1024 });
  const w = await Worker.connect(t, file);
  const pad = Array.from({ length: 40 }, (_, i) => `x-pad${i}: ${'y'.repeat(40)}\r\n`).join('');
  const bad = [
    'init\r\nruri sip:1000@127.0.0.1\r\n\r\n', // no separator
    'init\r\nruri:sip:1000@127.0.0.1\r\n\r\n', // colon not followed by whitespace
    `init\r\nfrom: ${'x'.repeat(1000)}\r\ncallid: 1\r\n\r\n`, // over-long line
    `init\r\n${pad}\r\n`, // over-long request
  ];
  for (const req of bad) {
    t.equal(await w.ask(req), 'Error\r\n', req.slice(0, 30));
    t.equal(await w.ask(STOP), 'Ok\r\n', 'the next request works');
  }
  // An over-long line that arrives in pieces, none with a line end until well past the limit.
  await w.send('init\r\nfrom: ');
  for (let i = 0; i < 5; i++) {
    await w.send('z'.repeat(200));
    await sleep(5);
  }
  t.equal(await w.ask('\r\ncallid: 2\r\n\r\n'), 'Error\r\n');
  t.equal(await w.ask(STOP), 'Ok\r\n'); // the last reply: anything written before it is in by now
  t.equal(w.received, 'Error\r\nOk\r\n'.repeat(5), 'one Error per bad request, nothing more');
  t.same(seen.map((r) => r.command), ['stop', 'stop', 'stop', 'stop', 'stop']);
  t.equal(logged('warn').filter((l) => l.msg.startsWith('malformed')).length, 5);
});

t.test('a handler that throws or rejects gives Error, is logged, and the connection carries on', async (t) => {
  const { file, logged } = await serve(t, {
    handle: (req) => {
      if (req.command === 'init') throw new Error('boom');
      if (req.command === 'start') return Promise.reject(new Error('later boom'));
      return 'Ok';
    },
  });
  const w = await Worker.connect(t, file);
  t.equal(await w.ask(INIT), 'Error\r\n');
  t.equal(await w.ask(START), 'Error\r\n');
  t.equal(await w.ask(STOP), 'Ok\r\n');
  t.same(logged('error').map((l) => l.obj.err), ['boom', 'later boom']);
});

t.test('a handler reply with CR or LF inside (or empty) is never written raw: Error instead, logged', async (t) => {
  const unsendable = ['Ok\r\nOk', 'Limited\n', 'No\rlimit', ''];
  const { file, logged } = await serve(t, { handle: (req) => unsendable[Number(req.fields.callid)] ?? 'Ok' });
  const w = await Worker.connect(t, file);
  for (let i = 0; i < unsendable.length; i++) t.equal(await w.ask(stop(String(i))), 'Error\r\n', JSON.stringify(unsendable[i]));
  t.equal(await w.ask(stop('ok')), 'Ok\r\n'); // the last reply: anything written before it is in by now
  t.equal(w.received, 'Error\r\n'.repeat(4) + 'Ok\r\n');
  t.equal(logged('error').length, 4);
});

t.test('a client that pipelines megabytes while its first request waits is not read into memory, then gets every reply in order', async (t) => {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const { file, seen } = await serve(t, {
    maxLineBytes: 512,
    maxRequestBytes: 1024,
    handle: async (req) => {
      await gate;
      return `R${req.fields.callid}`;
    },
  });
  const w = await Worker.connect(t, file);
  const n = 10_000;
  const pad = `x-pad: ${'p'.repeat(400)}\r\n`;
  const wire = Array.from({ length: n }, (_, i) => `stop\r\ncallid: ${i}\r\n${pad}\r\n`).join('');
  t.ok(wire.length > 4_000_000);
  void w.send(wire);
  await sleep(200);
  t.equal(seen.length, 1, 'only the first request is being handled');
  t.ok(w.socket.writableLength > 3_000_000, `the server stopped reading: ${w.socket.writableLength} bytes still wait in the client`);
  open();
  const want = Array.from({ length: n }, (_, i) => `R${i}\r\n`).join('');
  await until(() => w.received.length >= want.length, 20_000);
  t.equal(w.received, want);
});

t.test('a stale socket file left by a killed server is replaced', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-cc-'));
  const file = path.join(dir, 'socket');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.ok(statSync(file).isSocket(), 'the dead server left its socket file');

  const { logged } = await serve(t, { path: file });
  const w = await Worker.connect(t, file);
  t.equal(await w.ask(STOP), 'Ok\r\n');
  t.equal(logged('error').length, 0);
});

t.test('a file at the path that is not a socket is left alone and listen fails', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-cc-'));
  const file = path.join(dir, 'socket');
  writeFileSync(file, 'keep me');
  const server = new CallControlSocketServer({ path: file, handle: likeSection8, log: { info() {}, warn() {}, error() {} } });
  await t.rejects(server.listen(), /is not a socket/);
  t.equal(readFileSync(file, 'utf8'), 'keep me');
});

t.test('a second server on a live path fails to listen, and the first keeps its file and keeps serving', async (t) => {
  const { file } = await serve(t);
  const second = new CallControlSocketServer({ path: file, handle: () => 'Wrong', log: { info() {}, warn() {}, error() {} } });
  await t.rejects(second.listen(), /another server is already listening/);
  await second.close();
  t.ok(existsSync(file), 'the loser did not remove the winner\'s socket');
  const w = await Worker.connect(t, file);
  t.equal(await w.ask(STOP), 'Ok\r\n');
});

t.test('mode is applied to the socket file', async (t) => {
  const { file } = await serve(t, { mode: 0o660 });
  t.equal((statSync(file).mode & 0o777).toString(8), '660');
  const other = await serve(t, { mode: 0o600 });
  t.equal((statSync(other.file).mode & 0o777).toString(8), '600');
});

// Proving a change of group takes a group other than ours, which only root may chown to.
const otherGroup = readFileSync('/etc/group', 'utf8')
  .split('\n')
  .map((l) => l.split(':'))
  .map(([name, , gid]) => ({ name: name ?? '', gid: Number(gid) }))
  .find((g) => g.name !== '' && Number.isInteger(g.gid) && g.gid !== process.getgid?.());
const groupSkip = process.getuid?.() !== 0 ? 'needs root' : !otherGroup ? 'needs a second group in /etc/group' : false;

t.test('group, by name from /etc/group or by gid, is applied to the socket file', { skip: groupSkip }, async (t) => {
  const { name, gid } = otherGroup!;
  const byName = await serve(t, { group: name });
  t.equal(statSync(byName.file).gid, gid, `group ${name}`);
  const byGid = await serve(t, { group: gid });
  t.equal(statSync(byGid.file).gid, gid);
});

t.test('an unknown group name fails listen before any socket file is made', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-cc-'));
  const file = path.join(dir, 'socket');
  const server = new CallControlSocketServer({ path: file, group: 'no-such-group-xyz', handle: likeSection8, log: { info() {}, warn() {}, error() {} } });
  await t.rejects(server.listen(), /group "no-such-group-xyz" not found/);
  t.notOk(existsSync(file));
});

t.test('close stops accepting, ends the connections and removes the socket file', async (t) => {
  const { server, file } = await serve(t);
  const w = await Worker.connect(t, file);
  t.equal(await w.ask(STOP), 'Ok\r\n');
  t.equal(server.connections, 1);
  await server.close();
  t.notOk(existsSync(file), 'socket file removed');
  await until(() => w.closed);
  t.ok(w.closed, 'the open connection was ended');
  t.equal(server.connections, 0);
  await t.rejects(Worker.connect(t, file), { code: 'ENOENT' });
});

t.test('clients that vanish mid-request or before their reply crash nothing; a whole request is still handled', async (t) => {
  const { server, file, seen, logged } = await serve(t, {
    handle: async (req) => {
      if (req.command === 'stop') await sleep(50);
      return likeSection8(req);
    },
  });
  const half = await Worker.connect(t, file);
  await half.send('init\r\nruri: sip:1000@127.0.0.1:5800\r\ndiver');
  half.socket.destroy();

  const gone = await Worker.connect(t, file);
  await gone.send(STOP);
  gone.socket.destroy(); // before the 50 ms handler answers: the reply has nowhere to go

  await until(() => logged('warn').some((l) => l.msg.includes('peer gone')));
  t.same(seen.map((r) => r.command), ['stop'], 'the half request never reached the handler; the whole one did');
  t.ok(logged('warn').some((l) => l.msg.includes('peer gone') && l.obj.reply === 'Ok'), 'the lost reply is logged at warn');
  await until(() => server.connections === 0);
  t.equal(server.connections, 0);

  const next = await Worker.connect(t, file);
  t.equal(await next.ask(START), 'Ok\r\n', 'the server still serves');
  t.equal(logged('error').length, 0);
});
