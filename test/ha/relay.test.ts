// T13 (spec §4): the socket door across nodes. Proxies A and B run Kamailio's stock
// call_control.so (no WITH_CC_LINK), each against a sca-cc-relay of its own; nodes n1 and n2 run
// with cc_relay_listen, a 3-node Galera cluster under them. The leader is killed (-9) with two
// prepaid calls up: the stop of the one hung up while no node leads is kept by the relay and
// replayed to the new leader, the stop of the other reaches the new leader directly; each call
// ends once (one CDR, one debit). New calls meanwhile get -5 (CC_FAIL_CLOSED: 503) only until a
// leader is reached, and call_control.so never times out (so it never pauses for 10 s).
import t from 'tap';
import { DOMAIN, type HaTopology, type ServiceNode } from '../../scripts/ha/topology.js';
import { haProduct } from '../support/ha-product.js';
import { Phone, sdp } from '../support/sip-phone.js';
import { until } from '../support/wait.js';

t.setTimeout(900_000);
const product = haProduct({ ccDoor: 'relay', defines: ['CC_FAIL_CLOSED'] });
const { phone, rpc } = product;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)); // only as a scenario's duration
/** The proxies whose relay the node serves now (its /readyz). */
const relaysAt = async (n: ServiceNode): Promise<string[]> => (((await n.get('/readyz'))?.cc_relay?.relays ?? []) as Array<{ proxy: string }>).map((r) => r.proxy).sort();

let ha: HaTopology;
t.before(() => { ha = product.ha; });

