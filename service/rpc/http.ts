import type { FastifyInstance } from 'fastify';
import { JSONRPCErrorException, JSONRPCServer } from 'json-rpc-2.0';
import type { ScaEngine } from '../sca/engine.js';
import type { Notify } from '../sca/types.js';
import type { Access } from './access.js';
import { METHODS, callMethod } from './methods.js';

export interface RpcDeps {
  engine: ScaEngine;
  clock: () => number;
  access: Access;
  /** Stores the change, then sends its NOTIFYs. */
  commitAndNotify: (n: readonly Notify[]) => Promise<unknown>;
  changed: () => void;
}

/** POST /rpc: JSON-RPC 2.0 with every sca.* command; mutations are logged with who and what. */
export function registerRpc(http: FastifyInstance, deps: RpcDeps): void {
  const server = new JSONRPCServer<{ who: string }>({ errorListener: () => undefined });
  for (const name of Object.keys(METHODS)) {
    server.addMethod(name, async (params, { who }) => {
      const out = callMethod(name, params, { engine: deps.engine, now: deps.clock() });
      if (METHODS[name]!.mutates) {
        http.log.info({ who, method: name, params, ok: out.ok }, 'rpc mutation');
      }
      if (!out.ok) throw new JSONRPCErrorException(out.message, out.code);
      if (METHODS[name]!.mutates) {
        await deps.commitAndNotify(out.notifies);
        deps.changed();
      }
      return out.result as never;
    });
  }
  http.post('/rpc', async (req, reply) => {
    const who = deps.access.check(req.ip, req.headers.authorization);
    if (who === undefined) {
      http.log.warn({ ip: req.ip }, 'rpc refused: no valid token');
      return reply.code(401).send({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'unauthorized: send Authorization: Bearer <admin_token>' } });
    }
    const response = await server.receive(req.body as never, { who });
    if (response === null) return reply.code(204).send();
    return reply.send(response);
  });
}
