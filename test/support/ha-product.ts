// The HA product tests' harness (test/ha/{product,lines,faults,relay}.test.ts): the topology of
// `npm run ha` started before a file's tests and stopped after them, phones registered at a named
// proxy (stopped at the end), and JSON-RPC to whichever node leads.
import t from 'tap';
import { DOMAIN, HaTopology, type TopologyOptions } from '../../scripts/ha/topology.js';
import { Phone } from './sip-phone.js';

export type RpcAnswer = { result?: any; error?: { code: number; message: string } };

export interface HaProduct {
  /** The running topology (set once the file's t.before has run). */
  readonly ha: HaTopology;
  /** A started phone of `user` at proxy `proxy` (A, B, …). */
  phone(name: string, user: string, proxy: string): Promise<Phone>;
  /** A JSON-RPC command to the leader (waiting up to 30 s for one). */
  rpc(method: string, params?: unknown): Promise<RpcAnswer>;
}

export function haProduct(opts: Omit<TopologyOptions, 'log'> = {}): HaProduct {
  let ha: HaTopology | undefined;
  const phones: Phone[] = [];
  const running = (): HaTopology => ha ?? (() => { throw new Error('the HA topology is not started'); })();
  t.before(async () => {
    ha = await HaTopology.start({ ...opts, log: (m) => t.comment(m) });
  });
  t.teardown(async () => {
    for (const p of phones) p.stop();
    await ha?.stop();
  });
  return {
    get ha() { return running(); },
    async phone(name, user, proxy) {
      const p = new Phone(name, user, DOMAIN, running().proxy(proxy).sipPort);
      await p.start();
      phones.push(p);
      return p;
    },
    async rpc(method, params = {}) {
      const leader = await running().leader(30_000);
      const res = await fetch(`http://127.0.0.1:${leader.httpPort}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
      return (await res.json()) as RpcAnswer;
    },
  };
}
