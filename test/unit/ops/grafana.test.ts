// The Grafana dashboard (docker/grafana/) without a Grafana: it is what the generator makes, it
// has what Grafana's dashboard schema requires, every query names a metric the service really
// exports (the app built in-process, its registry read), and the provisioning and Prometheus
// files point at each other. With promtool (Debian's prometheus package) every query also parses
// as PromQL and the Prometheus configuration checks.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { dashboardJson, DASHBOARD_PATH } from '../../../scripts/grafana-dashboard.js';
import { Registry } from 'prom-client';
import { buildApp } from '../../../service/app.js';
import { CcEngine } from '../../../service/cc/engine.js';
import type { Cdr } from '../../../service/cc/types.js';
import { loadConfig } from '../../../service/config.js';
import { CcMetrics } from '../../../service/metrics/cc.js';
import type { Committer } from '../../../service/store/committer.js';
import { P1, subscribeMsg } from '../../support/sip-fixture.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const yaml = (file: string): any => JSON.parse(execFileSync('/usr/bin/python3', ['-c', 'import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', `${ROOT}${file}`]).toString());

interface Target { refId: string; expr: string; datasource: { type: string; uid: string } }
interface Panel { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: Target[]; datasource?: { uid: string }; fieldConfig?: { defaults: object } }
const board = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as {
  uid: string; title: string; schemaVersion: number; time: { from: string; to: string }; panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; current?: { value: string } }> };
};
const queries = (): Array<{ panel: string; expr: string }> => [
  ...board.panels.flatMap((p) => (p.targets ?? []).map((x) => ({ panel: p.title, expr: x.expr }))),
  // A variable's label_values(metric, label) is Grafana's, around a PromQL selector.
  ...board.templating.list.filter((v) => v.type === 'query').map((v) => ({ panel: `variable ${v.name}`, expr: (v.query as { query: string }).query.replace(/^label_values\((.+),\s*\w+\)$/, '$1') })),
];

