import { parseArgs } from 'node:util';
import { buildApp } from './app.js';
import { loadConfig, settingFromText } from './config.js';

// `npm start [-- --config FILE] [--set key=value ...]`: runs the service until SIGTERM/SIGINT.
const { values } = parseArgs({
  options: { config: { type: 'string' }, set: { type: 'string', multiple: true } },
  allowPositionals: false,
});
const overrides: Record<string, unknown> = {};
for (const kv of values.set ?? []) {
  const eq = kv.indexOf('=');
  if (eq <= 0) {
    console.error(`--set wants key=value, got "${kv}"`);
    process.exit(2);
  }
  const key = kv.slice(0, eq);
  try {
    overrides[key] = settingFromText(key, kv.slice(eq + 1));
  } catch (err) {
    console.error(`--set ${key}: ${(err as Error).message}`);
    process.exit(2);
  }
}
const loaded = loadConfig({ file: values.config, env: process.env, overrides });
if (!loaded.ok) {
  console.error(`sca-service: bad configuration: ${loaded.error}`);
  process.exit(2);
}
// HA: a node that lost its leadership stops at once (crash-only); its supervisor (systemd
// Restart=always) starts it again, as a standby. 75: EX_TEMPFAIL.
const app = buildApp(loaded.config, { onLost: () => setImmediate(() => process.exit(75)) });
const address = await app.start().catch((err: unknown) => {
  console.error(`sca-service: cannot start: ${(err as Error).message}`);
  process.exit(1);
});
app.http.log.info({ http: address, evapi: loaded.config.evapi_address }, 'sca-service started');

let stopping = false;
const stop = async (signal: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  app.http.log.info({ signal }, 'stopping');
  await app.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
// A bug must not take the lines down with it: log it loudly and keep serving.
process.on('uncaughtException', (err) => app.http.log.fatal({ err: err.message, stack: err.stack }, 'uncaught exception'));
process.on('unhandledRejection', (err) => app.http.log.fatal({ err: String(err) }, 'unhandled rejection'));
