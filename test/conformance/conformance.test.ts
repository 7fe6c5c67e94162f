// Every scenario in test/conformance/scenarios, against Kamailio's own sca module and against
// sca-service: a DIFFERENT result, or an error, fails the suite.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { explain, loadScenario, playBoth } from './runner.js';

const dir = path.join(import.meta.dirname, 'scenarios');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const table: string[] = [];

for (const file of files) {
  t.test(file, async (t) => {
    const scenario = loadScenario(path.join(dir, file));
    const verdict = await playBoth(scenario);
    table.push(`${scenario.name.padEnd(28)} ${(scenario.spec ?? '').padEnd(8)} ${verdict.result.padEnd(19)} ${scenario.expect.join(' ')}`);
    t.not(verdict.result, 'DIFFERENT', `${scenario.name}: ${verdict.result}`, verdict.result === 'DIFFERENT' ? { diff: explain(verdict) } : {});
  });
}

t.teardown(() => {
  t.comment(`conformance table:\n${table.join('\n')}`);
});
