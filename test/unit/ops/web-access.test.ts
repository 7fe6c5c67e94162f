// Who may reach the HTTP side, over real sockets: a request naming a foreign Host gets 403 (DNS
// rebinding, without a token), a live-view socket from another site's page (its Origin) is
// refused, and with a token a socket that does not send it in time is closed.
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { WebSocket } from 'ws';
import { buildApp } from '../../../service/app.js';
import { loadConfig } from '../../../service/config.js';

const TOKEN = 'web-access-test-token-0123456789';

async function serve(t: Test, overrides: Record<string, unknown> = {}): Promise<number> {
  const cfg = loadConfig({ env: {}, overrides: {
    evapi_address: ['127.0.0.1:1'], db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'sca-web-'))}/sca.sqlite`, call_control_socket: '',
    http_port: 0, http_host: '127.0.0.1', log_level: 'silent', ...overrides,
  } });
  if (!cfg.ok) throw new Error(cfg.error);
  const a = buildApp(cfg.config, { clock: () => 1000 });
  await a.start();
  t.teardown(() => a.stop());
  return (a.http.server.address() as AddressInfo).port;
}

/** A request with the Host header we choose (fetch would not let us set it). */
function get(port: number, url: string, host: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: url, method, headers: { Host: host, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString('utf8'); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens the live view's socket; resolves with its first message, or how it was refused or closed. */
function openSocket(port: number, headers: Record<string, string>, first?: string): Promise<{ message?: string; refused?: number; closed?: { code: number; reason: string; afterMs: number } }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers });
    ws.on('unexpected-response', (_req, res) => { resolve({ refused: res.statusCode }); ws.terminate(); });
    ws.on('error', () => undefined);
    ws.on('open', () => { if (first !== undefined) ws.send(first); });
    ws.on('message', (d) => { resolve({ message: String(d) }); ws.close(); });
    ws.on('close', (code, reason) => resolve({ closed: { code, reason: String(reason), afterMs: performance.now() - t0 } }));
  });
}

t.test('without a token: a foreign Host gets 403 on every path; loopback names are served', async (t) => {
  const port = await serve(t);
  for (const host of ['evil.example.com', `evil.example.com:${port}`, '10.0.0.1']) {
    const r = await get(port, '/healthz', host);
    t.equal(r.status, 403, `Host "${host}": 403`);
    t.match(r.body, /its own address only/);
  }
  // An empty Host, and none at all (HTTP/1.0): Node's client would fill one in, so raw bytes.
  for (const raw of ['GET /healthz HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n', 'GET /healthz HTTP/1.0\r\n\r\n']) {
    const status = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(raw));
      let text = '';
      s.on('data', (d: Buffer) => { text += d.toString('latin1'); });
      s.on('close', () => resolve(text.split('\r\n')[0]!));
    });
    t.equal(status, 'HTTP/1.1 403 Forbidden', `${JSON.stringify(raw.split('\r\n').slice(0, 2).join(' | '))}: 403`);
  }
  const rpc = await get(port, '/rpc', 'rebind.example.com', 'POST', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sca.all_appearances' }));
  t.equal(rpc.status, 403, 'the RPC too');
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, '127.1.2.3', `[::1]:${port}`]) t.equal((await get(port, '/healthz', host)).status, 200, `Host "${host}": served`);
});

t.test('with a token any Host is served (the token is the check)', async (t) => {
  const port = await serve(t, { admin_token: TOKEN });
  t.equal((await get(port, '/healthz', 'sca.example.com')).status, 200);
});

t.test('the live view socket: another site\'s Origin or a foreign Host is refused; the own page is served', async (t) => {
  const port = await serve(t);
  t.same(await openSocket(port, { Origin: 'http://evil.example.com' }), { refused: 403 }, 'a foreign Origin');
  t.same(await openSocket(port, { Origin: `http://localhost:${port}` }), { refused: 403 }, 'another name for this machine is another origin');
  t.same(await openSocket(port, { Origin: 'not a url' }), { refused: 403 }, 'an Origin that is no URL');
  t.same(await openSocket(port, { Host: 'evil.example.com' }), { refused: 403 }, 'a foreign Host');
  const own = await openSocket(port, { Origin: `http://127.0.0.1:${port}` });
  t.equal(JSON.parse(own.message ?? '{}').type, 'all', 'the page from this service gets everything');
  t.equal(JSON.parse((await openSocket(port, {})).message ?? '{}').type, 'all', 'a client that sends no Origin (not a browser) too');
});

t.test('with a token: the socket pushes nothing before it, refuses a wrong one, and closes one that never comes', async (t) => {
  const port = await serve(t, { admin_token: TOKEN });
  const right = await openSocket(port, {}, JSON.stringify({ token: TOKEN }));
  t.equal(JSON.parse(right.message ?? '{}').type, 'all', 'the right token first: everything');
  const wrong = await openSocket(port, {}, JSON.stringify({ token: 'nope' }));
  t.same(wrong.closed && [wrong.closed.code, wrong.closed.reason], [4401, 'unauthorized'], 'a wrong token: closed, nothing pushed');
  const junk = await openSocket(port, {}, 'not json');
  t.same(junk.closed && [junk.closed.code, junk.closed.reason], [4401, 'unauthorized'], 'no JSON: no token');
  const silent = await openSocket(port, {});
  t.same(silent.closed && [silent.closed.code, silent.closed.reason], [4401, 'no token'], 'nothing sent: closed by the auth timeout');
  t.ok(silent.closed!.afterMs >= 4900, `and not before it (${Math.round(silent.closed!.afterMs)} ms; the timeout is 5 s)`);
});
