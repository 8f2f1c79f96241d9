/**
 * The flow table: bidirectional flows keyed by (IP version, protocol, VLAN
 * ids, the two address/port endpoints in canonical order). Nothing is
 * allocated per packet.
 *
 * Layout, chosen for the memory system: a packet of a random flow among
 * hundreds of thousands costs cache misses, not instructions, so a packet
 * touches only
 *  - one entry of the open-addressing index ([slot + 1, hash] pairs, linear
 *    probing, backward-shift deletion, load factor <= 5/8), and
 *  - its flow's record: one 128-byte block (two or three cache lines,
 *    depending on where the allocator placed the buffer) holding the key,
 *    the TCP record number, the meta bits, the last time and the counters,
 *    read through a Uint32Array and a Float64Array over the same buffer,
 * plus the TCP tracker's record for TCP. What a flow needs only when it
 * starts or is reported (first time, last report, flow id, tunnel parent)
 * lives in `cold`, 32 bytes per slot. Forwarded-copy detection has a cache
 * of its own (COPY_BITS), allocated only for inputs that can hold copies.
 *
 * Memory grows with the live flows: the table starts at 64 Ki slots and
 * grows by an eighth (growth.ts), so a large table is at least 8/9 full
 * after a growth step.
 *
 * Lifetime runs on packet time only, through a timing wheel (4096 buckets of
 * 250 ms): each flow sits in the bucket of its earliest possible deadline
 * (idle timeout of its class, or active timeout). Packets never touch the
 * wheel; when a bucket comes due its flows are checked against their real
 * deadlines and either ended, reported (active timeout) or moved to the
 * bucket of their new deadline. A flow whose class gets a shorter timeout
 * (a TCP connection closing) is moved at once. A packet arriving after its
 * flow's idle timeout but before the sweep still starts a new flow: the
 * lookup checks the deadline itself, so flow boundaries are exact and the
 * wheel only decides when records are written (at most 250 ms late).
 *
 * When `maxFlows` flows are live, the flow nearest to its idle deadline is
 * evicted (for flows of one class that is the least recently active one).
 */
import type { LayerSink } from '../../parsers/decoder.js';
import { Packet, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP } from '../../parsers/packet.js';
import { BYTES_PER_SLOT as TCP_RECORD_BYTES, TcpTracker } from './tcp.js';
import { LocalNets, isLoopback } from './localnets.js';
import { growChunks, nextCapacity, releaseGarbage } from './growth.js';

export { nextCapacity };

/** Key words: addr A (4), addr B (4), ports (A << 16 | B), (vlan << 8) | proto, IP version. */
export const KEY_WORDS = 11;

// ---- record layout: 128 bytes = 32 u32 = 16 f64: exactly two cache lines, all of it what a packet reads or updates ----
export const REC_BYTES = 128;
export const REC_U32 = REC_BYTES >> 2;
export const REC_F64 = REC_BYTES >> 3;
// u32 words (0..10 are the key)
/** TCP flows: the TCP tracker's record number (reset() returns it; segment() takes it). */
const R_TCP = 11;
/**
 * bit 0 origin is A, bit 1 live, bits 2-4 class, bits 5-7 depth, bit 8 local
 * nets were known at creation, bit 9 originator local, bit 10 responder
 * local, bit 11 a forwarded copy was seen, bit 12 seen on a loopback device,
 * bits 13-15 non-TCP history (Zeek's UDP letters): D (originator data),
 * d (responder data), d came first.
 */
export const R_META = 12;
/**
 * Capture interface index (low 16 bits) and the SLL packet types seen (bit
 * per type): byte 2 from the originator, byte 3 from the responder.
 */
const R_IFSLL = 13;
const HIST_SHIFT = 13;
// f64 words: the ones a packet updates first, right after the u32 words
export const F_LAST = 7;
export const F_PKTS = 8; // +0 orig, +1 resp
export const F_IP = 10;
export const F_WIRE = 12;
export const F_PAY = 14;
const TCP_RECORD_U32 = TCP_RECORD_BYTES >> 2;

/**
 * Records and cold words live in chunks of CHUNK slots (8 MiB of records,
 * large enough for transparent huge pages), so growing adds chunks and
 * copies at most the last, partial one (a chunk is allocated at the size
 * the capacity needs and reallocated as it fills): slot s is record
 * s & CHUNK_MASK of chunk s >>> CHUNK_BITS.
 */
const CHUNK_BITS = 16;
const CHUNK = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK - 1;
/** Offsets of slot s's record in its chunk's u32 and f64 views, and of its cold words. */
const ru = (s: number): number => (s & CHUNK_MASK) * REC_U32;
const rf = (s: number): number => (s & CHUNK_MASK) * REC_F64;
const rc = (s: number): number => (s & CHUNK_MASK) * C_WORDS;
// ---- cold words, 4 f64 per slot in `ccold` (chunked as the records): written when a flow starts, read when it is reported ----
const C_WORDS = 4;
const C_FIRST = 0;
const C_REPORT = 1;
const C_ID = 2;
const C_PARENT = 3;

