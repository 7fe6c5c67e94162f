import type { Effects } from '../effects.js';
import { parseParams, type ParamSpec } from './params.js';

/**
 * An RPC command table entry (the sca.* and cc.* commands). Params come positional (as kamcmd
 * sends them) or by name, and are checked against the entry's list (service/rpc/params.ts); a bad
 * one is the caller's fault: JSON-RPC "invalid params" (-32602) naming the param and why, then
 * the usage. A command that changes state returns its effects, which the service carries out
 * before answering. The same table makes `sca-ctl --help` and docs/commands.md
 * (scripts/commands-doc.ts).
 */
export interface RpcContext<E> {
  readonly engine: E;
  readonly now: number;
  /** Who called (address, and whether with the token), for the logs and the records. */
  readonly who?: string;
}

export type RpcOutcome =
  | { ok: true; result: unknown; effects?: Effects<unknown> }
  | { ok: false; code: number; message: string; data?: unknown };

/** The fields of a result (an object, or each row of a list), each with what it means. */
export type ResultFields = Readonly<Record<string, string>>;

export interface RpcResultDoc {
  /** An object, a list of rows, or nothing worth reading. */
  readonly kind: 'object' | 'rows';
  readonly doc: string;
  readonly fields: ResultFields;
  /** Lists of rows inside the object (name → the rows' fields). */
  readonly nested?: Readonly<Record<string, ResultFields>>;
}

export interface RpcMethod<E> {
  /** One line: what the command does. */
  readonly summary: string;
  /** More, when one line is not enough. */
  readonly description?: string;
  readonly params: readonly ParamSpec[];
  readonly usage: string;
  readonly mutates: boolean;
  readonly result: RpcResultDoc;
  /** Faults the command itself answers (beyond -32602 for bad params). */
  readonly errors: ReadonlyArray<{ readonly code: number; readonly when: string }>;
  /** Positional params of an example the docs run against a sample state, and of a mistake. */
  readonly example: { readonly params: readonly unknown[]; readonly mistake?: readonly unknown[] };
  readonly run: (ctx: RpcContext<E>, args: Record<string, unknown>) => RpcOutcome | Promise<RpcOutcome>;
}

export type RpcTable<E> = Readonly<Record<string, RpcMethod<E>>>;

/** JSON-RPC's code for the caller's mistakes in params. */
export const INVALID_PARAMS = -32602;

export function callMethod<E>(table: RpcTable<E>, name: string, params: unknown, ctx: RpcContext<E>): RpcOutcome | Promise<RpcOutcome> {
  const method = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!method) return { ok: false, code: -32601, message: `Method not found: ${name}` };
  const parsed = parseParams(method.params, params);
  if (!parsed.ok) {
    return {
      ok: false, code: INVALID_PARAMS, message: `${parsed.problems.map((p) => p.why).join('; ')}; ${method.usage}`,
      data: { problems: parsed.problems, usage: method.usage },
    };
  }
  return method.run(ctx, parsed.args);
}
