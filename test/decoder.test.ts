import { describe, expect, it } from 'vitest';
import { Decoder, ETHERTYPE_LLC, ETHERTYPE_WLAN, type LayerSink } from '../parsers/decoder.js';
import type { Packet } from '../parsers/packet.js';
import { R, REASONS } from '../parsers/reasons.js';
import { formatAddr } from '../parsers/addr.js';
import {
  ACK, SYN, bsdNull, bytes, cat, eth, ext6, frag6, geneve, gre, hex, icmp, ipv4, ipv6, mpls, pppoe, sll, sll2, tcp, udp, vlanTag, vxlan,
} from './gen/packets.js';

interface Layer {
  depth: number;
  parent: number;
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  ipLen: number;
  payloadLen: number;
  vlan: number;
  fragment: number;
  hasL4: boolean;
  tcpFlags: number;
  sllType: number;
}

class Recorder implements LayerSink {
  layers: Layer[] = [];
  nonIps: number[] = [];
  layer(p: Packet): number {
    this.layers.push({
      depth: p.depth, parent: p.parent, proto: p.proto,
      src: formatAddr(p.ipVersion, p.addr, 0), dst: formatAddr(p.ipVersion, p.addr, 4),
      sport: p.sport, dport: p.dport, ipLen: p.ipLen, payloadLen: p.payloadLen, vlan: p.vlan,
      fragment: p.fragment, hasL4: p.hasL4, tcpFlags: p.tcpFlags, sllType: p.sllType,
    });
    return 100 + this.layers.length - 1;
  }
  nonIp(t: number): void {
    this.nonIps.push(t);
  }
}

function run(linktype: number, frame: Uint8Array, wirelen = frame.length, caplen = frame.length) {
  const rec = new Recorder();
  const dec = new Decoder(rec);
  // Put the frame in a larger buffer at an offset, with garbage after it: bounds must come from caplen.
  const buf = new Uint8Array(caplen + 64).fill(0xee);
  buf.set(frame.subarray(0, caplen), 16);
  const reason = dec.decode(buf, 16, caplen, wirelen, linktype, 0, 0, 0);
  return { reason: REASONS[reason], layers: rec.layers, nonIps: rec.nonIps };
}

const MAC_A_BYTES = Uint8Array.from([2, 0, 0, 0, 0, 10]);
const T = (sport: number, dport: number, flags = SYN, payload: Uint8Array = new Uint8Array(0)) => tcp({ sport, dport, flags }, payload);

interface Case {
  name: string;
  linktype: number;
  frame: Uint8Array;
  reason?: string;
  layers: Partial<Layer>[];
  nonIps?: number[];
}

const udp4 = ipv4({ proto: 17, src: '192.0.2.1', dst: '198.51.100.2' }, udp(5353, 53, bytes(12)));
const tcp6 = ipv6({ nh: 6, src: '2001:db8::1', dst: '2001:db8:0:1::2' }, T(40000, 443, ACK, bytes(10)));