/**
 * Forwarded-copy detection: a direct-mapped cache of the packets counted
 * lately, whatever their flow, 4 words an entry: flow slot and direction
 * (tag), packet signature, where it was seen ((ifIndex + 1) << 3 | SLL type
 * + 1), time in ms. A packet whose (slot, direction, signature) entry was
 * seen elsewhere less than COPY_WINDOW ago is a copy. Unlike a few
 * signatures per flow, this finds copies however many packets of the flow
 * came in between (a router's batch of arrivals before its departures);
 * an entry overwritten by another packet only means that packet's copy is
 * counted again.
 */
const COPY_BITS = 16;
const COPY_ENTRIES = 1 << COPY_BITS;

const META_ORIG_A = 1;
const META_LIVE = 2;
const META_NETS = 1 << 8;
const META_LOCAL_ORIG = 1 << 9;
const META_LOCAL_RESP = 1 << 10;
const META_COPY = 1 << 11;
const META_LOOPBACK = 1 << 12;

/** Where a flow stands relative to this host. */
export const DIR_UNKNOWN = 0;
export const DIR_INBOUND = 1;
export const DIR_OUTBOUND = 2;
export const DIR_FORWARDED = 3;
export const DIR_LOCAL = 4;
export const DIRECTIONS = ['unknown', 'inbound', 'outbound', 'forwarded', 'local'] as const;

// SLL packet types (bits of the SLL bytes of R_IFSLL)
const SLL_RECEIVED = (1 << 0) | (1 << 1) | (1 << 2); // host, broadcast, multicast: the destination is this host
const SLL_OTHERHOST = 1 << 3;
const SLL_OUTGOING = 1 << 4;
const ARPHRD_LOOPBACK = 772;

/** Two sightings of one packet further apart than this (ms) are not copies of each other. */
const COPY_WINDOW_MS = 1000;

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
  /** This host's addresses / the site's networks; decides inbound/outbound/forwarded/local. */
  localNets?: LocalNets;
}

/**
 * Called when a flow record is due. The slot's data is valid during the
 * call; after a final report the slot is reused.
 */
export type FlowReporter = (table: FlowTable, slot: number, reason: number, final: boolean) => void;

/**
 * What identifies one packet among its copies: the IP length and IPv4 id,
 * and transport fields a router does not change (TCP sequence, ack, flags,
 * window; UDP length and checksum; ICMP header), never TTL/hop limit or
 * the IPv4 header checksum, which it does.
 */
