// Every scenario in test/conformance/scenarios, against Kamailio's own sca module and against
// sca-service: a DIFFERENT result, or an error, fails the suite.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { explain, loadScenario, playBoth, type Verdict } from './runner.js';

const dir = path.join(import.meta.dirname, 'scenarios');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const table: string[] = [];

// Scenarios that mostly wait on the module's own timers (a wait of 30 s or more: stale seizes,
// purges) start at once and play beside the others; their waits are idle time, and the suite
// takes minutes less. Each is still judged in its place below.
const early = new Map<string, Promise<Verdict>>();
for (const file of files) {
  const scenario = loadScenario(path.join(dir, file));
  if (!scenario.steps.some((s) => s.do === 'wait' && s.ms >= 30_000)) continue;
  const verdict = playBoth(scenario);
  verdict.catch(() => undefined); // judged (and failed) by its own test below
  early.set(file, verdict);
}

for (const file of files) {
  t.test(file, async (t) => {
    const scenario = loadScenario(path.join(dir, file));
    const verdict = await (early.get(file) ?? playBoth(scenario));
    table.push(`${scenario.name.padEnd(28)} ${(scenario.spec ?? '').padEnd(8)} ${verdict.result.padEnd(19)} ${scenario.expect.join(' ')}`);
    t.not(verdict.result, 'DIFFERENT', `${scenario.name}: ${verdict.result}`, verdict.result === 'DIFFERENT' ? { diff: explain(verdict) } : {});
  });
}

t.teardown(() => {
  t.comment(`conformance table:\n${table.join('\n')}`);
});
