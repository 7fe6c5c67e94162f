/**
 * The parameter types of the sca.* and cc.* commands. Each type parses one value as it comes in
 * JSON-RPC (a JSON value) or from sca-ctl (text), strictly: a number is a JSON number or decimal
 * text, never a boolean, a list or an empty string; a whole number has no fraction; money is
 * bounded so that no sum of it passes 2^53. A value that does not fit says why, and the caller's
 * fault (JSON-RPC -32602) names the parameter with it.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; why: string };

export interface ParamType<T = unknown> {
  /** What it is made of (a time is a number or text). */
  readonly kind: 'number' | 'text' | 'bool' | 'enum' | 'time';
  /** How the docs and `sca-ctl --help` name the type. */
  readonly doc: string;
  parse(v: unknown): Parsed<T>;
}

/** One parameter of a command, in its positional order. */
export interface ParamSpec {
  readonly name: string;
  readonly type: ParamType;
  readonly optional?: boolean;
  /** What it means, for the docs. */
  readonly doc: string;
}

/** The largest amount of money a parameter or a balance may hold (minor units): sums stay exact. */
export const MAX_MONEY = 1e15;

const good = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (why: string): Parsed<never> => ({ ok: false, why });

/** A value as an error message shows it: text quoted and cut short, anything else as JSON. */
export function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number') return String(v); // NaN and Infinity too, which JSON.stringify hides
  const json = JSON.stringify(v);
  return json === undefined ? String(v) : json.length > 40 ? `${json.slice(0, 40)}...` : json;
}

const DECIMAL = /^[+-]?\d+(\.\d+)?$/;

/** A number from a JSON number or decimal text; undefined for anything else. */
function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && DECIMAL.test(v)) return Number(v);
  return undefined;
}

const fmt = (n: number): string => (Math.abs(n) >= 1e15 && Number.isInteger(Math.log10(Math.abs(n))) ? `${n < 0 ? '-' : ''}10^${Math.log10(Math.abs(n))}` : String(n));

/** A whole number from min to max. */
export function whole(min: number, max: number, doc = `whole number, ${fmt(min)} to ${fmt(max)}`): ParamType<number> {
  return {
    kind: 'number',
    doc,
    parse(v) {
      const n = numberOf(v);
      if (n === undefined) return bad('must be a whole number');
      if (!Number.isInteger(n)) return bad('must be a whole number, not a fraction');
      if (n < min || n > max) return bad(`must be from ${fmt(min)} to ${fmt(max)}`);
      return good(n === 0 ? 0 : n);
    },
  };
}

/** Money in minor units: a whole number, |x| ≤ MAX_MONEY. */
export const money = whole(-MAX_MONEY, MAX_MONEY, 'whole number of minor units, -10^15 to 10^15');

/** Text of min..max characters, without control characters; optionally matching a pattern. */
export function text(min: number, max: number, opts: { pattern?: RegExp; like?: string; doc?: string; controls?: boolean } = {}): ParamType<string> {
  return {
    kind: 'text',
    doc: opts.doc ?? (min > 0 ? `text, ${min} to ${max} characters` : `text, up to ${max} characters`),
    parse(v) {
      if (typeof v !== 'string') return bad(min > 0 ? 'must be text' : 'must be text (may be empty)');
      if (v.length < min) return bad(min === 1 ? 'must not be empty' : `must be at least ${min} characters`);
      if (v.length > max) return bad(`must be at most ${max} characters`);
      if (!opts.controls && /[\u0000-\u001f\u007f]/.test(v)) return bad('must not contain control characters');
      if (opts.pattern && !opts.pattern.test(v)) return bad(`must be ${opts.like ?? `like ${opts.pattern.source}`}`);
      return good(v);
    },
  };
}

/** One of a list of words. */
export function oneOf<const T extends string>(values: readonly T[]): ParamType<T> {
  const list = values.length === 2 ? `${values[0]} or ${values[1]}` : `one of ${values.join(', ')}`;
  return {
    kind: 'enum',
    doc: values.join(' | '),
    parse: (v) => (typeof v === 'string' && (values as readonly string[]).includes(v) ? good(v as T) : bad(`must be ${list}`)),
  };
}

