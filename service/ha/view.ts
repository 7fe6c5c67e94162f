import type { Role } from './role.js';

/** A node's role as /readyz, /leader and ha.status show it. */
export function haView(role: Role): Record<string, unknown> {
  const s = role.snapshot;
  return {
    role: s.role, node: s.holder, epoch: s.epoch ?? null, leader: s.leader ?? null, takeovers: s.takeovers,
    clock_offset_s: s.clockOffsetS ?? null, refusing_leadership: s.refusing, lost: s.lostReason ?? null,
  };
}

/** The fault a standby answers a command with: it names the leader. */
export function standbyFault(role: Role): { code: number; message: string } {
  const leader = role.snapshot.leader;
  return {
    code: -32010,
    message: leader ? `this node is a standby: send commands to the leader, ${leader.holder} (epoch ${leader.epoch})` : 'this node is a standby and no leader is known yet: try again shortly',
  };
}
