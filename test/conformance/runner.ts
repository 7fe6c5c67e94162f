// Differential conformance: one scenario, played by the same scripted phones against Kamailio
// with its own sca module (kamailio/native-oracle.cfg) and against Kamailio + sca-service
// (kamailio/kamailio.cfg), compared after normalising what must differ.
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { SipMessage } from '../../service/sip/message.js';
import { Phone, hdr, sdp, type Dialog } from '../support/sip-phone.js';
import { DOMAIN, startStack } from '../support/stack.js';
import { compare, type Trace, type Verdict } from './compare.js';
import { externalPorts } from '../support/ports.js';

export { compare, explain, normalise, DEVIATIONS, type Trace, type Verdict } from './compare.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

const step = z.discriminatedUnion('do', [
  z.object({ do: z.literal('register'), phones: z.array(z.string()) }),
  z.object({
    do: z.literal('subscribe'), phone: z.string(), event: z.string().nullable(), expires: z.number().int().nullable().optional(),
    ruri: z.string().optional(), call_info: z.string().optional(), as: z.string().optional(), record_route: z.string().optional(),
  }),
  z.object({
    do: z.literal('refresh'), phone: z.string(), dialog: z.string(), expires: z.number().int().nullable().optional(), call_info: z.string().optional(),
    to: z.string().optional(), to_tag: z.string().optional(),
  }),
  z.object({ do: z.literal('wait'), ms: z.number().int().positive() }),
  z.object({
    do: z.literal('call'), phone: z.string(), to: z.string(), as: z.string(), call_info: z.string().optional(),
    provisional: z.array(z.number().int()).default([]), final: z.number().int().default(200),
    /** how long the callee rings between its provisional replies and the final one */
    ring_ms: z.number().int().nonnegative().default(150),
    /** the caller CANCELs this long after the first provisional reply (the callee then answers 487) */
    cancel_after_ms: z.number().int().nonnegative().optional(),
    /** extra headers on a provisional reply, e.g. a Contact on a 181 */
    provisional_headers: z.array(z.tuple([z.string(), z.string()])).default([]),
  }),
  z.object({
    do: z.literal('hold'), dialog: z.string(), direction: z.string(), call_info: z.string().optional(),
    /** how the SDP says it: the media-level attribute, the session level only, or c=0.0.0.0 */
    sdp: z.enum(['media', 'session', 'c0']).default('media'),
    /** a re-INVITE without SDP whose ACK carries the answer (music on hold) */
    in_ack: z.boolean().default(false),
  }),
  z.object({ do: z.literal('bye'), dialog: z.string(), by: z.enum(['caller', 'callee']) }),
  z.object({ do: z.literal('pickup'), phone: z.string(), as: z.string(), index: z.number().int() }),
  z.object({
    do: z.literal('incoming'), from: z.string(), line: z.string(), answer_by: z.string(), as: z.string(), call_info: z.string().optional(),
    /** the R-URI, when it is not the line's AoR (an alias, a number) */
    ruri: z.string().optional(),
  }),
  /** an sca.* command: kamcmd over the ctl socket for the module, sca-ctl for the service */
  z.object({ do: z.literal('rpc'), cmd: z.string(), args: z.array(z.string()).default([]) }),
  /** what a phone answers NOTIFYs with from now on; 0: it stays silent (the proxy times out) */
  z.object({ do: z.literal('notify_answer'), phone: z.string(), status: z.number().int() }),
  /** line-seize SUBSCRIBEs from several phones at the same instant for one index */
  z.object({ do: z.literal('race'), phones: z.array(z.string()).min(2), index: z.number().int(), expires: z.number().int().default(15) }),
]);

/** A scenario file (JSON); see test/conformance/README.md. */
export const scenarioSchema = z.object({
  name: z.string(),
  spec: z.string().optional(),
  /** Deviation ids of docs/deviations.md this scenario is expected to show. */
  expect: z.array(z.string()).default([]),
  /**
   * For a deviation that changes what the line shows for the rest of the scenario (D9, D22): the
   * line states our side must show from its step on, one per call-info NOTIFY (see lineState in
   * compare.ts: `2 active <sip:200@pbx.example.com>`, `1 seized, 2 seized`, `idle`).
   */
  ours: z.record(z.string(), z.array(z.string())).optional(),
  /** phone name → SIP user */
  phones: z.record(z.string(), z.string()),
  /** purge_expired_interval (s) on both stacks, for the timer scenarios */
  purge: z.number().int().positive().optional(),
  steps: z.array(step).min(1),
}).strict();
export type Scenario = z.infer<typeof scenarioSchema>;