const TRUE = new Set<unknown>([true, 'true', '1', 'yes', 1]);
const FALSE = new Set<unknown>([false, 'false', '0', 'no', 0]);

/** true/false, or the text true/false, 1/0, yes/no. */
export const bool: ParamType<boolean> = {
  kind: 'bool',
  doc: 'true | false (also 1/0, yes/no)',
  parse: (v) => (TRUE.has(v) ? good(true) : FALSE.has(v) ? good(false) : bad('must be true or false (or 1/0, yes/no)')),
};

/** A limit: a whole number from 0, or none (the text "none" or null) to clear it. */
export function limitOf(max: number): ParamType<number | null> {
  const n = whole(0, max);
  return {
    kind: 'number',
    doc: `whole number, 0 to ${fmt(max)}, or none`,
    parse(v) {
      if (v === null || v === 'none') return good(null);
      const r = n.parse(v);
      return r.ok ? r : bad(`${r.why}, or "none"`);
    },
  };
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
/** Epoch seconds from 1970 to 5138 (10^11 s): a JSON number or decimal text. */
const MAX_EPOCH = 1e11;

/** A time: epoch seconds (a number or decimal text) or ISO 8601 text; the value is epoch seconds. */
export const time: ParamType<number> = {
  kind: 'time',
  doc: 'epoch seconds or ISO 8601 (2030-01-31T12:00:00Z)',
  parse(v) {
    const n = numberOf(v);
    if (n !== undefined) return n >= 0 && n <= MAX_EPOCH ? good(n) : bad(`must be epoch seconds from 0 to ${MAX_EPOCH}`);
    if (typeof v === 'string' && ISO_8601.test(v)) {
      const ms = Date.parse(v);
      if (!Number.isNaN(ms)) return good(ms / 1000);
    }
    return bad('must be epoch seconds or an ISO 8601 time (2030-01-31T12:00:00Z)');
  },
};

/** A type that takes only the values `accept` allows, saying `why` for the others. */
export function where<T>(type: ParamType<T>, accept: (v: T) => boolean, why: string, doc = type.doc): ParamType<T> {
  return {
    kind: type.kind,
    doc,
    parse(v) {
      const r = type.parse(v);
      return r.ok && !accept(r.value) ? bad(why) : r;
    },
  };
}

export interface ParamsProblem {
  readonly param?: string;
  readonly why: string;
}

export type ParsedParams = { ok: true; args: Record<string, unknown> } | { ok: false; problems: ParamsProblem[] };

/**
 * Params as they came (positional like kamcmd, or named) checked against a command's list: too
 * many positional params, unknown named ones, a missing one and every bad value is a problem.
 */
export function parseParams(specs: readonly ParamSpec[], params: unknown): ParsedParams {
  let named: Record<string, unknown>;
  const names = specs.map((s) => s.name);
  const takes = specs.length === 0 ? 'takes no params' : `takes ${specs.length} (${names.join(', ')})`;
  if (params === undefined || params === null) named = {};
  else if (Array.isArray(params)) {
    if (params.length > specs.length) return { ok: false, problems: [{ why: `too many params: ${params.length} given, it ${takes}` }] };
    named = Object.fromEntries(params.map((v, i) => [names[i]!, v]));
  } else if (typeof params === 'object') {
    named = params as Record<string, unknown>;
    const unknown = Object.keys(named).filter((k) => !names.includes(k));
    if (unknown.length > 0) {
      return { ok: false, problems: unknown.map((k) => ({ param: k.slice(0, 40), why: `unknown param ${JSON.stringify(k.slice(0, 40))}: it ${takes}` })) };
    }
  } else {
    return { ok: false, problems: [{ why: 'params must be a list (positional) or an object (named)' }] };
  }
  const args: Record<string, unknown> = {};
  const problems: ParamsProblem[] = [];
  for (const spec of specs) {
    const v = Object.hasOwn(named, spec.name) ? named[spec.name] : undefined;
    if (v === undefined) {
      if (!spec.optional) problems.push({ param: spec.name, why: `${spec.name} is missing` });
      continue;
    }
    const r = spec.type.parse(v);
    if (r.ok) args[spec.name] = r.value;
    else problems.push({ param: spec.name, why: `${spec.name} ${shown(v)} ${r.why}` });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, args };
}
