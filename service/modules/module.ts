import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { ApplyEffects, KamailioLink, LinkMethods } from '../kamailio/link.js';
import type { RpcModule } from '../rpc/http.js';
import type { CommitterOptions } from '../store/committer.js';
import type { Database } from '../store/database.js';

/** What every module gets from the service when it is built. */
export interface ModuleDeps {
  readonly config: Config;
  readonly db: Database;
  readonly link: KamailioLink;
  /** Seconds since the epoch. */
  readonly clock: () => number;
  readonly log: FastifyBaseLogger;
  readonly registry: Registry;
  /** The live view should be pushed again. */
  readonly changed: () => void;
  /** How every module's committer behaves (HA: strict, and fenced means the node stops). */
  readonly committerOptions?: CommitterOptions;
}

/** A module's part of the live view: all of it for a page that connects, then what changed. */
export interface ModuleView {
  all(now: number): Record<string, unknown>;
  /** What changed since the last call to changes() or forget(); undefined when nothing did. */
  changes(now: number): Record<string, unknown> | undefined;
  /** No page is watching: what changed so far need not be sent. */
  forget(): void;
}

/** The readiness of a module's part of the service. */
export interface ModuleStatus {
  readonly ready: boolean;
  readonly degraded: boolean;
  readonly detail: Record<string, unknown>;
}

/**
 * An engine as the service runs it: its methods on the Kamailio link, its RPC commands, its part
 * of the live view, its store, and what it does at start, on each link connection and at stop.
 * buildApp assembles the service from these; modules never know each other.
 */
export interface ServiceModule {
  readonly name: string;
  readonly link?: { readonly methods: LinkMethods; readonly apply: ApplyEffects };
  readonly rpc?: RpcModule<any>;
  /** This module's part of the live view (merged with the others' parts). */
  readonly view?: ModuleView;
  status(): ModuleStatus;
  /** Loads state; the service listens only after every module started. */
  start(): Promise<void>;
  /** A Kamailio (re)connected: its PROXY_ID. */
  linkUp?(proxy: string): void;
  /** Stops timers and writes what is queued; returns the rows it could not write. */
  stop(): Promise<number>;
}
