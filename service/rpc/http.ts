import type { FastifyInstance } from 'fastify';
import { JSONRPCErrorException, JSONRPCServer } from 'json-rpc-2.0';
import type { Effects } from '../effects.js';
import type { Access } from './access.js';
import { callMethod, type RpcTable } from './methods.js';

/** One engine's commands: its table, the engine they run on, and how its effects are carried out. */
export interface RpcModule<E> {
  readonly table: RpcTable<E>;
  readonly engine: E;
  readonly apply: (effects: Effects<unknown>) => Promise<void>;
}

/** POST /rpc: JSON-RPC 2.0 with every module's commands; changes are logged with who and what. */
export function registerRpc(http: FastifyInstance, deps: {
  clock: () => number; access: Access; modules: ReadonlyArray<RpcModule<any>>; changed: () => void;
  /** A fault for a command this node must not run now (an HA standby), or undefined. */
  refuse?: (method: string) => { code: number; message: string } | undefined;
}): void {
  const server = new JSONRPCServer<{ who: string }>({ errorListener: () => undefined });
  for (const module of deps.modules) {
    for (const [name, method] of Object.entries(module.table)) {
      server.addMethod(name, async (params, { who }) => {
        const refused = deps.refuse?.(name);
        if (refused) throw new JSONRPCErrorException(refused.message, refused.code);
        const out = await callMethod(module.table, name, params, { engine: module.engine, now: deps.clock(), who });
        if (method.mutates) http.log.info({ who, method: name, params, ok: out.ok }, 'rpc mutation');
        if (!out.ok) throw new JSONRPCErrorException(out.message, out.code, out.data);
        if (out.effects) {
          await module.apply(out.effects);
          deps.changed();
        }
        return out.result as never;
      });
    }
  }
  http.post('/rpc', async (req, reply) => {
    const who = deps.access.check(req.ip, req.headers.authorization);
    if (who === undefined) {
      http.log.warn({ ip: req.ip }, 'rpc refused: no valid token');
      return reply.code(401).send({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'unauthorized: send Authorization: Bearer <admin_token>' } });
    }
    if (req.body === null || typeof req.body !== 'object') {
      return reply.code(400).send({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: the body must be a JSON-RPC object or batch' } });
    }
    const response = await server.receive(req.body as never, { who });
    if (response === null) return reply.code(204).send();
    return reply.send(response);
  });
}
