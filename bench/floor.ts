/**
 * The floor: how fast this machine runs the simplest loop that still reads,
 * decodes and counts every packet in a bidirectional flow, on a given
 * capture. It is what the performance target of issue 3 was measured
 * against ("a plain typed-array decode+count loop"), run on our own
 * benchmark capture instead of a guess.
 *
 * Our reader and our decoder (the production ones), then a table with
 * nothing a flow monitor needs beyond counting: open addressing over
 * 64-byte records that hold the key inline (one record per flow, found by
 * its hash, no index in between), packets and bytes per flow, no deletion,
 * no timeouts, no TCP state, no direction, no output. Every real feature
 * costs on top of this, so `flowtap analyze` cannot beat it.
 *
 *   node dist/bench/floor.js FILE     prints {"packets", "flows", "seconds", "pps"}
 *
 * `npm run bench` runs it as the `floor` section.
 */
import { pathToFileURL } from 'node:url';
import { readCaptureFile } from '../agent/capture/file.js';
import type { InterfaceInfo, PacketSink } from '../agent/capture/types.js';
import { Decoder, type LayerSink } from '../parsers/decoder.js';
import type { Packet } from '../parsers/packet.js';
import { sourceIsA } from '../agent/flows/table.js';

/** Key words: addr A (4), addr B (4), ports (A << 16 | B), (vlan << 8) | proto, IP version (as the flow table's key). */
const KEY = 11;
/** u32 words per record: the key (word 10, the IP version, is 0 in an empty record), then packets and bytes as f64 (words 12-15). */
const REC = 16;
const VERSION = 10;
const F_PKTS = 6;
const F_BYTES = 7;

/** Hash of the key words w[o, o + KEY). */
function hashKey(w: Uint32Array, o: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < KEY; i++) {
    h = Math.imul(h ^ w[o + i], 0x01000193);
    h ^= h >>> 13;
  }
  return h;
}

/** The counting table: open addressing over inline records, load factor at most 1/2. */
export class FloorTable implements LayerSink {
  private u32: Uint32Array;
  private f64: Float64Array;
  private mask: number;
  flows = 0;
  private readonly key = new Uint32Array(KEY);

  constructor(bits = 16) {
    this.u32 = new Uint32Array(REC << bits);
    this.f64 = new Float64Array(this.u32.buffer);
    this.mask = (1 << bits) - 1;
  }

  layer(p: Packet): number {
    const a = p.addr;
    const k = this.key;
    const srcIsA = sourceIsA(p);
    const x = srcIsA ? 0 : 4;
    for (let i = 0; i < 4; i++) {
      k[i] = a[i + x];
      k[i + 4] = a[i + 4 - x];
    }
    k[8] = (srcIsA ? (p.sport << 16) | p.dport : (p.dport << 16) | p.sport) >>> 0;
    k[9] = ((p.vlan << 8) | p.proto) >>> 0;
    k[10] = p.ipVersion;
    const u = this.u32;
    const mask = this.mask;
    for (let i = hashKey(k, 0) & mask; ; i = (i + 1) & mask) {
      const b = i * REC;
      if (u[b + VERSION] === 0) {
        for (let j = 0; j < KEY; j++) u[b + j] = k[j];
        this.count(b, p);
        if (++this.flows > (mask + 1) >>> 1) this.grow();
        return 0;
      }
      if (u[b] === k[0] && u[b + 1] === k[1] && u[b + 2] === k[2] && u[b + 3] === k[3] && u[b + 4] === k[4] &&
        u[b + 5] === k[5] && u[b + 6] === k[6] && u[b + 7] === k[7] && u[b + 8] === k[8] && u[b + 9] === k[9] &&
        u[b + 10] === k[10]) {
        this.count(b, p);
        return 0;
      }
    }
  }

  private count(b: number, p: Packet): void {
    const f = (b >>> 1);
    this.f64[f + F_PKTS]++;
    this.f64[f + F_BYTES] += p.wirelen;
  }

  /** Doubles the table (rehashing every record). */
  private grow(): void {
    const old = this.u32;
    const size = (this.mask + 1) * 2;
    this.u32 = new Uint32Array(REC * size);
    this.f64 = new Float64Array(this.u32.buffer);
    this.mask = size - 1;
    const u = this.u32;
    for (let b = 0; b < old.length; b += REC) {
      if (old[b + VERSION] === 0) continue;
      let i = hashKey(old, b) & this.mask;
      while (u[i * REC + VERSION] !== 0) i = (i + 1) & this.mask;
      u.set(old.subarray(b, b + REC), i * REC);
    }
  }

  nonIp(): void {}

  /** Packets and bytes summed over every flow (what the tests check against the input). */
  totals(): { packets: number; bytes: number } {
    let packets = 0;
    let bytes = 0;
    for (let b = 0; b < this.u32.length; b += REC) {
      if (this.u32[b + VERSION] === 0) continue;
      packets += this.f64[(b >>> 1) + F_PKTS];
      bytes += this.f64[(b >>> 1) + F_BYTES];
    }
    return { packets, bytes };
  }
}

/** Reader → decoder → a LayerSink (the floor's FloorTable; the tests' reference). */
export class DecodingSink implements PacketSink {
  private readonly decoder: Decoder;
  private readonly linktypes: number[] = [];
  private readonly fcs: number[] = [];

  constructor(layers: LayerSink) {
    this.decoder = new Decoder(layers);
  }

  addInterface(info: InterfaceInfo): number {
    this.linktypes.push(info.linktype);
    this.fcs.push(info.fcsBytes);
    return this.linktypes.length - 1;
  }

  packet(buf: Uint8Array, off: number, caplen: number, wirelen: number, tsSec: number, tsNsec: number, ifIndex: number): void {
    this.decoder.decode(buf, off, caplen, wirelen, this.linktypes[ifIndex], this.fcs[ifIndex], ifIndex, tsSec * 1e9 + tsNsec);
  }

  flush(): void {}
}

/** Runs the floor loop over `path` once. */
export async function benchFloor(path: string): Promise<{ packets: number; flows: number; seconds: number; pps: number }> {
  const table = new FloorTable();
  const t0 = performance.now();
  const r = await readCaptureFile(path, new DecodingSink(table));
  const seconds = (performance.now() - t0) / 1000;
  if (r.error) throw r.error;
  return { packets: r.packets, flows: table.flows, seconds, pps: r.packets / seconds };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write('usage: node dist/bench/floor.js FILE\n');
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(await benchFloor(path)) + '\n');
}