interface Target {
  name: 'native' | 'service';
  sipPort: number;
  /** An sca.* command as an operator runs it; what it prints (errors included). */
  rpc(cmd: string, args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Runs a command, resolves with its stdout and stderr together. */
function output(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d: Buffer) => { text += d.toString('utf8'); });
    p.stderr.on('data', (d: Buffer) => { text += d.toString('utf8'); });
    p.on('error', reject);
    p.on('close', () => resolve(text));
  });
}

async function waitForProxy(port: number): Promise<void> {
  const probe = new Phone('probe', 'probe', DOMAIN, port);
  await probe.start();
  try {
    for (let i = 0; i < 100; i++) {
      const r = await Promise.race([probe.register(), new Promise<undefined>((res) => setTimeout(() => res(undefined), 200))]).catch(() => undefined);
      if (r && r.status === 200) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`the proxy on ${port} does not answer`);
  } finally {
    probe.stop();
  }
}

/** SIGTERM to the process group (Kamailio stops its workers), SIGKILL to it after 3 s. */
export async function stopGroup(proc: ChildProcess): Promise<void> {
  if (proc.pid === undefined || proc.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  try { process.kill(-proc.pid, 'SIGTERM'); } catch { return; }
  const timer = setTimeout(() => { try { process.kill(-proc.pid!, 'SIGKILL'); } catch { /* gone */ } }, 3000);
  await exited;
  clearTimeout(timer);
  for (let i = 0; i < 30; i++) {
    try { process.kill(-proc.pid, 0); } catch { return; } // the whole group is gone
    await new Promise((r) => setTimeout(r, 100));
  }
  try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
}

export async function startNative(o: { purge?: number } = {}): Promise<Target> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-oracle-'));
  const db = path.join(dir, 'sca.sqlite');
  const schema = '/usr/share/kamailio/db_sqlite';
  const d = new Database(db);
  d.exec(readFileSync(`${schema}/standard-create.sql`, 'utf8') + readFileSync(`${schema}/sca-create.sql`, 'utf8'));
  d.close();
  // A port below the ephemeral range (test/support/ports.ts); waitForProxy fails loudly if taken.
  const [sipPort] = await externalPorts(['udp']) as [number];
  // Its own process group: Kamailio forks workers, and they must all go when it stops.
  const proc = spawn('kamailio', ['-DD', '-E', '-f', `${ROOT}/kamailio/native-oracle.cfg`, '-Y', dir, '-m', '64', '-A', `SIP_PORT=${sipPort}`,
    '-A', `SIP_DOMAIN="${DOMAIN}"`, '-A', `CTL_SOCK="unix:${dir}/ctl"`, '-A', `SCA_DBURL="sqlite://${db}"`,
    ...(o.purge ? ['-A', `SCA_PURGE=${o.purge}`] : [])], { stdio: 'ignore', detached: true });
  const stop = () => stopGroup(proc);
  await waitForProxy(sipPort).catch(async (err: unknown) => { await stop(); throw err; });
  return { name: 'native', sipPort, stop, rpc: (cmd, args) => output('kamcmd', ['-s', `unix:${dir}/ctl`, cmd, ...args]) };
}

export async function startService(o: { purge?: number } = {}): Promise<Target> {
  const stack = await startStack({ log_level: 'warn', ...(o.purge ? { purge_expired_interval: String(o.purge) } : {}) });
  const ctl = path.join(ROOT, 'bin/sca-ctl.js');
  return {
    name: 'service', sipPort: stack.sipPort, stop: () => stack.stop(),
    rpc: (cmd, args) => output(process.execPath, [ctl, '--url', `http://127.0.0.1:${stack.httpPort}`, cmd, ...args]),
  };
}