function signature(p: Packet): number {
  const buf = p.buf;
  const o = p.l4Off;
  const c = p.l4Cap;
  let h = Math.imul(p.ipLen ^ (p.ipId << 12) ^ (p.fragment << 30), 0x9e3779b1);
  let from = o;
  let to = o;
  if (p.hasL4 && p.proto === PROTO_TCP) {
    from = o + 4;
    to = o + 16;
  } else if (p.hasL4 && p.proto === PROTO_UDP) {
    from = o + 4;
    to = o + 8;
  } else {
    to = o + 8;
  }
  if (to > o + c) to = o + c;
  for (let i = from; i < to; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return (h ^ (h >>> 15)) >>> 0;
}

/** Canonical order of a flow's endpoints: true when the packet's source (address, port) is the lower one, endpoint A. */
export function sourceIsA(p: Packet): boolean {
  const a = p.addr;
  if (a[0] !== a[4]) return a[0] < a[4];
  if (a[1] !== a[5]) return a[1] < a[5];
  if (a[2] !== a[6]) return a[2] < a[6];
  if (a[3] !== a[7]) return a[3] < a[7];
  return p.sport <= p.dport;
}

/** Slots of a new table. */
const INITIAL_CAPACITY = 65536;
/** Index entries per slot (8 bytes each). */
const INDEX_PER_SLOT = 1.6;

const WHEEL_BITS = 12;
const WHEEL = 1 << WHEEL_BITS;
const WHEEL_MASK = WHEEL - 1;
const TICK_NS = 250e6;
/** Wheel bucket field of a flow that is in no bucket (being swept). */
const DETACHED = 0xffff;

export class FlowTable implements LayerSink {
  readonly maxFlows: number;
  capacity = 0;
  /** Live flows. */
  count = 0;
  /** Most live flows at any time (the table's memory never shrinks, so memoryBytes() / peakLive is its cost per live flow at the peak). */
  peakLive = 0;
  /** Current packet time (ns on the pipeline's clock). */
  now = 0;
  /** Highest packet time seen: the clock that drives the wheel. */
  clock = -Infinity;

  /** Flow record chunks (see the layout constants and CHUNK_BITS), as u32 and f64 views of the same buffers. */
  private cu32: Uint32Array<ArrayBufferLike>[] = [];
  private cf64: Float64Array<ArrayBufferLike>[] = [];
  /** Packets counted lately, for forwarded-copy detection (only while `dedupe` is on; see COPY_BITS). */
  private copyCache = new Uint32Array(0);
  /** Index entries: [slot + 1, hash] pairs (0 = empty), so probing and deletion never touch records. */
  private index!: Uint32Array;
  /** Index entries (not a power of two: a hash maps to entry floor(h * size / 2^32)). */
  private indexSize = 0;
  /**
   * Timing-wheel links, kept apart from the records: linking and unlinking
   * touches neighbours, which are random flows; in these dense arrays
   * (12 bytes a slot) they are usually in cache.
   */
  private wprev!: Int32Array;
  private wnext!: Int32Array;
  private wbucket!: Uint16Array;
  /** Cold words per slot (C_*): first time, last report time, flow id, tunnel parent id. */
  private ccold: Float64Array<ArrayBufferLike>[] = [];
  /** Free slots: a stack linked through word 0 of each free record (next + 1; 0 ends it). */
  private freeHead = -1;
  /** Slots [fresh, capacity) were never used. */
  private fresh = 0;

  private readonly bucketHead = new Int32Array(WHEEL).fill(-1);
  private readonly bucketTail = new Int32Array(WHEEL).fill(-1);
  /** Next wheel tick (absolute, floor(t / TICK)) to process; NaN before the first packet. */
  private cursor = NaN;
  /** No flow is scheduled in the ticks [cursor, evictTick): where evict() starts looking (schedule() lowers it). */
  private evictTick = -Infinity;
  private readonly idleNs = new Float64Array(N_CLASSES);
  private readonly activeNs: number;
  private nextId = 0;

  readonly tcp: TcpTracker;
  /** Scratch key of the current packet. */
  private readonly key = new Uint32Array(KEY_WORDS);
  /** Scratch key of a flow being ended (its hash is recomputed to find its index entry). */
  private readonly endKey = new Uint32Array(KEY_WORDS);

  /** Flows started. */
  flowsStarted = 0;
  /** Forwarded packets seen a second time (another interface or SLL packet type) and not counted again. */
  copies = 0;
  /**
   * Look for forwarded copies. The pipeline turns it on when the input can
   * hold them: a Linux cooked capture (`any`) or more than one interface.
   * Single-interface Ethernet captures never pay for it.
   */
  get dedupe(): boolean {
    return this.dedupeOn;
  }
  set dedupe(on: boolean) {
    if (on && !this.dedupeOn) this.copyCache = new Uint32Array(COPY_ENTRIES * 4);
    else if (!on) this.copyCache = new Uint32Array(0);
    this.dedupeOn = on;
  }
  private dedupeOn = false;
  readonly localNets: LocalNets;
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
    this.localNets = opts.localNets ?? new LocalNets();
    const cap = Math.min(this.maxFlows, Math.max(16, opts.initialCapacity ?? INITIAL_CAPACITY));
    this.tcp = new TcpTracker(cap);
    this.allocate(cap);
  }

  /** (Re)allocates the records for `cap` slots, keeping the live ones. */
  private allocate(cap: number): void {
    const old = this.capacity;
    growChunks((c) => (c < this.cu32.length ? this.cu32[c].length / REC_U32 : 0), cap, CHUNK, (c, slots, had) => {
      const buf = new ArrayBuffer(slots * REC_BYTES);
      const u32 = new Uint32Array(buf);
      const cold = new Float64Array(slots * C_WORDS);
      if (had > 0) {
        u32.set(this.cu32[c]);
        cold.set(this.ccold[c]);
      }
      this.cu32[c] = u32;
      this.cf64[c] = new Float64Array(buf);
      this.ccold[c] = cold;
    });
    const wprev = new Int32Array(cap);
    const wnext = new Int32Array(cap);
    const wbucket = new Uint16Array(cap);
    if (this.wprev) {
      wprev.set(this.wprev);
      wnext.set(this.wnext);
      wbucket.set(this.wbucket);
    }
    this.wprev = wprev;
    this.wnext = wnext;
    this.wbucket = wbucket;
    if (old > 0) this.tcp.grow(cap);
    this.capacity = cap;
    // Load factor at most 5/8 (linear probing: ~1.8 entries looked at per hit, ~4 per miss, mostly in one cache line).
    const size = Math.max(16, Math.ceil(cap * INDEX_PER_SLOT));
    const oldIndex = this.index;
    this.index = new Uint32Array(size * 2);
    this.indexSize = size;
    // Rebuilt from the old index's [slot + 1, hash] entries: a sequential read, no record touched.
    if (oldIndex) for (let i = 0; i < oldIndex.length; i += 2) if (oldIndex[i] !== 0) this.indexInsert(oldIndex[i] - 1, oldIndex[i + 1]);
    if (old > 0) releaseGarbage();
  }

  /**
   * Copies what the exporters read of the flow in `s` into slot `i` of the
   * storage of a table made by over(): its record, its cold words and, for
   * TCP, its TCP record. Returns the TCP history letters beyond the inline
   * ones ('' when none), which the copy does not hold (setExtraHistory).
   */
  exportFlow(s: number, to: FlowTable, i: number): string {
    const u = this.recWords(s);
    const d = to.recWords(i);
    const b = ru(s);
    const db = ru(i);
    for (let k = 0; k < REC_U32; k++) d[db + k] = u[b + k];
    const cold = this.ccold[s >>> CHUNK_BITS];
    const dcold = to.ccold[i >>> CHUNK_BITS];
    const cb = rc(s);
    const dc = rc(i);
    for (let k = 0; k < C_WORDS; k++) dcold[dc + k] = cold[cb + k];
    if ((u[b + 9] & 0xff) !== PROTO_TCP) return '';
    return this.tcp.exportRecord(s, to.tcp, i);
  }

  /**
   * A table of `slots` flows over storage of its own making in `buf` from
   * `byteOffset` (FlowTable.storageBytes(slots) bytes): records, cold words
   * and TCP records, slot i's TCP record being record i. It takes no
   * packets; exportFlow() fills its slots and the export accessors read
   * them (the NDJSON worker has one over a SharedArrayBuffer).
   */
  static over(buf: ArrayBufferLike, byteOffset: number, slots: number): FlowTable {
    const t = new FlowTable({ maxFlows: 16, initialCapacity: 16 });
    let o = byteOffset;
    const coldAt = o + slots * REC_BYTES;
    t.cu32 = [];
    t.cf64 = [];
    t.ccold = [];
    for (let c = 0; c * CHUNK < slots; c++) {
      const n = Math.min(CHUNK, slots - c * CHUNK);
      t.cu32.push(new Uint32Array(buf, o + c * CHUNK * REC_BYTES, n * REC_U32));
      t.cf64.push(new Float64Array(buf, o + c * CHUNK * REC_BYTES, n * REC_F64));
      t.ccold.push(new Float64Array(buf, coldAt + c * CHUNK * C_WORDS * 8, n * C_WORDS));
    }
    o = coldAt + slots * C_WORDS * 8;
    (t as { tcp: TcpTracker }).tcp = TcpTracker.over(buf, o, slots);
    t.capacity = slots;
    return t;
  }

  /** Bytes of storage over() needs for `slots` flows. */
  static storageBytes(slots: number): number {
    return slots * (REC_BYTES + C_WORDS * 8 + TCP_RECORD_U32 * 4);
  }

  /** Bytes of memory the table holds (records, index, timer links, cold words, copy cache, TCP state). */
  memoryBytes(): number {
    let chunks = 0;
    for (let c = 0; c < this.cu32.length; c++) chunks += this.cu32[c].byteLength + this.ccold[c].byteLength;
    return chunks + this.index.byteLength + this.wprev.byteLength + this.wnext.byteLength +
      this.wbucket.byteLength + this.copyCache.byteLength + this.tcp.memoryBytes();
  }

  /** Bytes of memory per flow slot: record, index share, timer links, cold words, copy cache share, and the TCP tracker's. */
  bytesPerSlot(): number {
    return this.memoryBytes() / this.capacity;
  }

  // ---------------------------------------------------------------- hashing

  /** Hash of a key: IPv4 keys mix only the words that can be non-zero (addresses, ports, VLAN/protocol). */
  private hashKey(k: Uint32Array): number {
    let h: number;
    if (k[10] === 4) {
      h = Math.imul(k[3] ^ 0x811c9dc5, 0x01000193);
      h ^= h >>> 13;
      h = Math.imul(h ^ k[7], 0x01000193);
      h ^= h >>> 13;
      h = Math.imul(h ^ k[8], 0x01000193);
      h ^= h >>> 13;
      h = Math.imul(h ^ k[9], 0x01000193);
      h ^= h >>> 13;
    } else {
      h = 0x811c9dc5;
      for (let i = 0; i < KEY_WORDS; i++) {
        h = Math.imul(h ^ k[i], 0x01000193);
        h ^= h >>> 13;
      }
    }
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h ^= h >>> 13;
    return h >>> 0;
  }

  private find(h: number): number {
    const index = this.index;
    const size = this.indexSize;
    const chunks = this.cu32;
    const k = this.key;
    const v4 = k[10] === 4;
    for (let i = this.home(h); ; i = i + 1 === size ? 0 : i + 1) {
      const e = index[2 * i];
      if (e === 0) return -1;
      if (index[2 * i + 1] !== h) continue;
      const u = chunks[(e - 1) >>> CHUNK_BITS];
      const b = ru(e - 1);
      // An IPv4 record has zeros in the upper address words, as the IPv4 key has.
      if (u[b + 10] === k[10] && u[b + 3] === k[3] && u[b + 7] === k[7] && u[b + 8] === k[8] && u[b + 9] === k[9] &&
        (v4 || (u[b] === k[0] && u[b + 1] === k[1] && u[b + 2] === k[2] &&
          u[b + 4] === k[4] && u[b + 5] === k[5] && u[b + 6] === k[6]))) return e - 1;
    }
  }

  /** The index entry where hash `h` starts probing: floor(h * size / 2^32), below size for every 32-bit h (multiply-shift: the high bits of the hash pick the entry). */
  private home(h: number): number {
    return Math.floor((h * this.indexSize) / 4294967296);
  }

  private indexInsert(s: number, h: number): void {
    const index = this.index;
    const size = this.indexSize;
    let i = this.home(h);
    while (index[2 * i] !== 0) i = i + 1 === size ? 0 : i + 1;
    index[2 * i] = s + 1;
    index[2 * i + 1] = h;
  }

  private indexRemove(s: number, h: number): void {
    const index = this.index;
    const size = this.indexSize;
    let i = this.home(h);
    while (index[2 * i] !== s + 1) i = i + 1 === size ? 0 : i + 1;
    // Backward-shift deletion keeps every probe chain unbroken.
    let j = i;
    for (;;) {
      j = j + 1 === size ? 0 : j + 1;
      const e = index[2 * j];
      if (e === 0) break;
      const eh = index[2 * j + 1];
      const home = this.home(eh);
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (!between) {
        index[2 * i] = e;
        index[2 * i + 1] = eh;
        i = j;
      }
    }
    index[2 * i] = 0;
  }

  // ---------------------------------------------------------------- timing wheel

  /** Earliest time the flow may need attention: its idle or its active deadline. */
  private deadline(s: number): number {
    const c = s >>> CHUNK_BITS;
    const idle = this.cf64[c][rf(s) + F_LAST] + this.idleNs[(this.cu32[c][ru(s) + R_META] >>> 2) & 7];
    const active = this.ccold[c][rc(s) + C_REPORT] + this.activeNs;
    return idle < active ? idle : active;
  }

  private schedule(s: number): void {
    let tick = Math.floor(this.deadline(s) / TICK_NS);
    const cursor = this.cursor;
    if (tick < cursor) tick = cursor;
    // Beyond the horizon: parked in the farthest bucket and looked at again then. (WHEEL - 2 keeps a
    // flow rescheduled during a sweep out of the bucket being swept.)
    else if (tick - cursor > WHEEL - 2) tick = cursor + WHEEL - 2;
    if (tick < this.evictTick) this.evictTick = tick;
    const bucket = tick & WHEEL_MASK;
    // Appended: a bucket lists its flows in the order they were scheduled (oldest first).
    const tail = this.bucketTail[bucket];
    this.wprev[s] = tail;
    this.wnext[s] = -1;
    if (tail === -1) this.bucketHead[bucket] = s;
    else this.wnext[tail] = s;
    this.bucketTail[bucket] = s;
    this.wbucket[s] = bucket;
  }

  private unschedule(s: number): void {
    const bucket = this.wbucket[s];
    if (bucket === DETACHED) return;
    const p = this.wprev[s];
    const n = this.wnext[s];
    if (p === -1) this.bucketHead[bucket] = n;
    else this.wnext[p] = n;
    if (n === -1) this.bucketTail[bucket] = p;
    else this.wprev[n] = p;
  }

  // ---------------------------------------------------------------- per packet

  nonIp(_ethertype: number): void {}

  /** Writes the canonical key of `p` into this.key; returns true when the packet's source is endpoint A. */
  private keyOf(p: Packet): boolean {
    const a = p.addr;
    const k = this.key;
    const srcIsA = sourceIsA(p);
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
    return srcIsA;
  }

  /** Counts one transport layer of the current packet (LayerSink). Returns the flow id. */
  layer(p: Packet): number {
    const srcIsA = this.keyOf(p);
    const h = this.hashKey(this.key);
    const now = this.now;
    let s = this.find(h);
    if (s >= 0) {
      if (now - this.cf64[s >>> CHUNK_BITS][rf(s) + F_LAST] > this.idleNs[(this.cu32[s >>> CHUNK_BITS][ru(s) + R_META] >>> 2) & 7]) {
        this.end(s, END_IDLE);
        s = -1;
      } else if (p.proto === PROTO_TCP && p.hasL4 && (p.tcpFlags & 0x12) === 0x02 &&
        this.tcp.isNewConnection(s, ((this.cu32[s >>> CHUNK_BITS][ru(s) + R_META] & META_ORIG_A) === 1) === srcIsA, p.tcpFlags, p.seq)) {
        this.end(s, END_REUSE);
        s = -1;
      }
    }
    if (s < 0) s = this.create(h, p, srcIsA);
    // Read the views only now: create() may have grown (reallocated) the table.
    const u = this.cu32[s >>> CHUNK_BITS];
    const f = this.cf64[s >>> CHUNK_BITS];
    const b = ru(s);
    const fb = rf(s);
    let meta = u[b + R_META];
    const fromOrig = ((meta & META_ORIG_A) === 1) === srcIsA;
    const d = fromOrig ? 0 : 1;
    if (this.dedupe) {
      // A forwarded packet captured twice (arriving, leaving): count it once.
      const sig = signature(p);
      const where = (((p.ifIndex + 1) << 3) | ((p.sllType + 1) & 7)) >>> 0;
      const tag = s * 2 + d + 1;
      const ms = Math.floor(now / 1e6) >>> 0;
      const c = this.copyCache;
      const ci = (Math.imul(sig ^ Math.imul(tag, 0x9e3779b1), 0x85ebca6b) >>> (32 - COPY_BITS)) << 2;
      const apart = (ms - c[ci + 3]) | 0;
      // Either order: on several interfaces, a copy can be stamped slightly before the packet it copies.
      if (c[ci] === tag && c[ci + 1] === sig && c[ci + 2] !== where && apart <= COPY_WINDOW_MS && apart >= -COPY_WINDOW_MS) {
        u[b + R_META] = meta | META_COPY;
        this.copies++;
        return s;
      }
      c[ci] = tag;
      c[ci + 1] = sig;
      c[ci + 2] = where;
      c[ci + 3] = ms;
    }
    if (p.sllHatype === ARPHRD_LOOPBACK) u[b + R_META] = meta |= META_LOOPBACK;
    if (p.proto === PROTO_UDP && p.payloadLen > 0) {
      const hist = meta >>> HIST_SHIFT;
      if ((hist & (1 << d)) === 0) u[b + R_META] = meta |= ((1 << d) | (d === 1 && hist === 0 ? 4 : 0)) << HIST_SHIFT;
    }
    f[fb + F_PKTS + d]++;
    f[fb + F_IP + d] += p.ipLen;
    f[fb + F_WIRE + d] += p.wirelen;
    f[fb + F_PAY + d] += p.payloadLen;
    if (p.sllType >= 0) u[b + R_IFSLL] |= (1 << (p.sllType & 7)) << ((d + 2) << 3);
    if (now > f[fb + F_LAST]) f[fb + F_LAST] = now;
    else if (now < this.ccold[s >>> CHUNK_BITS][rc(s) + C_FIRST]) this.ccold[s >>> CHUNK_BITS][rc(s) + C_FIRST] = now;
    if (p.proto === PROTO_TCP && p.hasL4) {
      const c = this.tcp.segment(s, u[b + R_TCP], fromOrig, p.tcpFlags, p.seq, p.ack, p.win, p.payloadLen, now, p.buf, p.optOff, p.optLen);
      const old = (meta >>> 2) & 7;
      if (c !== old) {
        u[b + R_META] = (meta & ~(7 << 2)) | (c << 2);
        // A shorter timeout must be seen by the wheel now; a longer one is found lazily.
        if (this.idleNs[c] < this.idleNs[old]) {
          this.unschedule(s);
          this.schedule(s);
        }
      }
    }
    return s;
  }

  private create(h: number, p: Packet, srcIsA: boolean): number {
    // The tunnel carrier's id, read before an eviction below could reuse its slot.
    const parent = p.parent >= 0 ? this.ccold[p.parent >>> CHUNK_BITS][rc(p.parent) + C_ID] : -1;
    if (this.count >= this.capacity) {
      if (this.capacity < this.maxFlows) this.allocate(Math.min(this.maxFlows, nextCapacity(this.capacity)));
      else this.evict();
    }
    let s = this.freeHead;
    if (s >= 0) this.freeHead = this.cu32[s >>> CHUNK_BITS][ru(s)] - 1;
    else s = this.fresh++;
    if (++this.count > this.peakLive) this.peakLive = this.count;
    this.flowsStarted++;
    const u = this.cu32[s >>> CHUNK_BITS];
    const f = this.cf64[s >>> CHUNK_BITS];
    const b = ru(s);
    const fb = rf(s);
    const k = this.key;
    for (let i = 0; i < KEY_WORDS; i++) u[b + i] = k[i];
    u[b + R_TCP] = 0;
    f[fb + F_PKTS] = 0;
    f[fb + F_PKTS + 1] = 0;
    f[fb + F_IP] = 0;
    f[fb + F_IP + 1] = 0;
    f[fb + F_WIRE] = 0;
    f[fb + F_WIRE + 1] = 0;
    f[fb + F_PAY] = 0;
    f[fb + F_PAY + 1] = 0;
    this.indexInsert(s, h);
    // The originator sends the first packet, except that a SYN-ACK seen first names the other side.
    const synAck = p.proto === PROTO_TCP && p.hasL4 && (p.tcpFlags & 0x12) === 0x12;
    let c: number;
    switch (p.proto) {
      case PROTO_TCP:
        u[b + R_TCP] = this.tcp.reset(s);
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
    const origA = srcIsA !== synAck;
    let meta = (origA ? META_ORIG_A : 0) | META_LIVE | (c << 2) | ((p.depth & 7) << 5);
    const nets = this.localNets;
    if (nets.size > 0) {
      meta |= META_NETS;
      if (nets.contains(k[10], k, origA ? 0 : 4)) meta |= META_LOCAL_ORIG;
      if (nets.contains(k[10], k, origA ? 4 : 0)) meta |= META_LOCAL_RESP;
    }
    u[b + R_META] = meta;
    u[b + R_IFSLL] = p.ifIndex & 0xffff;
    const now = this.now;
    f[fb + F_LAST] = now;
    const cold = this.ccold[s >>> CHUNK_BITS];
    const cb = rc(s);
    cold[cb + C_FIRST] = now;
    cold[cb + C_REPORT] = now;
    cold[cb + C_ID] = this.nextId++;
    cold[cb + C_PARENT] = parent;
    if (this.cursor !== this.cursor) this.cursor = Math.floor(now / TICK_NS);
    this.schedule(s);
    return s;
  }

  /** Reports a flow as ended and frees its slot. */
  private end(s: number, reason: number): void {
    this.ends[reason]++;
    this.onReport(this, s, reason, true);
    if (this.proto(s) === PROTO_TCP) this.tcp.release(s);
    this.unschedule(s);
    // The hash is not stored: the record's key gives it again (this.key may hold the current packet's).
    const ek = this.endKey;
    const u = this.cu32[s >>> CHUNK_BITS];
    const b = ru(s);
    for (let i = 0; i < KEY_WORDS; i++) ek[i] = u[b + i];
    this.indexRemove(s, this.hashKey(ek));
    u[b + R_META] = 0;
    u[b] = this.freeHead + 1;
    this.freeHead = s;
    this.count--;
  }

  /** Table full: ends the flow nearest to its deadline (fixing stale wheel positions on the way). */
  private evict(): void {
    // The buckets before evictTick are empty: a full table of long-lived flows is not rescanned from the cursor for every eviction.
    const start = this.evictTick > this.cursor ? this.evictTick : this.cursor;
    for (let n = 0, tick = start; n < 2 * WHEEL; n++, tick++) {
      const bucket = tick & WHEEL_MASK;
      const limit = (tick + 1) * TICK_NS;
      let s = this.bucketHead[bucket];
      if (s === -1 && n < WHEEL) this.evictTick = tick + 1;
      while (s !== -1) {
        const next = this.wnext[s];
        // The horizon bucket holds the flows whose deadlines lie beyond the wheel: rescheduling one puts it back there.
        if (this.deadline(s) < limit || n >= WHEEL || tick >= this.cursor + WHEEL - 2) {
          this.end(s, END_PRESSURE);
          return;
        }
        this.unschedule(s);
        this.schedule(s);
        s = next;
      }
    }
  }

  /**
   * Sets the packet time of the next packet and runs the wheel up to it:
   * flows past their idle timeout end, flows past their active timeout are
   * reported. Cheap when no bucket is due.
   */
  advance(t: number): void {
    this.now = t;
    if (t <= this.clock) return;
    this.clock = t;
    const target = Math.floor(t / TICK_NS);
    if (!(target > this.cursor)) return;
    if (target - this.cursor > WHEEL) {
      // A jump longer than the wheel: visit every bucket once, against the new time.
      this.cursor = target;
      for (let i = 0; i < WHEEL; i++) this.sweepBucket(i, t);
      return;
    }
    while (this.cursor < target) {
      const tick = this.cursor;
      this.cursor = tick + 1;
      this.sweepBucket(tick & WHEEL_MASK, t);
    }
  }

  private sweepBucket(bucket: number, t: number): void {
    let s = this.bucketHead[bucket];
    this.bucketHead[bucket] = -1;
    this.bucketTail[bucket] = -1;
    while (s !== -1) {
      const c = s >>> CHUNK_BITS;
      const next = this.wnext[s];
      this.wbucket[s] = DETACHED;
      if (this.cf64[c][rf(s) + F_LAST] + this.idleNs[(this.cu32[c][ru(s) + R_META] >>> 2) & 7] < t) {
        this.end(s, END_IDLE);
      } else {
        const cold = this.ccold[c];
        if (cold[rc(s) + C_REPORT] + this.activeNs <= t) {
          this.ends[END_ACTIVE]++;
          this.onReport(this, s, END_ACTIVE, false);
          cold[rc(s) + C_REPORT] = t;
        }
        this.schedule(s);
      }
      s = next;
    }
  }

  /** Ends every live flow (end of input), in the order they started. */
  flush(): void {
    const n = this.count;
    const slots = new Int32Array(n);
    let i = 0;
    for (let s = 0; s < this.capacity; s++) if (this.isLive(s)) slots[i++] = s;
    if (this.nextId < 2 ** 31 && this.capacity <= 4194304) {
      // Flow ids below 2^31 and slots below 2^22 pack into one exact number: a native sort, no comparator.
      const order = new Float64Array(n);
      for (let j = 0; j < n; j++) order[j] = this.flowId(slots[j]) * 4194304 + slots[j];
      order.sort();
      for (let j = 0; j < n; j++) slots[j] = order[j] % 4194304;
    } else {
      slots.sort((x, y) => this.flowId(x) - this.flowId(y));
    }
    for (let j = 0; j < n; j++) this.end(slots[j], END_EOF);
  }

  /** Visits every live flow (for metrics); do not modify the table from `fn`. */
  forEachLive(fn: (slot: number) => void): void {
    for (let s = 0; s < this.capacity; s++) if (this.isLive(s)) fn(s);
  }

  /** The slot holds a live flow. */
  isLive(s: number): boolean {
    return (this.cu32[s >>> CHUNK_BITS][ru(s) + R_META] & META_LIVE) !== 0;
  }

  /** The u32 words of slot s's record chunk: its key and addresses at addrOffset(), its meta words (export time). */
  recWords(s: number): Uint32Array<ArrayBufferLike> {
    return this.cu32[s >>> CHUNK_BITS];
  }

  // ---------------------------------------------------------------- accessors (export time)

  /**
   * Where the flow stands relative to this host (DIR_*). With local nets:
   * from the addresses. Without: from what the capture says — a loopback
   * device or loopback addresses mean local, a forwarded copy or an
   * "otherhost" SLL packet means forwarded, and SLL packet types tell which
   * end this host is (received: the destination is local; outgoing: the
   * source is). Otherwise unknown.
   */
  direction(s: number): number {
    const u = this.cu32[s >>> CHUNK_BITS];
    const b = ru(s);
    const meta = u[b + R_META];
    if (isLoopback(u[b + 10], u, b) && isLoopback(u[b + 10], u, b + 4)) return DIR_LOCAL;
    let lo: boolean;
    let lr: boolean;
    if (meta & META_NETS) {
      lo = (meta & META_LOCAL_ORIG) !== 0;
      lr = (meta & META_LOCAL_RESP) !== 0;
    } else {
      if (meta & META_LOOPBACK) return DIR_LOCAL;
      if (meta & META_COPY) return DIR_FORWARDED;
      const o = this.sllSeen(s, true);
      const r = this.sllSeen(s, false);
      if ((o | r) & SLL_OTHERHOST) return DIR_FORWARDED;
      lo = (o & SLL_OUTGOING) !== 0 || (r & SLL_RECEIVED) !== 0;
      lr = (o & SLL_RECEIVED) !== 0 || (r & SLL_OUTGOING) !== 0;
      if (!lo && !lr) return DIR_UNKNOWN;
    }
    if (lo && lr) return DIR_LOCAL;
    if (lo) return DIR_OUTBOUND;
    if (lr) return DIR_INBOUND;
    return DIR_FORWARDED;
  }

  /** Zeek's local_orig / local_resp: true, false, or undefined when nothing tells. */
  isLocal(s: number, orig: boolean): boolean | undefined {
    const dir = this.direction(s);
    if (dir === DIR_UNKNOWN) return undefined;
    if (dir === DIR_LOCAL) return true;
    if (dir === DIR_FORWARDED) return false;
    return orig === (dir === DIR_OUTBOUND);
  }

  /** Zeek's history for a UDP flow: D / d for the first packet with payload from each side ('' if none). */
  udpHistory(s: number): string {
    const h = this.cu32[s >>> CHUNK_BITS][ru(s) + R_META] >>> HIST_SHIFT;
    if (h === 3) return 'Dd';
    if (h === 7) return 'dD';
    return h & 1 ? 'D' : h & 2 ? 'd' : '';
  }

  /** A forwarded copy of one of this flow's packets was seen (and not counted). */
  sawCopy(s: number): boolean {
    return (this.cu32[s >>> CHUNK_BITS][ru(s) + R_META] & META_COPY) !== 0;
  }

  isOrigA(s: number): boolean {
    return (this.cu32[s >>> CHUNK_BITS][ru(s) + R_META] & META_ORIG_A) !== 0;
  }
  ipVersion(s: number): number {
    return this.cu32[s >>> CHUNK_BITS][ru(s) + 10];
  }
  proto(s: number): number {
    return this.cu32[s >>> CHUNK_BITS][ru(s) + 9] & 0xff;
  }
  vlan(s: number): number {
    return this.cu32[s >>> CHUNK_BITS][ru(s) + 9] >>> 8;
  }
  /** Port of the originator (orig = true) or responder. */
  port(s: number, orig: boolean): number {
    const ports = this.cu32[s >>> CHUNK_BITS][ru(s) + 8];
    return orig === this.isOrigA(s) ? ports >>> 16 : ports & 0xffff;
  }
  /** Offset in recWords(s) of the originator's (orig = true) or responder's address words. */
  addrOffset(s: number, orig: boolean): number {
    return ru(s) + (orig === this.isOrigA(s) ? 0 : 4);
  }
  ifIndex(s: number): number {
    return this.cu32[s >>> CHUNK_BITS][ru(s) + R_IFSLL] & 0xffff;
  }
  depth(s: number): number {
    return (this.cu32[s >>> CHUNK_BITS][ru(s) + R_META] >>> 5) & 7;
  }
  /** SLL packet types seen from the originator (orig = true) or responder, one bit per type. */
  sllSeen(s: number, orig: boolean): number {
    return (this.cu32[s >>> CHUNK_BITS][ru(s) + R_IFSLL] >>> (orig ? 16 : 24)) & 0xff;
  }
  first(s: number): number {
    return this.ccold[s >>> CHUNK_BITS][rc(s) + C_FIRST];
  }
  last(s: number): number {
    return this.cf64[s >>> CHUNK_BITS][rf(s) + F_LAST];
  }
  flowId(s: number): number {
    return this.ccold[s >>> CHUNK_BITS][rc(s) + C_ID];
  }
  parentId(s: number): number {
    return this.ccold[s >>> CHUNK_BITS][rc(s) + C_PARENT];
  }
  pkts(s: number, orig: boolean): number {
    return this.cf64[s >>> CHUNK_BITS][rf(s) + F_PKTS + (orig ? 0 : 1)];
  }
  ipBytes(s: number, orig: boolean): number {
    return this.cf64[s >>> CHUNK_BITS][rf(s) + F_IP + (orig ? 0 : 1)];
  }
  wireBytes(s: number, orig: boolean): number {
    return this.cf64[s >>> CHUNK_BITS][rf(s) + F_WIRE + (orig ? 0 : 1)];
  }
  payloadBytes(s: number, orig: boolean): number {
    return this.cf64[s >>> CHUNK_BITS][rf(s) + F_PAY + (orig ? 0 : 1)];
  }
}
