// The comparison of a scenario's two traces: what always differs is normalised away, then each
// deviation the scenario expects (docs/deviations.md) checks our side of it and rewrites only the
// steps it is about. No Kamailio here: test/unit/conformance/compare.test.ts feeds it made-up traces.
import { isDeepStrictEqual } from 'node:util';
import type { Scenario } from './runner.js';

/** One recorded reply, NOTIFY or received INVITE; `step` is the scenario step it belongs to. */
export type Entry = Record<string, string | number | undefined>;
export type Trace = Record<string, { replies: Entry[]; notifies: Entry[]; received: Entry[] }>;
type List = 'replies' | 'notifies' | 'received';
const LISTS: List[] = ['replies', 'notifies', 'received'];

export type Verdict = {
  result: 'equal' | 'intended deviation' | 'DIFFERENT';
  native: Trace;
  service: Trace;
  /** what our side of an expected deviation got wrong */
  failures: string[];
};

/**
 * Seconds left (`expires=` in Subscription-State, Contact) may differ by this much: both stacks
 * play the same steps, but not in the same instant, and they round differently (3600 vs 3599).
 * A scenario with a purge interval gets that much more: a timer's NOTIFY goes out at a purge tick,
 * and the two stacks' ticks are not in step.
 */
export const SECONDS_TOLERANCE = 5;

/** What always differs between two runs: proxy-made tags, phone ports, clock times. */
export function normalise(trace: Trace): Trace {
  const tags = new Map<string, string>();
  const tag = (t: string) => { if (!tags.has(t)) tags.set(t, `T${tags.size + 1}`); return tags.get(t)!; };
  const fix = (v: unknown): unknown => {
    if (typeof v !== 'string') return v;
    return v.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT').replace(/\b1\d{9}\b/g, 'EPOCH')
      .replace(/;tag=([0-9a-f]{32}[-.][0-9a-f]+)/g, (_m, t: string) => `;tag=${tag(t)}`);
  };
  const each = (list: Entry[] | undefined) => (list ?? []).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, fix(v)])) as Entry);
  return Object.fromEntries(Object.entries(trace).map(([n, t]) => [n, { replies: each(t.replies), notifies: each(t.notifies), received: each(t.received) }]));
}

/** Both traces as compared: without the step each entry belongs to, without absent fields. */
const bare = (e: Entry | undefined) => e && Object.fromEntries(Object.entries(e).filter(([k, v]) => k !== 'step' && v !== undefined));
const same = (a: Entry | undefined, b: Entry | undefined) => isDeepStrictEqual(bare(a), bare(b));
const sameTrace = (a: Trace, b: Trace) => [...new Set([...Object.keys(a), ...Object.keys(b)])].every((who) =>
  LISTS.every((l) => { const x = a[who]?.[l] ?? []; const y = b[who]?.[l] ?? []; return x.length === y.length && x.every((e, i) => same(e, y[i])); }));

/**
 * `expires=<seconds>` values that differ by at most the tolerance become `expires=N` on both
 * sides (a larger difference stays visible: 15 against 3600 is a bug, 3599 against 3600 is not).
 */
