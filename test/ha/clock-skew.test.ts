// T11: a node whose clock is 5 s off the database's refuses leadership, says so once, and shows
// the offset; a node with a right clock then leads (the lease was free all along). Once with the
// clock injected, once as a real process under libfaketime (+5 s). On the local MariaDB.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import readline from 'node:readline';
import t from 'tap';
import { dropTestDatabases, freshMysqlDatabase } from '../support/store-backends.js';
import { HaNode } from '../support/ha-node.js';
import { until, within } from '../support/wait.js';

t.setTimeout(120_000);
t.teardown(dropTestDatabases);

t.test('T11 (clock injected): a node 5 s ahead of the database never takes the free lease; a right one does', async (t) => {
  const { url, query } = await freshMysqlDatabase();
  const skewed = new HaNode({ name: 'skewed', url, ttlS: 3, pollIntervalS: 0.1, wall: () => Date.now() + 5000 });
  t.teardown(() => skewed.close());
  await skewed.start();
  let polls = 0;
  const measure = skewed.lease.measureOffset.bind(skewed.lease);
  skewed.lease.measureOffset = async () => { polls++; return measure(); };
  await until(() => polls >= 10, 10_000, 'ten polls of the skewed node');
  t.match(skewed.role.snapshot, { role: 'standby', refusing: true, takeovers: 0 });
  const offset = skewed.role.snapshot.clockOffsetS!;
  t.ok(Math.abs(offset + 5) < 0.5, `offset measured ${offset.toFixed(3)} s`);
  t.same(await query("SELECT epoch FROM sca_ha_lease WHERE name = 'sca'"), [{ epoch: 0 }], 'the lease was never taken');
  const refusals = skewed.log.lines.filter((l) => /CLOCK OFFSET/.test(l.msg));
  t.equal(refusals.length, 1, 'one log line');
  t.match(refusals[0], { level: 'warn', fields: { maxClockOffsetS: 1 } });

  const right = new HaNode({ name: 'right', url, ttlS: 3, pollIntervalS: 0.1 });
  t.teardown(() => right.close());
  await right.start();
  t.equal(await within(right.leader, 10_000, 'the node with a right clock to lead'), 1);
  await until(() => skewed.role.snapshot.leader?.epoch === 1, 10_000, 'the skewed node to see it');
  t.equal(skewed.role.snapshot.role, 'standby');
});

// What `faketime -f +5s` does, without its wrapper process (which would not pass our SIGTERM on).
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

t.test('T11 (a real process, libfaketime FAKETIME=+5s): refuses leadership; its metric shows the offset', async (t) => {
  // npm run test:ha installs it (scripts/deps-for-ha.sh); run alone, a missing one fails loudly.
  if (!existsSync(LIBFAKETIME)) throw new Error(`needs ${LIBFAKETIME}: apt-get install -y faketime`);
  const { url, query } = await freshMysqlDatabase();
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/ha-clock-child.ts', url], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LD_PRELOAD: LIBFAKETIME, FAKETIME: '+5s' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await within(exited, 10_000, 'the child to stop').catch(() => child.kill('SIGKILL'));
  });
  const reports: Array<{ polls: number; snapshot: { role: string; refusing: boolean; clockOffsetS?: number }; metric?: string; logs: string[]; wallNow: number }> = [];
  readline.createInterface({ input: child.stdout }).on('line', (l) => { try { reports.push(JSON.parse(l)); } catch { /* not ours */ } });
  await within(Promise.race([
    until(() => reports.some((r) => r.snapshot.refusing) && reports.length >= 10, 60_000, 'the child to refuse for ten reports'),
    exited.then((code) => { throw new Error(`the child exited (${code}): ${stderr.slice(-800)}`); }),
  ]), 70_000, 'the faketime child');
  const last = reports.at(-1)!;
  t.ok(last.wallNow - Date.now() > 4000, `the child's clock runs ${((last.wallNow - Date.now()) / 1000).toFixed(1)} s ahead`);
  t.match(last.snapshot, { role: 'standby', refusing: true });
  t.ok(Math.abs(last.snapshot.clockOffsetS! + 5) < 0.5, `offset ${last.snapshot.clockOffsetS!.toFixed(3)} s`);
  t.match(last.metric, /^sca_clock_offset_seconds -[45]\.\d+/, 'the metric shows it');
  t.ok(reports.every((r) => r.snapshot.role === 'standby'), 'never leader');
  t.equal(reports.flatMap((r) => r.logs).filter((l) => /CLOCK OFFSET/.test(l)).length, 1, 'one log line');
  t.same(await query("SELECT epoch FROM sca_ha_lease WHERE name = 'sca'"), [{ epoch: 0 }], 'the lease was never taken');
});
