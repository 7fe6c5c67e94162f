// Ports for the processes a test starts (Kamailio, the service, MariaDB). Binding port 0, closing
// and handing the number on races every connect() on the machine, since the kernel gives the same
// ephemeral range (32768-60999) to outgoing sockets. These come from a fixed range below it,
// which only other tests choosing the same way use; a start that still finds one taken (bind
// failure) is retried on other ports. A socket the test itself owns binds port 0 and keeps it.
import dgram from 'node:dgram';
import net from 'node:net';

export const EXTERNAL_PORTS = { from: 20000, to: 32000 } as const;

export type PortKind = 'tcp' | 'udp';

async function free(port: number, kind: PortKind): Promise<boolean> {
  if (kind === 'udp') {
    const s = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } });
    return ok;
  }
  const s = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise<void>((r) => s.close(() => r()));
  return ok;
}

/** Distinct ports from the range, each free right now for its kind (TCP ports also free for UDP, and the reverse, to be safe). */
export async function externalPorts(kinds: readonly PortKind[]): Promise<number[]> {
  const chosen: number[] = [];
  for (const kind of kinds) {
    for (let i = 0; ; i++) {
      if (i > 500) throw new Error(`no free ${kind} port in ${EXTERNAL_PORTS.from}-${EXTERNAL_PORTS.to}`);
      const port = EXTERNAL_PORTS.from + Math.floor(Math.random() * (EXTERNAL_PORTS.to - EXTERNAL_PORTS.from));
      if (chosen.includes(port)) continue;
      if (await free(port, kind) && await free(port, kind === 'tcp' ? 'udp' : 'tcp')) {
        chosen.push(port);
        break;
      }
    }
  }
  return chosen;
}

/** What a failed start says when a port was taken after all. */
export const isBindFailure = (text: string): boolean => /EADDRINUSE|Address already in use|can.?t bind|cannot bind|could not bind|bind.{0,40}fail/i.test(text);

/**
 * Starts something on fresh ports, again on other ports when the start failed because one was
 * taken meanwhile (up to `attempts` times); any other failure is thrown at once.
 */
export async function onFreePorts<T>(kinds: readonly PortKind[], start: (ports: number[]) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = await externalPorts(kinds);
    try {
      return await start(ports);
    } catch (err) {
      const e = err as Error & { stderr?: string; stdout?: string };
      const text = `${e.message}\n${e.stderr ?? ''}\n${e.stdout ?? ''}`;
      if (attempt >= attempts || !isBindFailure(text)) throw err;
      process.stderr.write(`ports ${ports.join(', ')}: one was taken (${/EADDRINUSE|Address already in use/i.exec(text)?.[0]}); trying others\n`);
    }
  }
}
