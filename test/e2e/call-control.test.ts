// Call control through Kamailio's stock call_control.so (kamailio/kamailio.cfg: dialog, jsonrpcs,
// call_control on the service's socket), with scripted phones: limits, call timers, prepaid cut
// to the second and debited by the pulse rules, racing INVITEs, a ringing call cancelled, kill -9.
// How close to its limit a call is cut is measured by scripts/bench/targets.ts, not asserted here:
// a loaded machine delays a BYE, it does not change what is billed.
import t from 'tap';
import { rpc } from '../support/rpc.js';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

let stack: Stack;
let alice: Phone;
let bob: Phone;
const ALICE = `100@${DOMAIN}`;
const cc = (method: string, params: unknown = {}) => rpc(stack.httpPort, method, params);
const call = (from: Phone = alice, to = '200') => from.invite({ ruri: `sip:${to}@${DOMAIN}`, to: `<sip:${to}@${DOMAIN}>`, body: sdp(4000) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves once the service counts no call (of the account). */
const noCalls = (account?: string) => waitUntil(`no call counted${account ? ` for ${account}` : ''}`, async () => (await cc('cc.calls', account ? { account } : {})).result.length === 0, { everyMs: 20 });
/** The CDR of a call, once it is written. */
interface CdrRow { call_id: string; cause: string; duration: number; amount: number }
const cdrOf = (callId: string, account = ALICE): Promise<CdrRow> =>
  waitUntil(`the CDR of ${callId}`, async () => ((await cc('cc.cdrs', { account, limit: 20 })).result as CdrRow[]).find((c) => c.call_id === callId), { everyMs: 20 });
/** The BYE the proxy sends a phone for a call, and when it came. */
const byeFor = (p: Phone, callId: string, timeoutMs: number) =>
  p.waitFor((r) => r.msg.method === 'BYE' && hdr(r.msg, 'call-id') === callId, timeoutMs, `BYE for ${callId}`);

t.before(async () => {
  stack = await startStack({ log_level: 'info' });
  [alice, bob] = await Promise.all([stack.phone('alice', '100'), stack.phone('bob', '200')]);
  for (const p of [alice, bob]) await p.register();
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
});
t.teardown(async () => stack.stop());

t.test('an account with a call limit: the call over it is refused (403), the next one after a hangup gets in', async (t) => {
  t.same((await cc('cc.account_set', { account: ALICE, max_calls: 1 })).result, { account: ALICE, max_calls: 1, max_duration: null, prepaid: false, balance: 0, plan: 'default' });
  const first = await call();
  t.equal(first.final.status, 200);
  const second = await call();
  t.same([second.final.status, second.final.reason], [403, 'Forbidden - Call Control']);
  t.equal((await cc('cc.calls', { account: ALICE })).result.length, 1, 'one call counted');
  t.equal((await alice.inDialog(first.dialog!, 'BYE').final).status, 200);
  await noCalls();
  t.equal((await call().then(async (c) => { await alice.inDialog(c.dialog!, 'BYE').final; return c.final.status; })), 200, 'a new call gets in');
  await cc('cc.account_set', { account: ALICE, max_calls: 'none' });
});

t.test('a call timer from the answer: Kamailio sends BYE both ways at the limit, to the second', async (t) => {
  await cc('cc.account_set', { account: ALICE, max_duration: 3 });
  const c = await call();
  const answered = performance.now();
  t.equal(c.final.status, 200);
  const [toAlice] = await Promise.all([byeFor(alice, c.dialog!.callId, 15_000), byeFor(bob, c.dialog!.callId, 15_000)]);
  t.pass(`BYE to both sides, ${Math.round(toAlice.at - answered)} ms after the answer (limit 3 s)`);
  const cdr = await cdrOf(c.dialog!.callId);
  t.same([cdr.call_id, cdr.cause, cdr.duration], [c.dialog!.callId, 'limit', 3], 'ended by its limit, billed 3 s');
  await cc('cc.account_set', { account: ALICE, max_duration: 'none' });
});

t.test('prepaid: the call is cut when the credit is spent and debited by the pulse rules, once', async (t) => {
  await cc('cc.rate_set', { prefix: '2', connect_fee: 5, price_per_minute: 60, initial_pulse: 2, next_pulse: 1 });
  await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 9 });
  const c = await call();
  const answered = performance.now();
  t.equal(c.final.status, 200);
  const bye = await byeFor(alice, c.dialog!.callId, 15_000);
  t.pass(`9 units: 5 connect + 4 s at 1/s; BYE ${Math.round(bye.at - answered)} ms after the answer`);
  await cdrOf(c.dialog!.callId);
  const acc = (await cc('cc.account_show', { account: ALICE })).result;
  t.same([acc.balance, acc.reserved, acc.calls.length], [0, 0, 0], 'exactly the balance was spent, nothing left reserved');
  const [cdr] = (await cc('cc.cdrs', { account: ALICE, limit: 1 })).result;
  t.same([cdr.cause, cdr.duration, cdr.billable_seconds, cdr.connect_fee, cdr.amount, cdr.rate_prefix], ['credit', 4, 4, 5, 9, '2']);
  const history = (await cc('cc.balance_history', { account: ALICE })).result;
  t.same(history.filter((h: { note: string }) => h.note.startsWith('call ')).map((h: { amount: number }) => h.amount), [-9], 'one debit');
  t.equal((await call()).final.status, 402, 'with nothing left: 402');
});