const cases: Case[] = [
  {
    name: 'ethernet ipv4 tcp syn',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 6, src: '10.1.2.3', dst: '10.9.8.7' }, T(1234, 80))),
    layers: [{ proto: 6, src: '10.1.2.3', dst: '10.9.8.7', sport: 1234, dport: 80, ipLen: 40, payloadLen: 0, tcpFlags: SYN, hasL4: true }],
  },
  {
    name: 'ethernet padding never counts (60-byte frame, 40-byte IP packet)',
    linktype: 1,
    frame: cat(eth(0x0800, ipv4({ proto: 6 }, T(1, 2, ACK))), new Uint8Array(6)),
    layers: [{ ipLen: 40, payloadLen: 0 }],
  },
  {
    name: 'ipv4 with options',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17, options: [0x94, 0x04, 0, 0] }, udp(1, 2, bytes(3)))),
    layers: [{ proto: 17, ipLen: 35, payloadLen: 3, sport: 1, dport: 2 }],
  },
  {
    name: 'ipv4 total length 0 (TSO) uses the frame length',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 6, totalLength: 0 }, T(1, 2, ACK, bytes(3000)))),
    layers: [{ ipLen: 3040, payloadLen: 3000 }],
  },
  {
    name: 'ipv6 tcp',
    linktype: 1,
    frame: eth(0x86dd, tcp6),
    layers: [{ proto: 6, src: '2001:db8::1', dst: '2001:db8:0:1::2', sport: 40000, dport: 443, ipLen: 70, payloadLen: 10 }],
  },
  {
    name: 'ipv6 hop-by-hop + routing + destination options + udp',
    linktype: 1,
    frame: eth(0x86dd, ipv6({ nh: 0 }, ext6(43, ext6(60, ext6(17, udp(7, 9, bytes(5))))))),
    layers: [{ proto: 17, sport: 7, dport: 9, payloadLen: 5, ipLen: 40 + 24 + 13 }],
  },
  {
    name: '802.1Q',
    linktype: 1,
    frame: eth(0x8100, vlanTag(100, 0x0800, udp4)),
    layers: [{ vlan: 100 << 12, sport: 5353, dport: 53 }],
  },
  {
    name: 'QinQ 802.1ad + 802.1Q',
    linktype: 1,
    frame: eth(0x88a8, vlanTag(10, 0x8100, vlanTag(20, 0x0800, udp4))),
    layers: [{ vlan: (10 << 12) | 20 }],
  },
  {
    name: 'three tags: the two outer ones are kept',
    linktype: 1,
    frame: eth(0x8100, vlanTag(1, 0x8100, vlanTag(2, 0x8100, vlanTag(3, 0x0800, udp4)))),
    layers: [{ vlan: (1 << 12) | 2 }],
  },
  {
    name: 'MPLS two labels, IPv4',
    linktype: 1,
    frame: eth(0x8847, mpls([100, 200], udp4)),
    layers: [{ sport: 5353 }],
  },
  {
    name: 'MPLS in VLAN, IPv6',
    linktype: 1,
    frame: eth(0x8100, vlanTag(5, 0x8847, mpls([16], tcp6))),
    layers: [{ vlan: 5 << 12, dport: 443 }],
  },
  {
    name: 'PPPoE session IPv4',
    linktype: 1,
    frame: eth(0x8864, pppoe(0x0021, udp4)),
    layers: [{ sport: 5353 }],
  },
  {
    name: 'ARP is non-IP',
    linktype: 1,
    frame: eth(0x0806, bytes(28, 0)),
    layers: [],
    nonIps: [0x0806],
  },
  {
    name: '802.3 length frame is non-IP (llc)',
    linktype: 1,
    frame: eth(0x0026, bytes(38, 0x42)),
    layers: [],
    nonIps: [ETHERTYPE_LLC],
  },
  {
    name: 'Linux SLL outgoing',
    linktype: 113,
    frame: sll(4, 0x0800, udp4),
    layers: [{ sllType: 4, sport: 5353 }],
  },
  {
    name: 'Linux SLL2 host, VLAN',
    linktype: 276,
    frame: sll2(0, 0x8100, 7, vlanTag(42, 0x0800, udp4)),
    layers: [{ sllType: 0, vlan: 42 << 12 }],
  },
  { name: 'raw IP (101) v4', linktype: 101, frame: udp4, layers: [{ sport: 5353 }] },
  { name: 'raw IP (101) v6', linktype: 101, frame: tcp6, layers: [{ dport: 443 }] },
  { name: 'LINKTYPE_IPV4 (228)', linktype: 228, frame: udp4, layers: [{ sport: 5353 }] },
  { name: 'LINKTYPE_IPV6 (229)', linktype: 229, frame: tcp6, layers: [{ dport: 443 }] },
  { name: 'LINKTYPE_IPV6 carrying IPv4 is bad_ip_version', linktype: 229, frame: udp4, reason: 'bad_ip_version', layers: [] },
  { name: 'BSD null little-endian AF_INET', linktype: 0, frame: bsdNull(2, udp4), layers: [{ sport: 5353 }] },
  { name: 'BSD null big-endian AF_INET6 (30)', linktype: 0, frame: bsdNull(30, tcp6, false), layers: [{ dport: 443 }] },
  { name: 'BSD loop (108) AF_INET6 (24)', linktype: 108, frame: bsdNull(24, tcp6, false), layers: [{ dport: 443 }] },
  { name: 'unsupported link type', linktype: 147, frame: udp4, reason: 'unsupported_linktype', layers: [] },
  {
    name: '802.11 QoS data frame with LLC/SNAP',
    linktype: 105,
    frame: cat(hex('88 01 30 00'), new Uint8Array(18), hex('00 00'), hex('00 00'), hex('aa aa 03 00 00 00 08 00'), udp4),
    layers: [{ sport: 5353 }],
  },
  {
    name: 'radiotap (with TSFT and flags: FCS at the end) + 802.11 data',
    linktype: 127,
    frame: cat(hex('00 00 18 00 03 00 00 00'), new Uint8Array(8), hex('10 00 00 00 00 00 00 00'), hex('08 02 00 00'), new Uint8Array(20),
      hex('aa aa 03 00 00 00 86 dd'), tcp6, hex('de ad be ef')),
    layers: [{ dport: 443, ipLen: 70 }],
  },
  {
    name: '802.11 ACK (control frame, 10 bytes) is non-IP',
    linktype: 105,
    frame: cat(hex('d4 00 00 00'), MAC_A_BYTES),
    layers: [],
    nonIps: [ETHERTYPE_WLAN],
  },
  {
    name: '802.11 protected data frame is non-IP',
    linktype: 105,
    frame: cat(hex('08 41 00 00'), new Uint8Array(20), new Uint8Array(40)),
    layers: [],
    nonIps: [ETHERTYPE_WLAN],
  },
  {
    name: 'PPI header carrying 802.11',
    linktype: 192,
    frame: cat(hex('00 00 08 00 69 00 00 00'), hex('08 02 00 00'), new Uint8Array(20), hex('aa aa 03 00 00 00 08 00'), udp4),
    layers: [{ sport: 5353 }],
  },
  {
    name: 'ICMP echo request: type and counterpart as ports',
    linktype: 228,
    frame: ipv4({ proto: 1 }, icmp(8, 0, bytes(60))),
    layers: [{ proto: 1, sport: 8, dport: 0, payloadLen: 56 }],
  },
  {
    name: 'ICMP error: code as responder port, quoted datagram not a layer',
    linktype: 228,
    frame: ipv4({ proto: 1 }, icmp(3, 3, cat(new Uint8Array(4), udp4.subarray(0, 28)))),
    layers: [{ proto: 1, sport: 3, dport: 3 }],
  },
  {
    name: 'ICMPv6 echo reply',
    linktype: 229,
    frame: ipv6({ nh: 58 }, icmp(129, 0, bytes(12))),
    layers: [{ proto: 58, sport: 129, dport: 128 }],
  },
  {
    name: 'GRE carrying IPv4 UDP: outer IP flow and inner flow',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 47, src: '203.0.113.1', dst: '203.0.113.2' }, gre(0x0800, udp4, 0x2000))),
    layers: [
      { depth: 0, proto: 47, src: '203.0.113.1', sport: 0, hasL4: false },
      { depth: 1, parent: 100, proto: 17, src: '192.0.2.1', sport: 5353 },
    ],
  },
  {
    name: 'GRE transparent Ethernet bridging with VLAN inside',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 47 }, gre(0x6558, eth(0x8100, vlanTag(9, 0x0800, udp4))))),
    layers: [{ proto: 47 }, { depth: 1, vlan: 9 << 12, sport: 5353 }],
  },
  {
    name: 'ERSPAN type II',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 47 }, gre(0x88be, cat(new Uint8Array(8), eth(0x0800, udp4)), 0x1000))),
    layers: [{ proto: 47 }, { depth: 1, sport: 5353 }],
  },
  {
    name: 'VXLAN: outer UDP flow and inner flow',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17, src: '172.16.0.1', dst: '172.16.0.2' }, udp(55555, 4789, vxlan(42, eth(0x0800, udp4))))),
    layers: [
      { depth: 0, proto: 17, dport: 4789 },
      { depth: 1, parent: 100, sport: 5353, dport: 53 },
    ],
  },
  {
    name: 'Geneve with options carrying IPv6',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(1000, 6081, geneve(0x86dd, tcp6, 2)))),
    layers: [{ dport: 6081 }, { depth: 1, dport: 443 }],
  },
  {
    name: 'GRE in UDP (4754)',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(1000, 4754, gre(0x0800, udp4)))),
    layers: [{ dport: 4754 }, { depth: 1, sport: 5353 }],
  },
  {
    name: 'IPv4 in IPv4',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 4, src: '1.1.1.1', dst: '2.2.2.2' }, udp4)),
    layers: [{ proto: 4, src: '1.1.1.1' }, { depth: 1, proto: 17, src: '192.0.2.1' }],
  },
  {
    name: 'IPv6 in IPv4 (6in4)',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 41 }, tcp6)),
    layers: [{ proto: 41 }, { depth: 1, proto: 6, dport: 443 }],
  },
  {
    name: 'IPv4 in IPv6 (4in6)',
    linktype: 1,
    frame: eth(0x86dd, ipv6({ nh: 4 }, udp4)),
    layers: [{ proto: 4 }, { depth: 1, proto: 17 }],
  },
  {
    name: 'Teredo (UDP 3544) carrying IPv6',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(3544, 50000, tcp6))),
    layers: [{ sport: 3544 }, { depth: 1, proto: 6, dport: 443 }],
  },
  {
    name: 'Linux NFLOG (239): prefix and hardware TLVs, then the payload TLV holding IPv4',
    linktype: 239,
    frame: cat(Uint8Array.from([2, 0, 0, 5, 8, 0, 1, 0, 8, 0, 1, 0, 10, 0, 10, 0]), bytes(6, 0x61), bytes(2, 0), Uint8Array.from([4 + udp4.length, 0, 9, 0]), udp4),
    layers: [{ proto: 17, src: '192.0.2.1', sport: 5353 }],
  },
  {
    name: 'Linux NFLOG (239) from a big-endian host, IPv6',
    linktype: 239,
    frame: cat(Uint8Array.from([10, 0, 0, 5, 0, 8, 0, 1, 8, 0, 1, 0, 0, 4 + tcp6.length, 0, 9]), tcp6),
    layers: [{ proto: 6, dport: 443 }],
  },
  {
    name: 'OpenBSD pflog (117): a 61-byte header padded to 64, IPv4 and IPv6 (AF 24)',
    linktype: 117,
    frame: cat(Uint8Array.from([61, 2]), bytes(62, 0), udp4),
    layers: [{ proto: 17, src: '192.0.2.1', sport: 5353 }],
  },
  {
    name: 'OpenBSD pflog (117) carrying IPv6 (AF 24)',
    linktype: 117,
    frame: cat(Uint8Array.from([61, 24]), bytes(62, 0), tcp6),
    layers: [{ proto: 6, dport: 443 }],
  },
  {
    name: '802.3 length frame with LLC/SNAP (RFC 1042) carrying IPv4',
    linktype: 1,
    frame: eth(8 + udp4.length, cat(Uint8Array.from([0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]), udp4)),
    layers: [{ proto: 17, src: '192.0.2.1', sport: 5353 }],
  },
  {
    name: 'L2TPv2 data message (length and sequence fields) carrying PPP/IPv4',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17, src: '198.51.100.1' }, udp(1701, 1701, cat(Uint8Array.from([0x48, 0x02, 0, 16 + udp4.length, 0, 7, 0, 9, 0, 1, 0, 2, 0xff, 0x03, 0x00, 0x21]), udp4)))),
    layers: [{ sport: 1701, src: '198.51.100.1' }, { depth: 1, parent: 100, proto: 17, src: '192.0.2.1', sport: 5353 }],
  },
  {
    name: 'L2TPv2 data message with an offset field and a compressed PPP protocol carrying IPv6',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(40000, 1701, cat(Uint8Array.from([0x02, 0x02, 0, 7, 0, 9, 0, 3, 0xaa, 0xbb, 0xcc, 0x57]), tcp6)))),
    layers: [{ dport: 1701 }, { depth: 1, proto: 6, dport: 443 }],
  },
  {
    name: 'L2TPv2 control message: the outer flow only',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(1701, 1701, cat(Uint8Array.from([0xc8, 0x02, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0]), bytes(8, 0))))),
    layers: [{ dport: 1701 }],
  },
  {
    name: 'VXLAN-GPE (UDP 4790) carrying IPv4 directly, and Ethernet',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(40000, 4790, cat(Uint8Array.from([0x0c, 0, 0, 1, 0, 0, 42, 0]), udp4)))),
    layers: [{ dport: 4790 }, { depth: 1, proto: 17, src: '192.0.2.1', sport: 5353 }],
  },
  {
    name: 'VXLAN-GPE carrying Ethernet',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(40000, 4790, cat(Uint8Array.from([0x0c, 0, 0, 3, 0, 0, 42, 0]), eth(0x86dd, tcp6))))),
    layers: [{ dport: 4790 }, { depth: 1, proto: 6, dport: 443 }],
  },
  {
    name: 'TZSP (UDP 37008) carrying Ethernet after a padding tag, a signal tag and the end tag',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(40000, 37008, cat(Uint8Array.from([1, 0, 0, 1, 0, 10, 1, 0xd0, 1]), eth(0x0800, udp4))))),
    layers: [{ dport: 37008 }, { depth: 1, proto: 17, src: '192.0.2.1', sport: 5353 }],
  },
  {
    name: 'AYIYA (UDP 5072) forwarding IPv6: 16-byte identity, 20-byte signature',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(5072, 5072, cat(Uint8Array.from([0x41, 0x52, 0x11, 41, 0, 0, 0, 0]), bytes(16, 1), bytes(20, 2), tcp6)))),
    layers: [{ sport: 5072 }, { depth: 1, proto: 6, dport: 443 }],
  },
  {
    name: 'AYIYA that is not a forward (heartbeat): the outer flow only',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(5072, 5072, cat(Uint8Array.from([0x41, 0x52, 0x10, 59, 0, 0, 0, 0]), bytes(36, 0))))),
    layers: [{ dport: 5072 }],
  },
  {
    name: 'UDP on a tunnel port that is not a tunnel stays plain UDP',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17 }, udp(4789, 1000, bytes(16, 0)))),
    layers: [{ dport: 1000 }],
  },
  {
    name: 'IPv4 AH then ICMP',
    linktype: 228,
    frame: ipv4({ proto: 51 }, cat(Uint8Array.from([1, 4, 0, 0]), new Uint8Array(20), icmp(8, 0, bytes(8)))),
    layers: [{ proto: 1, sport: 8 }],
  },
  {
    name: 'bad IPv4 IHL',
    linktype: 228,
    frame: ipv4({ proto: 17, ihl: 4 }, udp(1, 2)),
    reason: 'bad_ipv4_ihl',
    layers: [],
  },
  {
    name: 'IPv4 total length beyond the frame is malformed',
    linktype: 1,
    frame: eth(0x0800, ipv4({ proto: 17, totalLength: 200 }, udp(1, 2))),
    reason: 'bad_ipv4_length',
    layers: [],
  },
  {
    name: 'IPv6 payload length beyond the frame is malformed',
    linktype: 1,
    frame: eth(0x86dd, ipv6({ nh: 17, payloadLength: 500 }, udp(1, 2))),
    reason: 'bad_ipv6_length',
    layers: [],
  },
  {
    name: 'TCP data offset below 5',
    linktype: 228,
    frame: ipv4({ proto: 6 }, tcp({ sport: 1, dport: 2, flags: ACK, dataOffset: 4 })),
    reason: 'bad_tcp_offset',
    layers: [],
  },
  {
    name: 'UDP length larger than the IP payload: counted, flagged',
    linktype: 228,
    frame: ipv4({ proto: 17 }, udp(1, 2, bytes(4), 100)),
    reason: 'bad_udp_length',
    layers: [{ sport: 1, payloadLen: 4 }],
  },
  {
    name: 'ipv4 version nibble wrong on an IPv4 EtherType',
    linktype: 1,
    frame: eth(0x0800, ipv6({ nh: 17 }, udp(1, 2))),
    reason: 'bad_ip_version',
    layers: [],
  },
];

