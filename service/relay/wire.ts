/**
 * The wire between sca-cc-relay (one per proxy host, beside Kamailio's call_control.so) and a
 * service node: one JSON object per line, both ways, over TCP. Transport only: both ends import
 * it, neither engine knows it.
 *
 *   relay → node   {t:'hello', v, proxy, token}      first, within the node's hello timeout
 *                  {t:'req', id, command, fields, held_ms?}  a call_control.so request, as framed;
 *                                                     held_ms: how long the relay kept it (a start
 *                                                     or stop replayed after a failover)
 *                  {t:'ping'}                          every ping interval
 *                  {t:'closed'}                        a call_control.so connection closed
 *   node → relay   {t:'welcome', node, epoch}         this node leads and serves the relay
 *                  {t:'refused', why, leader?}        a standby (it names the leader), a bad token
 *                  {t:'reply', id, reply}             the door's reply word(s)
 *                  {t:'unserved', id}                 not handled: this node no longer leads
 *                  {t:'pong'}
 *
 * A request id is the relay's; replies may come out of order (each waits for its own commit),
 * but the node hands requests to the engine in the order they arrived.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export const RELAY_PROTOCOL = 1;

/** A proxy's name as Kamailio's PROXY_ID gives it to the link: the relay must use the same. */
export const proxyIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a PROXY_ID: 1 to 64 of A-Z a-z 0-9 . _ -');

/** A request as call_control.so sends it is at most 64 KB (the framer's bound); JSON may escape it to 6 bytes a byte. */
export const MAX_FRAME_BYTES = 512 * 1024;
/** Before the hello is accepted, nothing bigger than a hello is read. */
export const MAX_HELLO_BYTES = 4096;

export const helloSchema = z.object({ t: z.literal('hello'), v: z.literal(RELAY_PROTOCOL), proxy: proxyIdSchema, token: z.string().min(1).max(1024) }).strip();
const reqSchema = z.object({ t: z.literal('req'), id: z.number().int().nonnegative(), command: z.string().min(1).max(64), held_ms: z.number().int().min(0).max(30 * 86_400_000).optional() }).passthrough();
const replySchema = z.object({ t: z.literal('reply'), id: z.number().int().nonnegative(), reply: z.string().min(1).max(8190) }).strip();

export type ToNode =
  | z.infer<typeof helloSchema>
  | { t: 'req'; id: number; command: string; fields: Readonly<Record<string, string>>; held_ms?: number }
  | { t: 'ping' }
  | { t: 'closed' };

export type ToRelay =
  | { t: 'welcome'; node: string; epoch: number }
  | { t: 'refused'; why: string; leader?: string }
  | z.infer<typeof replySchema>
  | { t: 'unserved'; id: number }
  | { t: 'pong' };

/** host:port or [v6]:port; port 0 ("any") only where `anyPort`. */
export function parseHostPort(s: string, anyPort = false): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  return m && port >= (anyPort ? 0 : 1) && port <= 65535 ? { host: (m[1] ?? m[2])!, port } : undefined;
}

export const encode = (msg: ToNode | ToRelay): string => `${JSON.stringify(msg)}\n`;

/**
 * The fields of a request, as an object without a prototype (a field named __proto__ stays a
 * plain entry, as call-control-socket.ts keeps it): string values only.
 */
function fieldsOf(raw: unknown): Record<string, string> | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const out = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string' || k.length > 64) return undefined;
    out[k] = v;
  }
  return out;
}

/** A frame from the relay, read by the node. */
export function readToNode(raw: unknown): { ok: true; msg: ToNode } | { ok: false; error: string } {
  const t = (raw as { t?: unknown } | null)?.t;
  if (t === 'ping' || t === 'closed') return { ok: true, msg: { t } };
  if (t === 'hello') {
    const h = helloSchema.safeParse(raw);
    return h.success ? { ok: true, msg: h.data } : { ok: false, error: `bad hello: ${h.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  }
  if (t === 'req') {
    const r = reqSchema.safeParse(raw);
    const fields = fieldsOf((raw as { fields?: unknown }).fields);
    if (!r.success || !fields) return { ok: false, error: 'bad request frame' };
    return { ok: true, msg: { t: 'req', id: r.data.id, command: r.data.command, fields, ...(r.data.held_ms ? { held_ms: r.data.held_ms } : {}) } };
  }
  return { ok: false, error: `unknown frame ${JSON.stringify(t)?.slice(0, 20)}` };
}

/** A frame from a node, read by the relay. */
export function readToRelay(raw: unknown): { ok: true; msg: ToRelay } | { ok: false; error: string } {
  const o = raw as Record<string, unknown> | null;
  switch (o?.t) {
    case 'pong':
      return { ok: true, msg: { t: 'pong' } };
    case 'welcome':
      return typeof o.node === 'string' && Number.isInteger(o.epoch) ? { ok: true, msg: { t: 'welcome', node: o.node.slice(0, 200), epoch: o.epoch as number } } : { ok: false, error: 'bad welcome' };
    case 'refused':
      return typeof o.why === 'string'
        ? { ok: true, msg: { t: 'refused', why: o.why.slice(0, 300), ...(typeof o.leader === 'string' ? { leader: o.leader.slice(0, 200) } : {}) } }
        : { ok: false, error: 'bad refusal' };
    case 'unserved':
      return Number.isInteger(o.id) ? { ok: true, msg: { t: 'unserved', id: o.id as number } } : { ok: false, error: 'bad unserved' };
    case 'reply': {
      const r = replySchema.safeParse(o);
      return r.success && !/[\r\n]/.test(r.data.reply) ? { ok: true, msg: r.data } : { ok: false, error: 'bad reply' };
    }
    default:
      return { ok: false, error: `unknown frame ${JSON.stringify(o?.t)?.slice(0, 20)}` };
  }
}

/**
 * Incoming bytes → parsed JSON values, one a line. A line over the limit, or one that is not
 * JSON, is an error: the connection is not one of ours and is closed.
 */
export class JsonLines {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(public maxBytes: number) {}

  push(chunk: Buffer): { ok: true; values: unknown[] } | { ok: false; error: string } {
    const values: unknown[] = [];
    let start = 0;
    for (let lf = chunk.indexOf(0x0a); lf >= 0; lf = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, lf);
      if (this.size + piece.length > this.maxBytes) return { ok: false, error: `a line over ${this.maxBytes} bytes` };
      const line = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece]);
      this.parts = [];
      this.size = 0;
      start = lf + 1;
      if (line.length === 0) continue;
      try {
        values.push(JSON.parse(line.toString('utf8')));
      } catch {
        return { ok: false, error: 'a line that is not JSON' };
      }
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0) {
      if (this.size + rest.length > this.maxBytes) return { ok: false, error: `a line over ${this.maxBytes} bytes` };
      this.parts.push(rest);
      this.size += rest.length;
    }
    return { ok: true, values };
  }
}

/** Compares a token in constant time (digests of equal length), whatever their lengths. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
