// Spec §11 scenarios 38-39: the engine operations behind the sca.* RPC commands.
import t from 'tap';
import { AOR, Bench, CI, IDLE, P1, P2, header, to } from '../../support/sip-fixture.js';

t.test('38: seize, update, release through the admin operations, with the module fault texts', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  const seized = b.engine.seizeAppearance(AOR, 'sip:100@10.0.0.11', b.now);
  t.ok(seized.ok);
  if (!seized.ok) return;
  t.same(seized.value, { index: 1 });
  t.equal(header(to(seized.notifies, P1)[0]!, 'Call-Info'), `${CI(1, 'seized')},${IDLE}`);

  const heldUp = b.engine.updateAppearance(AOR, 1, 'held', undefined, b.now);
  t.ok(heldUp.ok && header(heldUp.notifies[0]!, 'Call-Info') === `${CI(1, 'held')},${IDLE}`);
  const ringing = b.engine.updateAppearance(AOR, 1, 'ringing', undefined, b.now);
  t.same(ringing, { ok: false, code: 500, message: 'ringing: invalid state' });
  const active = b.engine.updateAppearance(AOR, 1, 'active', 'sip:200@far.example.net', b.now);
  t.ok(active.ok);
  t.equal(b.tick(121).length, 0, '"active" set by RPC is not purged 35 s later (D16)');
  t.equal(b.engine.listAppearances()[0]!.uri, '<sip:200@far.example.net>');

  const released = b.engine.releaseAppearance(AOR, 1, b.now);
  t.ok(released.ok && header(released.notifies[0]!, 'Call-Info') === IDLE);
  t.same(b.engine.releaseAppearance(AOR, 0, b.now), { ok: false, code: 500, message: 'appearance-index must be > 0' });
  t.same(b.engine.releaseAppearance(AOR, 5, b.now), { ok: false, code: 500, message: `${AOR} appearance index 5 is not in use` });
  t.same(b.engine.releaseAppearance('sip:9@x', 1, b.now), { ok: false, code: 500, message: 'No appearances for sip:9@x' });
  t.same(b.engine.updateAppearance(AOR, 7, 'held', undefined, b.now), { ok: false, code: 500, message: `Failed to update ${AOR} appearance-index 7` });
});

t.test('39: deactivate ends every subscription with reason=deactivated; subscribers and show are implemented', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  b.lineSeize(P2, 1);
  const subs = b.engine.subscribers(AOR, b.now);
  t.same(subs.map((s) => [s.aor, s.call_info.length, s.line_seize.length]), [[AOR, 1, 1]]);
  const shown = b.engine.showAppearance(AOR, 1);
  t.ok(shown.ok && shown.value[0]!.owner === P2);
  const out = b.engine.deactivateAll(b.now);
  t.ok(out.ok);
  if (!out.ok) return;
  t.same(out.value.map((s) => [s.event, s.subscriber]).sort(), [['call-info', P1], ['line-seize', P2]]);
  for (const n of out.notifies) t.equal(header(n, 'Subscription-State'), 'terminated;reason=deactivated');
  const ls = out.notifies.find((n) => n.event === 'line-seize')!;
  t.equal(header(ls, 'Call-Info'), CI(1), 'a line-seize deactivation NOTIFY names its index (D15)');
  t.equal(b.engine.countSubscriptions('call-info') + b.engine.countSubscriptions('line-seize'), 0);
  t.equal(b.state(1), 'seized', 'appearances are not released');
  t.same(b.engine.deactivateSubscription(AOR, 'call-info', P1, b.now), { ok: false, code: 404, message: `No call-info subscription for ${AOR}` });
});

t.test('listing subscriptions shows time left and dialog ids', async (t) => {
  const b = new Bench();
  const ci = b.callInfo(P1, { expires: 600 });
  b.now += 100;
  const [s] = b.engine.listSubscriptions(b.now);
  t.same([s!.aor, s!.subscriber, s!.event, s!.ttl, s!.state, s!.call_id, s!.to_tag], [AOR, P1, 'call-info', 500, 'active', ci.callId, ci.toTag]);
  t.equal(b.engine.showSubscription(AOR, 'call-info', P2, b.now).length, 0);
  t.equal(b.engine.showSubscription(AOR, 'call-info', undefined, b.now).length, 1);
});
