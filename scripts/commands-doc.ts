// docs/commands.md, made from the command table the RPC layer runs (service/rpc/*-methods.ts):
// every sca.* and cc.* command with its params (order, type, meaning), result fields, errors and
// an example, whose output is what the service really answers: each example (and each mistake)
// is run through POST /rpc of an in-process service holding a small sample state, on a fixed
// clock. `npm run docs:commands` writes the file; test/unit/ops/commands-doc.test.ts fails when
// the committed one differs. A result field the table does not document stops the generation.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildApp } from '../service/app.js';
import { formatKamcmd } from '../service/cli/sca-ctl.js';
import { loadConfig } from '../service/config.js';
import { ALL_METHODS, synopsis } from '../service/rpc/help.js';
import type { ResultFields, RpcMethod } from '../service/rpc/methods.js';
import { AOR, CI, P1, P2, subscribeMsg } from '../test/support/sip-fixture.js';

export const DOC_PATH = new URL('../docs/commands.md', import.meta.url).pathname;

/** The sample state's clock: 2027-01-15T08:00:00Z. */
const T0 = 1_800_000_000;
/** Examples that would empty the sample for the others run last (they are still shown in order). */
const RUN_LAST = ['sca.deactivate_all_subscriptions'];

interface Run {
  readonly result?: unknown;
  readonly error?: { code: number; message: string };
}

