// Phones behind NAT and on TCP/TLS, through the real Kamailio with the shipped cfg: every NOTIFY
// (the initial one, the group NOTIFYs of a call on the line, line-seize) goes to the flow the
// SUBSCRIBE came from, over the phone's own connection, and nothing ever reaches the private
// Contact (a Trap listens there). A connection that is gone gets no NOTIFY and no new connection;
// the phone gets the state again when it refreshes on a new one. And what the native module does
// with the same phone (kamailio/native-oracle.cfg): it sends to the private Contact.
import t, { type Test } from 'tap';
import { startNative } from '../conformance/runner.js';
import { rpc } from '../support/rpc.js';
import { natPhone, type NatPhone, type PhoneTransport, type Trap } from '../support/nat-phone.js';
import { hdr, sdp, type Phone, type Received } from '../support/sip-phone.js';
import { DOMAIN, callInfoDialog, lineSeize, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../support/stack.js';
import { until } from '../support/wait.js';

let stack: Stack;
let bob: Phone;
const cleanup: Array<() => void> = [];
t.before(async () => {
  stack = await startStack();
  bob = await stack.phone('bob', '200');
  t.equal((await bob.register()).status, 200);
});
t.teardown(async () => {
  for (const c of cleanup) c();
  await stack?.stop();
});

const portOf = (tr: PhoneTransport): number => (tr === 'udp' ? stack.sipPort : tr === 'tcp' ? stack.tcpPort : stack.tlsPort);

/** Every NOTIFY came from the proxy's listener of the phone's transport (over its connection for TCP/TLS). */
const fromProxy = (p: NatPhone, list: Received[]): boolean => list.every((n) => n.from.port === portOf(p.transport) && n.from.address === '127.0.0.1');

async function flowScenario(t: Test, transport: PhoneTransport, user: string): Promise<{ nat: NatPhone; trap: Trap; other: Phone; refresh: (e: number) => Promise<unknown> }> {
  const { phone: nat, trap, stop } = await natPhone(`${transport}nat`, user, DOMAIN, transport, portOf(transport));
  cleanup.push(stop);
  const other = await stack.phone(`${transport}other`, user);
  t.equal((await nat.register()).status, 200, `the ${transport} phone behind NAT registers`);

  const sub = await callInfoDialog(nat);
  const first = await nat.nthNotify(1, 'call-info', 4000);
  t.equal(first.msg.ruri, nat.contact, 'the NOTIFY names its private Contact, as its R-URI');
  t.equal(hdr(first.msg, 'call-info'), `<sip:${DOMAIN}>;appearance-index=*;appearance-state=idle`, 'its initial NOTIFY reached it');
  t.equal((await subscribeCallInfo(other)).status, 202);

  // A call by another member on the line: the phone behind NAT sees it ring, answered, ended.
  let m = mark(nat, other);
  bob.onInvite = (r) => bob.respond(r, 180, 'Ringing', { toTag: `bob${transport}` });
  const calling = other.request('INVITE', { ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, fromTag: `o${transport}`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
  const atBob = await bob.waitFor((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'call-id') === calling.callId, 4000, 'INVITE');
  await waitLine(nat, '1:progressing', m[0]!);
  m = mark(nat, other);
  bob.respond(atBob, 200, 'OK', { toTag: `bob${transport}`, body: sdp(5000) });
  const ok = await calling.final;
  t.equal(ok.status, 200);
  const dialog = other.dialogFromReply(ok, `o${transport}`);
  other.inDialog(dialog, 'ACK');
  await waitLine(nat, '1:active', m[0]!);
  m = mark(nat, other);
  t.equal((await other.inDialog(dialog, 'BYE').final).status, 200);
  await waitLine(nat, '', m[0]!);
  t.pass('the group NOTIFYs of a call on its line reached it: ringing, active, idle');

  // Its own line-seize.
  m = mark(nat, other);
  t.equal((await lineSeize(nat, 1)).status, 200);
  const seized = await nat.nthNotify(1, 'line-seize', 4000);
  t.equal(hdr(seized.msg, 'call-info'), `<sip:${DOMAIN}>;appearance-index=1`, 'its line-seize NOTIFY reached it');
  await waitLine(nat, '1:seized', m[0]!);
  await waitLine(other, '1:seized', m[1]!);

  t.ok(fromProxy(nat, nat.notifies()), `every NOTIFY came from the proxy's ${transport} listener`);
  const shown = await rpc(stack.httpPort, 'sca.show_subscription', [nat.aor, 'call-info', nat.contact]);
  const srcPort = transport === 'udp' ? nat.port : nat.streamPort;
  t.equal(shown.result?.[0]?.flow, `${transport}:127.0.0.1:${srcPort} on ${transport}:127.0.0.1:${portOf(transport)}`, 'sca.show_subscription says where its NOTIFYs go');
  t.same(trap.hits, [], 'nothing was sent to its private Contact');
  return { nat, trap, other, refresh: sub.refresh };
}

t.test('a UDP phone behind NAT gets every NOTIFY through its NAT binding', async (t) => {
  const { nat } = await flowScenario(t, 'udp', '101');
  t.notMatch(stack.kamailioLog(), /udp_send|Invalid argument|could not be sent/, 'Kamailio never tried its private address');
  t.ok(nat.notifies().every((n) => n.answered === 200));
});

for (const transport of ['tcp', 'tls'] as const) {
  t.test(`a ${transport.toUpperCase()} phone behind NAT gets every NOTIFY over its own connection; a closed one gets none until it refreshes`, async (t) => {
    const { nat, trap, other, refresh } = await flowScenario(t, transport, transport === 'tcp' ? '102' : '103');
    t.equal(nat.connections.length, 1, 'one connection, the phone\'s');

    // The phone's connection goes (its NAT forgot it): no NOTIFY, and no connection opened to it.
    const oldPort = nat.streamPort;
    await nat.closeConnection();
    const before = nat.notifies('call-info').length;
    const m = mark(other);
    t.equal((await lineSeize(other, 2)).status, 200);
    await waitLine(other, '1:seized,2:seized', m[0]!);
    await until(() => stack.kamailioLog().includes(`its connection from 127.0.0.1:${oldPort} is closed`), 5000, 'Kamailio saying the NOTIFY waits for a connection');
    t.equal(nat.notifies('call-info').length, before, 'no NOTIFY while it has no connection');
    t.same(trap.hits, [], 'and none to its private Contact');

    // It reconnects and refreshes its subscription: the NOTIFY of the refresh carries the state.
    await nat.connect();
    const r = (await refresh(3600)) as { status?: number };
    t.equal(r.status, 202, 'the refresh on the new connection');
    const again = await waitLine(nat, '1:seized,2:seized', before);
    t.equal(again.from.port, portOf(transport), 'over the new connection');
    t.equal(nat.connections.length, 2, 'the phone opened both connections, Kamailio none');
    t.same(trap.hits, [], 'nothing reached its private Contact');
    t.notMatch(stack.kamailioLog(), /could not be sent|Connection refused|connect\(\)? .*failed/, 'Kamailio never tried to connect to the phone');
  });
}

t.test('the native module (native-oracle.cfg) sends the same phone\'s NOTIFYs to its private Contact', async (t) => {
  const native = await startNative();
  const { phone, trap, stop } = await natPhone('native', '104', DOMAIN, 'udp', native.sipPort);
  t.teardown(async () => { stop(); await native.stop(); });
  t.equal((await subscribeCallInfo(phone)).status, 202, 'the 202 reaches it (replies follow the Via, rport)');
  await until(() => trap.hits.some((h) => h.includes(`NOTIFY ${phone.contact} SIP/2.0`)), 5000, 'the module\'s NOTIFY at the private Contact');
  t.equal(phone.notifies().length, 0, 'the phone itself gets no NOTIFY from the module');
  t.comment(`native: ${trap.hits[0]}`);
});
