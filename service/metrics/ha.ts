import { Counter, Gauge, type Registry } from 'prom-client';
import type { RoleSnapshot } from '../ha/role.js';

const ROLE_VALUE = { standby: 0, leader: 1, lost: -1 } as const;

/** The HA role's metrics, read from its snapshot at each scrape. */
export function registerHaMetrics(registry: Registry, snapshot: () => RoleSnapshot): void {
  new Gauge({
    name: 'sca_ha_role', help: 'This node\'s role: 1 leader, 0 standby, -1 lost (exiting)', registers: [registry],
    collect() { this.set(ROLE_VALUE[snapshot().role]); },
  });
  new Gauge({
    name: 'sca_ha_epoch', help: 'The leader\'s epoch as this node last saw it (0: none seen)', registers: [registry],
    collect() { this.set(snapshot().leader?.epoch ?? 0); },
  });
  new Counter({
    name: 'sca_ha_takeovers_total', help: 'Times this process became leader', registers: [registry],
    collect() { this.reset(); this.inc(snapshot().takeovers); },
  });
  new Gauge({
    name: 'sca_clock_offset_seconds', help: 'The database\'s clock minus this node\'s, RTT-corrected, at the last measurement', registers: [registry],
    collect() { const o = snapshot().clockOffsetS; if (o !== undefined) this.set(o); },
  });
}
