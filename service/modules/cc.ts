import type { AdmitRequest } from '../cc/admission.js';
import { CcEngine } from '../cc/engine.js';
import type { CcWrite, Decision } from '../cc/types.js';
import { EffectsRunner } from '../effects-runner.js';
import { CallControlSocketServer, type CallControlRequest } from '../kamailio/call-control-socket.js';
import { DialogRpc } from '../kamailio/dialog-rpc.js';
import { CcMetrics } from '../metrics/cc.js';
import { CC_METHODS } from '../rpc/cc-methods.js';
import { asStored, CcStore } from '../store/cc-tables.js';
import { CdrFile, CdrSyslog } from '../store/cdr-log.js';
import { Committer } from '../store/committer.js';
import { CcDialogs } from './cc-dialogs.js';
import { linkDoor } from './cc-link-door.js';
import { malformedSocketReply, socketDoor } from './cc-socket-door.js';
import type { ModuleDeps, ServiceModule } from './module.js';

/**
 * Call control as a service module: one engine, two doors (cc-socket-door.ts for Kamailio's stock
 * call_control module, cc-link-door.ts for kamailio/cc-routes.cfg on the link), the calls it ends
 * and reconciles through Kamailio's dialog RPCs (cc-dialogs.ts), its store, CDR log, metrics and
 * live-view part.
 */

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

/** sca-cc-relay's requests, for the relay listener: answered by the socket door for the relay's proxy. */
export interface CcRelayDoor {
  /** `heldMs`: how long the relay kept a start/stop before it got here. */
  handle(req: CallControlRequest, proxy: string, heldMs: number): Promise<string>;
  /** A call_control.so connection closed at that proxy: its worker drops start/stop for 10 s. */
  clientClosed(proxy: string): void;
}

