// The live view in real headless Chromium: a state change made through SIP shows on the page,
// and a click on "release" idles the appearance and NOTIFYs the phones. The promise that a change
// shows within a second is measured by scripts/bench/targets.ts, not asserted on a busy machine.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import t from 'tap';
import { rpc } from '../support/rpc.js';
import { sdp, type Phone } from '../support/sip-phone.js';
import { DOMAIN, lineSeize, mark, startStack, subscribeCallInfo, waitLine, type Stack } from '../support/stack.js';

let stack: Stack;
let browser: Browser;
let page: Page;
let p1: Phone, p2: Phone, bob: Phone;
const TOKEN = 'live-view-test-token-0123';

t.before(async () => {
  stack = await startStack({ admin_token: TOKEN });
  [p1, p2, bob] = await Promise.all([stack.phone('p1', '100'), stack.phone('p2', '100'), stack.phone('bob', '200')]);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
});
t.teardown(async () => {
  await browser?.close();
  await stack.stop();
});

const cellState = (index: number) => page.locator(`section.line[data-aor="sip:100@${DOMAIN}"] tr[data-index="${index}"] [data-testid="state"]`);

/** Milliseconds until the page shows `state` at `index` (fails loudly after 10 s). */
async function shows(index: number, state: string): Promise<number> {
  const t0 = performance.now();
  await cellState(index).filter({ hasText: new RegExp(`^${state}$`) }).waitFor({ timeout: 10_000 });
  return performance.now() - t0;
}

t.test('a SIP change appears on the page; a click on release idles the line for the phones', async (t) => {
  for (const p of [p1, p2, bob]) await p.register();
  await page.goto(`http://127.0.0.1:${stack.httpPort}/#token=${TOKEN}`);
  await page.getByTestId('status').filter({ hasText: 'live' }).waitFor({ timeout: 3000 });
  await subscribeCallInfo(p1);
  await subscribeCallInfo(p2);

  t.equal((await lineSeize(p1, 1)).status, 200);
  const seizedMs = await shows(1, 'seized');
  t.pass(`seized shown ${Math.round(seizedMs)} ms after the 200`);

  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, headers: [['Call-Info', `<sip:${DOMAIN}>;appearance-index=1`]], body: sdp(4000) });
  t.equal(call.final.status, 200);
  const activeMs = await shows(1, 'active');
  t.pass(`active shown ${Math.round(activeMs)} ms after the call was answered`);
  t.match(await page.locator(`tr[data-index="1"]`).textContent(), `sip:200@${DOMAIN}`, 'the remote party is shown');
  t.equal(await page.locator('section.line [data-testid="subscribers"] tr', { hasText: 'call-info' }).count(), 2, 'both call-info subscribers are listed');
  t.equal(await page.locator('section.line [data-testid="subscribers"] tr', { hasText: 'line-seize' }).count(), 1, 'and P1\'s line-seize');

  mkdirSync('.tap', { recursive: true });
  await page.screenshot({ path: '.tap/live-view.png', fullPage: true });

  const m = mark(p1, p2);
  await page.locator('button[data-action="release"][data-index="1"]').click();
  await page.locator(`section.line[data-aor="sip:100@${DOMAIN}"] tr[data-index="1"]`).waitFor({ state: 'detached', timeout: 10_000 });
  for (const [i, p] of [p1, p2].entries()) await waitLine(p, '', m[i]!);
  t.pass('both phones were told the line is idle');
  t.match(stack.serviceLog(), /"who":"127\.0\.0\.1 \(token\)","method":"sca\.release_appearance"/, 'the release is logged with who did it');
  t.equal(await page.getByTestId('error').textContent(), '', 'no error shown');
});

