// Where a UDP datagram on the loopback went: the kernel counts, per socket, the datagrams it
// dropped because the socket's receive buffer was full (/proc/net/udp, column "drops"), and in
// total (/proc/net/snmp, Udp RcvbufErrors). A test that lost a request reads these to say
// whether the proxy's socket, its own, or neither dropped it.
import { readFileSync } from 'node:fs';

/** Drops per local UDP port on 127.0.0.1 or 0.0.0.0 (IPv4), summed over the sockets bound to it. */
export function udpDrops(): Map<number, number> {
  const drops = new Map<number, number>();
  let text = '';
  try { text = readFileSync('/proc/net/udp', 'utf8'); } catch { return drops; }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    const [addr, port] = f[1]!.split(':');
    if (addr !== '0100007F' && addr !== '00000000') continue;
    const p = parseInt(port!, 16);
    drops.set(p, (drops.get(p) ?? 0) + Number(f[12]));
  }
  return drops;
}

/** The machine's UDP counters (/proc/net/snmp): InDatagrams, RcvbufErrors, InErrors... */
export function udpCounters(): Record<string, number> {
  let text = '';
  try { text = readFileSync('/proc/net/snmp', 'utf8'); } catch { return {}; }
  const lines = text.split('\n').filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) return {};
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
}

/** A snapshot now; `since()` tells what the given ports (and the machine) dropped after it. */
export function dropMeter(ports: Record<string, number>): { since: () => { ports: Record<string, number>; machineRcvbufErrors: number } } {
  const before = udpDrops();
  const machine = udpCounters().RcvbufErrors ?? 0;
  return {
    since: () => {
      const now = udpDrops();
      return {
        ports: Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, (now.get(port) ?? 0) - (before.get(port) ?? 0)])),
        machineRcvbufErrors: (udpCounters().RcvbufErrors ?? 0) - machine,
      };
    },
  };
}
