/**
 * Packet builders for tests: small composable functions that return bytes.
 * Lengths (IPv4 total length, IPv6 payload length, UDP length) are filled in
 * from the payload unless overridden; checksums are left 0.
 */

export type Bytes = Uint8Array;

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, '');
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}

export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u16(v: number): number[] {
  return [(v >>> 8) & 0xff, v & 0xff];
}
function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

export function ip4(a: string): number[] {
  return a.split('.').map(Number);
}

export function ip6(a: string): number[] {
  const [h, t] = a.split('::');
  const hp = h ? h.split(':') : [];
  const tp = t !== undefined && t !== '' ? t.split(':') : [];
  const groups = t === undefined ? hp : [...hp, ...new Array(8 - hp.length - tp.length).fill('0'), ...tp];
  return groups.flatMap((g) => u16(parseInt(g, 16)));
}

export const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
export const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

export function eth(type: number, payload: Bytes, src = MAC_A, dst = MAC_B): Bytes {
  return cat(Uint8Array.from([...dst, ...src, ...u16(type)]), payload);
}

/** One 802.1Q-style tag (TPID given by the caller's outer type) followed by `type`. */
export function vlanTag(vid: number, type: number, payload: Bytes, pcp = 0): Bytes {
  return cat(Uint8Array.from([...u16((pcp << 13) | vid), ...u16(type)]), payload);
}

export interface Ip4Opts {
  src?: string;
  dst?: string;
  proto: number;
  ttl?: number;
  id?: number;
  /** Fragment offset in bytes (multiple of 8). */
  fragOffset?: number;
  mf?: boolean;
  options?: number[];
  /** Override the total length field. */
  totalLength?: number;
  ihl?: number;
  version?: number;
}

export function ipv4(o: Ip4Opts, payload: Bytes): Bytes {
  const opts = o.options ?? [];
  const hl = 20 + opts.length;
  const ihl = o.ihl ?? hl / 4;
  const total = o.totalLength ?? hl + payload.length;
  const ff = ((o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) >> 3)) & 0xffff;
  const h = [
    ((o.version ?? 4) << 4) | ihl, 0, ...u16(total), ...u16(o.id ?? 1), ...u16(ff), o.ttl ?? 64, o.proto, 0, 0,
    ...ip4(o.src ?? '10.0.0.1'), ...ip4(o.dst ?? '10.0.0.2'), ...opts,
  ];
  return cat(Uint8Array.from(h), payload);
}

export interface Ip6Opts {
  src?: string;
  dst?: string;
  /** Next header of the fixed header (the first extension header's type, or the transport). */
  nh: number;
  hlim?: number;
  payloadLength?: number;
}

export function ipv6(o: Ip6Opts, payload: Bytes): Bytes {
  const h = [0x60, 0, 0, 0, ...u16(o.payloadLength ?? payload.length), o.nh, o.hlim ?? 64, ...ip6(o.src ?? '2001:db8::1'), ...ip6(o.dst ?? '2001:db8::2')];
  return cat(Uint8Array.from(h), payload);
}

/** A generic IPv6 extension header (hop-by-hop 0, routing 43, destination options 60) of 8 bytes. */
export function ext6(nh: number, payload: Bytes): Bytes {
  return cat(Uint8Array.from([nh, 0, 1, 4, 0, 0, 0, 0]), payload);
}

export function frag6(nh: number, offset: number, more: boolean, id: number, payload: Bytes): Bytes {
  return cat(Uint8Array.from([nh, 0, ...u16((offset & 0xfff8) | (more ? 1 : 0)), ...u32(id)]), payload);
}

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;

export interface TcpOpts {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags: number;
  win?: number;
  options?: number[];
  dataOffset?: number;
}

export function tcp(o: TcpOpts, payload: Bytes = new Uint8Array(0)): Bytes {
  const opts = o.options ?? [];
  const hl = 20 + opts.length;
  const h = [
    ...u16(o.sport), ...u16(o.dport), ...u32(o.seq ?? 1000), ...u32(o.ack ?? 0),
    ((o.dataOffset ?? hl / 4) << 4), o.flags, ...u16(o.win ?? 65535), 0, 0, 0, 0, ...opts,
  ];
  return cat(Uint8Array.from(h), payload);
}

export function udp(sport: number, dport: number, payload: Bytes = new Uint8Array(0), length?: number): Bytes {
  return cat(Uint8Array.from([...u16(sport), ...u16(dport), ...u16(length ?? 8 + payload.length), 0, 0]), payload);
}

export function icmp(type: number, code: number, payload: Bytes = new Uint8Array(4)): Bytes {
  return cat(Uint8Array.from([type, code, 0, 0]), payload);
}

export function gre(proto: number, payload: Bytes, flags = 0): Bytes {
  const extra: number[] = [];
  if (flags & 0x8000) extra.push(0, 0, 0, 0);
  if (flags & 0x2000) extra.push(0, 0, 0, 1);
  if (flags & 0x1000) extra.push(0, 0, 0, 2);
  return cat(Uint8Array.from([...u16(flags), ...u16(proto), ...extra]), payload);
}

export function vxlan(vni: number, innerFrame: Bytes): Bytes {
  return cat(Uint8Array.from([0x08, 0, 0, 0, ...u32(vni << 8)]), innerFrame);
}

export function geneve(protoType: number, inner: Bytes, optWords = 0): Bytes {
  return cat(Uint8Array.from([optWords & 0x3f, 0, ...u16(protoType), 0, 0, 1, 0, ...new Array(optWords * 4).fill(0)]), inner);
}

export function mpls(labels: number[], payload: Bytes): Bytes {
  const out: number[] = [];
  labels.forEach((l, i) => out.push(...u32((l << 12) | (i === labels.length - 1 ? 0x100 : 0) | 64)));
  return cat(Uint8Array.from(out), payload);
}

/** Linux cooked capture v1 header. */
export function sll(pktType: number, proto: number, payload: Bytes): Bytes {
  return cat(Uint8Array.from([...u16(pktType), 0, 1, 0, 6, ...MAC_A, 0, 0, ...u16(proto)]), payload);
}

/** Linux cooked capture v2 header. */
export function sll2(pktType: number, proto: number, ifindex: number, payload: Bytes): Bytes {
  return cat(Uint8Array.from([...u16(proto), 0, 0, ...u32(ifindex), 0, 1, pktType, 6, ...MAC_A, 0, 0]), payload);
}

/** BSD null/loopback header with the AF in the given byte order. */
export function bsdNull(af: number, payload: Bytes, littleEndian = true): Bytes {
  const h = littleEndian ? [af & 0xff, (af >> 8) & 0xff, 0, 0] : u32(af);
  return cat(Uint8Array.from(h), payload);
}

export function pppoe(pppProto: number, payload: Bytes): Bytes {
  return cat(Uint8Array.from([0x11, 0, 0, 1, ...u16(payload.length + 2), ...u16(pppProto)]), payload);
}

export function bytes(n: number, fill = 0x61): Uint8Array {
  return new Uint8Array(n).fill(fill);
}
