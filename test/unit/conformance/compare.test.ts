// The conformance runner's comparison, fed made-up trace pairs (no Kamailio): each intended
// deviation passes when our side shows what docs/deviations.md promises, and fails when our side
// falls back to the module's behaviour or is wrong in a way the deviation does not excuse.
import t, { type Test } from 'tap';
import { compare, explain, lineState, type Entry, type Trace, type Verdict } from '../../../test/conformance/compare.js';
import { scenarioSchema, type Scenario } from '../../../test/conformance/runner.js';

const DOM = 'pbx.example.com';
const BOB = `<sip:200@${DOM}>`;

/** The Call-Info of a line state written as in a scenario's `ours`: `1 seized, 2 active <sip:…>`, `idle`. */
function ci(line: string): string {
  const idle = `<sip:${DOM}>;appearance-index=*;appearance-state=idle`;
  if (line === 'idle') return idle;
  return [...line.split(', ').map((a) => {
    const [index, state, uri] = a.split(' ');
    return `<sip:${DOM}>;appearance-index=${index};appearance-state=${state}${uri ? `;appearance-uri="${uri}"` : ''}`;
  }), idle].join(',');
}

/** One subscription's NOTIFYs: [step, line state or a line-seize index, Subscription-State]. */
function dialog(callId: string, event: 'call-info' | 'line-seize', list: Array<[number, string, string, string?]>): Entry[] {
  const tag = callId.replace(/^.*-/, '');
  return list.map(([step, line, state, answered], k) => ({
    step, event, subscription_state: state, call_info: event === 'line-seize' ? `<sip:${DOM}>;appearance-index=${line}` : ci(line),
    cseq: `${k + 1} NOTIFY`, call_id: callId, contact: `sip:100@${DOM}`, from: `<sip:100@${DOM}>;tag=T${tag}`,
    to: `<sip:100@${DOM}>;tag=f${tag}`, ruri: 'sip:100@127.0.0.1:PORT', ...(answered ? { answered } : {}),
  }));
}
const A = 'active;expires=3600';
const sub = (step: number, event = 'call-info', expires = '3600', status = event === 'call-info' ? 202 : 200): Entry =>
  ({ step, to: `SUBSCRIBE ${event}`, status, reason: status === 202 ? 'Accepted' : 'OK', event, expires, to_tagged: 'yes' });
const reply = (step: number, to: string, status: number, more: Entry = {}): Entry => ({ step, to, status, ...more });

function trace(phones: Record<string, Partial<Trace[string]>>): Trace {
  const out: Trace = {};
  for (const who of [...Object.keys(phones), 'rpc', 'race']) out[who] = { replies: [], notifies: [], received: [], ...phones[who] };
  return out;
}
const scenario = (s: unknown): Scenario => scenarioSchema.parse(s);
/** The module's NOTIFY right after a SUBSCRIBE has no ;expires (D2): the first of each dialog, here. */
const moduleFirst = (list: Entry[]) => list.map((n, k) => (k === 0 && /^active;expires=/.test(String(n.subscription_state)) ? { ...n, subscription_state: 'active' } : n));
/** A copy of a trace with one change made to it. */
function edit(tr: Trace, change: (t: Trace) => void): Trace { const c = structuredClone(tr); change(c); return c; }
/** A regression: DIFFERENT, and what explain() prints (our side's failures first) names it. */
function fails(t: Test, v: Verdict, why: RegExp, what: string): void {
  t.equal(v.result, 'DIFFERENT', what);
  t.match(explain(v), why, `${what}: for the right reason`);
}
const notifyOf = (tr: Trace, who: string, callId: string, cseq: number) => tr[who]!.notifies.find((n) => n.call_id === callId && n.cseq === `${cseq} NOTIFY`)!;

t.test('lineState reads a Call-Info the way scenarios write ours', async (t) => {
  t.equal(lineState(ci('1 seized, 2 active <sip:200@pbx.example.com>')), '1 seized, 2 active <sip:200@pbx.example.com>');
  t.equal(lineState(ci('idle')), 'idle');
});

