// One seed per test file for its fast-check properties: random each run (more inputs over time),
// printed at the start, and set by FC_SEED to replay a run exactly:
//   FC_SEED=123456 npx tap test/unit/sca/properties.test.ts
import fc from 'fast-check';

export function propertySeed(t: { comment(...args: unknown[]): void }): number {
  const given = process.env.FC_SEED;
  const seed = given !== undefined && given !== '' ? Number(given) : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(given)}`);
  t.comment(`fast-check seed ${seed}${given ? ' (from FC_SEED)' : ''}; replay with FC_SEED=${seed}`);
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
  return seed;
}