t.test('T13: call_control.so through sca-cc-relay, kill -9 of the leader mid-call: each later stop ends its call once, -5 lasts only until a leader is reached', async (t) => {
  const old = await ha.leader(30_000);
  await until(async () => (await relaysAt(old)).join() === 'A,B', 20_000, `both relays served by the leader ${old.id}`);
  const [carol, dave, erin] = await Promise.all([phone('carol', '300', 'B'), phone('dave', '400', 'B'), phone('erin', '500', 'A')]);
  for (const p of [carol, dave, erin]) await p.register();
  dave.onInvite = (r) => dave.respond(r, 200, 'OK', { body: sdp(5013) });
  t.ok((await rpc('cc.rate_set', { prefix: '4', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 })).result);
  t.ok((await rpc('cc.account_set', { account: `300@${DOMAIN}`, prepaid: true, balance: 1000 })).result);

  const call = () => carol.invite({ ruri: `sip:400@${DOMAIN}`, to: `<sip:400@${DOMAIN}>`, body: sdp(4013) });
  const first = await call();
  const firstAt = performance.now();
  const second = await call();
  const secondAt = performance.now();
  t.same([first.final.status, second.final.status], [200, 200], 'both calls admitted (Limited) through the relay of B');
  const ids = [first.dialog!.callId, second.dialog!.callId];
  await until(async () => ((await rpc('cc.calls', { account: `300@${DOMAIN}` })).result as Array<{ state: string }>).filter((c) => c.state === 'active').length === 2,
    10_000, 'both calls answered at the service (start through the relay)');
  await sleep(3000); // the calls run: the scenario, not a wait for an event

  // New calls are probed from A all along: 503 is call_control.so's -5 (CC_FAIL_CLOSED), 404 means
  // the service answered (erin's account is unknown: No limit) and the callee is not registered.
  const probes: Array<{ at: number; status: number; ms: number }> = [];
  let probing = true;
  const pending: Array<Promise<void>> = [];
  const probeLoop = (async () => {
    // One every 200 ms, none waiting for another (one held at the dying leader's SCA must not hold the rest).
    for (let i = 0; probing; i++) {
      const at = performance.now();
      pending.push(erin.invite({ ruri: `sip:999@${DOMAIN}`, to: `<sip:999@${DOMAIN}>`, body: sdp(4100 + (i % 50) * 2) })
        .then((r) => r.final.status ?? 0, () => 0).then((status) => void probes.push({ at, status, ms: performance.now() - at })));
      await sleep(200);
    }
  })();

  const killedAt = performance.now();
  old.kill9();
  // Hung up while no node leads: call_control.so's stop reaches the relay of B, which keeps it.
  const firstBye = carol.inDialog(first.dialog!, 'BYE');
  const firstLived = (performance.now() - firstAt) / 1000;
  t.equal((await firstBye.final).status, 200, 'the first call hung up right after the kill');
  const next = await ha.leader(30_000);
  t.not(next.id, old.id, 'the standby leads');
  const ledAt = performance.now();
  await until(async () => (await relaysAt(next)).join() === 'A,B', 20_000, `both relays reach the new leader ${next.id}`);
  const relaysAt2 = performance.now();
  await until(() => probes.some((p) => p.at > relaysAt2 && p.status === 404), 15_000, 'a new call answered by the service again');
  probing = false;
  await probeLoop;
  await Promise.all(pending);
  probes.sort((a, b) => a.at - b.at);

  // Every probe answered after the kill (one in flight at the kill too).
  const after = probes.filter((p) => p.at + p.ms >= killedAt);
  const refused = after.filter((p) => p.status === 503);
  const answeredAt = (p: { at: number; ms: number } | undefined): number => (p ? p.at + p.ms : killedAt) - killedAt;
  const back = after.find((p) => p.status === 404 && p.at > (refused.at(-1)?.at ?? killedAt))!;
  t.same(after.filter((p) => p.status !== 503 && p.status !== 404).map((p) => p.status), [], 'every new call got -5 (503) or the service\'s answer, nothing else');
  t.ok(refused.length > 0, `new calls got -5 while no node led (${refused.length} of them)`);
  t.comment(`probes answered after the kill (sent at ms from the kill: status, answered within ms): ${after.map((p) => `${Math.round(p.at - killedAt)}: ${p.status} ${Math.round(p.ms)}`).join('; ')}`);
  const minus5 = Math.max(...refused.map(answeredAt)) / 1000;
  t.ok(minus5 <= 10, `the last -5 was answered ${minus5.toFixed(1)} s after the kill (at most 10 s: call_control.so never paused)`);
  t.comment(`measured: new leader ${next.id} ${Math.round(ledAt - killedAt)} ms after the kill, both relays on it at ${Math.round(relaysAt2 - killedAt)} ms; `
    + `-5 answers from ${Math.round(Math.min(...refused.map(answeredAt)))} to ${Math.round(Math.max(...refused.map(answeredAt)))} ms (each sent after the kill within ${Math.round(Math.max(...refused.filter((p) => p.at >= killedAt).map((p) => p.ms)))} ms), service answering again at ${Math.round(answeredAt(back))} ms`);

  // The kept stop was replayed to the new leader: the first call ends there.
  await until(async () => !((await rpc('cc.calls', { account: `300@${DOMAIN}` })).result as Array<{ call_id: string }>).some((c) => c.call_id === ids[0]), 15_000, 'the first call ended by its replayed stop');
  t.match(ha.relay('B').log(), /"replaying":[1-9]\d*.*leader reached: replaying the start\/stop kept meanwhile/, 'relay B replayed what it kept');
  // The second call is hung up now: its stop goes to the new leader.
  const secondLived = (performance.now() - secondAt) / 1000;
  t.equal((await carol.inDialog(second.dialog!, 'BYE').final).status, 200);
  await until(async () => ((await rpc('cc.calls', { account: `300@${DOMAIN}` })).result as unknown[]).length === 0, 15_000, 'no call counted');

  const cdrs = ((await rpc('cc.cdrs', { account: `300@${DOMAIN}` })).result as Array<{ call_id: string; cause: string; duration: number; amount: number }>);
  t.same(ids.map((id) => cdrs.filter((c) => c.call_id === id).length), [1, 1], 'one CDR per call');
  const [c1, c2] = ids.map((id) => cdrs.find((c) => c.call_id === id)!);
  // The first call ends at the new leader by whichever comes first: the relay's replayed stop
  // (billed to when it was sent: held_ms) or the takeover's reconcile finding its dialog gone
  // (stale, billed to the old leader's last heartbeat). Either way for the time it ran.
  t.ok(['normal', 'stale'].includes(c1!.cause), `the first call ended once (${c1!.cause})`);
  t.ok(c1!.duration >= Math.floor(firstLived) - 1 && c1!.duration <= Math.ceil(firstLived) + 1, `the first call billed ${c1!.duration} s for the ${firstLived.toFixed(1)} s it ran, not for the failover`);
  t.equal(c2!.cause, 'normal', 'the second call ended by its stop at the new leader');
  t.ok(c2!.duration >= Math.floor(secondLived) && c2!.duration <= Math.ceil(secondLived) + 1, `the second call billed ${c2!.duration} s for the ${secondLived.toFixed(1)} s it ran`);
  t.ok(cdrs.every((c) => c.amount === c.duration), 'each billed by the second (60/min, 1/1)');
  const debits = ((await rpc('cc.balance_history', { account: `300@${DOMAIN}` })).result as Array<{ note: string; amount: number }>).filter((h) => h.note.startsWith('call '));
  t.same(ids.map((id) => debits.filter((d) => d.note === `call ${id}`).length), [1, 1], 'one debit per call');
  t.same(debits.map((d) => -d.amount).sort(), cdrs.map((c) => c.amount).sort(), 'each debit is its CDR\'s amount');

  for (const p of ha.proxies) {
    t.notMatch(p.log(), /did timeout waiting for an answer|connection with callcontrol (closed|did die)|failed to connect to/, `proxy ${p.id}: call_control.so never timed out nor lost its socket (no 10 s pause)`);
  }
  t.equal(await old.exited(), null, 'the killed node is gone (kill -9)');
});
