// What phones see when the service is slow, frozen or gone, and when a phone forgets its
// subscription. How long the watchdog and the 503 take is measured by scripts/bench/targets.ts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { rpc } from '../support/rpc.js';
import { DOMAIN, lineSeize, startStack, subscribeCallInfo, type Stack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

let stack: Stack;
let p1: Phone, p2: Phone, bob: Phone;
t.before(async () => {
  stack = await startStack();
  [p1, p2, bob] = await Promise.all([stack.phone('p1', '100'), stack.phone('p2', '100'), stack.phone('bob', '200')]);
  for (const p of [p1, p2, bob]) await p.register();
});
t.teardown(async () => stack.stop());

t.test('a NOTIFY answered 481 ends that subscription only', async (t) => {
  await subscribeCallInfo(p1);
  p2.notifyAnswer = [481, 'Call Leg/Transaction Does Not Exist'];
  await subscribeCallInfo(p2);
  await p2.nthNotify(1);
  // The 481 reaches the service: P2's subscription is gone, P1's stays.
  const subscribers = async () => ((await rpc(stack.httpPort, 'sca.all_subscriptions')).result as Array<{ event: string; subscriber: string }>)
    .filter((s) => s.event === 'call-info').map((s) => s.subscriber);
  await waitUntil('P2\'s subscription removed', async () => !(await subscribers()).includes(p2.contact), { everyMs: 20 });
  t.same(await subscribers(), [p1.contact], 'only P1 is left');
  const n1 = p1.notifies('call-info').length;
  const n2 = p2.notifies('call-info').length;
  await lineSeize(p1, 1);
  await p1.nthNotify(n1 + 1);
  // A second change, and P1's NOTIFY of it: P2's of the first would have come before.
  await lineSeize(p1, 2);
  await p1.nthNotify(n1 + 2);
  t.equal(p2.notifies('call-info').length, n2, 'P2 gets no more NOTIFYs');
  t.match(stack.serviceLog(), /"removed":true[^\n]*NOTIFY rejected/);
  p2.notifyAnswer = [200, 'OK'];
});

t.test('a frozen service: SUBSCRIBE gets 503 after the watchdog, INVITEs go on without SCA', async (t) => {
  const pid = Number(readFileSync(path.join(stack.dir, 'service.pid'), 'utf8'));
  process.kill(pid, 'SIGSTOP');
  try {
    const t0 = performance.now();
    const r = await subscribeCallInfo(p1);
    t.same([r.status, hdr(r, 'retry-after')], [503, '5'], `answered by the watchdog, in ${Math.round(performance.now() - t0)} ms`);
    bob.onInvite = (inv) => bob.respond(inv, 200, 'OK', { body: sdp(5000) });
    const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
    t.equal(call.final.status, 200, 'the call still connects');
    t.equal(hdr(bob.requests.filter((x) => x.msg.method === 'INVITE').at(-1)!.msg, 'call-info'), undefined, 'without its SCA Call-Info');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await waitUntil('Kamailio logs the late answers', () => /late answer/.test(stack.kamailioLog()), { everyMs: 20 });
  t.match(stack.kamailioLog(), /late answer/, 'the late answers are logged and dropped');
});

t.test('the service gone: SUBSCRIBE gets 503 at once, calls still connect', async (t) => {
  const closedBefore = stack.kamailioLog().match(/service connection .* closed/g)?.length ?? 0;
  await stack.stopService();
  // Kamailio has seen the service go: from then on nothing is suspended.
  await waitUntil('Kamailio sees the service gone', () => (stack.kamailioLog().match(/service connection .* closed/g)?.length ?? 0) > closedBefore, { everyMs: 20 });
  const watchdog = () => stack.kamailioLog().match(/sca: no answer from the service/g)?.length ?? 0;
  const resumed = watchdog();
  const r = await subscribeCallInfo(p1);
  t.same([r.status, hdr(r, 'retry-after')], [503, '5']);
  t.equal(watchdog(), resumed, 'answered at once, not by the watchdog (nothing was suspended)');
  const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  t.equal(call.final.status, 200);
  t.ok(execFileSync('bash', ['-c', `kill -0 $(cat ${stack.dir}/kamailio.pid) && echo alive`]).toString().includes('alive'), 'Kamailio keeps running');
});
