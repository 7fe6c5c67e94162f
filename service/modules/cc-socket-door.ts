import { z } from 'zod';
import type { AdmitRequest } from '../cc/admission.js';
import type { CcEngine, CcEffects } from '../cc/engine.js';
import type { AdmissionResult, Decision } from '../cc/types.js';
import type { CallControlRequest } from '../kamailio/call-control-socket.js';
import { parseDialogId } from '../kamailio/dialog-rpc.js';

/**
 * Call control's socket door: what Kamailio's stock call_control module asks (init, start, stop,
 * and call-control-cli's terminate), answered with its reply words. The module understands only
 * Limited (1), No limit (2), No credit (-1) and Locked (-2); anything else is -5, which the
 * script treats as "service unreachable". So every refusal, a request the service cannot read
 * included, is Locked: a call the service cannot account for never goes on uncounted.
 */
export const SOCKET_REPLY: Record<AdmissionResult, string> = {
  admitted: 'Limited', untracked: 'No limit', 'no-credit': 'No credit', blacklisted: 'Locked', limit: 'Locked', 'no-rate': 'Locked',
  'bad-request': 'Locked', duplicate: 'Locked',
};

/** The reply to a request that cannot be read: an init is a call that cannot be accounted for, refused. */
export const malformedSocketReply = (command: string | undefined): string => (command?.toLowerCase() === 'init' ? SOCKET_REPLY['bad-request'] : 'Error');

// What call_control.so can send at all: its whole request fits in 8192 bytes.
const text = (max: number) => z.string().max(max);
const initFields = z.object({
  callid: text(8192).min(1), from: text(8192).min(1), fromtag: text(8192).min(1), ruri: text(8192).min(1),
  diverter: text(8192).optional(), sourceip: text(64).default(''), sip_application: text(64).optional(),
  // OpenSIPS's module adds these; prepaid and call_token are not used here.
  call_limit: z.string().regex(/^\d{1,9}$/).transform(Number).optional(), prepaid: text(16).optional(), call_token: text(8192).optional(),
}).strip();
export const startFields = z.object({ callid: text(8192).min(1), dialogid: text(64).min(1) }).strip();
export const stopFields = z.object({ callid: text(8192).min(1) }).strip();

export interface SocketDoorDeps {
  readonly engine: CcEngine;
  /** Carries out effects: commit, then the rest. */
  run(effects: CcEffects): Promise<void>;
  readonly clock: () => number;
  readonly log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /** A decision was made (for the log line, the latency metric and the live view). */
  decided(req: Pick<AdmitRequest, 'callId'>, d: Decision, startedAt: number): void;
  changed(): void;
}

/**
 * `proxy`: the PROXY_ID of the Kamailio that asked, when it came through sca-cc-relay; the call
 * records it, so its dialog commands go to that proxy over its link. `heldMs`: how long the relay
 * kept a start or stop before it reached this node (a failover): it happened that long ago.
 */
export function socketDoor(deps: SocketDoorDeps): (req: CallControlRequest, proxy?: string, heldMs?: number) => Promise<string> {
  const { engine, clock, log } = deps;
  const bad = (req: CallControlRequest, issues: string): string => {
    log.warn({ command: req.command, issues }, 'call_control request rejected');
    return 'Error';
  };

  return async (req, proxy, heldMs = 0) => {
    const t0 = performance.now();
    const at = heldMs > 0 ? clock() - heldMs / 1000 : undefined;
    switch (req.command) {
      case 'init': {
        const f = initFields.safeParse(req.fields);
        if (!f.success) {
          const issues = f.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
          deps.decided({ callId: String(req.fields.callid ?? '').slice(0, 255) }, engine.unreadable(`unreadable init: ${issues}`), t0);
          return SOCKET_REPLY['bad-request'];
        }
        const r: AdmitRequest = {
          callId: f.data.callid, fromTag: f.data.fromtag, from: f.data.from, ruri: f.data.ruri, diverter: f.data.diverter,
          sourceIp: f.data.sourceip, door: 'socket', maxCalls: f.data.call_limit, ...(proxy !== undefined ? { proxy } : {}),
        };
        const out = engine.admit(r, clock());
        await deps.run(out);
        deps.decided(r, out.decision, t0);
        deps.changed();
        return SOCKET_REPLY[out.decision.result];
      }
      case 'start': {
        const f = startFields.safeParse(req.fields);
        const dialog = f.success ? parseDialogId(f.data.dialogid) : undefined;
        if (!f.success || !dialog) return bad(req, f.success ? `dialogid ${f.data.dialogid}` : f.error.message);
        const out = engine.answered({ callId: f.data.callid, ...dialog, ...(at !== undefined ? { at } : {}) }, clock());
        // Not waited for: Kamailio's reply to start acknowledges nothing a restart could lose (the
        // reconcile finds the answered dialog and its start time at Kamailio).
        void deps.run(out);
        deps.changed();
        return out.found ? 'Ok' : 'Not found';
      }
      case 'stop': {
        const f = stopFields.safeParse(req.fields);
        if (!f.success) return bad(req, f.error.message);
        const out = engine.ended({ callId: f.data.callid, cause: 'normal', ...(at !== undefined ? { at } : {}) }, clock());
        await deps.run(out);
        deps.changed();
        return out.found ? 'Ok' : 'Not found';
      }
      case 'terminate': {
        const f = stopFields.safeParse(req.fields);
        if (!f.success) return bad(req, f.error.message);
        const out = engine.endCall(f.data.callid, clock());
        if (!out.ok) return 'Not found';
        await deps.run(out);
        deps.changed();
        return 'Ok';
      }
      default:
        return bad(req, `unknown command ${req.command.slice(0, 40)}`);
    }
  };
}
