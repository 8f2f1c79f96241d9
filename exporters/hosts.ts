/**
 * Top hosts by bytes for the summary, in bounded memory: a Space-Saving
 * style summary (Metwally, Agrawal and El Abbadi, "Efficient computation of
 * frequent and top-k elements in data streams", 2005) with weighted
 * updates and batched eviction, the kind of frequent-items summary
 * pktvisor's top-N tables rely on.
 *
 * The table holds at most `capacity` hosts (default 8192: about 640 KiB,
 * which stays in a core's L2 cache, so a flow's two host updates cost no
 * DRAM miss however many hosts the capture has). While no more distinct
 * hosts than that were seen, every count is exact (`exact`). When a new
 * host finds the table full, the half of the hosts with the smallest
 * upper bounds (bytes + error) leave it at once, and `floor` becomes the
 * largest upper bound that left. A host that enters later starts with
 * error = floor. Then:
 *  - a host not in the table has at most `floor` bytes, so every host with
 *    more than that is in the table (floor <= total bytes / (capacity / 2)
 *    over the whole run, and in practice far less);
 *  - a host's `bytes`, `packets` and `flows` count what it sent and received
 *    since it last entered the table (lower bounds, exact when its error is
 *    0), and its true bytes lie in [bytes, bytes + error].
 *
 * Layout: one 64-byte entry per host (key and totals together) and an
 * open-addressing index of [entry + 1, hash] pairs (load <= 1/2), rebuilt
 * after each eviction batch. Amortised cost per new host: a selection over
 * the keys and an index rebuild every capacity/2 new hosts.
 */
import { formatAddr } from '../parsers/addr.js';

/** Entry: u32 words 0-4 version + address; f64 words 3-6 packets, bytes, flows, error bytes. */
const E_U32 = 16;
const E_F64 = 8;
const F_PKTS = 3;
const F_BYTES = 4;
const F_FLOWS = 5;
const F_ERR = 6;
/** u32 words of an entry in use (through f64 word F_ERR). */
const E_USED = (F_ERR + 1) * 2;

export const DEFAULT_TOP_HOSTS_CAPACITY = 8192;

export interface TopHost {
  host: string;
  packets: number;
  bytes: number;
  flows: number;
  /** Present when the table overflowed and this host entered it after that: its true bytes are at most bytes + error_bytes. */
  error_bytes?: number;
}

export class HostTable {
  readonly capacity: number;
  private readonly u32: Uint32Array;
  private readonly f64: Float64Array;
  /** [entry + 1, hash] pairs, size a power of two >= 2 * capacity. */
  private readonly index: Uint32Array;
  private readonly mask: number;
  /** Scratch for the eviction threshold. */
  private readonly keys: Float64Array;
  private readonly scratch: Float64Array;
  count = 0;
  /** Largest upper bound (bytes + error) of a host that left the table; 0 while every count is exact. */
  floor = 0;
  /** Hosts that left the table. */
  evicted = 0;

  constructor(capacity = DEFAULT_TOP_HOSTS_CAPACITY) {
    this.capacity = Math.max(4, Math.floor(capacity));
    const buf = new ArrayBuffer(this.capacity * E_U32 * 4);
    this.u32 = new Uint32Array(buf);
    this.f64 = new Float64Array(buf);
    let size = 2;
    while (size < 2 * this.capacity) size *= 2;
    this.index = new Uint32Array(size * 2);
    this.mask = size - 1;
    this.keys = new Float64Array(this.capacity);
    this.scratch = new Float64Array(this.capacity);
  }

