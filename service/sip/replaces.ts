import { fail, ok, type Result } from './result.js';
import { paramValue, parseParams } from './tokens.js';

/** RFC 3891 Replaces: the dialog to replace, tags from the recipient's point of view. */
export interface ReplacesValue {
  readonly callId: string;
  readonly toTag: string;
  readonly fromTag: string;
  readonly earlyOnly: boolean;
}

export const formatReplaces = (r: ReplacesValue): string =>
  `${r.callId};to-tag=${r.toTag};from-tag=${r.fromTag}${r.earlyOnly ? ';early-only' : ''}`;

export function parseReplaces(text: string): Result<ReplacesValue> {
  const semi = text.indexOf(';');
  if (semi <= 0) return fail('Replaces', `no parameters in "${text}"`);
  const callId = text.slice(0, semi).trim();
  const params = parseParams(text.slice(semi));
  if (params === null || callId === '') return fail('Replaces', `malformed "${text}"`);
  const toTag = paramValue(params, 'to-tag');
  const fromTag = paramValue(params, 'from-tag');
  if (!toTag || !fromTag) return fail('Replaces', `to-tag and from-tag are required in "${text}"`);
  return ok({ callId, toTag, fromTag, earlyOnly: paramValue(params, 'early-only') !== undefined });
}
