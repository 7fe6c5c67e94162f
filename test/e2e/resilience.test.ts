// What phones see when the service is slow, frozen or gone, and when a phone forgets its
// subscription.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, lineSeize, startStack, subscribeCallInfo, type Stack } from '../support/stack.js';

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
  await new Promise((r) => setTimeout(r, 300));
  const n1 = p1.notifies('call-info').length;
  const n2 = p2.notifies('call-info').length;
  await lineSeize(p1, 1);
  await p1.nthNotify(n1 + 1);
  await new Promise((r) => setTimeout(r, 500));
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
    const waited = performance.now() - t0;
    t.same([r.status, hdr(r, 'retry-after')], [503, '5']);
    t.ok(waited < 4000, `answered by the watchdog in ${Math.round(waited)} ms`);
    bob.onInvite = (inv) => bob.respond(inv, 200, 'OK', { body: sdp(5000) });
    const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
    t.equal(call.final.status, 200, 'the call still connects');
    t.equal(hdr(bob.requests.filter((x) => x.msg.method === 'INVITE').at(-1)!.msg, 'call-info'), undefined, 'without its SCA Call-Info');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await new Promise((r) => setTimeout(r, 500));
  t.match(stack.kamailioLog(), /late answer/, 'the late answers are logged and dropped');
});

t.test('the service gone: SUBSCRIBE gets 503 at once, calls still connect', async (t) => {
  await stack.stopService();
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  const r = await subscribeCallInfo(p1);
  t.equal(r.status, 503);
  t.ok(performance.now() - t0 < 500, 'no waiting when nothing is connected');
  const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  t.equal(call.final.status, 200);
  t.ok(execFileSync('bash', ['-c', `kill -0 $(cat ${stack.dir}/kamailio.pid) && echo alive`]).toString().includes('alive'), 'Kamailio keeps running');
});
