import { JSONRPCErrorCode, JSONRPCErrorException, JSONRPCServer, type JSONRPCRequest } from 'json-rpc-2.0';
import type { ScaEngine } from '../sca/engine.js';
import type { SubscribeOutcome } from '../sca/subscribe.js';
import type { Notify } from '../sca/types.js';
import { EvapiClient, type EvapiLogger } from './evapi-client.js';
import {
  callEventParams, inviteParams, inviteResult, notifyReplyParams, renderNotify, subscribeParams, subscribeResult,
} from './messages.js';

export interface BridgeLogger extends EvapiLogger {
  debug(obj: object, msg: string): void;
}

/** What the bridge reports to metrics and the live view. */
export interface BridgeObserver {
  subscribed(out: SubscribeOutcome): void;
  notifySent(count: number): void;
  /** A final reply to a NOTIFY; seconds since it was handed to Kamailio, if we sent it. */
  notifyAnswered(code: number, seconds: number | undefined): void;
  /** NOTIFYs without any final reply after NOTIFY_TIMEOUT_MS (tm gave up on them). */
  notifyTimedOut(count: number): void;
  /** Engine state may have changed. */
  changed(): void;
}

const NOTIFY_TIMEOUT_MS = 40_000; // longer than tm's 32 s transaction timeout
const MAX_IN_FLIGHT = 200_000;

const notifyKey = (callId: string, fromTag: string, cseq: number): string => `${callId}\u0000${fromTag}\u0000${cseq}`;
const headerOf = (n: Notify, name: string): string => n.headers.find(([k]) => k === name)?.[1] ?? '';
const keyOfNotify = (n: Notify): string =>
  notifyKey(headerOf(n, 'Call-ID'), /;tag=([^;]+)/.exec(headerOf(n, 'From'))?.[1] ?? '', Number.parseInt(headerOf(n, 'CSeq'), 10));

/** What a message from Kamailio was about, for the log line. */
const callIdOf = (msg: string): string | undefined => /^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)/im.exec(msg)?.[1];

type Origin = { client: EvapiClient };

/**
 * The Kamailio side of the service: evapi connections (one per configured Kamailio), JSON-RPC
 * dispatch onto the engine, answers on the connection a request came from, and the NOTIFYs the
 * service starts itself sent through the first connected Kamailio.
 */
