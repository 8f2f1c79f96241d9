/**
 * The one decoded-packet structure. A single instance is reused for every
 * packet (and for every layer of a tunnelled packet, outermost first): the
 * decoder overwrites its fields and hands it to the sink, which must copy
 * what it keeps before returning. Addresses stay as 32-bit words.
 */
export class Packet {
  /** Bytes of the current frame (valid only during the sink call). */
  buf: Uint8Array = new Uint8Array(0);

  // ---- per frame ----
  /** Original frame length on the wire. */
  wirelen = 0;
  /** Captured bytes. */
  caplen = 0;
  /** Capture interface index (PacketSink ifIndex). */
  ifIndex = 0;
  /** Linux SLL/SLL2 packet type (0 host, 1 broadcast, 2 multicast, 3 otherhost, 4 outgoing), -1 when the link has none. */
  sllType = -1;
  /** SLL2 interface index, -1 when the link has none. */
  sllIfindex = -1;
  /** Linux SLL/SLL2 ARPHRD type of the capturing device (772 = loopback), -1 when the link has none. */
  sllHatype = -1;
  /** Offset of the outermost Ethernet source MAC in `buf`, -1 when there is none. */
  ethSrcOff = -1;

  // ---- per layer (reset for each transport-level header found) ----
  /** Encapsulation depth: 0 for the outermost IP packet, +1 per tunnel. */
  depth = 0;
  /** Handle of the enclosing (tunnel) flow from the sink's layer(), -1 at depth 0. */
  parent = -1;
  /** VLAN ids of the link carrying this IP packet: (outer << 12) | inner, 0 when untagged. */
  vlan = 0;
  /** 4 or 6. */
  ipVersion = 0;
  /** IP protocol number of the transport (after IPv6 extension headers). */
  proto = 0;
  /** Source address words [0..3], destination [4..7]; IPv4 uses only word 3 (others 0). */
  readonly addr = new Uint32Array(8);
  /** IP length of the header carrying this transport: IPv4 total length, IPv6 payload length + 40. */
  ipLen = 0;
  /** IPv4 identification (IPv6: the fragment id, else 0). */
  ipId = 0;
  /** Offset of the transport header in `buf` (valid when hasL4, or the IP payload for other protocols). */
  l4Off = 0;
  /** Captured bytes of the transport header and payload from `l4Off`. */
  l4Cap = 0;
  /** Transport ports (ICMP: type and the counterpart type or code, Zeek's convention). */
  sport = 0;
  dport = 0;
  /** The transport header is present and complete (false for later fragments and protocols without one). */
  hasL4 = false;
  /** 0 = not a fragment, 1 = first fragment (offset 0), 2 = a later fragment. */
  fragment = 0;
  /** Transport payload bytes according to the IP/UDP lengths (not limited by the snaplen). */
  payloadLen = 0;
  // TCP
  tcpFlags = 0;
  seq = 0;
  ack = 0;
  win = 0;
  /** Offset and captured length of the TCP options in `buf`. */
  optOff = 0;
  optLen = 0;
  // ICMP
  icmpType = 0;
  icmpCode = 0;
}

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;
