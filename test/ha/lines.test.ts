// Shared lines across proxies (spec §4 T2, T3): one service leads for proxies A and B; a phone
// that subscribed through A gets every NOTIFY of its line from A, whichever proxy carried the call
// that changed it; seizes raced from phones on both proxies are granted once.
import t from 'tap';
import { DOMAIN, type HaTopology } from '../../scripts/ha/topology.js';
import { haProduct } from '../support/ha-product.js';
import { hdr, Phone, sdp } from '../support/sip-phone.js';
import { lineSeize, lineState, mark, subscribeCallInfo, waitLine } from '../support/stack.js';

t.setTimeout(900_000);
const product = haProduct();
const { phone } = product;

let ha: HaTopology;
t.before(async () => {
  ha = product.ha;
  await ha.leader(30_000);
});

t.test('T2: a line watched through A and called through B: every phone gets each NOTIFY from its own proxy, seized, active, idle', async (t) => {
  const [p1, p2, bob] = await Promise.all([phone('p1', '100', 'A'), phone('p2', '100', 'B'), phone('bob', '200', 'B')]);
  for (const p of [p1, p2, bob]) await p.register();
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  t.equal((await subscribeCallInfo(p1)).status, 202, 'p1 watches line 100 through A');
  t.equal((await subscribeCallInfo(p2)).status, 202, 'p2 through B');
  const m = mark(p1, p2);
  t.equal((await lineSeize(p2, 1)).status, 200, 'p2 seizes index 1 through B');
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '1:seized', m[i]!, 8000);
  const m2 = mark(p1, p2);
  const call = await p2.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
  t.equal(call.final.status, 200, 'the call goes through B');
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '1:active', m2[i]!, 8000);
  const m3 = mark(p1, p2);
  await p2.inDialog(call.dialog!, 'BYE').final;
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '', m3[i]!, 8000);
  const from = (p: Phone) => [...new Set(p.notifies('call-info').map((r) => r.from.port))];
  t.same(from(p1), [ha.proxy('A').sipPort], 'every NOTIFY p1 got came from proxy A (its NAT binding, its connection)');
  t.same(from(p2), [ha.proxy('B').sipPort], 'and p2\'s from B');
  t.same(p1.notifies('call-info').map((r) => lineState(r)).filter((s, i, all) => s !== all[i - 1]), ['', '1:seized', '1:active', ''], 'p1 saw seized, active, idle');
  t.equal(p1.notifies('call-info').filter((r) => hdr(r.msg, 'call-info')?.includes('appearance-state=active')).length, 1, 'the call reported once');
});

t.test('T3: seizes raced from phones on both proxies: one grant per round, never two', async (t) => {
  const racers = await Promise.all([phone('ra1', '300', 'A'), phone('ra2', '300', 'A'), phone('rb1', '300', 'B'), phone('rb2', '300', 'B')]);
  const ROUNDS = Number(process.env.HA_T3_ROUNDS ?? 250);
  let doubles = 0;
  let none = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const replies = await Promise.all(racers.map((p) => lineSeize(p, 1)));
    const winners = racers.filter((_, i) => replies[i]!.status === 200);
    if (winners.length > 1) doubles++;
    if (winners.length === 0) none++;
    for (const r of replies) if (r.status !== 200 && r.status !== 480) t.fail(`round ${round}: ${r.status} ${r.reason}`);
    // The winner lets go (Expires 0) before the next round.
    for (const w of winners) await lineSeize(w, 1, 0);
  }
  t.equal(doubles, 0, `${ROUNDS * racers.length} seizes in ${ROUNDS} rounds: never two grants of one index`);
  t.equal(none, 0, 'and one grant in each round');
});
