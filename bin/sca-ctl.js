#!/usr/bin/env node
// The CLI: the compiled one (npm run build), else the TypeScript source through tsx.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/service/cli/sca-ctl.js', import.meta.url);
let main;
if (existsSync(compiled)) {
  ({ main } = await import(compiled.href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../service/cli/sca-ctl.ts'));
}
process.exitCode = await main(process.argv.slice(2), process.env, (s) => console.log(s), (s) => console.error(s));
