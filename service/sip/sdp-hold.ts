/**
 * Whether an SDP offer puts the call on hold (RFC 3264 8.4 and the older RFC 2543 form):
 * any active media stream that is sendonly or inactive, at media level or inherited from the
 * session level, or whose connection address (own, else the session's) is 0.0.0.0 or ::.
 * A trickle-ICE placeholder (port 9 with a=ice-options:trickle) is a renegotiation, not hold.
 */
export function isSdpHold(body: string): boolean {
  const lines = body.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (!lines.some((l) => l.startsWith('m='))) return false;
  const session: Section = { direction: undefined, nullAddress: undefined, trickle: false };
  const media: MediaSection[] = [];
  let current: Section = session;
  for (const line of lines) {
    if (line.startsWith('m=')) {
      const [, port = '0', , ...formats] = line.slice(2).split(/\s+/);
      const m: MediaSection = { direction: undefined, nullAddress: undefined, trickle: false, port: Number(port), hasFormats: formats.length > 0 };
      media.push(m);
      current = m;
    } else if (line.startsWith('c=')) {
      current.nullAddress = /^c=IN\s+IP4\s+0\.0\.0\.0(\/|$)/i.test(line) || /^c=IN\s+IP6\s+::(\/|$)/i.test(line);
    } else if (/^a=(sendonly|inactive|recvonly|sendrecv)$/i.test(line)) {
      current.direction = line.slice(2).toLowerCase();
    } else if (/^a=ice-options:.*\btrickle\b/i.test(line)) {
      current.trickle = true;
    }
  }
  return media.some((m) => {
    if (m.port === 0 || !m.hasFormats) return false; // a disabled stream says nothing about hold
    if (m.port === 9 && (m.trickle || session.trickle)) return false;
    const direction = m.direction ?? session.direction;
    if (direction === 'sendonly' || direction === 'inactive') return true;
    return m.nullAddress ?? session.nullAddress ?? false;
  });
}

interface Section {
  direction: string | undefined;
  nullAddress: boolean | undefined; // undefined: no c= line in this section
  trickle: boolean;
}

interface MediaSection extends Section {
  port: number;
  hasFormats: boolean;
}
