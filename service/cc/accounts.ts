import { parseNameAddr } from '../sip/name-addr.js';
import { parseUri } from '../sip/uri.js';
import type { Account } from './types.js';

const MAX_ID = 255;

/** "user@host" of a SIP URI, host lower-cased; undefined when it has no user. */
export function accountOfUri(uri: string): string | undefined {
  const u = parseUri(uri.trim());
  if (!u.ok || u.value.user === undefined || u.value.user === '') return undefined;
  const id = `${u.value.user}@${u.value.host.toLowerCase()}`;
  return id.length <= MAX_ID ? id : undefined;
}

/** An account id as an operator or a script writes it: "user@domain" or a SIP URI. */
export function normalizeAccount(text: string): string | undefined {
  const t = text.trim();
  if (/^sips?:/i.test(t)) return accountOfUri(t);
  const m = /^([^@\s<>";]+)@([^@\s<>";:]+)$/.exec(t);
  return m && t.length <= MAX_ID ? `${m[1]}@${m[2]!.toLowerCase()}` : undefined;
}

/**
 * Who pays for a call (AG callcontrol's rule): the diverter when one is given, else the From
 * header's user@domain. `from` may be a whole From header (display name, tag) or a URI.
 */
export function billingParty(from: string, diverter: string | undefined): string | undefined {
  if (diverter !== undefined && diverter !== '' && diverter !== 'None') {
    const d = normalizeAccount(diverter);
    if (d !== undefined) return d;
  }
  const na = parseNameAddr(from, 'From');
  return na.ok ? accountOfUri(na.value.uri) : accountOfUri(from);
}

/** An account's settings as an operator may change them; undefined keeps, null clears a limit. */
export interface AccountPatch {
  readonly maxCalls?: number | null;
  readonly maxDuration?: number | null;
  readonly prepaid?: boolean;
  readonly balance?: number;
  readonly plan?: string;
}

export function patchAccount(id: string, old: Account | undefined, p: AccountPatch): Account {
  const pick = <T>(v: T | null | undefined, was: T | undefined): T | undefined => (v === null ? undefined : v === undefined ? was : v);
  return {
    id,
    maxCalls: pick(p.maxCalls, old?.maxCalls),
    // A duration of 0 means no limit, as everywhere else (a call cut at its answer is no use).
    maxDuration: pick(p.maxDuration === 0 ? null : p.maxDuration, old?.maxDuration),
    prepaid: p.prepaid ?? old?.prepaid ?? false,
    balance: p.balance ?? old?.balance ?? 0,
    plan: p.plan ?? old?.plan ?? 'default',
  };
}
