// What operators and scripts hand call control: rate tables as CSV, P-Call-Control headers,
// account names.
import t from 'tap';
import { billingParty, normalizeAccount } from '../../../service/cc/accounts.js';
import { parsePCallControl } from '../../../service/cc/p-call-control.js';
import { parseRatesCsv } from '../../../service/cc/rates-csv.js';

t.test('a rate CSV loads whole, or names the first bad line and loads nothing', async (t) => {
  const good = parseRatesCsv('prefix,connect_fee,price_per_minute,initial_pulse,next_pulse\n# mobile\n316,10,20,30,6\n31,0,5,60,60\n\n', 'p1');
  t.same(good.ok && good.rates.map((r) => [r.plan, r.prefix, r.connectFee, r.pricePerMinute, r.initialPulse, r.nextPulse]), [['p1', '316', 10, 20, 30, 6], ['p1', '31', 0, 5, 60, 60]]);
  t.same(parseRatesCsv('31,0,5,60\n', 'p'), { ok: false, line: 1, error: 'expected 5 fields (prefix,connect_fee,price_per_minute,initial_pulse,next_pulse), got 4' });
  t.match(parseRatesCsv('31,0,5,60,60\n32,0,x,60,60\n', 'p'), { ok: false, line: 2, error: /price_per_minute "x"/ });
  t.match(parseRatesCsv('31,0,5,60,60\n31,0,5,60,60\n', 'p'), { ok: false, line: 2, error: /twice/ });
  t.match(parseRatesCsv('+31,0,5,60,60\n', 'p'), { ok: false, line: 1, error: /digits/ });
  t.match(parseRatesCsv('31,0,5,0,60\n', 'p'), { ok: false, error: /at least 1 second/ });
  t.match(parseRatesCsv('31,-1,5,60,60\n', 'p'), { ok: false, error: /connect_fee/ });
});

t.test('P-Call-Control in the SEMS style: account, parallel limit and timer; the lowest limit wins', async (t) => {
  t.same(parsePCallControl('cc_prepaid;uuid=joe@example.com, cc_pcalls;uuid=joe@example.com;max_calls=10, cc_call_timer;timer=600'),
    { account: 'joe@example.com', maxCalls: 10, maxDuration: 600 });
  t.same(parsePCallControl('cc_pcalls;uuid=a@b;max_calls=5, cc_pcalls;max_calls=3'), { account: 'a@b', maxCalls: 3, maxDuration: undefined });
  t.same(parsePCallControl('ctl;RURI=sip:x@y, cc_other;uuid=z'), { account: undefined, maxCalls: undefined, maxDuration: undefined }, 'other modules are ignored');
  t.match(parsePCallControl('cc_pcalls;uuid=a@b, cc_prepaid;uuid=c@d'), { error: /two accounts/ });
  t.match(parsePCallControl('cc_pcalls;max_calls=-1'), { error: /not a whole number/ });
  t.match(parsePCallControl('x'.repeat(2000)), { error: /longer than 1024/ });
  t.same(parsePCallControl(undefined), { account: undefined, maxCalls: undefined, maxDuration: undefined });
});

t.test('accounts are user@domain with the domain lower-cased; a From header or URI names its user', async (t) => {
  t.equal(normalizeAccount('Joe@Example.COM'), 'Joe@example.com', 'the user part keeps its case');
  t.equal(normalizeAccount('sip:joe@example.com;transport=udp'), 'joe@example.com');
  t.equal(normalizeAccount('joe'), undefined);
  t.equal(normalizeAccount('a@b@c'), undefined);
  t.equal(billingParty('"Joe" <sip:joe@example.com:5060>;tag=x', undefined), 'joe@example.com');
  t.equal(billingParty('sip:joe@example.com', 'sip:boss@example.com'), 'boss@example.com');
  t.equal(billingParty('<sip:example.com>', undefined), undefined, 'no user part: no account');
});
