// The call-control engine, pure: admission rules in order, counting from admission, timers from
// answer, prepaid reservations shared by parallel calls, cancellations, restore and reconcile.
import fc from 'fast-check';
import t from 'tap';
import type { AdmitRequest } from '../../../service/cc/admission.js';
import { CcEngine, type CcEffects } from '../../../service/cc/engine.js';
import type { Rate } from '../../../service/cc/rating.js';
import type { CcWrite } from '../../../service/cc/types.js';
import { propertySeed } from '../../support/fc-seed.js';

propertySeed(t);

const T0 = 1_800_000_000;
const JOE = 'joe@example.com';
let seq = 0;
const req = (o: Partial<AdmitRequest> = {}): AdmitRequest => ({
  callId: `c${++seq}`, fromTag: `f${seq}`, from: `"Joe" <sip:joe@Example.com>;tag=f${seq}`, ruri: 'sip:31650222333@example.com',
  diverter: undefined, sourceIp: '192.0.2.10', door: 'socket', ...o,
});
const rate = (o: Partial<Rate> = {}): Rate => ({ plan: 'default', prefix: '31', connectFee: 0, pricePerMinute: 60, initialPulse: 1, nextPulse: 1, ...o });
const timer = (e: CcEffects, key: string) => e.timers.filter((x) => x.key === key).at(-1);
const balanceOf = (e: CcEngine, id = JOE) => e.account(id)!.balance;
const cdrs = (w: readonly CcWrite[]) => w.filter((x): x is Extract<CcWrite, { kind: 'cdr' }> => x.kind === 'cdr').map((x) => x.cdr);

t.test('the billing party is the diverter if given, else the From user@domain', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { maxCalls: 10 }, T0);
  e.setAccount('bob@example.com', { maxCalls: 10 }, T0);
  t.equal(e.admit(req(), T0).decision.account, JOE, 'From, domain lower-cased');
  t.equal(e.admit(req({ diverter: 'sip:bob@example.com' }), T0).decision.account, 'bob@example.com');
  t.equal(e.admit(req({ diverter: 'None' }), T0).decision.account, JOE, '"None" is no diverter');
  t.equal(e.admit(req({ account: 'bob@EXAMPLE.com' }), T0).decision.account, 'bob@example.com', 'what the script says wins');
  t.equal(e.admit(req({ from: 'garbage' }), T0).decision.result, 'bad-request');
});

t.test('an unknown account is not counted, or refused when the operator says so', async (t) => {
  t.equal(new CcEngine().admit(req(), T0).decision.result, 'untracked');
  t.equal(new CcEngine({ cc_unknown_account: 'refuse' }).admit(req(), T0).decision.result, 'blacklisted');
  const perCall = new CcEngine().admit(req({ maxCalls: 1 }), T0);
  t.equal(perCall.decision.result, 'admitted', 'per-call values count a call even without an account');
});

t.test('rules run in order: blacklist, parallel calls, credit, duration; each answers with its own result', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { maxCalls: 1, prepaid: true, balance: 0, maxDuration: 30 }, T0);
  e.setRate(rate());
  e.setBlacklisted('caller', JOE, true, 'fraud');
  t.equal(e.admit(req(), T0).decision.result, 'blacklisted', 'blacklist first, whatever else fails');
  e.setBlacklisted('caller', JOE, false, '');
  e.setBlacklisted('callee_prefix', '31650', true, '');
  t.equal(e.admit(req(), T0).decision.result, 'blacklisted', 'callee prefix');
  t.equal(e.admit(req({ ruri: 'sip:+31650999@x' }), T0).decision.result, 'blacklisted', 'with a leading +');
  e.setBlacklisted('callee_prefix', '31650', false, '');
  e.setBlacklisted('source_ip', '192.0.2.10', true, '');
  t.equal(e.admit(req(), T0).decision.result, 'blacklisted', 'source IP');
  e.setBlacklisted('source_ip', '192.0.2.10', false, '');
  t.equal(e.admit(req({ ruri: 'sip:44123@x' }), T0).decision.result, 'no-rate', 'prepaid needs a rate');
  t.equal(e.admit(req({ ruri: 'sip:31123@x' }), T0).decision.result, 'no-credit', 'and a balance');
  e.addBalance(JOE, 600, 'top-up', 'test', T0);
  const ok = e.admit(req({ ruri: 'sip:31123@x' }), T0);
  t.same([ok.decision.result, ok.decision.limit], ['admitted', 30], 'the duration rule is lower than the credit (600 s)');
  t.equal(e.admit(req({ ruri: 'sip:31123@x' }), T0).decision.result, 'limit', 'parallel calls before credit');
});

