// An in-process TCP server that plays Kamailio's evapi side: accepts the service, collects the
// decoded messages (answering pings unless told to play dead).
import net from 'node:net';
import { NetstringDecoder, encodeNetstring } from '../../service/kamailio/netstring.js';
import { waitUntil } from './wait.js';

export interface FakeKamailio {
  port: number;
  received: unknown[];
  /** Raw frame sizes received, in bytes of payload. */
  sizes: number[];
  hellos: () => number;
  pings: () => number;
  /** link.ack frames: the service answers each pong that it has nothing else to answer with. */
  acks: () => number;
  /** Bytes the service credited (link.credit): how much of what Kamailio sent it has read. */
  credited: () => number;
  /** The params of the last link.hello ({node, epoch}). */
  lastHello: () => unknown;
  send: (o: unknown) => void;
  sendRaw: (s: string) => void;
  drop: () => void;
  close: () => Promise<void>;
  connections: () => number;
  next: (n: number) => Promise<unknown[]>;
  /** Stop answering pings (a hung Kamailio); waking up answers the pings it held back. */
  playDead: (dead: boolean) => void;
  /** Payload bytes received so far. */
  bytes: () => number;
  /** What its pongs say of its stalls (times it stopped writing to a service that fell behind). */
  setStalls: (n: number) => void;
}

/** `proxy`: the PROXY_ID it answers hellos with. */
export async function fakeKamailio(opts: { proxy?: string } = {}): Promise<FakeKamailio> {
  const received: unknown[] = [];
  const sizes: number[] = [];
  let hellos = 0;
  let pings = 0;
  let acks = 0;
  let credited = 0;
  let lastHello: unknown;
  let dead = false;
  let held: string[] = [];
  let bytes = 0;
  let socket: net.Socket | undefined;
  let connections = 0;
  let stalls = 0;
  // As link.cfg answers a ping.
  const pong = (id: string): Buffer => encodeNetstring(JSON.stringify({ jsonrpc: '2.0', result: { pong: true, stalls }, id }));
  const server = net.createServer((s) => {
    connections++;
    socket = s;
    const d = new NetstringDecoder();
    s.on('error', () => undefined);
    s.on('data', (c) => {
      for (const raw of d.push(c).frames) {
        sizes.push(Buffer.byteLength(raw));
        bytes += Buffer.byteLength(raw);
        const f = JSON.parse(raw) as { method?: string; id?: string; params?: unknown };
        if (f.method === 'link.hello') {
          hellos++; // asks Kamailio to replay what it queued
          lastHello = f.params;
          // Kamailio's link.cfg answers a hello that has an id with its PROXY_ID.
          if (f.id !== undefined) s.write(encodeNetstring(JSON.stringify({ jsonrpc: '2.0', result: { proxy: opts.proxy ?? 'fake', epoch: (f.params as { epoch?: number } | undefined)?.epoch ?? 0 }, id: f.id })));
        }
        else if (f.method === 'link.ack') acks++; // answers a pong: Kamailio drops it
        else if (f.method === 'link.credit') credited += Number((f.params as { read?: number } | undefined)?.read ?? 0); // what the service has read
        else if (f.method === 'link.ping') {
          pings++;
          if (!dead) s.write(pong(String(f.id)));
          else held.push(String(f.id));
        } else received.push(f);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    sizes,
    hellos: () => hellos,
    pings: () => pings,
    acks: () => acks,
    credited: () => credited,
    lastHello: () => lastHello,
    send: (o) => socket!.write(encodeNetstring(JSON.stringify(o))),
    sendRaw: (s) => socket!.write(encodeNetstring(s)),
    drop: () => socket?.destroy(),
    close: () => new Promise((r) => { socket?.destroy(); server.close(() => r()); }),
    connections: () => connections,
    next: async (n) => {
      await until(() => received.length >= n, 3000, `${n} messages from the service (${received.length} came)`);
      return received;
    },
    playDead: (d) => {
      dead = d;
      if (!d) for (const id of held.splice(0)) socket?.write(pong(id));
    },
    bytes: () => bytes,
    setStalls: (n) => { stalls = n; },
  };
}

/** Waits until `cond` holds; fails loudly (with `what`) if it does not within `ms`. */
export const until = async (cond: () => boolean, ms = 3000, what = 'the condition'): Promise<void> => {
  await waitUntil(what, () => cond(), { timeoutMs: ms });
};
