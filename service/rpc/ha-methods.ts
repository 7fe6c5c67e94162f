import type { Role } from '../ha/role.js';
import { haView } from '../ha/view.js';
import type { KamailioLink } from '../kamailio/link.js';
import type { RpcTable } from './methods.js';

/** What the ha.* commands read: this node's role (undefined: not an HA node) and its link. */
export interface HaRpcTarget {
  readonly role: Role | undefined;
  readonly link: KamailioLink;
}

/** ha.* commands: answered by every node, leader or standby. */
export const HA_METHODS: RpcTable<HaRpcTarget> = {
  'ha.status': {
    summary: 'This node\'s role in a high-availability setup: leader or standby, its epoch, who leads, the proxies it is linked to.',
    params: [], usage: 'usage: ha.status', mutates: false,
    result: {
      kind: 'object', doc: 'this node',
      fields: {
        role: 'leader, standby or lost; off: not an HA node', node: 'this process in the lease (node id/incarnation)', epoch: 'its leadership epoch while it leads',
        leader: 'who leads as last seen: {holder, epoch}', takeovers: 'times this process became leader', clock_offset_s: 'database clock minus this node\'s (s)',
        refusing_leadership: 'its clock is too far off to lead', lost: 'why it stopped leading', proxies: 'the Kamailio proxies linked (their PROXY_ID)',
      },
    },
    errors: [], example: { params: [] },
    run: ({ engine: { role, link } }) => ({ ok: true, result: role ? { ...haView(role), proxies: link.proxies } : { role: 'off', proxies: link.proxies } }),
  },
};
