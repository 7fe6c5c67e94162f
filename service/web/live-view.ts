import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ModuleView } from '../modules/module.js';
import { hostName, type Access } from '../rpc/access.js';

const PAGE = readFileSync(new URL('./live-view.html', import.meta.url), 'utf8');
const PUSH_DELAY_MS = 100; // coalesces bursts (a call moves several times within milliseconds)

const AUTH_TIMEOUT_MS = 5000;

/** The host an Origin header names ("http://127.0.0.1:8090" → "127.0.0.1"). */
function originHost(origin: string): string | undefined {
  try {
    return hostName(new URL(origin).host);
  } catch {
    return undefined;
  }
}

/**
 * The live view: GET / serves the page, /ws pushes everything (every module's part, merged) once
 * on connect ({"type":"all"}), then what changed ({"type":"changes"}, at most every 100 ms): a
 * change costs the size of what changed, not of everything shown. With an admin token the page sends it as its first message
 * ({"token": ...}); nothing is pushed before. Admin actions on the page go through POST /rpc with
 * the token. A socket from another site's page (its Origin is not this host) is refused.
 */
export function registerLiveView(http: FastifyInstance, deps: { views: readonly ModuleView[]; clock: () => number; access: Access }): { changed: () => void; close: () => void } {
  // The page sends nothing but its token: anything larger is not the page.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const live = new Set<WebSocket>();
  let timer: NodeJS.Timeout | undefined;

  http.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));

  const all = (): string => {
    const now = deps.clock();
    return JSON.stringify(Object.assign({ type: 'all', at: now }, ...deps.views.map((v) => v.all(now))));
  };
  const changes = (): string | undefined => {
    const now = deps.clock();
    const parts = deps.views.flatMap((v) => v.changes(now) ?? []);
    return parts.length === 0 ? undefined : JSON.stringify(Object.assign({ type: 'changes', at: now }, ...parts));
  };
  /** A page joins: with none before it, what changed while nobody watched is already in its "all". */
  const join = (ws: WebSocket): void => {
    if (live.size === 0) for (const v of deps.views) v.forget();
    live.add(ws);
    ws.on('close', () => live.delete(ws));
    ws.send(all());
  };
  http.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') {
      socket.destroy();
      return;
    }
    const origin = req.headers.origin;
    if (!deps.access.hostAllowed(req.headers.host) || (origin !== undefined && originHost(origin) !== hostName(req.headers.host ?? ''))) {
      http.log.warn({ ip: req.socket.remoteAddress, origin, host: req.headers.host }, 'live view socket refused: foreign Host or Origin');
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    const ip = req.socket.remoteAddress ?? '';
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('error', () => undefined);
      if (!deps.access.required) {
        join(ws);
        return;
      }
      const timeout = setTimeout(() => ws.close(4401, 'no token'), AUTH_TIMEOUT_MS);
      ws.once('message', (data) => {
        clearTimeout(timeout);
        let token = '';
        try {
          token = String((JSON.parse(String(data)) as { token?: unknown }).token ?? '');
        } catch { /* not JSON: no token */ }
        if (deps.access.checkToken(ip, token) === undefined) {
          http.log.warn({ ip }, 'live view refused: no valid token');
          ws.close(4401, 'unauthorized');
          return;
        }
        join(ws);
      });
    });
  });

  return {
    changed() {
      if (timer || live.size === 0) return;
      timer = setTimeout(() => {
        timer = undefined;
        if (live.size === 0) return;
        const data = changes();
        if (data !== undefined) for (const c of live) c.send(data);
      }, PUSH_DELAY_MS);
    },
    close() {
      if (timer) clearTimeout(timer);
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
