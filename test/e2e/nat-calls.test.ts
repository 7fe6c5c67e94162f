// Calls of members behind NAT, through the real Kamailio with the shipped cfg: a member behind
// NAT on UDP calls a party behind NAT, the line lights, the member holds, another member behind
// NAT on TCP picks the held call up (the pickup reaches the held party through its flow, not its
// private Contact), the held party ends its old leg with the first member, the picker hangs up.
// Every in-dialog request finds its party through the alias the proxy gave its Contact; no
// packet or connection ever reaches a private Contact (a Trap listens at each).
import t from 'tap';
import { natPhone, type NatPhone, type Trap } from '../support/nat-phone.js';
import { hdr, sdp, type Dialog } from '../support/sip-phone.js';
import { DOMAIN, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../support/stack.js';

let stack: Stack;
const cleanup: Array<() => void> = [];
t.before(async () => { stack = await startStack(); });
t.teardown(async () => {
  for (const c of cleanup) c();
  await stack?.stop();
});

async function phone(name: string, user: string, transport: 'udp' | 'tcp'): Promise<{ phone: NatPhone; trap: Trap }> {
  const p = await natPhone(name, user, DOMAIN, transport, transport === 'udp' ? stack.sipPort : stack.tcpPort);
  cleanup.push(p.stop);
  return p;
}

const reInvite = (p: NatPhone, callId: string) =>
  p.waitFor((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'call-id') === callId && /;\s*tag=/.test(hdr(r.msg, 'to') ?? ''), 4000, 're-INVITE');

t.test('members behind NAT place, hold and pick up calls to a party behind NAT', async (t) => {
  const { phone: a, trap: trapA } = await phone('a', '100', 'udp');
  const { phone: b, trap: trapB } = await phone('b', '100', 'tcp');
  const { phone: r, trap: trapR } = await phone('r', '200', 'udp');
  for (const p of [a, b, r]) t.equal((await p.register()).status, 200, `${p.name} (${p.transport}, behind NAT) registers`);
  for (const p of [a, b]) {
    t.equal((await subscribeCallInfo(p)).status, 202);
    await p.nthNotify(1);
  }

  // A calls R: the INVITE finds R where it registered from; the line lights on both members.
  let m = mark(a, b);
  let rLeg: Dialog | undefined;
  r.onInvite = (inv) => { rLeg = r.respond(inv, 200, 'OK', { toTag: 'rtag', body: sdp(5000) }); };
  const call = await a.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, fromTag: 'atag', headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
  t.equal(call.final.status, 200, 'the call of a member behind NAT reaches a party behind NAT and is answered');
  const atR = r.requests.find((x) => x.msg.method === 'INVITE')!;
  t.match(hdr(atR.msg, 'contact'), /;alias=127\.0\.0\.1~\d+~1/, 'the caller\'s Contact carries its flow as an alias');
  t.match(hdr(call.final, 'contact'), /;alias=127\.0\.0\.1~\d+~1/, 'the callee\'s 200 carries its flow as an alias');
  await r.waitFor((x) => x.msg.method === 'ACK' && hdr(x.msg, 'call-id') === call.tx.callId, 4000, 'the ACK, through the callee\'s alias');
  for (const [i, p] of [a, b].entries()) await waitLine(p, '1:active', m[i]!);

  // A holds: the re-INVITE reaches R through its alias.
  m = mark(a, b);
  const hold = a.inDialog(call.dialog!, 'INVITE', { body: sdp(4000, 'sendonly'), headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]] });
  r.respond(await reInvite(r, call.tx.callId), 200, 'OK', { body: sdp(5000, 'recvonly') });
  t.equal((await hold.final).status, 200);
  a.inDialog(call.dialog!, 'ACK');
  for (const [i, p] of [a, b].entries()) await waitLine(p, '1:held', m[i]!);

  // B (TCP) picks it up: the INVITE goes to R's private Contact as R-URI, carried to its flow.
  m = mark(a, b);
  r.onInvite = (inv) => { r.respond(inv, 200, 'OK', { toTag: 'rtag2', body: sdp(5002) }); };
  const pickup = await b.invite({ ruri: b.aor, to: `<${b.aor}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4100) });
  t.equal(pickup.final.status, 200, 'the pickup reaches the held party behind NAT');
  const replaced = r.requests.filter((x) => x.msg.method === 'INVITE').at(-1)!;
  t.equal(replaced.msg.ruri, r.contact, 'addressed to its Contact');
  t.equal(hdr(replaced.msg, 'replaces'), `${call.tx.callId};to-tag=rtag;from-tag=atag`);
  for (const [i, p] of [a, b].entries()) await waitLine(p, '1:active', m[i]!);

  // R ends the replaced leg: the BYE reaches A through A's alias. Then B hangs up.
  t.ok(rLeg, 'R kept its first leg');
  t.equal((await r.inDialog(rLeg!, 'BYE').final).status, 200, 'R\'s BYE reaches A behind NAT');
  await a.waitFor((x) => x.msg.method === 'BYE', 4000, 'BYE');
  m = mark(a, b);
  t.equal((await b.inDialog(pickup.dialog!, 'BYE').final).status, 200, 'B\'s BYE over TCP reaches R');
  for (const [i, p] of [a, b].entries()) await waitLine(p, '', m[i]!);

  t.equal(b.connections.length, 1, 'B used its one connection');
  t.same([...trapA.hits, ...trapB.hits, ...trapR.hits], [], 'no private Contact was ever tried');
  t.notMatch(stack.kamailioLog(), /udp_send|Invalid argument|could not be sent/);
});
