import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ALL_METHODS as METHODS, commandHelp, synopsis } from '../rpc/help.js';

/**
 * sca-ctl: the sca.* and cc.* commands in kamcmd style against a running sca-service.
 *   sca-ctl [--url URL] [--token TOKEN] [--json] <command> [params...]
 * A param "@file" is read from that file (cc.rates_load @rates.csv).
 */
const USAGE = `usage: sca-ctl [--url URL] [--token TOKEN] [--table | --json] <command> [params...]
       sca-ctl --help [command]   (a command's params, types and result fields; docs/commands.md has them all)
  --url    the service (default $SCA_CTL_URL or http://127.0.0.1:8090)
  --token  admin token (default $SCA_ADMIN_TOKEN)
  --table  readable tables with every column
  --json   print the JSON result as it is
  (default: the lines kamcmd prints for Kamailio's sca module, so scripts keep working;
   cc.* commands print tables and key: value lines)
  a param written @file is that file's contents (cc.rates_load @rates.csv)
commands:
${Object.entries(METHODS).map(([name, m]) => `  ${synopsis(name, m)}`).join('\n')}`;

/** Columns worth showing first, per kind of row. */
const PREFERRED = ['aor', 'account', 'index', 'event', 'state', 'subscriber', 'owner', 'callee', 'uri', 'ttl', 'call_id', 'from', 'to', 'since', 'time_left',
  'balance', 'reserved', 'max_calls', 'max_duration', 'prepaid', 'plan', 'calls', 'prefix', 'from_tag', 'to_tag', 'count', 'message'];
const HIDDEN = new Set(['expires', 'notify_cseq', 'route_set', 'mtime']);

export function formatTable(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(none)';
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => !HIDDEN.has(k));
  keys.sort((a, b) => (PREFERRED.indexOf(a) + 1 || 99) - (PREFERRED.indexOf(b) + 1 || 99));
  const cell = (v: unknown): string => (v === undefined || v === null ? '' : Array.isArray(v) ? v.join(',') : String(v));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(keys.map((k) => k.toUpperCase())), ...rows.map((r) => line(keys.map((k) => cell(r[k]))))].join('\n');
}

/** Readable text for a result: tables for lists, key: value for objects. */
export function formatResult(method: string, result: unknown): string {
  if (method === 'sca.subscribers' && Array.isArray(result)) {
    const rows = (result as Array<{ aor: string; call_info: Array<Record<string, unknown>>; line_seize: Array<Record<string, unknown>> }>)
      .flatMap((l) => [...l.call_info, ...l.line_seize]);
    return formatTable(rows);
  }
  if (Array.isArray(result)) return formatTable(result as Array<Record<string, unknown>>);
  if (result && typeof result === 'object') {
    const o = result as Record<string, unknown>;
    if (Array.isArray(o.deactivated)) {
      return (o.deactivated as Array<{ event: string; subscriber: string }>).map((s) => `Deactivating ${s.event} subscription from ${s.subscriber}`).join('\n') || '(none)';
    }
    if (typeof o.message === 'string') return o.message;
    // Scalars as key: value lines, then each list of rows as a table under its name.
    const isRows = (v: unknown): v is Array<Record<string, unknown>> => Array.isArray(v) && v.every((x) => x !== null && typeof x === 'object');
    const scalars = Object.entries(o).filter(([, v]) => !isRows(v)).map(([k, v]) => `${k}: ${v === null ? '' : String(v)}`);
    const tables = Object.entries(o).filter(([, v]) => isRows(v)).map(([k, v]) => `${k}:\n${formatTable(v as Array<Record<string, unknown>>)}`);
    return [...scalars, ...tables].join('\n');
  }
  return String(result);
}

const hostPort = (uri: string): string => /^[a-z]+:(?:[^@]*@)?([^;?>]*)/i.exec(uri)?.[1] ?? uri;
const userOf = (uri: string): string => /^[a-z]+:([^@;?>]*)@/i.exec(uri)?.[1] ?? uri;
type Row = Record<string, unknown>;
const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

