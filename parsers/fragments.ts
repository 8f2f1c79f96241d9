/**
 * Matches later IP fragments to the ports of their first fragment, so every
 * fragment of a datagram counts in the datagram's flow (flowtap does not
 * reassemble). A small fixed-size table keyed by (src, dst, protocol, IP id):
 * an entry is made by a first fragment (offset 0, more-fragments set),
 * found by the later ones, and removed by the last one (more-fragments
 * clear). Entries older than `maxAgeNs` of packet time are stale; when a
 * bucket's probe window is full the oldest entry in it is overwritten, so
 * memory is fixed whatever the traffic.
 *
 * A later fragment that arrives before its first fragment finds nothing and
 * is counted as `orphan_fragment` (in the totals, not in a flow).
 */

const PROBES = 8;
const KW = 10; // key words: src(4) dst(4) proto id

export class FragmentTable {
  readonly sport: Uint16Array;
  readonly dport: Uint16Array;
  private readonly keys: Uint32Array;
  private readonly time: Float64Array;
  private readonly used: Uint8Array;
  private readonly mask: number;
  /** Entries overwritten while still fresh (table pressure). */
  overwritten = 0;

  constructor(slots = 4096, private readonly maxAgeNs = 60e9) {
    let n = 16;
    while (n < slots) n <<= 1;
    this.mask = n - 1;
    this.sport = new Uint16Array(n);
    this.dport = new Uint16Array(n);
    this.keys = new Uint32Array(n * KW);
    this.time = new Float64Array(n);
    this.used = new Uint8Array(n);
  }

  private hash(addr: Uint32Array, proto: number, id: number): number {
    let h = Math.imul(proto ^ 0x9e3779b9, 0x85ebca6b) ^ id;
    for (let i = 0; i < 8; i++) h = Math.imul(h ^ addr[i], 0xcc9e2d51) + 0x1b873593;
    h ^= h >>> 15;
    return h & this.mask;
  }

  private match(e: number, addr: Uint32Array, proto: number, id: number): boolean {
    const k = this.keys;
    const b = e * KW;
    if (k[b + 8] !== proto || k[b + 9] !== id) return false;
    for (let i = 0; i < 8; i++) if (k[b + i] !== addr[i]) return false;
    return true;
  }

  /** Returns the entry index for this datagram, or -1. */
  find(addr: Uint32Array, proto: number, id: number, now: number): number {
    const h = this.hash(addr, proto, id);
    for (let i = 0; i < PROBES; i++) {
      const e = (h + i) & this.mask;
      if (this.used[e] && this.match(e, addr, proto, id)) {
        if (now - this.time[e] > this.maxAgeNs) {
          this.used[e] = 0;
          return -1;
        }
        this.time[e] = now;
        return e;
      }
    }
    return -1;
  }

  add(addr: Uint32Array, proto: number, id: number, sport: number, dport: number, now: number): void {
    const h = this.hash(addr, proto, id);
    let victim = -1;
    let oldest = Infinity;
    for (let i = 0; i < PROBES; i++) {
      const e = (h + i) & this.mask;
      if (!this.used[e] || this.match(e, addr, proto, id) || now - this.time[e] > this.maxAgeNs) {
        victim = e;
        break;
      }
      if (this.time[e] < oldest) {
        oldest = this.time[e];
        victim = e;
      }
    }
    if (this.used[victim] && !this.match(victim, addr, proto, id) && now - this.time[victim] <= this.maxAgeNs) this.overwritten++;
    const b = victim * KW;
    const k = this.keys;
    for (let i = 0; i < 8; i++) k[b + i] = addr[i];
    k[b + 8] = proto;
    k[b + 9] = id;
    this.sport[victim] = sport;
    this.dport[victim] = dport;
    this.time[victim] = now;
    this.used[victim] = 1;
  }

  remove(e: number): void {
    this.used[e] = 0;
  }
}
