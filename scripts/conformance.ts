// npm run conformance -- [--verbose: print both traces] <scenario.json | dir>...
// Plays each scenario against Kamailio's own sca module and against sca-service, prints a table
// scenario x {equal, intended deviation, DIFFERENT}; exits 1 on DIFFERENT or an error.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { explain, loadScenario, playBoth } from '../test/conformance/runner.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { verbose: { type: 'boolean', short: 'v' } } });
const files = (positionals.length > 0 ? positionals : ['test/conformance/scenarios']).flatMap((p) =>
  statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(p, f)) : [p]);

const rows: Array<[string, string, string, string]> = [];
let bad = 0;
for (const file of files) {
  let name = path.basename(file, '.json');
  try {
    const scenario = loadScenario(file);
    name = scenario.name;
    const verdict = await playBoth(scenario);
    rows.push([name, scenario.spec ?? '', verdict.result, scenario.expect.join(' ')]);
    if (verdict.result === 'DIFFERENT') {
      bad++;
      console.error(`--- ${name}\n${explain(verdict)}`);
    }
    if (values.verbose) console.error(`--- ${name} (${verdict.result})\nnative:  ${JSON.stringify(verdict.native, null, 1)}\nservice: ${JSON.stringify(verdict.service)}`);
  } catch (err) {
    bad++;
    rows.push([name, '', `ERROR: ${(err as Error).message}`, '']);
  }
}
const w = [0, 1, 2, 3].map((i) => Math.max(['scenario', 'spec', 'result', 'expected'][i]!.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
console.log(line(['scenario', 'spec', 'result', 'expected']));
for (const r of rows) console.log(line(r));
const count = (x: string) => rows.filter((r) => r[2] === x).length;
console.log(`\n${rows.length} scenarios: ${count('equal')} equal, ${count('intended deviation')} intended deviation, ${bad} DIFFERENT or error`);
process.exit(bad > 0 ? 1 : 0);
