// MysqlDatabase's HA parts on the local MariaDB (a fresh database each): the write-fence first in
// every transaction, sticky failover over db_hosts (through a test proxy that drops its
// connections), and the lease's dedicated session moving with the rest.
import t from 'tap';
import { fenceStatement } from '../../../service/ha/fence.js';
import { FencedError } from '../../../service/store/database.js';
import { MysqlDatabase } from '../../../service/store/mysql.js';
import { dropTestDatabases, freshMysqlDatabase } from '../../support/store-backends.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

t.teardown(dropTestDatabases);

const KV = 'CREATE TABLE kv (k VARCHAR(16) PRIMARY KEY, v VARCHAR(16) NOT NULL)';
const FENCE = 'CREATE TABLE sca_ha_fence (name VARCHAR(32) PRIMARY KEY, epoch BIGINT NOT NULL, seq BIGINT NOT NULL)';
const put = (k: string, v: string) => ({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)', params: [k, v] });

t.test('with a fence set, every transaction starts with it; a fence that changes no row writes nothing and says FencedError', async (t) => {
  const { url, query } = await freshMysqlDatabase();
  const db = new MysqlDatabase(url, { ha: { idleWriteTimeoutS: 3 } });
  await db.open();
  t.teardown(() => db.close());
  await db.query(KV);
  await db.query(FENCE);
  await db.query("INSERT INTO sca_ha_fence VALUES ('sca', 7, 0)");
  db.setFence(fenceStatement('sca', 7));
  await db.transaction([put('a', '1')]);
  await db.transaction([put('b', '1'), put('c', '1')]);
  t.same(await query("SELECT seq FROM sca_ha_fence WHERE name = 'sca'"), [{ seq: 2 }], 'the fence row was written once per transaction');
  db.setFence(fenceStatement('sca', 6));
  const err = await db.transaction([put('d', '1'), put('a', '2')]).catch((e: unknown) => e);
  t.ok(err instanceof FencedError, 'FencedError');
  t.equal((err as FencedError).transient, false, 'not to be retried');
  t.same(await query('SELECT k, v FROM kv ORDER BY k'), [{ k: 'a', v: '1' }, { k: 'b', v: '1' }, { k: 'c', v: '1' }], 'nothing of the fenced transaction');
  db.setFence(undefined);
  await db.transaction([put('e', '1')]);
  t.same(await query("SELECT seq FROM sca_ha_fence WHERE name = 'sca'"), [{ seq: 2 }], 'no fence, no fence statement');
});

t.test('db_hosts: a refused first host at open, the store opens on the next', async (t) => {
  const { url } = await freshMysqlDatabase();
  const db = new MysqlDatabase(url, { hosts: ['127.0.0.1:1', '127.0.0.1:3306'] });
  await db.open();
  t.teardown(() => db.close());
  t.equal(db.currentHost, '127.0.0.1:3306');
  t.same(await db.query('SELECT 1 AS one'), [{ one: 1 }]);
});

t.test('a host that drops every connection: pool, writer and dedicated session move to the next host together, and stay', async (t) => {
  const { url, query } = await freshMysqlDatabase();
  const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 3306 });
  const db = new MysqlDatabase(url, { hosts: [proxy.address, '127.0.0.1:3306'] });
  await db.open();
  t.teardown(async () => { await db.close(); await proxy.close(); });
  await db.query(KV);
  await db.transaction([put('a', '1')]);
  const session = await db.dedicated({ timeoutMs: 2000 });
  t.equal(session.host, proxy.address);
  t.ok(proxy.connections >= 2, 'the writer and the session go through the first host');

  await proxy.close(); // every connection reset, and nothing listens there any more
  const failed = await db.transaction([put('b', '1')]).catch((e: { transient?: boolean }) => e);
  t.equal((failed as { transient?: boolean }).transient, true, 'the write in flight fails as transient (the committer retries it)');
  t.equal(db.currentHost, '127.0.0.1:3306', 'moved to the next host');
  t.ok(session.closed, 'the dedicated session on the old host counts as closed');
  await db.transaction([put('b', '1')]);
  t.same(await query('SELECT k FROM kv ORDER BY k'), [{ k: 'a' }, { k: 'b' }], 'writes resume on the next host');
  const again = await db.dedicated({ timeoutMs: 2000 });
  t.equal(again.host, '127.0.0.1:3306', 'a new session opens where the store is now');
  again.close();
});

t.test('HA sessions: pool reads are causal (wsrep_sync_wait=1), the writer is not and ends idle write transactions', async (t) => {
  const { url, query } = await freshMysqlDatabase();
  const db = new MysqlDatabase(url, { ha: { idleWriteTimeoutS: 3 } });
  await db.open();
  t.teardown(() => db.close());
  await db.query(KV);
  t.same(await db.query('SELECT @@SESSION.wsrep_sync_wait AS w'), [{ w: 1 }], 'a load waits for the cluster');
  await db.transaction([
    { sql: 'INSERT INTO kv (k, v) VALUES (?, @@SESSION.wsrep_sync_wait)', params: ['sync'] },
    { sql: 'INSERT INTO kv (k, v) VALUES (?, @@SESSION.idle_write_transaction_timeout)', params: ['idle'] },
  ]);
  t.same(await query('SELECT k, v FROM kv ORDER BY k'), [{ k: 'idle', v: '3' }, { k: 'sync', v: '0' }], 'the writer: BEGIN does not wait; idle write transactions end after 3 s');
  const plain = new MysqlDatabase(url);
  await plain.open();
  t.teardown(() => plain.close());
  t.same(await plain.query('SELECT @@SESSION.wsrep_sync_wait AS w'), [{ w: 0 }], 'without HA nothing changes');
});
