import { fail, ok, type Result } from './result.js';
import { paramValue, parseParams, type Params } from './tokens.js';
import { parseUri } from './uri.js';

/** A From/To/Contact/Route value: optional display name, URI, header parameters. */
export interface NameAddr {
  /** The display name as written, quotes included (the module shows it that way). */
  readonly display: string | undefined;
  readonly uri: string;
  readonly params: Params;
}

export function parseNameAddr(text: string, what = 'name-addr'): Result<NameAddr> {
  const s = text.trim();
  if (s === '') return fail(what, 'empty value');
  const lt = findOpenBracket(s);
  if (lt >= 0) {
    const gt = s.indexOf('>', lt);
    if (gt < 0) return fail(what, `unterminated <...> in "${s}"`);
    const displayText = s.slice(0, lt).trim();
    const uri = s.slice(lt + 1, gt).trim();
    if (!parseUri(uri).ok) return fail(what, `bad URI "${uri}"`);
    const params = parseParams(s.slice(gt + 1));
    if (params === null) return fail(what, `bad parameters in "${s}"`);
    if (displayText.startsWith('"') && !/^"(?:[^"\\]|\\.)*"$/.test(displayText)) {
      return fail(what, `bad display name in "${s}"`);
    }
    return ok({ display: displayText === '' ? undefined : displayText, uri, params });
  }
  // addr-spec form: everything after the first ';' is a header parameter (RFC 3261 20.10).
  const semi = s.indexOf(';');
  const uri = semi >= 0 ? s.slice(0, semi) : s;
  if (/[\s"]/.test(uri) || !parseUri(uri).ok) return fail(what, `bad URI "${uri}"`);
  const params = parseParams(semi >= 0 ? s.slice(semi) : '');
  if (params === null) return fail(what, `bad parameters in "${s}"`);
  return ok({ display: undefined, uri, params });
}

/** The '<' that opens the URI, skipping any '<' inside a quoted display name. */
function findOpenBracket(s: string): number {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') return i;
  }
  return -1;
}

export const tagOf = (na: NameAddr): string | undefined => {
  const t = paramValue(na.params, 'tag');
  return t === null || t === undefined || t === '' ? undefined : t;
};
