import { fail, ok, type Result } from './result.js';
import { parseParams, type Params } from './tokens.js';

export interface SipUri {
  readonly scheme: string; // lower-cased: sip, sips, tel
  readonly user: string | undefined;
  readonly host: string;
  readonly port: number | undefined;
  readonly params: Params;
  readonly headers: string | undefined;
}

const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)$/;

/** Parses a SIP/SIPS/TEL URI in addr-spec form (no angle brackets). */
export function parseUri(text: string): Result<SipUri> {
  const s = text.trim();
  const colon = s.indexOf(':');
  if (colon <= 0) return fail('SIP URI', `no scheme in "${s}"`);
  const scheme = s.slice(0, colon).toLowerCase();
  if (scheme !== 'sip' && scheme !== 'sips' && scheme !== 'tel') {
    return fail('SIP URI', `unsupported scheme "${scheme}"`);
  }
  let rest = s.slice(colon + 1);
  let headers: string | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const semi = rest.indexOf(';');
  const paramText = semi >= 0 ? rest.slice(semi) : '';
  const hostpart = semi >= 0 ? rest.slice(0, semi) : rest;
  const params = parseParams(paramText);
  if (params === null) return fail('SIP URI', `bad parameters in "${s}"`);
  if (scheme === 'tel') {
    if (hostpart === '') return fail('SIP URI', 'empty tel number');
    return ok({ scheme, user: hostpart, host: '', port: undefined, params, headers });
  }
  const at = hostpart.lastIndexOf('@');
  const userinfo = at >= 0 ? hostpart.slice(0, at) : undefined;
  const hostport = at >= 0 ? hostpart.slice(at + 1) : hostpart;
  const user = userinfo === undefined ? undefined : userinfo.split(':')[0];
  if (user !== undefined && user === '') return fail('SIP URI', `empty user in "${s}"`);
  let host = hostport;
  let port: number | undefined;
  const portMatch = /^(.*?):(\d+)$/.exec(hostport);
  if (portMatch && !hostport.endsWith(']')) {
    host = portMatch[1] ?? '';
    port = Number(portMatch[2]);
    if (port > 65535) return fail('SIP URI', `port out of range in "${s}"`);
  }
  if (!HOST.test(host)) return fail('SIP URI', `bad host in "${s}"`);
  return ok({ scheme, user, host, port, params, headers });
}

/**
 * The module's AoR key: the URI text up to, not including, the first ';'. Scheme, user, host,
 * port and ?headers stay, and the comparison stays byte-for-byte, exactly like sca_uri_extract_aor.
 */
export function extractAor(uri: string): string {
  const semi = uri.indexOf(';');
  return semi >= 0 ? uri.slice(0, semi) : uri;
}

/** DOMAIN(aor): the text after the first '@', or after the first ':' when there is no '@'. */
export function aorDomain(aor: string): string {
  const at = aor.indexOf('@');
  if (at >= 0) return aor.slice(at + 1);
  const colon = aor.indexOf(':');
  return colon >= 0 ? aor.slice(colon + 1) : aor;
}

/**
 * canonical_aor(): the From (request) or To (reply) AoR, except when the Contact's user differs
 * from that URI's user; then the Contact user at the From/To host is used (how the module maps a
 * phone that registers with another user part onto its shared line).
 */
export function canonicalAor(addressUri: string, contactUri: string | undefined): string {
  const aor = extractAor(addressUri);
  if (contactUri === undefined || contactUri === '') return aor;
  const contact = parseUri(contactUri);
  const address = parseUri(addressUri);
  if (!contact.ok || !address.ok) return aor;
  const cu = contact.value.user;
  if (cu === undefined || cu === address.value.user) return aor;
  const port = address.value.port === undefined ? '' : `:${address.value.port}`;
  return `${contact.value.scheme}:${cu}@${address.value.host}${port}`;
}
