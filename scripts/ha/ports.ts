// Fixed TCP ports for test servers, below the ephemeral range (32768-60999) so no outgoing
// connection of anyone on the box can hold them. Blocks of 16 ports, each claimed by a lock file
// naming its process, so test processes running side by side never pick the same block; a block
// whose lock names a dead process is free again. A server that still fails to bind (someone
// outside this scheme) is retried by its starter on another block.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import net from 'node:net';

const FIRST = 20_000;
const BLOCK = 16;
const BLOCKS = 600; // 20000 .. 29599
const LOCK_DIR = '/tmp/sca-test-ports';
const held = new Set<string>();

process.on('exit', () => {
  for (const f of held) try { unlinkSync(f); } catch { /* gone already */ }
});

export interface PortBlock {
  /** base .. base+15 */
  readonly base: number;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lock(base: number): string | undefined {
  const file = `${LOCK_DIR}/${base}`;
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      held.add(file);
      return file;
    } catch {
      let owner = NaN;
      try { owner = Number(readFileSync(file, 'utf8')); } catch { /* raced with its release */ }
      if (Number.isFinite(owner) && owner > 0 && alive(owner)) return undefined;
      try { unlinkSync(file); } catch { /* someone else cleaned it */ }
    }
  }
  return undefined;
}

/** Whether nothing listens on the port right now (a hint only: the real bind decides). */
function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A block of 16 ports nobody else on the box has claimed, whose ports are free now. */
export async function claimPortBlock(): Promise<PortBlock> {
  mkdirSync(LOCK_DIR, { recursive: true });
  const start = (process.pid * 7919 + Date.now()) % BLOCKS;
  for (let i = 0; i < BLOCKS; i++) {
    const base = FIRST + ((start + i) % BLOCKS) * BLOCK;
    const file = lock(base);
    if (!file) continue;
    const release = () => { held.delete(file); try { unlinkSync(file); } catch { /* gone */ } };
    let allFree = true;
    for (let p = base; p < base + BLOCK && allFree; p++) allFree = await free(p);
    if (allFree) return { base, release };
    release();
  }
  throw new Error(`no free block of ${BLOCK} ports in ${FIRST}-${FIRST + BLOCKS * BLOCK - 1}`);
}