export class KamailioBridge {
  private readonly clients: EvapiClient[];
  private readonly rpc = new JSONRPCServer<Origin>({ errorListener: () => undefined });
  /** Counters for metrics and tests. */
  readonly counters = { received: 0, bad: 0, notifiesSent: 0, notifiesDropped: 0 };
  /** NOTIFYs handed to Kamailio and not yet answered: key → performance.now() at sending. */
  private readonly inFlight = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly engine: ScaEngine,
    addresses: readonly string[],
    private readonly clock: () => number,
    private readonly log: BridgeLogger,
    private readonly observer: BridgeObserver | undefined = undefined,
    /** Resolves once the engine's changes are stored: nothing is answered before. */
    private readonly commit: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.clients = addresses.map((a) => {
      const [host = '127.0.0.1', port = '8448'] = a.split(/:(?=\d+$)/);
      const client = new EvapiClient(host, Number(port), log);
      client.on('message', (payload: string) => this.receive(client, payload));
      // Kamailio replays the call events it queued while no service was connected.
      client.on('up', () => client.send(JSON.stringify({ jsonrpc: '2.0', method: 'sca.hello', params: {} })));
      return client;
    });
    this.registerMethods();
  }

  start(): void {
    for (const c of this.clients) c.start();
    this.sweepTimer = setInterval(() => this.sweepInFlight(), 5000);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const c of this.clients) c.stop();
  }

  /** Remembers NOTIFYs handed to Kamailio, to time their replies. */
  private sent(notifies: readonly Notify[]): void {
    if (notifies.length === 0) return;
    const at = performance.now();
    for (const n of notifies) {
      if (this.inFlight.size >= MAX_IN_FLIGHT) this.inFlight.delete(this.inFlight.keys().next().value!);
      this.inFlight.set(keyOfNotify(n), at);
    }
    this.observer?.notifySent(notifies.length);
  }

  private sweepInFlight(): void {
    const limit = performance.now() - NOTIFY_TIMEOUT_MS;
    let expired = 0;
    for (const [key, at] of this.inFlight) {
      if (at > limit) break; // insertion order is sending order
      this.inFlight.delete(key);
      expired++;
    }
    if (expired > 0) this.observer?.notifyTimedOut(expired);
  }

  get connected(): number {
    return this.clients.filter((c) => c.isConnected).length;
  }

  onUp(listener: () => void): void {
    for (const c of this.clients) c.on('up', listener);
  }

  /** Stores what changed, then sends the NOTIFYs the service starts itself (purge, RPC, restore). */
  async commitAndNotify(notifies: readonly Notify[]): Promise<boolean> {
    await this.commit();
    return this.sendNotifies(notifies);
  }

  /** Sends NOTIFYs the service starts itself; the caller has stored the state they show. */
  sendNotifies(notifies: readonly Notify[]): boolean {
    if (notifies.length === 0) return true;
    const client = this.clients.find((c) => c.isConnected);
    const payload = JSON.stringify({ jsonrpc: '2.0', method: 'sca.notify', params: { notifies: notifies.map(renderNotify) } });
    if (!client || !client.send(payload)) {
      this.counters.notifiesDropped += notifies.length;
      this.log.warn({ count: notifies.length, aor: notifies[0]!.aor }, 'no Kamailio connected: NOTIFYs dropped');
      return false;
    }
    this.counters.notifiesSent += notifies.length;
    this.sent(notifies);
    return true;
  }

  private receive(client: EvapiClient, payload: string): void {
    this.counters.received++;
    let request: JSONRPCRequest;
    try {
      request = JSON.parse(payload) as JSONRPCRequest;
    } catch {
      this.counters.bad++;
      this.log.error({ evapi: client.address, payload: payload.slice(0, 200) }, 'evapi message is not JSON');
      client.send(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }));
      return;
    }
    this.rpc.receive(request, { client }).then((response) => {
      this.observer?.changed();
      if (response) {
        if (response.error) {
          this.counters.bad++;
          this.log.error({ evapi: client.address, method: request.method, error: response.error.message }, 'evapi request rejected');
        }
        client.send(JSON.stringify(response));
      }
    }, (err: unknown) => this.log.error({ err: String(err) }, 'evapi dispatch failed'));
  }

  private registerMethods(): void {
    // Counted where the error response goes out (receive), not here.
    const invalid = (method: string, params: unknown, issues: string): never => {
      this.log.error({ method, issues, params: JSON.stringify(params).slice(0, 300) }, 'invalid params from Kamailio');
      throw new JSONRPCErrorException(`invalid params: ${issues}`, JSONRPCErrorCode.InvalidParams);
    };
    // A suspended transaction must always be resumed: bad content still gets a SIP answer when
    // the transaction ids are readable.
    const resumable = (params: unknown): { tindex: number; tlabel: number } | undefined => {
      const p = params as { tindex?: unknown; tlabel?: unknown } | null;
      return p && Number.isInteger(p.tindex) && Number.isInteger(p.tlabel) ? { tindex: p.tindex as number, tlabel: p.tlabel as number } : undefined;
    };

    this.rpc.addMethod('sca.subscribe', async (params) => {
      const p = subscribeParams.safeParse(params);
      if (!p.success) {
        const ids = resumable(params);
        if (!ids) return invalid('sca.subscribe', params, p.error.message);
        this.counters.bad++;
        return subscribeResult(ids.tindex, ids.tlabel, { code: 500, reason: 'Internal Server Error - bad event', headers: [] }, []);
      }
      const out = this.engine.subscribe({ msg: p.data.msg, ruri: p.data.ruri || undefined, to_tag: p.data.to_tag || undefined, now: this.clock() });
      this.log.info({ aor: out.aor, callId: callIdOf(p.data.msg), code: out.reply.code, notifies: out.notifies.length }, `SUBSCRIBE ${out.reply.code} ${out.reply.reason}`);
      this.observer?.subscribed(out);
      await this.commit();
      this.sent(out.notifies);
      return subscribeResult(p.data.tindex, p.data.tlabel, out.reply, out.notifies);
    });

    this.rpc.addMethod('sca.invite', async (params) => {
      const p = inviteParams.safeParse(params);
      if (!p.success) {
        const ids = resumable(params);
        if (!ids) return invalid('sca.invite', params, p.error.message);
        this.counters.bad++;
        return inviteResult(ids.tindex, ids.tlabel, { reply: undefined, edit: { removeCallInfo: false, keepCallInfo: [], appendHeaders: [], ruri: undefined, dropBranches: false }, notifies: [], callerShared: false });
      }
      const out = this.engine.callEvent({ hook: 'request', msg: p.data.msg, now: this.clock() });
      this.log.info({ aor: out.aors[0], callId: callIdOf(p.data.msg), result: out.result, reply: out.reply?.code, pickup: out.edit.ruri !== undefined }, 'INVITE');
      await this.commit();
      this.sent(out.notifies);
      return inviteResult(p.data.tindex, p.data.tlabel, out);
    });

    this.rpc.addMethod('sca.call_event', async (params) => {
      const p = callEventParams.safeParse(params);
      if (!p.success) return invalid('sca.call_event', params, p.error.message);
      const out = this.engine.callEvent({ hook: p.data.hook, msg: p.data.msg, status: p.data.status, now: this.clock() });
      if (out.notifies.length > 0 || out.result === 1) {
        this.log.debug({ aor: out.aors[0], callId: callIdOf(p.data.msg), hook: p.data.hook, status: p.data.status, notifies: out.notifies.length }, 'call event');
      }
      await this.commit();
      this.sent(out.notifies);
      return { notifies: out.notifies.map(renderNotify) };
    });

    this.rpc.addMethod('sca.notify_reply', async (params) => {
      const p = notifyReplyParams.safeParse(params);
      if (!p.success) return invalid('sca.notify_reply', params, p.error.message);
      const key = p.data.cseq === undefined ? undefined : notifyKey(p.data.call_id, p.data.from_tag, p.data.cseq);
      const at = key === undefined ? undefined : this.inFlight.get(key);
      if (key !== undefined) this.inFlight.delete(key);
      this.observer?.notifyAnswered(p.data.code, at === undefined ? undefined : (performance.now() - at) / 1000);
      if (p.data.code < 300) return { notifies: [] };
      const out = this.engine.notifyReply({ call_id: p.data.call_id, from_tag: p.data.from_tag, code: p.data.code, now: this.clock() });
      this.log.warn({ aor: out.aor, callId: p.data.call_id, code: p.data.code, removed: out.removed }, 'NOTIFY rejected');
      await this.commit();
      return { notifies: [] };
    });
  }
}
