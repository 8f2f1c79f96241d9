/**
 * The flow table: bidirectional flows keyed by (IP version, protocol, VLAN
 * ids, the two address/port endpoints in canonical order), kept in
 * struct-of-arrays typed arrays indexed by a slot number, found through an
 * open-addressing hash index (linear probing, backward-shift deletion, no
 * tombstones). Nothing is allocated per packet.
 *
 * Lifetime runs on packet time only:
 *  - every slot sits in one of six idle lists (TCP attempt / established /
 *    closed, UDP, ICMP, other IP), each in order of last activity, so the
 *    head of a list is the next to time out;
 *  - every slot also sits in the active-timeout FIFO, ordered by the time
 *    of its last report; a flow older than the active timeout is reported
 *    with `final: false` and goes on counting;
 *  - when `maxFlows` are live, the least recently active flow is evicted.
 *
 * Memory: see `BYTES_PER_FLOW` below (plus the TCP tracker's own).
 */
import type { LayerSink } from '../../parsers/decoder.js';
import { Packet, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP } from '../../parsers/packet.js';
import { TcpTracker } from './tcp.js';

/** Key words per slot: addr A (4), addr B (4), ports (A<<16|B), (vlan<<8)|proto, IP version. */
export const KEY_WORDS = 11;

export const CLS_TCP_ATTEMPT = 0;
export const CLS_TCP_ESTABLISHED = 1;
export const CLS_TCP_CLOSED = 2;
export const CLS_UDP = 3;
export const CLS_ICMP = 4;
export const CLS_OTHER = 5;
const N_CLASSES = 6;

/** Why a flow record is written. */
export const END_IDLE = 0;
export const END_ACTIVE = 1;
export const END_PRESSURE = 2;
export const END_EOF = 3;
export const END_REUSE = 4;
export const END_REASONS = ['idle', 'active', 'pressure', 'end', 'reuse'] as const;

export interface FlowTimeouts {
  /** Idle timeouts in seconds. */
  tcpEstablished: number;
  tcpClosed: number;
  tcpAttempt: number;
  udp: number;
  icmp: number;
  other: number;
  /** Active timeout in seconds (interim record for long flows); 0 disables. */
  active: number;
}

export const DEFAULT_TIMEOUTS: Readonly<FlowTimeouts> = Object.freeze({
  tcpEstablished: 300,
  tcpClosed: 5,
  tcpAttempt: 30,
  udp: 60,
  icmp: 60,
  other: 60,
  active: 300,
});

export const DEFAULT_MAX_FLOWS = 1_000_000;

export interface FlowTableOptions {
  maxFlows?: number;
  initialCapacity?: number;
  timeouts?: Partial<FlowTimeouts>;
}

/**
 * Called when a flow record is due. The slot's data is valid during the
 * call; after a final report the slot is reused.
 */
export type FlowReporter = (table: FlowTable, slot: number, reason: number, final: boolean) => void;

export class FlowTable implements LayerSink {
  readonly maxFlows: number;
  capacity: number;
  /** Live flows. */
  count = 0;
  /** Current packet time (ns on the pipeline's clock); set by the caller before each packet. */
  now = 0;
  /** Highest packet time seen: the clock that drives the sweeps. */
  clock = -Infinity;

  // ---- per-slot state (struct of arrays) ----
  keys!: Uint32Array;
  hashes!: Uint32Array;
  /** 1 when endpoint A (the lower one of the canonical key) is the originator. */
  origIsA!: Uint8Array;
  cls!: Uint8Array;
  depth!: Uint8Array;
  ifIndex!: Uint16Array;
  /** Linux SLL packet types seen, per direction: bit (1 << type). */
  sllSeen!: Uint8Array;
  tFirst!: Float64Array;
  tLast!: Float64Array;
  tReport!: Float64Array;
  /** Per direction [2*slot] = orig, [2*slot+1] = resp. */
  pkts!: Float64Array;
  ipBytes!: Float64Array;
  wireBytes!: Float64Array;
  payloadBytes!: Float64Array;
  /** Flow ids: unique per run, in order of creation (the uid is derived from it). */
  flowId!: Float64Array;
  /** Flow id of the tunnel flow carrying this one, or -1. */
  parentId!: Float64Array;
  private prev!: Int32Array;
  private next!: Int32Array;
  private aprev!: Int32Array;
  private anext!: Int32Array;
  private index!: Int32Array;
  private indexMask = 0;
  private free!: Int32Array;
  private freeTop = 0;

