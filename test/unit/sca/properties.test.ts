// Property tests: random interleavings of seizes, calls, holds, pickups, failures, RPC actions and
// expiries, with the engine's invariants checked after every step.
import fc from 'fast-check';
import t from 'tap';
import { parseCallInfo, toScaCallInfo } from '../../../service/sip/call-info.js';
import type { Notify } from '../../../service/sca/types.js';
import { ScaEngine } from '../../../service/sca/engine.js';
import { RowImage } from '../../support/row-image.js';
import { AOR, B, B_CONTACT, Bench, CI, SDP, header, uniq } from '../../support/sip-fixture.js';
import { propertySeed } from '../../support/fc-seed.js';

propertySeed(t);

const PHONES = ['sip:100@10.0.0.11:5060', 'sip:100@10.0.0.12:5060', 'sip:100@10.0.0.13:5060'];
const MAX = 4;

type Act =
  | { k: 'seize'; p: number; idx: number }
  | { k: 'unseize'; p: number }
  | { k: 'invite'; p: number; idx: number }
  | { k: 'ring' | 'answer' | 'ack' | 'unhold' | 'cancel' | 'remote-bye' | 'bye'; p: number }
  | { k: 'hold'; p: number; priv: boolean }
  | { k: 'fail'; p: number; code: number; local: boolean }
  | { k: 'pickup'; p: number; idx: number }
  | { k: 'incoming'; p: number; idx: number }
  | { k: 'reboot'; p: number }
  | { k: 'tick'; dt: number }
  | { k: 'release'; idx: number }
  | { k: 'update'; idx: number; state: string };

const phone = fc.integer({ min: 0, max: PHONES.length - 1 });
const idx = fc.integer({ min: 0, max: MAX + 1 });
const act: fc.Arbitrary<Act> = fc.oneof(
  fc.record({ k: fc.constant('seize' as const), p: phone, idx }),
  fc.record({ k: fc.constant('unseize' as const), p: phone }),
  fc.record({ k: fc.constant('invite' as const), p: phone, idx }),
  fc.record({ k: fc.constantFrom('ring', 'answer', 'ack', 'unhold', 'cancel', 'remote-bye', 'bye' as const), p: phone }),
  fc.record({ k: fc.constant('hold' as const), p: phone, priv: fc.boolean() }),
  fc.record({ k: fc.constant('fail' as const), p: phone, code: fc.constantFrom(404, 480, 486, 487, 488, 491, 503), local: fc.boolean() }),
  fc.record({ k: fc.constant('pickup' as const), p: phone, idx }),
  fc.record({ k: fc.constant('incoming' as const), p: phone, idx }),
  fc.record({ k: fc.constant('reboot' as const), p: phone }),
  fc.record({ k: fc.constant('tick' as const), dt: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ k: fc.constant('release' as const), idx }),
  fc.record({ k: fc.constant('update' as const), idx, state: fc.constantFrom('held', 'active', 'idle', 'seized', 'held-private') }),
);

interface Call { callId: string; fromTag: string; toTag: string; incoming: boolean; cseq: number }
interface PhoneState { seize?: { callId: string; fromTag: string; toTag: string }; call?: Call }

