import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Access } from '../rpc/access.js';

const PAGE = readFileSync(new URL('./live-view.html', import.meta.url), 'utf8');
const PUSH_DELAY_MS = 100; // coalesces bursts (a call moves several times within milliseconds)

/**
 * The live view: GET / serves the page, /ws pushes a snapshot (every module's part of it, merged)
 * on connect and after each change. Admin actions on the page go through POST /rpc with the token.
 */
export function registerLiveView(http: FastifyInstance, deps: { snapshot: (now: number) => Record<string, unknown>; clock: () => number; access: Access }): { changed: () => void; close: () => void } {
  const wss = new WebSocketServer({ noServer: true });
  let timer: NodeJS.Timeout | undefined;

  http.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));

  const current = (): string => JSON.stringify({ at: deps.clock(), ...deps.snapshot(deps.clock()) });
  http.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') {
      socket.destroy();
      return;
    }
    const who = deps.access.check(req.socket.remoteAddress ?? '', req.headers.authorization, url.searchParams.get('token'));
    if (who === undefined) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => ws.send(current()));
  });

  return {
    changed() {
      if (timer || wss.clients.size === 0) return;
      timer = setTimeout(() => {
        timer = undefined;
        const data = current();
        for (const c of wss.clients) c.send(data);
      }, PUSH_DELAY_MS);
    },
    close() {
      if (timer) clearTimeout(timer);
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
