// Every SCA SUBSCRIBE to a line is authenticated (WITH_AUTH), whatever its From: a foreign From
// domain once skipped the challenge (the AUTH route asked only "from_uri == myself") and got the
// line's state and its seizes. Through the real Kamailio with kamailio/kamailio.cfg.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { hdr, type Phone } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let alice: Phone;
let mallory: Phone;
const EVIL = '<sip:666@evil.example>';

t.before(async () => {
  const db = path.join(mkdtempSync(path.join(tmpdir(), 'auth-db-')), 'auth.sqlite');
  const schema = ['standard-create.sql', 'auth_db-create.sql'].map((f) => `.read /usr/share/kamailio/db_sqlite/${f}`).join('\n');
  execFileSync('sqlite3', [db], { input: `${schema}\nINSERT INTO subscriber (username, domain, password) VALUES ('100','${DOMAIN}','pw100'),('666','${DOMAIN}','pw666');\n` });
  stack = await startStack({ auth_db: db });
  [alice, mallory] = await Promise.all([stack.phone('alice', '100'), stack.phone('mallory', '666')]);
});
t.teardown(async () => stack.stop());

const watch = { ruri: `sip:100@${DOMAIN}`, to: `<sip:100@${DOMAIN}>`, from: EVIL, headers: [['Event', 'call-info'], ['Expires', '600']] as Array<[string, string]> };
const seize = { ...watch, headers: [['Event', 'line-seize'], ['Expires', '15'], ['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]] as Array<[string, string]> };

t.test('a call-info SUBSCRIBE from a foreign From domain is challenged, not answered 202', async (t) => {
  const r = await mallory.request('SUBSCRIBE', watch).final;
  t.same([r.status, /realm="evil\.example"/.test(hdr(r, 'proxy-authenticate') ?? '')], [407, true], 'a challenge, before the service sees it');
  t.equal(mallory.notifies('call-info').length, 0, 'no NOTIFY with the line\'s state');
  t.notMatch(stack.serviceLog(), /SUBSCRIBE 202/, 'the service never answered it');
});

t.test('a line-seize from a foreign From domain is challenged too', async (t) => {
  t.equal((await mallory.request('SUBSCRIBE', seize).final).status, 407);
});

t.test('authenticated, the foreign From is checked like any user: not a member of the line, 403', async (t) => {
  const r = await mallory.withAuth('SUBSCRIBE', { ...watch, from: `<sip:666@evil.example>` }, 'pw666');
  t.same([r.status, r.reason], [403, 'Forbidden - Not A Member Of This Line'], 'credentials of 666 behind a foreign From: authenticated as 666, refused as a non-member');
  t.equal(mallory.notifies('call-info').length, 0);
  t.equal((await alice.withAuth('SUBSCRIBE', { ...watch, from: `<sip:100@${DOMAIN}>` }, 'pw100')).status, 202, 'the line\'s own user still subscribes');
});