describe('decoder: table of packets', () => {
  for (const c of cases) {
    it(c.name, () => {
      const r = run(c.linktype, c.frame);
      expect(r.reason).toBe(c.reason ?? 'ok');
      expect(r.layers.length).toBe(c.layers.length);
      c.layers.forEach((want, i) => expect(r.layers[i]).toMatchObject(want));
      expect(r.nonIps).toEqual(c.nonIps ?? []);
    });
  }
});

describe('decoder: every truncation of every packet', () => {
  for (const c of cases) {
    it(`${c.name}: cut by snaplen and cut short`, () => {
      const full = run(c.linktype, c.frame);
      for (let k = 0; k < c.frame.length; k++) {
        // Snaplen cut: the wire length is known, lengths still come from the headers.
        const snapped = run(c.linktype, c.frame, c.frame.length, k);
        expect(REASONS).toContain(snapped.reason);
        // A layer reported from a snapped frame is the same layer as in the full frame.
        snapped.layers.forEach((l, i) => {
          expect(l.proto).toBe(full.layers[i].proto);
          expect(l.ipLen).toBe(full.layers[i].ipLen);
        });
        // A frame that really is this short.
        const short = run(c.linktype, c.frame.subarray(0, k));
        expect(REASONS).toContain(short.reason);
      }
    });
  }

  it('reports the layer that was cut', () => {
    const frame = eth(0x0800, ipv4({ proto: 6 }, T(1, 2)));
    expect(run(1, frame, frame.length, 10).reason).toBe('truncated_link');
    expect(run(1, frame, frame.length, 20).reason).toBe('truncated_ipv4');
    expect(run(1, frame, frame.length, 40).reason).toBe('truncated_tcp');
    const f6 = eth(0x86dd, ipv6({ nh: 17 }, udp(1, 2)));
    expect(run(1, f6, f6.length, 30).reason).toBe('truncated_ipv6');
    expect(run(1, f6, f6.length, 58).reason).toBe('truncated_udp');
    const fv = eth(0x8100, vlanTag(3, 0x0800, udp4));
    expect(run(1, fv, fv.length, 16).reason).toBe('truncated_vlan');
    const fx = eth(0x0800, ipv4({ proto: 17 }, udp(1, 4789, vxlan(1, eth(0x0800, udp4)))));
    expect(run(1, fx, fx.length, 14 + 20 + 8 + 4).reason).toBe('truncated_tunnel');
  });

  it('a snaplen-cut payload still counts the IP length', () => {
    const frame = eth(0x0800, ipv4({ proto: 6 }, T(1, 2, ACK, bytes(1400))));
    const r = run(1, frame, frame.length, 96);
    expect(r.reason).toBe('ok');
    expect(r.layers[0]).toMatchObject({ ipLen: 1440, payloadLen: 1400 });
  });
});