/** Drives one engine through a list of actions; returns every batch of NOTIFYs with the acting step. */
function run(actions: Act[], check: (b: Bench, step: Act, notifies: Notify[], grantedTo: string | undefined, granted: number | undefined, before: Map<number, string>) => void): Bench {
  const b = new Bench({ max_appearances: MAX });
  const phones: PhoneState[] = PHONES.map(() => ({}));
  for (const p of PHONES) b.callInfo(p);
  for (const a of actions) {
    const before = new Map(b.engine.listAppearances().map((x) => [x.index, x.owner]));
    let notifies: Notify[] = [];
    let grantedTo: string | undefined;
    let granted: number | undefined;
    const ps = 'p' in a ? phones[a.p]! : undefined;
    const contact = 'p' in a ? PHONES[a.p]! : '';
    const dialog = (c: Call) => c.incoming
      ? { callId: c.callId, from: `<${B}>`, fromTag: c.fromTag, to: `<${AOR}>`, toTag: c.toTag || undefined }
      : { callId: c.callId, from: `<${AOR}>`, fromTag: c.fromTag, to: `<${B}>`, toTag: c.toTag || undefined };
    const memberSide = (c: Call) => c.incoming
      ? { callId: c.callId, from: `<${AOR}>`, fromTag: c.toTag, to: `<${B}>`, toTag: c.fromTag, contact }
      : { ...dialog(c), contact };
    switch (a.k) {
      case 'seize': {
        const s = ps!.seize ?? { callId: uniq('ls'), fromTag: uniq('lf'), toTag: '' };
        const out = b.subscribe(contact, { event: 'line-seize', expires: 15, callInfo: CI(a.idx), callId: s.callId, fromTag: s.fromTag });
        notifies = out.notifies;
        if (out.reply.code === 200) {
          ps!.seize = { ...s, toTag: out.toTag ?? '' };
          const ls = out.notifies.find((n) => n.event === 'line-seize');
          granted = Number(/appearance-index=(\d+)/.exec(header(ls!, 'Call-Info') ?? '')?.[1]);
          grantedTo = contact;
        }
        break;
      }
      case 'unseize': {
        if (!ps!.seize) break;
        notifies = b.subscribe(contact, { event: 'line-seize', expires: 0, callInfo: CI(0), ...ps!.seize }).notifies;
        ps!.seize = undefined;
        break;
      }
      case 'invite': {
        ps!.call = { callId: uniq('c'), fromTag: uniq('f'), toTag: '', incoming: false, cseq: 1 };
        notifies = b.req('INVITE', { ...dialog(ps!.call), contact, callInfo: a.idx > 0 ? CI(a.idx) : undefined, body: SDP(null) }).notifies;
        break;
      }
      case 'incoming': {
        ps!.call = { callId: uniq('in'), fromTag: uniq('b'), toTag: uniq('m'), incoming: true, cseq: 1 };
        notifies = b.rep(200, 'OK', 'INVITE', { ...dialog(ps!.call), contact, callInfo: a.idx > 0 ? CI(a.idx) : undefined }).notifies;
        break;
      }
      case 'ring': case 'answer': {
        const c = ps!.call;
        if (!c || c.incoming) break;
        c.toTag ||= uniq('t');
        notifies = b.rep(a.k === 'ring' ? 180 : 200, 'X', 'INVITE', { ...dialog(c), contact: B_CONTACT }).notifies;
        break;
      }
      case 'ack': {
        const c = ps!.call;
        if (!c || !c.toTag) break;
        notifies = b.req('ACK', { ...dialog(c), contact: c.incoming ? B_CONTACT : contact, cseq: `${c.cseq} ACK` }).notifies;
        break;
      }
      case 'hold': case 'unhold': {
        const c = ps!.call;
        if (!c || !c.toTag) break;
        c.cseq++;
        notifies = b.req('INVITE', { ...memberSide(c), cseq: `${c.cseq} INVITE`, callInfo: a.k === 'hold' && a.priv ? CI(0, 'held-private') : undefined, body: SDP(a.k === 'hold' ? 'sendonly' : 'sendrecv') }).notifies;
        break;
      }
      case 'bye': case 'remote-bye': {
        const c = ps!.call;
        if (!c) break;
        const side = a.k === 'bye' ? memberSide(c) : { ...dialog(c), contact: B_CONTACT };
        notifies = b.req('BYE', { ...side, cseq: `${++c.cseq} BYE` }).notifies;
        ps!.call = undefined;
        break;
      }
      case 'cancel': {
        const c = ps!.call;
        if (!c || c.incoming) break;
        notifies = b.req('CANCEL', { ...dialog(c), toTag: undefined, contact }).notifies;
        break;
      }
      case 'fail': {
        const c = ps!.call;
        if (!c || c.incoming) break;
        notifies = b.failure(a.code, { ...dialog(c), toTag: undefined, contact }, a.local ? 'local-reply' : 'failure').notifies;
        break;
      }
      case 'pickup': {
        const c: Call = { callId: uniq('pk'), fromTag: uniq('pf'), toTag: '', incoming: false, cseq: 1 };
        const out = b.req('INVITE', { callId: c.callId, from: `<${AOR}>`, fromTag: c.fromTag, to: `<${AOR}>`, contact, callInfo: a.idx > 0 ? CI(a.idx) : undefined, body: SDP(null) });
        notifies = out.notifies;
        if (out.edit.ruri) ps!.call = c;
        break;
      }
      case 'reboot': notifies = b.subscribe(contact, { callId: uniq('reboot') }).notifies; break;
      case 'tick': notifies = b.tick(a.dt); break;
      case 'release': { const r = b.engine.releaseAppearance(AOR, a.idx, b.now); notifies = r.ok ? r.notifies : []; break; }
      case 'update': { const r = b.engine.updateAppearance(AOR, a.idx, a.state, undefined, b.now); notifies = r.ok ? r.notifies : []; break; }
    }
    check(b, a, notifies, grantedTo, granted, before);
    // Phones keep their call-info subscriptions alive, as real ones do.
    for (const p of PHONES) if (!b.engine.showSubscription(AOR, 'call-info', p, b.now).length) b.callInfo(p);
  }
  return b;
}

