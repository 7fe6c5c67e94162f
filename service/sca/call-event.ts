import { formatCallInfoValue, isScaValue, parseCallInfo, toScaCallInfo, type ScaCallInfo } from '../sip/call-info.js';
import { firstHeader, headerLines, headerValues, type SipMessage } from '../sip/message.js';
import { parseNameAddr, tagOf, type NameAddr } from '../sip/name-addr.js';
import { canonicalAor, extractAor } from '../sip/uri.js';
import { fits, MAX } from './limits.js';
import type { Flow, Notify, SipReply } from './types.js';

/**
 * Where in the proxy's script a call event was seen:
 * - request: request route (INVITE, BYE, CANCEL, PRACK, REFER, and end-to-end ACKs)
 * - reply: onreply route, the reply itself
 * - failure: a final reply >= 300 to an INVITE, relayed (failure route) or sent by the proxy
 *   statefully; `msg` is the INVITE and `status` the code
 * - local-reply: the proxy's own stateless reply to an INVITE (sl), same shape as failure
 */
export type CallHook = 'request' | 'reply' | 'failure' | 'local-reply';

export interface CallEventInput {
  readonly hook: CallHook;
  readonly msg: SipMessage;
  readonly status: number | undefined;
  /** sca_call_info_update's mask: 1 caller side, 2 callee side, 3 both. */
  readonly mask: 1 | 2 | 3;
  /** Where the message came from (undefined: the proxy did not say). */
  readonly flow?: Flow | undefined;
  readonly now: number;
}

/** How the proxy must change the message before relaying it. */
export interface MessageEdit {
  /** Remove the SCA Call-Info values (those with appearance-index); other values are kept. */
  readonly removeCallInfo: boolean;
  /** The non-SCA Call-Info values to re-add after the removal. */
  readonly keepCallInfo: readonly string[];
  readonly appendHeaders: ReadonlyArray<readonly [string, string]>;
  readonly ruri: string | undefined;
  /** Where the request goes instead of its R-URI's host: the held party's flow, behind NAT. */
  readonly dst?: Flow | undefined;
  readonly dropBranches: boolean;
}

export interface CallEventOutcome {
  /** sca_call_info_update's return: 1 handled, -1 not an SCA call or an error, 0 stop (replied). */
  readonly result: 1 | 0 | -1;
  /** Reply to the request instead of relaying it (403 for a private-hold pickup). */
  readonly reply: SipReply | undefined;
  readonly edit: MessageEdit;
  readonly notifies: Notify[];
  readonly aors: string[];
  /** The caller is a member of a shared line (its 2xx then gets P-Asserted-Identity). */
  readonly callerShared: boolean;
}

export const NO_EDIT: MessageEdit = { removeCallInfo: false, keepCallInfo: [], appendHeaders: [], ruri: undefined, dropBranches: false };

/** A call message read the way sca_call_info_update reads it. */
export interface CallMessage {
  readonly msg: SipMessage;
  readonly method: string;
  readonly callId: string;
  readonly from: NameAddr;
  readonly to: NameAddr;
  readonly fromTag: string;
  readonly toTag: string | undefined;
  readonly contact: string | undefined;
  /** undefined: no SCA Call-Info in the message */
  readonly callInfo: ScaCallInfo | undefined;
  readonly hasCallInfoHeader: boolean;
  readonly keepCallInfo: string[];
  readonly fromAor: string;
  readonly toAor: string;
}

export type ReadResult = { ok: true; call: CallMessage } | { ok: false; why: string; nonSca?: boolean };

/** Preprocessing of sca_call_info_update: Call-Info, From/To/Contact, the two AoRs. */
export function readCallMessage(msg: SipMessage): ReadResult {
  const lines = headerLines(msg, 'call-info');
  let callInfo: ScaCallInfo | undefined;
  const keepCallInfo: string[] = [];
  if (lines.length > 0) {
    const parsed = parseCallInfo(lines.join(','));
    if (!parsed.ok) return { ok: false, why: `Call-Info: ${parsed.error.detail}` };
    const sca = parsed.value.filter(isScaValue);
    keepCallInfo.push(...parsed.value.filter((v) => !isScaValue(v)).map(formatCallInfoValue));
    // An intercom (answer-after) or icon Call-Info is not SCA: leave the message alone.
    if (sca.length === 0) return { ok: false, why: 'Call-Info carries no appearance-index', nonSca: true };
    const first = toScaCallInfo(sca[0]!);
    if (!first.ok || first.value.index === '*') return { ok: false, why: 'Call-Info: bad appearance-index' };
    callInfo = first.value;
  }
  const from = parseNameAddr(firstHeader(msg, 'from') ?? '', 'From');
  const to = parseNameAddr(firstHeader(msg, 'to') ?? '', 'To');
  if (!from.ok) return { ok: false, why: from.error.detail };
  if (!to.ok) return { ok: false, why: to.error.detail };
  const fromTag = tagOf(from.value);
  if (fromTag === undefined) return { ok: false, why: 'From has no tag' };
  const contacts = headerValues(msg, 'contact');
  if (contacts.length > 1 || contacts[0] === '*') return { ok: false, why: 'bad Contact' };
  let contact: string | undefined;
  if (contacts.length === 1) {
    const c = parseNameAddr(contacts[0]!, 'Contact');
    if (!c.ok) return { ok: false, why: c.error.detail };
    contact = c.value.uri;
  }
  const callId = (firstHeader(msg, 'call-id') ?? '').trim();
  if (callId === '') return { ok: false, why: 'no Call-ID' };
  // Values an appearance would keep must fit its row.
  if (!fits(callId, MAX.callId) || !fits(fromTag, MAX.tag) || (tagOf(to.value) ?? '').length > MAX.tag
    || !fits(from.value.uri, MAX.uri) || !fits(to.value.uri, MAX.uri) || (contact ?? '').length > MAX.uri
    || (from.value.display ?? '').length > MAX.display || (to.value.display ?? '').length > MAX.display) {
    return { ok: false, why: 'a Call-ID, tag, URI or display name too long to keep' };
  }
  const request = msg.kind === 'request';
  return {
    ok: true,
    call: {
      msg, method: msg.method, callId, from: from.value, to: to.value, fromTag, toTag: tagOf(to.value), contact,
      callInfo, hasCallInfoHeader: lines.length > 0, keepCallInfo,
      // The phone's side is canonicalised with its Contact: From of a request, To of a reply.
      fromAor: request ? canonicalAor(from.value.uri, contact) : extractAor(from.value.uri),
      toAor: request ? extractAor(to.value.uri) : canonicalAor(to.value.uri, contact),
    },
  };
}

/** "Display <uri>" or "<uri>", as the appearance-uri and P-Asserted-Identity show a party. */
export const partyOf = (display: string | undefined, uri: string): string => (display ? `${display} <${uri}>` : `<${uri}>`);