t.test('D2: the first NOTIFY has ;expires on our side; the seconds left must agree', async (t) => {
  const sc = scenario({ name: 'd2', expect: ['D2'], phones: { p1: '100' }, steps: [{ do: 'subscribe', phone: 'p1', event: 'call-info' }, { do: 'subscribe', phone: 'p1', event: 'line-seize', expires: 15, call_info: `<sip:${DOM}>;appearance-index=1` }] });
  const ours = dialog('d2-0', 'call-info', [[0, 'idle', A], [1, '1 seized', 'active;expires=3599']]);
  const seize = dialog('d2-1', 'line-seize', [[1, '1', 'active;expires=15']]);
  const service = trace({ p1: { replies: [sub(0), sub(1, 'line-seize', '15')], notifies: [...ours, ...seize] } });
  const native = trace({ p1: { replies: [sub(0), sub(1, 'line-seize', '15')], notifies: [...moduleFirst(ours), ...moduleFirst(seize)] } });
  native.p1!.notifies[1]!.subscription_state = 'active;expires=3600'; // the module rounds up: within the tolerance
  t.equal(compare(sc, native, service).result, 'intended deviation');

  const bare = edit(service, (s) => { notifyOf(s, 'p1', 'd2-0', 1).subscription_state = 'active'; });
  fails(t, compare(sc, native, bare), /D2: p1 NOTIFY .* without ;expires/, 'ours without ;expires (the module\'s behaviour) fails');
  const short = edit(service, (s) => { notifyOf(s, 'p1', 'd2-0', 1).subscription_state = 'active;expires=15'; });
  fails(t, compare(sc, native, short), /D2: step 0: .* not active;expires=3600/, 'a first NOTIFY with 15 s left of a 3600 s subscription fails');
  const later = edit(service, (s) => { notifyOf(s, 'p1', 'd2-0', 2).subscription_state = 'active;expires=15'; });
  const v = compare(sc, native, later);
  fails(t, v, /p1\.notifies\[1\][^]*expires=3600[^]*expires=15/, 'Subscription-State expires 15 against 3600 in a later NOTIFY fails');
  t.match(v.service.p1!.notifies[1]!.subscription_state, 'expires=15', 'and the numbers stay visible');
  const notFirst = edit(native, (n) => { notifyOf(n, 'p1', 'd2-0', 2).subscription_state = 'active'; });
  fails(t, compare(sc, notFirst, service), /p1\.notifies\[1\]/, 'an expiry-less state is excused only right after a SUBSCRIBE');
});