  private readonly head = new Int32Array(N_CLASSES).fill(-1);
  private readonly tail = new Int32Array(N_CLASSES).fill(-1);
  private ahead = -1;
  private atail = -1;
  private readonly idleNs = new Float64Array(N_CLASSES);
  private readonly activeNs: number;
  private nextSweep = -Infinity;
  private nextId = 0;

  readonly tcp: TcpTracker;
  /** Scratch key of the current packet. */
  private readonly key = new Uint32Array(KEY_WORDS);

  // ---- counters ----
  /** Flows started, by class of their first packet. */
  flowsStarted = 0;
  /** Reports written, by END_* reason. */
  readonly ends = new Float64Array(END_REASONS.length);

  onReport: FlowReporter = () => {};

  constructor(opts: FlowTableOptions = {}) {
    this.maxFlows = Math.max(1, Math.floor(opts.maxFlows ?? DEFAULT_MAX_FLOWS));
    const t = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.idleNs[CLS_TCP_ATTEMPT] = t.tcpAttempt * 1e9;
    this.idleNs[CLS_TCP_ESTABLISHED] = t.tcpEstablished * 1e9;
    this.idleNs[CLS_TCP_CLOSED] = t.tcpClosed * 1e9;
    this.idleNs[CLS_UDP] = t.udp * 1e9;
    this.idleNs[CLS_ICMP] = t.icmp * 1e9;
    this.idleNs[CLS_OTHER] = t.other * 1e9;
    this.activeNs = t.active > 0 ? t.active * 1e9 : Infinity;
    const cap = Math.min(this.maxFlows, Math.max(16, opts.initialCapacity ?? 65536));
    this.capacity = 0;
    this.tcp = new TcpTracker(cap);
    this.allocate(cap);
  }

  /** (Re)allocates every per-slot array for `cap` slots, keeping the first `this.capacity`. */
  private allocate(cap: number): void {
    const old = this.capacity;
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(a: T | undefined, ctor: new (n: number) => T, per: number): T => {
      const b = new ctor(cap * per);
      if (a) b.set(a.subarray(0, old * per));
      return b;
    };
    this.keys = grow(this.keys, Uint32Array, KEY_WORDS);
    this.hashes = grow(this.hashes, Uint32Array, 1);
    this.origIsA = grow(this.origIsA, Uint8Array, 1);
    this.cls = grow(this.cls, Uint8Array, 1);
    this.depth = grow(this.depth, Uint8Array, 1);
    this.ifIndex = grow(this.ifIndex, Uint16Array, 1);
    this.sllSeen = grow(this.sllSeen, Uint8Array, 2);
    this.tFirst = grow(this.tFirst, Float64Array, 1);
    this.tLast = grow(this.tLast, Float64Array, 1);
    this.tReport = grow(this.tReport, Float64Array, 1);
    this.pkts = grow(this.pkts, Float64Array, 2);
    this.ipBytes = grow(this.ipBytes, Float64Array, 2);
    this.wireBytes = grow(this.wireBytes, Float64Array, 2);
    this.payloadBytes = grow(this.payloadBytes, Float64Array, 2);
    this.flowId = grow(this.flowId, Float64Array, 1);
    this.parentId = grow(this.parentId, Float64Array, 1);
    this.prev = grow(this.prev, Int32Array, 1);
    this.next = grow(this.next, Int32Array, 1);
    this.aprev = grow(this.aprev, Int32Array, 1);
    this.anext = grow(this.anext, Int32Array, 1);
    // Free slots: the new ones, lowest first on top.
    const free = new Int32Array(cap);
    let top = 0;
    if (this.free) {
      free.set(this.free.subarray(0, this.freeTop));
      top = this.freeTop;
    }
    // Put new slots below the existing free ones so reuse order stays deterministic.
    const added = cap - old;
    free.copyWithin(added, 0, top);
    for (let i = 0; i < added; i++) free[i] = cap - 1 - i;
    this.free = free;
    this.freeTop = top + added;
    if (old > 0) this.tcp.grow(cap);
    this.capacity = cap;
    // Index: a power of two at least twice the capacity (load factor <= 0.5).
    let size = 16;
    while (size < cap * 2) size <<= 1;
    if (size - 1 !== this.indexMask) {
      this.index = new Int32Array(size);
      this.indexMask = size - 1;
      for (let c = 0; c < N_CLASSES; c++) {
        for (let s = this.head[c]; s !== -1; s = this.next[s]) this.indexInsert(s);
      }
    }
  }