const lastCseq = new Map<string, number>();

t.test('no index ever has two owners, no appearance is ownerless, NOTIFYs match the state', async (t) => {
  let steps = 0;
  fc.assert(fc.property(fc.array(act, { minLength: 5, maxLength: 80, size: 'max' }), (actions) => {
    lastCseq.clear();
    run(actions, (b, step, notifies, grantedTo, granted, before) => {
      steps++;
      const apps = b.engine.listAppearances();
      const indices = apps.map((a) => a.index);
      if (new Set(indices).size !== indices.length) throw new Error(`duplicate index after ${JSON.stringify(step)}`);
      for (const a of apps) {
        if (a.owner === '') throw new Error(`ownerless appearance ${a.index} after ${JSON.stringify(step)}`);
        if (a.index < 1 || a.index > MAX) throw new Error(`index ${a.index} outside 1..${MAX}`);
        if (a.state === 'idle') throw new Error('an idle appearance is stored');
      }
      if (granted !== undefined) {
        const prior = before.get(granted);
        if (prior !== undefined && prior !== grantedTo) throw new Error(`index ${granted} granted to ${grantedTo} while ${prior} held it`);
      }
      const lastFor = new Map<string, Notify>();
      for (const n of notifies) {
        const key = `${n.subscriber}|${n.event}|${header(n, 'Call-ID')}|${header(n, 'From')}|${header(n, 'To')}`;
        const cseq = Number(header(n, 'CSeq')!.split(' ')[0]);
        if (cseq <= (lastCseq.get(key) ?? 0)) throw new Error(`CSeq ${cseq} does not increase for ${key}`);
        lastCseq.set(key, cseq);
        const parsed = parseCallInfo(header(n, 'Call-Info')!);
        if (!parsed.ok) throw new Error(`unparsable Call-Info ${header(n, 'Call-Info')}`);
        if (n.event === 'call-info') lastFor.set(n.subscriber, n);
      }
      const expected = apps.map((a) => `${a.index}:${a.state}`).join(',');
      for (const n of lastFor.values()) {
        if (header(n, 'Subscription-State')!.startsWith('terminated')) continue;
        const values = parseCallInfo(header(n, 'Call-Info')!);
        if (!values.ok) throw new Error('unparsable');
        const sca = values.value.map((v) => toScaCallInfo(v)).map((r) => (r.ok ? r.value : undefined));
        const tail = sca.at(-1);
        if (!tail || tail.index !== '*' || tail.state !== 'idle') throw new Error('the idle * tail is missing');
        const shown = sca.slice(0, -1).map((v) => `${v!.index}:${v!.state}`).join(',');
        if (shown !== expected) throw new Error(`NOTIFY shows [${shown}], engine has [${expected}] after ${JSON.stringify(step)}`);
      }
    });
  }), { numRuns: 400 });
  t.ok(steps >= 400 * 5, `checked ${steps} steps`);
});

t.test('the rows written after each step are all a store needs to rebuild the engine', async (t) => {
  fc.assert(fc.property(fc.array(act, { minLength: 5, maxLength: 60, size: 'max' }), (actions) => {
    const store = new RowImage();
    const persist = (b: Bench): void => store.apply(b.takeWrites());
    const b = run(actions, (bench) => persist(bench));
    persist(b);
    const restored = new ScaEngine({ max_appearances: MAX });
    restored.restore(store.snapshot(), b.now);
    const live = (e: ScaEngine) => JSON.stringify({
      subs: e.listSubscriptions(b.now).filter((s) => s.expires > b.now),
      apps: e.listAppearances(),
    });
    if (live(restored) !== live(b.engine)) throw new Error(`restored state differs:\n${live(restored)}\n${live(b.engine)}`);
  }), { numRuns: 300 });
  t.pass('a store fed only the written rows always rebuilds the same state');
});

t.test('competing seizes of one index: exactly one 200, the rest 480, in any order', async (t) => {
  fc.assert(fc.property(fc.shuffledSubarray(Array.from({ length: 30 }, (_, i) => `sip:100@10.1.0.${i}:5060`), { minLength: 2 }), fc.integer({ min: 1, max: 24 }), (contacts, index) => {
    const b = new Bench();
    b.callInfo(contacts[0]!);
    const codes = contacts.map((c) => b.lineSeize(c, index).out.reply.code);
    const wins = codes.filter((c) => c === 200).length;
    if (wins !== 1 || codes.filter((c) => c === 480).length !== contacts.length - 1) throw new Error(`codes ${codes}`);
    if (b.engine.listAppearances().find((a) => a.index === index)?.owner !== contacts[0]) throw new Error('the first seize must own it');
  }), { numRuns: 200 });
  t.pass('1 winner per index in every run');
});
