/**
 * Per-host totals for the summary's top hosts: an open-addressing table of
 * (version, address words) → packets, bytes, flows in typed arrays, so
 * hundreds of thousands of hosts cost no strings and no Map entries.
 *
 * A host is one 48-byte entry (key words and totals together) and the index
 * holds [entry + 1, hash] pairs, so adding to a host of a large table costs
 * about two cache misses: its index entry, then its entry.
 */
import { formatAddr } from '../parsers/addr.js';

/** Entry layout: u32 words 0-4 version + address, 5 unused; f64 words 3-5 packets, bytes, flows. */
const E_U32 = 12;
const E_F64 = 6;
const F_PKTS = 3;
const F_BYTES = 4;
const F_FLOWS = 5;

export class HostTable {
  private u32 = new Uint32Array(0);
  private f64 = new Float64Array(0);
  private index = new Uint32Array(0);
  private mask = 0;
  private cap = 0;
  count = 0;

  constructor(initial = 4096) {
    this.resize(initial);
  }

  private resize(cap: number): void {
    const buf = new ArrayBuffer(cap * E_U32 * 4);
    const u32 = new Uint32Array(buf);
    u32.set(this.u32);
    this.u32 = u32;
    this.f64 = new Float64Array(buf);
    this.cap = cap;
    this.index = new Uint32Array(cap * 4);
    this.mask = cap * 2 - 1;
    for (let e = 0; e < this.count; e++) this.insert(e, this.hash(u32[e * E_U32], u32, e * E_U32 + 1));
  }

  private hash(version: number, words: Uint32Array, o: number): number {
    let h = 0x9747b28c;
    h = Math.imul(h ^ version, 0x5bd1e995) ^ (h >>> 15);
    for (let i = 0; i < 4; i++) h = Math.imul(h ^ words[o + i], 0x5bd1e995) ^ (h >>> 15);
    return (h ^ (h >>> 13)) >>> 0;
  }

  private insert(e: number, h: number): void {
    const index = this.index;
    let i = h & this.mask;
    while (index[2 * i] !== 0) i = (i + 1) & this.mask;
    index[2 * i] = e + 1;
    index[2 * i + 1] = h;
  }

  /** Adds one flow's packets and bytes to the host whose address is words[o..o+3]. */
  add(version: number, words: Uint32Array, o: number, packets: number, bytes: number): void {
    const h = this.hash(version, words, o);
    const index = this.index;
    const u = this.u32;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const e1 = index[2 * i];
      if (e1 === 0) break;
      if (index[2 * i + 1] !== h) continue;
      const b = (e1 - 1) * E_U32;
      if (u[b] === version && u[b + 1] === words[o] && u[b + 2] === words[o + 1] && u[b + 3] === words[o + 2] && u[b + 4] === words[o + 3]) {
        const f = (e1 - 1) * E_F64;
        this.f64[f + F_PKTS] += packets;
        this.f64[f + F_BYTES] += bytes;
        this.f64[f + F_FLOWS]++;
        return;
      }
    }
    if (this.count * 2 >= this.cap) {
      this.resize(this.cap * 2);
      this.add(version, words, o, packets, bytes);
      return;
    }
    const e = this.count++;
    const b = e * E_U32;
    const uu = this.u32;
    uu[b] = version;
    for (let i = 0; i < 4; i++) uu[b + 1 + i] = words[o + i];
    const f = e * E_F64;
    this.f64[f + F_PKTS] = packets;
    this.f64[f + F_BYTES] = bytes;
    this.f64[f + F_FLOWS] = 1;
    this.insert(e, h);
  }

  private pkts(e: number): number {
    return this.f64[e * E_F64 + F_PKTS];
  }

  private bytes(e: number): number {
    return this.f64[e * E_F64 + F_BYTES];
  }

  /** The n hosts with the most bytes (ties: more packets first). */
  top(n: number): { host: string; packets: number; bytes: number; flows: number }[] {
    const best: number[] = [];
    for (let e = 0; e < this.count; e++) {
      if (best.length === n && this.bytes(e) <= this.bytes(best[n - 1])) continue;
      best.push(e);
      best.sort((x, y) => this.bytes(y) - this.bytes(x) || this.pkts(y) - this.pkts(x) || x - y);
      if (best.length > n) best.length = n;
    }
    return best.map((e) => ({
      host: formatAddr(this.u32[e * E_U32], this.u32, e * E_U32 + 1),
      packets: this.pkts(e),
      bytes: this.bytes(e),
      flows: this.f64[e * E_F64 + F_FLOWS],
    }));
  }
}
