// The Grafana dashboard of docker/grafana/dashboards/sca-service.json, over the service's
// Prometheus metrics (GET /metrics). `npm run grafana:dashboard` writes it;
// test/unit/ops/grafana.test.ts checks the committed file is this one, that it has what Grafana
// needs of a dashboard, and that every query names a metric the service exports.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export const DASHBOARD_PATH = new URL('../docker/grafana/dashboards/sca-service.json', import.meta.url).pathname;

type Target = readonly [expr: string, legend: string];
interface Panel { [k: string]: unknown }

const DS = { type: 'prometheus', uid: '${datasource}' };
/** Every series of the chosen service instances. */
const I = 'instance=~"$instance"';
const rate = (metric: string, by?: string): string => `sum${by ? ` by (${by})` : ''} (rate(${metric}{${I}}[$__rate_interval]))`;
const quantile = (q: number, metric: string, by = ''): string => `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ''}) (rate(${metric}_bucket{${I}}[$__rate_interval])))`;

export function dashboard(): Record<string, unknown> {
  const panels: Panel[] = [];
  let id = 0;
  let x = 0;
  let y = 0;
  let rowH = 0;
  const place = (w: number, h: number): { x: number; y: number; w: number; h: number } => {
    if (x + w > 24) { x = 0; y += rowH; rowH = 0; }
    const pos = { x, y, w, h };
    x += w;
    rowH = Math.max(rowH, h);
    return pos;
  };
  const row = (title: string): void => {
    if (x > 0) { y += rowH; x = 0; rowH = 0; }
    panels.push({ id: ++id, type: 'row', title, collapsed: false, gridPos: { x: 0, y, w: 24, h: 1 }, panels: [] });
    y += 1;
  };
  const targets = (list: readonly Target[]) => list.map(([expr, legendFormat], i) => ({ refId: String.fromCharCode(65 + i), datasource: DS, expr, legendFormat, range: true }));
  const timeseries = (title: string, unit: string, list: readonly Target[], description: string, w = 12, extra: Record<string, unknown> = {}): void => {
    panels.push({
      id: ++id, type: 'timeseries', title, description, datasource: DS, gridPos: place(w, 8),
      fieldConfig: { defaults: { unit, custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, ...extra } }, overrides: [] },
      options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
      targets: targets(list),
    });
  };
  const stat = (title: string, unit: string, list: readonly Target[], description: string, thresholds: Array<{ color: string; value: number | null }>, w = 6): void => {
    panels.push({
      id: ++id, type: 'stat', title, description, datasource: DS, gridPos: place(w, 4),
      fieldConfig: { defaults: { unit, thresholds: { mode: 'absolute', steps: thresholds } }, overrides: [] },
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'area', textMode: 'auto', justifyMode: 'auto', orientation: 'auto' },
      targets: targets(list),
    });
  };
  const ok = [{ color: 'green', value: null }];
  const redBelow1 = [{ color: 'red', value: null }, { color: 'green', value: 1 }];
  const redFrom1 = [{ color: 'green', value: null }, { color: 'red', value: 1 }];

  row('Health');
  stat('Kamailio connections', 'none', [[`sum(sca_evapi_connected{${I}})`, 'connected']], 'evapi connections up (0: Kamailio unreachable, nothing is served)', redBelow1);
  stat('Store degraded', 'none', [[`max(sca_store_degraded{${I}}) + max(cc_store_degraded{${I}})`, 'degraded']], 'The database fails: the service serves from memory and retries (/readyz says degraded)', redFrom1);
  stat('Calls in progress', 'none', [[`sum(cc_calls{${I}})`, 'calls']], 'Calls counted by call control: setting up and active', ok);
  stat('Credit spent', 'none', [[`sum(increase(cc_credit_spent_total{${I}}[$__range]))`, 'spent']], 'Minor units debited from prepaid balances for calls that ended in the time range', ok);

  row('Shared lines: SUBSCRIBE and NOTIFY');
  timeseries('SUBSCRIBE rate', 'reqps', [[rate('sca_subscribe_total', 'event'), '{{event}}']], 'SUBSCRIBEs answered per second, by event package', 8);
  timeseries('SUBSCRIBE replies', 'reqps', [[rate('sca_subscribe_total', 'class'), '{{class}}']], 'SUBSCRIBE answers per second by reply class (403: not a member or too many; 480: seize refused)', 8);
  timeseries('SUBSCRIBE handling time', 's', [
    [quantile(0.5, 'sca_subscribe_duration_seconds'), 'p50'], [quantile(0.99, 'sca_subscribe_duration_seconds'), 'p99'],
  ], 'From the SUBSCRIBE reaching the service to its answer to Kamailio, the durable store commit included', 8);
  timeseries('NOTIFY rate', 'reqps', [[rate('sca_notify_sent_total'), 'sent'], [rate('sca_notify_total', 'class'), 'answered {{class}}']], 'NOTIFYs handed to Kamailio, and their final replies by class (timeout: no reply)', 8);
  timeseries('NOTIFY latency', 's', [
    [quantile(0.5, 'sca_notify_latency_seconds'), 'p50'], [quantile(0.99, 'sca_notify_latency_seconds'), 'p99'],
  ], 'From handing a NOTIFY to Kamailio to the phone\'s final reply', 8);
  timeseries('line-seize results', 'reqps', [[rate('sca_line_seize_total', 'result'), '{{result}}']], 'line-seize SUBSCRIBEs: granted, rejected (480, another phone has it), released, error', 8);
  timeseries('Appearances by state', 'none', [[`sum by (state) (sca_appearances{${I}})`, '{{state}}']], 'Appearances in use by state (idle ones are not kept)', 8, { stacking: { mode: 'normal', group: 'A' } });
  timeseries('Subscriptions', 'none', [[`sum by (event) (sca_subscriptions{${I}})`, '{{event}}']], 'Subscriptions by event package', 8);
  timeseries('Orphans released', 'none', [[`sum(increase(sca_orphans_released_total{${I}}[$__rate_interval]))`, 'released']], 'Appearances the stale timers released (seized and never used, callee never ACKed)', 8);

  row('Kamailio link');
  timeseries('Connections', 'none', [[`sum(sca_evapi_connected{${I}})`, 'connected']], 'evapi connections to Kamailio', 8);
  timeseries('Heartbeat resets and split frames', 'none', [
    [`sum(increase(link_heartbeat_resets_total{${I}}[$__rate_interval]))`, 'resets (ping unanswered)'],
    [`sum(increase(link_frames_split_total{${I}}[$__rate_interval]))`, 'answers split over frames'],
  ], 'Connections reset because Kamailio stopped answering pings; answers too large for one evapi frame', 8);
  timeseries('Backlog', 'bytes', [[`sum by (kind) (link_backlog_bytes{${I}})`, '{{kind}}']], 'Bytes sent and not yet read by Kamailio (unread), and waiting in the service for room (waiting)', 8);

  row('Call control');
  timeseries('Decisions by result', 'reqps', [[rate('cc_decisions_total', 'result'), '{{result}}']], 'Admission decisions per second: admitted, untracked (unknown account), blacklisted, limit, no-credit, no-rate, bad-request', 8);
  timeseries('Decision time', 's', [
    [quantile(0.5, 'cc_decision_latency_seconds', 'door'), 'p50 {{door}}'], [quantile(0.99, 'cc_decision_latency_seconds', 'door'), 'p99 {{door}}'],
  ], 'From the request reaching the service to its answer, store commit included, by door (socket: call_control.so; link: cc-routes.cfg)', 8);
  timeseries('Calls in progress', 'none', [[`sum by (state) (cc_calls{${I}})`, '{{state}}']], 'Calls counted now: setting up (admitted, not answered) and active', 8, { stacking: { mode: 'normal', group: 'A' } });
  timeseries('Calls ended by cause', 'none', [[`sum by (cause) (increase(cc_calls_ended_total{${I}}[$__rate_interval]))`, '{{cause}}']], 'caller, callee, normal, limit (duration), credit, admin, stale, failed', 8);
  timeseries('Credit', 'none', [
    [`sum(increase(cc_credit_spent_total{${I}}[$__rate_interval]))`, 'spent'], [`sum(cc_reserved_credit{${I}})`, 'reserved by calls in progress'],
  ], 'Minor units: debited for ended calls per interval, and held by prepaid calls in progress', 8);
  timeseries('Calls in progress, top accounts', 'none', [[`max by (account) (cc_account_calls{${I}})`, '{{account}}']],
    'Opt-in: set cc_metrics_top_accounts=N (at most 50) to export the N accounts with the most calls in progress; empty while off (the default: no metric label carries an account)', 8);

  row('Store');
  timeseries('Rows waiting for the database', 'none', [
    [`sum(sca_store_pending_rows{${I}})`, 'sca'], [`sum(cc_store_pending_rows{${I}})`, 'cc'],
  ], 'Rows changed and not yet committed: the store lag (it grows while the database is away and drains when it is back)', 8);
  timeseries('Store errors', 'none', [
    [`sum(increase(sca_store_errors_total{${I}}[$__rate_interval]))`, 'sca write failures'], [`sum(increase(cc_store_errors_total{${I}}[$__rate_interval]))`, 'cc write failures'],
    [`sum(increase(sca_store_rows_set_aside_total{${I}}[$__rate_interval]))`, 'rows refused and set aside'],
  ], 'Failed writes (retried from memory) and rows the database refused for their content', 8);
  timeseries('CDR lines behind', 'none', [
    [`max(cc_cdr_lines_behind{${I}})`, 'CDRs not in the file yet'], [`sum(increase(cc_cdr_file_errors_total{${I}}[$__rate_interval]))`, 'failed attempts'],
  ], 'CDRs in the database whose lines the CDR file (cc_cdr_file) lacks: it could not be written (a full disk, a file that cannot be opened) and is retried; it catches up from the database once it can. 0 while it keeps up', 8);

  row('Process');
  timeseries('CPU', 'percentunit', [[`sum(rate(process_cpu_seconds_total{${I}}[$__rate_interval]))`, 'cpu']], 'Share of one core', 8);
  timeseries('Memory', 'bytes', [[`sum(process_resident_memory_bytes{${I}})`, 'resident'], [`sum(nodejs_heap_size_used_bytes{${I}})`, 'heap used']], 'Resident set and JavaScript heap', 8);
  timeseries('Event loop lag', 's', [[`max(nodejs_eventloop_lag_p99_seconds{${I}})`, 'p99']], 'How late timers and I/O callbacks run: the service answers nothing while it is busy', 8);

  return {
    uid: 'sca-service',
    title: 'sca-service',
    description: 'Shared lines (SUBSCRIBE/NOTIFY, appearances), the Kamailio link, call control and the store of sca-service',
    tags: ['sca-service', 'kamailio', 'sip'],
    schemaVersion: 39,
    version: 1,
    editable: true,
    graphTooltip: 1,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    timepicker: {},
    timezone: '',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: { text: 'Prometheus', value: 'prometheus' }, hide: 0, refresh: 1, options: [] },
        {
          name: 'instance', label: 'Instance', type: 'query', datasource: DS, query: { query: 'label_values(sca_evapi_connected, instance)', refId: 'instance' },
          definition: 'label_values(sca_evapi_connected, instance)', includeAll: true, multi: true, allValue: '.+', current: { text: 'All', value: '$__all' }, refresh: 2, hide: 0, sort: 1, options: [],
        },
      ],
    },
    panels,
  };
}

export const dashboardJson = (): string => `${JSON.stringify(dashboard(), null, 2)}\n`;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(DASHBOARD_PATH, dashboardJson());
  console.log(`wrote ${DASHBOARD_PATH}`);
}