t.test('two parallel prepaid calls share the balance and together never bill more than it holds', async (t) => {
  await cc('cc.rate_set', { prefix: '2', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 6 });
  const a = await call();
  await sleep(1000); // the scenario: the second call starts a second into the first
  const b = await call();
  t.same([a.final.status, b.final.status], [200, 200]);
  await Promise.all([byeFor(alice, a.dialog!.callId, 15_000), byeFor(alice, b.dialog!.callId, 15_000)]);
  const cdrs = await Promise.all([cdrOf(a.dialog!.callId), cdrOf(b.dialog!.callId)]);
  t.equal(cdrs.reduce((s, c) => s + c.amount, 0), 6, `billed ${cdrs.map((c) => c.amount).join(' + ')}`);
  t.equal((await cc('cc.account_show', { account: ALICE })).result.balance, 0, 'never below zero');
  await cc('cc.account_set', { account: ALICE, prepaid: false });
});

t.test('with a limit of 5, 200 racing INVITEs admit exactly 5; after one ends a new one gets in', async (t) => {
  await cc('cc.account_set', { account: ALICE, max_calls: 5 });
  const ringing: string[] = [];
  bob.onInvite = (r) => { ringing.push(hdr(r.msg, 'call-id')!); bob.respond(r, 180, 'Ringing'); };
  const txs = Array.from({ length: 200 }, () => alice.request('INVITE', { ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) }));
  const finals = new Map<string, number>();
  for (const tx of txs) void tx.final.then((m) => finals.set(tx.callId, m.status!), () => undefined);
  // Every INVITE is either refused (a final reply) or rings (Bob's 180 came back to Alice).
  const rang = (tx: (typeof txs)[number]) => tx.responses.some((r) => r.status === 180);
  await waitUntil('every INVITE refused or ringing', () => txs.every((tx) => finals.has(tx.callId) || rang(tx)), { timeoutMs: 20_000,
    last: () => ({ finals: finals.size, ringing: txs.filter(rang).length }) });
  t.equal([...finals.values()].filter((s) => s === 403).length, 195, '195 refused');
  t.same(txs.filter((tx) => !finals.has(tx.callId)).map((tx) => rang(tx)), [true, true, true, true, true], '5 ringing, without a final reply');
  const counted = new Set((await cc('cc.calls', { account: ALICE })).result.map((c: { call_id: string }) => c.call_id));
  t.same([...counted].sort(), [...ringing].sort(), 'the calls that ring are exactly the ones counted');
  const first = txs.find((tx) => tx.callId === ringing[0])!;
  alice.cancel(first);
  await first.final;
  await waitUntil('4 calls left', async () => (await cc('cc.calls', { account: ALICE })).result.length === 4, { everyMs: 20 });
  const next = alice.request('INVITE', { ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  await bob.waitFor((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'call-id') === next.callId, 3000, 'the new call');
  t.pass('after one ended, a new one rings');
  const rest = [...txs.filter((x) => ringing.includes(x.callId)).slice(1), next];
  for (const tx of rest) alice.cancel(tx);
  t.same((await Promise.all(rest.map((tx) => tx.final))).map((m) => m.status), [487, 487, 487, 487, 487], 'the others cancelled');
  await noCalls(ALICE);
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  await cc('cc.account_set', { account: ALICE, max_calls: 'none' });
});

t.test('a ringing call is cancelled when its limit is lowered: 480 to the caller, CANCEL to the callee', async (t) => {
  await cc('cc.account_set', { account: ALICE, max_calls: 3 });
  bob.onInvite = (r) => bob.respond(r, 180, 'Ringing');
  const tx = alice.request('INVITE', { ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  await bob.waitFor((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'call-id') === tx.callId, 3000, 'INVITE');
  await waitUntil('the 180 at Alice', () => tx.responses.some((r) => r.status === 180));
  t.equal((await cc('cc.account_set', { account: ALICE, max_calls: 0 })).result.max_calls, 0);
  const final = await tx.final;
  t.same([final.status, final.reason], [480, 'Call Limit Reached']);
  await bob.waitFor((r) => r.msg.method === 'CANCEL' && hdr(r.msg, 'call-id') === tx.callId, 3000, 'CANCEL');
  t.pass('the callee got CANCEL');
  const cdr = await cdrOf(tx.callId);
  t.same([cdr.call_id, cdr.cause], [tx.callId, 'limit']);
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  await cc('cc.account_set', { account: ALICE, max_calls: 'none' });
});

t.test('the operator ends a call (cc.end_call): BYE both ways, CDR cause admin', async (t) => {
  const c = await call();
  t.same((await cc('cc.end_call', { call_id: c.dialog!.callId })).result, { ended: c.dialog!.callId });
  await Promise.all([byeFor(alice, c.dialog!.callId, 5000), byeFor(bob, c.dialog!.callId, 5000)]);
  t.equal((await cdrOf(c.dialog!.callId)).cause, 'admin');
});

t.test('kill -9 mid-call: after the restart the call is still counted, ended at its limit and debited once', async (t) => {
  // 15 units at 1/s: a 15 s call. The restart (kill -9, start, restore) took 4.7 and 6.7 s on a
  // loaded machine, longer than the 5 s call this test once used: that call had ended at its
  // limit before the restored service was asked about it (the 5 s figure is in bench:targets).
  await cc('cc.rate_set', { prefix: '2', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 15, max_calls: 1 });
  const c = await call();
  const answered = performance.now();
  t.equal(c.final.status, 200);
  await stack.killService();
  await stack.startService();
  t.equal((await cc('cc.calls', { account: ALICE })).result.length, 1, `the call is still counted (${Math.round(performance.now() - answered)} ms after the answer)`);
  t.equal((await call()).final.status, 403, 'and still holds the account\'s one place');
  await waitUntil('the reconcile', () => /"msg":"calls reconciled with Kamailio"/.test(stack.serviceLog()), { timeoutMs: 15_000 });
  t.match(stack.serviceLog(), /"calls":1,"kept":1,"ended":0,"failed":0,"minAge":0,"msg":"calls reconciled with Kamailio"/, 'Kamailio still has it');
  const bye = await byeFor(alice, c.dialog!.callId, 30_000);
  t.pass(`cut: BYE ${Math.round(bye.at - answered)} ms after the answer (limit 15 s)`);
  t.equal((await cdrOf(c.dialog!.callId)).cause, 'credit', 'ended by its credit, not by the restart');
  t.equal((await cc('cc.account_show', { account: ALICE })).result.balance, 0);
  const debits = (await cc('cc.balance_history', { account: ALICE })).result.filter((h: { note: string }) => h.note === `call ${c.dialog!.callId}`);
  t.equal(debits.length, 1, 'debited exactly once');
  t.equal(debits[0].amount, -15);
});
