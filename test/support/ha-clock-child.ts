// A standby in a process of its own, for the clock-skew test (run under libfaketime, FAKETIME=+5s):
// node --import tsx test/support/ha-clock-child.ts <db_url>
// Prints one JSON line per poll outcome: its role snapshot, the polls so far, and the
// sca_clock_offset_seconds metric; exits on SIGTERM.
import { Registry } from 'prom-client';
import { createRole } from '../../service/ha/role.js';
import { registerHaMetrics } from '../../service/metrics/ha.js';
import { MysqlDatabase } from '../../service/store/mysql.js';

const url = process.argv[2];
if (!url) throw new Error('usage: ha-clock-child.ts <db_url>');
const db = new MysqlDatabase(url, { ha: { idleWriteTimeoutS: 3 } });
await db.open();
const lines: string[] = [];
const log = { info: (o: object, m: string) => lines.push(`${m} ${JSON.stringify(o)}`), warn: (o: object, m: string) => lines.push(`${m} ${JSON.stringify(o)}`), error: (o: object, m: string) => lines.push(`${m} ${JSON.stringify(o)}`) };
const role = createRole(db, { ha_node_id: 'skewed', ha_lease_ttl: 3, ha_renew_interval: 1, ha_poll_interval: 0.2, ha_max_clock_offset: 1 }, log);
const registry = new Registry();
registerHaMetrics(registry, () => role.snapshot);
role.onLost((reason) => { console.log(JSON.stringify({ lost: reason })); process.exit(3); });
const started = await role.start();
if (!started.ok) throw new Error(started.error);
let polls = 0;
const tick = setInterval(async () => {
  polls++;
  const metric = (await registry.metrics()).split('\n').find((l) => l.startsWith('sca_clock_offset_seconds '));
  console.log(JSON.stringify({ polls, snapshot: role.snapshot, metric, logs: lines.splice(0), wallNow: Date.now() }));
}, 200);
process.on('SIGTERM', () => { clearInterval(tick); void role.stop().then(() => db.close()).then(() => process.exit(0)); });
