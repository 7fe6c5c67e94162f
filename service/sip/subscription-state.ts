import { fail, ok, type Result } from './result.js';
import { paramValue, parseParams } from './tokens.js';

export type TerminationReason = 'deactivated' | 'probation' | 'rejected' | 'timeout' | 'giveup' | 'noresource';

export interface SubscriptionStateValue {
  readonly state: 'active' | 'pending' | 'terminated';
  readonly expires: number | undefined;
  readonly reason: TerminationReason | undefined;
}

export function formatSubscriptionState(v: SubscriptionStateValue): string {
  let out = v.state;
  if (v.reason !== undefined) out += `;reason=${v.reason}`;
  if (v.expires !== undefined) out += `;expires=${v.expires}`;
  return out;
}

const REASONS: readonly string[] = ['deactivated', 'probation', 'rejected', 'timeout', 'giveup', 'noresource'];

export function parseSubscriptionState(text: string): Result<SubscriptionStateValue> {
  const semi = text.indexOf(';');
  const state = (semi >= 0 ? text.slice(0, semi) : text).trim().toLowerCase();
  if (state !== 'active' && state !== 'pending' && state !== 'terminated') {
    return fail('Subscription-State', `unknown state "${state}"`);
  }
  const params = parseParams(semi >= 0 ? text.slice(semi) : '');
  if (params === null) return fail('Subscription-State', `bad parameters in "${text}"`);
  const e = paramValue(params, 'expires');
  if (e !== undefined && (e === null || !/^\d+$/.test(e))) return fail('Subscription-State', `bad expires in "${text}"`);
  const r = paramValue(params, 'reason');
  if (r !== undefined && (r === null || !REASONS.includes(r))) return fail('Subscription-State', `bad reason in "${text}"`);
  return ok({ state, expires: e === undefined ? undefined : Number(e), reason: (r ?? undefined) as TerminationReason | undefined });
}
