import type { Rate } from './rating.js';

export type RatesCsvResult = { ok: true; rates: Rate[] } | { ok: false; line: number; error: string };

const MAX_ROWS = 200_000;
const INT = /^\d{1,12}$/;

/**
 * A rate table as CSV: `prefix,connect_fee,price_per_minute,initial_pulse,next_pulse` per line
 * (money in minor units, pulses in seconds), an optional header line naming those columns, blank
 * lines and # comments ignored. One bad row rejects the whole file, with its line number.
 */
export function parseRatesCsv(text: string, plan: string): RatesCsvResult {
  const rates: Rate[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const no = i + 1;
    if (line === '' || line.startsWith('#')) continue;
    const cells = line.split(',').map((c) => c.trim());
    if (rates.length === 0 && seen.size === 0 && /^prefix$/i.test(cells[0] ?? '')) continue; // header
    if (cells.length !== 5) return { ok: false, line: no, error: `expected 5 fields (prefix,connect_fee,price_per_minute,initial_pulse,next_pulse), got ${cells.length}` };
    const [prefix, fee, ppm, a, b] = cells as [string, string, string, string, string];
    if (!/^\d{0,32}$/.test(prefix)) return { ok: false, line: no, error: `prefix "${prefix.slice(0, 40)}" must be digits` };
    for (const [name, v] of [['connect_fee', fee], ['price_per_minute', ppm], ['initial_pulse', a], ['next_pulse', b]] as const) {
      if (!INT.test(v)) return { ok: false, line: no, error: `${name} "${v.slice(0, 40)}" must be a whole number` };
    }
    if (Number(a) < 1 || Number(b) < 1) return { ok: false, line: no, error: 'pulses must be at least 1 second' };
    if (seen.has(prefix)) return { ok: false, line: no, error: `prefix ${prefix} appears twice` };
    if (rates.length >= MAX_ROWS) return { ok: false, line: no, error: `more than ${MAX_ROWS} rows` };
    seen.add(prefix);
    rates.push({ plan, prefix, connectFee: Number(fee), pricePerMinute: Number(ppm), initialPulse: Number(a), nextPulse: Number(b) });
  }
  return { ok: true, rates };
}
