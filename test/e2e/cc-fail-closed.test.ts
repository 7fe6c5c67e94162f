// Call control that cannot be bypassed, through the real Kamailio and its stock call_control.so
// (kamailio/kamailio.cfg, the socket door): what a hostile caller controls (Call-ID length, From,
// a reused Call-ID, a blacklisted callee without an account) never makes a call go on uncounted
// or end another call's accounting; a slow store never holds the answer past Kamailio's timeout.
import Database from 'better-sqlite3';
import path from 'node:path';
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
const invite = (o: { callId?: string; fromTag?: string; from?: string; to?: string } = {}) =>
  alice.request('INVITE', { ruri: `sip:${o.to ?? '200'}@${DOMAIN}`, to: `<sip:${o.to ?? '200'}@${DOMAIN}>`, body: sdp(4000), callId: o.callId, fromTag: o.fromTag, from: o.from });
const statusOf = async (o: Parameters<typeof invite>[0] = {}) => (await invite(o).final).status;

/** Polls `probe` every 50 ms until it gives a value; fails loudly, naming `what`, after `timeoutMs`. */
const until = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 8_000): Promise<T> =>
  waitUntil(what, probe, { timeoutMs, everyMs: 50 });
const callsOf = async (account = ALICE) => (await cc('cc.calls', { account })).result as Array<{ call_id: string; state: string; ending: string | null }>;
const noCalls = () => until('no call counted', async () => (await callsOf()).length === 0);

t.before(async () => {
  stack = await startStack({ log_level: 'info' });
  [alice, bob] = await Promise.all([stack.phone('alice', '100'), stack.phone('bob', '200')]);
  for (const p of [alice, bob]) await p.register();
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  await cc('cc.rate_set', { prefix: '2', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
});
t.teardown(async () => stack.stop());

t.test('a 300-character Call-ID does not slip past an empty balance: refused like any call, counted when paid', async (t) => {
  await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 0, max_calls: 'none' });
  const long = `${'x'.repeat(300)}@alice`;
  t.equal(await statusOf(), 402, 'a normal call: 402');
  t.equal(await statusOf({ callId: long }), 402, 'the same call with a 300-character Call-ID: 402, not 200 uncounted');
  await cc('cc.balance_add', { account: ALICE, amount: 30, note: 'top-up' });
  const tx = invite({ callId: long });
  const final = await tx.final;
  t.equal(final.status, 200);
  const [counted] = await callsOf();
  t.equal(counted?.call_id, long, 'counted under its whole Call-ID');
  const dialog = alice.dialogFromReply(final, /;\s*tag=([^;>\s]+)/.exec(hdr(final, 'from')!)![1]!);
  alice.inDialog(dialog, 'ACK');
  t.equal((await alice.inDialog(dialog, 'BYE').final).status, 200);
  await noCalls();
  const [cdr] = (await cc('cc.cdrs', { account: ALICE, limit: 1 })).result;
  t.match(cdr.call_id, /^~sha256:[0-9a-f]{64}$/, 'its CDR row keys it by a digest (the column holds 255 characters)');
  t.ok(cdr.amount > 0, `billed ${cdr.amount}`);
});

t.test('a From without a user, a From without a tag and a request too large for call_control.so are refused', async (t) => {
  await cc('cc.account_set', { account: ALICE, prepaid: false, max_calls: 5 });
  const before = (await cc('cc.cdrs', { limit: 1000 })).result.length;
  const noUser = await invite({ from: `<sip:${DOMAIN}>` }).final;
  t.same([noUser.status, noUser.reason], [403, 'Forbidden - Call Control'], 'no billing party: refused by the service (Locked), not -5');
  const noTag = await invite({ fromTag: '' }).final;
  t.ok(noTag.status! >= 400 && noTag.status! < 500, `an empty From-tag: ${noTag.status} ${noTag.reason}`);
  const huge = await invite({ from: `"${'A'.repeat(7900)}" <sip:100@${DOMAIN}>` }).final;
  t.same([huge.status, huge.reason], [413, 'Too Large For Call Control'], 'over call_control.so\'s 8 KB: refused by the cfg, not -5');
  t.notMatch(stack.kamailioLog(), /returned -5/, 'none of them reached "service unreachable"');
  t.equal((await callsOf()).length, 0, 'nothing counted');
  t.equal((await cc('cc.cdrs', { limit: 1000 })).result.length, before);
});