  /** Bytes of table memory per flow slot, measured from the arrays (index at its current size). */
  bytesPerSlot(): number {
    const arrays = [this.keys, this.hashes, this.origIsA, this.cls, this.depth, this.ifIndex, this.sllSeen, this.tFirst, this.tLast,
      this.tReport, this.pkts, this.ipBytes, this.wireBytes, this.payloadBytes, this.flowId, this.parentId,
      this.prev, this.next, this.aprev, this.anext, this.free];
    let bytes = this.index.byteLength;
    for (const a of arrays) bytes += a.byteLength;
    return bytes / this.capacity + this.tcp.bytesPerSlot();
  }

  // ---------------------------------------------------------------- hashing

  private hashKey(k: Uint32Array): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < KEY_WORDS; i++) {
      h = Math.imul(h ^ k[i], 0x01000193);
      h ^= h >>> 13;
    }
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h ^= h >>> 13;
    return h >>> 0;
  }

  private find(h: number): number {
    const index = this.index;
    const mask = this.indexMask;
    const keys = this.keys;
    const k = this.key;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = index[i];
      if (e === 0) return -1;
      const s = e - 1;
      if (this.hashes[s] !== h) continue;
      const b = s * KEY_WORDS;
      if (keys[b] === k[0] && keys[b + 1] === k[1] && keys[b + 2] === k[2] && keys[b + 3] === k[3] &&
        keys[b + 4] === k[4] && keys[b + 5] === k[5] && keys[b + 6] === k[6] && keys[b + 7] === k[7] &&
        keys[b + 8] === k[8] && keys[b + 9] === k[9] && keys[b + 10] === k[10]) return s;
    }
  }

  private indexInsert(s: number): void {
    const index = this.index;
    const mask = this.indexMask;
    let i = this.hashes[s] & mask;
    while (index[i] !== 0) i = (i + 1) & mask;
    index[i] = s + 1;
  }

  private indexRemove(s: number): void {
    const index = this.index;
    const mask = this.indexMask;
    let i = this.hashes[s] & mask;
    while (index[i] !== s + 1) i = (i + 1) & mask;
    // Backward-shift deletion keeps every probe chain unbroken.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const e = index[j];
      if (e === 0) break;
      const home = this.hashes[e - 1] & mask;
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (!between) {
        index[i] = e;
        i = j;
      }
    }
    index[i] = 0;
  }

  // ---------------------------------------------------------------- lists

  private unlink(s: number): void {
    const c = this.cls[s];
    const p = this.prev[s];
    const n = this.next[s];
    if (p === -1) this.head[c] = n;
    else this.next[p] = n;
    if (n === -1) this.tail[c] = p;
    else this.prev[n] = p;
  }

  private append(s: number, c: number): void {
    this.cls[s] = c;
    const t = this.tail[c];
    this.prev[s] = t;
    this.next[s] = -1;
    if (t === -1) this.head[c] = s;
    else this.next[t] = s;
    this.tail[c] = s;
  }

  private activeUnlink(s: number): void {
    const p = this.aprev[s];
    const n = this.anext[s];
    if (p === -1) this.ahead = n;
    else this.anext[p] = n;
    if (n === -1) this.atail = p;
    else this.aprev[n] = p;
  }

  private activeAppend(s: number): void {
    const t = this.atail;
    this.aprev[s] = t;
    this.anext[s] = -1;
    if (t === -1) this.ahead = s;
    else this.anext[t] = s;
    this.atail = s;
  }

  // ---------------------------------------------------------------- per packet

  nonIp(_ethertype: number): void {}

  /** Counts one transport layer of the current packet (LayerSink). Returns the flow id. */
  layer(p: Packet): number {
    const a = p.addr;
    const k = this.key;
    // Canonical order: the lower (address, port) endpoint is A.
    let srcIsA = true;
    for (let i = 0; i < 4; i++) {
      if (a[i] !== a[i + 4]) {
        srcIsA = a[i] < a[i + 4];
        break;
      }
      if (i === 3) srcIsA = p.sport <= p.dport;
    }
    if (srcIsA) {
      k[0] = a[0]; k[1] = a[1]; k[2] = a[2]; k[3] = a[3];
      k[4] = a[4]; k[5] = a[5]; k[6] = a[6]; k[7] = a[7];
      k[8] = ((p.sport << 16) | p.dport) >>> 0;
    } else {
      k[0] = a[4]; k[1] = a[5]; k[2] = a[6]; k[3] = a[7];
      k[4] = a[0]; k[5] = a[1]; k[6] = a[2]; k[7] = a[3];
      k[8] = ((p.dport << 16) | p.sport) >>> 0;
    }
    k[9] = ((p.vlan << 8) | p.proto) >>> 0;
    k[10] = p.ipVersion;
    const h = this.hashKey(k);
    const now = this.now;
    let s = this.find(h);
    if (s >= 0) {
      if (now - this.tLast[s] > this.idleNs[this.cls[s]]) {
        this.end(s, END_IDLE);
        s = -1;
      } else if (p.proto === PROTO_TCP && p.hasL4 && (p.tcpFlags & 0x12) === 0x02 &&
        this.tcp.isNewConnection(s, (this.origIsA[s] === 1) === srcIsA, p.tcpFlags, p.seq)) {
        this.end(s, END_REUSE);
        s = -1;
      }
    }
    if (s < 0) s = this.create(h, p, srcIsA);
    const fromOrig = (this.origIsA[s] === 1) === srcIsA;
    const d = 2 * s + (fromOrig ? 0 : 1);
    this.pkts[d]++;
    this.ipBytes[d] += p.ipLen;
    this.wireBytes[d] += p.wirelen;
    this.payloadBytes[d] += p.payloadLen;
    if (p.sllType >= 0) this.sllSeen[d] |= 1 << (p.sllType & 7);
    if (now > this.tLast[s]) this.tLast[s] = now;
    else if (now < this.tFirst[s]) this.tFirst[s] = now;
    let c = this.cls[s];
    if (p.proto === PROTO_TCP) {
      if (p.hasL4) {
        this.tcp.segment(s, fromOrig, p.tcpFlags, p.seq, p.ack, p.win, p.payloadLen, now, p.buf, p.optOff, p.optLen);
        c = this.tcp.phase(s);
      }
    }
    // Move to the tail of its idle list (possibly a new class).
    if (this.tail[c] !== s) {
      this.unlink(s);
      this.append(s, c);
    }
    return this.flowId[s];
  }

  private create(h: number, p: Packet, srcIsA: boolean): number {
    if (this.count >= this.capacity) {
      if (this.capacity < this.maxFlows) this.allocate(Math.min(this.maxFlows, this.capacity * 2));
      else this.evictOldest();
    }
    const s = this.free[--this.freeTop];
    this.count++;
    this.flowsStarted++;
    this.hashes[s] = h;
    const b = s * KEY_WORDS;
    const k = this.key;
    for (let i = 0; i < KEY_WORDS; i++) this.keys[b + i] = k[i];
    this.indexInsert(s);
    // The originator sends the first packet, except that a SYN-ACK seen first names the other side.
    const synAck = p.proto === PROTO_TCP && p.hasL4 && (p.tcpFlags & 0x12) === 0x12;
    this.origIsA[s] = srcIsA !== synAck ? 1 : 0;
    this.depth[s] = p.depth;
    this.ifIndex[s] = p.ifIndex;
    this.tFirst[s] = this.now;
    this.tLast[s] = this.now;
    this.tReport[s] = this.now;
    const d = 2 * s;
    this.pkts[d] = 0; this.pkts[d + 1] = 0;
    this.ipBytes[d] = 0; this.ipBytes[d + 1] = 0;
    this.wireBytes[d] = 0; this.wireBytes[d + 1] = 0;
    this.payloadBytes[d] = 0; this.payloadBytes[d + 1] = 0;
    this.sllSeen[d] = 0; this.sllSeen[d + 1] = 0;
    this.flowId[s] = this.nextId++;
    this.parentId[s] = p.parent;
    let c: number;
    switch (p.proto) {
      case PROTO_TCP:
        this.tcp.reset(s);
        c = CLS_TCP_ATTEMPT;
        break;
      case PROTO_UDP:
        c = CLS_UDP;
        break;
      case PROTO_ICMP:
      case PROTO_ICMPV6:
        c = CLS_ICMP;
        break;
      default:
        c = CLS_OTHER;
    }
    this.append(s, c);
    this.activeAppend(s);
    return s;
  }

  /** Reports a flow as ended and frees its slot. */
  private end(s: number, reason: number): void {
    this.ends[reason]++;
    this.onReport(this, s, reason, true);
    this.unlink(s);
    this.activeUnlink(s);
    this.indexRemove(s);
    this.free[this.freeTop++] = s;
    this.count--;
  }

  private evictOldest(): void {
    let best = -1;
    for (let c = 0; c < N_CLASSES; c++) {
      const s = this.head[c];
      if (s !== -1 && (best === -1 || this.tLast[s] < this.tLast[best])) best = s;
    }
    if (best !== -1) this.end(best, END_PRESSURE);
  }

  /**
   * Advances the clock to `t` (ns) and ends flows whose idle timeout passed,
   * and reports flows whose active timeout passed. Cheap when nothing is due:
   * the full check runs at most once per 100 ms of packet time.
   */
  advance(t: number): void {
    this.now = t;
    if (t <= this.clock) return;
    this.clock = t;
    if (t < this.nextSweep) return;
    this.nextSweep = t + 1e8;
    this.sweep(t);
  }

  private sweep(t: number): void {
    for (let c = 0; c < N_CLASSES; c++) {
      const limit = t - this.idleNs[c];
      for (let s = this.head[c]; s !== -1 && this.tLast[s] < limit; s = this.head[c]) this.end(s, END_IDLE);
    }
    const alimit = t - this.activeNs;
    for (let s = this.ahead; s !== -1 && this.tReport[s] <= alimit; s = this.ahead) {
      this.ends[END_ACTIVE]++;
      this.onReport(this, s, END_ACTIVE, false);
      this.tReport[s] = t;
      this.activeUnlink(s);
      this.activeAppend(s);
    }
  }

  /** Ends every live flow (end of input), in order of their first packet. */
  flush(): void {
    const live: number[] = [];
    for (let c = 0; c < N_CLASSES; c++) for (let s = this.head[c]; s !== -1; s = this.next[s]) live.push(s);
    live.sort((x, y) => this.tFirst[x] - this.tFirst[y] || this.flowId[x] - this.flowId[y]);
    for (const s of live) this.end(s, END_EOF);
  }

  /** Visits every live flow (for metrics); do not modify the table from `fn`. */
  forEachLive(fn: (slot: number) => void): void {
    for (let c = 0; c < N_CLASSES; c++) for (let s = this.head[c]; s !== -1; s = this.next[s]) fn(s);
  }
}
