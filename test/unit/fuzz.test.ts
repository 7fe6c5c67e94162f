// Seeded fuzzing (the seed printed, FC_SEED replays it) of every input (a few thousand cases; scripts/bench/fuzz.ts runs 100k): evapi
// frames through the real link and engines, RPC params, configuration. No exception escapes,
// every request is answered, and rejected input changes nothing.
import fc from 'fast-check';
import t from 'tap';
import { checkConfig, configOverrides, evapiFrame, rpcCall, rpcTarget } from '../support/fuzz.js';
import { propertySeed } from '../support/fc-seed.js';
import { linkTarget } from '../support/fuzz-link.js';

const SEED = propertySeed(t);

t.test('evapi frames: every request answered, the link and the service live on', async (t) => {
  const target = await linkTarget();
  t.teardown(() => target.close());
  const frames = fc.sample(evapiFrame, { numRuns: 2000, seed: SEED });
  const r = await target.feed(frames);
  t.equal(r.answered, r.expected, `${r.expected} requests, each answered once`);
  t.ok(r.connected, 'still connected');
  const junk = fc.sample(fc.oneof(fc.string({ maxLength: 100 }), fc.constant('null'), fc.constant('[null]'), fc.constant('{"method":"sca.subscribe","id":1,"params":{"msg":5}}')), { numRuns: 300, seed: SEED });
  const rejected = await target.feed(junk);
  t.equal(rejected.answered, rejected.expected);
  t.notOk(rejected.stateChanged, 'rejected frames changed no state');
});

t.test('RPC params: a result or a fault with a message, never an exception; a fault changes nothing', async (t) => {
  const target = rpcTarget();
  let faults = 0;
  await fc.assert(fc.asyncProperty(rpcCall, async ([name, params]) => {
    const r = await target.run(name, params);
    if (!r.ok) {
      faults++;
      if (r.changedState) throw new Error(`${name} ${JSON.stringify(params)}: a fault that changed state`);
    }
  }), { numRuns: 3000, seed: SEED });
  t.ok(faults > 0, `${faults} of 3000 refused, each cleanly`);
});

t.test('configuration: accepted or refused with a reason, never an exception', async (t) => {
  fc.assert(fc.property(configOverrides, (o) => checkConfig(o)), { numRuns: 3000, seed: SEED });
  t.pass('3000 configurations');
});
