// Pulse billing and longest-prefix rating, pure.
import fc from 'fast-check';
import t from 'tap';
import { affordableSeconds, billableSeconds, callCost, destinationOf, RateTable, type Rate } from '../../../service/cc/rating.js';
import { propertySeed } from '../../support/fc-seed.js';

propertySeed(t);

const rate = (o: Partial<Rate> = {}): Rate => ({ plan: 'default', prefix: '', connectFee: 0, pricePerMinute: 60, initialPulse: 1, nextPulse: 1, ...o });

t.test('pulses a/b: the first a seconds, then b-second steps; nothing for 0 s', async (t) => {
  const p60 = { initialPulse: 60, nextPulse: 60 };
  t.same([0, 1, 59, 60, 61, 120, 121].map((d) => billableSeconds(d, p60)), [0, 60, 60, 60, 120, 120, 180]);
  const p306 = { initialPulse: 30, nextPulse: 6 };
  t.same([1, 30, 31, 36, 37].map((d) => billableSeconds(d, p306)), [30, 30, 36, 36, 42]);
  t.same([1, 2, 59].map((d) => billableSeconds(d, { initialPulse: 1, nextPulse: 1 })), [1, 2, 59]);
});

t.test('cost: connect fee plus billable seconds at the price per minute, rounded up to a minor unit', async (t) => {
  t.equal(callCost(0, rate({ connectFee: 10 })), 0, 'an unanswered call costs nothing, not even the connect fee');
  t.equal(callCost(31, rate({ connectFee: 10, pricePerMinute: 12, initialPulse: 30, nextPulse: 6 })), 10 + Math.ceil((36 * 12) / 60));
  t.equal(callCost(1, rate({ pricePerMinute: 1 })), 1, 'one second of 1/min rounds up to one unit');
  t.equal(callCost(90, rate({ pricePerMinute: 100, initialPulse: 60, nextPulse: 60 })), 200);
});

t.test('affordable seconds: the end of the last whole pulse a budget covers, never more', async (t) => {
  t.equal(affordableSeconds(60, rate({ pricePerMinute: 60 }), 1e9), 60, '60 units at 1 unit/s');
  t.equal(affordableSeconds(59, rate({ pricePerMinute: 60, initialPulse: 60, nextPulse: 60 }), 1e9), 0, 'not even the first pulse');
  t.equal(affordableSeconds(10, rate({ connectFee: 10, pricePerMinute: 60 }), 1e9), 0, 'the connect fee alone');
  t.equal(affordableSeconds(5, rate({ pricePerMinute: 0 }), 3600), 3600, 'a free destination: the cap');
  t.equal(affordableSeconds(100, rate({ pricePerMinute: 60 }), 30), 30, 'capped');
  fc.assert(fc.property(fc.nat(100_000), fc.nat(1000), fc.integer({ min: 1, max: 10_000 }), fc.constantFrom([60, 60], [30, 6], [1, 1], [60, 1]), (budget, fee, ppm, [a, b]) => {
    const r = rate({ connectFee: fee, pricePerMinute: ppm, initialPulse: a!, nextPulse: b! });
    const s = affordableSeconds(budget, r, 1e9);
    if (s > 0 && callCost(s, r) > budget) throw new Error(`${s} s cost ${callCost(s, r)} > ${budget}`);
    // one more second would need another pulse the budget cannot pay
    if (callCost(s + 1, r) <= budget && billableSeconds(s + 1, r) > billableSeconds(s, r)) throw new Error(`${s + 1} s is affordable too`);
  }), { numRuns: 2000 });
  t.pass('never more than the budget pays, never less than it could');
});

t.test('the longest prefix of the destination wins; the empty prefix is the fallback', async (t) => {
  const table = new RateTable([rate({ prefix: '31', pricePerMinute: 5 }), rate({ prefix: '316', pricePerMinute: 20 }), rate({ prefix: '', pricePerMinute: 99 })]);
  t.equal(table.find('31650222333')?.prefix, '316');
  t.equal(table.find('3120')?.prefix, '31');
  t.equal(table.find('44')?.prefix, '', 'fallback');
  t.equal(new RateTable([rate({ prefix: '1' })]).find('44'), undefined);
  t.equal(destinationOf('+31650'), '31650', 'a leading + is not part of the number');
});