/** Runs every example and mistake against the sample state; the answers by command. */
async function runExamples(): Promise<Map<string, { example: Run; mistake?: Run }>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'commands-doc-'));
  let now = T0 - 3600;
  const cfg = loadConfig({
    env: {}, overrides: {
      evapi_address: ['127.0.0.1:1'], http_port: 0, log_level: 'silent', db_url: `sqlite:${dir}/doc.sqlite`, call_control_socket: '', cc_jsonrpc_address: 'udp:127.0.0.1:9',
    },
  });
  if (!cfg.ok) throw new Error(cfg.error);
  const app = buildApp(cfg.config, { clock: () => now, logger: false });
  await app.start();
  const rpc = async (method: string, params: readonly unknown[]): Promise<Run> => {
    const res = await app.http.inject({ method: 'POST', url: '/rpc', payload: { jsonrpc: '2.0', id: 1, method, params } });
    return res.json() as Run;
  };
  const must = async (method: string, params: readonly unknown[]): Promise<void> => {
    const r = await rpc(method, params);
    if (r.error) throw new Error(`sample state: ${method}: ${r.error.message}`);
  };
  try {
    // Shared line 100: two phones watch it, the first seized appearance 1 with its line-seize.
    const sca = app.sca.engine;
    now = T0 - 300;
    sca.subscribe({ msg: subscribeMsg(P1, { callId: 'ci-11@10.0.0.11', fromTag: 'p1' }), to_tag: 'sca-1', now });
    sca.subscribe({ msg: subscribeMsg(P2, { callId: 'ci-12@10.0.0.12', fromTag: 'p2' }), to_tag: 'sca-2', now });
    now = T0 - 10;
    sca.subscribe({ msg: subscribeMsg(P1, { callId: 'ls-11@10.0.0.11', fromTag: 'p1s', event: 'line-seize', expires: 15, callInfo: CI(1) }), to_tag: 'sca-3', now });
    // Call control: a prepaid account with rates, one call made, one in progress, a blacklist entry.
    now = T0 - 3600;
    await must('cc.account_set', ['100@pbx.example.com', 2, 'none', true, 1000]);
    await must('cc.account_set', ['old@pbx.example.com']);
    await must('cc.rates_load', ['31,5,12,30,6\n2,0,60,1,1\n']);
    await must('cc.blacklist_add', ['caller', 'spam@pbx.example.com', 'complaints']);
    const call = async (callId: string, answerAt: number, endAt?: number): Promise<void> => {
      const cc = app.cc;
      const apply = cc.link!.apply;
      await apply(cc.engine.admit({ callId, fromTag: `ft-${callId.slice(0, 1)}`, from: '<sip:100@pbx.example.com>;tag=x', ruri: 'sip:200@pbx.example.com', diverter: undefined, sourceIp: '192.0.2.10', door: 'socket' }, now), () => undefined);
      now = answerAt;
      await apply(cc.engine.answered({ callId, hEntry: 1, hId: 1 }, now), () => undefined);
      if (endAt !== undefined) {
        now = endAt;
        await apply(cc.engine.ended({ callId, cause: 'caller' }, now), () => undefined);
      }
    };
    now = T0 - 600;
    await call('a-1@192.0.2.10', T0 - 598, T0 - 508);
    now = T0 - 62;
    await call('b-2@192.0.2.10', T0 - 60);
    now = T0;

    const answers = new Map<string, { example: Run; mistake?: Run }>();
    const order = [...Object.keys(ALL_METHODS).filter((n) => !RUN_LAST.includes(n)), ...RUN_LAST];
    for (const name of order) {
      const m = ALL_METHODS[name]!;
      const example = await rpc(name, m.example.params);
      if (example.error) throw new Error(`${name}: the example fails: ${example.error.message}`);
      const mistake = m.example.mistake && await rpc(name, m.example.mistake);
      if (mistake && mistake.error?.code !== -32602) throw new Error(`${name}: the mistake ${JSON.stringify(m.example.mistake)} is not refused as one`);
      checkFields(name, m, example.result);
      answers.set(name, { example, ...(mistake ? { mistake } : {}) });
    }
    return answers;
  } finally {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every field of a result is documented, and every documented field shows (unless "absent" is said). */
function checkFields(name: string, m: RpcMethod<unknown>, result: unknown): void {
  const check = (where: string, fields: ResultFields, rows: unknown[]): void => {
    const seen = new Set(rows.flatMap((r) => Object.keys(r as object)));
    for (const k of seen) if (!(k in fields)) throw new Error(`${name}: result field ${where}${k} is not documented in the table`);
    if (rows.length === 0) return;
    for (const [k, doc] of Object.entries(fields)) {
      if (!seen.has(k) && !/absent/.test(doc)) throw new Error(`${name}: documented result field ${where}${k} is not in the example's result`);
    }
  };
  const rows = m.result.kind === 'rows' ? (result as unknown[]) : [result];
  check('', m.result.fields, rows);
  for (const [k, fields] of Object.entries(m.result.nested ?? {})) check(`${k}.`, fields, rows.flatMap((r) => (r as Record<string, unknown[]>)[k] ?? []));
}

/** A param as typed in a shell. */
const shellWord = (v: unknown): string => {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[\w@.:+\-/=]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
};

/** The sca-ctl command line of a call; a value with line breaks goes through a file (@file). */
function cliLines(name: string, m: RpcMethod<unknown>, params: readonly unknown[]): string[] {
  const files: string[] = [];
  const words = params.map((v, i) => {
    if (typeof v === 'string' && v.includes('\n')) {
      const file = m.params[i]!.name === 'csv' ? 'rates.csv' : `${m.params[i]!.name}.txt`;
      files.push(`$ cat ${file}`, ...v.replace(/\n$/, '').split('\n'));
      return `@${file}`;
    }
    return shellWord(v);
  });
  return [...files, `$ sca-ctl ${[name, ...words].join(' ')}`];
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');
const anchor = (name: string): string => name.replace(/[^\w]/g, '').toLowerCase();

function fieldsTable(fields: ResultFields): string[] {
  return ['| field | meaning |', '|---|---|', ...Object.entries(fields).map(([k, v]) => `| \`${k}\` | ${cell(v)} |`)];
}

function section(name: string, m: RpcMethod<unknown>, run: { example: Run; mistake?: Run }): string[] {
  const out: string[] = [`### ${name}`, '', m.summary];
  if (m.description) out.push('', m.description);
  out.push('', `\`${synopsis(name, m)}\`${m.mutates ? ' (changes state; logged with who and what)' : ''}`, '');
  if (m.params.length === 0) out.push('No params.');
  else {
    out.push('| # | param | type | meaning |', '|---|---|---|---|');
    m.params.forEach((p, i) => out.push(`| ${i + 1} | \`${p.name}\`${p.optional ? ' (optional)' : ''} | ${cell(p.type.doc)} | ${cell(p.doc)} |`));
  }
  out.push('', `**Result**: ${m.result.kind === 'rows' ? 'a list, ' : 'an object, '}${m.result.doc}.`, '', ...fieldsTable(m.result.fields));
  for (const [k, fields] of Object.entries(m.result.nested ?? {})) out.push('', `Each row of \`${k}\`:`, '', ...fieldsTable(fields));
  out.push('', '**Errors**:', '');
  for (const e of m.errors) out.push(`* \`${e.code}\`: ${e.when}`);
  out.push('* `-32602` (sca-ctl prints `error: 500 - ...` and exits 1): a bad param, named with why, then the usage line');
  const ex = run.example;
  out.push('', '**Example**:', '', '```', ...cliLines(name, m, m.example.params));
  const printed = formatKamcmd(name, ex.result);
  if (printed !== '') out.push(printed);
  out.push('```', '', `JSON-RPC: \`{"jsonrpc":"2.0","id":1,"method":"${name}","params":${JSON.stringify(m.example.params)}}\` answers:`, '', '```json', JSON.stringify(ex.result, null, 2), '```');
  if (run.mistake?.error && m.example.mistake) {
    out.push('', 'A mistake:', '', '```', ...cliLines(name, m, m.example.mistake), `error: 500 - ${run.mistake.error.message}`, '```');
  }
  return out;
}

export async function commandsDoc(): Promise<string> {
  const answers = await runExamples();
  const names = Object.keys(ALL_METHODS);
  const lines = [
    '# Commands',
    '',
    '<!-- Generated by `npm run docs:commands` (scripts/commands-doc.ts) from the command table in',
    '     service/rpc/sca-methods.ts and service/rpc/cc-methods.ts; do not edit by hand. -->',
    '',
    'Every `sca.*` and `cc.*` command of sca-service, from the table the service runs them with.',
    'They are JSON-RPC 2.0 methods at `POST /rpc` (`Authorization: Bearer <admin_token>` when a',
    'token is set) and commands of `sca-ctl` (`node bin/sca-ctl.js`; `sca-ctl --help <command>` prints',
    'the same params and fields). The examples\' answers are what the service answers for a sample',
    'state: line `sip:100@pbx.example.com` watched by two phones, account `100@pbx.example.com`',
    '(prepaid, rates `31` and `2`) with one call made and one in progress, at 2027-01-15T08:00:00Z.',
    '',
    '## Params, results and errors',
    '',
    '* **Params** are positional, in the order listed (as kamcmd sends them: `"params": [...]`), or',
    '  named (`"params": {"account": "...", "max_calls": 2}`). A param marked optional may be left',
    '  out; a positional one only from the end.',
    '* **Types** are strict. A number is a JSON number or decimal text (sca-ctl sends text): never',
    '  `true`, a list, `""`, NaN or Infinity; a whole number has no fraction. Money is in minor',
    '  units, at most 10^15 either way, and no balance may pass it, so every sum stays exact. A',
    '  boolean is `true`/`false`, `1`/`0` or `yes`/`no`. Text has no control characters (a CSV',
    '  its line breaks). A time is epoch seconds or ISO 8601 (`2027-01-15T08:00:00Z`).',
    '* **A bad param** is the caller\'s mistake: JSON-RPC error `-32602`, whose message names each',
    '  bad, missing or unknown param and why, then the usage line; `error.data` has them as',
    '  `{problems: [{param, why}], usage}`. Too many positional params are one too.',
    '* **Faults** of the command itself carry a code (`404` not found, `409` in use, `500` the sca',
    '  module\'s faults, with its texts) and a message.',
    '* **sca-ctl** prints by default what kamcmd prints for the native sca module (and `key: value`',
    '  lines or tables for the rest), `--table` tables, `--json` the JSON result. A fault prints',
    '  `error: <code> - <message>` (`-32602` as the module\'s `500`) and exits 1; it exits 2 for its',
    '  own usage, 3 when the service cannot be reached, 4 when the token is missing or wrong.',
    '',
    '## The commands',
    '',
    '| command | what it does |',
    '|---|---|',
    ...names.map((n) => `| [\`${n}\`](#${anchor(n)}) | ${cell(ALL_METHODS[n]!.summary)} |`),
    '',
  ];
  for (const [title, prefix] of [['Shared lines: sca.*', 'sca.'], ['Call control: cc.*', 'cc.']] as const) {
    lines.push(`## ${title}`, '');
    if (prefix === 'sca.') lines.push('The commands of Kamailio\'s sca module (5.6): same names, params and fault texts.', '');
    for (const n of names.filter((x) => x.startsWith(prefix))) lines.push(...section(n, ALL_METHODS[n]!, answers.get(n)!), '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(DOC_PATH, await commandsDoc());
  console.log(`wrote ${path.relative(process.cwd(), DOC_PATH)}`);
}
