#!/usr/bin/env node
// sca-cc-relay, one per proxy host: the compiled one (npm run build), else the TypeScript source through tsx.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/service/relay/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../service/relay/main.ts');
}