/**
 * The module builds a SUBSCRIBE's NOTIFYs after its reply: a next SUBSCRIBE sent the instant the
 * reply arrives would change what they show. Phones are never that quick; neither is the runner.
 * A step ends when the phones have received nothing for 100 ms (at least 100 ms after it, at most
 * 2 s): what a step caused then arrives during it, and each NOTIFY is attributed to its step.
 */
async function quiet(phones: Iterable<Phone>): Promise<void> {
  const last = () => Math.max(0, ...[...phones].map((p) => p.requests.at(-1)?.at ?? 0));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(100);
  for (let waited = 0; performance.now() - last() < 100 && waited < 1900; waited += 25) await sleep(25);
}

/** Plays a scenario against one target and records what each phone saw. */
export async function play(scenario: Scenario, target: Target): Promise<Trace> {
  const phones = new Map<string, Phone>();
  for (const [name, user] of Object.entries(scenario.phones)) {
    const p = new Phone(name, user, DOMAIN, target.sipPort);
    await p.start();
    phones.set(name, p);
  }
  const trace: Trace = Object.fromEntries([...phones.keys(), 'rpc', 'race'].map((n) => [n, { replies: [], notifies: [], received: [] }]));
  const calls = new Map<string, { caller: Phone; callee: Phone; uac: Dialog; uas: Dialog | undefined }>();
  const dialogs = new Map<string, { phone: Phone; callId: string; fromTag: string; toTag: string; cseq: number; event: string | null; ruri: string }>();
  const settle = () => quiet(phones.values());
  /** when each step started (performance.now()): a NOTIFY or INVITE belongs to the last step started before it arrived */
  const started: number[] = [];
  const stepAt = (at: number) => started.reduce((k, t, j) => (t <= at ? j : k), 0);
  const phone = (n: string): Phone => phones.get(n) ?? (() => { throw new Error(`unknown phone ${n}`); })();
  const record = (name: string, what: string, r: SipMessage) => trace[name]!.replies.push({
    to: what, status: r.status, reason: r.reason, event: hdr(r, 'event'), expires: hdr(r, 'expires'), allow_events: hdr(r, 'allow-events'),
    retry_after: hdr(r, 'retry-after'), contact: hdr(r, 'contact'), to_tagged: /;\s*tag=/.test(hdr(r, 'to') ?? '') ? 'yes' : 'no',
  });
  try {
    for (const [i, s] of scenario.steps.entries()) {
      started.push(performance.now());
      if (s.do === 'register') for (const n of s.phones) record(n, 'REGISTER', await phone(n).register());
      if (s.do === 'wait') await new Promise((r) => setTimeout(r, s.ms));
      if (s.do === 'subscribe') {
        const p = phone(s.phone);
        const callId = `${scenario.name}-${i}`;
        const fromTag = `f${i}`;
        const ruri = s.ruri ?? p.aor;
        const headers: Array<[string, string]> = [];
        if (s.event !== null) headers.push(['Event', s.event]);
        if (s.expires !== null) headers.push(['Expires', String(s.expires ?? 3600)]);
        if (s.call_info) headers.push(['Call-Info', s.call_info]);
        if (s.record_route) headers.push(['Record-Route', s.record_route.replaceAll('{proxy}', `127.0.0.1:${target.sipPort}`)]);
        const r = await p.request('SUBSCRIBE', { ruri, to: `<${p.aor}>`, fromTag, callId, headers }).final;
        record(s.phone, `SUBSCRIBE ${s.event}`, r);
        const toTag = /;\s*tag=([^;>\s]+)/.exec(hdr(r, 'to') ?? '')?.[1] ?? '';
        await settle();
        if (s.as) dialogs.set(s.as, { phone: p, callId, fromTag, toTag, cseq: 1, event: s.event, ruri: hdr(r, 'contact') ?? ruri });
      }
      if (s.do === 'call' || s.do === 'pickup') {
        const caller = phone(s.phone);
        const callee = s.do === 'call' ? phone(s.to) : [...calls.values()].find((c) => c.callee !== caller)?.callee ?? caller;
        let uas: Dialog | undefined;
        const final = s.do === 'call' ? s.final : 200;
        const provisional = s.do === 'call' ? s.provisional : [];
        // A phone takes a moment to ring and rings for a while: replies within microseconds of the
        // INVITE or of each other are handled by different proxy processes and overtake each
        // other (in the module too), which no real call does.
        const ringMs = s.do === 'call' ? s.ring_ms : 150;
        const cancelAfter = s.do === 'call' ? s.cancel_after_ms : undefined;
        const provisionalHeaders = s.do === 'call' ? s.provisional_headers : [];
        callee.onInvite = (r) => setTimeout(() => {
          for (const code of provisional) callee.respond(r, code, 'Progress', { toTag: `${s.as}t`, headers: provisionalHeaders });
          if (cancelAfter !== undefined) return; // rings until the CANCEL; the phone answers it with 487
          setTimeout(() => {
            const d = callee.respond(r, final, final < 300 ? 'OK' : 'Busy Here', { toTag: `${s.as}t`, body: final < 300 ? sdp(5000) : '' });
            if (d) uas = d;
          }, provisional.length > 0 ? ringMs : 0);
        }, 50);
        const index = s.do === 'pickup' ? s.index : undefined;
        const ci = s.do === 'call' ? s.call_info : `<sip:${DOMAIN}>;appearance-index=${index}`;
        const ruri = s.do === 'call' ? callee.aor : caller.aor;
        const invite = { ruri, to: `<${ruri}>`, fromTag: `${s.as}f`, callId: `${scenario.name}-${s.as}`, headers: ci ? [['Call-Info', ci]] as Array<[string, string]> : [], body: sdp(4000) };
        let res: { final: SipMessage; dialog: Dialog | undefined };
        if (cancelAfter === undefined) {
          res = await caller.invite(invite);
        } else {
          const tx = caller.request('INVITE', invite);
          const ringing = () => tx.responses.some((m) => m.status! > 100 && m.status! < 200);
          for (let waited = 0; !ringing() && waited < 4000; waited += 20) await new Promise((r) => setTimeout(r, 20));
          await new Promise((r) => setTimeout(r, cancelAfter));
          res = { final: await caller.cancel(tx).final, dialog: undefined };
        }
        trace[s.phone]!.replies.push({ to: `INVITE ${s.as}`, status: res.final.status, pai: hdr(res.final, 'p-asserted-identity'), call_info: hdr(res.final, 'call-info') });
        callee.onInvite = undefined;
        if (res.dialog) calls.set(s.as, { caller, callee, uac: res.dialog, uas });
        // A BYE sent the instant after the ACK reaches another proxy worker and may be handled
        // first, in the module as here; nobody hangs up that fast.
        await settle();
      }
      if (s.do === 'incoming') {
        const caller = phone(s.from);
        const answerer = phone(s.answer_by);
        const ringers = [...phones.values()].filter((p) => p.user === s.line && p !== answerer);
        for (const p of ringers) p.onInvite = (r) => p.respond(r, 180, 'Ringing', { toTag: `${p.name}r` });
        let uas: Dialog | undefined;
        answerer.onInvite = (r) => { uas = answerer.respond(r, 200, 'OK', { toTag: `${s.as}t`, body: sdp(6000), headers: s.call_info ? [['Call-Info', s.call_info]] : [] }); };
        const aor = `sip:${s.line}@${DOMAIN}`;
        const res = await caller.invite({ ruri: s.ruri ?? aor, to: `<${aor}>`, fromTag: `${s.as}f`, callId: `${scenario.name}-${s.as}`, body: sdp(7000) });
        trace[s.from]!.replies.push({ to: `INVITE ${s.as}`, status: res.final.status, pai: hdr(res.final, 'p-asserted-identity'), call_info: hdr(res.final, 'call-info') });
        for (const p of [...ringers, answerer]) p.onInvite = undefined;
        if (res.dialog) calls.set(s.as, { caller, callee: answerer, uac: res.dialog, uas });
        await settle();
      }
      if (s.do === 'hold') {
        const c = calls.get(s.dialog) ?? (() => { throw new Error(`unknown call ${s.dialog}`); })();
        const offer = holdSdp(4000, s.direction, s.sdp);
        const tx = c.caller.inDialog(c.uac, 'INVITE', { body: s.in_ack ? '' : offer, headers: s.call_info ? [['Call-Info', s.call_info]] : [] });
        const at = await c.callee.waitFor((r) => r.msg.method === 'INVITE' && hdr(r.msg, 'cseq') === `${c.uac.cseq} INVITE` && hdr(r.msg, 'call-id') === c.uac.callId, 4000, 're-INVITE');
        const answerDir = s.direction === 'sendonly' ? 'recvonly' : s.direction === 'inactive' ? 'inactive' : 'sendrecv';
        c.callee.respond(at, 200, 'OK', { body: s.in_ack ? sdp(5000) : sdp(5000, answerDir) });
        const r = await tx.final;
        trace[c.caller.name]!.replies.push({ to: `re-INVITE ${s.dialog}`, status: r.status });
        c.caller.inDialog(c.uac, 'ACK', s.in_ack ? { body: offer } : {});
        await settle();
      }
      if (s.do === 'bye') {
        const c = calls.get(s.dialog) ?? (() => { throw new Error(`unknown call ${s.dialog}`); })();
        const [who, d] = s.by === 'caller' ? [c.caller, c.uac] : [c.callee, c.uas!];
        const r = await who.inDialog(d, 'BYE').final;
        trace[who.name]!.replies.push({ to: `BYE ${s.dialog}`, status: r.status });
        await settle();
      }
      if (s.do === 'rpc') {
        const text = await target.rpc(s.cmd, s.args);
        trace.rpc!.replies.push({ to: [s.cmd, ...s.args].join(' '), output: text.trim() });
        await settle();
      }
      if (s.do === 'notify_answer') phone(s.phone).notifyAnswer = [s.status, s.status === 200 ? 'OK' : 'Call Leg/Transaction Does Not Exist'];
      if (s.do === 'race') {
        // Who wins is chance: the replies are recorded as a sorted list, the line-seize NOTIFYs
        // (only the winner's) under "race" too; see raceTrace.
        const ci = `<sip:${DOMAIN}>;appearance-index=${s.index}`;
        const sent = s.phones.map((n) => phone(n).request('SUBSCRIBE', {
          ruri: phone(n).aor, to: `<${phone(n).aor}>`, fromTag: `f${i}`, callId: `${scenario.name}-${i}-race-${n}`,
          headers: [['Event', 'line-seize'], ['Expires', String(s.expires)], ['Call-Info', ci]],
        }).final);
        const replies = await Promise.all(sent);
        trace.race!.replies.push({ to: `race for index ${s.index}`, outcome: replies.map((r) => `${r.status} ${r.reason}`).sort().join(' / ') });
        await settle();
        // The winner goes back on hook: its unsubscribe frees the index for the next race.
        for (const [k, r] of replies.entries()) {
          if (r.status !== 200) continue;
          const p = phone(s.phones[k]!);
          const toTag = /;\s*tag=([^;>\s]+)/.exec(hdr(r, 'to') ?? '')?.[1] ?? '';
          const un = await p.request('SUBSCRIBE', {
            ruri: p.aor, to: `<${p.aor}>`, toTag, fromTag: `f${i}`, callId: `${scenario.name}-${i}-race-${s.phones[k]}`, cseq: 2,
            headers: [['Event', 'line-seize'], ['Expires', '0'], ['Call-Info', ci]],
          }).final;
          trace.race!.replies.push({ to: `winner's unsubscribe of index ${s.index}`, outcome: `${un.status} ${un.reason}`, expires: hdr(un, 'expires') });
        }
        await settle();
      }
      if (s.do === 'refresh') {
        const d = dialogs.get(s.dialog) ?? (() => { throw new Error(`unknown dialog ${s.dialog}`); })();
        const headers: Array<[string, string]> = [];
        if (d.event !== null) headers.push(['Event', d.event]);
        if (s.expires !== null) headers.push(['Expires', String(s.expires ?? 3600)]);
        if (s.call_info) headers.push(['Call-Info', s.call_info]);
        const r = await d.phone.request('SUBSCRIBE', { ruri: d.ruri, to: s.to ?? `<${d.phone.aor}>`, toTag: s.to_tag ?? d.toTag, fromTag: d.fromTag, callId: d.callId, cseq: ++d.cseq, headers }).final;
        record(s.phone, `SUBSCRIBE ${d.event} (refresh)`, r);
        await settle();
      }
      // Each reply belongs to the step that sent its request.
      for (const t of Object.values(trace)) for (const r of t.replies) r.step ??= i;
    }
    await new Promise((r) => setTimeout(r, 400)); // the last NOTIFYs
    for (const [name, p] of phones) {
      const raced = (n: { msg: SipMessage }) => (hdr(n.msg, 'call-id') ?? '').includes('-race-');
      // A race's line-seize NOTIFYs go to whichever phone won: keep them apart, without the phone.
      trace.race!.notifies.push(...p.notifies().filter(raced).map((n) => ({
        step: stepAt(n.at), event: hdr(n.msg, 'event'), subscription_state: hdr(n.msg, 'subscription-state'), call_info: hdr(n.msg, 'call-info'), cseq: hdr(n.msg, 'cseq'),
        call_id: hdr(n.msg, 'call-id')!.replace(/-race-.*$/, '-race'),
      })));
      trace[name]!.notifies = inDialogOrder(p.notifies().filter((n) => !raced(n))).map((n) => ({
        step: stepAt(n.at), event: hdr(n.msg, 'event'), subscription_state: hdr(n.msg, 'subscription-state'), call_info: hdr(n.msg, 'call-info'),
        cseq: hdr(n.msg, 'cseq'), call_id: hdr(n.msg, 'call-id'), contact: hdr(n.msg, 'contact'), from: hdr(n.msg, 'from'), to: hdr(n.msg, 'to'),
        route: hdr(n.msg, 'route'), ruri: n.msg.ruri, ...(n.answered !== 200 ? { answered: String(n.answered) } : {}),
      }));
      trace[name]!.received = p.requests.filter((r) => r.msg.method === 'INVITE').map((r) => ({
        step: stepAt(r.at), call_info: hdr(r.msg, 'call-info'), replaces: hdr(r.msg, 'replaces'), ruri: r.msg.ruri,
      }));
    }
  } finally {
    for (const p of phones.values()) p.stop();
  }
  const raceOrder = (n: Record<string, unknown>) => `${String(n.call_id)} ${String(n.cseq ?? '').padStart(12, '0')}`;
  trace.race!.notifies.sort((a, b) => raceOrder(a).localeCompare(raceOrder(b), 'en', { numeric: true }));
  return trace;
}