describe('decoder: fragments', () => {
  const payload = udp(5000, 6000, bytes(40), 48);
  const first = ipv4({ proto: 17, id: 77, mf: true }, payload.subarray(0, 24));
  const middle = ipv4({ proto: 17, id: 77, mf: true, fragOffset: 24 }, payload.subarray(24, 40));
  const last = ipv4({ proto: 17, id: 77, fragOffset: 40 }, payload.subarray(40));

  it('later fragments take the ports of the first one; each counts once', () => {
    const rec = new Recorder();
    const dec = new Decoder(rec);
    for (const f of [first, middle, last]) expect(REASONS[dec.decode(f, 0, f.length, f.length, 228, 0, 0, 0)]).toBe('ok');
    expect(rec.layers.map((l) => [l.fragment, l.sport, l.dport, l.ipLen])).toEqual([
      [1, 5000, 6000, 44],
      [2, 5000, 6000, 36],
      [2, 5000, 6000, 28],
    ]);
    // The last fragment removed the entry: a repeat is an orphan.
    expect(REASONS[dec.decode(last, 0, last.length, last.length, 228, 0, 0, 0)]).toBe('orphan_fragment');
  });

  it('a later fragment before its first is an orphan', () => {
    const rec = new Recorder();
    const dec = new Decoder(rec);
    expect(REASONS[dec.decode(middle, 0, middle.length, middle.length, 228, 0, 0, 0)]).toBe('orphan_fragment');
    expect(rec.layers).toEqual([]);
  });

  it('a first fragment too short for the TCP header', () => {
    const seg = tcp({ sport: 1, dport: 2, flags: SYN, options: new Array(20).fill(1) });
    const f = ipv4({ proto: 6, mf: true }, seg.subarray(0, 24));
    expect(run(228, f).reason).toBe('fragment_too_short');
  });

  it('IPv6 fragment header', () => {
    const rec = new Recorder();
    const dec = new Decoder(rec);
    const f1 = ipv6({ nh: 44 }, frag6(17, 0, true, 0xabcdef01, payload.subarray(0, 32)));
    const f2 = ipv6({ nh: 44 }, frag6(17, 32, false, 0xabcdef01, payload.subarray(32)));
    for (const f of [f1, f2]) expect(REASONS[dec.decode(f, 0, f.length, f.length, 229, 0, 0, 0)]).toBe('ok');
    expect(rec.layers.map((l) => [l.fragment, l.sport, l.dport, l.proto])).toEqual([
      [1, 5000, 6000, 17],
      [2, 5000, 6000, 17],
    ]);
  });

  it('fragments of different datagrams do not mix', () => {
    const rec = new Recorder();
    const dec = new Decoder(rec);
    const other = ipv4({ proto: 17, id: 78, mf: true }, udp(7000, 8000, bytes(16), 48).subarray(0, 24));
    const otherLast = ipv4({ proto: 17, id: 78, fragOffset: 24 }, bytes(8));
    for (const f of [first, other, last, otherLast]) dec.decode(f, 0, f.length, f.length, 228, 0, 0, 0);
    expect(rec.layers.map((l) => l.sport)).toEqual([5000, 7000, 5000, 7000]);
  });
});

describe('decoder: misc', () => {
  it('reason names are unique and ok is 0', () => {
    expect(new Set(REASONS).size).toBe(REASONS.length);
    expect(R.ok).toBe(0);
  });

  it('tunnel nesting stops at the depth limit', () => {
    let inner = udp4;
    for (let i = 0; i < 8; i++) inner = ipv4({ proto: 4 }, inner);
    const r = run(228, inner);
    expect(r.reason).toBe('tunnel_too_deep');
    expect(r.layers.length).toBe(5);
  });

  it('decodes a hex dump (tcpdump -xx style) of a real DNS query', () => {
    const frame = hex(`
      3c 22 fb 01 02 03 00 11 22 33 44 55 08 00 45 00
      00 39 1c 46 40 00 40 11 00 00 c0 a8 01 0a 08 08
      08 08 d4 31 00 35 00 25 00 00 ab cd 01 00 00 01
      00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63
      6f 6d 00 00 01 00 01`);
    const r = run(1, frame);
    expect(r.reason).toBe('ok');
    expect(r.layers[0]).toMatchObject({ src: '192.168.1.10', dst: '8.8.8.8', sport: 54321, dport: 53, ipLen: 57, payloadLen: 29 });
  });
});
