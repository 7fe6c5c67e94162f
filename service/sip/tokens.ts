// Low-level scanning shared by the header parsers: comma lists and ;param lists that respect
// quoted strings and <...> brackets, as RFC 3261 requires.

/** Splits a header value on top-level commas (not inside quotes or angle brackets). */
export function splitTopLevel(text: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') depth++;
    else if (c === '>') depth = Math.max(0, depth - 1);
    else if (c === sep && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

export type Params = Array<[name: string, value: string | null]>;

/** Parses ";a=1;b;c=\"x\"" (leading ';' optional) into ordered pairs; values keep their quotes. */
export function parseParams(text: string): Params | null {
  const params: Params = [];
  const trimmed = text.trim();
  if (trimmed === '') return params;
  const body = trimmed.startsWith(';') ? trimmed.slice(1) : trimmed;
  for (const raw of splitTopLevel(body, ';')) {
    const part = raw.trim();
    if (part === '') return null;
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (!isToken(part)) return null;
      params.push([part, null]);
      continue;
    }
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!isToken(name) || value === '') return null;
    if (value.startsWith('"') && !isQuotedString(value)) return null;
    params.push([name, value]);
  }
  return params;
}

export const paramValue = (params: Params, name: string): string | null | undefined => {
  const lower = name.toLowerCase();
  const hit = params.find(([n]) => n.toLowerCase() === lower);
  return hit ? hit[1] : undefined;
};

export const formatParams = (params: Params): string =>
  params.map(([n, v]) => (v === null ? `;${n}` : `;${n}=${v}`)).join('');

const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
export const isToken = (s: string): boolean => TOKEN.test(s);

export function isQuotedString(s: string): boolean {
  if (s.length < 2 || s[0] !== '"' || s[s.length - 1] !== '"') return false;
  for (let i = 1; i < s.length - 1; i++) {
    if (s[i] === '\\') {
      if (i === s.length - 2) return false; // escapes the closing quote
      i++;
    } else if (s[i] === '"') return false;
  }
  return true;
}

export function unquote(s: string): string {
  if (!isQuotedString(s)) return s;
  return s.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** Backslash-escapes the characters the sca module escapes in appearance-uri: ' " \ */
export const escapeQuoted = (s: string): string => s.replace(/['"\\]/g, (c) => `\\${c}`);
