// Test phones as hosted-PBX operators meet them: behind NAT (their Via and Contact name a private
// address the proxy cannot reach; only where their packets come from works) and on TCP or TLS
// (everything to them must come over the connection they opened). The SIP behaviour is the
// scripted Phone's (sip-phone.ts); this file only changes what goes on the wire and how: the
// phone's own Via and Contact say the private address, and a stream phone sends and receives
// over one connection to the proxy. A UDP phone retransmits as a real one does; a stream phone
// does not need to (TCP does).
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { Phone } from './sip-phone.js';

export type PhoneTransport = 'udp' | 'tcp' | 'tls';

/**
 * A listener on an address that nothing may reach: a NATed phone's private Contact. It takes UDP
 * and TCP on one port and records every datagram and connection (a TLS handshake is a TCP
 * connection first): a proxy that sends to a Contact instead of the flow shows up here. A
 * loopback address other than the phone's (127.0.0.5) plays the private one: a real private
 * range (10.0.0.5) would send a broken proxy's traffic off this machine, where here a listener
 * proves that nothing arrived.
 */
export class Trap {
  readonly hits: string[] = [];
  port = 0;
  private readonly udp = dgram.createSocket('udp4');
  private readonly tcp = net.createServer((c) => {
    this.hits.push(`tcp connection from ${c.remoteAddress}:${c.remotePort}`);
    c.destroy();
  });

  constructor(readonly host = '127.0.0.5') {}

  async start(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await new Promise<void>((resolve, reject) => {
        this.tcp.once('error', reject);
        this.tcp.listen(0, this.host, () => { this.tcp.off('error', reject); resolve(); });
      });
      this.port = (this.tcp.address() as net.AddressInfo).port;
      const bound = await new Promise<boolean>((resolve) => {
        this.udp.once('error', () => resolve(false));
        this.udp.bind(this.port, this.host, () => resolve(true));
      });
      if (bound) break;
      await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
      if (attempt === 10) throw new Error(`trap: no port free for both UDP and TCP on ${this.host}`);
    }
    this.udp.on('message', (buf, rinfo) => this.hits.push(`udp from ${rinfo.address}:${rinfo.port}: ${buf.toString('utf8').split('\r\n')[0]}`));
  }

  stop(): void {
    this.tcp.close();
    try { this.udp.close(); } catch { /* not bound */ }
  }
}

type Receiver = { receive(raw: string, rinfo: { address: string; port: number; family: string; size: number }): void };

/**
 * A Phone behind NAT and/or on TCP or TLS. `privateAddress` is what its Via and Contact say (a
 * Trap's address: nothing there answers); without it a stream phone advertises its connection's
 * own address, as phones that know it do.
 */
export class NatPhone extends Phone {
  /** Every connection this phone opened to the proxy, in order. */
  readonly connections: net.Socket[] = [];
  private stream: net.Socket | undefined;
  private inbox = Buffer.alloc(0);

  /**
   * SIP Outbound (RFC 5626): its Contact URI carries ;ob, and its REGISTER says
   * `Supported: outbound` with +sip.instance and reg-id on the Contact.
   */
  outbound: { instance: string; regId: number } | undefined;

  constructor(name: string, user: string, domain: string, readonly transport: PhoneTransport, proxyPort: number,
    readonly privateAddress?: { host: string; port: number }) {
    super(name, user, domain, proxyPort);
    // A UDP phone resends until answered, a stream phone leaves that to TCP (RFC 3261 17.1.1.2).
    this.retransmit = transport === 'udp';
  }

  override async start(): Promise<void> {
    await super.start();
    if (this.transport !== 'udp') await this.connect();
  }

  override stop(): void {
    this.stream?.destroy();
    super.stop();
  }

