import { timingSafeEqual } from 'node:crypto';
import { isIPv4 } from 'node:net';

/**
 * Who may call the RPC, scrape metrics and use the live view. Without a token (allowed only on
 * loopback, see config) everyone who can connect; with one, a Bearer token (never in a URL,
 * where logs and browser histories keep it; the live view sends it in its first message).
 */
export class Access {
  constructor(private readonly token: string | undefined) {}

  get required(): boolean {
    return this.token !== undefined;
  }

  /** Checks an Authorization header; returns who it was, or undefined. */
  check(ip: string, authorization: string | undefined): string | undefined {
    return this.checkToken(ip, /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1] ?? '');
  }

  /** Checks a token as given; returns who it was, or undefined. */
  checkToken(ip: string, given: string): string | undefined {
    if (this.token === undefined) return ip;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b) ? `${ip} (token)` : undefined;
  }

  /**
   * Whether a request's Host names this service. Without a token, only loopback names are taken:
   * a web page cannot reach the RPC through a name it points at 127.0.0.1 (DNS rebinding).
   */
  hostAllowed(host: string | undefined): boolean {
    if (this.token !== undefined) return true;
    const name = hostName(host ?? '');
    return name !== undefined && isLoopback(name);
  }
}

/** The name or address of a Host header value, without its port ("[::1]:8090" → "::1"). */
export function hostName(host: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+))(?::\d{1,5})?$/.exec(host.trim());
  return m ? (m[1] ?? m[2])!.toLowerCase() : undefined;
}

/** A loopback address or name: 127.0.0.0/8 written as an IPv4 address, ::1, localhost; nothing else. */
export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
