// A TCP proxy in front of a database for partition tests: it forwards, and on blackhole() holds
// every byte both ways (and every new connection) without closing anything, as a network that
// silently drops packets does: TCP keepalives are answered by this proxy, so only timeouts notice.
// heal() lets the held bytes through; reset() drops every connection at once.
import net from 'node:net';
import { claimPortBlock, type PortBlock } from '../../scripts/ha/ports.js';

export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private holding = false;
  private constructor(private readonly server: net.Server, private readonly block: PortBlock, readonly port: number) {}

  /** Listens on a port of its own (another block if that one is taken after all). */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    for (let attempt = 1; ; attempt++) {
      const block = await claimPortBlock();
      let proxy: TcpProxy | undefined;
      const server = net.createServer((client) => proxy?.accept(client, target));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port: block.base, host: '127.0.0.1', exclusive: true }, () => resolve());
        });
      } catch (err) {
        block.release();
        if (attempt >= 5) throw err;
        continue;
      }
      proxy = new TcpProxy(server, block, block.base);
      return proxy;
    }
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections open through it now. */
  get connections(): number {
    return this.sockets.size / 2;
  }

  blackhole(): void {
    this.holding = true;
    for (const s of this.sockets) s.pause();
  }

  heal(): void {
    this.holding = false;
    for (const s of this.sockets) s.resume();
  }

  reset(): void {
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.block.release();
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    const upstream = net.connect(target.port, target.host);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      this.sockets.add(from);
      from.on('data', (d) => to.write(d));
      from.on('error', () => undefined);
      from.on('close', () => { this.sockets.delete(from); to.destroy(); });
      if (this.holding) from.pause();
    }
  }
}
