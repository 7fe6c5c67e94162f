import { fail, ok, type Result } from './result.js';
import { splitTopLevel } from './tokens.js';

/** A SIP message as the engine sees it: start line, ordered headers, body. */
export interface SipMessage {
  readonly kind: 'request' | 'reply';
  readonly method: string; // the request method, or the CSeq method of a reply
  readonly ruri: string | undefined;
  readonly status: number | undefined;
  readonly reason: string | undefined;
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>; // names lower-cased, long form
  readonly body: string;
}

const COMPACT: Record<string, string> = {
  i: 'call-id', m: 'contact', f: 'from', t: 'to', v: 'via', e: 'content-encoding',
  l: 'content-length', c: 'content-type', k: 'supported', s: 'subject', o: 'event',
  u: 'allow-events', r: 'refer-to', b: 'referred-by', x: 'session-expires',
};

/** Parses a whole SIP message as Kamailio hands it over ($mb). */
export function parseMessage(raw: string): Result<SipMessage> {
  const split = /\r?\n\r?\n/.exec(raw);
  const head = split ? raw.slice(0, split.index) : raw;
  const body = split ? raw.slice(split.index + split[0].length) : '';
  const lines = head.split(/\r?\n/);
  const start = lines.shift()?.trim() ?? '';
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      const last = headers[headers.length - 1]!;
      last[1] = `${last[1]} ${line.trim()}`; // header folding (RFC 3261 7.3.1)
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return fail('SIP message', `bad header line "${line}"`);
    const rawName = line.slice(0, colon).trim().toLowerCase();
    if (!/^[a-z0-9\-.!%*_+`'~]+$/.test(rawName)) return fail('SIP message', `bad header name "${rawName}"`);
    headers.push([COMPACT[rawName] ?? rawName, line.slice(colon + 1).trim()]);
  }
  const cseqMethod = (): string => {
    const cseq = headers.find(([n]) => n === 'cseq')?.[1] ?? '';
    return /^\s*\d+\s+([A-Za-z]+)\s*$/.exec(cseq)?.[1]?.toUpperCase() ?? '';
  };
  const reply = /^SIP\/2\.0\s+(\d{3})(?:\s+(.*))?$/.exec(start);
  if (reply) {
    return ok({ kind: 'reply', method: cseqMethod(), ruri: undefined, status: Number(reply[1]), reason: reply[2] ?? '', headers, body });
  }
  const request = /^([A-Za-z]+)\s+(\S+)\s+SIP\/2\.0$/.exec(start);
  if (!request) return fail('SIP message', `bad start line "${start}"`);
  return ok({ kind: 'request', method: request[1]!.toUpperCase(), ruri: request[2]!, status: undefined, reason: undefined, headers, body });
}

/** Every field value of a header, in order (one entry per header line). */
export const headerLines = (msg: SipMessage, name: string): string[] =>
  msg.headers.filter(([n]) => n === name).map(([, v]) => v);

/** Every comma-separated element of a header, across all its lines. */
export const headerValues = (msg: SipMessage, name: string): string[] =>
  headerLines(msg, name).flatMap((v) => splitTopLevel(v, ',').map((x) => x.trim())).filter((x) => x !== '');

export const firstHeader = (msg: SipMessage, name: string): string | undefined =>
  msg.headers.find(([n]) => n === name)?.[1];
