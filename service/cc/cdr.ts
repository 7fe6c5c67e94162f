import type { Cdr } from './types.js';

/**
 * CDR lines as text: CSV with a configurable field list (SEMS cc_syslog_cdr's cdr_format idea),
 * fields quoted when they need it.
 */
export const CDR_FIELDS = [
  'call_id', 'account', 'from', 'to', 'source_ip', 'start', 'connect', 'end', 'setup_seconds', 'duration',
  'billable_seconds', 'connect_fee', 'amount', 'rate_prefix', 'cause', 'code',
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
    case 'billable_seconds': return String(c.billableSeconds);
    case 'connect_fee': return String(c.connectFee);
    case 'amount': return String(c.amount);
    case 'rate_prefix': return c.ratePrefix ?? '';
    case 'cause': return c.cause;
    case 'code': return c.code === undefined ? '' : String(c.code);
  }
}

/** A CSV field: quoted when it holds a comma, a quote, CR, LF or leading/trailing space. */
export const csvField = (v: string): string => (/[",\r\n]|^\s|\s$/.test(v) ? `"${v.replace(/"/g, '""').replace(/[\r\n]/g, ' ')}"` : v);

export const cdrCsv = (c: Cdr, fields: readonly CdrField[]): string => fields.map((f) => csvField(cdrValue(c, f))).join(',');
