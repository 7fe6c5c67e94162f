// Spec §11 scenarios 1-15 and 37-41: SUBSCRIBE handling, NOTIFY contents, RPC-visible state.
import t from 'tap';
import { AOR, Bench, CI, DOMAIN, IDLE, P1, P2, header, to, subscribeMsg } from '../../support/sip-fixture.js';

t.test('1: call-info SUBSCRIBE gets 202 with the module headers, then a full-state NOTIFY in its dialog', async (t) => {
  const b = new Bench();
  const out = b.subscribe(P1, { ruri: `${AOR};transport=tcp`, fromTag: 'pf1', callId: 'c1' }, 'our-tag');
  t.equal(out.reply.code, 202);
  t.equal(out.reply.reason, 'Accepted');
  t.same(out.reply.headers, [
    ['Event', 'call-info'],
    ['Contact', `${AOR};transport=tcp`],
    ['Allow-Events', 'call-info, line-seize'],
    ['Expires', '3600'],
  ]);
  t.equal(out.toTag, 'our-tag');
  t.equal(out.notifies.length, 1);
  const n = out.notifies[0]!;
  t.equal(n.ruri, P1);
  t.same(n.route, []);
  t.equal(header(n, 'From'), `<${AOR}>;tag=our-tag`);
  t.equal(header(n, 'To'), `<${AOR}>;tag=pf1`);
  t.equal(header(n, 'Call-ID'), 'c1');
  t.equal(header(n, 'CSeq'), '1 NOTIFY');
  t.equal(header(n, 'Contact'), AOR);
  t.equal(header(n, 'Call-Info'), IDLE);
  t.equal(header(n, 'Event'), 'call-info');
  // Deviation D2: the first NOTIFY carries ;expires (RFC 6665 4.2.2); the module omits it.
  t.equal(header(n, 'Subscription-State'), 'active;expires=3600');
});

t.test('2: Expires is capped per package', async (t) => {
  const b = new Bench();
  t.equal(header(b.subscribe(P1, { expires: 7200 }).reply, 'Expires'), '3600');
  const seize = b.lineSeize(P1, 1, { expires: 60 });
  t.equal(header(seize.out.reply, 'Expires'), '15');
  t.equal(header(to(seize.out.notifies, P1, 'line-seize')[0]!, 'Subscription-State'), 'active;expires=15');
});

t.test('3: a SUBSCRIBE without Expires is an unsubscribe, as in the module', async (t) => {
  const b = new Bench();
  const out = b.subscribe(P1, { expires: null });
  t.equal(out.reply.code, 202);
  t.equal(header(out.reply, 'Expires'), '0');
  t.equal(header(out.notifies[0]!, 'Subscription-State'), 'terminated');
  t.equal(b.engine.countSubscriptions('call-info'), 0);
});

t.test('4: Event errors get the module reason phrases', async (t) => {
  const b = new Bench();
  t.same([b.subscribe(P1, { event: null }).reply.code, b.subscribe(P1, { event: null }).reply.reason], [400, 'Missing Event']);
  t.equal(b.subscribe(P1, { event: 'presence' }).reply.reason, 'Bad Event');
  t.equal(b.subscribe(P1, { event: 'call-info;id=3' }).reply.reason, 'Bad Event');
  t.equal(b.subscribe(P1, { event: 'Call-Info' }).reply.reason, 'Bad Event');
  t.equal(b.engine.countSubscriptions('call-info'), 0);
});

t.test('5-6: line-seize needs a valid SCA Call-Info', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  const missing = b.subscribe(P1, { event: 'line-seize', expires: 15 });
  t.same([missing.reply.code, missing.reply.reason], [400, 'Bad Request - missing Call-Info header']);
  for (const ci of ['<http://x>;appearance-index=1', `<sip:${DOMAIN}>;appearance-index=*`, `<sip:${DOMAIN}>`, 'garbage']) {
    const bad = b.subscribe(P1, { event: 'line-seize', expires: 15, callInfo: ci });
    t.same([bad.reply.code, bad.reply.reason], [400, 'Bad Request - Invalid Call-Info header'], ci);
    t.equal(bad.notifies.length, 0);
  }
  t.equal(b.engine.listAppearances().length, 0);
});

