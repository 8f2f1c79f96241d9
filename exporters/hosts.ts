/**
 * Per-host totals for the summary's top hosts: an open-addressing table of
 * (version, address words) → packets, bytes, flows in typed arrays, so
 * hundreds of thousands of hosts cost no strings and no Map entries.
 */
import { formatAddr } from '../parsers/addr.js';

const W = 5; // version + 4 address words

export class HostTable {
  private keys = new Uint32Array(0);
  private pkts = new Float64Array(0);
  private bytes = new Float64Array(0);
  private flows = new Float64Array(0);
  private index = new Int32Array(0);
  private mask = 0;
  count = 0;

  constructor(initial = 4096) {
    this.resize(initial);
  }

  private resize(cap: number): void {
    const keys = new Uint32Array(cap * W);
    keys.set(this.keys.subarray(0, this.count * W));
    const grow = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a.subarray(0, this.count));
      return b;
    };
    this.keys = keys;
    this.pkts = grow(this.pkts);
    this.bytes = grow(this.bytes);
    this.flows = grow(this.flows);
    this.index = new Int32Array(cap * 2);
    this.mask = cap * 2 - 1;
    for (let i = 0; i < this.count; i++) this.insert(i, this.hash(keys, i * W));
  }

  private hash(k: Uint32Array, o: number): number {
    let h = 0x9747b28c;
    for (let i = 0; i < W; i++) h = Math.imul(h ^ k[o + i], 0x5bd1e995) ^ (h >>> 15);
    return (h ^ (h >>> 13)) >>> 0;
  }

  private insert(e: number, h: number): void {
    let i = h & this.mask;
    while (this.index[i] !== 0) i = (i + 1) & this.mask;
    this.index[i] = e + 1;
  }

  /** Adds one flow's packets and bytes to the host whose address is words[o..o+3]. */
  add(version: number, words: Uint32Array, o: number, packets: number, bytes: number): void {
    const keys = this.keys;
    let h = 0x9747b28c;
    h = Math.imul(h ^ version, 0x5bd1e995) ^ (h >>> 15);
    for (let i = 0; i < 4; i++) h = Math.imul(h ^ words[o + i], 0x5bd1e995) ^ (h >>> 15);
    h = (h ^ (h >>> 13)) >>> 0;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const e = this.index[i] - 1;
      if (e < 0) break;
      const b = e * W;
      if (keys[b] === version && keys[b + 1] === words[o] && keys[b + 2] === words[o + 1] && keys[b + 3] === words[o + 2] && keys[b + 4] === words[o + 3]) {
        this.pkts[e] += packets;
        this.bytes[e] += bytes;
        this.flows[e]++;
        return;
      }
    }
    if (this.count * 2 >= this.keys.length / W) {
      this.resize((this.keys.length / W) * 2);
      this.add(version, words, o, packets, bytes);
      return;
    }
    const e = this.count++;
    const b = e * W;
    this.keys[b] = version;
    for (let i = 0; i < 4; i++) this.keys[b + 1 + i] = words[o + i];
    this.pkts[e] = packets;
    this.bytes[e] = bytes;
    this.flows[e] = 1;
    this.insert(e, h);
  }

  /** The n hosts with the most bytes (ties: more packets first). */
  top(n: number): { host: string; packets: number; bytes: number; flows: number }[] {
    const best: number[] = [];
    for (let e = 0; e < this.count; e++) {
      if (best.length === n && this.bytes[e] <= this.bytes[best[n - 1]]) continue;
      best.push(e);
      best.sort((x, y) => this.bytes[y] - this.bytes[x] || this.pkts[y] - this.pkts[x] || x - y);
      if (best.length > n) best.length = n;
    }
    return best.map((e) => ({ host: formatAddr(this.keys[e * W], this.keys, e * W + 1), packets: this.pkts[e], bytes: this.bytes[e], flows: this.flows[e] }));
  }
}
