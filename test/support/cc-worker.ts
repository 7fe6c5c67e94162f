// Plays one worker of Kamailio's call_control.so on a unix socket: one request at a time, the
// reply read until a chunk holds CRLF (call_control.c's send_command), as bytes on the wire.
import net from 'node:net';
import { until } from './wait.js';

export const ccInit = (callid: string, from = `"Alice" <sip:alice@example.com>;tag=t-${callid}`): string =>
  `init\r\nruri: sip:bob@example.com\r\ndiverter: None\r\nsourceip: 192.0.2.10\r\ncallid: ${callid}\r\nfrom: ${from}\r\nfromtag: t-${callid}\r\nsip_application: audio\r\n\r\n`;
export const ccStart = (callid: string, dialog = '1:2'): string => `start\r\ncallid: ${callid}\r\ndialogid: ${dialog}\r\n\r\n`;
export const ccStop = (callid: string): string => `stop\r\ncallid: ${callid}\r\n\r\n`;

export class CcWorker {
  private received = '';
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => (this.received += c.toString('utf8')));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static connect(file: string): Promise<CcWorker> {
    return new Promise((resolve, reject) => {
      const s = net.connect(file);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new CcWorker(s));
      });
    });
  }

  /** Sends one request; resolves with the reply line (without CRLF) and how long it took (ms). */
  async ask(request: string, timeoutMs = 5000): Promise<{ reply: string; ms: number }> {
    const from = this.received.length;
    const t0 = performance.now();
    this.socket.write(request);
    await until(() => this.received.slice(from).includes('\r\n') || this.closed, timeoutMs, `a reply to ${request.split('\r\n')[0]}`, 2);
    const got = this.received.slice(from);
    if (!got.includes('\r\n')) throw new Error(`connection closed before a reply to ${request.split('\r\n')[0]}`);
    return { reply: got.slice(0, got.indexOf('\r\n')), ms: performance.now() - t0 };
  }

  close(): void {
    this.socket.end();
  }
}
