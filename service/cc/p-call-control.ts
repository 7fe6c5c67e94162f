/**
 * Per-call values from a header in the SEMS style, e.g.
 *   P-Call-Control: cc_prepaid;uuid=joe@example.com, cc_pcalls;uuid=joe@example.com;max_calls=10, cc_call_timer;timer=600
 * uuid names the account, max_calls the parallel limit, timer the longest duration (s). Several
 * modules may name them; the lowest limit wins; unknown modules and parameters are ignored.
 */
export interface PerCallValues {
  readonly account: string | undefined;
  readonly maxCalls: number | undefined;
  readonly maxDuration: number | undefined;
}

const MODULES = new Set(['cc_prepaid', 'cc_pcalls', 'cc_call_timer']);

export function parsePCallControl(header: string | undefined): PerCallValues | { error: string } {
  let account: string | undefined;
  let maxCalls: number | undefined;
  let maxDuration: number | undefined;
  if (header === undefined || header.trim() === '') return { account, maxCalls, maxDuration };
  if (header.length > 1024) return { error: 'P-Call-Control longer than 1024 characters' };
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().split(';').map((x) => x.trim());
    if (!name || !MODULES.has(name)) continue;
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq <= 0) continue;
      const key = p.slice(0, eq).trim().toLowerCase();
      const value = p.slice(eq + 1).trim();
      if (key === 'uuid') {
        if (account !== undefined && account !== value) return { error: `P-Call-Control names two accounts (${account}, ${value})` };
        account = value;
      } else if (key === 'max_calls' || key === 'timer') {
        if (!/^\d{1,9}$/.test(value)) return { error: `P-Call-Control ${key}=${value.slice(0, 20)} is not a whole number` };
        const n = Number(value);
        if (key === 'max_calls') maxCalls = maxCalls === undefined ? n : Math.min(maxCalls, n);
        else if (n > 0) maxDuration = maxDuration === undefined ? n : Math.min(maxDuration, n);
      }
    }
  }
  return { account, maxCalls, maxDuration };
}
