import { z } from 'zod';
import { NO_EDIT, noEffects, type Effects, type MessageEdit, type OutboundNotify } from '../effects.js';
import { EffectsRunner } from '../effects-runner.js';
import type { LinkMethod, LinkMethods } from '../kamailio/link.js';
import { resume } from '../kamailio/wire.js';
import { ScaMetrics } from '../metrics/sca.js';
import { SCA_METHODS } from '../rpc/sca-methods.js';
import type { CallEventOutcome } from '../sca/call-event.js';
import type { SubscribeOutcome } from '../sca/subscribe.js';
import { ScaEngine } from '../sca/engine.js';
import { allLineViews, lineChanges } from '../sca/line-view.js';
import type { ScaWrite } from '../sca/journal.js';
import { callEventInput, flowFields, flowFromFields, notifyReplyInput, subscribeInput, throughProxy } from '../sca/schemas.js';
import { Committer } from '../store/committer.js';
import { ScaStore } from '../store/sca-tables.js';
import type { ModuleDeps, ServiceModule } from './module.js';

/**
 * Shared Call Appearance as a service module: the SCA engine on the Kamailio link
 * (kamailio/sca-routes.cfg), its sca.* commands, its store, metrics and live-view lines.
 *
 * Link methods (params as kamailio/sca-routes.cfg sends them):
 *   sca.subscribe    {tindex, tlabel, msg, ruri, to_tag, auth_user?, flow}   the SUBSCRIBE is suspended → Resume
 *   sca.invite       {tindex, tlabel, msg, ruri, flow}                        the INVITE is suspended → Resume
 *   sca.call_event   {hook, msg, status?, flow}                               reported, not suspended → {}
 *   (flow: proto, src_ip, src_port, rcv_ip, rcv_port = $pr, $si, $sp, $Ri, $Rp; a SUBSCRIBE's
 *    NOTIFYs go back to it, a 2xx's is where a pickup of that party goes)
 *   sca.notify_reply {call_id, from_tag, cseq, code}       the final reply to a NOTIFY; sent as a notification (no id): not answered
 */

const ids = { tindex: z.number().int().nonnegative(), tlabel: z.number().int().nonnegative() };
// The engine's inputs without the clock; Kamailio sends an empty string for an unset value.
const optionalText = z.string().optional().transform((s) => (s === '' ? undefined : s));
const subscribeParams = subscribeInput.omit({ now: true, ruri: true, to_tag: true, auth_user: true, flow: true })
  .extend({ ...ids, ruri: optionalText, to_tag: optionalText, auth_user: optionalText, ...flowFields }).strip();
const inviteParams = subscribeInput.pick({ msg: true }).extend({ ...ids, ruri: optionalText, ...flowFields }).strip();
const callEventParams = callEventInput.omit({ now: true, mask: true, flow: true }).extend(flowFields).strip();
const notifyReplyParams = notifyReplyInput.omit({ now: true }).strip();

/** The transaction ids of a request whose params are otherwise unreadable. */
const readableIds = (raw: unknown): { tindex: number; tlabel: number } | undefined => {
  const p = raw as { tindex?: unknown; tlabel?: unknown } | null;
  return p && Number.isInteger(p.tindex) && Number.isInteger(p.tlabel) ? { tindex: p.tindex as number, tlabel: p.tlabel as number } : undefined;
};

/** What Kamailio's resume route does with a relayed INVITE, from the engine's edit. */
export function inviteEdit(out: Pick<CallEventOutcome, 'edit' | 'callerShared'>): MessageEdit {
  const { edit } = out;
  return {
    removeHeaders: edit.removeCallInfo ? ['Call-Info'] : [],
    appendHeaders: [...(edit.keepCallInfo.length > 0 ? [['Call-Info', edit.keepCallInfo.join(', ')] as const] : []), ...edit.appendHeaders],
    ruri: edit.ruri,
    flags: [...(out.callerShared ? ['sca_caller'] : []), ...(edit.ruri !== undefined ? ['sca_pickup'] : [])],
    dst: edit.dst,
  };
}

/** What a message from Kamailio was about, for the log line. */
const callIdOf = (msg: string): string | undefined => /^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)/im.exec(msg)?.[1];

