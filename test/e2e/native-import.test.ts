// Migration from Kamailio's own sca module: the native module writes its sca_subscriptions table
// (SQLite, the kamctl schema); sca-service starts on that very file and NOTIFYs the phones inside
// the dialogs the native module created, so no phone has to re-subscribe.
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { stopGroup } from '../conformance/runner.js';
import { Phone, hdr } from '../support/sip-phone.js';
import { externalPorts } from '../support/ports.js';
import { DOMAIN, startStack, subscribeCallInfo, type Stack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCHEMA = '/usr/share/kamailio/db_sqlite';
const dir = mkdtempSync(path.join(tmpdir(), 'sca-native-'));
const dbFile = path.join(dir, 'sca.sqlite');
let native: ChildProcess | undefined;
let stack: Stack | undefined;
const phones: Phone[] = [];

t.teardown(async () => {
  if (native) await stopGroup(native);
  for (const p of phones) p.stop();
  await stack?.stop();
});

t.test('a table written by the native module is taken over, dialogs and all', async (t) => {
  const db = new Database(dbFile);
  db.exec(readFileSync(`${SCHEMA}/standard-create.sql`, 'utf8') + readFileSync(`${SCHEMA}/sca-create.sql`, 'utf8'));
  db.close();
  const [port] = await externalPorts(['udp']) as [number];
  native = spawn('kamailio', ['-DD', '-E', '-f', `${ROOT}/kamailio/native-oracle.cfg`, '-Y', dir, '-m', '64', '-A', `SIP_PORT=${port}`,
    '-A', `SIP_DOMAIN="${DOMAIN}"`, '-A', `CTL_SOCK="unix:${dir}/ctl"`, '-A', `SCA_DBURL="sqlite://${dbFile}"`], { stdio: 'ignore', detached: true });
  for (const name of ['p1', 'p2']) {
    const p = new Phone(name, '100', DOMAIN, port);
    await p.start();
    phones.push(p);
  }
  await waitUntil('the native proxy to answer a REGISTER with 200', async () => (await phones[0]!.register().catch(() => undefined))?.status === 200, { timeoutMs: 15_000, everyMs: 100 });
  const replies = [];
  for (const p of phones) {
    const r = await subscribeCallInfo(p);
    t.equal(r.status, 202, `${p.name}: the native module accepts`);
    replies.push(r);
    await p.nthNotify(1);
  }
  // The native module writes its table on shutdown.
  await stopGroup(native);
  native = undefined;
  const rows = new Database(dbFile, { readonly: true }).prepare('SELECT subscriber, aor, event, call_id, to_tag, notify_cseq FROM sca_subscriptions').all() as Array<{ subscriber: string; call_id: string; notify_cseq: number }>;
  t.equal(rows.length, 2, 'the native module wrote both subscriptions');

  stack = await startStack({ db_url: `sqlite:${dbFile}` });
  t.match(stack.serviceLog(), /"subscriptions":2,"expired":0,"appearances":0,"skipped":0,"msg":"state restored"/);
  for (const [i, p] of phones.entries()) {
    const n = await p.nthNotify(2, 'call-info', 5000);
    const sub = replies[i]!;
    const nativeFirst = p.notifies('call-info')[0]!;
    t.equal(hdr(n.msg, 'call-id'), hdr(sub, 'call-id'), `${p.name}: the native subscription's dialog`);
    t.equal(hdr(n.msg, 'from'), hdr(nativeFirst.msg, 'from'), `${p.name}: the native module's tag`);
    t.equal(hdr(n.msg, 'to'), hdr(nativeFirst.msg, 'to'));
    const cseq = Number(hdr(n.msg, 'cseq')!.split(' ')[0]);
    t.ok(cseq > Number(hdr(nativeFirst.msg, 'cseq')!.split(' ')[0]), `${p.name}: CSeq goes on (${cseq})`);
    t.equal(hdr(n.msg, 'call-info'), `<sip:${DOMAIN}>;appearance-index=*;appearance-state=idle`);
    t.match(hdr(n.msg, 'subscription-state'), /^active;expires=\d+$/);
  }
  const tables = (new Database(dbFile, { readonly: true }).prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name);
  t.ok(tables.includes('sca_appearances') && tables.includes('version'), 'our tables were added beside the native ones');
});