t.test('D6: a first line-seize of an unknown AoR is granted by us, only that one', async (t) => {
  const sc = scenario({ name: 'd6', expect: ['D6', 'D2'], phones: { p1: '100' }, steps: [{ do: 'subscribe', phone: 'p1', event: 'line-seize', expires: 15, call_info: `<sip:${DOM}>;appearance-index=1` }] });
  const seize = dialog('d6-0', 'line-seize', [[0, '1', 'active;expires=15']]);
  const service = trace({ p1: { replies: [sub(0, 'line-seize', '15')], notifies: seize } });
  const native = trace({ p1: { replies: [reply(0, 'SUBSCRIBE line-seize', 500, { reason: 'Internal Server Error - seize appearance index', to_tagged: 'yes' })] } });
  t.equal(compare(sc, native, service).result, 'intended deviation');
  fails(t, compare(sc, native, structuredClone(native)), /D6: step 0: our reply to the line-seize is 500/, 'ours answering the module\'s 500 fails');
  const busy = edit(service, (s) => { s.p1!.replies[0] = reply(0, 'SUBSCRIBE line-seize', 480, { reason: 'Temporarily Unavailable', to_tagged: 'yes' }); s.p1!.notifies = []; });
  fails(t, compare(sc, native, busy), /D6: step 0: our reply to the line-seize is 480/, 'ours 480 against the module\'s 500 fails');
  const native480 = edit(native, (n) => { n.p1!.replies[0] = reply(0, 'SUBSCRIBE line-seize', 480, { reason: 'Temporarily Unavailable', to_tagged: 'yes' }); });
  fails(t, compare(sc, native480, service), /p1\.replies\[0\][^]*\"status\":480/, '200 against a 480 (not the module\'s D6 behaviour) fails');
  const noIndex = edit(service, (s) => { s.p1!.notifies[0]!.call_info = `<sip:${DOM}>;appearance-index=2`; });
  fails(t, compare(sc, native, noIndex), /D6: .* not an active one for index 1/, 'a line-seize NOTIFY for another index fails');

  const known = scenario({ ...sc, steps: [{ do: 'subscribe', phone: 'p1', event: 'call-info' }, ...sc.steps] });
  const ci0 = dialog('d6-0', 'call-info', [[0, 'idle', A]]);
  const s2 = trace({ p1: { replies: [sub(0), sub(1, 'line-seize', '15')], notifies: [...ci0, ...dialog('d6-1', 'line-seize', [[1, '1', 'active;expires=15']])] } });
  const n2 = trace({ p1: { replies: [sub(0), reply(1, 'SUBSCRIBE line-seize', 480, { reason: 'Temporarily Unavailable', to_tagged: 'yes' })], notifies: moduleFirst(ci0) } });
  t.throws(() => compare(known, n2, s2), /expects D6, but no step/, 'a line-seize after another SUBSCRIBE of the AoR is not D6');
  const both = scenario({ ...known, steps: [...sc.steps, { do: 'subscribe', phone: 'p1', event: 'line-seize', expires: 15, call_info: `<sip:${DOM}>;appearance-index=2` }] });
  const s3 = edit(service, (s) => { s.p1!.replies.push(sub(1, 'line-seize', '15')); s.p1!.notifies.push(...dialog('d6-1', 'line-seize', [[1, '2', 'active;expires=15']])); });
  const n3 = edit(native, (n) => { n.p1!.replies.push(reply(1, 'SUBSCRIBE line-seize', 480, { reason: 'Temporarily Unavailable', to_tagged: 'yes' })); });
  fails(t, compare(both, n3, s3), /p1\.replies\[1\][^]*\"status\":480/, 'the second line-seize is outside D6: 200 against 480 shows');
});

t.test('D7: a line-seize unsubscribe always succeeds here; other replies are not excused', async (t) => {
  const sc = scenario({ name: 'd7', expect: ['D2', 'D7'], phones: { p1: '100' }, steps: [
    { do: 'subscribe', phone: 'p1', event: 'call-info', as: 'ci' },
    { do: 'subscribe', phone: 'p1', event: 'line-seize', expires: 15, call_info: `<sip:${DOM}>;appearance-index=1`, as: 'ls' },
    { do: 'rpc', cmd: 'sca.release_appearance', args: [`sip:100@${DOM}`, '1'] },
    { do: 'refresh', phone: 'p1', dialog: 'ci', expires: 600 },
    { do: 'refresh', phone: 'p1', dialog: 'ls', expires: 0, call_info: `<sip:${DOM}>;appearance-index=1` }] });
  const line: Array<[number, string, string]> = [[0, 'idle', A], [1, '1 seized', A], [2, 'idle', A], [3, 'idle', 'active;expires=600']];
  const replies = [sub(0), sub(1, 'line-seize', '15'), { ...sub(3, 'call-info', '600'), to: 'SUBSCRIBE call-info (refresh)' }];
  const rpc = { replies: [{ step: 2, to: `sca.release_appearance sip:100@${DOM} 1`, output: '' }] };
  const build = (o: { unsub: Entry; atUnsub: string[]; seizeEnd?: string }) => trace({ p1: {
    replies: [...replies, o.unsub],
    notifies: [...dialog('d7-0', 'call-info', [...line, ...o.atUnsub.map((l): [number, string, string] => [4, l, 'active;expires=600'])]),
      ...dialog('d7-1', 'line-seize', [[1, '1', 'active;expires=15'], ...(o.seizeEnd ? [[4, '1', o.seizeEnd]] as Array<[number, string, string]> : [])])],
  }, rpc });
  const ok = reply(4, 'SUBSCRIBE line-seize (refresh)', 200, { reason: 'OK', event: 'line-seize', expires: '0', to_tagged: 'yes' });
  const refused = reply(4, 'SUBSCRIBE line-seize (refresh)', 500, { reason: 'Internal Server Error - release seized line', to_tagged: 'yes' });
  const native = build({ unsub: refused, atUnsub: [] });
  for (const n of native.p1!.notifies) if (n.cseq === '1 NOTIFY' || n.cseq === '4 NOTIFY') n.subscription_state = 'active';
  const service = build({ unsub: ok, atUnsub: ['idle'], seizeEnd: 'terminated' });
  t.equal(compare(sc, native, service).result, 'intended deviation');
  fails(t, compare(sc, native, build({ unsub: refused, atUnsub: [] })), /D7: step 4: our reply .* is 500/, 'ours 500 (the module\'s) fails');
  fails(t, compare(sc, native, build({ unsub: { ...ok, expires: '15' }, atUnsub: ['idle'], seizeEnd: 'terminated' })), /D7: step 4: .*Expires 15/, 'an unsubscribe 200 without Expires 0 fails');
  fails(t, compare(sc, native, build({ unsub: ok, atUnsub: ['idle'] })), /D7: step 4: p1's line-seize \(d7-1\) was not ended/, 'an unsubscribe that leaves the subscription fails');
  fails(t, compare(sc, native, build({ unsub: ok, atUnsub: [`1 active ${BOB}`], seizeEnd: 'terminated' })), /D7: step 4: p1 .* went from idle to 1 active/, 'an unsubscribe that changes the line fails');
  const refresh = edit(service, (s) => { s.p1!.replies[2] = reply(3, 'SUBSCRIBE call-info (refresh)', 500, { reason: 'Server Internal Error', to_tagged: 'yes' }); });
  fails(t, compare(sc, native, refresh), /p1\.replies\[2\][^]*"status":500/, 'a refresh that is not a line-seize unsubscribe is not excused');
});

/** A member's call on line 100 (p1 seizes index 1, calls bob), p2 watching: the steps before the call. */
const callSteps = [
  { do: 'subscribe', phone: 'p2', event: 'call-info' },
  { do: 'subscribe', phone: 'p1', event: 'call-info' },
  { do: 'subscribe', phone: 'p1', event: 'line-seize', expires: 15, call_info: `<sip:${DOM}>;appearance-index=1` },
];
/** Both sides' traces of such a scenario: `line` (from step 1 on) as p1 and p2 see it; p1's line-seize. */
function callTraces(name: string, o: { line: Array<[number, string]>; seize: Array<[number, string]>; replies: Entry[]; received?: Record<string, Entry[]>; module?: boolean }): Trace {
  const fix = (l: Entry[]) => (o.module ? moduleFirst(l) : l);
  const p2 = dialog(`${name}-0`, 'call-info', [[0, 'idle', A], ...o.line.map(([s, l]): [number, string, string] => [s, l, A])]);
  const p1 = dialog(`${name}-1`, 'call-info', [[1, 'idle', A], ...o.line.map(([s, l]): [number, string, string] => [s, l, A])]);
  const seize = dialog(`${name}-2`, 'line-seize', o.seize.map(([s, st]): [number, string, string] => [s, '1', st]));
  return trace({
    p1: { replies: [sub(1), sub(2, 'line-seize', '15'), ...o.replies], notifies: [...fix(p1), ...fix(seize)], received: o.received?.p1 ?? [] },
    p2: { replies: [sub(0)], notifies: fix(p2), received: o.received?.p2 ?? [] },
    bob: { received: o.received?.bob ?? [{ step: 3, ruri: 'sip:200@127.0.0.1:PORT' }] },
  });
}
const seizeEnds: Array<[number, string]> = [[2, 'active;expires=15'], [3, 'terminated;reason=noresource']];

t.test('D9: after a 181 our line shows the call as listed in ours; the module\'s idle does not pass', async (t) => {
  const ours = ['1 seized', '1 progressing', `1 active ${BOB}`, 'idle'];
  const sc = scenario({ name: 'd9', expect: ['D2', 'D9'], ours: { D9: ours }, phones: { p1: '100', p2: '100', bob: '200' }, steps: [...callSteps,
    { do: 'call', phone: 'p1', to: 'bob', as: 'c1', call_info: `<sip:${DOM}>;appearance-index=1`, provisional: [181, 180] }, { do: 'bye', dialog: 'c1', by: 'caller' }] });
  const replies = [reply(3, 'INVITE c1', 200, { pai: BOB }), reply(4, 'BYE c1', 200)];
  const flow = (line: string[]): Array<[number, string]> => [[2, '1 seized'], ...line.map((l, k): [number, string] => [k === line.length - 1 ? 4 : 3, l])];
  const service = callTraces('d9', { line: flow(ours), seize: seizeEnds, replies });
  const native = callTraces('d9', { line: flow(['1 seized', 'idle', 'idle']), seize: [[2, 'active;expires=15']], replies, module: true });
  t.equal(compare(sc, native, service).result, 'intended deviation');
  const fellBack = callTraces('d9', { line: flow(['1 seized', 'idle', 'idle']), seize: [[2, 'active;expires=15']], replies });
  fails(t, compare(sc, native, fellBack), /D9: p1 .* shows \[1 seized \| idle \| idle\]/, 'ours idling the line at the 181 (the module\'s behaviour) fails');
  const held = callTraces('d9', { line: flow(['1 seized', '1 progressing', `1 held ${BOB}`, 'idle']), seize: seizeEnds, replies });
  fails(t, compare(sc, native, held), /D9: p1 .* shows \[1 seized \| 1 progressing \| 1 held/, 'a wrong held state after the 181 fails');
  const busy = callTraces('d9', { line: flow(ours), seize: seizeEnds, replies: [reply(3, 'INVITE c1', 486), replies[1]!] });
  fails(t, compare(sc, native, busy), /p1\.replies\[2\][^]*\"status\":486/, 'the INVITE replies still compare: 486 against 200 fails');
  const before = edit(service, (s) => { notifyOf(s, 'p2', 'd9-0', 2).call_info = ci('1 held'); });
  fails(t, compare(sc, native, before), /p2\.notifies\[1\]/, 'what the line shows before the 181 still compares');
});

t.test('D22: an INVITE naming an unseized index: ours shows the listed flow, the seize ends', async (t) => {
  const ours = ['1 seized, 2 seized', '2 progressing', `2 active ${BOB}`, `2 held ${BOB}`, `2 held ${BOB}`, 'idle'];
  const sc = scenario({ name: 'd22', expect: ['D2', 'D22'], ours: { D22: ours }, phones: { p1: '100', p2: '100', bob: '200' }, steps: [...callSteps,
    { do: 'call', phone: 'p1', to: 'bob', as: 'c1', call_info: `<sip:${DOM}>;appearance-index=2`, provisional: [180] },
    { do: 'hold', dialog: 'c1', direction: 'sendonly', call_info: `<sip:${DOM}>;appearance-index=2` }, { do: 'bye', dialog: 'c1', by: 'caller' }] });
  const replies = [reply(3, 'INVITE c1', 200, { pai: BOB }), reply(4, 're-INVITE c1', 200), reply(5, 'BYE c1', 200)];
  const steps = [3, 3, 3, 4, 4, 5];
  const flow = (line: string[]): Array<[number, string]> => [[2, '1 seized'], ...line.map((l, k): [number, string] => [steps[k] ?? 5, l])];
  const received = { bob: [{ step: 3, ruri: 'sip:200@127.0.0.1:PORT' }, { step: 4, ruri: 'sip:200@127.0.0.1:PORT' }] };
  const service = callTraces('d22', { line: flow(ours), seize: seizeEnds, replies, received });
  const moduleLine = ['1 seized', '1 seized', '1 seized', '1 seized'];
  const native = callTraces('d22', { line: flow(moduleLine), seize: [[2, 'active;expires=15']], replies, received, module: true });
  t.equal(compare(sc, native, service).result, 'intended deviation');
  fails(t, compare(sc, native, callTraces('d22', { line: flow(moduleLine), seize: [[2, 'active;expires=15']], replies, received })), /D22: p1 .* shows \[1 seized \| 1 seized/,
    'ours leaving the call off the line (the module\'s behaviour) fails');
  const held = callTraces('d22', { line: flow(ours.map((l) => l.replace('held', 'active'))), seize: seizeEnds, replies, received });
  fails(t, compare(sc, native, held), /D22: p1 .* shows \[.*2 active <sip:200@pbx\.example\.com> \| 2 active/, 'a wrong held state fails');
  const kept = callTraces('d22', { line: flow(ours), seize: [[2, 'active;expires=15']], replies, received });
  fails(t, compare(sc, native, kept), /D22: step 3: p1's line-seize \(d22-2\) did not end/, 'ours keeping the seized index fails');
  const forked = edit(service, (s) => { s.bob!.received.pop(); });
  fails(t, compare(sc, native, forked), /bob\.received\[1\]/, 'what the remote party received still compares');
});

t.test('D13: a session-level hold shows held on our side, at that step only', async (t) => {
  const sc = scenario({ name: 'd13', expect: ['D2', 'D13'], phones: { p1: '100', p2: '100', bob: '200' }, steps: [...callSteps,
    { do: 'call', phone: 'p1', to: 'bob', as: 'c1', call_info: `<sip:${DOM}>;appearance-index=1`, provisional: [180] },
    { do: 'hold', dialog: 'c1', direction: 'sendonly', sdp: 'session', call_info: `<sip:${DOM}>;appearance-index=1` }, { do: 'bye', dialog: 'c1', by: 'caller' }] });
  const replies = [reply(3, 'INVITE c1', 200, { pai: BOB }), reply(4, 're-INVITE c1', 200), reply(5, 'BYE c1', 200)];
  const line = (hold: string): Array<[number, string]> => [[2, '1 seized'], [3, '1 seized'], [3, '1 progressing'], [3, `1 active ${BOB}`], [4, `1 ${hold} ${BOB}`], [4, `1 ${hold} ${BOB}`], [5, 'idle']];
  const service = callTraces('d13', { line: line('held'), seize: seizeEnds, replies });
  const native = callTraces('d13', { line: line('active'), seize: seizeEnds, replies, module: true });
  t.equal(compare(sc, native, service).result, 'intended deviation');
  fails(t, compare(sc, native, callTraces('d13', { line: line('active'), seize: seizeEnds, replies })), /D13: step 4: p1 .* not index 1 held/, 'ours missing the hold (the module\'s behaviour) fails');
  const early = edit(service, (s) => { notifyOf(s, 'p1', 'd13-1', 4).call_info = ci(`1 held ${BOB}`); });
  fails(t, compare(sc, native, early), /p1\.notifies\[3\]/, 'held shown before the hold step is not excused');
});

t.test('D14: a pickup of a privately held call gets 403 and leaves the call alone', async (t) => {
  const sc = scenario({ name: 'd14', expect: ['D2', 'D14'], phones: { p1: '100', p2: '100', bob: '200' }, steps: [...callSteps,
    { do: 'call', phone: 'p1', to: 'bob', as: 'c1', call_info: `<sip:${DOM}>;appearance-index=1`, provisional: [180] },
    { do: 'hold', dialog: 'c1', direction: 'sendonly', call_info: `<sip:${DOM}>;appearance-index=1;appearance-state=held-private` },
    { do: 'pickup', phone: 'p2', as: 'c2', index: 1 }] });
  const upToHold: Array<[number, string]> = [[2, '1 seized'], [3, '1 seized'], [3, '1 progressing'], [3, `1 active ${BOB}`], [4, `1 held-private ${BOB}`], [4, `1 held-private ${BOB}`]];
  const p1Replies = [reply(3, 'INVITE c1', 200, { pai: BOB }), reply(4, 're-INVITE c1', 200)];
  const received = { bob: [{ step: 3, ruri: 'sip:200@127.0.0.1:PORT' }, { step: 4, ruri: 'sip:200@127.0.0.1:PORT' }] };
  const build = (o: { pickup: number; after: Array<[number, string]>; forked: boolean; module?: boolean; c1?: number }) => {
    const tr = callTraces('d14', { line: [...upToHold, ...o.after], seize: seizeEnds, replies: [reply(3, 'INVITE c1', o.c1 ?? 200, { pai: BOB }), p1Replies[1]!], module: o.module,
      received: { ...received, ...(o.forked ? { p1: [{ step: 5, ruri: 'sip:100@127.0.0.1:PORT' }], p2: [{ step: 5, ruri: 'sip:100@127.0.0.1:PORT' }] } : {}) } });
    tr.p2!.replies.push(reply(5, 'INVITE c2', o.pickup));
    return tr;
  };
  const native = build({ pickup: 408, after: [[5, `1 held-private ${BOB}`], [5, 'idle']], forked: true, module: true });
  const service = build({ pickup: 403, after: [], forked: false });
  t.equal(compare(sc, native, service).result, 'intended deviation');
  fails(t, compare(sc, native, build({ pickup: 408, after: [[5, `1 held-private ${BOB}`], [5, 'idle']], forked: true })), /D14: step 5: our reply to the pickup is 408[^]*p1 received the pickup INVITE/, 'ours relaying the pickup (the module\'s behaviour) fails');
  fails(t, compare(sc, native, build({ pickup: 200, after: [], forked: false })), /D14: step 5: our reply to the pickup is 200/, 'a pickup answered 200 fails');
  fails(t, compare(sc, native, build({ pickup: 403, after: [[5, `1 active ${BOB}`]], forked: false })), /D14: .* went from 1 held-private .* to 1 active/, 'a held call that changes state fails');
  fails(t, compare(sc, native, build({ pickup: 403, after: [], forked: false, c1: 486 })), /p1\.replies\[2\][^]*\"status\":486/, 'another INVITE\'s 486 against 200 is not excused');
});

t.test('D17: an answered incoming call stays shown until its BYE, then an idle NOTIFY follows', async (t) => {
  const sc = scenario({ name: 'd17', expect: ['D2', 'D17'], phones: { p1: '100', p2: '100', bob: '200' }, steps: [
    { do: 'subscribe', phone: 'p2', event: 'call-info' }, { do: 'subscribe', phone: 'p1', event: 'call-info' },
    { do: 'incoming', from: 'bob', line: '100', answer_by: 'p1', as: 'c1', call_info: `<sip:${DOM}>;appearance-index=2` },
    { do: 'wait', ms: 42000 }, { do: 'bye', dialog: 'c1', by: 'caller' }] });
  const build = (line: Array<[number, string]>, module = false) => {
    const tr = trace({
      p1: { replies: [sub(1)], notifies: dialog('d17-1', 'call-info', [[1, 'idle', A], ...line.map(([s, l]): [number, string, string] => [s, l, A])]) },
      p2: { replies: [sub(0)], notifies: dialog('d17-0', 'call-info', [[0, 'idle', A], ...line.map(([s, l]): [number, string, string] => [s, l, A])]) },
      bob: { replies: [reply(2, 'INVITE c1', 200), reply(4, 'BYE c1', 200)] },
    });
    if (module) for (const p of ['p1', 'p2']) tr[p]!.notifies = moduleFirst(tr[p]!.notifies);
    return tr;
  };
  const service = build([[2, `2 active ${BOB}`], [4, 'idle']]);
  t.equal(compare(sc, build([[2, `2 active ${BOB}`]], true), service).result, 'intended deviation', 'the module never idles the line');
  const purged = build([[2, `2 active ${BOB}`], [3, 'idle']], true);
  for (const p of ['p1', 'p2']) purged[p]!.notifies.at(-1)!.subscription_state = 'active;expires=3565';
  t.equal(compare(sc, purged, service).result, 'intended deviation', 'the module\'s purge idles it 8 s earlier: the seconds left differ, nothing else');
  fails(t, compare(sc, build([[2, `2 active ${BOB}`]], true), build([[2, `2 active ${BOB}`]])), /D17: p1 .* got no NOTIFY without the call after its BYE/, 'ours without the final idle NOTIFY fails');
  fails(t, compare(sc, purged, build([[2, `2 active ${BOB}`], [3, 'idle']])), /D17: p1 .* lost the live call at step 3/, 'ours idling the live call before its BYE (the purge) fails');
  fails(t, compare(sc, build([[2, `2 active ${BOB}`]], true), build([[2, `2 active ${BOB}`], [4, `2 held ${BOB}`]])), /D17: p1 .* got no NOTIFY without the call after its BYE/, 'a NOTIFY after the BYE that still shows the call fails');
});

t.test('D30: a SUBSCRIBE naming another dialog gets 481 here and changes nothing; later steps compare', async (t) => {
  const sc = scenario({ name: 'd30', expect: ['D2', 'D30'], phones: { p1: '100' }, steps: [
    { do: 'subscribe', phone: 'p1', event: 'call-info', as: 'ci' }, { do: 'refresh', phone: 'p1', dialog: 'ci', to_tag: 'nosuchtag' },
    { do: 'subscribe', phone: 'p1', event: 'line-seize', expires: 15, call_info: `<sip:${DOM}>;appearance-index=1` }] });
  const seize = dialog('d30-2', 'line-seize', [[2, '1', 'active;expires=15']]);
  const service = trace({ p1: {
    replies: [sub(0), reply(1, 'SUBSCRIBE call-info (refresh)', 481, { reason: 'Call Leg/Transaction Does Not Exist', to_tagged: 'yes' }), sub(2, 'line-seize', '15')],
    notifies: [...dialog('d30-0', 'call-info', [[0, 'idle', A], [2, '1 seized', A]]), ...seize],
  } });
  const native = trace({ p1: {
    replies: [sub(0), { ...sub(1), to: 'SUBSCRIBE call-info (refresh)' }, sub(2, 'line-seize', '15')],
    notifies: [...dialog('d30-0', 'call-info', [[0, 'idle', 'active'], [1, 'idle', 'active'], [2, '1 seized', A]]), ...moduleFirst(seize)],
  } });
  // The module's NOTIFY for the forged SUBSCRIBE took CSeq 2: its next one is 3, ours 2.
  const nat = native;
  t.equal(compare(sc, nat, service).result, 'intended deviation');
  fails(t, compare(sc, nat, edit(nat, (n) => { for (const x of n.p1!.notifies) if (x.subscription_state === 'active') x.subscription_state = A; })), /D30: step 1: our reply .* is 202/,
    'ours matching on the Contact (the module\'s behaviour) fails');
  const held = edit(service, (s) => { notifyOf(s, 'p1', 'd30-0', 2).call_info = ci('1 held'); });
  fails(t, compare(sc, nat, held), /p1\.notifies\[1\]/, 'a wrong state in a NOTIFY after the forged SUBSCRIBE fails');
});

t.test('D5: after a 481 the subscription is gone: no more NOTIFYs, one less in the count', async (t) => {
  const sc = scenario({ name: 'd5', expect: ['D2', 'D5'], phones: { p1: '100', p2: '100' }, steps: [
    { do: 'subscribe', phone: 'p2', event: 'call-info' }, { do: 'subscribe', phone: 'p1', event: 'call-info' },
    { do: 'notify_answer', phone: 'p2', status: 481 },
    { do: 'subscribe', phone: 'p1', event: 'line-seize', expires: 15, call_info: `<sip:${DOM}>;appearance-index=1`, as: 'ls' },
    { do: 'refresh', phone: 'p1', dialog: 'ls', expires: 0, call_info: `<sip:${DOM}>;appearance-index=1` },
    { do: 'rpc', cmd: 'sca.subscription_count', args: ['call-info'] }] });
  const build = (o: { p2After: boolean; count: string; module?: boolean }) => {
    const p2 = dialog('d5-0', 'call-info', [[0, 'idle', A], [3, '1 seized', A, '481'], ...(o.p2After ? [[4, 'idle', A]] as Array<[number, string, string]> : [])]);
    const p1 = [...dialog('d5-1', 'call-info', [[1, 'idle', A], [3, '1 seized', A], [4, 'idle', A]]), ...dialog('d5-3', 'line-seize', [[3, '1', 'active;expires=15'], [4, '1', 'terminated']])];
    const unsub = reply(4, 'SUBSCRIBE line-seize (refresh)', 200, { reason: 'OK', event: 'line-seize', expires: '0', to_tagged: 'yes' });
    const tr = trace({ p1: { replies: [sub(1), sub(3, 'line-seize', '15'), unsub], notifies: p1 }, p2: { replies: [sub(0)], notifies: p2 },
      rpc: { replies: [{ step: 5, to: 'sca.subscription_count call-info', output: o.count }] } });
    if (o.module) for (const p of ['p1', 'p2']) tr[p]!.notifies = tr[p]!.notifies.map((n) => (n.cseq === '1 NOTIFY' ? { ...n, subscription_state: 'active' } : n));
    return tr;
  };
  const native = build({ p2After: true, count: '2 call-info', module: true });
  t.equal(compare(sc, native, build({ p2After: false, count: '1 call-info' })).result, 'intended deviation');
  fails(t, compare(sc, native, build({ p2After: true, count: '2 call-info' })), /D5: p2 .* after answering 481/, 'ours keeping the subscription (the module\'s behaviour) fails');
  fails(t, compare(sc, native, build({ p2After: false, count: '2 call-info' })), /D5: step 5: ours says \"2 call-info\"/, 'a count that still includes it fails');
  fails(t, compare(sc, build({ p2After: true, count: '7 call-info', module: true }), build({ p2After: false, count: '0 call-info' })),
    /D5: step 5: ours says "0 call-info", the module "7 call-info" less the 1 subscription\(s\) we removed is "6 call-info"/, 'counts 0 against 7 fail');
});

t.test('D28: deactivated subscriptions leave the count here', async (t) => {
  const sc = scenario({ name: 'd28', expect: ['D2', 'D28'], phones: { p1: '100' }, steps: [
    { do: 'subscribe', phone: 'p1', event: 'call-info' }, { do: 'rpc', cmd: 'sca.deactivate_all_subscriptions' },
    { do: 'rpc', cmd: 'sca.subscription_count', args: ['call-info'] }] });
  const build = (count: string, first = A) => trace({
    p1: { replies: [sub(0)], notifies: dialog('d28-0', 'call-info', [[0, 'idle', first], [1, 'idle', 'terminated;reason=deactivated']]) },
    rpc: { replies: [{ step: 1, to: 'sca.deactivate_all_subscriptions', output: 'Deactivating call-info subscription from sip:100@127.0.0.1:PORT' }, { step: 2, to: 'sca.subscription_count call-info', output: count }] },
  });
  const native = build('1 call-info', 'active');
  t.equal(compare(sc, native, build('0 call-info')).result, 'intended deviation');
  fails(t, compare(sc, native, build('1 call-info')), /D28: step 2: ours says \"1 call-info\"/, 'ours keeping them until the purge (the module\'s behaviour) fails');
  fails(t, compare(sc, build('7 call-info', 'active'), build('0 call-info')), /ours says \"0 call-info\", the module \"7 call-info\"/, 'counts 0 against 7 fail');
});

t.test('D35: a bad param is named before the module\'s usage line', async (t) => {
  const sc = scenario({ name: 'd35', expect: ['D35'], phones: {}, steps: [{ do: 'rpc', cmd: 'sca.subscription_count', args: ['foo'] }] });
  const usage = 'usage: sca.subscription_count {call-info | line-seize}';
  const build = (output: string) => trace({ rpc: { replies: [{ step: 0, to: 'sca.subscription_count foo', output }] } });
  const native = build(`error: 500 - ${usage}`);
  t.equal(compare(sc, native, build(`error: 500 - event "foo" must be call-info or line-seize; ${usage}`)).result, 'intended deviation');
  fails(t, compare(sc, native, build(`error: 500 - ${usage}`)), /D35: step 0: ours says "error: 500 - usage/, 'the usage line alone (the module\'s behaviour) fails');
  fails(t, compare(sc, native, build('error: 500 - event "foo" is wrong; usage: something else')), /D35: step 0/, 'another usage line fails');
});

t.test('D4: a new subscription after an unsubscribe starts at CSeq 1 here', async (t) => {
  const sc = scenario({ name: 'd4', expect: ['D2', 'D4'], phones: { p1: '100', p2: '100' }, steps: [
    { do: 'subscribe', phone: 'p1', event: 'call-info' }, { do: 'race', phones: ['p1', 'p2'], index: 1 }, { do: 'race', phones: ['p1', 'p2'], index: 2 }] });
  const race = (first: number, second: number, module = false): Entry[] => [
    ...dialog('d4-1-race', 'line-seize', [[1, '1', module ? 'active' : 'active;expires=15'], [1, '1', 'terminated']]),
    ...dialog('d4-2-race', 'line-seize', [[2, '2', module ? 'active' : 'active;expires=15'], [2, '2', 'terminated']]).map((n, k) => ({ ...n, cseq: `${(k === 0 ? first : second)} NOTIFY` })),
  ].map((n) => Object.fromEntries(Object.entries(n).filter(([k]) => !['contact', 'from', 'to', 'ruri'].includes(k))) as Entry);
  const outcome = [{ step: 1, to: 'race for index 1', outcome: '200 OK / 480 Temporarily Unavailable' }, { step: 1, to: 'winner\'s unsubscribe of index 1', outcome: '200 OK', expires: '0' },
    { step: 2, to: 'race for index 2', outcome: '200 OK / 480 Temporarily Unavailable' }, { step: 2, to: 'winner\'s unsubscribe of index 2', outcome: '200 OK', expires: '0' }];
  const line = dialog('d4-0', 'call-info', [[0, 'idle', A], [1, '1 seized', A], [1, 'idle', A], [2, '2 seized', A], [2, 'idle', A]]);
  const build = (first: number, second: number, module = false) => trace({ p1: { replies: [sub(0)], notifies: module ? moduleFirst(line) : line }, race: { replies: outcome, notifies: race(first, second, module) } });
  t.equal(compare(sc, build(3, 4, true), build(1, 2)).result, 'intended deviation', 'the module revived the subscription and counts on');
  t.equal(compare(sc, build(1, 2, true), build(1, 2)).result, 'intended deviation', 'another phone won: no revival, nothing to excuse');
  fails(t, compare(sc, build(3, 4, true), build(3, 4)), /D4: step 2: race .* has CSeq 3 NOTIFY/, 'ours reviving it (the module\'s behaviour) fails');
});

t.test('an expected deviation the scenario has no step for is an error', async (t) => {
  const sc = scenario({ name: 'none', expect: ['D14'], phones: { p1: '100' }, steps: [{ do: 'subscribe', phone: 'p1', event: 'call-info' }] });
  const tr = trace({ p1: { replies: [sub(0)], notifies: dialog('none-0', 'call-info', [[0, 'idle', A]]) } });
  t.throws(() => compare(sc, tr, tr), /expects D14, but no step/);
});