  /** Opens a new connection to the proxy (after closeConnection: a phone that reconnects). */
  async connect(): Promise<void> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = this.transport === 'tls'
        ? tls.connect({ host: '127.0.0.1', port: this.proxyPort, rejectUnauthorized: false }, () => resolve(s))
        : net.connect({ host: '127.0.0.1', port: this.proxyPort }, () => resolve(s));
      s.once('error', reject);
    });
    socket.on('error', () => undefined);
    this.inbox = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => this.read(socket, chunk));
    this.stream = socket;
    this.connections.push(socket);
  }

  /** The phone's connection goes away (the phone or its NAT dropped it); resolves once it is closed. */
  async closeConnection(): Promise<void> {
    const s = this.stream;
    this.stream = undefined;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => { s.once('close', () => resolve()); s.destroy(); });
  }

  /** The connection's local port (what the proxy sees as the source port). */
  get streamPort(): number {
    return this.stream?.localPort ?? 0;
  }

  override get contact(): string {
    const t = `${this.transport === 'udp' ? '' : `;transport=${this.transport}`}${this.outbound ? ';ob' : ''}`;
    if (this.privateAddress) return `sip:${this.user}@${this.privateAddress.host}:${this.privateAddress.port}${t}`;
    return this.transport === 'udp' ? super.contact : `sip:${this.user}@127.0.0.1:${this.streamPort}${t}`;
  }

  /** What the phone sends: its own Via says its transport and private address; a stream phone writes on its connection. */
  override send(raw: string, port = this.proxyPort): void {
    let out = raw;
    if (!raw.startsWith('SIP/2.0 ')) {
      const via = this.privateAddress ?? { host: '127.0.0.1', port: this.transport === 'udp' ? this.port : this.streamPort };
      out = raw.replace(`\r\nVia: SIP/2.0/UDP ${this.host}:${this.port};`, `\r\nVia: SIP/2.0/${this.transport.toUpperCase()} ${via.host}:${via.port};`);
      if (this.outbound && raw.startsWith('REGISTER ')) {
        out = out.replace(`\r\nContact: <${this.contact}>\r\n`,
          `\r\nContact: <${this.contact}>;+sip.instance="<${this.outbound.instance}>";reg-id=${this.outbound.regId}\r\nSupported: outbound, path\r\n`);
      }
    }
    if (this.transport === 'udp') super.send(out, port);
    else if (this.stream && !this.stream.destroyed) this.stream.write(out);
  }

  /** Splits the byte stream into SIP messages by Content-Length (RFC 3261 18.3); CRLF keep-alives are skipped. */
  private read(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.stream) return;
    this.inbox = Buffer.concat([this.inbox, chunk]);
    for (;;) {
      while (this.inbox.length >= 2 && this.inbox[0] === 13 && this.inbox[1] === 10) this.inbox = this.inbox.subarray(2);
      const end = this.inbox.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.inbox.subarray(0, end).toString('utf8');
      const length = Number(/^(?:content-length|l)[ \t]*:[ \t]*(\d+)/im.exec(head)?.[1] ?? 0);
      if (this.inbox.length < end + 4 + length) return;
      const raw = this.inbox.subarray(0, end + 4 + length).toString('utf8');
      this.inbox = this.inbox.subarray(end + 4 + length);
      (this as unknown as Receiver).receive(raw, { address: socket.remoteAddress ?? '127.0.0.1', port: socket.remotePort ?? this.proxyPort, family: 'IPv4', size: raw.length });
    }
  }
}

/** A started NatPhone with a Trap on its private address; `stop` ends both. */
export async function natPhone(name: string, user: string, domain: string, transport: PhoneTransport, proxyPort: number,
  o: { behindNat?: boolean } = {}): Promise<{ phone: NatPhone; trap: Trap; stop: () => void }> {
  const trap = new Trap();
  await trap.start();
  const phone = new NatPhone(name, user, domain, transport, proxyPort, o.behindNat === false ? undefined : { host: trap.host, port: trap.port });
  await phone.start();
  return { phone, trap, stop: () => { phone.stop(); trap.stop(); } };
}
