/** Names of the EtherTypes a user meets among non-IP frames (a bounded label set). */
const NAMES = new Map<number, string>([
  [0x0806, 'arp'],
  [0x8035, 'rarp'],
  [0x88cc, 'lldp'],
  [0x8809, 'slow'], // LACP, marker
  [0x888e, 'eapol'],
  [0x88f7, 'ptp'],
  [0x8863, 'pppoe_discovery'],
  [0x8864, 'pppoe_session'],
  [0x8847, 'mpls'],
  [0x8848, 'mpls'],
  [0x22f0, 'tsn'],
  [0x88e5, 'macsec'],
  [0x8902, 'cfm'],
  [0x9000, 'loopback'],
  [0x0842, 'wol'],
  [0x22eb, 'erspan'],
  [0x88be, 'erspan'],
  [0x8100, 'vlan'],
  [0x88a8, 'vlan'],
  [0x10000, 'llc'],
  [0x10001, 'other'],
  [0x10002, 'wlan'],
]);

/** Bounded name of an EtherType: a known name, or `other`. */
export function ethertypeName(type: number): string {
  return NAMES.get(type) ?? 'other';
}
