// Bad input never escapes as an exception: mangled SIP messages through every entry point, and
// the zod schemas at the JSON boundary.
import fc from 'fast-check';
import t from 'tap';
import { callEventInput, subscribeInput } from '../../../service/sca/schemas.js';
import { ScaEngine } from '../../../service/sca/engine.js';
import { AOR, B, CI, P1, SDP, reply, request, subscribeMsg } from '../../support/sip-fixture.js';
import { propertySeed } from '../../support/fc-seed.js';

propertySeed(t);

const seeds = [
  subscribeMsg(P1),
  subscribeMsg(P1, { event: 'line-seize', expires: 15, callInfo: CI(1), recordRoute: '<sip:p1.example.com;lr>' }),
  request('INVITE', { callId: 'c', from: `<${AOR}>`, fromTag: 'f', to: `<${B}>`, contact: P1, callInfo: CI(1), body: SDP('sendonly') }),
  reply(200, 'OK', 'INVITE', { callId: 'c', from: `<${AOR}>`, fromTag: 'f', to: `"B" <${B}>`, toTag: 't', contact: P1, callInfo: CI(2, 'active') }),
  request('BYE', { callId: 'c', from: `<${B}>`, fromTag: 't', to: `<${AOR}>`, toTag: 'f', contact: P1 }),
];

/** A seed message with random slices deleted, duplicated or replaced by SIP-ish noise. */
const mangled = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 40 }), fc.constantFrom('', ';', ',', '<', '>', '"', '\\', ':', '\r\n', '*', '=', '@', ' ', '\u0000', 'é', 'tag=', 'appearance-index=', 'SIP/2.0')), { maxLength: 6 }))
  .map(([seed, edits]) => edits.reduce((s, [at, len, ins]) => {
    const i = at % (s.length + 1);
    return s.slice(0, i) + ins + s.slice(i + len);
  }, seed));

t.test('mangled SIP through every entry point: a SIP answer or a -1, never an exception', async (t) => {
  const engine = new ScaEngine();
  let now = 1000;
  engine.subscribe({ msg: seeds[0]!, to_tag: 'x', now });
  engine.subscribe({ msg: seeds[1]!, to_tag: 'y', now });
  fc.assert(fc.property(mangled, fc.constantFrom('request', 'reply', 'failure', 'local-reply' as const), (msg, hook) => {
    now += 1;
    const sub = engine.subscribe({ msg, to_tag: 'z', now });
    if (sub.reply.code < 200 || sub.reply.code > 699) throw new Error(`reply code ${sub.reply.code}`);
    const ev = engine.callEvent({ hook, msg, status: 486, now });
    if (![1, 0, -1].includes(ev.result)) throw new Error(`result ${ev.result}`);
    engine.tick(now);
    JSON.stringify([sub, ev]); // effects are plain JSON
  }), { numRuns: 3000 });
  t.pass('no exception in 3000 mangled messages');
});

t.test('the JSON boundary rejects what the engine cannot take, with a readable reason', async (t) => {
  t.ok(subscribeInput.safeParse({ msg: 'SUBSCRIBE …', to_tag: 'a', now: 1 }).success);
  for (const bad of [{}, { msg: '', now: 1 }, { msg: 'x', now: -1 }, { msg: 'x', now: 1, extra: true }, { msg: 5, now: 1 }, null, 'string']) {
    const r = subscribeInput.safeParse(bad);
    t.notOk(r.success, JSON.stringify(bad));
    if (!r.success) t.ok(r.error.issues.length > 0 && typeof r.error.issues[0]!.message === 'string');
  }
  t.notOk(callEventInput.safeParse({ hook: 'sideways', msg: 'x', now: 1 }).success);
  t.notOk(callEventInput.safeParse({ hook: 'failure', msg: 'x', status: 99, now: 1 }).success);
  t.ok(callEventInput.safeParse({ hook: 'failure', msg: 'x', status: 486, mask: 3, now: 1 }).success);
});