t.test('parallel calls count from admission by Call-ID: repeats, double ends and late stops never drift', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { maxCalls: 5 }, T0);
  const admitted = Array.from({ length: 5 }, () => req());
  for (const r of admitted) t.equal(e.admit(r, T0).decision.result, 'admitted');
  t.equal(e.admit(req(), T0).decision.result, 'limit', 'a sixth setup is refused before any was answered');
  t.equal(e.admit(admitted[0]!, T0).decision.result, 'duplicate', 'a second INVITE of a counted Call-ID is refused (Kamailio absorbs retransmissions)');
  t.equal(e.callsOf(JOE).length, 5, 'and not counted twice');
  t.ok(e.ended({ callId: admitted[0]!.callId, cause: 'caller' }, T0 + 1).found);
  t.ok(e.ended({ callId: admitted[0]!.callId, cause: 'callee' }, T0 + 1).found, 'a double BYE is answered as found...');
  t.equal(cdrs(e.ended({ callId: admitted[0]!.callId, cause: 'normal' }, T0 + 2).writes).length, 0, '...and writes nothing more');
  t.equal(e.callsOf(JOE).length, 4);
  t.equal(e.admit(req(), T0 + 2).decision.result, 'admitted', 'after one ended a new one gets in');
  t.equal(e.admit(req(), T0 + 2).decision.result, 'limit');
  t.notOk(e.ended({ callId: 'never-seen', cause: 'normal' }, T0).found);
});

t.test('a call timer runs from the answer and ends the call through Kamailio at its limit', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { maxDuration: 120 }, T0);
  const r = req();
  const adm = e.admit(r, T0);
  t.equal(timer(adm, `setup:${r.callId}`)?.at, T0 + 90, 'a setup is swept after 90 s without an answer');
  const ans = e.answered({ callId: r.callId, hEntry: 3012, hId: 4177 }, T0 + 10);
  t.equal(timer(ans, `setup:${r.callId}`)?.at, undefined, 'the sweep is cancelled');
  t.equal(timer(ans, `end:${r.callId}`)?.at, T0 + 130, 'the limit counts from the answer');
  t.same(e.answered({ callId: r.callId, hEntry: 1, hId: 1 }, T0 + 12).timers, [], 'a repeated start (200 retransmission) changes nothing');
  const fired = e.timerFired(`end:${r.callId}`, T0 + 130);
  t.same(fired.commands, [{ kind: 'end-dialog', callId: r.callId, hEntry: 3012, hId: 4177 }]);
  t.same(cdrs(fired.writes), [], 'no CDR yet: the call ends when Kamailio says so');
  t.equal(e.callsOf(JOE).length, 1, 'and it stays counted until then');
  t.equal(timer(e.endOutcome(r.callId, 'ended', T0 + 130.1), `verify:${r.callId}`)?.at, T0 + 140.1, 'its end report is awaited, then asked for');
  const stop = e.ended({ callId: r.callId, cause: 'normal' }, T0 + 130.2);
  t.ok(stop.found, 'the stop that follows our BYE is the known call');
  const [cdr] = cdrs(stop.writes);
  t.same([cdr!.cause, cdr!.durationSeconds, cdr!.setupSeconds], ['limit', 120, 10], 'ended for its limit, billed exactly to it');
  t.equal(timer(stop, `verify:${r.callId}`)?.at, undefined, 'the check is cancelled');
});

