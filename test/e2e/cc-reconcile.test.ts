// Ends that never arrive, through the real Kamailio and its stock call_control.so: Kamailio killed
// with -9 and restarted, a hang-up while the service was down, a call the service cannot end. A
// counted call is reconciled with Kamailio's dialogs and billed to what is known of it; one the
// service fails to end stays counted, says so, and gets its CDR when it really ends.
import t from 'tap';
import { rpc } from '../support/rpc.js';
import { hdr, sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';
import { waitUntil } from '../support/wait.js';

const ALICE = `100@${DOMAIN}`;

/** Polls `probe` every 50 ms until it gives a value; fails loudly, naming `what`, after `timeoutMs`. */
const until = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> =>
  waitUntil(what, probe, { timeoutMs, everyMs: 50 });
/** The call lasts this long: part of the scenario, not a wait for something to happen. */
const talk = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withPhones(settings: Record<string, string | number> = {}): Promise<{ stack: Stack; alice: Phone; bob: Phone; cc: (m: string, p?: unknown) => ReturnType<typeof rpc> }> {
  const stack = await startStack({ log_level: 'info', ...settings });
  const [alice, bob] = await Promise.all([stack.phone('alice', '100'), stack.phone('bob', '200')]);
  for (const p of [alice, bob]) await p.register();
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  const cc = (m: string, p: unknown = {}) => rpc(stack.httpPort, m, p);
  await cc('cc.rate_set', { prefix: '2', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  return { stack, alice, bob, cc };
}

t.test('stops that never came: Kamailio killed, or the service down at the hang-up', async (t) => {
  const { stack, alice, bob, cc } = await withPhones();
  t.teardown(() => stack.stop());
  const call = () => alice.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  const calls = async () => (await cc('cc.calls', { account: ALICE })).result as unknown[];
  const cdrOf = async (callId: string) => ((await cc('cc.cdrs', { account: ALICE, limit: 20 })).result as Array<{ call_id: string; cause: string; duration: number; amount: number }>).find((c) => c.call_id === callId);

  await t.test('Kamailio killed (-9) mid-call: at its restart the call is ended, billed to when Kamailio went away, and counts no more', async (t) => {
    await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 100, max_calls: 1 });
    const c = await call();
    const answeredAt = Date.now();
    t.equal(c.final.status, 200);
    await talk(2500);
    const killedAt = Date.now();
    await stack.killKamailio();
    t.equal((await calls()).length, 1, 'still counted while Kamailio is down');
    await stack.startKamailio();
    await until('the lost call reconciled', async () => (await calls()).length === 0);
    const cdr = await until('its CDR', () => cdrOf(c.dialog!.callId));
    const lived = (killedAt - answeredAt) / 1000;
    t.equal(cdr.cause, 'stale');
    t.ok(cdr.duration >= Math.floor(lived) && cdr.duration <= Math.ceil(lived) + 1, `billed ${cdr.duration} s for a call that lived ${lived.toFixed(1)} s (not its 100 s reservation)`);
    t.equal((await cc('cc.account_show', { account: ALICE })).result.balance, 100 - cdr.amount, 'debited once, that much');
    for (const p of [alice, bob]) await p.register(); // the new Kamailio has no registrations
    const next = await call();
    t.equal(next.final.status, 200, 'the next call gets in: nothing left counted');
    await alice.inDialog(next.dialog!, 'BYE').final;
    await until('the next call ended', async () => (await calls()).length === 0);
  });

  await t.test('the service down when the caller hangs up: at its restart the call is ended, billed up to its last heartbeat', async (t) => {
    await cc('cc.account_set', { account: ALICE, prepaid: true, balance: 100, max_calls: 1 });
    const c = await call();
    const answeredAt = Date.now();
    t.equal(c.final.status, 200);
    await talk(1500);
    await stack.killService();
    const killedAt = Date.now();
    t.equal((await alice.inDialog(c.dialog!, 'BYE').final).status, 200, 'the hang-up goes through Kamailio; its stop finds no service');
    await stack.startService();
    await until('the ended call reconciled', async () => (await calls()).length === 0);
    const cdr = await until('its CDR', () => cdrOf(c.dialog!.callId));
    const lived = (killedAt - answeredAt) / 1000;
    t.equal(cdr.cause, 'stale');
    t.ok(cdr.duration >= Math.floor(lived) - 1 && cdr.duration <= Math.ceil(lived) + 1, `billed ${cdr.duration} s, the call ran ${lived.toFixed(1)} s before the service went down`);
    const next = await call();
    t.equal(next.final.status, 200, 'the next call gets in');
    await alice.inDialog(next.dialog!, 'BYE').final;
  });
});

t.test('a call the service cannot end (Kamailio\'s jsonrpcs unreachable) stays counted and overrunning, then gets its CDR when it really ends', async (t) => {
  // Nothing listens on the discard port: every dlg.end_dlg and dlg.dlg_list fails at once.
  const { stack, alice, cc } = await withPhones({ cc_jsonrpc_address: 'udp:127.0.0.1:9' });
  t.teardown(() => stack.stop());
  await cc('cc.account_set', { account: ALICE, max_duration: 2, max_calls: 1 });
  const c = await alice.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  const answeredAt = Date.now();
  t.equal(c.final.status, 200);
  await until('the failed end logged', () => /CALL NOT ENDED/.test(stack.serviceLog()), 8000);
  const [live] = (await cc('cc.calls', { account: ALICE })).result;
  t.same([live?.call_id, live?.ending], [c.dialog!.callId, 'limit'], 'still counted, being ended for its limit');
  t.equal(((await cc('cc.cdrs', { account: ALICE })).result as unknown[]).length, 0, 'no CDR while it runs');
  t.equal((await alice.request('INVITE', { ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) }).final).status, 403, 'it still counts against the limit');
  const metrics = async () => (await (await fetch(`http://127.0.0.1:${stack.httpPort}/metrics`)).text());
  await until('cc_calls_overrunning 1', async () => /^cc_calls_overrunning 1$/m.test(await metrics()), 10_000);
  t.match(await metrics(), /^cc_end_failures_total [1-9]/m, 'the failed attempts are counted (and retried)');
  t.equal((await alice.inDialog(c.dialog!, 'BYE').final).status, 200, 'the caller hangs up');
  const endedAt = Date.now();
  const [cdr] = await until('its CDR', async () => (((await cc('cc.cdrs', { account: ALICE })).result as unknown[]).length > 0 ? (await cc('cc.cdrs', { account: ALICE })).result : undefined));
  t.same([cdr.call_id, cdr.cause, cdr.duration], [c.dialog!.callId, 'limit', 2], 'one CDR, cause limit, billed to its limit');
  t.ok(cdr.end * 1000 >= answeredAt + 2000 && cdr.end * 1000 <= endedAt + 1000, 'ended when it really ended, not at its limit');
  await until('no longer counted', async () => ((await cc('cc.calls', { account: ALICE })).result as unknown[]).length === 0);
  t.match(await metrics(), /^cc_calls_overrunning 0$/m);
  t.equal(hdr(c.final, 'call-id'), c.dialog!.callId);
});
