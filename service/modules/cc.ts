import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AdmitRequest } from '../cc/admission.js';
import { replyOf } from '../cc/config.js';
import { CcEngine } from '../cc/engine.js';
import { parsePCallControl } from '../cc/p-call-control.js';
import type { AdmissionResult, CcWrite, Decision, EndCause } from '../cc/types.js';
import type { KamailioCommand } from '../effects.js';
import { EffectsRunner } from '../effects-runner.js';
import { CallControlSocketServer, type CallControlRequest } from '../kamailio/call-control-socket.js';
import { DialogRpc, DlgState, parseDialogId } from '../kamailio/dialog-rpc.js';
import type { LinkMethod, LinkMethods } from '../kamailio/link.js';
import { resume } from '../kamailio/wire.js';
import { CcMetrics } from '../metrics/cc.js';
import { CC_METHODS } from '../rpc/cc-methods.js';
import { CcStore } from '../store/cc-tables.js';
import { CdrLog } from '../store/cdr-log.js';
import { Committer } from '../store/committer.js';
import type { ModuleDeps, ServiceModule } from './module.js';

/**
 * Call control as a service module: one engine, two doors.
 *
 * The socket door serves Kamailio's stock call_control module (kamailio/kamailio.cfg): init,
 * start, stop on a unix socket, one reply line each. The module only understands Limited (1), No
 * limit (2), No credit (-1), Locked (-2); every refusal but an empty balance is Locked.
 *
 * The link door (kamailio/cc-routes.cfg) on the generic link:
 *   cc.admit  {tindex, tlabel, call_id, from_tag, from, ruri, source_ip, diverter?, account?,
 *              max_calls?, max_duration?, pcc?}      the INVITE is suspended → Resume (+ limit)
 *   cc.start  {call_id, h_entry, h_id, to_tag?}       dialog:start → {}
 *   cc.end    {call_id, by?}                          dialog:end → {}
 *   cc.failed {call_id, code?}                        dialog:failed → {}
 */

const SOCKET_REPLY: Record<AdmissionResult, string> = {
  admitted: 'Limited', untracked: 'No limit', 'no-credit': 'No credit', blacklisted: 'Locked', limit: 'Locked', 'no-rate': 'Locked', 'bad-request': 'Error',
};

const text = (max: number) => z.string().max(max);
const initFields = z.object({
  callid: text(255).min(1), from: text(1024).min(1), fromtag: text(128).min(1), ruri: text(1024).min(1),
  diverter: text(255).optional(), sourceip: text(64).default(''), sip_application: text(64).optional(),
  // OpenSIPS's module adds these; prepaid and call_token are not used here.
  call_limit: z.string().regex(/^\d{1,9}$/).transform(Number).optional(), prepaid: text(16).optional(), call_token: text(255).optional(),
}).strip();
const startFields = z.object({ callid: text(255).min(1), dialogid: text(64).min(1) }).strip();
const stopFields = z.object({ callid: text(255).min(1) }).strip();

const ids = { tindex: z.number().int().nonnegative(), tlabel: z.number().int().nonnegative() };
const optionalText = (max: number) => z.string().max(max).optional().transform((s) => (s === '' ? undefined : s));
const optionalCount = z.union([z.number(), z.string()]).optional().transform((v, ctx) => {
  if (v === undefined || v === '' || v === -1 || v === '-1') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 1e9) {
    ctx.addIssue({ code: 'custom', message: 'a whole number' });
    return z.NEVER;
  }
  return n;
});
const admitParams = z.object({
  ...ids, call_id: text(255).min(1), from_tag: text(128).min(1), from: text(1024).min(1), ruri: text(1024).min(1), source_ip: text(64).default(''),
  diverter: optionalText(255), account: optionalText(255), max_calls: optionalCount, max_duration: optionalCount, pcc: optionalText(1024),
}).strip();
const startParams = z.object({ call_id: text(255).min(1), h_entry: z.coerce.number().int().nonnegative(), h_id: z.coerce.number().int().nonnegative(), to_tag: optionalText(128) }).strip();
const endParams = z.object({ call_id: text(255).min(1), by: z.enum(['caller', 'callee', 'timeout', '']).optional() }).strip();
const failedParams = z.object({ call_id: text(255).min(1), code: z.coerce.number().int().min(0).max(699).optional() }).strip();