/** The metric names a PromQL expression reads (not its functions, keywords or label names). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const keywords = new Set(['by', 'without', 'on', 'ignoring', 'bool', 'and', 'or', 'unless', 'offset', 'group_left', 'group_right', 'inf', 'nan']);
  const names: string[] = [];
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = stripped.slice(m.index! + m[0].length).trimStart();
    const before = stripped[m.index! - 1] ?? ' ';
    if (after.startsWith('(') || keywords.has(m[0].toLowerCase()) || /[\d.$]/.test(before)) continue;
    names.push(m[0]);
  }
  return names;
}

t.test('the committed dashboard is the generator\'s (npm run grafana:dashboard)', async (t) => {
  t.equal(readFileSync(DASHBOARD_PATH, 'utf8'), dashboardJson());
});

t.test('the dashboard has what Grafana\'s schema requires of one', async (t) => {
  t.match(board.uid, /^[A-Za-z0-9_-]{1,40}$/, 'uid: at most 40 of [A-Za-z0-9_-]');
  t.ok(typeof board.title === 'string' && board.title !== '', 'a title');
  t.ok(Number.isInteger(board.schemaVersion) && board.schemaVersion >= 36, 'schemaVersion of Grafana 10+');
  t.match(board.time, { from: String, to: String });
  const vars = new Set(board.templating.list.map((v) => v.name));
  const builtins = new Set(['__rate_interval', '__interval', '__range', '__all']);
  const ids = new Set<number>();
  const cells = new Set<string>();
  for (const p of board.panels) {
    t.ok(Number.isInteger(p.id) && p.id > 0 && !ids.has(p.id), `${p.title}: a unique id`);
    ids.add(p.id);
    t.ok(['row', 'timeseries', 'stat'].includes(p.type), `${p.title}: a known panel type (${p.type})`);
    const g = p.gridPos;
    t.ok([g.x, g.y, g.w, g.h].every(Number.isInteger) && g.x >= 0 && g.y >= 0 && g.w >= 1 && g.h >= 1 && g.x + g.w <= 24, `${p.title}: gridPos inside the 24 columns`);
    for (let cx = g.x; cx < g.x + g.w; cx++) {
      for (let cy = g.y; cy < g.y + g.h; cy++) {
        if (cells.has(`${cx},${cy}`)) t.fail(`${p.title}: overlaps another panel at ${cx},${cy}`);
        cells.add(`${cx},${cy}`);
      }
    }
    if (p.type === 'row') continue;
    t.ok(p.fieldConfig && typeof p.fieldConfig.defaults === 'object', `${p.title}: fieldConfig.defaults`);
    t.equal(p.datasource?.uid, '${datasource}', `${p.title}: the datasource variable`);
    const targets = p.targets ?? [];
    t.ok(targets.length > 0, `${p.title}: has queries`);
    t.equal(new Set(targets.map((x) => x.refId)).size, targets.length, `${p.title}: unique refIds`);
    for (const x of targets) {
      t.equal(x.datasource.type, 'prometheus');
      for (const [, v] of x.expr.matchAll(/\$\{?(\w+)/g)) t.ok(vars.has(v!) || builtins.has(v!), `${p.title}: $${v} is defined`);
    }
  }
  t.ok(board.panels.filter((p) => p.type !== 'row').length >= 20, 'the panels the issue asks for');
});

t.test('every query names metrics the service exports', async (t) => {
  const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], http_port: 0, log_level: 'silent', db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'grafana-'))}/s.sqlite`, call_control_socket: '', cc_metrics_top_accounts: 5 } });
  if (!cfg.ok) throw new Error(cfg.error);
  const app = buildApp(cfg.config, { logger: false });
  await app.start();
  t.teardown(() => app.stop());
  const exported = new Set<string>();
  for (const m of await app.registry.getMetricsAsJSON()) {
    exported.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(`${m.name}${s}`);
    if (String(m.type) === 'summary') for (const s of ['_sum', '_count']) exported.add(`${m.name}${s}`);
  }
  // The scrape itself lists them too: what Prometheus will see.
  const scraped = (await app.http.inject({ url: '/metrics' })).body;
  for (const name of ['sca_subscribe_total', 'sca_subscribe_duration_seconds_bucket', 'cc_credit_spent_total', 'sca_store_pending_rows', 'cc_store_pending_rows']) {
    t.match(scraped, new RegExp(`^${name}(\\{| )`, 'm'), `GET /metrics has ${name}`);
  }
  const used = new Set<string>();
  for (const q of queries()) {
    const names = metricNames(q.expr);
    t.ok(names.length > 0, `${q.panel}: ${q.expr} names a metric`);
    for (const n of names) {
      used.add(n);
      t.ok(exported.has(n), `${q.panel}: ${n} is exported`);
    }
  }
  for (const want of ['sca_subscribe_total', 'sca_subscribe_duration_seconds_bucket', 'sca_notify_total', 'sca_notify_latency_seconds_bucket', 'sca_appearances', 'sca_evapi_connected',
    'cc_decisions_total', 'cc_calls', 'cc_credit_spent_total', 'sca_store_pending_rows', 'cc_store_pending_rows', 'cc_cdr_lines_behind']) t.ok(used.has(want), `a panel shows ${want}`);
  t.same(metricNames('histogram_quantile(0.99, sum by (le, door) (rate(cc_decision_latency_seconds_bucket{instance=~"$instance"}[5m])))'), ['cc_decision_latency_seconds_bucket'], 'the extractor skips functions, labels and ranges');
});

t.test('the metrics the dashboard added: SUBSCRIBE handling, store lag, credit spent', async (t) => {
  const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], http_port: 0, log_level: 'silent', db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'grafana-'))}/s.sqlite`, call_control_socket: '' } });
  if (!cfg.ok) throw new Error(cfg.error);
  const app = buildApp(cfg.config, { logger: false });
  await app.start();
  t.teardown(() => app.stop());
  const link = app.sca.link!;
  const subscribe = (msg: string) => new Promise<void>((resolve) => {
    const out = link.methods['sca.subscribe']!.handle({ tindex: 1, tlabel: 2, msg, to_tag: 'tt' } as never, { proxy: undefined });
    void link.apply(out.effects, () => resolve());
  });
  await subscribe(subscribeMsg(P1, { callId: 'm-1' }));
  await subscribe(subscribeMsg(P1, { callId: 'm-2', event: 'line-seize', expires: 15, callInfo: '<sip:pbx.example.com>;appearance-index=1' }));
  await subscribe(subscribeMsg(P1, { callId: 'm-3', event: 'presence' }));
  const text = (await app.http.inject({ url: '/metrics' })).body;
  t.match(text, /^sca_subscribe_total\{event="call-info",class="2xx"\} 1$/m);
  t.match(text, /^sca_subscribe_total\{event="line-seize",class="2xx"\} 1$/m);
  t.match(text, /^sca_subscribe_total\{event="other",class="4xx"\} 1$/m, 'a package not ours is counted, apart');
  t.match(text, /^sca_subscribe_duration_seconds_count\{event="call-info"\} 1$/m, 'timed from the SUBSCRIBE to its answer');
  t.match(text, /^sca_store_pending_rows 0$/m);
  t.match(text, /^cc_store_degraded 0$/m);

  const registry = new Registry();
  const committer = { stats: { errors: 0, setAside: 0 }, pending: 3, degraded: true } as unknown as Committer;
  const metrics = new CcMetrics(registry, new CcEngine(), committer, { stats: { endFailures: 0, lookupFailures: 0 } }, () => 0);
  metrics.billed([{ amount: 90 } as Cdr, { amount: 0 } as Cdr, { amount: 12 } as Cdr]);
  const cc = await registry.metrics();
  t.match(cc, /^cc_credit_spent_total 102$/m, 'CDR amounts are credit spent');
  t.match(cc, /^cc_store_pending_rows 3$/m);
  t.match(cc, /^cc_store_degraded 1$/m);
});

t.test('no label carries an AoR or Call-ID; the per-account gauge is opt-in and bounded', async (t) => {
  const run = async (top: number) => {
    const cfg = loadConfig({ env: {}, overrides: { evapi_address: ['127.0.0.1:1'], http_port: 0, log_level: 'silent', db_url: `sqlite:${mkdtempSync(path.join(tmpdir(), 'grafana-'))}/s.sqlite`, call_control_socket: '', cc_metrics_top_accounts: top } });
    if (!cfg.ok) throw new Error(cfg.error);
    const app = buildApp(cfg.config, { logger: false });
    await app.start();
    for (let i = 0; i < 4; i++) {
      await app.cc.link!.apply(app.cc.engine.setAccount(`${i}00@pbx.example.com`, { maxCalls: 10 }, Date.now() / 1000) as never, () => undefined);
      for (let k = 0; k <= i; k++) {
        const out = app.cc.engine.admit({ callId: `c${i}-${k}`, fromTag: 'f', from: `<sip:${i}00@pbx.example.com>`, ruri: 'sip:9@pbx.example.com', diverter: undefined, sourceIp: '192.0.2.1', door: 'socket' }, Date.now() / 1000);
        t.equal(out.decision.result, 'admitted');
        await app.cc.link!.apply(out, () => undefined);
      }
    }
    const text = (await app.http.inject({ url: '/metrics' })).body;
    await app.stop();
    return text;
  };
  const off = await run(0);
  t.notMatch(off, /cc_account_calls/, 'off by default');
  t.notMatch(off, /@pbx\.example\.com|c\d-\d/, 'no account or Call-ID in any label');
  const on = await run(2);
  t.same([...on.matchAll(/^cc_account_calls\{account="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], m[2]]), [['300@pbx.example.com', '4'], ['200@pbx.example.com', '3']], 'the top 2 only');
});

t.test('provisioning: the datasource, the dashboards folder and Prometheus\'s target agree with compose', async (t) => {
  const ds = yaml('docker/grafana/provisioning/datasources/prometheus.yaml') as { apiVersion: number; datasources: Array<{ type: string; uid: string; url: string }> };
  t.equal(ds.apiVersion, 1);
  t.equal(ds.datasources[0]!.type, 'prometheus');
  t.equal(ds.datasources[0]!.uid, board.templating.list.find((v) => v.name === 'datasource')!.current!.value, 'the dashboard\'s default datasource is the provisioned one');
  const dash = yaml('docker/grafana/provisioning/dashboards/sca-service.yaml') as { apiVersion: number; providers: Array<{ type: string; options: { path: string } }> };
  t.equal(dash.providers[0]!.type, 'file');
  const compose = yaml('docker/compose.yaml') as { services: Record<string, { volumes?: string[]; command?: string[]; environment?: Record<string, string> }> };
  const grafana = compose.services.grafana!;
  t.ok(grafana.volumes!.includes(`./grafana/dashboards:${dash.providers[0]!.options.path}:ro`), 'compose mounts the dashboards where the provider reads them');
  t.ok(grafana.volumes!.includes('./grafana/provisioning:/etc/grafana/provisioning:ro'), 'compose mounts the provisioning files');
  const prom = yaml('docker/prometheus/prometheus.yml') as { scrape_configs: Array<{ metrics_path: string; static_configs: Array<{ targets: string[] }> }> };
  const env = compose.services['sca-service']!.environment!;
  t.same(prom.scrape_configs[0]!.static_configs[0]!.targets, [`${env.SCA_HTTP_HOST}:${env.SCA_HTTP_PORT}`], 'Prometheus scrapes where the service listens');
  t.equal(prom.scrape_configs[0]!.metrics_path, '/metrics');
  t.equal(ds.datasources[0]!.url, `http://${(compose.services.prometheus!.command!.find((a) => a.startsWith('--web.listen-address=')) ?? '').split('=')[1]}`, 'Grafana asks the Prometheus compose runs');
});

t.test('with promtool: every query parses as PromQL, prometheus.yml checks', { skip: spawnSync('promtool', ['--version']).error ? 'promtool is missing (apt-get install prometheus)' : false }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'promtool-'));
  const rules = queries().map((q, i) => `      - record: dashboard:q${i}\n        expr: ${JSON.stringify(q.expr.replace(/\$__rate_interval/g, '1m').replace(/\$__range/g, '1h').replace(/\$instance/g, '.+'))}`);
  writeFileSync(`${dir}/rules.yml`, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
  const r = spawnSync('promtool', ['check', 'rules', `${dir}/rules.yml`], { encoding: 'utf8' });
  t.equal(r.status, 0, `promtool check rules: ${r.stdout}${r.stderr}`);
  const c = spawnSync('promtool', ['check', 'config', `${ROOT}docker/prometheus/prometheus.yml`], { encoding: 'utf8' });
  t.equal(c.status, 0, `promtool check config: ${c.stdout}${c.stderr}`);
});
