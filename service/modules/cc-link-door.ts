import { z } from 'zod';
import type { AdmitRequest } from '../cc/admission.js';
import { replyOf, type CcConfig } from '../cc/config.js';
import type { CcEngine } from '../cc/engine.js';
import { parsePCallControl } from '../cc/p-call-control.js';
import type { AdmissionResult, Decision, EndCause } from '../cc/types.js';
import type { LinkMethod, LinkMethods } from '../kamailio/link.js';
import { resume, type TransactionIds } from '../kamailio/wire.js';

/**
 * Call control's link door (kamailio/cc-routes.cfg) on the generic link:
 *   cc.admit  {tindex, tlabel, call_id, from_tag, from, ruri, source_ip, diverter?, account?,
 *              max_calls?, max_duration?, pcc?}      the INVITE is suspended → Resume (+ limit)
 *   cc.start  {call_id, from_tag?, h_entry, h_id, to_tag?}   dialog:start → {}
 *   cc.end    {call_id, from_tag?, by?}                      dialog:end → {}
 *   cc.failed {call_id, from_tag?, code?}                    dialog:failed → {}
 * A call the service cannot account for (unreadable params, a P-Call-Control it cannot read) is
 * refused with a 4xx; only a service that cannot be reached lets calls on (cc-routes.cfg's
 * CC_AWAY, or 503 with CC_FAIL_CLOSED).
 */

const text = (max: number) => z.string().max(max);
const ids = { tindex: z.number().int().nonnegative(), tlabel: z.number().int().nonnegative() };
const optionalText = (max: number) => z.string().max(max).optional().transform((s) => (s === '' ? undefined : s));
const optionalCount = z.union([z.number(), z.string()]).optional().transform((v, ctx) => {
  if (v === undefined || v === '' || v === -1 || v === '-1') return undefined;
  const n = typeof v === 'number' ? v : /^\d{1,10}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < 0 || n > 1e9) {
    ctx.addIssue({ code: 'custom', message: 'a whole number' });
    return z.NEVER;
  }
  return n;
});
// Call-IDs, tags and URIs of any length SIP carries in practice (the store keeps a digest of a
// Call-ID too long for its column).
const admitParams = z.object({
  ...ids, call_id: text(8192).min(1), from_tag: text(8192).min(1), from: text(8192).min(1), ruri: text(8192).min(1), source_ip: text(64).default(''),
  diverter: optionalText(8192), account: optionalText(1024), max_calls: optionalCount, max_duration: optionalCount, pcc: optionalText(4096),
}).strip();
const startParams = z.object({
  call_id: text(8192).min(1), from_tag: optionalText(8192), h_entry: z.coerce.number().int().nonnegative(), h_id: z.coerce.number().int().nonnegative(),
  to_tag: optionalText(8192),
}).strip();
const endParams = z.object({ call_id: text(8192).min(1), from_tag: optionalText(8192), by: z.enum(['caller', 'callee', 'timeout', '']).optional() }).strip();
const failedParams = z.object({ call_id: text(8192).min(1), from_tag: optionalText(8192), code: z.coerce.number().int().min(0).max(699).optional() }).strip();

/** The transaction ids of a request whose params are otherwise unreadable. */
const readableIds = (raw: unknown): TransactionIds | undefined => {
  const p = raw as { tindex?: unknown; tlabel?: unknown } | null;
  return p && Number.isInteger(p.tindex) && Number.isInteger(p.tlabel) ? { tindex: p.tindex as number, tlabel: p.tlabel as number } : undefined;
};

const BAD_REQUEST = '400 Bad Call-Control Request';

export interface LinkDoorDeps {
  readonly config: CcConfig;
  readonly engine: CcEngine;
  readonly clock: () => number;
  readonly log: { warn(o: object, m: string): void };
  decided(req: Pick<AdmitRequest, 'callId'>, d: Decision, startedAt: number): void;
}

