// Ports for the processes tests start: from the fixed range below the ephemeral one, and a start
// that finds its port taken meanwhile is made again on another.
import net from 'node:net';
import t from 'tap';
import { EXTERNAL_PORTS, externalPorts, onFreePorts } from '../../support/ports.js';

const listen = (port: number): Promise<net.Server> => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.once('error', reject);
  s.listen(port, '127.0.0.1', () => resolve(s));
});

t.test('distinct ports below the ephemeral range, each free', async (t) => {
  const ports = await externalPorts(['tcp', 'udp', 'tcp', 'udp']);
  t.equal(new Set(ports).size, 4);
  t.ok(ports.every((p) => p >= EXTERNAL_PORTS.from && p < EXTERNAL_PORTS.to && p < 32768), ports.join(', '));
  const s = await listen(ports[0]!);
  t.teardown(() => s.close());
});

t.test('a start whose port was taken meanwhile is made again on other ports; another failure is not', async (t) => {
  const tried: number[] = [];
  const thief: net.Server[] = [];
  t.teardown(() => { for (const s of thief) s.close(); });
  const server = await onFreePorts(['tcp'], async ([port]) => {
    tried.push(port!);
    if (tried.length === 1) thief.push(await listen(port!)); // someone else takes it first
    return listen(port!);
  });
  t.teardown(() => server.close());
  t.equal(tried.length, 2, 'a second attempt');
  t.not(tried[0], tried[1], 'on another port');
  t.equal((server.address() as net.AddressInfo).port, tried[1]);
  let calls = 0;
  await t.rejects(onFreePorts(['tcp'], async () => { calls++; throw new Error('config error'); }), /config error/);
  t.equal(calls, 1, 'any other error at once');
});