t.test('7: line-seize on an AoR that never subscribed is granted (deviation D6; the module answers 500)', async (t) => {
  const b = new Bench();
  const out = b.lineSeize(P1, 1);
  t.equal(out.out.reply.code, 200);
  t.equal(b.state(1), 'seized');
});

t.test('8: seize: 200, a line-seize NOTIFY with the index only, then the group sees it seized', async (t) => {
  const b = new Bench();
  const ci = b.callInfo(P1);
  const out = b.lineSeize(P1, 1);
  t.same([out.out.reply.code, out.out.reply.reason], [200, 'OK']);
  t.equal(header(out.out.reply, 'Event'), 'line-seize');
  t.equal(header(out.out.reply, 'Expires'), '15');
  t.equal(out.out.notifies.length, 2);
  const [ls, group] = out.out.notifies;
  t.equal(ls!.event, 'line-seize');
  t.equal(header(ls!, 'Call-Info'), CI(1));
  t.equal(header(ls!, 'Event'), 'line-seize');
  t.equal(header(ls!, 'Subscription-State'), 'active;expires=15');
  t.equal(header(ls!, 'Call-ID'), out.callId);
  t.equal(group!.event, 'call-info');
  t.equal(header(group!, 'Call-ID'), ci.callId);
  t.equal(header(group!, 'CSeq'), '2 NOTIFY');
  t.equal(header(group!, 'Call-Info'), `${CI(1, 'seized')},${IDLE}`);
  t.equal(header(group!, 'Subscription-State'), 'active;expires=3600');
});

t.test('9: appearance-index=0 seizes the lowest free index', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  b.lineSeize(P1, 1);
  const out = b.lineSeize(P2, 0);
  t.equal(header(to(out.out.notifies, P2, 'line-seize')[0]!, 'Call-Info'), CI(2));
  t.equal(b.engine.listAppearances().find((a) => a.index === 2)?.owner, P2);
});

t.test('10: glare: a seize of a taken index gets 480 + Retry-After: 1 and no NOTIFY', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  b.lineSeize(P1, 1);
  const out = b.lineSeize(P2, 1);
  t.same([out.out.reply.code, out.out.reply.reason], [480, 'Temporarily Unavailable']);
  t.same(out.out.reply.headers, [['Retry-After', '1']]);
  t.equal(out.out.notifies.length, 0);
  t.equal(b.engine.listAppearances().find((a) => a.index === 1)?.owner, P1);
  t.equal(b.engine.countSubscriptions('line-seize'), 1, 'the loser keeps no subscription');
});

t.test('11: an in-dialog SUBSCRIBE with an unknown To-tag gets 481', async (t) => {
  const b = new Bench();
  const out = b.subscribe(P1, { toTag: 'nope' });
  t.same([out.reply.code, out.reply.reason], [481, 'Call Leg/Transaction Does Not Exist']);
  t.equal(out.notifies.length, 0);
});

t.test('12: an in-dialog refresh gets 202 and the next CSeq with full state', async (t) => {
  const b = new Bench();
  const ci = b.callInfo(P1);
  b.now += 100;
  const out = b.subscribe(P1, { callId: ci.callId, fromTag: ci.fromTag, toTag: ci.toTag, expires: 600 });
  t.equal(out.reply.code, 202);
  t.equal(header(out.reply, 'Expires'), '600');
  t.equal(header(out.notifies[0]!, 'CSeq'), '2 NOTIFY');
  t.equal(header(out.notifies[0]!, 'Call-Info'), IDLE);
  t.equal(header(out.notifies[0]!, 'Subscription-State'), 'active;expires=600');
});

t.test('13: an in-dialog refresh is matched on the raw To URI', async (t) => {
  const b = new Bench();
  const ci = b.callInfo(P1, { ruri: 'sip:100@pbx.example.com:5060' });
  t.equal(b.engine.listSubscriptions(b.now)[0]!.aor, 'sip:100@pbx.example.com:5060');
  const out = b.subscribe(P1, { callId: ci.callId, fromTag: ci.fromTag, toTag: ci.toTag, to: AOR });
  t.equal(out.reply.code, 481);
  const ok = b.subscribe(P1, { callId: ci.callId, fromTag: ci.fromTag, toTag: ci.toTag, to: 'sip:100@pbx.example.com:5060' });
  t.equal(ok.reply.code, 202);
});