t.test('prepaid: cut at the second the balance pays for, debited by the pulse rules, balance never below zero', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { prepaid: true, balance: 100 }, T0);
  e.setRate(rate({ connectFee: 10, pricePerMinute: 60, initialPulse: 30, nextPulse: 6 }));
  const r = req();
  t.equal(e.admit(r, T0).decision.limit, 90, '100 - 10 connect fee pays 90 s, in whole pulses');
  e.answered({ callId: r.callId, hEntry: 1, hId: 2 }, T0 + 5);
  e.timerFired(`end:${r.callId}`, T0 + 95);
  const [cdr] = cdrs(e.ended({ callId: r.callId, cause: 'normal' }, T0 + 95.3).writes);
  t.same([cdr!.cause, cdr!.durationSeconds, cdr!.billableSeconds, cdr!.amount], ['credit', 90, 90, 100]);
  t.equal(balanceOf(e), 0);
  const short = req();
  e.addBalance(JOE, 100, 'top-up', 'ops', T0 + 100);
  e.admit(short, T0 + 100);
  e.answered({ callId: short.callId }, T0 + 100);
  const [c2] = cdrs(e.ended({ callId: short.callId, cause: 'caller' }, T0 + 131).writes);
  t.same([c2!.durationSeconds, c2!.billableSeconds, c2!.amount], [31, 36, 46], '31 s on 30/6 bills 36 s: 10 + 36');
  t.equal(balanceOf(e), 54);
  t.same(e.ended({ callId: short.callId, cause: 'callee' }, T0 + 140).writes, [], 'debited exactly once');
});

t.test('a CDR keeps the exact duration in ms beside the billed seconds: 35 ms bills 1 s, the pulses apply to that', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { prepaid: true, balance: 1000 }, T0);
  e.setRate(rate({ connectFee: 5, pricePerMinute: 60, initialPulse: 30, nextPulse: 6 }));
  const end = (answeredAt: number, endedAt: number) => {
    const r = req();
    e.admit(r, T0);
    e.answered({ callId: r.callId, hEntry: 1, hId: 1 }, answeredAt);
    return cdrs(e.ended({ callId: r.callId, cause: 'caller' }, endedAt).writes)[0]!;
  };
  const short = end(T0 + 1, T0 + 1.035);
  t.same([short.durationMs, short.durationSeconds, short.billableSeconds, short.amount], [35, 1, 30, 35], '35 ms: 1 s started, billed the first pulse (30 s) and the connect fee');
  const edge = end(T0 + 2, T0 + 2.001);
  t.same([edge.durationMs, edge.durationSeconds, edge.amount], [1, 0, 0], '1 ms (the timer tolerance): 0 s, free');
  const long = end(T0 + 3.25, T0 + 64.5);
  t.same([long.durationMs, long.durationSeconds, long.billableSeconds], [61_250, 62, 66], '61.25 s: 62 s started, 66 s on 30/6');
  const r = req();
  e.admit(r, T0);
  const never = cdrs(e.ended({ callId: r.callId, cause: 'failed', code: 486 }, T0 + 4).writes)[0]!;
  t.same([never.durationMs, never.durationSeconds], [0, 0], 'never answered: 0');
});

t.test('two parallel calls on a 60-second balance never bill more than 60 s together', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { prepaid: true, balance: 60 }, T0);
  e.setRate(rate({ pricePerMinute: 60 })); // 1 unit per second
  const a = req();
  const b = req();
  t.equal(e.admit(a, T0).decision.limit, 60);
  e.answered({ callId: a.callId, hEntry: 1, hId: 1 }, T0);
  const bAdm = e.admit(b, T0 + 20);
  t.equal(bAdm.decision.limit, 20, 'the 40 units left are split: 20 s for the new call');
  t.equal(timer(bAdm, `end:${a.callId}`)?.at, T0 + 40, 'and the first call now ends at 40 s');
  e.answered({ callId: b.callId, hEntry: 2, hId: 2 }, T0 + 20);
  e.timerFired(`end:${a.callId}`, T0 + 40);
  e.timerFired(`end:${b.callId}`, T0 + 40);
  t.equal(cdrs(e.ended({ callId: a.callId, cause: 'normal' }, T0 + 40.5).writes)[0]!.amount, 40);
  t.equal(cdrs(e.endOutcome(b.callId, 'not-found', T0 + 41).writes)[0]!.amount, 20, 'a call Kamailio no longer has is finished, to its limit');
  t.equal(balanceOf(e), 0, 'together exactly the balance');
});

