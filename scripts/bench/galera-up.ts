// A 3-node Galera cluster for the benchmarks' HA column (scripts/bench/compare.sh -H): starts it,
// writes what the service needs as shell assignments to ENV_FILE, and stops it (by PID, datadirs
// removed) on SIGTERM or SIGINT.
//   node --import tsx scripts/bench/galera-up.ts ENV_FILE
import { writeFileSync } from 'node:fs';
import { GaleraCluster, GALERA_DB, GALERA_PASSWORD, GALERA_USER } from '../ha/galera.js';

const envFile = process.argv[2];
if (!envFile) {
  console.error('usage: galera-up.ts ENV_FILE');
  process.exit(2);
}
const cluster = await GaleraCluster.start({ log: (m) => console.error(m) });
const first = cluster.nodes[0]!;
// The mariadb client's arguments for the first node (the bench resets the SCA tables through it).
const client = `-h 127.0.0.1 -P ${first.sqlPort} -u ${GALERA_USER} -p${GALERA_PASSWORD} ${GALERA_DB}`;
writeFileSync(envFile, [`GALERA_URL='${cluster.url}'`, `GALERA_HOSTS='${cluster.hosts.join(',')}'`, `GALERA_CLIENT='${client}'`, ''].join('\n'));
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void cluster.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => undefined, 60_000);
