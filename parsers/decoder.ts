/**
 * Packet decoder: link → (tunnels) → IP → transport, into one reused
 * {@link Packet}. It allocates nothing per packet; every method returns a
 * reason code from `reasons.ts` (0 = fully decoded). For each transport
 * header it finds — the outer one and, for tunnels, every inner one — it
 * calls `sink.layer(p)` once, outermost first, so a tunnelled frame counts
 * in its outer flow and in its inner flow.
 *
 * Bounds: `end` is the end of the captured bytes (never `buf.length`: live
 * capture reuses one big buffer); `lim` is where the data would end on the
 * wire (frame length minus FCS), which tells a snaplen cut (fine: lengths
 * come from the headers) from an impossible length field (malformed).
 */
import { Packet, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP } from './packet.js';
import { R } from './reasons.js';
import { FragmentTable } from './fragments.js';

export interface LayerSink {
  /**
   * One transport-level layer of the current packet (`p` is only valid
   * during the call). Returns a handle for the flow it was counted in, valid
   * while this packet is decoded (used as `p.parent` of layers tunnelled
   * inside it), or -1.
   */
  layer(p: Packet): number;
  /** A frame, or a tunnelled frame, that carries no IP; counted by EtherType. */
  nonIp(ethertype: number): void;
}

/** Pseudo EtherTypes for non-IP frames that have none. */
export const ETHERTYPE_LLC = 0x10000; // 802.3 length frames (LLC / SNAP / STP ...)
export const ETHERTYPE_OTHER = 0x10001; // a link header announcing something other than IP (e.g. a BSD null AF)
export const ETHERTYPE_WLAN = 0x10002; // 802.11 management, control, null, protected (encrypted) frames and A-MSDUs

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_PPP = 9;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_C_HDLC = 104;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;
export const LINKTYPE_PPP_HDLC = 50;
export const LINKTYPE_IEEE802_11 = 105;
export const LINKTYPE_RADIOTAP = 127;
export const LINKTYPE_PPI = 192;
export const LINKTYPE_PFLOG = 117;
export const LINKTYPE_NFLOG = 239;
export const DLT_RAW_12 = 12; // DLT_RAW as written by some BSDs
export const DLT_RAW_14 = 14; // DLT_RAW as written by OpenBSD

/** Link types this decoder understands. */
export const SUPPORTED_LINKTYPES: ReadonlySet<number> = new Set([
  LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_PPP, LINKTYPE_PPP_HDLC, LINKTYPE_RAW, DLT_RAW_12, DLT_RAW_14,
  LINKTYPE_C_HDLC, LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2,
  LINKTYPE_IEEE802_11, LINKTYPE_RADIOTAP, LINKTYPE_PPI, LINKTYPE_PFLOG, LINKTYPE_NFLOG,
]);

/** `lim` of a tunnelled packet inside a first fragment: its real end is in later fragments. */
const UNKNOWN_LIM = 2 ** 40;

/** Deepest tunnel nesting decoded (0 = outer packet). */
export const MAX_DEPTH = 4;

const ICMP_COUNTERPART = new Int16Array(256).fill(-1);
const ICMP6_COUNTERPART = new Int16Array(256).fill(-1);
for (const [a, b] of [[8, 0], [13, 14], [15, 16], [10, 9], [17, 18]]) {
  ICMP_COUNTERPART[a] = b;
  ICMP_COUNTERPART[b] = a;
}
for (const [a, b] of [[128, 129], [133, 134], [135, 136], [130, 131], [139, 140], [144, 145], [146, 147]]) {
  ICMP6_COUNTERPART[a] = b;
  ICMP6_COUNTERPART[b] = a;
}

export class Decoder {
  readonly p = new Packet();
  readonly fragments: FragmentTable;
  /** Packet time (ns, relative), for the fragment table. */
  private t = 0;
  /** VLAN tags seen on the current link (0, 1, 2+). */
  private tags = 0;

  constructor(private readonly sink: LayerSink, fragmentSlots = 4096) {
    this.fragments = new FragmentTable(fragmentSlots);
  }

  /**
   * Decodes one frame. `t` is the packet time in ns on the caller's clock
   * (only used to age the fragment table). Returns a reason code.
   */
  decode(buf: Uint8Array, off: number, caplen: number, wirelen: number, linktype: number, fcsBytes: number, ifIndex: number, t: number): number {
    const p = this.p;
    p.buf = buf;
    p.wirelen = wirelen;
    p.caplen = caplen;
    p.ifIndex = ifIndex;
    p.sllType = -1;
    p.sllIfindex = -1;
    p.sllHatype = -1;
    p.ethSrcOff = -1;
    p.depth = 0;
    p.parent = -1;
    p.vlan = 0;
    this.tags = 0;
    this.t = t;
    const lim = off + (wirelen > caplen ? wirelen : caplen) - fcsBytes;
    let end = off + caplen;
    if (end > lim) end = lim;
    return this.link(linktype, off, end, lim);
  }