function reconcileSeconds(a: Trace, b: Trace, tolerance: number): void {
  const secs = (v: string) => [...v.matchAll(/expires=(\d+)/g)].map((m) => Number(m[1]));
  const blank = (v: string) => v.replace(/expires=\d+/g, 'expires=N');
  for (const who of Object.keys(a)) {
    for (const l of LISTS) {
      const x = a[who]![l];
      const y = b[who]?.[l] ?? [];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        for (const [k, va] of Object.entries(x[i]!)) {
          const vb = y[i]![k];
          if (typeof va !== 'string' || typeof vb !== 'string' || va === vb || blank(va) !== blank(vb)) continue;
          const [sa, sb] = [secs(va), secs(vb)];
          if (sa.every((s, j) => Math.abs(s - sb[j]!) <= tolerance)) { x[i]![k] = blank(va); y[i]![k] = blank(vb); }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// What a deviation works with

/** One side's NOTIFYs of one dialog, in CSeq order (as recorded), with their phone. */
interface DialogView { who: string; callId: string; notifies: Entry[] }

export interface Ctx {
  scenario: Scenario;
  native: Trace;
  service: Trace;
  fail(message: string): void;
  /** subscriptions we removed and the module keeps: sca.subscription_count is lower by these */
  removed: Array<{ id: string; step: number; event: string }>;
}

export interface Deviation {
  /** The steps of a scenario this deviation is about (none: the scenario does not show it). */
  steps(scenario: Scenario): number[];
  /** Asserts our side in those steps, then rewrites the difference there, on both sides. */
  apply(ctx: Ctx, steps: number[]): void;
}

const num = (v: unknown) => Number.parseInt(String(v ?? ''), 10);
const cseqOf = (n: Entry) => num(n.cseq);
const stepOf = (e: Entry) => (typeof e.step === 'number' ? e.step : -1);
const expiresOf = (state: unknown) => { const m = /^active;expires=(\d+)$/.exec(String(state ?? '')); return m ? Number(m[1]) : undefined; };
const is2xx = (r: Entry | undefined) => r !== undefined && num(r.status) >= 200 && num(r.status) < 300;
const describe = (n: Entry | undefined) => (n ? `CSeq ${n.cseq} (${n.event}, ${n.subscription_state}, ${n.call_info})` : 'none');

/** The Call-ID the runner gives the dialog a subscribe step (or a race) opens. */
const subscribeCallId = (sc: Scenario, i: number) => (sc.steps[i]!.do === 'race' ? `${sc.name}-${i}-race` : `${sc.name}-${i}`);
/** The subscribe step that named a dialog (`as`), for a refresh. */
function namedSubscribe(sc: Scenario, name: string): number {
  const i = sc.steps.findIndex((s) => s.do === 'subscribe' && s.as === name);
  if (i < 0) throw new Error(`${sc.name}: no subscribe step names dialog ${name}`);
  return i;
}
const indexIn = (callInfo: string | undefined) => { const m = /appearance-index=(\d+)/.exec(callInfo ?? ''); return m ? Number(m[1]) : undefined; };

function dialog(t: Trace, who: string, callId: string): DialogView {
  return { who, callId, notifies: (t[who]?.notifies ?? []).filter((n) => n.call_id === callId) };
}
/** The phone (or `race`) whose NOTIFYs hold a dialog. */
function holderOf(sc: Scenario, i: number): string {
  const s = sc.steps[i]!;
  if (s.do === 'race') return 'race';
  if (s.do === 'subscribe') return s.phone;
  throw new Error(`${sc.name}: step ${i} opens no subscription`);
}
/** The call-info dialogs of a line (every phone whose user is `user`), on one side. */
function callInfoDialogs(sc: Scenario, t: Trace, user: string): DialogView[] {
  const out: DialogView[] = [];
  for (const [who, u] of Object.entries(sc.phones)) {
    if (u !== user) continue;
    const ids = [...new Set((t[who]?.notifies ?? []).filter((n) => n.event === 'call-info').map((n) => String(n.call_id)))];
    out.push(...ids.map((id) => dialog(t, who, id)));
  }
  return out;
}
const dropNotifies = (t: Trace, who: string, drop: (n: Entry) => boolean) => { if (t[who]) t[who]!.notifies = t[who]!.notifies.filter((n) => !drop(n)); };
const replyAt = (t: Trace, who: string, step: number, to?: string) =>
  (t[who]?.replies ?? []).find((r) => r.step === step && (to === undefined || r.to === to));

/**
 * A call-info value as a line state, the form of a scenario's `ours` lists: `2 active <sip:200@…>`
 * per appearance (index, state, appearance-uri), comma-separated; the trailing
 * `appearance-index=*;appearance-state=idle` is left out; a line with no appearance is `idle`.
 */
export function lineState(callInfo: unknown): string {
  if (typeof callInfo !== 'string') return '(no Call-Info)';
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (const ch of callInfo) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === '<') depth++;
    if (!quoted && ch === '>') depth--;
    if (ch === ',' && depth === 0 && !quoted) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  const shown = parts.map((p) => {
    const param = (k: string) => new RegExp(`;\\s*${k}=("[^"]*"|[^;]*)`).exec(p)?.[1]?.replace(/^"|"$/g, '');
    const [index, state, uri] = [param('appearance-index'), param('appearance-state'), param('appearance-uri')];
    if (index === '*' && state === 'idle') return '';
    return [index, state, uri].filter((x) => x !== undefined).join(' ');
  }).filter((x) => x !== '');
  return shown.length > 0 ? shown.join(', ') : 'idle';
}
/** The appearance a line state shows for an index: `active <sip:…>`, `held`, … or undefined. */
const appearance = (callInfo: unknown, index: number) =>
  lineState(callInfo).split(', ').find((a) => a.startsWith(`${index} `))?.slice(String(index).length + 1);

/**
 * For deviations that change what the line shows for the rest of a scenario (D9, D22): our side's
 * call-info NOTIFYs from `step` on, in every call-info dialog of the line, must show the states the
 * scenario lists in `ours.<id>`, with CSeqs that go on from the dialog's earlier ones and the same
 * dialog headers; then those NOTIFYs leave the comparison, on both sides.
 */
function assertLineFlow(ctx: Ctx, id: string, user: string, step: number): void {
  const want = ctx.scenario.ours?.[id];
  if (!want) throw new Error(`${ctx.scenario.name}: ${id} changes the rest of the flow: list our line states in "ours": {"${id}": [...]}`);
  const dialogs = callInfoDialogs(ctx.scenario, ctx.service, user);
  if (dialogs.length === 0) ctx.fail(`${id}: no call-info dialog of line ${user} on our side`);
  for (const d of dialogs) {
    const before = d.notifies.filter((n) => stepOf(n) < step);
    const after = d.notifies.filter((n) => stepOf(n) >= step);
    const got = after.map((n) => lineState(n.call_info));
    if (!isDeepStrictEqual(got, want)) ctx.fail(`${id}: ${d.who} (${d.callId}) from step ${step} shows [${got.join(' | ')}], the deviation promises [${want.join(' | ')}]`);
    const first = cseqOf(before.at(-1) ?? { cseq: '0' }) + 1;
    after.forEach((n, k) => {
      if (cseqOf(n) !== first + k) ctx.fail(`${id}: ${d.who} (${d.callId}) CSeq ${n.cseq} where ${first + k} was due`);
      if (expiresOf(n.subscription_state) === undefined) ctx.fail(`${id}: ${d.who} (${d.callId}) CSeq ${n.cseq} is not active: ${n.subscription_state}`);
      const head = before[0];
      for (const k2 of ['event', 'from', 'to', 'contact', 'route', 'ruri']) {
        if (head && head[k2] !== n[k2]) ctx.fail(`${id}: ${d.who} (${d.callId}) CSeq ${n.cseq} has ${k2} ${String(n[k2])}, the dialog's ${String(head[k2])}`);
      }
    });
  }
  for (const t of [ctx.native, ctx.service]) {
    for (const d of callInfoDialogs(ctx.scenario, t, user)) dropNotifies(t, d.who, (n) => n.call_id === d.callId && stepOf(n) >= step);
  }
}

/**
 * The caller's line-seize subscription (its last before the call) must end from the call step on,
 * as it does when a call proceeds: our side gets a terminated NOTIFY in it. What both sides got
 * in it from that step on then leaves the comparison (the module's depends on the deviation).
 */
function assertSeizeEnds(ctx: Ctx, id: string, phone: string, step: number): void {
  const seize = lastSeize(ctx.scenario, phone, step);
  if (seize < 0) return;
  const callId = subscribeCallId(ctx.scenario, seize);
  const ended = dialog(ctx.service, phone, callId).notifies.filter((n) => stepOf(n) >= step);
  if (!ended.some((n) => String(n.subscription_state).startsWith('terminated'))) {
    ctx.fail(`${id}: step ${step}: ${phone}'s line-seize (${callId}) did not end: it got ${ended.map(describe).join('; ') || 'nothing'}`);
  }
  for (const t of [ctx.native, ctx.service]) dropNotifies(t, phone, (n) => n.call_id === callId && stepOf(n) >= step);
}

/** The user (line) a call's member is on: the caller's for a call or pickup, the called line for an incoming call. */
function callerLine(sc: Scenario, i: number): string {
  const s = sc.steps[i]!;
  if (s.do === 'incoming') return s.line;
  if (s.do === 'call' || s.do === 'pickup') return sc.phones[s.phone]!;
  throw new Error(`${sc.name}: step ${i} is no call`);
}
/** The last line-seize subscribe step of a phone before step i (-1: none). */
function lastSeize(sc: Scenario, phone: string, i: number): number {
  let k = -1;
  sc.steps.slice(0, i).forEach((e, j) => { if (e.do === 'subscribe' && e.event === 'line-seize' && e.phone === phone) k = j; });
  return k;
}
/** The call step (call or incoming) that opened a call named `as`. */
function callStep(sc: Scenario, name: string): number {
  return sc.steps.findIndex((s) => (s.do === 'call' || s.do === 'incoming' || s.do === 'pickup') && s.as === name);
}

// ---------------------------------------------------------------------------------------------
// The deviations, keyed by docs/deviations.md ids

export const DEVIATIONS: Record<string, Deviation> = {
  // D2: the module's NOTIFY right after a SUBSCRIBE (initial, refresh, re-SUBSCRIBE, race) says
  // `active` without ;expires. Ours: every active NOTIFY carries ;expires=<seconds left>, and the
  // one right after a 2xx to a SUBSCRIBE carries the Expires that 2xx granted (a second or two
  // less). Touches only the native NOTIFY right after each SUBSCRIBE, and only when it is `active`.
  D2: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'subscribe' || s.do === 'refresh' || s.do === 'race' ? [i] : [])),
    apply(ctx, steps) {
      for (const [who, t] of Object.entries(ctx.service)) {
        for (const n of t.notifies) {
          if (String(n.subscription_state ?? '').startsWith('active') && expiresOf(n.subscription_state) === undefined) {
            ctx.fail(`D2: ${who} NOTIFY ${describe(n)} in ${n.call_id}: an active Subscription-State without ;expires`);
          }
        }
      }
      const sc = ctx.scenario;
      for (const i of steps) {
        const s = sc.steps[i]!;
        let who: string;
        let callId: string;
        let granted: number;
        if (s.do === 'race') {
          who = 'race';
          callId = subscribeCallId(sc, i);
          granted = s.expires;
          if (!(ctx.service.race?.notifies ?? []).some((n) => n.call_id === callId)) continue; // nobody won
        } else {
          const phone = s.do === 'subscribe' || s.do === 'refresh' ? s.phone : '';
          const reply = replyAt(ctx.service, phone, i);
          if (!is2xx(reply) || !(num(reply!.expires) > 0)) continue; // no subscription made or kept
          who = phone;
          callId = s.do === 'refresh' ? subscribeCallId(sc, namedSubscribe(sc, s.dialog)) : subscribeCallId(sc, i);
          granted = num(reply!.expires);
        }
        const ours = dialog(ctx.service, who, callId).notifies.find((n) => stepOf(n) >= i);
        const left = expiresOf(ours?.subscription_state);
        if (left === undefined || left > granted || left < granted - 2) {
          ctx.fail(`D2: step ${i}: the NOTIFY after the SUBSCRIBE (${who}, ${callId}) is ${describe(ours)}, not active;expires=${granted}`);
          continue;
        }
        const theirs = dialog(ctx.native, who, callId).notifies.find((n) => stepOf(n) >= i);
        if (theirs && theirs.subscription_state === 'active') theirs.subscription_state = ours!.subscription_state;
      }
    },
  },

  // D4: the module revives a terminated subscription for a new SUBSCRIBE from the same phone and
  // goes on counting its CSeq; ours is gone and the new dialog starts at 1. About the dialogs
  // opened after an unsubscribe of the same event: ours must count 1, 2, … there; the module's
  // CSeqs in those dialogs are renumbered from 1 (nothing else in them changes).
  D4: {
    steps: (sc) => sc.steps.flatMap((s, i) => {
      const event = s.do === 'race' ? 'line-seize' : s.do === 'subscribe' ? s.event : undefined;
      if (!event) return [];
      const ended = sc.steps.slice(0, i).some((e) => e.do === 'race' ? event === 'line-seize'
        : e.do === 'refresh' && e.expires === 0 && sc.steps[namedSubscribe(sc, e.dialog)]!.do === 'subscribe'
          && (sc.steps[namedSubscribe(sc, e.dialog)] as { event: string | null }).event === event);
      return ended ? [i] : [];
    }),
    apply(ctx, steps) {
      for (const i of steps) {
        const who = holderOf(ctx.scenario, i);
        const callId = subscribeCallId(ctx.scenario, i);
        const ours = dialog(ctx.service, who, callId).notifies;
        ours.forEach((n, k) => { if (cseqOf(n) !== k + 1) ctx.fail(`D4: step ${i}: ${who} (${callId}) NOTIFY #${k + 1} has CSeq ${n.cseq}: a new subscription starts at 1`); });
        const theirs = dialog(ctx.native, who, callId).notifies;
        if (theirs.every((n, k) => cseqOf(n) === cseqOf(theirs[0]!) + k)) theirs.forEach((n, k) => { n.cseq = `${k + 1} NOTIFY`; });
      }
    },
  },

  // D5: a 481 to a NOTIFY ends that subscription here; the module keeps sending to it. About the
  // dialogs a phone answered 481 after a notify_answer 481 step: ours sends nothing more in them
  // (and sca.subscription_count is lower by them); the module's later NOTIFYs there are left out.
  D5: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'notify_answer' && s.status === 481 ? [i] : [])),
    apply(ctx, steps) {
      for (const i of steps) {
        const s = ctx.scenario.steps[i] as { phone: string };
        const answered = (t: Trace) => (t[s.phone]?.notifies ?? []).filter((n) => n.answered === '481' && stepOf(n) >= i);
        const ours = answered(ctx.service);
        if (ours.length === 0) ctx.fail(`D5: step ${i}: ${s.phone} answered no NOTIFY with 481 on our side`);
        for (const n of ours) {
          const later = dialog(ctx.service, s.phone, String(n.call_id)).notifies.filter((m) => cseqOf(m) > cseqOf(n));
          if (later.length > 0) ctx.fail(`D5: ${s.phone} (${n.call_id}) got ${describe(later[0])} after answering 481: the subscription must be gone`);
          ctx.removed.push({ id: 'D5', step: stepOf(n), event: String(n.event) });
        }
        for (const n of answered(ctx.native)) dropNotifies(ctx.native, s.phone, (m) => m.call_id === n.call_id && cseqOf(m) > cseqOf(n));
      }
    },
  },

  // D6: a line-seize for an AoR that never had a subscription: the module answers 500 (seize
  // appearance index), we grant it. About the line-seize SUBSCRIBEs that come before any other
  // SUBSCRIBE of that AoR: ours must answer 200 and send the line-seize NOTIFY naming the index;
  // the module's reply (when it is the 500) and that dialog then compare as ours.
  D6: {
    steps: (sc) => sc.steps.flatMap((s, i) => {
      if (s.do !== 'subscribe' || s.event !== 'line-seize') return [];
      const user = sc.phones[s.phone];
      return sc.steps.slice(0, i).some((e) => e.do === 'subscribe' && sc.phones[e.phone] === user) ? [] : [i];
    }),
    apply(ctx, steps) {
      for (const i of steps) {
        const s = ctx.scenario.steps[i] as { phone: string; call_info?: string };
        const callId = subscribeCallId(ctx.scenario, i);
        const reply = replyAt(ctx.service, s.phone, i);
        if (num(reply?.status) !== 200) { ctx.fail(`D6: step ${i}: our reply to the line-seize is ${reply?.status} ${reply?.reason}, not 200`); continue; }
        const ours = dialog(ctx.service, s.phone, callId).notifies;
        const index = indexIn(s.call_info);
        const first = ours[0];
        if (!first || first.event !== 'line-seize' || expiresOf(first.subscription_state) === undefined
          || (index !== undefined && first.call_info !== `<sip:${domainOf(s.call_info)}>;appearance-index=${index}`)) {
          ctx.fail(`D6: step ${i}: our line-seize NOTIFY is ${describe(first)}, not an active one for index ${index}`);
          continue;
        }
        const theirs = replyAt(ctx.native, s.phone, i);
        if (num(theirs?.status) !== 500) continue; // not the module's behaviour: left to compare
        ctx.native[s.phone]!.replies[ctx.native[s.phone]!.replies.indexOf(theirs!)] = { ...reply! };
        dropNotifies(ctx.native, s.phone, (n) => n.call_id === callId);
        ctx.native[s.phone]!.notifies.push(...ours.map((n) => ({ ...n })));
        ctx.native[s.phone]!.notifies = inCallIdOrder(ctx.native[s.phone]!.notifies);
      }
    },
  },

  // D7: an unsubscribe (Expires 0) of a line-seize whose index is no longer in use: the module
  // answers 500 (release seized line) and sends nothing; ours always succeeds. About the line-seize
  // unsubscribe steps: ours must answer 200 with Expires 0 and end the subscription (a terminated
  // NOTIFY), and what the line's call-info subscribers get in that step must show the line as it
  // was (the unsubscribe releases nothing that is in use). Where the module answered 500, its reply
  // compares as ours and our NOTIFYs of that step are left out.
  D7: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'refresh' && s.expires === 0
      && (sc.steps[namedSubscribe(sc, s.dialog)] as { event: string | null }).event === 'line-seize' ? [i] : [])),
    apply(ctx, steps) {
      const sc = ctx.scenario;
      for (const i of steps) {
        const s = sc.steps[i] as { phone: string; dialog: string };
        const callId = subscribeCallId(sc, namedSubscribe(sc, s.dialog));
        const reply = replyAt(ctx.service, s.phone, i);
        if (num(reply?.status) !== 200 || reply?.expires !== '0') { ctx.fail(`D7: step ${i}: our reply to the line-seize unsubscribe is ${reply?.status} ${reply?.reason} (Expires ${reply?.expires}), not 200 with Expires 0`); continue; }
        const ended = dialog(ctx.service, s.phone, callId).notifies.filter((n) => stepOf(n) === i);
        if (!ended.some((n) => String(n.subscription_state).startsWith('terminated'))) ctx.fail(`D7: step ${i}: ${s.phone}'s line-seize (${callId}) was not ended: it got ${ended.map(describe).join('; ') || 'nothing'}`);
        const lines = callInfoDialogs(sc, ctx.service, sc.phones[s.phone]!);
        for (const d of lines) {
          for (const n of d.notifies.filter((m) => stepOf(m) === i)) {
            const before = d.notifies[d.notifies.indexOf(n) - 1];
            if (lineState(n.call_info) !== lineState(before?.call_info)) ctx.fail(`D7: step ${i}: ${d.who} (${d.callId}) went from ${lineState(before?.call_info)} to ${lineState(n.call_info)} at the unsubscribe`);
          }
        }
        const theirs = replyAt(ctx.native, s.phone, i);
        if (num(theirs?.status) !== 500) continue; // the module released it too: everything compares
        ctx.native[s.phone]!.replies[ctx.native[s.phone]!.replies.indexOf(theirs!)] = { ...reply };
        dropNotifies(ctx.service, s.phone, (n) => n.call_id === callId && stepOf(n) === i);
        for (const d of lines) dropNotifies(ctx.service, d.who, (n) => n.call_id === d.callId && stepOf(n) === i);
      }
    },
  },

  // D9: a 181/182/199 to a member's INVITE: the module releases the appearance, ours changes
  // nothing. About the call steps with such a provisional: from there on our line must show the
  // states listed in the scenario's `ours.D9` (the call's own flow); those NOTIFYs, on both sides,
  // are left out of the comparison (the replies and everything before the call still compare).
  D9: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'call' && s.provisional.some((c) => [181, 182, 199].includes(c)) ? [i] : [])),
    apply(ctx, steps) {
      for (const i of steps) {
        assertSeizeEnds(ctx, 'D9', (ctx.scenario.steps[i] as { phone: string }).phone, i);
        assertLineFlow(ctx, 'D9', callerLine(ctx.scenario, i), i);
      }
    },
  },

  // D13: hold said only at the session level: the module misses it and shows the call active,
  // ours shows it held. About the hold steps with `"sdp": "session"`: our first call-info NOTIFY
  // of the step must show the call's index held; the module's `active` for that index becomes
  // `held` from that step until the next step of the same call.
  D13: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'hold' && s.sdp === 'session' && s.direction !== 'sendrecv' ? [i] : [])),
    apply(ctx, steps) {
      const sc = ctx.scenario;
      for (const i of steps) {
        const s = sc.steps[i] as { dialog: string; call_info?: string };
        const opened = callStep(sc, s.dialog);
        const index = indexIn(s.call_info) ?? indexIn((sc.steps[opened] as { call_info?: string }).call_info);
        if (index === undefined) throw new Error(`${sc.name}: D13 at step ${i}: no appearance index for call ${s.dialog}`);
        const next = sc.steps.findIndex((e, j) => j > i && (e.do === 'hold' || e.do === 'bye') && e.dialog === s.dialog);
        const until = next < 0 ? Infinity : next;
        const user = callerLine(sc, opened);
        for (const d of callInfoDialogs(sc, ctx.service, user)) {
          const first = d.notifies.find((n) => stepOf(n) === i);
          if (!appearance(first?.call_info, index)?.startsWith('held')) ctx.fail(`D13: step ${i}: ${d.who} (${d.callId}) shows ${describe(first)}, not index ${index} held`);
        }
        for (const d of callInfoDialogs(sc, ctx.native, user)) {
          for (const n of d.notifies) {
            if (stepOf(n) < i || stepOf(n) >= until) continue;
            n.call_info = String(n.call_info).replace(new RegExp(`appearance-index=${index};appearance-state=active\\b`), `appearance-index=${index};appearance-state=held`);
          }
        }
      }
    },
  },

  // D14: a pickup of a privately held call: the module relays it (forks it to the line), ours
  // answers 403 and leaves the held call alone. About the pickup steps: our reply must be 403, no
  // phone of the line may receive the INVITE, and our line must keep showing what it showed before
  // (the held-private call); the module's reply (when not 403), the INVITEs it forked to the line
  // and its NOTIFYs from that step on are left out.
  D14: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'pickup' ? [i] : [])),
    apply(ctx, steps) {
      const sc = ctx.scenario;
      for (const i of steps) {
        const s = sc.steps[i] as { phone: string; as: string };
        const user = sc.phones[s.phone]!;
        const line = Object.keys(sc.phones).filter((p) => sc.phones[p] === user);
        const to = `INVITE ${s.as}`;
        const reply = replyAt(ctx.service, s.phone, i, to);
        if (num(reply?.status) !== 403) ctx.fail(`D14: step ${i}: our reply to the pickup is ${reply?.status}, not 403`);
        for (const p of line) {
          const got = (ctx.service[p]?.received ?? []).filter((r) => stepOf(r) >= i);
          if (got.length > 0) ctx.fail(`D14: step ${i}: ${p} received the pickup INVITE (${got[0]!.ruri}) on our side`);
        }
        for (const d of callInfoDialogs(sc, ctx.service, user)) {
          const before = d.notifies.filter((n) => stepOf(n) < i).at(-1);
          const changed = d.notifies.find((m) => stepOf(m) >= i && lineState(m.call_info) !== lineState(before?.call_info));
          if (changed) ctx.fail(`D14: step ${i}: ${d.who} (${d.callId}) went from ${lineState(before?.call_info)} to ${lineState(changed.call_info)}: the held call must stay as it was`);
        }
        const theirs = replyAt(ctx.native, s.phone, i, to);
        if (theirs && reply && num(theirs.status) !== 403) ctx.native[s.phone]!.replies[ctx.native[s.phone]!.replies.indexOf(theirs)] = { ...reply };
        for (const p of line) if (ctx.native[p]) ctx.native[p]!.received = ctx.native[p]!.received.filter((r) => stepOf(r) < i);
        for (const t of [ctx.native, ctx.service]) {
          for (const d of callInfoDialogs(sc, t, user)) dropNotifies(t, d.who, (n) => n.call_id === d.callId && stepOf(n) >= i);
        }
      }
    },
  },

  // D17: an answered incoming call: the module cannot match the callee's appearance (swapped
  // tags), so the purge may idle the live call and the BYE never idles it. About each incoming
  // step and the BYE of that call: until the BYE our line must go on showing the call (index and
  // caller) and after it each call-info dialog must get a NOTIFY without it. That NOTIFY is left
  // out when the module sent none; when the module sent the same state earlier (its purge), only
  // the seconds left differ and are taken from ours.
  D17: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'incoming' ? [i] : [])),
    apply(ctx, steps) {
      const sc = ctx.scenario;
      for (const i of steps) {
        const s = sc.steps[i] as { from: string; line: string; as: string };
        const bye = sc.steps.findIndex((e, j) => j > i && e.do === 'bye' && e.dialog === s.as);
        if (bye < 0) throw new Error(`${sc.name}: D17 at step ${i}: the call ${s.as} has no bye step`);
        const caller = `<sip:${sc.phones[s.from]}@`;
        for (const d of callInfoDialogs(sc, ctx.service, s.line)) {
          const shown = d.notifies.find((n) => stepOf(n) >= i && stepOf(n) < bye && lineState(n.call_info).split(', ').some((a) => / active </.test(a) && a.includes(caller)));
          const index = shown ? Number(lineState(shown.call_info).split(', ').find((a) => a.includes(caller))!.split(' ')[0]) : undefined;
          if (index === undefined) { ctx.fail(`D17: step ${i}: ${d.who} (${d.callId}) never shows the answered call from ${s.from}`); continue; }
          const dropped = d.notifies.find((n) => cseqOf(n) > cseqOf(shown!) && stepOf(n) < bye && appearance(n.call_info, index) === undefined);
          if (dropped) ctx.fail(`D17: ${d.who} (${d.callId}) lost the live call at step ${stepOf(dropped)} (${lineState(dropped.call_info)}), before its BYE at step ${bye}`);
          const end = d.notifies.find((n) => stepOf(n) >= bye && appearance(n.call_info, index) === undefined);
          if (!end) { ctx.fail(`D17: ${d.who} (${d.callId}) got no NOTIFY without the call after its BYE (step ${bye})`); continue; }
          const theirs = dialog(ctx.native, d.who, d.callId).notifies.find((n) => n.cseq === end.cseq);
          if (!theirs) dropNotifies(ctx.service, d.who, (n) => n === end);
          else if (theirs.call_info === end.call_info) theirs.subscription_state = end.subscription_state;
        }
      }
    },
  },

  // D22: a member's INVITE naming an index it had not seized: ours seizes that index for the call
  // and gives the seized one back, the module leaves the call off the line. About those call
  // steps: from there on our line must show the states listed in `ours.D22`, and the caller's
  // line-seize subscription for the seized index must end; those NOTIFYs, on both sides, are left
  // out of the comparison (the replies and what the remote party received still compare).
  D22: {
    steps: (sc) => sc.steps.flatMap((s, i) => {
      if (s.do !== 'call' || indexIn(s.call_info) === undefined) return [];
      const seize = lastSeize(sc, s.phone, i);
      const seized = seize < 0 ? undefined : indexIn((sc.steps[seize] as { call_info?: string }).call_info);
      return seized !== indexIn(s.call_info) ? [i] : [];
    }),
    apply(ctx, steps) {
      const sc = ctx.scenario;
      for (const i of steps) {
        const s = sc.steps[i] as { phone: string };
        assertSeizeEnds(ctx, 'D22', s.phone, i);
        assertLineFlow(ctx, 'D22', callerLine(sc, i), i);
      }
    },
  },

  // D28: sca.deactivate_all_subscriptions: the module keeps the deactivated subscriptions until
  // the purge, ours removes them after their NOTIFY. About the deactivate steps: each subscription
  // that got `terminated;reason=deactivated` there is gone from our sca.subscription_count after it.
  D28: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'rpc' && s.cmd === 'sca.deactivate_all_subscriptions' ? [i] : [])),
    apply(ctx, steps) {
      for (const i of steps) {
        let found = 0;
        for (const [who, t] of Object.entries(ctx.service)) {
          for (const n of t.notifies) {
            if (stepOf(n) === i && String(n.subscription_state).startsWith('terminated;reason=deactivated')) { found++; ctx.removed.push({ id: 'D28', step: i, event: String(n.event) }); }
            if (stepOf(n) > i && t.notifies.some((m) => m.call_id === n.call_id && stepOf(m) === i && String(m.subscription_state).startsWith('terminated'))) {
              ctx.fail(`D28: ${who} (${n.call_id}) got ${describe(n)} after it was deactivated`);
            }
          }
        }
        if (found === 0) ctx.fail(`D28: step ${i}: no subscription got a deactivated NOTIFY on our side`);
      }
    },
  },

  // D35: an sca.* command with a bad param: the module's fault is its usage line alone, ours names
  // the param and why first. About the rpc steps where the module printed `error: 500 - usage…`:
  // ours must be `error: 500 - <what was wrong>; <the module's usage line>`; the module's text then
  // compares as ours.
  D35: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'rpc' ? [i] : [])),
    apply(ctx, steps) {
      let seen = 0;
      for (const r of ctx.native.rpc?.replies ?? []) {
        if (!steps.includes(stepOf(r))) continue;
        const usage = /^error: 500 - ((?:U|u)sage: .*)$/.exec(String(r.output));
        if (!usage) continue;
        const ours = (ctx.service.rpc?.replies ?? []).find((x) => x.step === r.step && x.to === r.to);
        const named = /^error: 500 - (.+?); ((?:U|u)sage: .*)$/.exec(String(ours?.output ?? ''));
        if (!ours || !named || named[2] !== usage[1]) {
          ctx.fail(`D35: step ${stepOf(r)}: ours says "${String(ours?.output)}", not the wrong param named before the module's "${usage[1]}"`);
          continue;
        }
        seen++;
        r.output = ours.output;
      }
      if (seen === 0) ctx.fail('D35: no rpc step where the module answered a bad param with its usage');
    },
  },

  // D30: an in-dialog SUBSCRIBE naming another dialog (To-tag, To): the module matches it on the
  // Contact, answers 2xx and NOTIFYs in it; ours answers 481 and changes nothing. About the refresh
  // steps with `to`/`to_tag`: ours must be 481 with no NOTIFY in that step; the module's 2xx
  // compares as ours, its NOTIFY there is left out and its later CSeqs in the dialog count one less.
  D30: {
    steps: (sc) => sc.steps.flatMap((s, i) => (s.do === 'refresh' && (s.to !== undefined || s.to_tag !== undefined) ? [i] : [])),
    apply(ctx, steps) {
      for (const i of steps) {
        const s = ctx.scenario.steps[i] as { phone: string; dialog: string };
        const callId = subscribeCallId(ctx.scenario, namedSubscribe(ctx.scenario, s.dialog));
        const reply = replyAt(ctx.service, s.phone, i);
        if (num(reply?.status) !== 481) ctx.fail(`D30: step ${i}: our reply to the SUBSCRIBE naming another dialog is ${reply?.status} ${reply?.reason}, not 481`);
        const moved = dialog(ctx.service, s.phone, callId).notifies.filter((n) => stepOf(n) === i);
        if (moved.length > 0) ctx.fail(`D30: step ${i}: ${s.phone} (${callId}) got ${describe(moved[0])}: nothing may change`);
        const theirs = replyAt(ctx.native, s.phone, i);
        if (!is2xx(theirs) || !reply) continue;
        ctx.native[s.phone]!.replies[ctx.native[s.phone]!.replies.indexOf(theirs!)] = { ...reply };
        // The module's NOTIFY there used a CSeq: its later ones in the dialog count one higher.
        const extra = dialog(ctx.native, s.phone, callId).notifies.filter((n) => stepOf(n) === i);
        dropNotifies(ctx.native, s.phone, (n) => extra.includes(n));
        for (const n of dialog(ctx.native, s.phone, callId).notifies) if (stepOf(n) > i) n.cseq = `${cseqOf(n) - extra.length} NOTIFY`;
      }
    },
  },
};