/** A re-INVITE's SDP: hold said by the media attribute, by the session level only, or by c=0.0.0.0. */
function holdSdp(port: number, direction: string, how: 'media' | 'session' | 'c0'): string {
  if (how === 'media') return sdp(port, direction);
  const lines = sdp(port, 'sendrecv').split('\r\n').filter((l) => l !== 'a=sendrecv');
  if (how === 'c0') return lines.map((l) => (l.startsWith('c=') ? 'c=IN IP4 0.0.0.0' : l)).join('\r\n');
  return lines.flatMap((l) => (l.startsWith('t=') ? [l, `a=${direction}`] : [l])).join('\r\n');
}

/**
 * NOTIFYs by dialog, each dialog's by CSeq. Dialogs are ordered by their Call-ID, which the runner
 * makes from the step that opened them: NOTIFYs of different dialogs (and, through a proxy's
 * parallel workers, even of one) may overtake each other on the way, so arrival order is not compared.
 */
function inDialogOrder<T extends { msg: SipMessage }>(list: T[]): T[] {
  const dialogs = [...new Set(list.map((n) => hdr(n.msg, 'call-id') ?? ''))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const cseq = (n: T) => Number.parseInt(hdr(n.msg, 'cseq') ?? '0', 10);
  return dialogs.flatMap((d) => list.filter((n) => hdr(n.msg, 'call-id') === d).sort((a, b) => cseq(a) - cseq(b)));
}

export const loadScenario = (file: string): Scenario => scenarioSchema.parse(JSON.parse(readFileSync(file, 'utf8')));

/**
 * Plays a scenario against both stacks at once (their own ports, DBs and processes): the timer
 * scenarios wait minutes, and nothing one stack does reaches the other.
 */
export async function playBoth(scenario: Scenario): Promise<Verdict> {
  const o = { purge: scenario.purge };
  const once = async (start: (o: { purge?: number }) => Promise<Target>): Promise<Trace> => {
    const target = await start(o);
    return play(scenario, target).finally(() => target.stop());
  };
  const [native, service] = await Promise.all([once(startNative), once(startService)]);
  return compare(scenario, native, service);
}
