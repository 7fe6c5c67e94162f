import type { z } from 'zod';
import type { Effects } from '../effects.js';

/**
 * An RPC command table entry (the sca.* and cc.* commands). Params come positional (as kamcmd
 * sends them) or by name; a usage fault is JSON-RPC "invalid params" (-32602). A command that
 * changes state returns its effects, which the service carries out before answering.
 */
export interface RpcContext<E> {
  readonly engine: E;
  readonly now: number;
  /** Who called (address, and whether with the token), for the logs and the records. */
  readonly who?: string;
}

export type RpcOutcome = { ok: true; result: unknown; effects?: Effects<unknown> } | { ok: false; code: number; message: string };

export interface RpcMethod<E> {
  readonly params: readonly string[];
  readonly schema: z.ZodType;
  readonly usage: string;
  readonly mutates: boolean;
  readonly run: (ctx: RpcContext<E>, args: Record<string, unknown>) => RpcOutcome | Promise<RpcOutcome>;
}

export type RpcTable<E> = Readonly<Record<string, RpcMethod<E>>>;

/** Positional params (kamcmd style) become named ones; extra positional params are an error. */
export function namedParams(method: Pick<RpcMethod<unknown>, 'params'>, params: unknown): Record<string, unknown> | undefined {
  if (params === undefined || params === null) return {};
  if (Array.isArray(params)) {
    if (params.length > method.params.length) return undefined;
    return Object.fromEntries(params.map((v, i) => [method.params[i]!, v]));
  }
  return typeof params === 'object' ? (params as Record<string, unknown>) : undefined;
}

export function callMethod<E>(table: RpcTable<E>, name: string, params: unknown, ctx: RpcContext<E>): RpcOutcome | Promise<RpcOutcome> {
  const method = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!method) return { ok: false, code: -32601, message: `Method not found: ${name}` };
  const named = namedParams(method, params);
  const parsed = named === undefined ? undefined : method.schema.safeParse(named);
  if (!parsed || !parsed.success) return { ok: false, code: -32602, message: method.usage };
  return method.run(ctx, parsed.data as Record<string, unknown>);
}
