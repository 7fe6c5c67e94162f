import { fail, ok, type Result } from './result.js';
import { formatParams, isQuotedString, paramValue, parseParams, splitTopLevel, unquote, type Params } from './tokens.js';

/** One Call-Info value: <uri> plus its parameters, unknown ones kept in order. */
export interface CallInfoValue {
  readonly uri: string;
  readonly params: Params;
}

export function parseCallInfo(header: string): Result<CallInfoValue[]> {
  const values: CallInfoValue[] = [];
  for (const part of splitTopLevel(header, ',')) {
    const v = part.trim();
    if (v === '') continue;
    if (!v.startsWith('<')) return fail('Call-Info', `value must start with '<': "${v}"`);
    const gt = v.indexOf('>');
    if (gt < 0) return fail('Call-Info', `unterminated <...> in "${v}"`);
    const params = parseParams(v.slice(gt + 1));
    if (params === null) return fail('Call-Info', `bad parameters in "${v}"`);
    values.push({ uri: v.slice(1, gt), params });
  }
  if (values.length === 0) return fail('Call-Info', 'empty header');
  return ok(values);
}

export const formatCallInfoValue = (v: CallInfoValue): string => `<${v.uri}>${formatParams(v.params)}`;
export const formatCallInfo = (values: readonly CallInfoValue[]): string => values.map(formatCallInfoValue).join(',');

export const APPEARANCE_STATES = ['idle', 'seized', 'progressing', 'alerting', 'active', 'held', 'held-private'] as const;
export type WireAppearanceState = (typeof APPEARANCE_STATES)[number];

/** The SCA meaning of one Call-Info value (BroadWorks SIP Access Side Extensions). */
export interface ScaCallInfo {
  readonly uri: string;
  readonly index: number | '*';
  readonly state: WireAppearanceState | undefined;
  readonly appearanceUri: string | undefined; // unescaped content of the quoted parameter
}

export const isScaValue = (v: CallInfoValue): boolean => paramValue(v.params, 'appearance-index') !== undefined;

export function toScaCallInfo(v: CallInfoValue): Result<ScaCallInfo> {
  const rawIndex = paramValue(v.params, 'appearance-index');
  if (rawIndex === undefined || rawIndex === null) return fail('Call-Info', 'no appearance-index');
  let index: number | '*';
  if (rawIndex === '*') index = '*';
  else if (/^\d{1,9}$/.test(rawIndex)) index = Number(rawIndex);
  else return fail('Call-Info', `bad appearance-index "${rawIndex}"`);
  const rawState = paramValue(v.params, 'appearance-state');
  let state: WireAppearanceState | undefined;
  if (rawState !== undefined) {
    const name = (rawState ?? '').toLowerCase();
    if (!(APPEARANCE_STATES as readonly string[]).includes(name)) return fail('Call-Info', `unknown appearance-state "${rawState}"`);
    state = name as WireAppearanceState;
  }
  const rawUri = paramValue(v.params, 'appearance-uri');
  let appearanceUri: string | undefined;
  if (rawUri !== undefined && rawUri !== null) appearanceUri = isQuotedString(rawUri) ? unquote(rawUri) : rawUri;
  return ok({ uri: v.uri, index, state, appearanceUri });
}