export function scaModule(deps: ModuleDeps): ServiceModule & { readonly engine: ScaEngine; readonly committer: Committer; readonly metrics: ScaMetrics } {
  const { config, db, link, clock } = deps;
  const log = deps.log.child({ component: 'sca' });
  const engine = new ScaEngine(config);
  const tables = new ScaStore(db, config.server_id);
  const committer = new Committer(db, deps.log.child({ component: 'store', engine: 'sca' }), deps.committerOptions);
  const runner = new EffectsRunner<ScaWrite>({
    commit: (writes, within) => committer.commit(tables.changes(writes), within),
    sendNotifies: (n) => link.sendNotifies(n),
  }, clock);
  /** The lines the live view has not been sent since they changed: every row write names one. */
  const changedLines = new Set<string>();
  const run = (effects: Effects<ScaWrite>, answer?: (notifies: readonly OutboundNotify[]) => void): Promise<void> => {
    for (const w of effects.writes) changedLines.add(w.aor);
    // Kamailio waits on an answer: it does not wait past db_write_timeout for its commit.
    return runner.run(effects, answer, answer ? config.db_write_timeout * 1000 : undefined);
  };
  const metrics = new ScaMetrics(deps.registry, engine, committer);
  /** SUBSCRIBEs handled and not yet answered: when each came, for the handling histogram. */
  const subscribing = new WeakMap<object, { out: SubscribeOutcome; t0: number }>();
  let purgeTimer: NodeJS.Timeout | undefined;
  let linkedOnce = false;

  const subscribe: LinkMethod<z.infer<typeof subscribeParams>> = {
    params: subscribeParams,
    handle(p, from) {
      const t0 = performance.now();
      const out = engine.subscribe({ msg: p.msg, ruri: p.ruri, to_tag: p.to_tag, auth_user: p.auth_user, flow: throughProxy(flowFromFields(p), from.proxy), now: clock() });
      subscribing.set(out, { out, t0 });
      log.info({ aor: out.aor, callId: callIdOf(p.msg), code: out.reply.code, notifies: out.notifies.length }, `SUBSCRIBE ${out.reply.code} ${out.reply.reason}`);
      metrics.subscribed(out);
      return { answer: { ...resume(p, out.reply, undefined) }, effects: out };
    },
    fallback(raw) {
      const t = readableIds(raw);
      return t && { ...resume(t, { code: 500, reason: 'Internal Server Error - bad event', headers: [] }, undefined) };
    },
  };

  const invite: LinkMethod<z.infer<typeof inviteParams>> = {
    params: inviteParams,
    handle(p, from) {
      const out = engine.callEvent({ hook: 'request', msg: p.msg, flow: throughProxy(flowFromFields(p), from.proxy), now: clock() });
      log.info({ aor: out.aors[0], callId: callIdOf(p.msg), result: out.result, reply: out.reply?.code, pickup: out.edit.ruri !== undefined }, 'INVITE');
      return { answer: { ...resume(p, out.reply, inviteEdit(out)) }, effects: out };
    },
    // An INVITE the service cannot read goes on untouched: calls never fail because of SCA.
    fallback(raw) {
      const t = readableIds(raw);
      return t && { ...resume(t, undefined, NO_EDIT) };
    },
  };

  const callEvent: LinkMethod<z.infer<typeof callEventParams>> = {
    params: callEventParams,
    handle(p, from) {
      const out = engine.callEvent({ hook: p.hook, msg: p.msg, status: p.status, flow: throughProxy(flowFromFields(p), from.proxy), now: clock() });
      if (out.notifies.length > 0 || out.result === 1) {
        log.debug({ aor: out.aors[0], callId: callIdOf(p.msg), hook: p.hook, status: p.status, notifies: out.notifies.length }, 'call event');
      }
      return { answer: {}, effects: out };
    },
  };

  const notifyReply: LinkMethod<z.infer<typeof notifyReplyParams>> = {
    params: notifyReplyParams,
    handle(p) {
      link.notifyAnswered(p.call_id, p.from_tag, p.cseq, p.code);
      if (p.code < 300) return { answer: {}, effects: noEffects() };
      const out = engine.notifyReply({ ...p, now: clock() });
      log.warn({ aor: out.aor, callId: p.call_id, code: p.code, removed: out.removed }, 'NOTIFY rejected');
      return { answer: {}, effects: out };
    },
  };

  const methods: LinkMethods = { 'sca.subscribe': subscribe, 'sca.invite': invite, 'sca.call_event': callEvent, 'sca.notify_reply': notifyReply };

  return {
    name: 'sca',
    engine,
    committer,
    metrics,
    link: {
      methods,
      apply(effects, answer) {
        const sub = subscribing.get(effects);
        if (!sub) return run(effects as never, answer);
        subscribing.delete(effects);
        return run(effects as never, (notifies) => {
          answer(notifies);
          metrics.subscribeAnswered(sub.out, (performance.now() - sub.t0) / 1000);
        });
      },
    },
    rpc: { table: SCA_METHODS, engine, apply: (effects) => run(effects as never) },
    view: {
      all: () => ({ lines: allLineViews(engine.ctx) }),
      changes() {
        if (changedLines.size === 0) return undefined;
        const out = lineChanges(engine.ctx, changedLines);
        changedLines.clear();
        return out;
      },
      forget: () => changedLines.clear(),
    },
    status: () => ({ ready: true, degraded: committer.degraded, detail: { pending_rows: committer.pending } }),

    async start() {
      await tables.migrate();
      const loaded = await tables.load();
      const restored = engine.restore(loaded.lines, clock());
      const { writes: _w, notifies: _n, commands: _c, timers: _t, ...counts } = restored;
      log.info({ store: db.kind, ...counts, skipped: loaded.skipped }, 'state restored');
      if (loaded.skipped > 0) log.warn({ skipped: loaded.skipped }, 'bad rows skipped while restoring');
      await run(restored);
      purgeTimer = setInterval(() => {
        const out = engine.tick(clock());
        if (out.notifies.length > 0) log.info({ notifies: out.notifies.length }, 'purge');
        void run(out);
        deps.changed();
      }, config.purge_expired_interval * 1000);
    },

    // A proxy linked (after the service's restart, or its own): the phones that subscribed
    // through it get the full state, which only it can carry to them (NAT bindings, TCP/TLS
    // connections); those of no known proxy (rows of an older release) with the first link.
    linkUp(proxy) {
      void run(engine.notifyThrough(proxy, clock()));
      if (!linkedOnce) void run(engine.notifyThrough(undefined, clock()));
      linkedOnce = true;
    },

    async stop() {
      if (purgeTimer) clearInterval(purgeTimer);
      runner.stop();
      const left = await committer.drain(5000);
      committer.stop();
      if (left > 0) log.error({ rows: left }, 'STORE: rows not written at shutdown (the database did not take them)');
      return left;
    },
  };
}