t.test('metrics after the traffic, and sca-ctl against the running stack', async (t) => {
  const res = await fetch(`http://127.0.0.1:${stack.httpPort}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const text = await res.text();
  const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  t.equal(value(/^sca_evapi_connected (\d+)$/m), 1);
  t.equal(value(/^sca_line_seize_total\{result="granted"\} (\d+)$/m), 1);
  t.ok(value(/^sca_notify_sent_total (\d+)$/m) >= 8, 'NOTIFYs were sent');
  t.ok(value(/^sca_notify_total\{class="2xx"\} (\d+)$/m) >= 8, 'and answered 2xx');
  t.ok(value(/^sca_notify_latency_seconds_count (\d+)$/m) >= 8, 'with their latency');
  t.equal(value(/^sca_subscriptions\{event="call-info"\} (\d+)$/m), 2);

  const ctl = (...args: string[]) => spawnSync('node', ['bin/sca-ctl.js', '--url', `http://127.0.0.1:${stack.httpPort}`, ...args], { encoding: 'utf8', env: { ...process.env, SCA_ADMIN_TOKEN: TOKEN } });
  const seize = ctl('sca.seize_appearance', `sip:100@${DOMAIN}`, p2.contact);
  t.same([seize.status, seize.stdout.trim()], [0, `Seized sip:100@${DOMAIN} appearance-index 1 for ${p2.contact}`]);
  const list = ctl('sca.all_appearances');
  t.match(list.stdout, new RegExp(`sip:100@pbx\\.example\\.com 1 seized \\d+ ${p2.contact.replace(/\./g, '\\.')}`));
  const count = ctl('sca.subscription_count', 'call-info');
  t.equal(count.stdout.trim(), '2 call-info');
  const release = ctl('sca.release_appearance', `sip:100@${DOMAIN}`, '1');
  t.equal(release.status, 0);
  const noToken = spawnSync('node', ['bin/sca-ctl.js', '--url', `http://127.0.0.1:${stack.httpPort}`, 'sca.all_appearances'], { encoding: 'utf8', env: { ...process.env, SCA_ADMIN_TOKEN: '' } });
  t.equal(noToken.status, 4);
  t.match(noToken.stderr, /wants the admin token/);
  writeFileSync('.tap/sca-ctl-session.txt', [seize, list, count].map((r, i) => `$ sca-ctl ${['sca.seize_appearance', 'sca.all_appearances', 'sca.subscription_count call-info'][i]}\n${r.stdout}`).join('\n'));
});

t.test('call control on the page: an account\'s call with its time left, ended by a click', async (t) => {
  const cc = (method: string, params: unknown) => rpc(stack.httpPort, method, params, TOKEN);
  await cc('cc.rate_set', { prefix: '2', connect_fee: 0, price_per_minute: 60, initial_pulse: 1, next_pulse: 1 });
  await cc('cc.account_set', { account: `100@${DOMAIN}`, prepaid: true, balance: 120, max_calls: 4 });
  bob.onInvite = (r) => bob.respond(r, 200, 'OK', { body: sdp(5000) });
  const t0 = performance.now();
  const call = await p1.invite({ ruri: `sip:200@${DOMAIN}`, to: `<sip:200@${DOMAIN}>`, body: sdp(4000) });
  t.equal(call.final.status, 200);
  const account = page.locator(`section.account[data-account="100@${DOMAIN}"]`);
  const row = account.locator(`tr[data-call-id="${call.dialog!.callId}"]`);
  await row.locator('[data-testid="call-state"]').filter({ hasText: /^active$/ }).waitFor({ timeout: 10_000 });
  t.pass(`the answered call is on the page, ${Math.round(performance.now() - t0)} ms after the INVITE`);
  t.match(await account.locator('h2').textContent(), /1\/4 calls/, 'with the account\'s limit');
  t.equal(await account.getByTestId('balance').textContent(), '120');
  t.match(await row.getByTestId('time-left').textContent(), /^1[12]\d s$/, 'and the time its credit leaves');
  await page.screenshot({ path: '.tap/live-view-cc.png', fullPage: true });
  await row.locator('button[data-action="end-call"]').click();
  await p1.waitFor((r) => r.msg.method === 'BYE' && r.msg.headers.some(([n, v]) => n === 'call-id' && v === call.dialog!.callId), 3000, 'BYE');
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  t.pass('the click ended the call: BYE, and the row is gone');
  t.match(stack.serviceLog(), /"who":"127\.0\.0\.1 \(token\)","method":"cc\.end_call"/, 'logged with who ended it');
  t.equal(await page.getByTestId('error').textContent(), '', 'no error shown');
});

t.test('without the token the page gets no data and actions are refused', async (t) => {
  const other = await browser.newPage();
  await other.goto(`http://127.0.0.1:${stack.httpPort}/`);
  await other.getByTestId('status').filter({ hasText: 'disconnected' }).waitFor({ timeout: 3000 });
  t.equal(await other.locator('section.line').count(), 0);
  const refused = await other.evaluate(async () => (await fetch('/rpc', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sca.all_appearances' }) })).status);
  t.equal(refused, 401);
  await other.close();
});