export function linkDoor(deps: LinkDoorDeps): LinkMethods {
  const { config, engine, clock, log } = deps;
  const refusals: Partial<Record<AdmissionResult, string>> = {
    blacklisted: config.cc_reply_blacklisted, limit: config.cc_reply_limit, 'no-credit': config.cc_reply_no_credit, 'no-rate': config.cc_reply_no_rate,
    'bad-request': BAD_REQUEST, duplicate: '400 Call-ID Already Counted',
  };
  const refused = (t: TransactionIds, reply: string) => resume(t, { ...replyOf(reply), headers: [] }, undefined);

  const admit: LinkMethod<z.infer<typeof admitParams>> = {
    params: admitParams,
    handle(p, from) {
      const t0 = performance.now();
      const pcc = parsePCallControl(p.pcc);
      if ('error' in pcc) {
        // The header is trusted (the script removes it from untrusted sources): one that cannot be
        // read cannot say who pays, so the call is refused rather than billed to someone else.
        deps.decided({ callId: p.call_id }, engine.unreadable(`P-Call-Control: ${pcc.error}`), t0);
        return { answer: { ...refused(p, BAD_REQUEST), limit: -1, account: '' }, effects: { notifies: [], writes: [], commands: [], timers: [] } };
      }
      const r: AdmitRequest = {
        callId: p.call_id, fromTag: p.from_tag, from: p.from, ruri: p.ruri, diverter: p.diverter, sourceIp: p.source_ip, door: 'link', proxy: from.proxy,
        account: p.account ?? pcc.account, maxCalls: p.max_calls ?? pcc.maxCalls, maxDuration: p.max_duration ?? pcc.maxDuration,
      };
      const out = engine.admit(r, clock());
      deps.decided(r, out.decision, t0);
      const refusal = refusals[out.decision.result];
      const answer = refusal
        ? refused(p, refusal)
        : resume(p, undefined, { removeHeaders: ['P-Call-Control'], appendHeaders: [], ruri: undefined, flags: out.decision.result === 'admitted' ? ['cc_counted'] : [] });
      return { answer: { ...answer, limit: out.decision.limit ?? -1, account: out.decision.account ?? '' }, effects: out };
    },
    // Unreadable: refused, never waved through uncounted.
    fallback(raw) {
      const t = readableIds(raw);
      if (!t) return undefined;
      deps.decided({ callId: String((raw as { call_id?: unknown }).call_id ?? '').slice(0, 255) }, engine.unreadable('unreadable cc.admit'), performance.now());
      return { ...refused(t, BAD_REQUEST), limit: -1, account: '' };
    },
  };

  /** An end or answer that names another dialog of the Call-ID than the counted one is not its. */
  const foreign = (what: string, callId: string, found: boolean): void => {
    if (!found) log.warn({ callId, event: what }, 'dialog event for no counted call (or another dialog of its Call-ID): ignored');
  };

  const start: LinkMethod<z.infer<typeof startParams>> = {
    params: startParams,
    handle(p) {
      const out = engine.answered({ callId: p.call_id, fromTag: p.from_tag, hEntry: p.h_entry, hId: p.h_id, toTag: p.to_tag }, clock());
      foreign('start', p.call_id, out.found);
      return { answer: {}, effects: out };
    },
  };
  const end: LinkMethod<z.infer<typeof endParams>> = {
    params: endParams,
    handle(p) {
      const cause: EndCause = p.by === 'caller' ? 'caller' : p.by === 'callee' ? 'callee' : 'normal';
      const out = engine.ended({ callId: p.call_id, fromTag: p.from_tag, cause }, clock());
      foreign('end', p.call_id, out.found);
      return { answer: {}, effects: out };
    },
  };
  const failed: LinkMethod<z.infer<typeof failedParams>> = {
    params: failedParams,
    handle(p) {
      const out = engine.ended({ callId: p.call_id, fromTag: p.from_tag, cause: 'failed', code: p.code }, clock());
      foreign('failed', p.call_id, out.found);
      return { answer: {}, effects: out };
    },
  };
  return { 'cc.admit': admit, 'cc.start': start, 'cc.end': end, 'cc.failed': failed };
}
