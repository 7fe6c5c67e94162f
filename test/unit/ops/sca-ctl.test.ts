import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildApp } from '../../../service/app.js';
import { main, formatTable } from '../../../service/cli/sca-ctl.js';
import { loadConfig } from '../../../service/config.js';
import { P1, subscribeMsg } from '../../support/sip-fixture.js';

const AOR = 'sip:100@pbx.example.com';

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, env, (s) => { out += `${s}\n`; }, (s) => { err += `${s}\n`; });
  return { code, out, err };
}

t.test('commands print what kamcmd prints for the module, --table tables, --json the result', async (t) => {
  const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'sca-ops-'))}/sca.sqlite`, http_port: 0, log_level: 'silent', call_control_socket: '' } });
  if (!cfg.ok) throw new Error(cfg.error);
  const a = buildApp(cfg.config);
  const url = await a.start();
  t.teardown(() => a.stop());
  a.sca.engine.subscribe({ msg: subscribeMsg(P1), to_tag: 'a', now: Date.now() / 1000 });

  const seize = await run(['--url', url, 'sca.seize_appearance', AOR, P1]);
  t.same([seize.code, seize.out.trim()], [0, `Seized ${AOR} appearance-index 1 for ${P1}`]);
  const lines = await run(['--url', url, 'sca.all_appearances']);
  t.match(lines.out, new RegExp(`^${AOR.replace(/\./g, '\\.')} 1 seized \\d{10} ${P1.replace(/\./g, '\\.')}    \n$`), 'aor index state mtime owner, empty callee/call-id/tags');
  const count = await run(['--url', url, 'sca.subscription_count', 'call-info']);
  t.equal(count.out, '1 call-info\n');
  const subs = await run(['--url', url, 'sca.all_subscriptions']);
  t.match(subs.out, /^100 10\.0\.0\.11:5060 call-info \d+ active\n$/, 'AoR user, subscriber host:port, event, seconds left, state');
  const update = await run(['--url', url, 'sca.update_appearance', AOR, '1', 'held']);
  t.same([update.code, update.out], [0, ''], 'update prints nothing, as in the module');
  const table = await run(['--url', url, '--table', 'sca.all_appearances']);
  t.equal(table.code, 0);
  const [head, row] = table.out.trim().split('\n');
  t.match(head, /^AOR\s+INDEX\s+STATE\s+OWNER/);
  t.match(row, new RegExp(`^${AOR.replace(/\./g, '\\.')}\\s+1\\s+held\\s+${P1.replace(/\./g, '\\.')}`));
  const json = await run(['--url', url, '--json', 'sca.subscription_count', 'call-info']);
  t.same(JSON.parse(json.out), { event: 'call-info', count: 1 });
  const fault = await run(['--url', url, 'sca.release_appearance', AOR, '7']);
  t.same([fault.code, fault.err.trim()], [1, `error: 500 - ${AOR} appearance index 7 is not in use`]);
  const usage = await run(['--url', url, 'sca.subscription_count', 'foo']);
  t.same([usage.code, usage.err.trim()], [1, 'error: 500 - event "foo" must be call-info or line-seize; usage: sca.subscription_count {call-info | line-seize}'],
    'a bad param is the module\'s 500, naming the param, then the module\'s usage line');
  const jsonFault = await run(['--url', url, '--json', 'sca.subscription_count', 'foo']);
  t.match(jsonFault.err, /\(code -32602\)/, 'with --json the JSON-RPC code shows');
  const deact = await run(['--url', url, 'sca.deactivate_all_subscriptions']);
  t.equal(deact.out.trim(), `Deactivating call-info subscription from ${P1}`);
});

t.test('a clear message when the service is not reachable, or the command is unknown', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
  const down = await run(['sca.all_appearances'], { SCA_CTL_URL: `http://127.0.0.1:${port}` });
  t.equal(down.code, 3);
  t.match(down.err, `cannot reach sca-service at http://127.0.0.1:${port} (ECONNREFUSED). Is it running?`);
  const unknown = await run(['sca.frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.err, /unknown command sca\.frobnicate/);
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /sca\.release_appearance <aor> <index>/);
});

t.test('tables align columns and put the useful ones first', async (t) => {
  t.equal(formatTable([]), '(none)');
  t.equal(formatTable([{ owner: 'x', index: 10, aor: 'a', mtime: 5 }, { owner: 'yy', index: 2, aor: 'bb', mtime: 6 }]), 'AOR  INDEX  OWNER\na    10     x\nbb   2      yy');
});
