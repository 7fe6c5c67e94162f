import { timingSafeEqual } from 'node:crypto';

/**
 * Who may call the RPC, scrape metrics and use the live view. Without a token (allowed only on
 * loopback, see config) everyone who can connect; with one, a Bearer token or ?token=.
 */
export class Access {
  constructor(private readonly token: string | undefined) {}

  get required(): boolean {
    return this.token !== undefined;
  }

  /** Checks an Authorization header or a token query value; returns who it was, or undefined. */
  check(ip: string, authorization: string | undefined, queryToken?: string | null): string | undefined {
    if (this.token === undefined) return ip;
    const given = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1] ?? queryToken ?? '';
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b) ? `${ip} (token)` : undefined;
  }
}

export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);
