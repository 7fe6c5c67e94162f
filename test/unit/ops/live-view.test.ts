// The live view's socket, in-process over a real WebSocket: everything once on connect, then
// only the lines a change touched.
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { WebSocket } from 'ws';
import { buildApp } from '../../../service/app.js';
import { loadConfig } from '../../../service/config.js';

interface Line { aor: string; appearances: Array<{ index: number; state: string }> }
interface Pushed { type: 'all' | 'changes'; lines?: Line[]; lines_changed?: Line[]; lines_gone?: string[]; accounts: unknown[] }

const aor = (n: number): string => `sip:${n}@pbx.example.com`;

t.test('a page gets every line once, then only what changed', async (t) => {
  const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'sca-live-'))}/sca.sqlite`, call_control_socket: '', http_port: 0, http_host: '127.0.0.1' } });
  if (!cfg.ok) throw new Error(cfg.error);
  const a = buildApp(cfg.config, { clock: () => 1000, logger: { level: 'silent' } });
  await a.start();
  t.teardown(() => a.stop());
  const rpc = (method: string, params: unknown) => a.http.inject({ method: 'POST', url: '/rpc', headers: { 'content-type': 'application/json' }, payload: { jsonrpc: '2.0', id: 1, method, params } });
  for (let n = 0; n < 200; n++) await rpc('sca.seize_appearance', [aor(n), `sip:${n}@10.0.0.1`]);

  const port = (a.http.server.address() as AddressInfo).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  t.teardown(() => ws.close());
  const inbox: Pushed[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (d) => { inbox.push(JSON.parse(String(d)) as Pushed); wake?.(); });
  const next = async (): Promise<Pushed> => {
    const deadline = Date.now() + 2000;
    while (inbox.length === 0) {
      if (Date.now() > deadline) throw new Error('nothing pushed within 2 s');
      await new Promise<void>((r) => { wake = r; setTimeout(r, 50); });
    }
    return inbox.shift()!;
  };

  const first = await next();
  t.equal(first.type, 'all');
  t.equal(first.lines!.length, 200, 'every line on connect');
  t.same(first.accounts, [], 'with the call-control part');

  await rpc('sca.update_appearance', [aor(42), 1, 'held']);
  const change = await next();
  t.equal(change.type, 'changes');
  t.same(change.lines_changed!.map((l) => [l.aor, l.appearances.map((x) => x.state)]), [[aor(42), ['held']]], 'only the line that changed');
  t.same(change.lines_gone, []);

  await rpc('sca.update_appearance', [aor(7), 1, 'active']);
  await rpc('sca.update_appearance', [aor(8), 1, 'active']);
  const burst = await next();
  t.same(burst.lines_changed!.map((l) => l.aor).sort(), [aor(7), aor(8)].sort(), 'changes within 100 ms go in one push');
  // One more change: its push is the next one, so nothing came between without a change.
  await rpc('sca.update_appearance', [aor(9), 1, 'held']);
  const after = await next();
  t.same(after.lines_changed!.map((l) => l.aor), [aor(9)], 'nothing more without a change: the next push is the next change');
});