t.test('14: call-info unsubscribe: 202 Expires 0, terminated NOTIFY, and the subscription is gone at once (D4)', async (t) => {
  const b = new Bench();
  b.callInfo(P2);
  const ci = b.callInfo(P1);
  const out = b.subscribe(P1, { callId: ci.callId, fromTag: ci.fromTag, toTag: ci.toTag, expires: 0 });
  t.equal(out.reply.code, 202);
  t.equal(header(out.reply, 'Expires'), '0');
  t.equal(header(out.notifies[0]!, 'Subscription-State'), 'terminated');
  const group = b.lineSeize(P2, 1).out.notifies.filter((n) => n.event === 'call-info');
  t.same(group.map((n) => n.subscriber), [P2], 'the unsubscribed phone gets no more NOTIFYs');
  t.match(header(group[0]!, 'Subscription-State'), /^active;expires=\d+$/, 'the others keep their own state (D3)');
});

t.test('15: line-seize release: 200 Expires 0, terminated line-seize NOTIFY, group sees idle', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  const ls = b.lineSeize(P1, 1);
  const out = b.subscribe(P1, { event: 'line-seize', callId: ls.callId, fromTag: ls.fromTag, toTag: ls.toTag, expires: 0, callInfo: CI(1) });
  t.equal(out.reply.code, 200);
  t.equal(header(out.reply, 'Expires'), '0');
  const [own, group] = out.notifies;
  t.equal(header(own!, 'Subscription-State'), 'terminated');
  t.equal(header(own!, 'Call-Info'), CI(1));
  t.equal(header(group!, 'Call-Info'), IDLE);
  t.equal(b.state(1), undefined);
  // D7: an unsubscribe whose index is no longer in use is still accepted (the module answers 500).
  const again = b.lineSeize(P1, 2);
  b.engine.releaseAppearance(AOR, 2, b.now);
  const late = b.subscribe(P1, { event: 'line-seize', callId: again.callId, fromTag: again.fromTag, toTag: again.toTag, expires: 0, callInfo: CI(2) });
  t.equal(late.reply.code, 200);
});

t.test('37: reboot detection: a new out-of-dialog call-info SUBSCRIBE releases what the Contact owned', async (t) => {
  const b = new Bench();
  b.callInfo(P2);
  b.callInfo(P1);
  b.lineSeize(P1, 1);
  b.lineSeize(P2, 2);
  const out = b.subscribe(P1, { callId: 'after-reboot' });
  t.equal(out.reply.code, 202);
  t.equal(header(out.notifies[0]!, 'Call-ID'), 'after-reboot');
  t.equal(header(out.notifies[0]!, 'Call-Info'), `${CI(2, 'seized')},${IDLE}`, 'the first NOTIFY already lacks index 1');
  t.same(out.notifies.slice(1).map((n) => n.subscriber).sort(), [P1, P2].sort(), 'then the whole group is told');
  t.equal(b.state(1), undefined);
  t.equal(b.state(2), 'seized');
});

