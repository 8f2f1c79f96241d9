/**
 * Capture file writers for tests: build classic pcap and pcapng files in
 * memory from a list of packets.
 *
 *   const buf = pcapFile([{ sec: 1700000000, nsec: 5000, data: frame }], { linktype: 1 });
 *   const ng = pcapngFile([{ interfaces: [{ linktype: 1, name: 'eth0' }],
 *                            blocks: [{ kind: 'epb', iface: 0, packet: p }] }]);
 *
 * The writers never validate: a packet longer than the snaplen, a block on
 * an undeclared interface, etc. are written as asked, so tests can build
 * damaged files. Cut or patch the returned Buffer for other damage.
 */

/** One packet record. */
export interface Packet {
  /** Seconds since the epoch. */
  sec: number;
  /** Nanoseconds within the second (written as µs, floored, in µs files). */
  nsec: number;
  /** Captured bytes (the record's caplen is data.length). */
  data: Uint8Array;
  /** Length on the wire; default data.length. */
  origLen?: number;
}

export interface PcapOptions {
  /** Raw 32-bit link-type header field (LINKTYPE, plus FCS bits if wanted); default 1 (Ethernet). */
  linktype?: number;
  /** Snapshot length in the header; default 262144. */
  snaplen?: number;
  /** Nanosecond magic (a1b23c4d) instead of microsecond (a1b2c3d4). */
  nanos?: boolean;
  /** Big-endian file; default little-endian. */
  bigEndian?: boolean;
  /** [major, minor]; default [2, 4]. */
  version?: [number, number];
}