t.test('parallel prepaid calls in any order and timing: the sum billed never exceeds the balance', async (t) => {
  // Kamailio's side of ending calls is part of the run: each command the engine gives is answered
  // (ended, gone, or failed) and its end reported, at a step the property picks.
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('admit', 'answer', 'hangup', 'tick', 'settle', 'fail'), fc.nat(5), fc.integer({ min: 1, max: 40 })), { maxLength: 60 }), fc.integer({ min: 0, max: 500 }), (steps, balance) => {
    const e = new CcEngine();
    e.setAccount(JOE, { prepaid: true, balance }, T0);
    e.setRate(rate({ connectFee: 3, pricePerMinute: 90, initialPulse: 30, nextPulse: 6 }));
    let now = T0;
    const timers = new Map<string, number>();
    const ids: string[] = [];
    let asked: string[] = [];
    let billed = 0;
    const take = (x: CcEffects): void => {
      for (const tm of x.timers) tm.at === undefined ? timers.delete(tm.key) : timers.set(tm.key, tm.at);
      billed += cdrs(x.writes).reduce((s, c) => s + c.amount, 0);
      asked.push(...x.commands.map((c) => c.callId));
    };
    for (const [op, k, dt] of steps) {
      now += dt;
      for (const [key, at] of [...timers].sort((x, y) => x[1] - y[1])) if (at <= now) { timers.delete(key); take(e.timerFired(key, at)); }
      const id = ids[k % Math.max(1, ids.length)];
      if (op === 'admit') { const r = req(); ids.push(r.callId); take(e.admit(r, now)); }
      else if (op === 'answer' && id) take(e.answered({ callId: id, hEntry: 1, hId: 1 }, now));
      else if (op === 'hangup' && id) take(e.ended({ callId: id, cause: 'caller' }, now));
      else if (op === 'settle' || op === 'fail') {
        const pending = asked;
        asked = [];
        for (const c of pending) {
          if (op === 'fail') take(e.endOutcome(c, 'failed', now));
          else if (k % 2 === 0) take(e.endOutcome(c, 'not-found', now));
          else { take(e.endOutcome(c, 'ended', now)); take(e.ended({ callId: c, cause: 'normal' }, now + 0.2)); }
        }
      }
      if (balanceOf(e) < 0) throw new Error('negative balance');
      if (e.reserved(JOE) > balanceOf(e)) throw new Error(`reserved ${e.reserved(JOE)} > balance ${balanceOf(e)}`);
    }
    for (const id of ids) take(e.ended({ callId: id, cause: 'caller' }, now + 10_000));
    if (billed + balanceOf(e) !== balance) throw new Error(`billed ${billed} + left ${balanceOf(e)} != ${balance}`);
  }), { numRuns: 500 });
  t.pass('balance = billed + left, never negative, reservations within it');
});

t.test('a ringing call is cancelled when its account runs dry or its parallel limit is lowered', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { prepaid: true, balance: 100, maxCalls: 3 }, T0);
  e.setRate(rate());
  const ringing = req();
  e.admit(ringing, T0);
  const drained = e.addBalance(JOE, -100, 'chargeback', 'ops', T0 + 1);
  t.ok(drained.ok);
  if (drained.ok) {
    t.same(drained.commands, [{ kind: 'cancel-call', callId: ringing.callId, fromTag: ringing.fromTag, code: 480, reason: 'Call Limit Reached' }]);
    t.same(cdrs(drained.writes), [], 'counted until Kamailio reports the end');
  }
  e.endOutcome(ringing.callId, 'cancelled', T0 + 1.1);
  t.equal(cdrs(e.ended({ callId: ringing.callId, cause: 'failed', code: 480 }, T0 + 1.2).writes)[0]!.cause, 'credit', 'the failure that follows keeps the cause');
  e.addBalance(JOE, 1000, 'top-up', 'ops', T0 + 2);
  const [x, y, z] = [req(), req(), req()];
  for (const r of [x, y, z]) e.admit(r, T0 + 3);
  e.answered({ callId: x.callId, hEntry: 1, hId: 1 }, T0 + 4);
  const lowered = e.setAccount(JOE, { maxCalls: 1 }, T0 + 5);
  t.ok(lowered.ok);
  if (lowered.ok) t.same(lowered.commands.map((c) => c.callId), [z.callId, y.callId], 'the newest ringing calls go; the answered one stays');
  t.same(e.setAccount(JOE, { maxCalls: 1 }, T0 + 6).ok && e.callsOf(JOE).filter((c) => c.ending).map((c) => c.callId), [y.callId, z.callId], 'calls being ended are not cancelled twice');
  for (const r of [y, z]) e.endOutcome(r.callId, 'not-found', T0 + 7);
  t.same(e.callsOf(JOE).map((c) => c.callId), [x.callId]);
});