const domainOf = (callInfo: string | undefined) => /<sip:([^>;]+)>/.exec(callInfo ?? '')?.[1] ?? '';
/** NOTIFYs grouped by Call-ID in the order the runner records them (by step number, then CSeq). */
function inCallIdOrder(list: Entry[]): Entry[] {
  const ids = [...new Set(list.map((n) => String(n.call_id)))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return ids.flatMap((id) => list.filter((n) => n.call_id === id).sort((a, b) => cseqOf(a) - cseqOf(b)));
}

/**
 * sca.subscription_count after subscriptions ours removed and the module keeps (D5, D28): ours
 * must be the module's count less those; the module's count is rewritten to that.
 */
function checkCounts(ctx: Ctx): void {
  if (ctx.removed.length === 0) return;
  const theirs = ctx.native.rpc?.replies ?? [];
  for (const r of ctx.service.rpc?.replies ?? []) {
    const m = /^sca\.subscription_count (\S+)$/.exec(String(r.to));
    if (!m) continue;
    const gone = ctx.removed.filter((x) => x.event === m[1] && x.step < stepOf(r));
    if (gone.length === 0) continue;
    const other = theirs.find((x) => x.step === r.step && x.to === r.to);
    const n = /^(\d+) (.*)$/.exec(String(other?.output ?? ''));
    if (!other || !n) continue;
    const due = `${Number(n[1]) - gone.length} ${n[2]}`;
    const ids = [...new Set(gone.map((x) => x.id))].join(', ');
    if (r.output !== due) ctx.fail(`${ids}: step ${stepOf(r)}: ours says "${r.output}", the module "${other.output}" less the ${gone.length} subscription(s) we removed is "${due}"`);
    other.output = due;
  }
}

export function compare(scenario: Scenario, nativeRaw: Trace, serviceRaw: Trace): Verdict {
  const native = normalise(nativeRaw);
  const service = normalise(serviceRaw);
  const failures: string[] = [];
  const ctx: Ctx = { scenario, native: structuredClone(native), service: structuredClone(service), fail: (m) => failures.push(m), removed: [] };
  for (const id of scenario.expect) {
    const d = DEVIATIONS[id];
    if (!d) throw new Error(`${scenario.name}: no normaliser for deviation ${id}`);
    const steps = d.steps(scenario);
    if (steps.length === 0) throw new Error(`${scenario.name}: expects ${id}, but no step of it is one ${id} is about`);
    d.apply(ctx, steps);
  }
  checkCounts(ctx);
  const tolerance = SECONDS_TOLERANCE + (scenario.purge ?? 0);
  reconcileSeconds(native, service, tolerance);
  reconcileSeconds(ctx.native, ctx.service, tolerance);
  if (failures.length > 0) return { result: 'DIFFERENT', native: ctx.native, service: ctx.service, failures };
  if (sameTrace(native, service)) return { result: 'equal', native, service, failures };
  return { result: sameTrace(ctx.native, ctx.service) ? 'intended deviation' : 'DIFFERENT', native: ctx.native, service: ctx.service, failures };
}

/** Our side's failed assertions, then the first difference of each list: what a person needs to see of a DIFFERENT. */
export function explain(v: Verdict): string {
  const out: string[] = v.failures.map((f) => `our side: ${f}`);
  for (const who of new Set([...Object.keys(v.native), ...Object.keys(v.service)])) {
    for (const list of LISTS) {
      const a = v.native[who]?.[list] ?? [];
      const b = v.service[who]?.[list] ?? [];
      const at = Array.from({ length: Math.max(a.length, b.length) }, (_, i) => i).find((i) => !same(a[i], b[i]));
      if (at === undefined) continue;
      out.push(`${who}.${list}[${at}] (native ${a.length}, service ${b.length})\n  native:  ${JSON.stringify(a[at])}\n  service: ${JSON.stringify(b[at])}`);
    }
  }
  return out.join('\n');
}
