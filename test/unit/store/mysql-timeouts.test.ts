// A MySQL/MariaDB server that stops answering (black-holed, as a dead network path looks) never
// holds the store: a statement fails after db_query_timeout and its connection is dropped, an
// answer that cannot wait goes ahead from memory with the store degraded, and the queued rows are
// written once the server answers again. MariaDB on 127.0.0.1:3306 (root, no password), reached
// through a TCP relay in this test that can drop everything.
import mysql from 'mysql2/promise';
import net from 'node:net';
import t from 'tap';
import { Committer } from '../../../service/store/committer.js';
import { StoreError } from '../../../service/store/database.js';
import { MysqlDatabase } from '../../../service/store/mysql.js';
import { waitUntil } from '../../support/wait.js';

const DB = 'sca_test_timeouts';
const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined };

/** Relays TCP to MariaDB; while `holed`, every byte both ways is dropped and nothing is closed. */
class Relay {
  holed = false;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  constructor() {
    this.server = net.createServer((client) => {
      const upstream = net.connect(3306, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('data', (d) => { if (!this.holed) upstream.write(d); });
      upstream.on('data', (d) => { if (!this.holed) client.write(d); });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }
  /** Bound to port 0 and kept: the port is ours for the test. */
  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const until = (what: string, probe: () => boolean): Promise<true> => waitUntil(what, probe, { timeoutMs: 15_000, everyMs: 25 });

t.test('a black-holed server: statements fail in time, answers go ahead, rows are written when it is back', async (t) => {
  const admin = await mysql.createConnection({ uri: 'mysql://root@127.0.0.1:3306' });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.query(`CREATE TABLE ${DB}.kv (k INT PRIMARY KEY, v INT NOT NULL)`);
  const relay = new Relay();
  const port = await relay.listen();
  const db = new MysqlDatabase(`mysql://root@127.0.0.1:${port}/${DB}`, { queryTimeoutMs: 600 });
  t.teardown(async () => {
    relay.holed = false;
    await db.close().catch(() => undefined);
    await relay.close();
    await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
    await admin.end();
  });
  await db.open();
  const put = (k: number, v: number) => ({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)', params: [k, v] });
  await db.transaction([put(1, 1)]);

  relay.holed = true;
  const started = Date.now();
  const err = await db.transaction([put(2, 2)]).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof StoreError && err.transient, `a transient StoreError: ${String(err)}`);
  t.ok(Date.now() - started < 3000, `failed after ${Date.now() - started} ms, not hung`);
  const read = await db.query('SELECT * FROM kv').then(() => 'answered', (e: StoreError) => e.transient);
  t.equal(read, true, 'a read fails too, transient');

  const committer = new Committer(db, quiet);
  const change = { key: 'kv\u00003', statements: [put(3, 3)] };
  const answered = Date.now();
  await committer.commit([change], 200);
  t.ok(Date.now() - answered < 1000, 'the answer that could not wait went ahead');
  t.equal(committer.degraded, true, 'the store is degraded');
  await until('the write failed and is queued', () => committer.stats.errors > 0);
  t.equal(committer.pending, 1, 'the row waits');

  relay.holed = false;
  await until('written once the server answers', () => !committer.degraded && committer.pending === 0);
  const [rows] = await admin.query(`SELECT k, v FROM ${DB}.kv ORDER BY k`);
  t.same(rows, [{ k: 1, v: 1 }, { k: 3, v: 3 }], 'the queued row is in; the failed transaction left nothing');
  committer.stop();
});

t.test('opening against a server that never answers fails in time', async (t) => {
  const hole = net.createServer(() => undefined); // accepts and says nothing, like a black hole
  await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => hole.close(() => resolve())));
  const db = new MysqlDatabase(`mysql://root@127.0.0.1:${(hole.address() as net.AddressInfo).port}/x`, { queryTimeoutMs: 600 });
  const started = Date.now();
  await t.rejects(db.open());
  t.ok(Date.now() - started < 3000, `gave up after ${Date.now() - started} ms`);
  await db.close().catch(() => undefined);
});
