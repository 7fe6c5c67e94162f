// The call-control socket stays bounded whatever clients do: connections beyond the cap are
// closed at once, a request left unfinished is dropped with its connection, and the server keeps
// serving whole requests. (1,000 one-byte connections once took the service from 95 to 300 MiB.)
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { CallControlSocketServer } from '../../../service/kamailio/call-control-socket.js';
import { waitUntil } from '../../support/wait.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

const until = (what: string, probe: () => boolean, timeoutMs = 5000): Promise<true> => waitUntil(what, probe, { timeoutMs });

t.test('a cap on connections, a deadline on unfinished requests, and whole requests still served', async (t) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'cc-limits-')), 'cc.sock');
  let clientsSeen = 0;
  const server = new CallControlSocketServer({
    path: file, handle: () => 'No limit', log: quiet, maxConnections: 50, requestTimeoutMs: 3000, onClients: (n) => { clientsSeen = Math.max(clientsSeen, n); },
  });
  await server.listen();
  t.teardown(() => server.close());
  const closed: boolean[] = [];
  const sockets = Array.from({ length: 300 }, (_, i) => {
    const s = net.connect(file);
    closed[i] = false;
    s.on('error', () => undefined);
    s.on('close', () => { closed[i] = true; });
    s.on('connect', () => s.write('i')); // one byte of a request that never ends
    return s;
  });
  await until('250 clients refused', () => closed.filter(Boolean).length >= 250);
  t.equal(server.connections, 50, "50 held, the other 250 closed at once");
  t.equal(clientsSeen, 50, 'the cap was reached, not passed');
  await until('every unfinished request dropped with its connection', () => closed.every(Boolean));
  t.equal(server.connections, 0, 'none left');
  const s = net.connect(file);
  t.teardown(() => s.destroy());
  const reply = await new Promise<string>((resolve) => {
    s.on('data', (d) => resolve(d.toString()));
    s.write('init\r\ncallid: a\r\nfrom: <sip:x@y>;tag=1\r\nfromtag: 1\r\nruri: sip:1@y\r\n\r\n');
  });
  t.equal(reply, 'No limit\r\n', 'a whole request is served after all that');
  const slow = net.connect(file);
  slow.on('error', () => undefined);
  let slowClosed = false;
  slow.on('close', () => { slowClosed = true; });
  await new Promise((r) => slow.on('connect', r));
  slow.write('init\r\ncallid: b\r\n');
  await until('an unfinished request is dropped', () => slowClosed);
  t.pass('its connection closed');
});
