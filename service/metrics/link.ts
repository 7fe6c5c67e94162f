import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { KamailioLink, LinkObserver } from '../kamailio/link.js';

/**
 * The Kamailio link's metrics. They keep the sca_ prefix they had when the link carried SCA
 * alone, so dashboards keep working; no label carries an AoR or Call-ID.
 */
export class LinkMetrics implements LinkObserver {
  private readonly notifies: Counter<'class'>;
  private readonly latency: Histogram;
  private readonly sent: Counter;

  constructor(registry: Registry, link: KamailioLink) {
    new Gauge({
      name: 'sca_evapi_connected', help: 'Kamailio evapi connections up', registers: [registry],
      collect() { this.set(link.connected); },
    });
    new Gauge({
      name: 'link_backlog_bytes', help: 'Bytes sent to Kamailio and not yet confirmed read (unread), and bytes waiting in the service for room (waiting)',
      labelNames: ['kind'], registers: [registry],
      collect() { const b = link.backlog; this.set({ kind: 'unread' }, b.unread); this.set({ kind: 'waiting' }, b.waiting); },
    });
    new Gauge({
      name: 'sca_link_credit_stalls', help: 'Times the linked proxies stopped writing to this service because it fell behind (2 MB unread, or a second without credit), as each proxy counts them since its start',
      registers: [registry],
      collect() { this.set(link.creditStalls); },
    });
    new Counter({
      name: 'link_heartbeat_resets_total', help: 'Kamailio connections reset because a ping went unanswered', registers: [registry],
      collect() { this.reset(); this.inc(link.counters.resets); },
    });
    new Counter({
      name: 'link_frames_split_total', help: 'Answers whose NOTIFYs did not fit one evapi frame and followed in more', registers: [registry],
      collect() { this.reset(); this.inc(link.counters.split); },
    });
    this.sent = new Counter({ name: 'sca_notify_sent_total', help: 'NOTIFYs handed to Kamailio', registers: [registry] });
    this.notifies = new Counter({ name: 'sca_notify_total', help: 'NOTIFY outcomes by reply class (2xx..6xx, timeout)', labelNames: ['class'], registers: [registry] });
    this.latency = new Histogram({
      name: 'sca_notify_latency_seconds', help: 'From handing a NOTIFY to Kamailio to its final reply', registers: [registry],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 32],
    });
    for (const c of ['2xx', '3xx', '4xx', '5xx', '6xx', 'timeout']) this.notifies.inc({ class: c }, 0);
  }

  notifiesSent(count: number): void {
    this.sent.inc(count);
  }

  notifyAnswered(code: number, seconds: number | undefined): void {
    this.notifies.inc({ class: `${Math.floor(code / 100)}xx` });
    if (seconds !== undefined) this.latency.observe(seconds);
  }

  notifyTimedOut(count: number): void {
    this.notifies.inc({ class: 'timeout' }, count);
  }
}
