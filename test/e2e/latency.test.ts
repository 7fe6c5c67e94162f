// SUBSCRIBE -> NOTIFY through the real proxy and service, one outstanding request at a time:
// every one answered 202 and followed by its first NOTIFY. The latencies are recorded (to
// .tap/e2e-latency.json and the test log), not judged here: scripts/bench/targets.ts has the targets.
import { mkdirSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { hdr, type Phone } from '../support/sip-phone.js';
import { DOMAIN, startStack, type Stack } from '../support/stack.js';

const N = 500;
let stack: Stack;
let phone: Phone;
t.before(async () => {
  stack = await startStack({ log_level: 'warn' });
  phone = await stack.phone('load', '9000');
});
t.teardown(async () => stack.stop());

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.round((p / 100) * (sorted.length - 1)))]!;

t.test(`${N} call-info SUBSCRIBEs to distinct lines: each gets 202 and its first NOTIFY`, async (t) => {
  const toNotify: number[] = [];
  const toReply: number[] = [];
  let bad = 0;
  for (let i = 0; i < N; i++) {
    const aor = `sip:${7000 + i}@${DOMAIN}`;
    const callId = `lat-${i}-${Date.now()}`;
    const t0 = performance.now();
    const tx = phone.request('SUBSCRIBE', { ruri: aor, to: `<${aor}>`, callId, headers: [['Event', 'call-info'], ['Expires', '600']] });
    const notify = phone.waitFor((r) => r.msg.method === 'NOTIFY' && hdr(r.msg, 'call-id') === callId, 3000, `NOTIFY ${i}`);
    const reply = await tx.final;
    toReply.push(performance.now() - t0);
    const n = await notify;
    toNotify.push(n.at - t0);
    if (reply.status !== 202 || hdr(n.msg, 'cseq') !== '1 NOTIFY' || hdr(n.msg, 'to') !== `<${aor}>;tag=${/tag=([^;]+)/.exec(hdr(reply, 'from')!)?.[1]}`) bad++;
  }
  t.equal(bad, 0, 'every SUBSCRIBE got 202 and a CSeq 1 NOTIFY in its dialog');
  const sn = [...toNotify].sort((a, b) => a - b);
  const sr = [...toReply].sort((a, b) => a - b);
  const result = {
    n: N,
    subscribe_to_202_ms: { p50: +pct(sr, 50).toFixed(3), p99: +pct(sr, 99).toFixed(3) },
    subscribe_to_notify_ms: { p50: +pct(sn, 50).toFixed(3), p99: +pct(sn, 99).toFixed(3), max: +sn.at(-1)!.toFixed(3) },
  };
  mkdirSync('.tap', { recursive: true });
  writeFileSync('.tap/e2e-latency.json', `${JSON.stringify(result, null, 2)}\n`);
  t.comment(`SUBSCRIBE->NOTIFY latency: ${JSON.stringify(result)}`);
});
