// Authentication before the SCA routes (WITH_AUTH): an unauthenticated SUBSCRIBE is challenged,
// and an authenticated user may subscribe only to its own line or one it is a member of
// (line_membership members, aor_members).
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Phone } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let alice: Phone;
let bob: Phone;
let mallory: Phone;

t.before(async () => {
  const db = path.join(mkdtempSync(path.join(tmpdir(), 'auth-db-')), 'auth.sqlite');
  const schema = ['standard-create.sql', 'auth_db-create.sql'].map((f) => `.read /usr/share/kamailio/db_sqlite/${f}`).join('\n');
  execFileSync('sqlite3', [db], { input: `${schema}\nINSERT INTO subscriber (username, domain, password) VALUES ('100','${DOMAIN}','pw100'),('101','${DOMAIN}','pw101'),('666','${DOMAIN}','pw666');\n` });
  stack = await startStack({ auth_db: db, aor_members: JSON.stringify({ [`sip:100@${DOMAIN}`]: ['101'] }) });
  [alice, bob, mallory] = await Promise.all([stack.phone('alice', '100'), stack.phone('bob', '101'), stack.phone('mallory', '666')]);
});
t.teardown(async () => stack.stop());

const subscribe = (p: Phone, line: string) => ({ ruri: `sip:${line}@${DOMAIN}`, to: `<sip:${line}@${DOMAIN}>`, headers: [['Event', 'call-info'], ['Expires', '600']] as Array<[string, string]> });

t.test('an unauthenticated SUBSCRIBE is challenged before it reaches the service', async (t) => {
  const r = await mallory.request('SUBSCRIBE', subscribe(mallory, '100')).final;
  t.equal(r.status, 407);
  t.equal(stack.serviceLog().includes('SUBSCRIBE'), false, 'the service never saw it');
});

t.test('the line\'s own user and its members may subscribe; anyone else gets 403', async (t) => {
  t.equal((await alice.withAuth('SUBSCRIBE', subscribe(alice, '100'), 'pw100')).status, 202, 'the line\'s user');
  t.equal((await bob.withAuth('SUBSCRIBE', subscribe(bob, '100'), 'pw101')).status, 202, 'a listed member');
  const refused = await mallory.withAuth('SUBSCRIBE', subscribe(mallory, '100'), 'pw666');
  t.same([refused.status, refused.reason], [403, 'Forbidden - Not A Member Of This Line']);
  t.equal((await mallory.withAuth('SUBSCRIBE', { ...subscribe(mallory, '100'), headers: [['Event', 'line-seize'], ['Expires', '15'], ['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]] }, 'pw666')).status, 403, 'nor seize one of its appearances');
  t.equal((await mallory.withAuth('SUBSCRIBE', subscribe(mallory, '666'), 'pw666')).status, 202, 'but may watch its own line');
});