/** Accounts for the live view: those with calls first, at most VIEW_ACCOUNTS of them. */
const VIEW_ACCOUNTS = 200;
function accountsView(engine: CcEngine, now: number): unknown[] {
  const accounts = engine.listAccounts().map((a) => ({ a, calls: engine.callsOf(a.id) }));
  accounts.sort((x, y) => y.calls.length - x.calls.length || x.a.id.localeCompare(y.a.id));
  return accounts.slice(0, VIEW_ACCOUNTS).map(({ a, calls }) => ({
    account: a.id, balance: a.balance, prepaid: a.prepaid, max_calls: a.maxCalls ?? null, max_duration: a.maxDuration ?? null,
    reserved: engine.reserved(a.id),
    calls: calls.map((c) => ({
      ...engine.viewCall(c, now), ends_at: c.connectedAt !== undefined && c.limit !== undefined ? c.connectedAt + c.limit : null,
    })),
  }));
}

export function ccModule(deps: ModuleDeps): ServiceModule & { readonly engine: CcEngine; readonly store: CcStore; readonly committer: Committer; readonly socket: CallControlSocketServer | undefined } {
  const { config, db, clock } = deps;
  const log = deps.log.child({ component: 'cc' });
  const engine = new CcEngine(config);
  const store = new CcStore(db);
  const committer = new Committer(db, deps.log.child({ component: 'store', engine: 'cc' }));
  const metrics = new CcMetrics(deps.registry, engine, committer);
  const dialogs = new DialogRpc({ address: config.cc_jsonrpc_address, log });
  const cdrLog = new CdrLog({
    file: config.cc_cdr_file, syslog: config.cc_cdr_syslog, syslogSocket: config.cc_cdr_syslog_socket, syslogTag: config.cc_cdr_syslog_tag,
    fields: config.cc_cdr_fields, log,
  });
  const runner: EffectsRunner<CcWrite> = new EffectsRunner<CcWrite>({
    // The CDR lines are written once their rows are committed.
    commit: async (writes) => {
      await committer.commit(store.changes(writes));
      cdrLog.write(writes.flatMap((w) => (w.kind === 'cdr' ? [w.cdr] : [])));
    },
    sendNotifies: () => undefined,
    run: (commands) => { for (const c of commands) void carryOut(c); },
    timerFired: (key) => {
      void runner.run(engine.timerFired(key, clock()));
      deps.changed();
    },
  }, clock);

  /** Ends a call through Kamailio's dialog RPCs; a call Kamailio no longer has is logged, no more. */
  async function carryOut(c: KamailioCommand): Promise<void> {
    const outcome = c.kind === 'end-dialog'
      ? await dialogs.endAnswered(c.callId, c.hEntry, c.hId)
      : await dialogs.endCall(c.callId, c.fromTag, { code: c.code, reason: c.reason, toTag: `cc${randomBytes(6).toString('hex')}` });
    const level = outcome === 'failed' ? 'error' : outcome === 'not-found' ? 'warn' : 'info';
    log[level]({ callId: c.callId, command: c.kind, outcome }, `ending the call through Kamailio: ${outcome}`);
  }

  const logDecision = (req: AdmitRequest, d: Decision, door: 'socket' | 'link'): void => {
    const level = d.result === 'admitted' || d.result === 'untracked' ? 'info' : 'warn';
    log[level]({ account: d.account, callId: req.callId, door, result: d.result, limit: d.limit, detail: d.detail || undefined }, `call ${d.result}`);
  };

  // ---- the socket door -------------------------------------------------------------------------

  async function onSocket(req: CallControlRequest): Promise<string> {
    const t0 = performance.now();
    const bad = (issues: string): string => {
      log.warn({ command: req.command, issues }, 'call_control request rejected');
      return 'Error';
    };
    switch (req.command) {
      case 'init': {
        const f = initFields.safeParse(req.fields);
        if (!f.success) return bad(f.error.message);
        const r: AdmitRequest = {
          callId: f.data.callid, fromTag: f.data.fromtag, from: f.data.from, ruri: f.data.ruri, diverter: f.data.diverter,
          sourceIp: f.data.sourceip, door: 'socket', maxCalls: f.data.call_limit,
        };
        const out = engine.admit(r, clock());
        await runner.run(out);
        logDecision(r, out.decision, 'socket');
        metrics.decided('socket', (performance.now() - t0) / 1000);
        deps.changed();
        return SOCKET_REPLY[out.decision.result];
      }
      case 'start': {
        const f = startFields.safeParse(req.fields);
        const dialog = f.success ? parseDialogId(f.data.dialogid) : undefined;
        if (!f.success || !dialog) return bad(f.success ? `dialogid ${f.data.dialogid}` : f.error.message);
        const out = engine.answered({ callId: f.data.callid, ...dialog }, clock());
        // Not waited for: Kamailio's reply to start acknowledges nothing a restart could lose (the
        // reconcile finds the answered dialog and its start time at Kamailio).
        void runner.run(out);
        deps.changed();
        return out.found ? 'Ok' : 'Not found';
      }
      case 'stop': {
        const f = stopFields.safeParse(req.fields);
        if (!f.success) return bad(f.error.message);
        const out = engine.ended({ callId: f.data.callid, cause: 'normal' }, clock());
        await runner.run(out);
        deps.changed();
        return out.found ? 'Ok' : 'Not found';
      }
      case 'terminate': {
        const f = stopFields.safeParse(req.fields);
        if (!f.success) return bad(f.error.message);
        const out = engine.endCall(f.data.callid, clock());
        if (!out.ok) return 'Not found';
        await runner.run(out);
        return 'Ok';
      }
      default:
        return bad(`unknown command ${req.command.slice(0, 40)}`);
    }
  }

  let socketError: string | undefined;
  const socket = config.call_control_socket === '' ? undefined : new CallControlSocketServer({
    path: config.call_control_socket, mode: config.call_control_socket_mode, group: config.call_control_socket_group,
    handle: onSocket, log: deps.log.child({ component: 'cc-socket' }), idleFirstRequestMs: 250,
  });

  // ---- the link door ---------------------------------------------------------------------------

  const refusals: Partial<Record<AdmissionResult, string>> = {
    blacklisted: config.cc_reply_blacklisted, limit: config.cc_reply_limit, 'no-credit': config.cc_reply_no_credit, 'no-rate': config.cc_reply_no_rate,
    'bad-request': '400 Bad Call-Control Request',
  };

  const admit: LinkMethod<z.infer<typeof admitParams>> = {
    params: admitParams,
    handle(p) {
      const t0 = performance.now();
      const pcc = parsePCallControl(p.pcc);
      const header = 'error' in pcc ? undefined : pcc;
      const r: AdmitRequest = {
        callId: p.call_id, fromTag: p.from_tag, from: p.from, ruri: p.ruri, diverter: p.diverter, sourceIp: p.source_ip, door: 'link',
        account: p.account ?? header?.account, maxCalls: p.max_calls ?? header?.maxCalls, maxDuration: p.max_duration ?? header?.maxDuration,
      };
      if ('error' in pcc) log.warn({ callId: p.call_id, err: pcc.error }, 'P-Call-Control ignored');
      const out = engine.admit(r, clock());
      logDecision(r, out.decision, 'link');
      metrics.decided('link', (performance.now() - t0) / 1000);
      const refusal = refusals[out.decision.result];
      const answer = refusal
        ? resume(p, { ...replyOf(refusal), headers: [] }, undefined)
        : resume(p, undefined, { removeHeaders: ['P-Call-Control'], appendHeaders: [], ruri: undefined, flags: out.decision.result === 'admitted' ? ['cc_counted'] : [] });
      return { answer: { ...answer, limit: out.decision.limit ?? -1, account: out.decision.account ?? '' }, effects: out };
    },
    // Unreadable: the call goes on uncounted, as when the service is away.
    fallback(raw) {
      const p = raw as { tindex?: unknown; tlabel?: unknown } | null;
      return p && Number.isInteger(p.tindex) && Number.isInteger(p.tlabel) ? { ...resume({ tindex: p.tindex as number, tlabel: p.tlabel as number }, undefined, undefined) } : undefined;
    },
  };

  const start: LinkMethod<z.infer<typeof startParams>> = {
    params: startParams,
    handle: (p) => ({ answer: {}, effects: engine.answered({ callId: p.call_id, hEntry: p.h_entry, hId: p.h_id, toTag: p.to_tag }, clock()) }),
  };
  const end: LinkMethod<z.infer<typeof endParams>> = {
    params: endParams,
    handle(p) {
      const cause: EndCause = p.by === 'caller' ? 'caller' : p.by === 'callee' ? 'callee' : 'normal';
      return { answer: {}, effects: engine.ended({ callId: p.call_id, cause }, clock()) };
    },
  };
  const failed: LinkMethod<z.infer<typeof failedParams>> = {
    params: failedParams,
    handle: (p) => ({ answer: {}, effects: engine.ended({ callId: p.call_id, cause: 'failed', code: p.code }, clock()) }),
  };
  const methods: LinkMethods = { 'cc.admit': admit, 'cc.start': start, 'cc.end': end, 'cc.failed': failed };

  /** After a restart: each stored call is asked for at Kamailio; gone ones end, answered ones run. */
  async function reconcile(): Promise<void> {
    const calls = engine.callsOf();
    if (calls.length === 0) return;
    let kept = 0;
    let ended = 0;
    let unknown = 0;
    for (const c of calls) {
      const d = await dialogs.findDialog(c.callId, c.fromTag);
      if (d === 'failed') { unknown++; continue; }
      const live = d !== undefined && d.state < DlgState.deleted;
      const out = engine.reconcile(c.callId, live ? { state: d.state >= DlgState.confirmedNoAck ? 'answered' : 'ringing', startTs: d.startTs, hEntry: d.hEntry, hId: d.hId } : undefined, clock());
      await runner.run(out);
      if (out.outcome === 'ended') ended++;
      else kept++;
    }
    log.info({ calls: calls.length, kept, ended, unknown }, 'calls reconciled with Kamailio');
    deps.changed();
  }

  return {
    name: 'cc',
    engine,
    store,
    committer,
    socket,
    link: { methods, apply: (effects, answer) => runner.run(effects as never, answer) },
    rpc: { table: CC_METHODS, engine: { engine, store }, apply: (effects) => runner.run(effects as never) },
    // At most VIEW_ACCOUNTS accounts: sent whole after every change.
    view: { all: (now) => ({ accounts: accountsView(engine, now) }), changes: (now) => ({ accounts: accountsView(engine, now) }), forget: () => undefined },
    status: () => ({
      ready: socketError === undefined, degraded: committer.degraded,
      detail: { pending_rows: committer.pending, socket: socket ? config.call_control_socket : 'off', socket_error: socketError, connections: socket?.connections ?? 0 },
    }),

    async start() {
      await store.migrate();
      const { snapshot, skipped } = await store.load();
      if (skipped > 0) log.warn({ skipped }, 'bad rows skipped while restoring');
      await runner.run(engine.restore(snapshot));
      log.info({ accounts: snapshot.accounts.length, rates: snapshot.rates.length, calls: snapshot.calls.length }, 'call control restored');
      // A socket that cannot be opened leaves the rest of the service working; /readyz says why.
      await socket?.listen().then(() => { socketError = undefined; }, (err: unknown) => {
        socketError = (err as Error).message;
        log.error({ socket: config.call_control_socket, err: socketError }, 'CALL CONTROL SOCKET NOT OPEN: Kamailio\'s call_control module cannot reach the service');
      });
      void reconcile().catch((err: unknown) => log.error({ err: String(err) }, 'reconcile failed'));
    },

    async stop() {
      await socket?.close();
      runner.stop();
      dialogs.close();
      await cdrLog.close();
      const left = await committer.drain(5000);
      committer.stop();
      if (left > 0) log.error({ rows: left }, 'STORE: rows not written at shutdown (the database did not take them)');
      return left;
    },
  };
}
