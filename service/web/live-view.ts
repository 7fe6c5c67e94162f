import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
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
 * The live view: GET / serves the page, /ws pushes a snapshot (every module's part of it, merged)
 * on connect and after each change. With an admin token the page sends it as its first message
 * ({"token": ...}); nothing is pushed before. Admin actions on the page go through POST /rpc with
 * the token. A socket from another site's page (its Origin is not this host) is refused.
 */
export function registerLiveView(http: FastifyInstance, deps: { snapshot: (now: number) => Record<string, unknown>; clock: () => number; access: Access }): { changed: () => void; close: () => void } {
  // The page sends nothing but its token: anything larger is not the page.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const live = new Set<WebSocket>();
  let timer: NodeJS.Timeout | undefined;

  http.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));

  const current = (): string => JSON.stringify({ at: deps.clock(), ...deps.snapshot(deps.clock()) });
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
        live.add(ws);
        ws.send(current());
        ws.on('close', () => live.delete(ws));
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
        live.add(ws);
        ws.on('close', () => live.delete(ws));
        ws.send(current());
      });
    });
  });

  return {
    changed() {
      if (timer || live.size === 0) return;
      timer = setTimeout(() => {
        timer = undefined;
        const data = current();
        for (const c of live) c.send(data);
      }, PUSH_DELAY_MS);
    },
    close() {
      if (timer) clearTimeout(timer);
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
