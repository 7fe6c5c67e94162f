import type { Cdr } from './types.js';

/**
 * CDR lines as text: CSV with a configurable field list (SEMS cc_syslog_cdr's cdr_format idea),
 * fields quoted when they need it.
 */
export const CDR_FIELDS = [
  'call_id', 'account', 'from', 'to', 'source_ip', 'start', 'connect', 'end', 'setup_seconds', 'duration',
  'billable_seconds', 'connect_fee', 'amount', 'rate_prefix', 'cause', 'code',
  // Added later: at the end, so that the default line keeps every older column where it was.
  'duration_ms',
] as const;
export type CdrField = (typeof CDR_FIELDS)[number];

const iso = (ms: number | undefined): string => (ms === undefined ? '' : new Date(ms).toISOString());

export function cdrValue(c: Cdr, f: CdrField): string {
  switch (f) {
    case 'call_id': return c.callId;
    case 'account': return c.account;
    case 'from': return c.from;
    case 'to': return c.to;
    case 'source_ip': return c.sourceIp;
    case 'start': return iso(c.startMs);
    case 'connect': return iso(c.connectMs);
    case 'end': return iso(c.endMs);
    case 'setup_seconds': return c.setupSeconds.toFixed(3);
    case 'duration': return String(c.durationSeconds);
    case 'duration_ms': return c.durationMs === undefined ? '' : String(c.durationMs);
    case 'billable_seconds': return String(c.billableSeconds);
    case 'connect_fee': return String(c.connectFee);
    case 'amount': return String(c.amount);
    case 'rate_prefix': return c.ratePrefix ?? '';
    case 'cause': return c.cause;
    case 'code': return c.code === undefined ? '' : String(c.code);
  }
}

/** Control characters: C0 (tab, CR, LF, ESC, BEL ...), DEL and C1 (CSI ...). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
/** A first character a spreadsheet reads as a formula (OWASP's CSV injection list). */
const FORMULA = /^[=+\-@\t\r]/;

/**
 * A value made harmless for a CSV reader, a terminal and syslog: a backslash becomes `\\`, a control
 * character `\xHH` (so nothing is lost, and no line is ever split), and a value that starts with
 * `=`, `+`, `-`, `@`, tab or CR gets a leading `'` so that a spreadsheet shows it as text.
 */
export function neutralize(v: string): string {
  const escaped = v.replace(/\\/g, '\\\\').replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return FORMULA.test(v) ? `'${escaped}` : escaped;
}

/**
 * A CSV field: neutralized (see above), then quoted when it holds a comma, a quote or
 * leading/trailing space, or was neutralized as a formula (OWASP: the cell quoted too).
 */
export const csvField = (raw: string): string => {
  const v = neutralize(raw);
  return /[",]|^\s|\s$/.test(v) || FORMULA.test(raw) ? `"${v.replace(/"/g, '""')}"` : v;
};

export const cdrCsv = (c: Cdr, fields: readonly CdrField[]): string => fields.map((f) => csvField(cdrValue(c, f))).join(',');
