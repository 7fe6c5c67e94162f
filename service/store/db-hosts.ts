/**
 * The ordered database hosts of one store, for sticky failover: every connection goes to the
 * current host; a connection failure on it moves all of them to the next one, where they stay
 * (never back on their own: a node that flapped once is not trusted to be the better choice).
 */
export interface DbHost {
  readonly host: string;
  readonly port: number;
}

/** "host", "host:port", "[v6]" or "[v6]:port"; undefined for anything else. */
export function parseDbHost(text: string, defaultPort = 3306): DbHost | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/@]+))(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return undefined;
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

/** db_url with its host and port replaced: user, password, database and options stay. */
export function urlForHost(url: string, h: DbHost): string {
  const u = new URL(url);
  u.host = h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
  return u.toString();
}

/** The host and port written in db_url. */
export function hostOfUrl(url: string): DbHost {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 3306 : Number(u.port) };
}

/**
 * Which host is current. `generation` names a choice of host: a failure reported for an older
 * generation is ignored, so ten connections failing at once move the store one host, not ten.
 */
export class DbHosts {
  private index = 0;
  private gen = 0;

  constructor(readonly hosts: readonly DbHost[]) {
    if (hosts.length === 0) throw new Error('DbHosts: at least one host');
  }

  get current(): DbHost {
    return this.hosts[this.index]!;
  }

  get generation(): number {
    return this.gen;
  }

  /** A connection made in `generation` lost its host: move on, unless someone already did. */
  failed(generation: number): boolean {
    if (generation !== this.gen || this.hosts.length < 2) return false;
    this.index = (this.index + 1) % this.hosts.length;
    this.gen++;
    return true;
  }

  /** host:port of the current host, for log lines (never the URL: it may hold a password). */
  describe(): string {
    const h = this.current;
    return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
  }
}
