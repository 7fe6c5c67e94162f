import { parseArgs } from 'node:util';
import { loadRelayConfig, relaySettingFromText } from './config.js';
import { jsonLogger } from './log.js';
import { startRelay } from './program.js';

// `sca-cc-relay [--config FILE] [--set key=value ...]` (settings: relay/config.ts, SCA_RELAY_*):
// one per proxy host, started before Kamailio (call_control.so connects when Kamailio starts).
const { values } = parseArgs({ options: { config: { type: 'string' }, set: { type: 'string', multiple: true } }, allowPositionals: false });
const overrides: Record<string, unknown> = {};
for (const kv of values.set ?? []) {
  const eq = kv.indexOf('=');
  if (eq <= 0) {
    console.error(`--set wants key=value, got "${kv}"`);
    process.exit(2);
  }
  overrides[kv.slice(0, eq)] = relaySettingFromText(kv.slice(0, eq), kv.slice(eq + 1));
}
const loaded = loadRelayConfig({ file: values.config, env: process.env, overrides });
if (!loaded.ok) {
  console.error(`sca-cc-relay: bad configuration: ${loaded.error}`);
  process.exit(2);
}
const log = jsonLogger(loaded.config.log_level, { component: 'sca-cc-relay' });
const running = await startRelay(loaded.config, log).catch((err: unknown) => {
  log.fatal({ err: (err as Error).message }, 'sca-cc-relay cannot start');
  process.exit(1);
});

let stopping = false;
const stop = async (signal: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  log.info({ signal, ...running.relay.status() }, 'stopping');
  await running.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
// What it holds (a stop not yet delivered) must not go with a bug: logged, and it keeps relaying.
process.on('uncaughtException', (err) => log.fatal({ err: err.message, stack: err.stack }, 'uncaught exception'));
process.on('unhandledRejection', (err) => log.fatal({ err: String(err) }, 'unhandled rejection'));
