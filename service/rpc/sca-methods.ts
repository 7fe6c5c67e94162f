import { z } from 'zod';
import type { AdminResult } from '../sca/admin.js';
import type { AdminOutcome, ScaEngine } from '../sca/engine.js';
import type { EventPackage } from '../sca/types.js';
import type { RpcOutcome, RpcTable } from './methods.js';

/**
 * The sca.* RPC commands of Kamailio's sca module (5.6): same names, parameters and meaning,
 * with structured results. Faults carry the module's texts.
 */
const event = z.enum(['call-info', 'line-seize']);
/** Text that may end up in a header: no control characters. */
const text = z.string().min(1).max(512).regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters');
const aor = text;
const index = z.coerce.number().int();
const none = z.object({}).strict();

const ok = (result: unknown): RpcOutcome => ({ ok: true, result });
const fault = (message: string, code = 500): RpcOutcome => ({ ok: false, code, message });
/** An engine operation's result as an RPC outcome; a change brings its effects. */
const fromAdmin = <T>(r: AdminOutcome<T> | AdminResult<T>, shape: (v: T) => unknown = (v) => v): RpcOutcome =>
  r.ok ? { ok: true, result: shape(r.value), ...('writes' in r ? { effects: r } : {}) } : fault(r.message, r.code);

export const SCA_METHODS: RpcTable<ScaEngine> = {
  'sca.all_subscriptions': {
    params: [], schema: none, usage: 'usage: sca.all_subscriptions', mutates: false,
    run: ({ engine, now }) => ok(engine.listSubscriptions(now)),
  },
  'sca.subscription_count': {
    params: ['event'], schema: z.object({ event }).strict(), usage: 'usage: sca.subscription_count {call-info | line-seize}', mutates: false,
    run: ({ engine }, a) => ok({ event: a.event, count: engine.countSubscriptions(a.event as EventPackage) }),
  },
  'sca.show_subscription': {
    params: ['aor', 'event', 'contact'], schema: z.object({ aor, event, contact: z.string().min(1).optional() }).strict(),
    usage: 'usage: sca.show_subscription sip:user@domain {call-info | line-seize} [sip:user@IP]', mutates: false,
    run: ({ engine, now }, a) => ok(engine.showSubscription(a.aor as string, a.event as EventPackage, a.contact as string | undefined, now)),
  },
  'sca.subscribers': {
    params: ['aor'], schema: z.object({ aor: aor.optional() }).strict(), usage: 'usage: sca.subscribers [sip:user@domain]', mutates: false,
    run: ({ engine, now }, a) => ok(engine.subscribers(a.aor as string | undefined, now)),
  },
  'sca.deactivate_all_subscriptions': {
    params: [], schema: none, usage: 'usage: sca.deactivate_all_subscriptions', mutates: true,
    run: ({ engine, now }) => fromAdmin(engine.deactivateAll(now), (v) => ({ deactivated: v })),
  },
  'sca.deactivate_subscription': {
    params: ['aor', 'event', 'contact'], schema: z.object({ aor, event, contact: z.string().min(1).optional() }).strict(),
    usage: 'usage: sca.deactivate_subscription sip:user@domain {call-info | line-seize} [sip:user@IP]', mutates: true,
    run: ({ engine, now }, a) => fromAdmin(engine.deactivateSubscription(a.aor as string, a.event as EventPackage, a.contact as string | undefined, now), (v) => ({ deactivated: v })),
  },
  'sca.all_appearances': {
    params: [], schema: none, usage: 'usage: sca.all_appearances', mutates: false,
    run: ({ engine }) => ok(engine.listAppearances()),
  },
  'sca.show_appearance': {
    params: ['aor', 'index'], schema: z.object({ aor, index: index.optional() }).strict(), usage: 'usage: sca.show_appearance sip:user@domain [appearance-index]', mutates: false,
    run: ({ engine }, a) => fromAdmin(engine.showAppearance(a.aor as string, a.index as number | undefined)),
  },
  'sca.seize_appearance': {
    params: ['aor', 'owner'], schema: z.object({ aor, owner: text }).strict(), usage: 'usage: sca.seize_appearance sip:user@domain sip:user@IP', mutates: true,
    run: ({ engine, now }, a) => fromAdmin(engine.seizeAppearance(a.aor as string, a.owner as string, now), (v) => ({
      aor: a.aor, index: v.index, owner: a.owner, message: `Seized ${a.aor as string} appearance-index ${v.index} for ${a.owner as string}`,
    })),
  },
  'sca.update_appearance': {
    params: ['aor', 'index', 'state', 'uri'], schema: z.object({ aor, index, state: z.string().min(1), uri: text.optional() }).strict(),
    usage: 'Usage: sca.update_appearance sip:user@domain appearance-index appearance-state [appearance-uri]', mutates: true,
    run: ({ engine, now }, a) => fromAdmin(engine.updateAppearance(a.aor as string, a.index as number, a.state as string, a.uri as string | undefined, now), () => ({ aor: a.aor, index: a.index, state: a.state })),
  },
  'sca.release_appearance': {
    params: ['aor', 'index'], schema: z.object({ aor, index }).strict(), usage: 'usage: sca.release_appearance user@domain appearance-index', mutates: true,
    run: ({ engine, now }, a) => fromAdmin(engine.releaseAppearance(a.aor as string, a.index as number, now), () => ({ aor: a.aor, index: a.index, released: true })),
  },
};

