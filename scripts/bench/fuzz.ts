// The long fuzz run (npm test runs a seeded few thousand: test/unit/fuzz.test.ts): 100k cases of
// each input, with a fresh seed unless --seed is given, printed so that a failure can be replayed.
//   node --import tsx scripts/bench/fuzz.ts [--runs 100000] [--seed N]
import fc from 'fast-check';
import { parseArgs } from 'node:util';
import { ScaEngine } from '../../service/sca/engine.js';
import { checkConfig, configOverrides, evapiFrame, mangledSip, rpcCall, rpcTarget } from '../../test/support/fuzz.js';
import { linkTarget } from '../../test/support/fuzz-link.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '100000' }, seed: { type: 'string' } } });
const RUNS = Number(values.runs);
const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 2 ** 31;
console.log(`fuzz: ${RUNS} cases per input, seed ${seed}`);
let failed = 0;
const report = (name: string, t0: number, detail: string) => console.log(`${name.padEnd(14)} ${detail} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

let t0 = performance.now();
const link = await linkTarget();
let answered = 0;
let expected = 0;
for (let done = 0; done < RUNS; done += 2000) {
  const r = await link.feed(fc.sample(evapiFrame, { numRuns: Math.min(2000, RUNS - done), seed: seed + done }));
  answered += r.answered;
  expected += r.expected;
  if (!r.connected || r.answered !== r.expected) { failed++; console.log(`  batch at ${done}: ${r.answered}/${r.expected} answered, connected ${r.connected}`); break; }
}
await link.close();
report('evapi frames', t0, `${answered}/${expected} requests answered, link up`);

t0 = performance.now();
const engine = new ScaEngine();
let now = 1000;
try {
  fc.assert(fc.property(mangledSip, fc.constantFrom('request', 'reply', 'failure', 'local-reply' as const), (msg, hook) => {
    now += 1;
    const sub = engine.subscribe({ msg, to_tag: 'z', now });
    if (sub.reply.code < 200 || sub.reply.code > 699) throw new Error(`reply code ${sub.reply.code}`);
    engine.callEvent({ hook, msg, status: 486, now });
    engine.tick(now);
  }), { numRuns: RUNS, seed });
  report('SIP messages', t0, 'no exception, every SUBSCRIBE answered 2xx-6xx');
} catch (err) { failed++; console.log(String(err).slice(0, 2000)); }

t0 = performance.now();
const rpc = rpcTarget();
let faults = 0;
try {
  await fc.assert(fc.asyncProperty(rpcCall, async ([name, params]) => {
    const r = await rpc.run(name, params);
    if (!r.ok) { faults++; if (r.changedState) throw new Error(`${name}: a fault that changed state`); }
  }), { numRuns: RUNS, seed });
  report('RPC params', t0, `${faults} refused with a message and no change, the rest served`);
} catch (err) { failed++; console.log(String(err).slice(0, 2000)); }

t0 = performance.now();
try {
  fc.assert(fc.property(configOverrides, (o) => checkConfig(o)), { numRuns: RUNS, seed });
  report('configuration', t0, 'accepted or refused with a reason');
} catch (err) { failed++; console.log(String(err).slice(0, 2000)); }

console.log(failed === 0 ? 'fuzz: no failure' : `fuzz: ${failed} target(s) FAILED (replay with --seed ${seed})`);
process.exit(failed === 0 ? 0 : 1);
