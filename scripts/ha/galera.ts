// A real 3-node MariaDB Galera cluster on this box, for the HA tests: Debian's mariadbd and
// galera-4, each node with its own datadir, config file and ports (a claimed block below the
// ephemeral range), started as children of the test and stopped by PID. Nodes can be killed
// (-9), frozen (SIGSTOP) and thawed. Recipe and numbers: spec/integration/galera-on-one-box.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { claimPortBlock, type PortBlock } from './ports.js';

const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
const PROVIDER = '/usr/lib/galera/libgalera_smm.so';
const APT = 'apt-get install -y galera-4 galera-arbitrator-4 faketime rsync';
const PREFIX = 'sca-galera-';
// Failure detection as tuned in the spike: a killed node is evicted in ~3 s instead of ~6 s.
// (keepalive must stay below suspect/3; suspect PT1S made the survivors flap.)
const EVS = 'evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S';

/** TCP user of the tests (root works only over the socket); SST copies it to the joiners. */
export const GALERA_USER = 'sca';
export const GALERA_PASSWORD = 'sca-test-pw';
export const GALERA_DB = 'sca';

export interface GaleraNode {
  readonly n: number;
  readonly sqlPort: number;
  readonly dir: string;
  proc: ChildProcess | undefined;
}

/** The binaries, or apt-get them (as root), or fail saying which command installs them. */
export function ensureGaleraInstalled(): void {
  const missing = () => [MARIADBD, INSTALL_DB, PROVIDER, '/usr/bin/rsync'].filter((f) => !existsSync(f));
  if (missing().length === 0) return;
  if (process.getuid?.() === 0) {
    try {
      execFileSync('apt-get', ['install', '-y', 'galera-4', 'galera-arbitrator-4', 'faketime', 'rsync'], { stdio: 'ignore', timeout: 300_000 });
    } catch { /* reported below */ }
  }
  if (missing().length > 0) throw new Error(`Galera tests need ${missing().join(', ')}: as root run: ${APT} (and mariadb-server)`);
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Servers left by a test process that died without stopping them: killed by their PID files. */
function reapOrphans(): void {
  for (const name of readdirSync(tmpdir()).filter((d) => d.startsWith(PREFIX))) {
    const dir = path.join(tmpdir(), name);
    let owner = 0;
    try { owner = Number(readFileSync(path.join(dir, 'owner'), 'utf8')); } catch { continue; }
    if (owner > 0 && alive(owner)) continue;
    for (const n of [1, 2, 3]) {
      try {
        const pid = Number(readFileSync(path.join(dir, `n${n}`, 'server.pid'), 'utf8'));
        // Only a process that is still that server (a PID can be reused).
        if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) process.kill(pid, 'SIGKILL');
      } catch { /* not running */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function nodeConfig(dir: string, n: number, base: number, nodes: number): string {
  const gcomm = Array.from({ length: nodes }, (_, i) => `127.0.0.1:${base + 4 + i}`).join(',');
  const d = path.join(dir, `n${n}`);
  return `[mariadbd]
datadir                     = ${d}/data
socket                      = ${d}/mysqld.sock
pid-file                    = ${d}/mysqld.pid
log-error                   = ${d}/error.log
port                        = ${base + n - 1}
bind-address                = 127.0.0.1
user                        = ${SERVER_USER}
skip-name-resolve
innodb_buffer_pool_size     = 32M
innodb_log_file_size        = 16M
innodb_log_buffer_size      = 2M
key_buffer_size             = 1M
performance_schema          = OFF
max_connections             = 60
binlog_format               = ROW
default_storage_engine      = InnoDB
innodb_autoinc_lock_mode    = 2
innodb_flush_log_at_trx_commit = 1
wsrep_on                    = ON
wsrep_provider              = ${PROVIDER}
wsrep_cluster_name          = sca-test-${base}
wsrep_cluster_address       = gcomm://${gcomm}
wsrep_node_name             = n${n}
wsrep_node_address          = 127.0.0.1:${base + 4 + n - 1}
wsrep_node_incoming_address = 127.0.0.1:${base + n - 1}
wsrep_sst_method            = rsync
wsrep_sst_receive_address   = 127.0.0.1:${base + 12 + n - 1}
wsrep_provider_options      = "gmcast.listen_addr=tcp://127.0.0.1:${base + 4 + n - 1};ist.recv_addr=127.0.0.1:${base + 8 + n - 1};gcache.size=32M;${EVS}"
`;
}

// As root, the servers run as mysql: the joiner's rsync SST daemon, started by root, would drop
// to nobody and could not write a root-owned datadir. Anyone else runs them as themselves.
const SERVER_USER = process.getuid?.() === 0 ? 'mysql' : (process.env.USER ?? 'mysql');

const BIND_FAILURE = /Address already in use|Bind on TCP\/IP port|Failed to listen|bind\(\) failed|Can't start server/i;

export class GaleraCluster {
  readonly nodes: GaleraNode[];
  private stopped = false;

  private constructor(readonly dir: string, private readonly block: PortBlock, count: number) {
    this.nodes = Array.from({ length: count }, (_, i) => ({ n: i + 1, sqlPort: block.base + i, dir: path.join(dir, `n${i + 1}`), proc: undefined }));
  }

  /** Installs, bootstraps node 1, joins the others one by one (each until Synced). */
  static async start(opts: { nodes?: number; log?: (msg: string) => void } = {}): Promise<GaleraCluster> {
    ensureGaleraInstalled();
    reapOrphans();
    const count = opts.nodes ?? 3;
    for (let attempt = 1; ; attempt++) {
      const block = await claimPortBlock();
      const dir = mkdtempSync(path.join(tmpdir(), PREFIX));
      writeFileSync(path.join(dir, 'owner'), String(process.pid));
      const cluster = new GaleraCluster(dir, block, count);
      live.add(cluster);
      try {
        const t0 = performance.now();
        await cluster.init();
        // Node 1 alone first, for the user and database; then every node starts from a copy of
        // its stopped datadir, so the joiners need no state transfer (rsync SST took ~16 s per
        // joiner on this box, mostly the script's own waits) and can join side by side.
        await cluster.startNode(1, ['--wsrep-new-cluster']);
        await cluster.rootSql(1, `CREATE USER IF NOT EXISTS ${GALERA_USER}@'127.0.0.1' IDENTIFIED BY '${GALERA_PASSWORD}'`);
        await cluster.rootSql(1, `GRANT ALL ON *.* TO ${GALERA_USER}@'127.0.0.1'`);
        await cluster.rootSql(1, `CREATE DATABASE IF NOT EXISTS ${GALERA_DB}`);
        await cluster.stopNode(1);
        cluster.cloneNode1();
        // All at once, at the same position, each told it was in a primary component with the
        // others (gvwstate.dat): Galera's own full-cluster restart, no donor, no state transfer.
        await Promise.all(cluster.nodes.map((x) => cluster.startNode(x.n)));
        opts.log?.(`galera: ${count} nodes Synced on SQL ports ${cluster.nodes.map((x) => x.sqlPort).join(', ')} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dir})`);
        return cluster;
      } catch (err) {
        // Its logs stay for a look; the next start removes the directory (its owner will be gone).
        await cluster.stop({ keepDir: true });
        // Someone outside the port claims took one of ours: another block.
        if (attempt < 3 && BIND_FAILURE.test(String((err as Error).message))) continue;
        throw err;
      }
    }
  }

  /** db_url for the tests' user (first node's host; db_hosts pick the node). */
  get url(): string {
    return `mysql://${GALERA_USER}:${GALERA_PASSWORD}@127.0.0.1:${this.nodes[0]!.sqlPort}/${GALERA_DB}`;
  }

  /** host:port of each node, in order (db_hosts). */
  get hosts(): string[] {
    return this.nodes.map((x) => `127.0.0.1:${x.sqlPort}`);
  }

  node(n: number): GaleraNode {
    const x = this.nodes[n - 1];
    if (!x) throw new Error(`no node ${n}`);
    return x;
  }

  /** SQL on node n as root over its socket; reads wait for the cluster (wsrep_sync_wait=1). */
  async sql(n: number, sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
    const c = await mysql.createConnection({ socketPath: path.join(this.node(n).dir, 'mysqld.sock'), user: 'root', database: GALERA_DB, connectTimeout: 5000 });
    try {
      await c.query('SET SESSION wsrep_sync_wait = 1');
      return (await c.query(sql, params))[0] as Array<Record<string, unknown>>;
    } finally {
      await c.end().catch(() => c.destroy());
    }
  }

  async status(n: number): Promise<Record<string, string>> {
    const rows = await this.rootSql(n, "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size','wsrep_cluster_status','wsrep_local_state_comment','wsrep_ready')");
    return Object.fromEntries(rows.map((r) => [String(r.Variable_name), String(r.Value)]));
  }

  kill9(n: number): Promise<void> {
    return this.signal(n, 'SIGKILL', true);
  }

  /** Freezes the node (its sockets stay open; nothing answers). */
  pause(n: number): Promise<void> {
    return this.signal(n, 'SIGSTOP', false);
  }

  resume(n: number): Promise<void> {
    return this.signal(n, 'SIGCONT', false);
  }

  /** Stops every node by PID (SIGTERM, then SIGKILL after 20 s) and removes the directory. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const x of [...this.nodes].reverse()) {
      const p = x.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) continue;
      p.kill('SIGCONT');
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      const late = setTimeout(() => p.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(late);
    }
    live.delete(this);
    this.block.release();
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  private async init(): Promise<void> {
    chmodSync(this.dir, 0o755);
    for (const x of this.nodes) {
      mkdirSync(path.join(x.dir, 'data'), { recursive: true });
      writeFileSync(path.join(this.dir, `n${x.n}.cnf`), nodeConfig(this.dir, x.n, this.block.base, this.nodes.length));
    }
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${SERVER_USER}:`, ...this.nodes.map((x) => x.dir)]);
    // Joiners get node 1's data by SST: only node 1 needs system tables.
    execFileSync(INSTALL_DB, ['--no-defaults', `--datadir=${path.join(this.nodes[0]!.dir, 'data')}`, `--user=${SERVER_USER}`, '--skip-test-db', '--auth-root-authentication-method=normal',
      '--innodb-log-file-size=16M', '--innodb-buffer-pool-size=32M'], { stdio: 'ignore', timeout: 120_000 });
  }

  /** SIGTERM to node n, and its exit. */
  async stopNode(n: number): Promise<void> {
    const p = this.node(n).proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGCONT');
    p.kill('SIGTERM');
    await exited;
  }

  /**
   * Node 1's stopped datadir for every other node, and in each a saved primary view of all the
   * nodes (gvwstate.dat, the file pc.recovery restores a whole cluster from), with its own id.
   */
  private cloneNode1(): void {
    const from = path.join(this.nodes[0]!.dir, 'data');
    for (const x of this.nodes.slice(1)) {
      rmSync(path.join(x.dir, 'data'), { recursive: true, force: true });
      execFileSync('cp', ['-a', from, path.join(x.dir, 'data')]);
    }
    const ids = this.nodes.map(() => randomUUID());
    for (const [i, x] of this.nodes.entries()) {
      const file = path.join(x.dir, 'data', 'gvwstate.dat');
      writeFileSync(file, [`my_uuid: ${ids[i]}`, '#vwbeg', `view_id: 3 ${ids[0]} 1`, 'bootstrap: 0', ...ids.map((id) => `member: ${id} 0`), '#vwend', ''].join('\n'));
      if (process.getuid?.() === 0) execFileSync('chown', [`${SERVER_USER}:`, file]);
    }
  }

  /** Starts node n (extra: --wsrep-new-cluster, --wsrep_start_position=...) and waits until Synced (or just answering). */
  async startNode(n: number, extra: string[] = [], until: 'Synced' | 'up' = 'Synced'): Promise<void> {
    const x = this.node(n);
    const logFile = path.join(x.dir, 'error.log');
    const logStart = existsSync(logFile) ? readFileSync(logFile).length : 0;
    const proc = spawn(MARIADBD, [`--defaults-file=${path.join(this.dir, `n${n}.cnf`)}`, ...extra], { stdio: 'ignore' });
    x.proc = proc;
    writeFileSync(path.join(x.dir, 'server.pid'), String(proc.pid));
    const t0 = performance.now();
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(logStart).split('\n').filter((l) => /ERROR|error|Aborting/.test(l)).slice(-8).join('\n') : '';
        throw new Error(`galera node ${n} exited while starting (code ${proc.exitCode}, signal ${proc.signalCode}); ${logFile}:\n${tail}`);
      }
      try {
        const st = await this.status(n);
        if (until === 'up' || st.wsrep_local_state_comment === 'Synced') return;
      } catch { /* not up yet */ }
      if (performance.now() - t0 > 90_000) throw new Error(`TIMED OUT after 90 s waiting for galera node ${n} to be ${until}; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** After a kill -9: the node's last committed position (for an IST restart). */
  recover(n: number): string {
    const x = this.node(n);
    const log = path.join(x.dir, 'recover.log');
    try {
      execFileSync(MARIADBD, [`--defaults-file=${path.join(this.dir, `n${n}.cnf`)}`, '--wsrep-recover', `--log-error=${log}`], { stdio: 'ignore', timeout: 60_000 });
    } catch { /* the position is in the log either way */ }
    const m = /Recovered position: (\S+)/.exec(readFileSync(log, 'utf8'));
    if (!m) throw new Error(`no recovered position in ${log}`);
    return m[1]!;
  }

  private async until(cond: () => Promise<boolean>, what: string): Promise<void> {
    const t0 = performance.now();
    for (;;) {
      try { if (await cond()) return; } catch { /* not answering yet */ }
      if (performance.now() - t0 > 60_000) throw new Error(`TIMED OUT after 60 s waiting for galera: ${what} (${this.dir})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async rootSql(n: number, sql: string): Promise<Array<Record<string, unknown>>> {
    const c = await mysql.createConnection({ socketPath: path.join(this.node(n).dir, 'mysqld.sock'), user: 'root', connectTimeout: 2000 });
    try {
      return (await c.query(sql))[0] as Array<Record<string, unknown>>;
    } finally {
      await c.end().catch(() => c.destroy());
    }
  }

  private async signal(n: number, sig: NodeJS.Signals, waitExit: boolean): Promise<void> {
    const p = this.node(n).proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) throw new Error(`galera node ${n} is not running`);
    const exited = waitExit ? new Promise<void>((r) => p.once('exit', () => r())) : Promise.resolve();
    p.kill(sig);
    await exited;
  }
}

// A test that ends without stopping its cluster (a failure, a timeout) does not leave servers behind.
const live = new Set<GaleraCluster>();
process.on('exit', () => {
  for (const c of live) for (const x of c.nodes) if (x.proc && x.proc.exitCode === null) { try { x.proc.kill('SIGKILL'); } catch { /* gone */ } }
});
