import type { AdminResult } from '../sca/admin.js';
import type { AdminOutcome, ScaEngine } from '../sca/engine.js';
import type { EventPackage } from '../sca/types.js';
import type { ResultFields, RpcOutcome, RpcTable } from './methods.js';
import { oneOf, text, whole, type ParamSpec } from './params.js';

/**
 * The sca.* RPC commands of Kamailio's sca module (5.6): same names, parameters and meaning,
 * with structured results. Faults carry the module's texts; usage lines are the module's too.
 */
const event = oneOf(['call-info', 'line-seize'] as const);
/** Text that may end up in a header: no control characters. */
const uriText = text(1, 512, { doc: 'SIP URI, up to 512 characters' });
/** An appearance index as the module reads it (an int): the engine answers the module's fault for ≤ 0. */
const index = whole(-(2 ** 31), 2 ** 31 - 1, 'whole number (appearance-index, from 1)');

const P = {
  aor: { name: 'aor', type: uriText, doc: 'the shared line, its address of record (sip:user@domain)' },
  event: { name: 'event', type: event, doc: 'the event package' },
  contact: { name: 'contact', type: uriText, optional: true, doc: 'one subscriber: its Contact URI (sip:user@IP:port); all of the line\'s when left out' },
} satisfies Record<string, ParamSpec>;

const SUBSCRIPTION: ResultFields = {
  aor: 'the line (address of record)',
  event: 'call-info or line-seize',
  subscriber: 'the phone: its Contact URI',
  expires: 'when it expires (epoch seconds)',
  ttl: 'seconds left',
  state: 'active, pending or terminated[;reason=...]',
  index: 'line-seize: the appearance it seized (0 for call-info)',
  call_id: 'the subscription dialog\'s Call-ID',
  from_tag: 'its From tag (the phone\'s)',
  to_tag: 'its To tag (the service\'s)',
  notify_cseq: 'the CSeq of the last NOTIFY sent in it',
  route_set: 'the route set NOTIFYs follow',
  flow: 'where its last SUBSCRIBE came from and the socket it came in on (proto:address:port on proto:ip:port): its NOTIFYs go there; "" if Kamailio did not say',
};

const APPEARANCE: ResultFields = {
  aor: 'the line (address of record)',
  index: 'appearance-index, from 1',
  state: 'seized, progressing, alerting, active, held or held-private',
  mtime: 'when it last changed (epoch seconds)',
  owner: 'the phone that has it (its Contact URI)',
  callee: 'the remote party of its call',
  uri: 'appearance-uri (the other party, as NOTIFYs show it)',
  call_id: 'its call\'s Call-ID ("" while only seized)',
  from_tag: 'its call\'s From tag',
  to_tag: 'its call\'s To tag',
};

const ok = (result: unknown): RpcOutcome => ({ ok: true, result });
const fault = (message: string, code = 500): RpcOutcome => ({ ok: false, code, message });
/** An engine operation's result as an RPC outcome; a change brings its effects. */
const fromAdmin = <T>(r: AdminOutcome<T> | AdminResult<T>, shape: (v: T) => unknown = (v) => v): RpcOutcome =>
  r.ok ? { ok: true, result: shape(r.value), ...('writes' in r ? { effects: r } : {}) } : fault(r.message, r.code);

const AOR = 'sip:100@pbx.example.com';
const PHONE = 'sip:100@10.0.0.11:5060';