/** A classic pcap file holding `packets`. */
export function pcapFile(packets: readonly Packet[], opts: PcapOptions = {}): Buffer {
  const le = !opts.bigEndian;
  const [major, minor] = opts.version ?? [2, 4];
  let size = 24;
  for (const p of packets) size += 16 + p.data.length;
  const b = Buffer.alloc(size);
  const w32 = (v: number, at: number) => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at));
  const w16 = (v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  w32(opts.nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(major, 4);
  w16(minor, 6);
  w32(0, 8); // thiszone
  w32(0, 12); // sigfigs
  w32(opts.snaplen ?? 262144, 16);
  w32(opts.linktype ?? 1, 20);
  let at = 24;
  for (const p of packets) {
    w32(p.sec, at);
    w32(opts.nanos ? p.nsec : Math.floor(p.nsec / 1000), at + 4);
    w32(p.data.length, at + 8);
    w32(p.origLen ?? p.data.length, at + 12);
    b.set(p.data, at + 16);
    at += 16 + p.data.length;
  }
  return b;
}

export interface PcapngInterface {
  /** LINKTYPE; default 1. */
  linktype?: number;
  /** Default 0 (no limit). */
  snaplen?: number;
  /** if_name option. */
  name?: string;
  /**
   * if_tsresol option byte: n = 10^-n s, 0x80|n = 2^-n s. Omitted = default
   * µs (6) and no option written.
   */
  tsresol?: number;
  /** if_tsoffset option (seconds added to every timestamp); the writer subtracts it. */
  tsoffset?: number;
  /** if_fcslen option. */
  fcslen?: number;
}

/** A block of a section, after its interface description blocks. */
export type PcapngBlock =
  /** Enhanced Packet Block; `ts` overrides the timestamp with raw units of the interface resolution. */
  | { kind: 'epb'; iface: number; packet: Packet; ts?: bigint }
  /** Simple Packet Block (interface 0, no timestamp: packet.sec/nsec are ignored). */
  | { kind: 'spb'; packet: Packet }
  /** Obsolete Packet Block (type 2). */
  | { kind: 'pb'; iface: number; packet: Packet; ts?: bigint }
  /** Any other block, written as type + body (padded to 4): custom 0xBAD / 0x40000BAD, NRB 4, ISB 5, DSB 10, ... */
  | { kind: 'raw'; type: number; body?: Uint8Array };

export interface PcapngSection {
  /** Big-endian section; default little-endian. */
  bigEndian?: boolean;
  /** Declared (as IDBs) right after the section header, ids 0.. in this order. */
  interfaces: PcapngInterface[];
  blocks: PcapngBlock[];
}

/** A pcapng file with the given sections. */
export function pcapngFile(sections: readonly PcapngSection[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of sections) {
    const le = !s.bigEndian;
    // Section Header Block: magic, version 1.0, section length -1, no options.
    const shb = Buffer.alloc(16);
    u32(shb, 0, 0x1a2b3c4d, le);
    u16(shb, 4, 1, le);
    u16(shb, 6, 0, le);
    u32(shb, 8, 0xffffffff, le);
    u32(shb, 12, 0xffffffff, le);
    parts.push(block(0x0a0d0d0a, shb, le));
    for (const i of s.interfaces) parts.push(idb(i, le));
    for (const blk of s.blocks) {
      if (blk.kind === 'raw') {
        parts.push(block(blk.type, blk.body ?? Buffer.alloc(0), le));
        continue;
      }
      const p = blk.packet;
      const orig = p.origLen ?? p.data.length;
      if (blk.kind === 'spb') {
        const body = Buffer.alloc(4 + pad4(p.data.length));
        u32(body, 0, orig, le);
        body.set(p.data, 4);
        parts.push(block(3, body, le));
        continue;
      }
      const iface = s.interfaces[blk.iface] ?? {};
      const t = blk.ts ?? toUnits(p, iface);
      const body = Buffer.alloc(20 + pad4(p.data.length));
      if (blk.kind === 'epb') {
        u32(body, 0, blk.iface, le);
      } else {
        u16(body, 0, blk.iface, le);
        u16(body, 2, 0, le); // drops
      }
      u32(body, 4, Number(t >> 32n), le);
      u32(body, 8, Number(t & 0xffffffffn), le);
      u32(body, 12, p.data.length, le);
      u32(body, 16, orig, le);
      body.set(p.data, 20);
      parts.push(block(blk.kind === 'epb' ? 6 : 2, body, le));
    }
  }
  return Buffer.concat(parts);
}

/** Timestamp of `p` in units of the interface's resolution, minus its offset (BigInt: exact). */
function toUnits(p: Packet, i: PcapngInterface): bigint {
  const r = i.tsresol ?? 6;
  const units = r & 0x80 ? 1n << BigInt(r & 0x7f) : 10n ** BigInt(r);
  const sec = BigInt(p.sec - (i.tsoffset ?? 0));
  const t = sec * units + (BigInt(p.nsec) * units) / 1_000_000_000n;
  if (t < 0n || t >= 1n << 64n) throw new RangeError(`timestamp ${p.sec}.${p.nsec} does not fit the interface resolution`);
  return t;
}

function idb(i: PcapngInterface, le: boolean): Buffer {
  const opts: Buffer[] = [];
  const opt = (code: number, value: Uint8Array) => {
    const o = Buffer.alloc(4 + pad4(value.length));
    u16(o, 0, code, le);
    u16(o, 2, value.length, le);
    o.set(value, 4);
    opts.push(o);
  };
  if (i.name !== undefined) opt(2, Buffer.from(i.name, 'utf8'));
  if (i.tsresol !== undefined) opt(9, Buffer.from([i.tsresol]));
  if (i.fcslen !== undefined) opt(13, Buffer.from([i.fcslen]));
  if (i.tsoffset !== undefined) {
    const v = Buffer.alloc(8);
    if (le) v.writeBigInt64LE(BigInt(i.tsoffset));
    else v.writeBigInt64BE(BigInt(i.tsoffset));
    opt(14, v);
  }
  if (opts.length > 0) opts.push(Buffer.alloc(4)); // opt_endofopt
  const head = Buffer.alloc(8);
  u16(head, 0, i.linktype ?? 1, le);
  u32(head, 4, i.snaplen ?? 0, le);
  return block(1, Buffer.concat([head, ...opts]), le);
}

/** type | total length | body (padded) | total length */
function block(type: number, body: Uint8Array, le: boolean): Buffer {
  const len = 12 + pad4(body.length);
  const b = Buffer.alloc(len);
  u32(b, 0, type, le);
  u32(b, 4, len, le);
  b.set(body, 8);
  u32(b, len - 4, len, le);
  return b;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function u32(b: Buffer, at: number, v: number, le: boolean): void {
  if (le) b.writeUInt32LE(v >>> 0, at);
  else b.writeUInt32BE(v >>> 0, at);
}

function u16(b: Buffer, at: number, v: number, le: boolean): void {
  if (le) b.writeUInt16LE(v, at);
  else b.writeUInt16BE(v, at);
}