  /** Decodes a frame of link type `linktype` at buf[off, end) (wire end `lim`). */
  private link(linktype: number, off: number, end: number, lim: number): number {
    const p = this.p;
    const buf = p.buf;
    switch (linktype) {
      case LINKTYPE_ETHERNET:
        if (end - off < 14) return R.truncated_link;
        p.ethSrcOff = off + 6;
        return this.ethertype((buf[off + 12] << 8) | buf[off + 13], off + 14, end, lim);
      case LINKTYPE_LINUX_SLL: {
        if (end - off < 16) return R.truncated_link;
        p.sllType = (buf[off] << 8) | buf[off + 1];
        p.sllHatype = (buf[off + 2] << 8) | buf[off + 3];
        return this.sllProto((buf[off + 14] << 8) | buf[off + 15], off + 16, end, lim);
      }
      case LINKTYPE_LINUX_SLL2: {
        if (end - off < 20) return R.truncated_link;
        p.sllType = buf[off + 10];
        p.sllHatype = (buf[off + 8] << 8) | buf[off + 9];
        p.sllIfindex = ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0;
        return this.sllProto((buf[off] << 8) | buf[off + 1], off + 20, end, lim);
      }
      case LINKTYPE_RAW:
      case DLT_RAW_12:
      case DLT_RAW_14:
        return this.ipAny(off, end, lim);
      case LINKTYPE_IPV4:
        return this.ipv4(off, end, lim);
      case LINKTYPE_IPV6:
        return this.ipv6(off, end, lim);
      case LINKTYPE_NULL:
      case LINKTYPE_LOOP: {
        if (end - off < 4) return R.truncated_link;
        let af = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
        // BSD null is in the writer's byte order, LOOP in network order: accept both.
        if (af > 0xffff) af = ((buf[off + 3] << 24) | (buf[off + 2] << 16) | (buf[off + 1] << 8) | buf[off]) >>> 0;
        return this.addressFamily(af, off + 4, end, lim);
      }
      case LINKTYPE_PPP:
      case LINKTYPE_PPP_HDLC:
        return this.ppp(off, end, lim);
      case LINKTYPE_PFLOG: {
        // OpenBSD pf log: a header of `length` bytes (word-aligned on the wire), its address family, then the packet.
        if (end - off < 2) return R.truncated_link;
        const hl = (buf[off] + 3) & ~3;
        if (hl < 4 || end - off < hl) return R.truncated_link;
        return this.addressFamily(buf[off + 1], off + hl, end, lim);
      }
      case LINKTYPE_NFLOG:
        return this.nflog(off, end, lim);
      case LINKTYPE_C_HDLC:
        if (end - off < 4) return R.truncated_link;
        return this.ethertype((buf[off + 2] << 8) | buf[off + 3], off + 4, end, lim);
      case LINKTYPE_IEEE802_11:
        return this.wlan(off, end, lim);
      case LINKTYPE_RADIOTAP: {
        // Radiotap header (little-endian): version, pad, length, present words; the flags field says whether an FCS ends the frame.
        if (end - off < 8) return R.truncated_link;
        const len = buf[off + 2] | (buf[off + 3] << 8);
        if (len < 8 || end - off < len) return R.truncated_link;
        let pos = off + 4;
        let present = (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0;
        const first = present;
        while (present & 0x80000000) {
          pos += 4;
          if (pos + 4 > off + len) return R.truncated_link;
          present = (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0;
        }
        pos += 4;
        let frameLim = lim;
        if (first & 2) {
          if (first & 1) pos = off + ((pos - off + 7) & ~7) + 8; // TSFT: 8 bytes, 8-aligned
          if (pos < off + len && buf[pos] & 0x10) frameLim -= 4; // frame includes FCS
        }
        return this.wlan(off + len, end < frameLim ? end : frameLim, frameLim);
      }
      case LINKTYPE_PPI: {
        // Per-Packet Information header: version, flags, length (LE), the link type of what follows (LE).
        if (end - off < 8) return R.truncated_link;
        const len = buf[off + 2] | (buf[off + 3] << 8);
        const dlt = (buf[off + 4] | (buf[off + 5] << 8) | (buf[off + 6] << 16) | (buf[off + 7] << 24)) >>> 0;
        if (len < 8 || end - off < len || dlt === LINKTYPE_PPI) return R.truncated_link;
        return this.link(dlt, off + len, end, lim);
      }
      default:
        return R.unsupported_linktype;
    }
  }

  /**
   * IEEE 802.11 data frames carrying LLC/SNAP; management, control, null
   * and protected (encrypted) frames, and A-MSDUs, are non-IP frames.
   */
  private wlan(off: number, end: number, lim: number): number {
    const buf = this.p.buf;
    if (end - off < 2) return R.truncated_link;
    const fc0 = buf[off];
    const fc1 = buf[off + 1];
    const type = (fc0 >> 2) & 3;
    const subtype = fc0 >> 4;
    if (type !== 2 || (subtype & 4) !== 0 || (fc1 & 0x40) !== 0) {
      this.sink.nonIp(ETHERTYPE_WLAN);
      return 0;
    }
    if (end - off < 24) return R.truncated_link;
    let hl = 24;
    if ((fc1 & 3) === 3) hl += 6; // four addresses (WDS)
    if (subtype & 8) {
      // QoS data: QoS control, and an HT control field when Order is set.
      if (end - off < hl + 2) return R.truncated_link;
      if (buf[off + hl] & 0x80) {
        this.sink.nonIp(ETHERTYPE_WLAN); // A-MSDU
        return 0;
      }
      hl += 2;
      if (fc1 & 0x80) hl += 4;
    }
    const o = off + hl;
    if (end - o < 8) return R.truncated_link;
    if (buf[o] === 0xaa && buf[o + 1] === 0xaa && buf[o + 2] === 0x03) {
      return this.ethertype((buf[o + 6] << 8) | buf[o + 7], o + 8, end, lim);
    }
    this.sink.nonIp(ETHERTYPE_LLC);
    return 0;
  }

  /** An IP packet announced by a socket address family: AF_INET 2, AF_INET6 10 (Linux), 24, 28 or 30 (the BSDs, macOS). */
  private addressFamily(af: number, off: number, end: number, lim: number): number {
    if (af === 2) return this.ipv4(off, end, lim);
    if (af === 10 || af === 24 || af === 28 || af === 30) return this.ipv6(off, end, lim);
    this.sink.nonIp(ETHERTYPE_OTHER);
    return 0;
  }

  /**
   * Linux NFLOG: family, version, resource id, then TLVs (length and type in
   * the capturing host's byte order, little-endian unless the type reads
   * too large; padded to 4 bytes) of which type 9 holds the packet.
   */
  private nflog(off: number, end: number, lim: number): number {
    const buf = this.p.buf;
    if (end - off < 4) return R.truncated_link;
    const family = buf[off];
    let q = off + 4;
    for (;;) {
      if (end - q < 4) return R.truncated_link;
      let len = buf[q] | (buf[q + 1] << 8);
      let type = buf[q + 2] | (buf[q + 3] << 8);
      if (type > 0xff) {
        len = (buf[q] << 8) | buf[q + 1];
        type = (buf[q + 2] << 8) | buf[q + 3];
      }
      if (len < 4) return R.truncated_link;
      if (type === 9) {
        const pl = q + len < lim ? q + len : lim;
        const pe = end < pl ? end : pl;
        // Linux families only: AF_INET 2, AF_INET6 10.
        if (family === 2) return this.ipv4(q + 4, pe, pl);
        if (family === 10) return this.ipv6(q + 4, pe, pl);
        this.sink.nonIp(ETHERTYPE_OTHER);
        return 0;
      }
      q += (len + 3) & ~3;
    }
  }

  /** Linux cooked capture protocol field: an EtherType, or a small ARPHRD-specific value. */
  private sllProto(proto: number, off: number, end: number, lim: number): number {
    if (proto < 0x0600) {
      // 0x0001 802.3, 0x0004 802.2 LLC, CAN, ...
      this.sink.nonIp(ETHERTYPE_LLC);
      return 0;
    }
    return this.ethertype(proto, off, end, lim);
  }

  /** Dispatches on an EtherType (also used by GRE, Geneve and SLL, whose protocol fields are EtherTypes). */
  private ethertype(type: number, off: number, end: number, lim: number): number {
    const buf = this.p.buf;
    for (;;) {
      switch (type) {
        case 0x0800:
          return this.ipv4(off, end, lim);
        case 0x86dd:
          return this.ipv6(off, end, lim);
        case 0x8100:
        case 0x88a8:
        case 0x9100:
        case 0x9200: {
          if (end - off < 4) return R.truncated_vlan;
          const vid = ((buf[off] << 8) | buf[off + 1]) & 0xfff;
          const p = this.p;
          if (this.tags === 0) p.vlan = vid << 12;
          else if (this.tags === 1) p.vlan |= vid;
          this.tags++;
          type = (buf[off + 2] << 8) | buf[off + 3];
          off += 4;
          continue;
        }
        case 0x8847:
        case 0x8848: {
          // MPLS label stack: pop to the bottom of stack, then guess the payload.
          let n = 0;
          for (;;) {
            if (end - off < 4) return R.truncated_mpls;
            const bottom = buf[off + 2] & 1;
            off += 4;
            if (bottom) break;
            if (++n >= 16) return R.truncated_mpls;
          }
          if (end - off < 1) return R.truncated_mpls;
          const nib = buf[off] >> 4;
          if (nib === 4) return this.ipv4(off, end, lim);
          if (nib === 6) return this.ipv6(off, end, lim);
          if (nib === 0) {
            // Ethernet pseudowire with a control word.
            if (end - off < 18) return R.truncated_mpls;
            return this.innerEthernet(off + 4, end, lim);
          }
          this.sink.nonIp(type);
          return 0;
        }
        case 0x8864: {
          // PPPoE session: 6-byte header, then a PPP protocol field.
          if (end - off < 8) return R.truncated_pppoe;
          const pp = (buf[off + 6] << 8) | buf[off + 7];
          if (pp === 0x0021) return this.ipv4(off + 8, end, lim);
          if (pp === 0x0057) return this.ipv6(off + 8, end, lim);
          this.sink.nonIp(type);
          return 0;
        }
        case 0x88e7: {
          // 802.1ah provider backbone: I-TAG (4), customer MACs (12), EtherType.
          if (end - off < 18) return R.truncated_vlan;
          type = (buf[off + 16] << 8) | buf[off + 17];
          off += 18;
          this.tags = 0;
          this.p.vlan = 0;
          continue;
        }
        case 0x8926: {
          // Cisco VN-Tag: 4-byte tag, then EtherType.
          if (end - off < 6) return R.truncated_vlan;
          type = (buf[off + 4] << 8) | buf[off + 5];
          off += 6;
          continue;
        }
        case 0x6558:
          return this.innerEthernet(off, end, lim);
        default:
          if (type < 0x0600 && end - off >= 8 && buf[off] === 0xaa && buf[off + 1] === 0xaa && buf[off + 2] === 0x03 &&
            buf[off + 3] === 0 && buf[off + 4] === 0 && (buf[off + 5] === 0 || buf[off + 5] === 0xf8)) {
            // An 802.3 length frame with LLC/SNAP whose protocol id is an EtherType (RFC 1042, 802.1H).
            const snap = (buf[off + 6] << 8) | buf[off + 7];
            if (snap >= 0x0600) {
              type = snap;
              off += 8;
              continue;
            }
          }
          this.sink.nonIp(type < 0x0600 ? ETHERTYPE_LLC : type);
          return 0;
      }
    }
  }

  /** An Ethernet frame inside a tunnel or a pseudowire (a new link: its own VLAN tags). */
  private innerEthernet(off: number, end: number, lim: number): number {
    if (end - off < 14) return R.truncated_tunnel;
    const buf = this.p.buf;
    this.p.vlan = 0;
    this.tags = 0;
    return this.ethertype((buf[off + 12] << 8) | buf[off + 13], off + 14, end, lim);
  }

  /** PPP (link type 9/50, PPTP's GRE payload): optional ff 03, then a 1- or 2-byte protocol. */
  private ppp(off: number, end: number, lim: number): number {
    const buf = this.p.buf;
    if (end - off < 2) return R.truncated_link;
    if (buf[off] === 0xff && buf[off + 1] === 0x03) off += 2;
    if (end - off < 1) return R.truncated_link;
    let proto: number;
    if (buf[off] & 1) {
      proto = buf[off];
      off += 1;
    } else {
      if (end - off < 2) return R.truncated_link;
      proto = (buf[off] << 8) | buf[off + 1];
      off += 2;
    }
    if (proto === 0x21) return this.ipv4(off, end, lim);
    if (proto === 0x57) return this.ipv6(off, end, lim);
    this.sink.nonIp(ETHERTYPE_OTHER);
    return 0;
  }

  private ipAny(off: number, end: number, lim: number): number {
    if (end - off < 1) return R.truncated_ipv4;
    const v = this.p.buf[off] >> 4;
    if (v === 4) return this.ipv4(off, end, lim);
    if (v === 6) return this.ipv6(off, end, lim);
    return R.bad_ip_version;
  }

  private ipv4(off: number, end: number, lim: number): number {
    const buf = this.p.buf;
    if (end - off < 1) return R.truncated_ipv4;
    if (buf[off] >> 4 !== 4) return R.bad_ip_version;
    if (end - off < 20) return R.truncated_ipv4;
    const ihl = (buf[off] & 0xf) << 2;
    if (ihl < 20) return R.bad_ipv4_ihl;
    if (end - off < ihl) return R.truncated_ipv4;
    let total = (buf[off + 2] << 8) | buf[off + 3];
    if (total === 0) total = (lim === UNKNOWN_LIM ? end : lim) - off; // TSO / GSO: the length is the frame's
    if (total < ihl || off + total > lim) return R.bad_ipv4_length;
    const p = this.p;
    p.ipVersion = 4;
    p.ipLen = total;
    p.ipId = (buf[off + 4] << 8) | buf[off + 5];
    const a = p.addr;
    a[0] = 0; a[1] = 0; a[2] = 0;
    a[3] = (buf[off + 12] << 24) | (buf[off + 13] << 16) | (buf[off + 14] << 8) | buf[off + 15];
    a[4] = 0; a[5] = 0; a[6] = 0;
    a[7] = (buf[off + 16] << 24) | (buf[off + 17] << 16) | (buf[off + 18] << 8) | buf[off + 19];
    const ipLim = off + total;
    const ff = (buf[off + 6] << 8) | buf[off + 7];
    const fragOff = (ff & 0x1fff) << 3;
    const mf = ff & 0x2000;
    const fragId = (buf[off + 4] << 8) | buf[off + 5];
    return this.transport(buf[off + 9], off + ihl, end < ipLim ? end : ipLim, ipLim, fragOff, mf, fragId);
  }

  private ipv6(off: number, end: number, lim: number): number {
    const buf = this.p.buf;
    if (end - off < 1) return R.truncated_ipv6;
    if (buf[off] >> 4 !== 6) return R.bad_ip_version;
    if (end - off < 40) return R.truncated_ipv6;
    let plen = (buf[off + 4] << 8) | buf[off + 5];
    if (plen === 0) plen = (lim === UNKNOWN_LIM ? end : lim) - off - 40; // jumbogram / GSO: the length is the frame's
    const ipLim = off + 40 + plen;
    if (ipLim > lim) return R.bad_ipv6_length;
    if (end > ipLim) end = ipLim;
    const p = this.p;
    p.ipVersion = 6;
    p.ipLen = plen + 40;
    p.ipId = 0;
    const a = p.addr;
    for (let i = 0; i < 8; i++) {
      const o = off + 8 + (i << 2);
      a[i] = (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3];
    }
    let nh = buf[off + 6];
    let cur = off + 40;
    let fragOff = 0;
    let mf = 0;
    let fragId = 0;
    // Every extension header is at least 8 bytes and must stay inside the payload, so this ends.
    for (;;) {
      if (nh === 0 || nh === 43 || nh === 60 || nh === 135 || nh === 139 || nh === 140) {
        if (end - cur < 2) return R.truncated_ipv6_ext;
        const len = (buf[cur + 1] + 1) << 3;
        nh = buf[cur];
        cur += len;
      } else if (nh === 51) {
        if (end - cur < 2) return R.truncated_ipv6_ext;
        const len = (buf[cur + 1] + 2) << 2;
        nh = buf[cur];
        cur += len;
      } else if (nh === 44) {
        if (end - cur < 8) return R.truncated_ipv6_ext;
        nh = buf[cur];
        fragOff = ((buf[cur + 2] << 8) | buf[cur + 3]) & 0xfff8;
        mf = buf[cur + 3] & 1;
        fragId = ((buf[cur + 4] << 24) | (buf[cur + 5] << 16) | (buf[cur + 6] << 8) | buf[cur + 7]) >>> 0;
        cur += 8;
        if (fragOff !== 0) break; // a later fragment: what follows is data, not headers
      } else {
        break;
      }
      if (cur > ipLim) return R.bad_ipv6_length;
    }
    if (cur > end) return R.truncated_ipv6_ext;
    return this.transport(nh, cur, end, ipLim, fragOff, mf, fragId);
  }

  /**
   * The transport layer of an IP packet whose header the caller filled in.
   * `off..end` is the captured IP payload, `ipLim` where it ends per the IP length.
   */
  private transport(proto: number, off: number, end: number, ipLim: number, fragOff: number, mf: number, fragId: number): number {
    const p = this.p;
    const buf = p.buf;
    const sink = this.sink;
    p.proto = proto;
    p.tcpFlags = 0;
    p.hasL4 = false;
    p.l4Off = off;
    p.l4Cap = end - off;
    if (fragId !== 0 && p.ipVersion === 6) p.ipId = fragId;
    p.sport = 0;
    p.dport = 0;
    if (fragOff !== 0) {
      // A later fragment: no transport header; take the ports from the first fragment.
      p.fragment = 2;
      p.payloadLen = ipLim - off;
      const frags = this.fragments;
      const e = frags.find(p.addr, proto, fragId, this.t);
      if (e >= 0) {
        p.sport = frags.sport[e];
        p.dport = frags.dport[e];
        if (!mf) frags.remove(e);
      } else if (proto === PROTO_TCP || proto === PROTO_UDP || proto === PROTO_ICMP || proto === PROTO_ICMPV6) {
        return R.orphan_fragment;
      }
      sink.layer(p);
      return 0;
    }
    p.fragment = mf ? 1 : 0;
    switch (proto) {
      case PROTO_TCP: {
        if (end - off < 20) return mf ? R.fragment_too_short : R.truncated_tcp;
        const doff = (buf[off + 12] >> 4) << 2;
        if (doff < 20) return R.bad_tcp_offset;
        if (mf && (end - off < doff || ipLim - off < doff)) return R.fragment_too_short;
        if (off + doff > ipLim) return R.bad_tcp_offset;
        p.sport = (buf[off] << 8) | buf[off + 1];
        p.dport = (buf[off + 2] << 8) | buf[off + 3];
        p.seq = ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0;
        p.ack = ((buf[off + 8] << 24) | (buf[off + 9] << 16) | (buf[off + 10] << 8) | buf[off + 11]) >>> 0;
        p.tcpFlags = buf[off + 13];
        p.win = (buf[off + 14] << 8) | buf[off + 15];
        p.optOff = off + 20;
        const optEnd = off + doff < end ? off + doff : end;
        p.optLen = optEnd - off - 20;
        p.payloadLen = ipLim - off - doff;
        p.hasL4 = true;
        if (mf) this.fragments.add(p.addr, proto, fragId, p.sport, p.dport, this.t);
        sink.layer(p);
        return 0;
      }
      case PROTO_UDP: {
        if (end - off < 8) return mf ? R.fragment_too_short : R.truncated_udp;
        const sport = (buf[off] << 8) | buf[off + 1];
        const dport = (buf[off + 2] << 8) | buf[off + 3];
        const ulen = (buf[off + 4] << 8) | buf[off + 5];
        const avail = ipLim - off;
        // In a first fragment the UDP length covers the whole datagram; otherwise it must fit the IP payload.
        const badLen = !mf && ulen !== 0 && (ulen < 8 || ulen > avail);
        p.sport = sport;
        p.dport = dport;
        p.payloadLen = (mf || ulen === 0 || badLen ? avail : ulen) - 8;
        p.hasL4 = true;
        if (mf) this.fragments.add(p.addr, proto, fragId, sport, dport, this.t);
        const id = sink.layer(p);
        if (badLen) return R.bad_udp_length;
        // A first fragment still shows the start of a tunnelled packet (tshark decodes it too).
        const udpLim = mf ? (ulen >= 8 ? off + ulen : UNKNOWN_LIM) : off + 8 + p.payloadLen;
        return this.udpTunnel(sport, dport, off + 8, end, udpLim, id);
      }
      case PROTO_ICMP:
      case PROTO_ICMPV6: {
        if (end - off < 2) return mf ? R.fragment_too_short : R.truncated_icmp;
        const type = buf[off];
        const code = buf[off + 1];
        const cp = (proto === PROTO_ICMP ? ICMP_COUNTERPART : ICMP6_COUNTERPART)[type];
        p.icmpType = type;
        p.icmpCode = code;
        p.sport = type;
        p.dport = cp >= 0 ? cp : code;
        p.payloadLen = ipLim - off >= 8 ? ipLim - off - 8 : 0;
        p.hasL4 = true;
        if (mf) this.fragments.add(p.addr, proto, fragId, p.sport, p.dport, this.t);
        sink.layer(p);
        return 0;
      }
      case 51: {
        // IPv4 Authentication Header: skip it and decode what it protects.
        if (end - off < 2) return R.truncated_ipv4;
        const len = (buf[off + 1] + 2) << 2;
        if (off + len > ipLim) return R.bad_ipv4_length;
        return this.transport(buf[off], off + len, end, ipLim, 0, mf, fragId);
      }
      default: {
        // Other IP protocols (GRE, IP-in-IP, ESP, SCTP, OSPF, ...) are flows without ports.
        p.payloadLen = ipLim - off;
        const id = sink.layer(p);
        let innerLim = ipLim;
        if (mf) {
          // A first fragment: the tunnelled packet is cut where the fragment ends; its own length is unknown here.
          this.fragments.add(p.addr, proto, fragId, 0, 0, this.t);
          innerLim = UNKNOWN_LIM;
        }
        if (proto === 47) return this.enter(id) || this.gre(off, end, innerLim);
        if (proto === 4) return this.enter(id) || this.ipv4(off, end, innerLim);
        if (proto === 41) return this.enter(id) || this.ipv6(off, end, innerLim);
        return 0;
      }
    }
  }

  /** Steps into a tunnel whose carrier was counted in flow `id`; returns a reason when too deep. */
  private enter(id: number): number {
    const p = this.p;
    if (p.depth >= MAX_DEPTH) return R.tunnel_too_deep;
    p.depth++;
    p.parent = id;
    p.vlan = 0;
    this.tags = 0;
    return 0;
  }

  /** UDP-encapsulated tunnels, recognised by port and validated by their header. */
  private udpTunnel(sport: number, dport: number, off: number, end: number, lim: number, id: number): number {
    const buf = this.p.buf;
    const port = isTunnelPort(dport) ? dport : isTunnelPort(sport) ? sport : 0;
    if (port === 0) return 0;
    switch (port) {
      case 4789: // VXLAN
        if (end - off < 8) return R.truncated_tunnel;
        if ((buf[off] & 0x08) === 0) return 0;
        return this.enter(id) || this.innerEthernet(off + 8, end, lim);
      case 4790: {
        // VXLAN-GPE: the next-protocol byte says what follows (1 IPv4, 2 IPv6, 3 Ethernet).
        if (end - off < 8) return R.truncated_tunnel;
        if ((buf[off] & 0x30) !== 0 || (buf[off] & 0x04) === 0) return 0;
        const np = buf[off + 3];
        if (np === 1) return this.enter(id) || this.ipv4(off + 8, end, lim);
        if (np === 2) return this.enter(id) || this.ipv6(off + 8, end, lim);
        if (np === 3) return this.enter(id) || this.innerEthernet(off + 8, end, lim);
        return 0;
      }
      case 37008: {
        // TZSP (a remote sniffer's stream): version 1, a received or transmitted packet, tagged fields up to the end tag, then the frame.
        if (end - off < 5) return R.truncated_tunnel;
        if (buf[off] !== 1 || buf[off + 1] > 1) return 0;
        const encap = (buf[off + 2] << 8) | buf[off + 3];
        if (encap !== 1 && encap !== 18) return 0;
        let cur = off + 4;
        for (;;) {
          if (end - cur < 1) return R.truncated_tunnel;
          const tag = buf[cur];
          if (tag === 1) break;
          if (tag === 0) cur++;
          else {
            if (end - cur < 2) return R.truncated_tunnel;
            cur += 2 + buf[cur + 1];
          }
        }
        cur++;
        // An 802.11 frame or an Ethernet frame: a new link (enter() drops the outer VLAN tags).
        if (encap === 18) return this.enter(id) || this.wlan(cur, end, lim);
        return this.enter(id) || this.innerEthernet(cur, end, lim);
      }
      case 6081: {
        // Geneve
        if (end - off < 8) return R.truncated_tunnel;
        if (buf[off] >> 6 !== 0) return 0;
        const hl = 8 + ((buf[off] & 0x3f) << 2);
        if (end - off < hl) return R.truncated_tunnel;
        const ptype = (buf[off + 2] << 8) | buf[off + 3];
        return this.enter(id) || this.ethertype(ptype, off + hl, end, lim);
      }
      case 4754: // GRE in UDP
        return this.enter(id) || this.gre(off, end, lim);
      case 6635: // MPLS in UDP
        return this.enter(id) || this.ethertype(0x8847, off, end, lim);
      case 2152: {
        // GTP-U: version 1, protocol type GTP, message G-PDU carries an IP packet.
        if (end - off < 8) return R.truncated_tunnel;
        const flags = buf[off];
        if (flags >> 5 !== 1 || (flags & 0x10) === 0 || buf[off + 1] !== 0xff) return 0;
        let cur = off + 8;
        if (flags & 0x07) {
          if (end - off < 12) return R.truncated_tunnel;
          cur = off + 12;
          let next = flags & 0x04 ? buf[off + 11] : 0;
          while (next !== 0) {
            if (end - cur < 1) return R.truncated_tunnel;
            const len = buf[cur] << 2;
            if (len === 0 || end - cur < len) return R.truncated_tunnel;
            next = buf[cur + len - 1];
            cur += len;
          }
        }
        if (end - cur < 1) return R.truncated_tunnel;
        const v = buf[cur] >> 4;
        if (v !== 4 && v !== 6) return 0;
        return this.enter(id) || this.ipAny(cur, end, lim);
      }
      case 1701: {
        // L2TPv2 (RFC 2661) data message: a PPP frame. Control messages (T bit) and other versions carry none.
        if (end - off < 2) return R.truncated_tunnel;
        const flags = (buf[off] << 8) | buf[off + 1];
        if ((flags & 0x800f) !== 2) return 0;
        let cur = off + 2 + (flags & 0x4000 ? 2 : 0) + 4 + (flags & 0x0800 ? 4 : 0);
        if (flags & 0x0200) {
          if (end - cur < 2) return R.truncated_tunnel;
          cur += 2 + ((buf[cur] << 8) | buf[cur + 1]);
        }
        if (end - cur < 2) return R.truncated_tunnel;
        return this.enter(id) || this.ppp(cur, end, lim);
      }
      case 5072: {
        // AYIYA: identity (2^n bytes) and signature (4n bytes), then a forwarded IPv4 or IPv6 packet.
        if (end - off < 8) return R.truncated_tunnel;
        const nh = buf[off + 3];
        if ((buf[off + 2] & 0x0f) !== 1 || (nh !== 4 && nh !== 41)) return 0;
        const hl = 8 + (1 << (buf[off] >> 4)) + ((buf[off + 1] >> 4) << 2);
        if (end - off < hl) return R.truncated_tunnel;
        return this.enter(id) || (nh === 4 ? this.ipv4(off + hl, end, lim) : this.ipv6(off + hl, end, lim));
      }
      case 3544: {
        // Teredo: optional authentication / origin-indication headers, then IPv6.
        let cur = off;
        if (end - cur >= 2 && buf[cur] === 0 && buf[cur + 1] === 1) {
          if (end - cur < 4) return 0;
          cur += 4 + buf[cur + 2] + buf[cur + 3] + 9;
        }
        if (end - cur >= 2 && buf[cur] === 0 && buf[cur + 1] === 0) cur += 8;
        if (end - cur < 40 || buf[cur] >> 4 !== 6) return 0;
        const plen = (buf[cur + 4] << 8) | buf[cur + 5];
        if (cur + 40 + plen !== lim) return 0;
        return this.enter(id) || this.ipv6(cur, end, lim);
      }
    }
    return 0;
  }

  /** GRE (RFC 2784/2890), PPTP's enhanced GRE (version 1), ERSPAN I/II/III. */
  private gre(off: number, end: number, lim: number): number {
    const buf = this.p.buf;
    if (end - off < 4) return R.truncated_tunnel;
    const flags = (buf[off] << 8) | buf[off + 1];
    const proto = (buf[off + 2] << 8) | buf[off + 3];
    const ver = flags & 7;
    let hl = 4;
    if (ver === 0) {
      if (flags & 0x4000) return R.unsupported_tunnel; // source routing (RFC 1701)
      if (flags & 0x8000) hl += 4;
      if (flags & 0x2000) hl += 4;
      if (flags & 0x1000) hl += 4;
    } else if (ver === 1) {
      hl = 8;
      if (flags & 0x1000) hl += 4;
      if (flags & 0x0080) hl += 4;
    } else {
      return R.unsupported_tunnel;
    }
    if (end - off < hl) return R.truncated_tunnel;
    const inner = off + hl;
    switch (proto) {
      case 0x880b:
        return this.ppp(inner, end, lim);
      case 0x88be:
        // ERSPAN type II has a sequence number and an 8-byte header; type I has neither.
        if (flags & 0x1000) {
          if (end - inner < 8) return R.truncated_tunnel;
          return this.innerEthernet(inner + 8, end, lim);
        }
        return this.innerEthernet(inner, end, lim);
      case 0x22eb: {
        // ERSPAN type III: 12-byte header, plus an 8-byte platform subheader when O is set.
        if (end - inner < 12) return R.truncated_tunnel;
        const hl3 = buf[inner + 11] & 0x01 ? 20 : 12;
        return this.innerEthernet(inner + hl3, end, lim);
      }
      default:
        return this.ethertype(proto, inner, end, lim);
    }
  }
}

function isTunnelPort(port: number): boolean {
  return port === 4789 || port === 6081 || port === 4754 || port === 6635 || port === 2152 || port === 3544 || port === 1701 || port === 5072 ||
    port === 4790 || port === 37008;
}