export const SCA_METHODS: RpcTable<ScaEngine> = {
  'sca.all_subscriptions': {
    summary: 'Every subscription (call-info and line-seize) of every line.',
    params: [], usage: 'usage: sca.all_subscriptions', mutates: false,
    result: { kind: 'rows', doc: 'one row per subscription', fields: SUBSCRIPTION },
    errors: [], example: { params: [], mistake: ['call-info'] },
    run: ({ engine, now }) => ok(engine.listSubscriptions(now)),
  },
  'sca.subscription_count': {
    summary: 'How many subscriptions of one event package there are.',
    params: [{ ...P.event, doc: 'the event package to count' }],
    usage: 'usage: sca.subscription_count {call-info | line-seize}', mutates: false,
    result: { kind: 'object', doc: 'the count', fields: { event: 'the event package', count: 'its subscriptions' } },
    errors: [], example: { params: ['call-info'], mistake: ['presence'] },
    run: ({ engine }, a) => ok({ event: a.event, count: engine.countSubscriptions(a.event as EventPackage) }),
  },
  'sca.show_subscription': {
    summary: 'The subscriptions of one line to one event package, or one phone\'s.',
    params: [P.aor, P.event, P.contact],
    usage: 'usage: sca.show_subscription sip:user@domain {call-info | line-seize} [sip:user@IP]', mutates: false,
    result: { kind: 'rows', doc: 'the matching subscriptions (none: an empty list)', fields: SUBSCRIPTION },
    errors: [], example: { params: [AOR, 'call-info'], mistake: [AOR] },
    run: ({ engine, now }, a) => ok(engine.showSubscription(a.aor as string, a.event as EventPackage, a.contact as string | undefined, now)),
  },
  'sca.subscribers': {
    summary: 'The subscribers of one line, or of every line, by event package.',
    description: 'Not implemented by the native module (it answers 600).',
    params: [{ ...P.aor, optional: true, doc: 'the line; every line when left out' }],
    usage: 'usage: sca.subscribers [sip:user@domain]', mutates: false,
    result: {
      kind: 'rows', doc: 'one row per line', fields: { aor: 'the line', call_info: 'its call-info subscriptions', line_seize: 'its line-seize subscriptions' },
      nested: { call_info: SUBSCRIPTION, line_seize: SUBSCRIPTION },
    },
    errors: [], example: { params: [AOR], mistake: [AOR, 'call-info'] },
    run: ({ engine, now }, a) => ok(engine.subscribers(a.aor as string | undefined, now)),
  },
  'sca.deactivate_all_subscriptions': {
    summary: 'Ends every subscription (terminated;reason=deactivated): the phones subscribe again.',
    description: 'Appearances stay. The module keeps deactivated subscriptions until its purge; here they go after their NOTIFY.',
    params: [], usage: 'usage: sca.deactivate_all_subscriptions', mutates: true,
    result: { kind: 'object', doc: 'what was ended', fields: { deactivated: 'the subscriptions ended' }, nested: { deactivated: SUBSCRIPTION } },
    errors: [], example: { params: [], mistake: [AOR] },
    run: ({ engine, now }) => fromAdmin(engine.deactivateAll(now), (v) => ({ deactivated: v })),
  },
  'sca.deactivate_subscription': {
    summary: 'Ends the subscriptions of one line to one event package, or one phone\'s.',
    params: [P.aor, P.event, P.contact],
    usage: 'usage: sca.deactivate_subscription sip:user@domain {call-info | line-seize} [sip:user@IP]', mutates: true,
    result: { kind: 'object', doc: 'what was ended', fields: { deactivated: 'the subscriptions ended' }, nested: { deactivated: SUBSCRIPTION } },
    errors: [], example: { params: [AOR, 'line-seize', PHONE], mistake: [AOR, 'line_seize'] },
    run: ({ engine, now }, a) => fromAdmin(engine.deactivateSubscription(a.aor as string, a.event as EventPackage, a.contact as string | undefined, now), (v) => ({ deactivated: v })),
  },
  'sca.all_appearances': {
    summary: 'Every appearance in use, of every line (idle ones are not kept).',
    params: [], usage: 'usage: sca.all_appearances', mutates: false,
    result: { kind: 'rows', doc: 'one row per appearance in use', fields: APPEARANCE },
    errors: [], example: { params: [], mistake: [AOR] },
    run: ({ engine }) => ok(engine.listAppearances()),
  },
  'sca.show_appearance': {
    summary: 'The appearances of one line, or one of them.',
    description: 'Not implemented by the native module (it answers 600).',
    params: [P.aor, { name: 'index', type: index, optional: true, doc: 'one appearance-index; all of the line\'s when left out' }],
    usage: 'usage: sca.show_appearance sip:user@domain [appearance-index]', mutates: false,
    result: { kind: 'rows', doc: 'the appearances', fields: APPEARANCE },
    errors: [{ code: 500, when: 'the line has no appearances ("No appearances for <aor>"), or the index is not in use' }],
    example: { params: [AOR], mistake: [AOR, 'one'] },
    run: ({ engine }, a) => fromAdmin(engine.showAppearance(a.aor as string, a.index as number | undefined)),
  },
  'sca.seize_appearance': {
    summary: 'Seizes the lowest free appearance of a line for a phone, as its line-seize would.',
    params: [P.aor, { name: 'owner', type: uriText, doc: 'the phone that gets it: its Contact URI (sip:user@IP:port)' }],
    usage: 'usage: sca.seize_appearance sip:user@domain sip:user@IP', mutates: true,
    result: {
      kind: 'object', doc: 'the appearance seized',
      fields: { aor: 'the line', index: 'the appearance-index seized', owner: 'the phone', message: 'the line kamcmd prints for the module' },
    },
    errors: [{ code: 500, when: 'every appearance is in use ("Failed to seize line")' }],
    example: { params: [AOR, 'sip:100@10.0.0.12:5060'], mistake: [AOR] },
    run: ({ engine, now }, a) => fromAdmin(engine.seizeAppearance(a.aor as string, a.owner as string, now), (v) => ({
      aor: a.aor, index: v.index, owner: a.owner, message: `Seized ${a.aor as string} appearance-index ${v.index} for ${a.owner as string}`,
    })),
  },
  'sca.update_appearance': {
    summary: 'Sets an appearance\'s state (and appearance-uri); "idle" releases it. The line\'s phones get a NOTIFY.',
    params: [
      P.aor, { name: 'index', type: index, doc: 'the appearance-index' },
      { name: 'state', type: text(1, 64), doc: 'seized, progressing, alerting, active-pending, active, held, held-private or idle (any case)' },
      { name: 'uri', type: uriText, optional: true, doc: 'the appearance-uri to show (the other party)' },
    ],
    usage: 'Usage: sca.update_appearance sip:user@domain appearance-index appearance-state [appearance-uri]', mutates: true,
    result: { kind: 'object', doc: 'what was set (kamcmd prints nothing, as for the module)', fields: { aor: 'the line', index: 'the appearance-index', state: 'the state set' } },
    errors: [
      { code: 500, when: 'not a state ("<state>: invalid state"), an index ≤ 0 ("appearance-index must be > 0"), an index not in use ("Failed to update <aor> appearance-index <n>")' },
    ],
    example: { params: [AOR, 1, 'held'], mistake: [AOR, '1.5', 'held'] },
    run: ({ engine, now }, a) => fromAdmin(engine.updateAppearance(a.aor as string, a.index as number, a.state as string, a.uri as string | undefined, now), () => ({ aor: a.aor, index: a.index, state: a.state })),
  },
  'sca.release_appearance': {
    summary: 'Releases an appearance (it goes idle); the line\'s phones get a NOTIFY.',
    params: [P.aor, { name: 'index', type: index, doc: 'the appearance-index' }],
    usage: 'usage: sca.release_appearance user@domain appearance-index', mutates: true,
    result: { kind: 'object', doc: 'what was released (kamcmd prints nothing, as for the module)', fields: { aor: 'the line', index: 'the appearance-index', released: 'true' } },
    errors: [{ code: 500, when: 'an index ≤ 0 ("appearance-index must be > 0"), a line without appearances ("No appearances for <aor>"), an index not in use ("<aor> appearance index <n> is not in use")' }],
    example: { params: [AOR, 1], mistake: [AOR, true] },
    run: ({ engine, now }, a) => fromAdmin(engine.releaseAppearance(a.aor as string, a.index as number, now), () => ({ aor: a.aor, index: a.index, released: true })),
  },
};