t.test('a setup never answered is swept: cancelled through Kamailio and no longer counted', async (t) => {
  const e = new CcEngine({ cc_setup_timeout: 90 });
  e.setAccount(JOE, { maxCalls: 1 }, T0);
  const r = req();
  e.admit(r, T0);
  const swept = e.timerFired(`setup:${r.callId}`, T0 + 90);
  t.same(swept.commands, [{ kind: 'check-call', callId: r.callId, fromTag: r.fromTag }], 'first asked at Kamailio: its start may have been lost');
  const ringing = e.reconcile(r.callId, { state: 'ringing', startTs: 0, hEntry: 1, hId: 1 }, T0 + 90.1);
  t.same([ringing.outcome, ringing.commands[0]?.kind], ['cancelled', 'cancel-call'], 'still ringing: cancelled');
  t.equal(e.admit(req(), T0 + 90.2).decision.result, 'limit', 'counted until it is gone');
  t.equal(cdrs(e.endOutcome(r.callId, 'not-found', T0 + 90.3).writes)[0]!.cause, 'stale');
  t.equal(e.admit(req(), T0 + 91).decision.result, 'admitted');
  e.setAccount(JOE, { maxCalls: null }, T0 + 91);
  const answered = req();
  t.equal(e.admit(answered, T0 + 91).decision.result, 'admitted');
  e.timerFired(`setup:${answered.callId}`, T0 + 181);
  const late = e.reconcile(answered.callId, { state: 'answered', startTs: T0 + 95, hEntry: 2, hId: 2 }, T0 + 181.1);
  t.same([late.outcome, e.callsOf(JOE).find((c) => c.callId === answered.callId)?.connectedAt], ['answered', T0 + 95], 'answered, its start lost: it runs from the answer, not cancelled');
});

t.test('the operator ends a call: BYE if answered, a final reply if ringing; CDR cause admin', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, {}, T0);
  const [a, b] = [req(), req()];
  e.admit(a, T0);
  e.admit(b, T0);
  e.answered({ callId: a.callId, hEntry: 7, hId: 8 }, T0);
  const ea = e.endCall(a.callId, T0 + 5);
  const eb = e.endCall(b.callId, T0 + 5);
  t.ok(ea.ok && eb.ok);
  if (ea.ok && eb.ok) {
    t.equal(ea.commands[0]!.kind, 'end-dialog');
    t.equal(eb.commands[0]!.kind, 'cancel-call');
    t.equal(cdrs(e.ended({ callId: a.callId, cause: 'caller' }, T0 + 5.1).writes)[0]!.cause, 'admin', 'the BYE that follows is the operator\'s');
  }
  t.notOk(e.endCall('nope', T0).ok);
});

t.test('restore puts calls back with their timers; reconcile ends the ones Kamailio no longer has', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { prepaid: true, balance: 300 }, T0);
  e.setRate(rate());
  const [kept, gone, answeredMeanwhile] = [req(), req(), req()];
  for (const r of [kept, gone, answeredMeanwhile]) e.admit(r, T0);
  e.answered({ callId: kept.callId, hEntry: 1, hId: 1 }, T0);
  e.answered({ callId: gone.callId, hEntry: 2, hId: 2 }, T0);
  const again = new CcEngine();
  const restored = again.restore({ accounts: e.listAccounts(), rates: e.rates(), blacklist: e.blacklisted(), calls: e.callsOf() });
  t.equal(timer(restored, `end:${kept.callId}`)?.at, T0 + e.callsOf().find((c) => c.callId === kept.callId)!.limit!, 'timers re-armed with the time left');
  t.equal(timer(restored, `setup:${answeredMeanwhile.callId}`)?.at, T0 + 90);
  t.equal(again.reconcile(kept.callId, { state: 'answered', startTs: T0, hEntry: 1, hId: 1 }, T0 + 30).outcome, 'kept');
  const lost = again.reconcile(gone.callId, undefined, T0 + 30);
  t.equal(lost.outcome, 'ended');
  t.same([cdrs(lost.writes)[0]!.cause, cdrs(lost.writes)[0]!.durationSeconds], ['stale', 0], 'billed to the last moment it was known to run: its answer');
  const ans = again.reconcile(answeredMeanwhile.callId, { state: 'answered', startTs: T0 + 10, hEntry: 3, hId: 3 }, T0 + 30);
  t.equal(ans.outcome, 'answered');
  t.equal(again.callsOf().find((c) => c.callId === answeredMeanwhile.callId)!.connectedAt, T0 + 10, 'its time runs from the answer Kamailio saw');
});

