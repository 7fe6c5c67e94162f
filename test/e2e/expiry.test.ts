// Expiry through the real proxy: the purge timer ends subscriptions with reason=timeout and an
// expired line-seize gives back its index.
import t from 'tap';
import { hdr, type Phone } from '../support/sip-phone.js';
import { lineSeize, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../support/stack.js';

let stack: Stack;
let p1: Phone, p2: Phone;
t.before(async () => {
  stack = await startStack({ purge_expired_interval: 1 });
  [p1, p2] = await Promise.all([stack.phone('p1', '100'), stack.phone('p2', '100')]);
});
t.teardown(async () => stack.stop());

t.test('subscriptions and seizes expire', async (t) => {
  await subscribeCallInfo(p1, 3);
  await subscribeCallInfo(p2, 3600);
  const m = mark(p2);
  const seize = await lineSeize(p2, 2, 2);
  t.same([seize.status, hdr(seize, 'expires')], [200, '2']);
  await waitLine(p2, '2:seized', m[0]!);
  const lsEnd = await p2.nthNotify(2, 'line-seize', 6000);
  t.equal(hdr(lsEnd.msg, 'subscription-state'), 'terminated;reason=timeout');
  t.equal(hdr(lsEnd.msg, 'call-info'), '<sip:pbx.example.com>;appearance-index=2');
  await waitLine(p2, '', m[0]! + 1, 6000);
  const gone = await p1.waitFor((r) => r.msg.method === 'NOTIFY' && hdr(r.msg, 'subscription-state') === 'terminated;reason=timeout', 6000, 'timeout NOTIFY');
  t.match(hdr(gone.msg, 'call-info'), /appearance-index=\*;appearance-state=idle$/, 'the last NOTIFY still has the full state');
  const count = p1.notifies('call-info').length;
  const m2 = mark(p2);
  await lineSeize(p2, 1);
  // P2, still subscribed, is told; a NOTIFY to P1 would have gone with it.
  await waitLine(p2, '1:seized', m2[0]!);
  t.equal(p1.notifies('call-info').length, count, 'an expired subscriber gets nothing more');
});
