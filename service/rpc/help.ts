import { CC_METHODS } from './cc-methods.js';
import type { RpcMethod } from './methods.js';
import { SCA_METHODS } from './sca-methods.js';

/** Every command the service has: the sca.* and the cc.* tables, as the RPC layer runs them. */
export const ALL_METHODS: Readonly<Record<string, RpcMethod<any>>> = { ...SCA_METHODS, ...CC_METHODS };

/** `name <required> [optional]`: a command's params in their positional order. */
export function synopsis(name: string, m: Pick<RpcMethod<unknown>, 'params'>): string {
  return [name, ...m.params.map((p) => (p.optional ? `[${p.name}]` : `<${p.name}>`))].join(' ');
}

/** What `sca-ctl --help <command>` prints: params (order, type, meaning) and the result's fields. */
export function commandHelp(name: string, m: RpcMethod<any>): string {
  const lines = [synopsis(name, m), `  ${m.summary}`];
  if (m.description) lines.push(`  ${m.description}`);
  if (m.params.length > 0) {
    lines.push('params, in this order (or by name):');
    const w = Math.max(...m.params.map((p) => p.name.length));
    for (const p of m.params) lines.push(`  ${p.name.padEnd(w)}  (${p.type.doc}${p.optional ? '; optional' : ''}) ${p.doc}`);
  }
  lines.push(`result: ${m.result.kind === 'rows' ? 'a list, ' : ''}${m.result.doc}`);
  const w = Math.max(...Object.keys(m.result.fields).map((k) => k.length));
  for (const [k, v] of Object.entries(m.result.fields)) lines.push(`  ${k.padEnd(w)}  ${v}`);
  for (const e of m.errors) lines.push(`error ${e.code}: ${e.when}`);
  lines.push('error -32602 (sca-ctl: error: 500): a bad param, named, then the usage');
  return lines.join('\n');
}
