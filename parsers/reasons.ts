/**
 * The closed set of reasons a packet could not be fully decoded. Every
 * packet that stops short of a complete decode is counted under exactly one
 * of these (the first problem met, outermost first). Names are stable: they
 * are metric label values and JSON keys.
 *
 * `truncated_*`: the header runs past the captured bytes (the snaplen cut it,
 * or the frame really is that short). `bad_*`: a field is impossible.
 * `bad_timestamp` is the pipeline's, not the decoder's: a record time before
 * 1970 or after 9999 (a pcapng resolution or offset gone wrong) is not
 * decoded at all, so that it cannot move packet time.
 */
export const REASONS = [
  'ok',
  'unsupported_linktype',
  'truncated_link',
  'truncated_vlan',
  'truncated_mpls',
  'truncated_pppoe',
  'truncated_ipv4',
  'bad_ip_version',
  'bad_ipv4_ihl',
  'bad_ipv4_length',
  'truncated_ipv6',
  'bad_ipv6_length',
  'truncated_ipv6_ext',
  'truncated_tcp',
  'bad_tcp_offset',
  'truncated_udp',
  'bad_udp_length',
  'truncated_icmp',
  'fragment_too_short',
  'orphan_fragment',
  'truncated_tunnel',
  'unsupported_tunnel',
  'tunnel_too_deep',
  'bad_timestamp',
] as const;

export type Reason = (typeof REASONS)[number];

export const R = Object.freeze(Object.fromEntries(REASONS.map((r, i) => [r, i]))) as { readonly [K in Reason]: number };

export const REASON_COUNT = REASONS.length;
