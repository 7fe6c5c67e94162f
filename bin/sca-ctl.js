#!/usr/bin/env node
// Runs the TypeScript CLI through tsx from wherever it is called.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../service/cli/sca-ctl.ts');
process.exitCode = await main(process.argv.slice(2), process.env, (s) => console.log(s), (s) => console.error(s));
