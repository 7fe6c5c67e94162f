// Fuzzing every input of the service: evapi frames (and the SIP inside them), RPC params and
// configuration. Each target checks the same promises: no exception escapes, a rejected input
// gets a clear error, and rejected input changes no state. Used seeded and short by npm test
// (test/unit/fuzz.test.ts) and long by scripts/bench/fuzz.ts.
import fc from 'fast-check';
import { CcEngine } from '../../service/cc/engine.js';
import { loadConfig } from '../../service/config.js';
import { callMethod } from '../../service/rpc/methods.js';
import { CC_METHODS } from '../../service/rpc/cc-methods.js';
import { SCA_METHODS } from '../../service/rpc/sca-methods.js';
import { ScaEngine } from '../../service/sca/engine.js';
import type { CcStore } from '../../service/store/cc-tables.js';
import { AOR, B, CI, P1, SDP, reply, request, subscribeMsg } from './sip-fixture.js';

const sipSeeds = [
  subscribeMsg(P1),
  subscribeMsg(P1, { event: 'line-seize', expires: 15, callInfo: CI(1), recordRoute: '<sip:p1.example.com;lr>' }),
  request('INVITE', { callId: 'c', from: `<${AOR}>`, fromTag: 'f', to: `<${B}>`, contact: P1, callInfo: CI(1), body: SDP('sendonly') }),
  reply(200, 'OK', 'INVITE', { callId: 'c', from: `<${AOR}>`, fromTag: 'f', to: `"B" <${B}>`, toTag: 't', contact: P1, callInfo: CI(2, 'active') }),
];
const noise = fc.constantFrom('', ';', ',', '<', '>', '"', '\\', ':', '\r\n', '\r', '\n', '*', '=', '@', ' ', '\u0000', 'é', 'tag=', 'appearance-index=', 'SIP/2.0', 'x'.repeat(300));

/** A SIP message with random slices deleted, duplicated or replaced by SIP-ish noise. */
export const mangledSip = fc.tuple(fc.constantFrom(...sipSeeds), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 40 }), noise), { maxLength: 6 }))
  .map(([seed, edits]) => edits.reduce((s, [at, len, ins]) => { const i = at % (s.length + 1); return s.slice(0, i) + ins + s.slice(i + len); }, seed));

/** Any JSON value, weighted towards the shapes the service expects. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, [null], 42, '', 'x'.repeat(70_000), { __proto__: { admin: true } }, { constructor: 1 }, -1, 1e308, Number.NaN),
);

/** An evapi frame: JSON-RPC requests for the service's methods with fuzzed params, or junk. */
export const evapiFrame: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  anyJson.map((v) => JSON.stringify(v) ?? 'undefined'),
  fc.record({
    jsonrpc: fc.constantFrom('2.0', '1.0', undefined),
    id: fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.constant(null)),
    method: fc.constantFrom('sca.subscribe', 'sca.invite', 'sca.call_event', 'sca.notify_reply', 'cc.admit', 'cc.start', 'cc.end', 'cc.failed', 'link.ping', 'nope'),
    params: fc.oneof(anyJson, fc.record({
      tindex: fc.oneof(fc.nat(), anyJson), tlabel: fc.oneof(fc.nat(), anyJson), msg: fc.oneof(mangledSip, anyJson), hook: fc.constantFrom('request', 'reply', 'failure', 'local-reply', 'x'),
      status: fc.oneof(fc.integer({ min: 0, max: 900 }), anyJson), call_id: fc.oneof(fc.string({ maxLength: 300 }), anyJson), from_tag: fc.string({ maxLength: 20 }),
      code: fc.oneof(fc.integer({ min: 0, max: 900 }), anyJson), from: fc.string({ maxLength: 40 }), ruri: fc.string({ maxLength: 40 }), max_calls: anyJson,
    }, { requiredKeys: [] })),
  }, { requiredKeys: ['method'] }).map((o) => JSON.stringify(o)),
);

/** One RPC command with fuzzed params, positional or named. */
export const rpcCall = fc.tuple(
  fc.constantFrom(...Object.keys(SCA_METHODS), ...Object.keys(CC_METHODS)),
  fc.oneof(fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.integer(), anyJson), { maxLength: 7 }), fc.dictionary(fc.constantFrom('aor', 'index', 'state', 'uri', 'event', 'contact', 'account', 'max_calls', 'balance', 'amount', 'prefix', 'csv', 'call_id', 'kind', 'value', 'extra'), anyJson), anyJson),
);

/** Runs an RPC command against fresh engines; returns what the engines hold afterwards. */
export function rpcTarget(): { run: (name: string, params: unknown) => Promise<{ ok: boolean; changedState: boolean }> } {
  const sca = new ScaEngine();
  const cc = new CcEngine();
  sca.subscribe({ msg: subscribeMsg(P1), to_tag: 't', now: 1000 });
  cc.setAccount('joe@example.com', { maxCalls: 2 }, 1000);
  const fakeStore = { cdrs: async () => [], history: async () => [] } as unknown as CcStore;
  const state = () => JSON.stringify([sca.listSubscriptions(1000), sca.listAppearances(), cc.listAccounts(), cc.rates(), cc.blacklisted(), cc.callsOf()]);
  return {
    async run(name, params) {
      const before = state();
      const out = name.startsWith('sca.')
        ? await callMethod(SCA_METHODS, name, params, { engine: sca, now: 1000 })
        : await callMethod(CC_METHODS, name, params, { engine: { engine: cc, store: fakeStore }, now: 1000 });
      if (!out.ok && (typeof out.message !== 'string' || out.message === '')) throw new Error(`${name}: a fault without a message`);
      return { ok: out.ok, changedState: state() !== before };
    },
  };
}

/** Configuration overrides: the settings' names with random values, and unknown names. */
export const configOverrides = fc.dictionary(
  fc.constantFrom('evapi_address', 'http_port', 'http_host', 'purge_expired_interval', 'max_appearances', 'aor_max_appearances', 'aor_members', 'db_url',
    'admin_token', 'cc_setup_timeout', 'cc_reply_limit', 'cc_cdr_fields', 'call_control_socket_mode', 'cc_jsonrpc_address', 'line_membership', 'nonsense'),
  anyJson,
);

export function checkConfig(overrides: Record<string, unknown>): void {
  const r = loadConfig({ env: {}, overrides });
  if (!r.ok && (typeof r.error !== 'string' || r.error === '')) throw new Error('a config error without a reason');
}