t.test('a Call-ID belongs to one call: another INVITE with it is refused, and another dialog\'s end never ends it', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { maxCalls: 1 }, T0);
  const first = req();
  t.equal(e.admit(first, T0).decision.result, 'admitted');
  const sameId = e.admit({ ...first, fromTag: 'other' }, T0 + 1);
  t.same([sameId.decision.result, sameId.writes.length], ['duplicate', 0], 'another From-tag on a counted Call-ID: refused, nothing counted');
  t.equal(e.admit({ ...first, fromTag: 'other', account: 'bob@example.com', maxCalls: 5 }, T0 + 1).decision.result, 'duplicate', 'whoever pays');
  t.notOk(e.ended({ callId: first.callId, fromTag: 'other', cause: 'failed', code: 404 }, T0 + 2).found, 'the failure of another dialog is not this call\'s');
  t.notOk(e.answered({ callId: first.callId, fromTag: 'other', hEntry: 9, hId: 9 }, T0 + 2).found);
  t.equal(e.callsOf(JOE).length, 1, 'still counted');
  t.ok(e.ended({ callId: first.callId, fromTag: first.fromTag, cause: 'caller' }, T0 + 3).found, 'its own end ends it');
});

t.test('blacklists apply to every call, callers without an account included', async (t) => {
  const e = new CcEngine();
  e.setBlacklisted('callee_prefix', '900', true, 'premium');
  e.setBlacklisted('source_ip', '198.51.100.7', true, '');
  t.equal(e.admit(req({ ruri: 'sip:900123@x' }), T0).decision.result, 'blacklisted', 'unknown caller, listed callee prefix');
  t.equal(e.admit(req({ sourceIp: '198.51.100.7' }), T0).decision.result, 'blacklisted', 'unknown caller, listed source');
  t.equal(e.admit(req(), T0).decision.result, 'untracked', 'the rest of the unknown callers go on, not counted');
});

t.test('a call the service fails to end stays counted, is tried again later each time, and is overrunning', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { maxDuration: 3, maxCalls: 1 }, T0);
  const r = req();
  e.admit(r, T0);
  e.answered({ callId: r.callId, hEntry: 1, hId: 2 }, T0);
  e.timerFired(`end:${r.callId}`, T0 + 3);
  t.equal(e.overrunning(T0 + 4), 0, 'not yet');
  const f1 = e.endOutcome(r.callId, 'failed', T0 + 3.1);
  t.same([cdrs(f1.writes).length, timer(f1, `retry:${r.callId}`)?.at], [0, T0 + 5.1], 'no CDR; tried again in 2 s');
  t.equal(e.callsOf(JOE)[0]!.ending?.tries, 1);
  t.equal(timer(e.endOutcome(r.callId, 'failed', T0 + 5.2), `retry:${r.callId}`)?.at, T0 + 9.2, 'then 4 s');
  t.same(e.timerFired(`retry:${r.callId}`, T0 + 9.2).commands, [{ kind: 'end-dialog', callId: r.callId, hEntry: 1, hId: 2 }]);
  t.equal(e.overrunning(T0 + 10), 1, 'overrunning');
  t.equal(e.admit(req(), T0 + 10).decision.result, 'limit', 'still counted against the limit');
  const again = new CcEngine();
  const restored = again.restore({ accounts: e.listAccounts(), rates: [], blacklist: [], calls: e.callsOf() });
  t.equal(timer(restored, `retry:${r.callId}`)?.at, T0 + 3, 'after a restart it is asked for again at once');
  const [cdr] = cdrs(e.ended({ callId: r.callId, cause: 'normal' }, T0 + 20).writes);
  t.same([cdr!.cause, cdr!.durationSeconds], ['limit', 3], 'when it really ends: one CDR, billed to its limit');
});