t.test('a Call-ID is one call: another INVITE with it is refused and its failure never ends the first one\'s accounting', async (t) => {
  await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 3, max_calls: 1 });
  const first = await alice.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000), fromTag: 'first' });
  const answeredAt = performance.now();
  t.equal(first.final.status, 200);
  const callId = first.dialog!.callId;
  const toNobody = await invite({ callId, fromTag: 'second', to: '999' }).final;
  t.equal(toNobody.status, 403, 'the same Call-ID, another From-tag, a callee that does not exist: refused (no 404, so no stop)');
  t.equal(await statusOf({ callId, fromTag: 'third' }), 403, 'and to a callee that would answer');
  t.same((await callsOf()).map((c) => c.call_id), [callId], 'the first call is still counted');
  const bye = await alice.waitFor((r) => r.msg.method === 'BYE' && hdr(r.msg, 'call-id') === callId, 8000, 'BYE at the end of the credit');
  t.ok(bye.at - answeredAt < 5000, `cut when its 3 s of credit ran out (${Math.round(bye.at - answeredAt)} ms after the answer)`);
  await noCalls();
  const cdrs = (await cc('cc.cdrs', { account: ALICE, limit: 5 })).result.filter((c: { call_id: string }) => c.call_id === callId);
  t.same(cdrs.map((c: { cause: string; duration: number; amount: number }) => [c.cause, c.duration, c.amount]), [['credit', 3, 3]], 'one CDR, billed its 3 s');
  t.equal((await cc('cc.account_show', { account: ALICE })).result.balance, 0);
});

t.test('blacklists apply to callers without an account', async (t) => {
  const carol = await stack.phone('carol', '555');
  t.equal((await cc('cc.account_show', { account: `555@${DOMAIN}` })).error?.code, 404, 'carol has no account');
  const call = (to: string) => carol.request('INVITE', { ruri: `sip:${to}@${DOMAIN}`, to: `<sip:${to}@${DOMAIN}>`, body: sdp(4002) }).final;
  t.equal((await call('3001')).status, 404, 'an unregistered callee: 404');
  await cc('cc.blacklist_add', { kind: 'callee_prefix', value: '300', note: 'premium' });
  const refused = await call('3001');
  t.same([refused.status, refused.reason], [403, 'Forbidden - Call Control'], 'a blacklisted callee prefix: refused for carol too');
  await cc('cc.blacklist_delete', { kind: 'callee_prefix', value: '300' });
});

t.test('a store write held for 3 s: the call is answered in time and counted, /readyz says degraded, then ready', async (t) => {
  await cc('cc.account_set', { account: ALICE, prepaid: false, max_calls: 5 });
  const readyz = async () => (await (await fetch(`http://127.0.0.1:${stack.httpPort}/readyz`)).json()) as { status: string };
  const lock = new Database(path.join(stack.dir, 'sca.sqlite'));
  lock.exec('BEGIN IMMEDIATE'); // the write lock: the service's commits wait behind it
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    lock.exec('COMMIT');
    lock.close();
  };
  t.teardown(release);
  const held = setTimeout(release, 3000);
  const tx = invite();
  const final = await tx.final;
  t.equal(final.status, 200, 'answered while the store is locked');
  t.same((await callsOf()).map((c) => c.call_id), [tx.callId], 'and counted');
  t.equal((await readyz()).status, 'degraded', 'degraded while the write is pending');
  t.notMatch(stack.kamailioLog(), new RegExp(`returned -5 for ${tx.callId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), 'Kamailio never timed out on it');
  t.match(stack.serviceLog(), /STORE SLOW/);
  await until('the lock released', () => released, 6000);
  clearTimeout(held);
  await until('ready again', async () => (await readyz()).status === 'ready');
  const dialog = alice.dialogFromReply(final, /;\s*tag=([^;>\s]+)/.exec(hdr(final, 'from')!)![1]!);
  alice.inDialog(dialog, 'ACK');
  await alice.inDialog(dialog, 'BYE').final;
  await noCalls();
});