export function ccModule(deps: ModuleDeps): ServiceModule & {
  readonly engine: CcEngine; readonly store: CcStore; readonly committer: Committer; readonly socket: CallControlSocketServer | undefined; readonly relayDoor: CcRelayDoor;
} {
  const { config, db, clock } = deps;
  const log = deps.log.child({ component: 'cc' });
  const engine = new CcEngine(config);
  const committer = new Committer(db, deps.log.child({ component: 'store', engine: 'cc' }), deps.committerOptions);
  const store = new CcStore(db, () => committer.settled(2000));
  // Kamailio's dialog RPCs: over jsonrpcs' datagram socket (cc_jsonrpc_address) for calls of the
  // socket door, over the link to the proxy that admitted it (link.rpc) for calls of the link door.
  const dialogs = new DialogRpc({ address: config.cc_jsonrpc_address, log });
  const viaLink = new Map<string, DialogRpc>();
  const dialogsAt = (proxy: string | undefined): DialogRpc => {
    if (proxy === undefined) return dialogs;
    let d = viaLink.get(proxy);
    if (!d) viaLink.set(proxy, (d = new DialogRpc({ address: config.cc_jsonrpc_address, log, via: (m, p, ms) => deps.link.rpc(proxy, m, p, ms) })));
    return d;
  };
  const syslog = config.cc_cdr_syslog
    ? new CdrSyslog({ syslogSocket: config.cc_cdr_syslog_socket, syslogTag: config.cc_cdr_syslog_tag, fields: config.cc_cdr_fields, log })
    : undefined;
  // The CDR file follows the CDR table (a cursor in the store): a write that fails is retried and
  // the file catches up, no line lost or repeated.
  const cdrFile = config.cc_cdr_file === '' ? undefined : new CdrFile({
    file: config.cc_cdr_file, fields: config.cc_cdr_fields, log,
    source: store.cdrSource((changes) => void committer.commit(changes)),
    storeLag: () => (committer.pending > 0 ? committer.settled(10_000) : undefined),
  });
  const runner: EffectsRunner<CcWrite> = new EffectsRunner<CcWrite>({
    // The CDR lines are written once their rows are committed.
    commit: async (writes, within) => {
      await committer.commit(store.changes(writes), within);
      const cdrs = writes.flatMap((w) => (w.kind === 'cdr' ? [w.cdr] : []));
      if (cdrs.length > 0) {
        syslog?.write(cdrs.map(asStored));
        cdrFile?.kick();
      }
      metrics.billed(cdrs);
    },
    sendNotifies: () => undefined,
    run: (commands) => { for (const c of commands) void kamailio.carryOut(c).catch((err: unknown) => log.error({ callId: c.callId, err: String(err) }, 'carrying out a call-control command failed')); },
    timerFired: (key) => {
      void runner.run(engine.timerFired(key, clock()));
      deps.changed();
    },
  }, clock);
  const run = (effects: Parameters<typeof runner.run>[0]): Promise<void> => runner.run(effects);
  /** What Kamailio waits for (socket replies, link answers) goes after db_write_timeout even without its commit. */
  const answerWithin = config.db_write_timeout * 1000;
  const kamailio = new CcDialogs({ engine, dialogs: dialogsAt, run, clock, log, changed: deps.changed });
  const metrics = new CcMetrics(deps.registry, engine, committer, kamailio, clock, cdrFile);

  const decided = (req: Pick<AdmitRequest, 'callId'>, d: Decision, startedAt: number, door: 'socket' | 'link'): void => {
    const level = d.result === 'admitted' || d.result === 'untracked' ? 'info' : 'warn';
    log[level]({ account: d.account, callId: req.callId, door, result: d.result, limit: d.limit, detail: d.detail || undefined }, `call ${d.result}`);
    metrics.decided(door, (performance.now() - startedAt) / 1000);
  };

  // The socket door is what Kamailio asks, and it is off: call_control() fails, every call goes on
  // uncounted (one WARN per call in kamailio.log). Said at start and in /readyz.
  const doorOff = config.cc_door === 'socket' && config.call_control_socket === '' && config.cc_relay_listen === ''
    ? 'call_control_socket is empty while cc_door is socket: Kamailio\'s call_control module cannot reach the service and every call goes on uncounted (set call_control_socket to its socket_name, or cc_door=link for cc-routes.cfg, or cc_door=none)'
    : undefined;
  let socketError: string | undefined;
  let socketClients = 0;
  // One socket door for call_control.so: on this host's unix socket, and through sca-cc-relay
  // from other proxy hosts (the relay names its proxy; app.ts runs its listener).
  const door = socketDoor({ engine, run: (e) => runner.run(e, undefined, answerWithin), clock, log, changed: deps.changed, decided: (r, d, t0) => decided(r, d, t0, 'socket') });
  const socket = config.call_control_socket === '' ? undefined : new CallControlSocketServer({
    path: config.call_control_socket, mode: config.call_control_socket_mode, group: config.call_control_socket_group,
    handle: (req) => door(req),
    log: deps.log.child({ component: 'cc-socket' }), idleFirstRequestMs: 250,
    // An init that cannot be read is a call that cannot be accounted for: refused.
    malformedReply: malformedSocketReply,
    // Kamailio (re)started: its workers connect. What it holds is checked against what is counted.
    onClients: (n) => {
      if (socketClients === 0 && n > 0) kamailio.kamailioBack();
      socketClients = n;
    },
    onClientClosed: () => kamailio.suspectLoss(clock(), true),
  });
  // The link goes down when Kamailio stops or restarts: calls may end unseen from then on (the
  // pass comes when it is back).
  deps.link.onDown(() => kamailio.suspectLoss(clock(), false));
  // While calls are counted, the store knows every second that the service is alive: after a
  // crash, calls that ended meanwhile are billed up to then.
  let alive: NodeJS.Timeout | undefined;
  const methods = linkDoor({ config, engine, clock, log, decided: (r, d, t0) => decided(r, d, t0, 'link') });

  return {
    name: 'cc',
    engine,
    store,
    committer,
    socket,
    relayDoor: { handle: (req, proxy, heldMs) => door(req, proxy, heldMs), clientClosed: () => kamailio.suspectLoss(clock(), true) },
    link: { methods, apply: (effects, answer) => runner.run(effects as never, answer, answerWithin) },
    linkUp: () => kamailio.kamailioBack(),
    rpc: { table: CC_METHODS, engine: { engine, store }, apply: (effects) => runner.run(effects as never) },
    // At most VIEW_ACCOUNTS accounts: sent whole after every change.
    view: { all: (now) => ({ accounts: accountsView(engine, now) }), changes: (now) => ({ accounts: accountsView(engine, now) }), forget: () => undefined },
    status: () => ({
      ready: socketError === undefined, degraded: committer.degraded || cdrFile?.error !== undefined,
      detail: {
        door: config.cc_door, ...(doorOff ? { warning: `CALL CONTROL OFF: ${doorOff}` } : {}),
        pending_rows: committer.pending, socket: socket ? config.call_control_socket : 'off', socket_error: socketError, connections: socket?.connections ?? 0,
        calls_overrunning: engine.overrunning(clock()),
        ...(cdrFile ? { cdr_file: { file: cdrFile.path, lines_behind: cdrFile.behind, error: cdrFile.error } } : {}),
      },
    }),

    async start() {
      await store.migrate();
      const { snapshot, skipped } = await store.load();
      if (skipped > 0) log.warn({ skipped }, 'bad rows skipped while restoring');
      // The CDR file takes its cursor before any call can end, and catches up with CDRs committed
      // while it could not be written (or the service was down).
      await cdrFile?.start();
      await runner.run(engine.restore(snapshot));
      log.info({ accounts: snapshot.accounts.length, rates: snapshot.rates.length, calls: snapshot.calls.length }, 'call control restored');
      if (doorOff) log.warn({ door: config.cc_door, call_control_socket: '' }, `CALL CONTROL OFF: ${doorOff}`);
      // A socket that cannot be opened leaves the rest of the service working; /readyz says why.
      await socket?.listen().then(() => { socketError = undefined; }, (err: unknown) => {
        socketError = (err as Error).message;
        log.error({ socket: config.call_control_socket, err: socketError }, 'CALL CONTROL SOCKET NOT OPEN: Kamailio\'s call_control module cannot reach the service');
      });
      // Calls that ended while the service was away are found at Kamailio; then every minute.
      const aliveAt = await store.aliveAt();
      if (aliveAt !== undefined && snapshot.calls.length > 0) kamailio.suspectLoss(aliveAt, false);
      void kamailio.reconcile(0);
      kamailio.start();
      alive = setInterval(() => {
        if (engine.countCalls() > 0) void committer.commit([store.aliveChange(clock())]);
      }, 1000);
      alive.unref();
    },

    async stop() {
      clearInterval(alive);
      kamailio.stop();
      await socket?.close();
      runner.stop();
      dialogs.close();
      for (const d of viaLink.values()) d.close();
      syslog?.close();
      const left = await committer.drain(5000);
      // The lines of the rows just written, and the file's cursor after them.
      await cdrFile?.close();
      await committer.drain(1000);
      committer.stop();
      if (left > 0) log.error({ rows: left }, 'STORE: rows not written at shutdown (the database did not take them)');
      return left;
    },
  };
}