t.test('a duration of 0 means no limit everywhere: account, per-call value and the global cap', async (t) => {
  const e = new CcEngine({ cc_max_call_duration: 0 });
  t.equal(e.setAccount(JOE, { maxDuration: 0, maxCalls: 9 }, T0).ok && e.account(JOE)!.maxDuration, undefined, 'stored as none');
  t.equal(e.admit(req(), T0).decision.limit, undefined);
  t.equal(e.admit(req({ maxDuration: 0 }), T0).decision.limit, undefined, 'a per-call 0');
  const capped = new CcEngine({ cc_max_call_duration: 60 });
  capped.setAccount(JOE, { maxDuration: 0 }, T0);
  t.equal(capped.admit(req(), T0).decision.limit, 60, 'the cap still applies');
});

t.test('Kamailio\'s answer time is taken within admission and now; balances stay within ±10^15', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { prepaid: true, balance: 100 }, T0);
  e.setRate(rate());
  const r = req();
  e.admit(r, T0);
  e.reconcile(r.callId, { state: 'answered', startTs: T0 + 9999, hEntry: 1, hId: 1 }, T0 + 10);
  t.equal(e.callsOf(JOE)[0]!.connectedAt, T0 + 10, 'a start in the future is now');
  const [cdr] = cdrs(e.ended({ callId: r.callId, cause: 'caller' }, T0 + 40).writes);
  t.equal(cdr!.durationSeconds, 30, 'billed for what it lasted, not 0');
  const big = e.addBalance(JOE, 1e15, 'too much', 'test', T0);
  t.same([big.ok, !big.ok && big.code], [false, -32602]);
  t.notOk(e.setAccount(JOE, { balance: 2 ** 60 }, T0).ok);
  t.equal(balanceOf(e), 70);
});

t.test('a call gone from Kamailio is billed to the last moment it was known to run', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { prepaid: true, balance: 1000 }, T0);
  e.setRate(rate());
  const [a, b] = [req(), req()];
  for (const r of [a, b]) { e.admit(r, T0); e.answered({ callId: r.callId, hEntry: 1, hId: 1 }, T0); }
  e.reconcile(a.callId, { state: 'answered', startTs: T0, hEntry: 1, hId: 1 }, T0 + 60);
  t.equal(cdrs(e.reconcile(a.callId, undefined, T0 + 120).writes)[0]!.durationSeconds, 60, 'found at 60 s, gone at 120 s: 60 s');
  t.equal(cdrs(e.reconcile(b.callId, undefined, T0 + 120, T0 + 2.8).writes)[0]!.durationSeconds, 3, 'lost with Kamailio at 2.8 s: 3 s, not its whole reservation');
});

t.test('a start or stop that arrives late (kept by sca-cc-relay through a failover) counts from when it happened, clamped to the call\'s life', async (t) => {
  const e = new CcEngine();
  e.setAccount(JOE, { prepaid: true, balance: 10_000 }, T0);
  e.setRate(rate());
  const billed = (answerAt: number | undefined, endAt: number | undefined, now: number) => {
    const c = req({ ruri: 'sip:31123@x' });
    e.admit(c, T0);
    e.answered({ callId: c.callId, hEntry: 1, hId: 2, ...(answerAt !== undefined ? { at: answerAt } : {}) }, T0 + 10);
    const out = e.ended({ callId: c.callId, cause: 'normal', ...(endAt !== undefined ? { at: endAt } : {}) }, now);
    return cdrs(out.writes).map((x) => [x.durationSeconds, x.amount])[0];
  };
  t.same(billed(undefined, T0 + 13, T0 + 19), [3, 3], 'a stop held 6 s: billed the 3 s the call lasted, not 9');
  t.same(billed(T0 + 4, T0 + 13, T0 + 19), [9, 9], 'a start held too: the call ran from its answer');
  t.same(billed(T0 - 50, undefined, T0 + 20), [20, 20], 'an answer never before the admission');
  t.same(billed(undefined, T0 + 2, T0 + 20), [0, 0], 'an end never before the answer');
  t.same(billed(undefined, T0 + 99, T0 + 20), [10, 10], 'nor after now');
});
