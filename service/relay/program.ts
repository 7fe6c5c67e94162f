import { CallControlSocketServer } from '../kamailio/call-control-socket.js';
import { malformedSocketReply } from '../modules/cc-socket-door.js';
import type { RelayConfig } from './config.js';
import { CcRelay, type RelayLog } from './relay.js';

/** At a stop, a leader gets this long (ms) to take what the outbox holds. */
const DRAIN_MS = 2000;

export interface RunningRelay {
  readonly relay: CcRelay;
  readonly socket: CallControlSocketServer;
  stop(): Promise<void>;
}

/**
 * sca-cc-relay, assembled: the unix socket call_control.so talks to (the service's own framer
 * and server, call-control-socket.ts) in front of the relay to the leading node. Rejects when the
 * socket cannot be opened.
 */
export async function startRelay(config: RelayConfig, log: RelayLog): Promise<RunningRelay> {
  const s = (x: number): number => Math.round(x * 1000);
  const relay = new CcRelay({
    nodes: config.nodes, token: config.token, proxy: config.proxy_id, replyTimeoutMs: s(config.reply_timeout), retryMs: s(config.retry_interval),
    pingMs: s(config.ping_interval), deadMs: s(config.dead_after), connectTimeoutMs: s(config.connect_timeout),
    queueMax: config.queue_max, queueMaxBytes: config.queue_max_bytes, window: config.window, log,
  });
  const socket = new CallControlSocketServer({
    path: config.socket, mode: config.socket_mode, group: config.socket_group, handle: relay.handle, log,
    // As the service's own socket: call_control.so's workers share the connection made before the
    // fork until it is closed; an init that cannot be read is refused, not forwarded.
    idleFirstRequestMs: 250, malformedReply: malformedSocketReply,
    onClientClosed: () => relay.clientClosed(),
  });
  relay.start();
  try {
    await socket.listen();
  } catch (err) {
    relay.stop();
    throw err;
  }
  log.info({ socket: config.socket, nodes: config.nodes, proxy: config.proxy_id, reply_timeout_s: config.reply_timeout }, 'sca-cc-relay started');
  return {
    relay, socket,
    async stop() {
      await socket.close();
      await relay.drain(DRAIN_MS);
      relay.stop();
    },
  };
}
