// A MariaDB server of the test's own (datadir and port of its own), so a test can stop and
// restart it without disturbing anything else.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';

export class PrivateMariadb {
  private proc: ChildProcess | undefined;
  readonly datadir = mkdtempSync(path.join(tmpdir(), 'sca-mariadb-'));
  port = 0;

  async init(): Promise<void> {
    execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${this.datadir}`, '--user=root', '--skip-test-db', '--auth-root-authentication-method=normal'], { stdio: 'ignore' });
    this.port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
    });
  }

  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = spawn('/usr/sbin/mariadbd', ['--no-defaults', `--datadir=${this.datadir}`, `--port=${this.port}`, '--bind-address=127.0.0.1',
      `--socket=${this.datadir}/mysqld.sock`, '--user=root', '--skip-grant-tables', '--skip-log-bin', '--innodb-buffer-pool-size=32M'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      try {
        const c = await mysql.createConnection({ uri: this.url, connectTimeout: 500 });
        await c.end();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`private mariadbd on port ${this.port} did not start`);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
    this.proc = undefined;
  }

  async query(sql: string, db?: string): Promise<Array<Record<string, unknown>>> {
    const c = await mysql.createConnection({ uri: db ? `${this.url}/${db}` : this.url });
    try {
      return (await c.query(sql))[0] as Array<Record<string, unknown>>;
    } finally {
      await c.end();
    }
  }
}