/**
 * What kamcmd prints for the module's own commands (sca_rpc.c, 5.6): one line per row, fields
 * separated by one space, times as epoch seconds, nothing on success for update/release.
 * The commands the module never implemented (subscribers, show_appearance) print tables.
 */
export function formatKamcmd(method: string, result: unknown): string {
  const rows = Array.isArray(result) ? (result as Row[]) : [];
  switch (method) {
    case 'sca.all_subscriptions':
      return rows.map((r) => `${userOf(str(r.aor))} ${hostPort(str(r.subscriber))} ${str(r.event)} ${str(r.ttl)} ${str(r.state)}`).join('\n');
    case 'sca.show_subscription':
      return rows.map((r) => `${str(r.aor)} ${str(r.event)} ${str(r.subscriber)} ${Math.floor(Number(r.expires))}`).join('\n');
    case 'sca.subscription_count': {
      const o = result as Row;
      return `${str(o.count)} ${str(o.event)}`;
    }
    case 'sca.all_appearances':
      return rows.map((r) => [r.aor, r.index, r.state, Math.floor(Number(r.mtime)), r.owner, r.callee, r.call_id, r.from_tag, r.to_tag].map(str).join(' ')).join('\n');
    case 'sca.update_appearance':
    case 'sca.release_appearance':
      return '';
    default:
      return formatResult(method, result);
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  // Options come before the command; everything after it is its params (a debit "-200" too).
  const at = argv.findIndex((a, i) => !a.startsWith('-') && !['--url', '--token'].includes(argv[i - 1] ?? ''));
  let parsed;
  try {
    parsed = parseArgs({ args: at < 0 ? argv : argv.slice(0, at), allowPositionals: false, options: { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, table: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    err(`sca-ctl: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const positionals = at < 0 ? [] : argv.slice(at);
  const [method, ...raw] = positionals;
  let params: string[];
  try {
    params = raw.map((p) => (p.startsWith('@') && p.length > 1 ? readFileSync(p.slice(1), 'utf8') : p));
  } catch (e) {
    err(`sca-ctl: ${(e as Error).message}`);
    return 2;
  }
  if (parsed.values.help) {
    if (method && Object.hasOwn(METHODS, method)) out(commandHelp(method, METHODS[method]!));
    else out(USAGE);
    return 0;
  }
  if (!method) {
    err(USAGE);
    return 2;
  }
  if (!Object.hasOwn(METHODS, method)) {
    err(`sca-ctl: unknown command ${method}\n${USAGE}`);
    return 2;
  }
  const url = (parsed.values.url ?? env.SCA_CTL_URL ?? 'http://127.0.0.1:8090').replace(/\/$/, '');
  const token = parsed.values.token ?? env.SCA_ADMIN_TOKEN;
  let res: Response;
  try {
    res = await fetch(`${url}/rpc`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(5000),
    });
  } catch (e) {
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    const cause = c?.code ?? c?.message ?? (e as Error).message;
    err(`sca-ctl: cannot reach sca-service at ${url} (${cause}). Is it running? Start it with "npm start", or point --url / SCA_CTL_URL at it.`);
    return 3;
  }
  if (res.status === 401) {
    err(`sca-ctl: ${url} wants the admin token: --token or SCA_ADMIN_TOKEN`);
    return 4;
  }
  const body = (await res.json()) as { result?: unknown; error?: { code: number; message: string } };
  if (body.error) {
    // kamcmd's fault line; a bad param is the module's 500 (JSON-RPC calls it invalid params): the
    // message names the param and why, then the usage.
    const code = body.error.code === -32602 ? 500 : body.error.code;
    err(parsed.values.json || parsed.values.table ? `sca-ctl: ${method}: ${body.error.message} (code ${body.error.code})` : `error: ${code} - ${body.error.message}`);
    return 1;
  }
  const text = parsed.values.json ? JSON.stringify(body.result, null, 2) : parsed.values.table ? formatResult(method, body.result) : formatKamcmd(method, body.result);
  if (text !== '') out(text);
  return 0;
}