  /** True while no host ever left the table: every count is exact. */
  get exact(): boolean {
    return this.evicted === 0;
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
    const mask = this.mask;
    const u = this.u32;
    const f = this.f64;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e1 = index[2 * i];
      if (e1 === 0) break;
      if (index[2 * i + 1] !== h) continue;
      const b = (e1 - 1) * E_U32;
      if (u[b] === version && u[b + 1] === words[o] && u[b + 2] === words[o + 1] && u[b + 3] === words[o + 2] && u[b + 4] === words[o + 3]) {
        const fe = (e1 - 1) * E_F64;
        f[fe + F_PKTS] += packets;
        f[fe + F_BYTES] += bytes;
        f[fe + F_FLOWS]++;
        return;
      }
    }
    if (this.count === this.capacity) this.evictHalf();
    const e = this.count++;
    const b = e * E_U32;
    u[b] = version;
    u[b + 1] = words[o];
    u[b + 2] = words[o + 1];
    u[b + 3] = words[o + 2];
    u[b + 4] = words[o + 3];
    u[b + 5] = h;
    const fe = e * E_F64;
    f[fe + F_PKTS] = packets;
    f[fe + F_BYTES] = bytes;
    f[fe + F_FLOWS] = 1;
    f[fe + F_ERR] = this.floor;
    this.insert(e, h);
  }

  /** The table is full: the half of the hosts with the smallest upper bounds leaves it; the rest keep their order. */
  private evictHalf(): void {
    const n = this.count;
    const f = this.f64;
    const u = this.u32;
    const keys = this.keys;
    const scratch = this.scratch;
    for (let e = 0; e < n; e++) keys[e] = scratch[e] = f[e * E_F64 + F_BYTES] + f[e * E_F64 + F_ERR];
    const quota = n >> 1;
    const threshold = select(scratch, n, quota - 1);
    // Below the threshold all leave; at it, only as many as the quota still allows (first ones first).
    let below = 0;
    for (let e = 0; e < n; e++) if (keys[e] < threshold) below++;
    let atLeave = quota - below;
    let w = 0;
    for (let e = 0; e < n; e++) {
      const k = keys[e];
      if (k < threshold || (k === threshold && atLeave-- > 0)) continue;
      if (w !== e) for (let i = 0; i < E_USED; i++) u[w * E_U32 + i] = u[e * E_U32 + i];
      w++;
    }
    this.evicted += n - w;
    this.count = w;
    if (threshold > this.floor) this.floor = threshold;
    this.index.fill(0);
    for (let e = 0; e < w; e++) this.insert(e, u[e * E_U32 + 5]);
  }

  private pkts(e: number): number {
    return this.f64[e * E_F64 + F_PKTS];
  }

  private bytes(e: number): number {
    return this.f64[e * E_F64 + F_BYTES];
  }

  /** The n hosts with the most bytes counted (ties: more packets first, then the host that entered first). */
  top(n: number): TopHost[] {
    const best: number[] = [];
    for (let e = 0; e < this.count; e++) {
      if (best.length === n && this.bytes(e) <= this.bytes(best[n - 1])) continue;
      best.push(e);
      best.sort((x, y) => this.bytes(y) - this.bytes(x) || this.pkts(y) - this.pkts(x) || x - y);
      if (best.length > n) best.length = n;
    }
    return best.map((e) => {
      const err = this.f64[e * E_F64 + F_ERR];
      return {
        host: formatAddr(this.u32[e * E_U32], this.u32, e * E_U32 + 1),
        packets: this.pkts(e),
        bytes: this.bytes(e),
        flows: this.f64[e * E_F64 + F_FLOWS],
        ...(err > 0 ? { error_bytes: err } : {}),
      };
    });
  }
}

/** The value of rank r (0-based, ascending) among a[0..n): quickselect in place (a is scratch). */
export function select(a: Float64Array, n: number, r: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    // Median of three as the pivot.
    const mid = (lo + hi) >>> 1;
    let x = a[lo];
    let y = a[mid];
    let z = a[hi];
    if (x > y) { const t = x; x = y; y = t; }
    if (y > z) { y = z; }
    const pivot = x > y ? x : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i]; a[i] = a[j]; a[j] = t;
        i++;
        j--;
      }
    }
    if (r <= j) hi = j;
    else if (r >= i) lo = i;
    else return a[r];
  }
  return a[r];
}
