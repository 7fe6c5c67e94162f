// A MariaDB server of the test's own (datadir and port of its own), so a test can stop and
// restart it without disturbing anything else.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { externalPorts, isBindFailure } from './ports.js';

export class PrivateMariadb {
  private proc: ChildProcess | undefined;
  private started = false;
  readonly datadir = mkdtempSync(path.join(tmpdir(), 'sca-mariadb-'));
  port = 0;

  async init(): Promise<void> {
    execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${this.datadir}`, '--user=root', '--skip-test-db', '--auth-root-authentication-method=normal'], { stdio: 'ignore' });
    this.port = (await externalPorts(['tcp']))[0]!;
  }

  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}`;
  }

  /**
   * Starts the server. The first start moves to another port of the range if its port was taken
   * meanwhile (mariadbd exits: "Address already in use"); a restart keeps the port its URL names.
   */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let log = '';
      const proc = spawn('/usr/sbin/mariadbd', ['--no-defaults', `--datadir=${this.datadir}`, `--port=${this.port}`, '--bind-address=127.0.0.1',
        `--socket=${this.datadir}/mysqld.sock`, '--user=root', '--skip-grant-tables', '--skip-log-bin', '--innodb-buffer-pool-size=32M'], { stdio: ['ignore', 'ignore', 'pipe'] });
      proc.stderr!.on('data', (d: Buffer) => { log += d.toString('utf8'); });
      this.proc = proc;
      for (let i = 0; i < 100 && proc.exitCode === null; i++) {
        try {
          const c = await mysql.createConnection({ uri: this.url, connectTimeout: 500 });
          await c.end();
          this.started = true;
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (proc.exitCode === null) proc.kill('SIGKILL');
      if (this.started || attempt >= 5 || !isBindFailure(log)) throw new Error(`private mariadbd on port ${this.port} did not start: ${log.split('\n').slice(-5).join(' | ')}`);
      this.port = (await externalPorts(['tcp']))[0]!;
    }
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
