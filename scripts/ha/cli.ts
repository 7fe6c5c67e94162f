// `npm run ha`: the high-availability product on this one box, for trying it: a 3-node MariaDB
// Galera cluster, Kamailio proxies A and B, service nodes n1 and n2 (ha_enabled). It prints where
// phones register, which node leads and how to kill it, and runs until Ctrl-C (then stops
// everything it started). Options: --proxies A,B  --nodes n1,n2  --set name=value (service)
// --cc-door link|relay (relay: the proxies run call_control.so, each against a sca-cc-relay).
import { parseArgs } from 'node:util';
import { DOMAIN, HaTopology } from './topology.js';

const { values } = parseArgs({
  options: { proxies: { type: 'string', default: 'A,B' }, nodes: { type: 'string', default: 'n1,n2' }, set: { type: 'string', multiple: true }, 'cc-door': { type: 'string', default: 'link' } },
  allowPositionals: false,
});
const settings = Object.fromEntries((values.set ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const say = (msg: string): void => console.log(msg);

say('starting: 3 Galera nodes, then the service nodes, then the proxies (about 20 s)');
const ccDoor = values['cc-door'];
if (ccDoor !== 'link' && ccDoor !== 'relay') {
  console.error('--cc-door: link or relay');
  process.exit(2);
}
const ha = await HaTopology.start({ proxies: values.proxies!.split(','), nodes: values.nodes!.split(','), settings, ccDoor, log: (m) => say(`  ${m}`) });
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  say('\nstopping everything');
  await ha.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

const leader = await ha.leader(60_000);
say(`
HA up: one leader, linked to every proxy; the others stand by.
  phones register at   ${ha.proxies.map((p) => `proxy ${p.id}: udp:127.0.0.1:${p.sipPort}`).join('   ')}   (domain ${DOMAIN})
  service nodes        ${ha.nodes.map((n) => `${n.id}: http://127.0.0.1:${n.httpPort}/ (pid ${n.pid})`).join('   ')}
  leader now           ${leader.id} (pid ${leader.pid}): node bin/sca-ctl.js --url http://127.0.0.1:${leader.httpPort} ha.status
  try a failover       kill -9 ${leader.pid}   (the standby leads within a few seconds; like systemd's Restart=always,
                       this command starts a node that exited again, a second later: it comes back as a standby)
  call control         ${ccDoor === 'relay' ? `call_control.so through sca-cc-relay (${ha.relays.map((r) => `${r.proxy.id}: ${r.logFile}`).join('   ')})` : 'the link door (cc-routes.cfg)'}
  Galera               ${ha.galera.hosts.join(', ')}   logs and data in ${ha.dir} and ${ha.galera.dir}
  stop with            Ctrl-C
`);

// The supervisor's part: a node that exited (killed, or stopped after losing its lead) is started
// again, as systemd's Restart=always would.
for (const n of ha.nodes) {
  const watch = (): void => {
    void n.exited().then(async (code) => {
      if (stopping) return;
      say(`${new Date().toISOString()} ${n.id} exited (${code ?? 'killed'}); starting it again`);
      await new Promise((r) => setTimeout(r, 1000));
      if (stopping) return;
      await n.start().then(() => say(`${new Date().toISOString()} ${n.id} is back (pid ${n.pid})`), (err: Error) => say(`${n.id} did not start: ${err.message}`));
      watch();
    });
  };
  watch();
}

// Report who leads as it changes.
let last = leader.id;
setInterval(() => {
  void (async () => {
    for (const n of ha.nodes) {
      if ((await n.get('/leader'))?.role === 'leader' && n.id !== last) {
        say(`${new Date().toISOString()} ${n.id} leads now (pid ${n.pid})`);
        last = n.id;
      }
    }
  })();
}, 1000);