t.test('40: the Record-Route of the initial SUBSCRIBE is the route set of every NOTIFY', async (t) => {
  const b = new Bench();
  const ci = b.callInfo(P1, { recordRoute: '<sip:p1.example.com;lr>, <sip:p2.example.com;lr>' });
  t.same(ci.out.notifies[0]!.route, ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
  const refresh = b.subscribe(P1, { callId: ci.callId, fromTag: ci.fromTag, toTag: ci.toTag });
  t.same(refresh.notifies[0]!.route, ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>'], 'kept on an in-dialog refresh');
});

t.test('41: a NOTIFY answered 481 ends the subscription (D5); a timeout does not', async (t) => {
  const b = new Bench();
  const ci = b.callInfo(P1);
  // The outcome without its effects (rows to write).
  const reply = (input: Parameters<typeof b.engine.notifyReply>[0]) => {
    const { removed, aor } = b.engine.notifyReply(input);
    return { removed, aor };
  };
  t.same(reply({ call_id: ci.callId, from_tag: ci.toTag, code: 408, now: b.now }), { removed: false, aor: undefined });
  t.equal(b.engine.countSubscriptions('call-info'), 1);
  t.same(reply({ call_id: 'other', from_tag: ci.toTag, code: 481, now: b.now }), { removed: false, aor: undefined }, 'a stale dialog does not remove the new one');
  t.same(reply({ call_id: ci.callId, from_tag: ci.toTag, code: 481, now: b.now }), { removed: true, aor: AOR });
  t.equal(b.engine.countSubscriptions('call-info'), 0);
});

t.test('a SUBSCRIBE without Contact gets 400 (the module crashes or stores garbage)', async (t) => {
  const b = new Bench();
  const out = b.subscribe(P1, { contact: null });
  t.same([out.reply.code, out.reply.reason], [400, 'Bad Shared Call Appearance Request']);
  t.equal(b.engine.countSubscriptions('call-info'), 0);
});

t.test('malformed fields get 400 Bad Shared Call Appearance Request, never a throw', async (t) => {
  const b = new Bench();
  const cases = [
    subscribeMsg(P1, { extra: [] }).replace('Expires: 3600', 'Expires: soon'),
    subscribeMsg(P1).replace(/From: [^\r]*/, 'From: <sip:100@pbx.example.com>'),
    subscribeMsg(P1).replace(/CSeq: [^\r]*/, 'CSeq: x SUBSCRIBE'),
    subscribeMsg(P1).replace(/Contact: [^\r]*/, 'Contact: *'),
    subscribeMsg(P1).replace(/Contact: [^\r]*/, 'Contact: <sip:a@1.2.3.4>, <sip:b@1.2.3.4>'),
    subscribeMsg(P1, { recordRoute: '<sip:broken' }),
    subscribeMsg(P1).replace(/Call-ID: [^\r]*/, 'Call-ID: '),
  ];
  for (const msg of cases) {
    const out = b.engine.subscribe({ msg, to_tag: 'x', now: b.now });
    t.same([out.reply.code, out.reply.reason], [400, 'Bad Shared Call Appearance Request']);
  }
  t.equal(b.engine.subscribe({ msg: 'not sip at all', now: b.now }).reply.code, 400);
  t.equal(b.engine.subscribe({ msg: subscribeMsg(P1), now: b.now }).reply.code, 400, 'no To-tag to answer with');
  const notSubscribe = b.engine.subscribe({ msg: subscribeMsg(P1).replace('SUBSCRIBE sip', 'OPTIONS sip'), to_tag: 'x', now: b.now });
  t.same([notSubscribe.reply.code, notSubscribe.reply.reason], [500, 'Internal server error - config']);
  t.equal(b.engine.countSubscriptions('call-info'), 0);
});

t.test('a retransmitted or repeated out-of-dialog line-seize of the own index is granted again (D8)', async (t) => {
  const b = new Bench();
  b.callInfo(P1);
  const first = b.lineSeize(P1, 1);
  const again = b.lineSeize(P1, 1, { callId: first.callId, fromTag: first.fromTag });
  t.equal(again.out.reply.code, 200);
  t.equal(b.engine.listAppearances().length, 1);
  const any = b.lineSeize(P1, 0);
  t.equal(header(to(any.out.notifies, P1, 'line-seize')[0]!, 'Call-Info'), CI(1), 'index 0 keeps the one it holds');
});

t.test('bounded lines: beyond max_appearances or when all are taken, a seize gets 480', async (t) => {
  const b = new Bench({ max_appearances: 2, aor_max_appearances: { 'sip:300@pbx.example.com': 1 } });
  b.callInfo(P1);
  t.equal(b.lineSeize(P1, 3).out.reply.code, 480, 'index above the maximum');
  t.equal(b.lineSeize(P1, 0).out.reply.code, 200);
  t.equal(b.lineSeize(P2, 0).out.reply.code, 200);
  const full = b.lineSeize(P2.replace('12', '13'), 0);
  t.same([full.out.reply.code, full.out.reply.headers], [480, [['Retry-After', '1']]]);
  const other = 'sip:300@pbx.example.com';
  t.equal(b.lineSeize(P1, 0, { ruri: other }).out.reply.code, 200);
  t.equal(b.lineSeize(P2, 0, { ruri: other }).out.reply.code, 480, 'per-AoR override');
  t.equal(b.engine.listAppearances().length, 3);
});
