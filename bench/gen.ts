/**
 * Deterministic generator of the large benchmark capture.
 *
 * Writes a classic pcap (microsecond timestamps, little-endian, LINKTYPE 1
 * Ethernet, snaplen 128: every record keeps at most 128 captured bytes while
 * its orig_len is the full frame length, Ethernet padding to 60 included).
 *
 * Traffic model: a pool of about `flows` slots, one flow each, in five
 * pools (TCP long, TCP short, UDP streams, DNS/NTP, ICMP echo; see
 * POOL_SHARE). Every step draws a pool by its share of packets (or emits an
 * ARP request/reply, 2 %), then one of its flows with probability
 * proportional to the flow's weight (WeightedPool), and that flow's state
 * machine emits exactly one packet. A flow that ends is replaced in its slot
 * by a new one, so once the first flows have all started, the number of live
 * flows stays at the pool size. Flow sizes are heavy-tailed (Pareto); weights
 * grow with the intended size and jump while an answer is due, so elephants
 * send often, round trips take milliseconds and think times seconds (W_EXP,
 * FAST_FACTOR). No flow stays silent for MAX_IDLE_S.
 *
 * Everything follows one seeded PRNG and a fixed start time: the same
 * arguments give a byte-identical file.
 *
 * CLI: node dist/bench/gen.js OUT.pcap [--packets 10000000] [--flows 250000] [--seed 1] [--verbose]
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export interface BenchCaptureOptions {
  /** Packet records to write (default 10 000 000). */
  packets?: number;
  /** Size of the pool of concurrently active flows (default 250 000). */
  flows?: number;
  /** PRNG seed (default 1). */
  seed?: number;
}

export interface BenchCaptureStats {
  /** Packet records written. */
  packets: number;
  /** Distinct IP flows (5-tuples, ICMP echo sessions) that sent at least one packet. */
  flows: number;
  /** File size in bytes. */
  bytes: number;
  /** Sum of orig_len (bytes on the wire). */
  wireBytes: number;
  /** Flows by protocol, and flows that completed (FIN/RST/answer) inside the capture. */
  tcpFlows: number;
  udpFlows: number;
  icmpFlows: number;
  finishedFlows: number;
  /** Most flows alive (started, not finished) at once. */
  peakActiveFlows: number;
  /** Packets by kind. */
  tcpPackets: number;
  udpPackets: number;
  icmpPackets: number;
  arpPackets: number;
  ipv6Packets: number;
  vlanPackets: number;
  qinqPackets: number;
  /** Records whose orig_len exceeds the 128-byte snaplen. */
  truncatedPackets: number;
  /** Packet time covered, first to last timestamp. */
  spanSeconds: number;
  /** Generation wall time. */
  seconds: number;
}

export const DEFAULT_PACKETS = 10_000_000;
export const DEFAULT_FLOWS = 250_000;
export const DEFAULT_SEED = 1;
/** Bumped whenever the output for given options changes (the runner regenerates on mismatch). */
export const GENERATOR_VERSION = 4;
export const SNAPLEN = 128;
/** 2024-01-01T00:00:00Z */
export const START_TIME_SEC = 1_704_067_200;

const BUF_SIZE = 8 << 20;
const MAX_RECORD = 16 + SNAPLEN;

// Flow pools. Each step draws a pool by its share of all packets, then one
// of its flows by weight. The long pools hold the bulk of the concurrent
// flows (persistent and bulk TCP connections, UDP streams, ping sessions),
// which send rarely; the short pools hold few, busy, short-lived flows
// (TCP mice, DNS/NTP exchanges) whose packets follow each other closely.
const PL_TCP_LONG = 0;
const PL_TCP_SHORT = 1;
const PL_STREAM = 2;
const PL_DNS = 3;
const PL_ICMP = 4;
const N_POOLS = 5;
const POOL_NAMES = ['tcp long', 'tcp short', 'udp stream', 'dns/ntp', 'icmp echo'];
/** Share of all packets per pool; ARP takes the rest (2 %). */
const POOL_SHARE = [0.48, 0.22, 0.14, 0.11, 0.03];
/** Slots per pool: a fraction of `flows` for long pools, `flows / divisor` for short ones. */
const POOL_FRACTION = [0.93, 0, 0.06, 0, 0.01];
const POOL_DIVISOR = [0, 500, 0, 2500, 0];
/**
 * Rate weights. A flow's base weight is (intended packets)^W_EXP: it paces
 * transfers and think times. When a flow's next packet is
 * an answer (SYN-ACK, DNS response, delayed ACK, echo reply, the response
 * to a request) or the first packet of a flow that replaced a finished one,
 * it weighs the pool's fast weight instead (FAST_FACTOR times the median base
 * weight of the pool's first flows), or its base weight if that is higher.
 * Round trips then take milliseconds while think times take seconds.
 */
const W_EXP = 0.9;
const FAST_FACTOR = [2000, 16, 2000, 64, 2000];

/**
 * No flow stays silent much longer than this (packet time), so idle
 * timeouts of a minute (flowtap's UDP/ICMP default) never split a flow: the
 * flows in the file are exactly the flows a tracker should report. Every
 * SWEEP_EVERY_S, flows silent that long join their pool's queue, and the
 * pool's next steps go to them first (a keep-alive of sorts: their next
 * packet, whatever it is).
 */
const MAX_IDLE_S = 40;
const SWEEP_EVERY_S = 2;
/**
 * The first flows of a pool start one after the other, in up to START_SHARE
 * of its steps, while fewer than START_CAP of its slots wait at the fast
 * weight: as fast as the packet budget allows (a TCP start costs about four
 * quick packets) without stretching the round trips of flows under way.
 * The 10 M capture has 200 k flows alive after about 45 s of packet time and
 * all 250 k from about 65 s on (the long pools' packet budget is the limit).
 */
const START_SHARE = 0.6;
const START_CAP = 0.006;

/** Chance that a data segment is lost and sent again. */
const P_RETX = 0.003;
const P_IPV6 = 0.2;
const P_VLAN = 0.12;
const P_QINQ = 0.03;

// Flow kinds.
const K_TCP = 0;
const K_DNS = 1;
const K_NTP = 2;
const K_STREAM = 3;
const K_ICMP = 4;

// Flag bits.
const F_V6 = 1;
const F_VLAN = 2;
const F_QINQ = 4;
const F_STARTED = 8;
const F_DIR_SERVER = 16; // TCP: the server is the current data sender
const F_CLOSE_RST = 32; // TCP: close with RST instead of FIN
const F_CLOSER_SERVER = 64; // TCP: the server closes (FIN or RST)
const F_RETX = 128; // TCP: retransmit the last data segment next

// TCP states.
const T_SYN = 0;
const T_SYN_RETRY = 1;
const T_SYNACK = 2;
const T_HS_ACK = 3;
const T_DATA = 4;
const T_DATA_ACK = 5;
const T_FIN1 = 6;
const T_FIN2 = 7;
const T_FIN3 = 8;
const T_RST = 9;
const T_REFUSE = 10;

// TCP flag bits.
const TH_FIN = 0x01;
const TH_SYN = 0x02;
const TH_RST = 0x04;
const TH_PSH = 0x08;
const TH_ACK = 0x10;

// Slot record layout (64 bytes): u8 index = (slot << 6) + X, u16 = (slot << 5) + X, u32 = (slot << 4) + X.
const SLOT_BYTES = 64;
const KIND = 0; // u8
const FLAGS = 1; // u8
const STATE = 2; // u8
const POOL = 3; // u8: pool id
const VLANO = 2; // u16, byte 4
const VLANI = 3; // u16, byte 6
const CLI = 2; // u32, byte 8: client index
const SRV = 3; // u32, byte 12: server index
const CPORT = 8; // u16, byte 16
const SPORT = 9; // u16, byte 18
const SEQC = 5; // u32, byte 20: client's next sequence number
const SEQS = 6; // u32, byte 24: server's next sequence number
const CNT = 7; // u32, byte 28: segments since the last ACK / echo sequence / stream position
const REM = 8; // u32, byte 32: bytes left in the current message
const REQB = 9; // u32, byte 36: request bytes per round
const RSPB = 10; // u32, byte 40: response bytes per round
const ROUNDS = 22; // u16, byte 44: request/response rounds left
const IPID = 23; // u16, byte 46: next IPv4 id (the server's runs half a cycle apart)
const LAST = 24; // u16, byte 48: second (since the start) of the flow's last packet
const AUX = 13; // u32, byte 52: TCP SYN tries / DNS id / ICMP id / stream payload size
const AUX2 = 14; // u32, byte 56: TCP retransmit length / DNS exchanges / ICMP echoes / stream packets left
const FPKTS = 15; // u32, byte 60: packets sent so far
const BASEW = 25; // u16, byte 50: the flow's weight while nothing is due soon (encodeWeight)

const N_CLIENTS = 1 << 18;
const N_SERVERS = 1 << 15;

/** xoshiro128** — fast, 32-bit, seedable. */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    // splitmix32 to spread the seed over the state
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }
  /** Uniform in [0, 1). */
  f(): number {
    return this.u32() / 4294967296;
  }
  /** Uniform integer in [0, n), n <= 2^32. */
  int(n: number): number {
    return Math.floor(this.f() * n);
  }
  /** Pareto with minimum xmin and shape alpha, capped at max. */
  pareto(xmin: number, alpha: number, max: number): number {
    const u = 1 - this.f(); // (0, 1]
    const x = xmin * Math.pow(u, -1 / alpha);
    return x > max ? max : x;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Integer weights over pool slots [0, n) with weighted sampling: a Fenwick
 * tree over blocks of 64 slots (small enough to stay in cache) and a linear
 * scan of the chosen block (a few sequential cache lines). Both operations
 * cost O(log(n / 64) + 64) and touch little memory.
 */
class WeightedPool {
  readonly w: Uint32Array;
  private readonly tree: Float64Array;
  private readonly nb: number;
  private readonly top: number;
  total = 0;
  constructor(readonly n: number) {
    this.w = new Uint32Array(n);
    this.nb = (n + 63) >>> 6;
    this.tree = new Float64Array(this.nb + 1);
    let top = 1;
    while (top * 2 <= this.nb) top *= 2;
    this.top = top;
  }
  set(i: number, weight: number): void {
    const delta = weight - this.w[i]!;
    if (delta === 0) return;
    this.w[i] = weight;
    this.total += delta;
    const t = this.tree;
    for (let j = (i >>> 6) + 1; j <= this.nb; j += j & -j) t[j]! += delta;
  }
  /** Slot whose cumulative weight range holds r, 0 <= r < total. */
  find(r: number): number {
    const t = this.tree;
    const nb = this.nb;
    let pos = 0;
    for (let step = this.top; step > 0; step >>= 1) {
      const nx = pos + step;
      if (nx <= nb && t[nx]! <= r) {
        pos = nx;
        r -= t[nx]!;
      }
    }
    const w = this.w;
    let i = pos << 6;
    const last = Math.min(this.n, i + 64) - 1;
    while (i < last && r >= w[i]!) r -= w[i++]!;
    return i;
  }
}

class Generator {
  private readonly rng: Rng;
  private readonly buf = Buffer.alloc(BUF_SIZE);
  private pos = 0;
  private fileBytes = 0;

  // time
  private tsSec = START_TIME_SEC;
  private tsUsec = 0;
  private readonly gapRange: number;

  // Flow pool: one 64-byte record per slot (one cache line), viewed as
  // u8 / u16 / u32 arrays; field offsets are the constants above Generator.
  private readonly nSlots: number;
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;

  private readonly pools: WeightedPool[] = [];
  private readonly poolBase: number[] = [];
  private readonly poolFast: number[] = [];
  /** Cumulative POOL_SHARE. */
  private readonly poolCum = new Float64Array(N_POOLS);
  /** Slots per pool. */
  readonly poolSlots: number[] = [];
  /** Per pool, the next of the first flows to start, and the end of them. */
  private readonly startNext: number[] = [];
  private readonly startEnd: number[] = [];
  /** Per pool, a ring of slots due for a keep-alive packet (see sweep()); `queued` marks them. */
  private readonly dueQueue: Int32Array[] = [];
  private readonly dueHead: number[] = [];
  private readonly dueTail: number[] = [];
  private readonly queued: Uint8Array;
  /** Per pool, slots at the fast weight, and how many may be before no more first flows start. */
  private readonly fastCount: number[] = [];
  private readonly startCap: number[] = [];

  private readonly clientPort = new Uint16Array(N_CLIENTS);
  private readonly dnsScratch = new Uint8Array(512);

  // ARP: one pending request awaiting its reply
  private arpPending = false;
  private arpHost = 0;
  private arpTarget = 0;
  private arpVlan = 0;

  // per-packet scratch set by beginIp()
  private frame = 0;
  private frameLen = 0;
  private v6 = false;

  // stats
  packets = 0;
  flows = 0;
  tcpFlows = 0;
  udpFlows = 0;
  icmpFlows = 0;
  finishedFlows = 0;
  active = 0;
  peakActive = 0;
  wireBytes = 0;
  tcpPackets = 0;
  udpPackets = 0;
  icmpPackets = 0;
  arpPackets = 0;
  ipv6Packets = 0;
  vlanPackets = 0;
  qinqPackets = 0;
  truncated = 0;
  idleWakeups = 0;
  /** [second, flows alive] at every sweep. */
  readonly aliveAt: Array<[number, number]> = [];
  private icmpSessions = 0;
  /** Packets of every finished flow. */
  private readonly finishedSizes: number[] = [];
  /** log2 histogram of packets per finished flow. */
  readonly finishedHist = new Float64Array(32);
  /** Finished flow durations in ms, log2 buckets, 32 per pool. */
  readonly durationHist = new Float64Array(32 * 5);
  readonly poolPackets = new Float64Array(N_POOLS);
  readonly poolFlows = new Float64Array(N_POOLS);
  /** TCP SYN to SYN-ACK delays in µs, log2 buckets. */
  readonly rttHist = new Float64Array(32);
  private readonly startSec: Float64Array;

  constructor(
    private readonly fd: number,
    packets: number,
    flows: number,
    seed: number,
  ) {
    this.rng = new Rng(seed);
    // Mean gap 18 µs (10 M packets span 3 minutes), compressed for huge
    // runs so the capture never spans more than about 4 minutes.
    const meanGap = Math.max(1, Math.min(18, Math.floor(240e6 / packets)));
    this.gapRange = 2 * meanGap - 1; // gap uniform in [1, 2*mean-1]

    let n = 0;
    for (let p = 0; p < N_POOLS; p++) {
      const size = POOL_FRACTION[p]
        ? Math.max(1, Math.round(flows * POOL_FRACTION[p]!))
        : Math.max(4, Math.min(1000, Math.round(flows / POOL_DIVISOR[p]!)));
      this.poolSlots.push(size);
      this.poolBase.push(n);
      this.pools.push(new WeightedPool(size));
      this.poolFast.push(1);
      this.poolCum[p] = (p > 0 ? this.poolCum[p - 1]! : 0) + POOL_SHARE[p]!;
      n += size;
    }
    this.nSlots = n;
    const rec = new ArrayBuffer(n * SLOT_BYTES);
    this.u8 = new Uint8Array(rec);
    this.u16 = new Uint16Array(rec);
    this.u32 = new Uint32Array(rec);
    this.startSec = new Float64Array(n);
    this.queued = new Uint8Array(n);

    for (let i = 0; i < N_CLIENTS; i++) this.clientPort[i] = 32768 + this.rng.int(28232);
    // The first flows weigh nothing: they start one after the other, in
    // START_SHARE of their pool's steps (see run()), and get their weights
    // with their first packet. The fast weights follow their base weights.
    for (let p = 0; p < N_POOLS; p++) {
      const from = this.poolBase[p]!;
      const to = from + this.poolSlots[p]!;
      const bases = new Float64Array(to - from);
      for (let i = from; i < to; i++) {
        this.u8[(i << 6) + POOL] = p;
        this.newFlow(i);
        bases[i - from] = decodeWeight(this.u16[(i << 5) + BASEW]!);
      }
      // the median, not the mean: the elephants must not slow every answer down
      bases.sort();
      this.poolFast[p] = Math.max(2, Math.round(FAST_FACTOR[p]! * bases[bases.length >> 1]!));
      this.startNext.push(from);
      this.startEnd.push(to);
      this.fastCount.push(0);
      this.dueQueue.push(new Int32Array(to - from + 1));
      this.dueHead.push(0);
      this.dueTail.push(0);
      this.startCap.push(Math.max(4, Math.round((to - from) * START_CAP)));
    }

    this.writeFileHeader();
  }

  // ---------------------------------------------------------------- output

  private writeFileHeader(): void {
    const b = this.buf;
    w32le(b, 0, 0xa1b2c3d4);
    w16le(b, 4, 2);
    w16le(b, 6, 4);
    // thiszone, sigfigs = 0
    w32le(b, 16, SNAPLEN);
    w32le(b, 20, 1); // LINKTYPE_ETHERNET
    this.pos = 24;
  }

  private flush(): void {
    const len = this.pos;
    let off = 0;
    while (off < len) off += writeSync(this.fd, this.buf, off, len - off);
    this.fileBytes += len;
    this.buf.fill(0, 0, len);
    this.pos = 0;
  }

  finish(): void {
    this.flush();
  }

  /** Completes the record started by beginIp()/beginArp(): record header, stats, clock. */
  private commit(): void {
    const wire = this.frameLen < 60 ? 60 : this.frameLen;
    const cap = wire < SNAPLEN ? wire : SNAPLEN;
    const b = this.buf;
    const p = this.pos;
    w32le(b, p, this.tsSec);
    w32le(b, p + 4, this.tsUsec);
    w32le(b, p + 8, cap);
    w32le(b, p + 12, wire);
    this.pos = p + 16 + cap;
    this.packets++;
    this.wireBytes += wire;
    if (wire > SNAPLEN) this.truncated++;
    let us = this.tsUsec + 1 + ((this.rng.u32() % this.gapRange) | 0);
    if (us >= 1_000_000) {
      us -= 1_000_000;
      this.tsSec++;
    }
    this.tsUsec = us;
  }

  /**
   * Starts an IP packet of `slot` in the given direction: record space,
   * Ethernet (+ VLAN tags), IP header. Returns the offset of the L4 header.
   */
  private beginIp(slot: number, fromServer: boolean, proto: number, l4len: number): number {
    if (this.pos + MAX_RECORD > BUF_SIZE) this.flush();
    const b = this.buf;
    const f = this.pos + 16;
    this.frame = f;
    const fl = this.u8[(slot << 6) + FLAGS]!;
    const c = this.u32[(slot << 4) + CLI]!;
    // Ethernet: clients have their own MACs, servers sit behind a gateway.
    if (fromServer) {
      writeClientMac(b, f, c);
      writeGatewayMac(b, f + 6);
    } else {
      writeGatewayMac(b, f);
      writeClientMac(b, f + 6, c);
    }
    let o = f + 12;
    if (fl & F_QINQ) {
      b[o] = 0x88;
      b[o + 1] = 0xa8;
      w16be(b, o + 2, this.u16[(slot << 5) + VLANO]!);
      b[o + 4] = 0x81;
      w16be(b, o + 6, this.u16[(slot << 5) + VLANI]!);
      o += 8;
      this.qinqPackets++;
      this.vlanPackets++;
    } else if (fl & F_VLAN) {
      b[o] = 0x81;
      w16be(b, o + 2, this.u16[(slot << 5) + VLANO]!);
      o += 4;
      this.vlanPackets++;
    }
    const s = this.u32[(slot << 4) + SRV]!;
    if (fl & F_V6) {
      b[o] = 0x86;
      b[o + 1] = 0xdd;
      o += 2;
      const lab = Math.imul(c ^ (this.u16[(slot << 5) + CPORT]! << 14), 0x9e3779b1) >>> 12;
      b[o] = 0x60;
      b[o + 1] = (lab >>> 16) & 0x0f;
      b[o + 2] = (lab >>> 8) & 0xff;
      b[o + 3] = lab & 0xff;
      w16be(b, o + 4, l4len);
      b[o + 6] = proto;
      b[o + 7] = fromServer ? 52 : 64;
      if (fromServer) {
        writeServer6(b, o + 8, s);
        writeClient6(b, o + 24, c);
      } else {
        writeClient6(b, o + 8, c);
        writeServer6(b, o + 24, s);
      }
      this.ipv6Packets++;
      this.v6 = true;
      this.frameLen = o + 40 + l4len - f;
      return o + 40;
    }
    b[o] = 0x08;
    o += 2;
    b[o] = 0x45;
    w16be(b, o + 2, 20 + l4len);
    const id = this.u16[(slot << 5) + IPID]!;
    this.u16[(slot << 5) + IPID] = id + 1;
    w16be(b, o + 4, fromServer ? id ^ 0x8000 : id);
    b[o + 6] = 0x40; // DF
    b[o + 8] = fromServer ? 52 : 64;
    b[o + 9] = proto;
    if (fromServer) {
      writeServer4(b, o + 12, s);
      writeClient4(b, o + 16, c);
    } else {
      writeClient4(b, o + 12, c);
      writeServer4(b, o + 16, s);
    }
    w16be(b, o + 10, ipv4Checksum(b, o));
    this.v6 = false;
    this.frameLen = o + 20 + l4len - f;
    return o + 20;
  }

  /**
   * Fills the L4 checksum of the packet begun by beginIp(): pseudo header
   * (not for ICMPv4) plus the L4 bytes. Bytes past the snaplen are zero in
   * every generated payload except DNS, whose cut tail comes as `extra`.
   */
  private l4Checksum(o: number, l4len: number, proto: number, at: number, extra: number): void {
    const b = this.buf;
    let sum = extra;
    if (proto !== 1) {
      sum += proto + l4len;
      sum += this.v6 ? sumWords(b, o - 32, o) : sumWords(b, o - 8, o);
    }
    const capEnd = this.frame + SNAPLEN;
    const end = o + l4len < capEnd ? o + l4len : capEnd;
    sum += sumWords(b, o, end);
    sum = (sum & 0xffff) + Math.floor(sum / 65536);
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    let c = ~sum & 0xffff;
    if (c === 0 && proto === 17) c = 0xffff;
    w16be(b, o + at, c);
  }

  /** Marks a flow as having sent its first packet. */
  private touch(slot: number): void {
    const fl = this.u8[(slot << 6) + FLAGS]!;
    this.u32[(slot << 4) + FPKTS]!++;
    this.u16[(slot << 5) + LAST] = this.tsSec - START_TIME_SEC;
    this.poolPackets[this.u8[(slot << 6) + POOL]!]!++;
    if (fl & F_STARTED) return;
    this.u8[(slot << 6) + FLAGS] = fl | F_STARTED;
    this.flows++;
    this.startSec[slot] = this.tsSec + this.tsUsec / 1e6;
    const k = this.u8[(slot << 6) + KIND]!;
    this.poolFlows[this.u8[(slot << 6) + POOL]!]!++;
    if (k === K_TCP) this.tcpFlows++;
    else if (k === K_ICMP) this.icmpFlows++;
    else this.udpFlows++;
    if (++this.active > this.peakActive) this.peakActive = this.active;
  }

  /** The flow in `slot` is over: record it and put a fresh flow in its place. */
  private done(slot: number): void {
    this.active--;
    this.finishedFlows++;
    this.finishedHist[log2(this.u32[(slot << 4) + FPKTS]!)]!++;
    this.finishedSizes.push(this.u32[(slot << 4) + FPKTS]!);
    const dur = this.tsSec + this.tsUsec / 1e6 - this.startSec[slot]!;
    this.durationHist[this.u8[(slot << 6) + POOL]! * 32 + log2(Math.floor(dur * 1000) + 1)]!++;
    this.newFlow(slot);
    // the new flow starts soon
    this.setWeight(slot, true);
  }

  /** Puts the flow in `slot` at its fast or base weight. */
  private setWeight(slot: number, fast: boolean): void {
    const p = this.u8[(slot << 6) + POOL]!;
    const pool = this.pools[p]!;
    const i = slot - this.poolBase[p]!;
    const f = this.poolFast[p]!;
    // count the slots at the fast weight (a base weight equal to it counts too: harmless)
    const base = decodeWeight(this.u16[(slot << 5) + BASEW]!);
    // an elephant's own pace may beat the fast weight: answers never come slower than it
    const w = fast && f > base ? f : base;
    this.fastCount[p]! += (w === f ? 1 : 0) - (pool.w[i] === f ? 1 : 0);
    pool.set(i, w);
  }

  /** A new flow for the pool of `slot` (its weight is left to the caller). */
  private newFlow(slot: number): void {
    switch (this.u8[(slot << 6) + POOL]!) {
      case PL_TCP_LONG:
        return this.newTcp(slot, true);
      case PL_TCP_SHORT:
        return this.newTcp(slot, false);
      case PL_STREAM:
        return this.newStream(slot);
      case PL_DNS:
        return this.newDns(slot);
      default:
        return this.newIcmp(slot);
    }
  }

  // ---------------------------------------------------------------- flow creation

  private common(slot: number, kind: number): void {
    const r = this.rng;
    let fl = 0;
    if (r.f() < P_IPV6) fl |= F_V6;
    const v = r.f();
    if (v < P_QINQ) {
      fl |= F_QINQ;
      this.u16[(slot << 5) + VLANO] = 100 + r.int(20);
      this.u16[(slot << 5) + VLANI] = 1 + r.int(4094);
    } else if (v < P_QINQ + P_VLAN) {
      fl |= F_VLAN;
      this.u16[(slot << 5) + VLANO] = 1 + r.int(4094);
    }
    this.u8[(slot << 6) + FLAGS] = fl;
    this.u8[(slot << 6) + KIND] = kind;
    this.u8[(slot << 6) + STATE] = 0;
    this.u32[(slot << 4) + CNT] = 0;
    this.u32[(slot << 4) + FPKTS] = 0;
    this.u32[(slot << 4) + AUX2] = 0;
    const c = r.int(N_CLIENTS);
    this.u32[(slot << 4) + CLI] = c;
    // Popular servers get most flows (Zipf-like).
    const u = r.f();
    this.u32[(slot << 4) + SRV] = Math.floor(N_SERVERS * u * u * u);
    let port = this.clientPort[c]! + 1;
    if (port > 60999) port = 32768;
    this.clientPort[c] = port;
    this.u16[(slot << 5) + CPORT] = port;
    this.u16[(slot << 5) + IPID] = r.u32();
  }

  private setBase(slot: number, est: number): void {
    this.u16[(slot << 5) + BASEW] = encodeWeight(Math.pow(est, W_EXP));
  }

  /**
   * A TCP connection. Long: persistent, several request/response rounds with
   * think times, heavy-tailed volume (the elephants). Short: one exchange of
   * a few KB, or a refused / unanswered SYN.
   */
  private newTcp(slot: number, long: boolean): void {
    const r = this.rng;
    this.common(slot, K_TCP);
    const p = r.f();
    this.u16[(slot << 5) + SPORT] =
      p < 0.62 ? 443 : p < 0.8 ? 80 : p < 0.83 ? 8080 : p < 0.85 ? 22 : p < 0.87 ? 993 : p < 0.88 ? 25 : p < 0.9 ? 5432 : 1024 + r.int(48000);
    this.u32[(slot << 4) + SEQC] = r.u32();
    this.u32[(slot << 4) + SEQS] = r.u32();
    let fl = this.u8[(slot << 6) + FLAGS]!;
    const q = r.f();
    let est: number;
    if (!long && q < 0.04) {
      // nobody home: SYN and 1-2 retransmissions
      this.u32[(slot << 4) + AUX] = 1 + r.int(2);
      est = 3;
    } else if (!long && q < 0.1) {
      // refused: SYN, RST-ACK
      this.u32[(slot << 4) + AUX] = 0xffffffff;
      est = 2;
    } else {
      this.u32[(slot << 4) + AUX] = 0;
      const mss = mssOf(fl);
      const rounds = long ? 1 + Math.floor(r.pareto(1, 1.1, 2000)) : 1;
      let req: number;
      let rsp: number;
      if (r.f() < (long ? 0.05 : 0.01)) {
        // upload
        req = long ? r.pareto(4000, 1.0, 2e9) / rounds : r.pareto(2000, 1.2, 1e5);
        rsp = 100 + r.int(400);
      } else {
        req = 80 + r.int(900);
        rsp = long ? r.pareto(2000, 0.9, 4e9) / rounds : r.pareto(600, 1.2, 2e5);
      }
      req = Math.max(1, Math.floor(req));
      rsp = Math.max(1, Math.floor(rsp));
      this.u32[(slot << 4) + REQB] = req;
      this.u32[(slot << 4) + RSPB] = rsp;
      this.u16[(slot << 5) + ROUNDS] = rounds;
      est = 6 + rounds * (1.5 * (Math.ceil(req / mss) + Math.ceil(rsp / mss)) + 1);
      if (r.f() < 0.1) fl |= F_CLOSE_RST;
      if (r.f() < 0.3) fl |= F_CLOSER_SERVER;
    }
    this.u8[(slot << 6) + FLAGS] = fl;
    this.setBase(slot, est);
  }

  /** A long UDP stream (QUIC-like), heavy-tailed length. */
  private newStream(slot: number): void {
    const r = this.rng;
    this.common(slot, K_STREAM);
    this.u16[(slot << 5) + SPORT] = r.f() < 0.85 ? 443 : 3478;
    const n = Math.floor(r.pareto(12, 0.9, 2e6));
    this.u32[(slot << 4) + AUX2] = n;
    this.u32[(slot << 4) + AUX] = 1150 + r.int(200); // server payload size
    this.setBase(slot, n);
  }

  /** A DNS exchange (A, or A + AAAA; a few unanswered) or an NTP one. */
  private newDns(slot: number): void {
    const r = this.rng;
    if (r.f() < 0.95) {
      this.common(slot, K_DNS);
      this.u16[(slot << 5) + SPORT] = 53;
      this.u32[(slot << 4) + AUX] = r.u32() & 0xffff; // transaction id
      // exchanges: A only, or A + AAAA; 4 % never answered (1-3 tries)
      const noAnswer = r.f() < 0.04;
      this.u32[(slot << 4) + AUX2] = noAnswer ? 0x100 | (1 + r.int(3)) : r.f() < 0.4 ? 2 : 1;
    } else {
      this.common(slot, K_NTP);
      this.u16[(slot << 5) + SPORT] = 123;
    }
    this.setBase(slot, 1); // the pace of retries after a timeout
  }

  /** A ping session: echo requests about once a second, most answered. */
  private newIcmp(slot: number): void {
    const r = this.rng;
    this.common(slot, K_ICMP);
    // Each session gets a client of its own (a stride through the client
    // space), so no two sessions share a host pair, whatever a tracker keys
    // ICMP echo on.
    this.u32[(slot << 4) + CLI] = Math.imul(this.icmpSessions++, 0x9e3779b1 | 1) & (N_CLIENTS - 1);
    this.u16[(slot << 5) + SPORT] = 0;
    this.u32[(slot << 4) + AUX] = r.u32() & 0xffff; // echo identifier
    this.u32[(slot << 4) + AUX2] = Math.floor(r.pareto(1, 1.2, 1000)); // echo requests
    this.u32[(slot << 4) + CNT] = 1; // sequence number
    this.setBase(slot, 1);
  }

  // ---------------------------------------------------------------- steps

  run(packets: number): void {
    const r = this.rng;
    const cum = this.poolCum;
    const pools = this.pools;
    const base = this.poolBase;
    const startNext = this.startNext;
    const startEnd = this.startEnd;
    const fastCount = this.fastCount;
    const startCap = this.startCap;
    const dueHead = this.dueHead;
    const dueTail = this.dueTail;
    let sweepAt = this.tsSec + SWEEP_EVERY_S;
    for (let i = 0; i < packets; i++) {
      if (this.tsSec >= sweepAt) {
        this.sweep();
        sweepAt = this.tsSec + SWEEP_EVERY_S;
      }
      const x = r.f();
      let p = 0;
      while (p < N_POOLS && x >= cum[p]!) p++;
      if (p === N_POOLS) {
        this.stepArp();
        continue;
      }
      const pool = pools[p]!;
      const first = startNext[p]!;
      let slot: number;
      if (dueHead[p] !== dueTail[p] && (slot = this.nextDue(p)) >= 0) {
        // a flow silent for MAX_IDLE_S sends now
      } else if (first < startEnd[p]! && (pool.total === 0 || (fastCount[p]! < startCap[p]! && r.f() < START_SHARE))) {
        slot = first; // the next of the first flows starts
        startNext[p] = first + 1;
      } else {
        slot = base[p]! + pool.find(Math.floor(r.f() * pool.total));
      }
      if (p <= PL_TCP_SHORT) this.stepTcp(slot);
      else if (p === PL_ICMP) this.stepIcmp(slot);
      else this.stepUdp(slot);
    }
  }

  /** Queues the flows quiet for MAX_IDLE_S (see nextDue()), so no idle timeout of a minute splits them. */
  private sweep(): void {
    const now = this.tsSec - START_TIME_SEC;
    this.aliveAt.push([now, this.active]);
    const u8 = this.u8;
    const u16 = this.u16;
    const queued = this.queued;
    for (let i = 0; i < this.nSlots; i++) {
      if (queued[i] === 0 && u8[(i << 6) + FLAGS]! & F_STARTED && now - u16[(i << 5) + LAST]! >= MAX_IDLE_S) {
        const p = u8[(i << 6) + POOL]!;
        const q = this.dueQueue[p]!;
        q[this.dueTail[p]!] = i;
        this.dueTail[p] = (this.dueTail[p]! + 1) % q.length;
        queued[i] = 1;
      }
    }
  }

  /**
   * The next flow of pool `p` due for a keep-alive packet, or -1. A queued
   * flow that has sent since (or was replaced) is dropped from the queue.
   */
  private nextDue(p: number): number {
    const q = this.dueQueue[p]!;
    const now = this.tsSec - START_TIME_SEC;
    while (this.dueHead[p] !== this.dueTail[p]) {
      const slot = q[this.dueHead[p]!]!;
      this.dueHead[p] = (this.dueHead[p]! + 1) % q.length;
      this.queued[slot] = 0;
      if (this.u8[(slot << 6) + FLAGS]! & F_STARTED && now - this.u16[(slot << 5) + LAST]! >= MAX_IDLE_S - SWEEP_EVERY_S) {
        this.idleWakeups++;
        return slot;
      }
    }
    return -1;
  }

  private tcpPacket(slot: number, fromServer: boolean, thFlags: number, seq: number, ack: number, payload: number, syn: boolean): void {
    const hl = syn ? 28 : 20;
    const o = this.beginIp(slot, fromServer, 6, hl + payload);
    const b = this.buf;
    if (fromServer) {
      w16be(b, o, this.u16[(slot << 5) + SPORT]!);
      w16be(b, o + 2, this.u16[(slot << 5) + CPORT]!);
    } else {
      w16be(b, o, this.u16[(slot << 5) + CPORT]!);
      w16be(b, o + 2, this.u16[(slot << 5) + SPORT]!);
    }
    w32be(b, o + 4, seq);
    w32be(b, o + 8, thFlags & TH_ACK ? ack : 0);
    b[o + 12] = (hl >> 2) << 4;
    b[o + 13] = thFlags;
    if (syn) {
      w16be(b, o + 14, 64240);
      // MSS, NOP, window scale 7
      b[o + 20] = 2;
      b[o + 21] = 4;
      w16be(b, o + 22, mssOf(this.u8[(slot << 6) + FLAGS]!));
      b[o + 24] = 1;
      b[o + 25] = 3;
      b[o + 26] = 3;
      b[o + 27] = 7;
    } else if (!(thFlags & TH_RST)) {
      w16be(b, o + 14, fromServer ? 501 : 2038);
    }
    this.l4Checksum(o, hl + payload, 6, 16, 0);
    this.tcpPackets++;
    this.commit();
  }

  private stepTcp(slot: number): void {
    this.touch(slot);
    const u8 = this.u8;
    const u32 = this.u32;
    const b8 = slot << 6;
    const b32 = slot << 4;
    const st = u8[b8 + STATE]!;
    const fl = u8[b8 + FLAGS]!;
    const sc = u32[b32 + SEQC]!;
    const ss = u32[b32 + SEQS]!;
    // Is the flow's next packet due soon (an answer, an ACK, a back-to-back segment)?
    let fast = true;
    switch (st) {
      case T_SYN: {
        this.tcpPacket(slot, false, TH_SYN, sc, 0, 0, true);
        u32[b32 + SEQC] = (sc + 1) >>> 0;
        const a = u32[b32 + AUX]!;
        if (a === 0) u8[b8 + STATE] = T_SYNACK;
        else if (a === 0xffffffff) u8[b8 + STATE] = T_REFUSE;
        else {
          u8[b8 + STATE] = T_SYN_RETRY;
          fast = false; // retransmission after a timeout
        }
        break;
      }
      case T_SYN_RETRY: {
        this.tcpPacket(slot, false, TH_SYN, (sc - 1) >>> 0, 0, 0, true);
        const left = u32[b32 + AUX]! - 1;
        u32[b32 + AUX] = left;
        if (left === 0) return this.done(slot);
        fast = false;
        break;
      }
      case T_REFUSE:
        this.tcpPacket(slot, true, TH_RST | TH_ACK, 0, sc, 0, false);
        return this.done(slot);
      case T_SYNACK:
        this.tcpPacket(slot, true, TH_SYN | TH_ACK, ss, sc, 0, true);
        this.rttHist[log2(Math.round((this.tsSec + this.tsUsec / 1e6 - this.startSec[slot]!) * 1e6))]!++;
        u32[b32 + SEQS] = (ss + 1) >>> 0;
        u8[b8 + STATE] = T_HS_ACK;
        break;
      case T_HS_ACK:
        this.tcpPacket(slot, false, TH_ACK, sc, ss, 0, false);
        u8[b8 + STATE] = T_DATA;
        u8[b8 + FLAGS] = fl & ~F_DIR_SERVER;
        u32[b32 + REM] = u32[b32 + REQB]!;
        u32[b32 + CNT] = 0;
        break;
      case T_DATA: {
        const fromServer = (fl & F_DIR_SERVER) !== 0;
        if (fl & F_RETX) {
          // retransmission of the previous segment
          const len = u32[b32 + AUX2]!;
          if (fromServer) this.tcpPacket(slot, true, TH_ACK, (ss - len) >>> 0, sc, len, false);
          else this.tcpPacket(slot, false, TH_ACK, (sc - len) >>> 0, ss, len, false);
          u8[b8 + FLAGS] = fl & ~F_RETX;
          fast = u8[b8 + STATE] !== T_DATA;
          break;
        }
        const rem = u32[b32 + REM]!;
        const mss = mssOf(fl);
        const len = rem < mss ? rem : mss;
        const last = len === rem;
        const th = last ? TH_ACK | TH_PSH : TH_ACK;
        if (fromServer) {
          this.tcpPacket(slot, true, th, ss, sc, len, false);
          u32[b32 + SEQS] = (ss + len) >>> 0;
        } else {
          this.tcpPacket(slot, false, th, sc, ss, len, false);
          u32[b32 + SEQC] = (sc + len) >>> 0;
        }
        u32[b32 + REM] = rem - len;
        const c = u32[b32 + CNT]! + 1;
        if (last) {
          u32[b32 + CNT] = 0;
          if (!fromServer) {
            // request complete: the response follows (its first segment acks the request)
            u8[b8 + FLAGS] = fl | F_DIR_SERVER;
            u32[b32 + REM] = u32[b32 + RSPB]!;
          } else {
            u8[b8 + STATE] = T_DATA_ACK;
          }
        } else {
          if (c >= 2) {
            u8[b8 + STATE] = T_DATA_ACK;
            u32[b32 + CNT] = 0;
          } else {
            u32[b32 + CNT] = c;
            fast = false; // the transfer's own pace
          }
          if (this.rng.f() < P_RETX) {
            // lost: sent again after a timeout, before anything else
            u32[b32 + AUX2] = len;
            u8[b8 + FLAGS] = fl | F_RETX;
            fast = false;
          }
        }
        break;
      }
      case T_DATA_ACK: {
        const fromServer = (fl & F_DIR_SERVER) !== 0;
        // the receiver acknowledges everything so far
        if (fromServer) this.tcpPacket(slot, false, TH_ACK, sc, ss, 0, false);
        else this.tcpPacket(slot, true, TH_ACK, ss, sc, 0, false);
        fast = false;
        if (u32[b32 + REM]! > 0) {
          u8[b8 + STATE] = T_DATA;
          break;
        }
        // end of a response: after some think time, the next round or the close
        const rounds = this.u16[(slot << 5) + ROUNDS]! - 1;
        this.u16[(slot << 5) + ROUNDS] = rounds;
        if (rounds > 0) {
          u8[b8 + STATE] = T_DATA;
          u8[b8 + FLAGS] = fl & ~F_DIR_SERVER;
          u32[b32 + REM] = u32[b32 + REQB]!;
        } else {
          u8[b8 + STATE] = fl & F_CLOSE_RST ? T_RST : T_FIN1;
        }
        break;
      }
      case T_FIN1:
        if (fl & F_CLOSER_SERVER) {
          this.tcpPacket(slot, true, TH_FIN | TH_ACK, ss, sc, 0, false);
          u32[b32 + SEQS] = (ss + 1) >>> 0;
        } else {
          this.tcpPacket(slot, false, TH_FIN | TH_ACK, sc, ss, 0, false);
          u32[b32 + SEQC] = (sc + 1) >>> 0;
        }
        u8[b8 + STATE] = T_FIN2;
        break;
      case T_FIN2:
        if (fl & F_CLOSER_SERVER) {
          this.tcpPacket(slot, false, TH_FIN | TH_ACK, sc, ss, 0, false);
          u32[b32 + SEQC] = (sc + 1) >>> 0;
        } else {
          this.tcpPacket(slot, true, TH_FIN | TH_ACK, ss, sc, 0, false);
          u32[b32 + SEQS] = (ss + 1) >>> 0;
        }
        u8[b8 + STATE] = T_FIN3;
        break;
      case T_FIN3:
        if (fl & F_CLOSER_SERVER) this.tcpPacket(slot, true, TH_ACK, ss, sc, 0, false);
        else this.tcpPacket(slot, false, TH_ACK, sc, ss, 0, false);
        return this.done(slot);
      case T_RST:
        if (fl & F_CLOSER_SERVER) this.tcpPacket(slot, true, TH_RST | TH_ACK, ss, sc, 0, false);
        else this.tcpPacket(slot, false, TH_RST | TH_ACK, sc, ss, 0, false);
        return this.done(slot);
      default:
        throw new Error(`bad TCP state ${st}`);
    }
    this.setWeight(slot, fast);
  }

  private udpHeader(o: number, slot: number, fromServer: boolean, len: number): void {
    const b = this.buf;
    if (fromServer) {
      w16be(b, o, this.u16[(slot << 5) + SPORT]!);
      w16be(b, o + 2, this.u16[(slot << 5) + CPORT]!);
    } else {
      w16be(b, o, this.u16[(slot << 5) + CPORT]!);
      w16be(b, o + 2, this.u16[(slot << 5) + SPORT]!);
    }
    w16be(b, o + 4, 8 + len);
    this.udpPackets++;
  }

  /**
   * Copies a payload prepared in scratch into the packet at `o`, cut at the
   * snaplen; returns the checksum sum of the part that was cut off.
   */
  private copyPayload(src: Uint8Array, len: number, o: number): number {
    const room = this.frame + SNAPLEN - o;
    const n = len < room ? len : room;
    if (n > 0) this.buf.set(src.subarray(0, n), o);
    if (n >= len) return 0;
    // an odd cut leaves the low byte of a word that began in the packet
    return n & 1 ? src[n]! + sumWords(src, n + 1, len) : sumWords(src, n, len);
  }

  private stepUdp(slot: number): void {
    this.touch(slot);
    const k = this.u8[(slot << 6) + KIND]!;
    const st = this.u8[(slot << 6) + STATE]!;
    if (k === K_DNS) {
      const a2 = this.u32[(slot << 4) + AUX2]!;
      const aaaa = (this.u32[(slot << 4) + CNT]! & 1) === 1;
      if (st === 0) {
        const len = this.dns(slot, false, aaaa);
        const o = this.beginIp(slot, false, 17, 8 + len);
        this.udpHeader(o, slot, false, len);
        this.l4Checksum(o, 8 + len, 17, 6, this.copyPayload(this.dnsScratch, len, o + 8));
        this.commit();
        if (a2 & 0x100) {
          // unanswered: retry with the same id until the tries run out
          const left = (a2 & 0xff) - 1;
          this.u32[(slot << 4) + AUX2] = 0x100 | left;
          if (left === 0) this.done(slot);
          else this.setWeight(slot, false);
        } else {
          this.u8[(slot << 6) + STATE] = 1;
          this.setWeight(slot, true);
        }
      } else {
        const len = this.dns(slot, true, aaaa);
        const o = this.beginIp(slot, true, 17, 8 + len);
        this.udpHeader(o, slot, true, len);
        this.l4Checksum(o, 8 + len, 17, 6, this.copyPayload(this.dnsScratch, len, o + 8));
        this.commit();
        const left = a2 - 1;
        this.u32[(slot << 4) + AUX2] = left;
        if (left === 0) this.done(slot);
        else {
          // the AAAA query follows at once
          this.u8[(slot << 6) + STATE] = 0;
          this.u32[(slot << 4) + CNT] = this.u32[(slot << 4) + CNT]! + 1;
          this.u32[(slot << 4) + AUX] = (this.u32[(slot << 4) + AUX]! + 1) & 0xffff;
          this.setWeight(slot, true);
        }
      }
      return;
    }
    if (k === K_NTP) {
      const fromServer = st === 1;
      const o = this.beginIp(slot, fromServer, 17, 8 + 48);
      this.udpHeader(o, slot, fromServer, 48);
      const b = this.buf;
      b[o + 8] = fromServer ? 0x24 : 0x23; // NTPv4 server / client
      if (fromServer) {
        b[o + 9] = 2; // stratum
        w32be(b, o + 20, 0xc0a80001); // reference id
      }
      b[o + 10] = 6; // poll
      b[o + 11] = 0xe9; // precision
      this.l4Checksum(o, 8 + 48, 17, 6, 0);
      this.commit();
      if (fromServer) this.done(slot);
      else {
        this.u8[(slot << 6) + STATE] = 1;
        this.setWeight(slot, true);
      }
      return;
    }
    // long UDP stream (QUIC-like): three big server datagrams per small client one
    const c = this.u32[(slot << 4) + CNT]!;
    const fromServer = c % 4 !== 3;
    const len = fromServer ? this.u32[(slot << 4) + AUX]! : 32 + ((c * 7) & 31);
    const o = this.beginIp(slot, fromServer, 17, 8 + len);
    this.udpHeader(o, slot, fromServer, len);
    this.buf[o + 8] = c < 2 ? 0xc3 : 0x43; // QUIC long header first, then short headers
    this.l4Checksum(o, 8 + len, 17, 6, 0);
    this.commit();
    this.u32[(slot << 4) + CNT] = c + 1;
    const left = this.u32[(slot << 4) + AUX2]! - 1;
    this.u32[(slot << 4) + AUX2] = left;
    if (left <= 0) this.done(slot);
    else this.setWeight(slot, false);
  }

  /** Builds a DNS query or response for `slot` in the scratch buffer; returns its length. */
  private dns(slot: number, response: boolean, aaaa: boolean): number {
    const d = this.dnsScratch;
    const id = this.u32[(slot << 4) + AUX]!;
    d.fill(0, 0, 64);
    d[0] = id >>> 8;
    d[1] = id & 0xff;
    d[2] = response ? 0x81 : 0x01;
    d[3] = response ? 0x80 : 0x00;
    d[5] = 1; // one question
    // qname: h<6 hex digits>.example.com
    let o = 12;
    d[o++] = 7;
    d[o++] = 0x68; // 'h'
    const v = (this.u32[(slot << 4) + SRV]! * 2654435761) >>> 8;
    for (let s = 20; s >= 0; s -= 4) d[o++] = HEX[(v >>> s) & 15]!;
    d[o++] = 7;
    for (let i = 0; i < 7; i++) d[o++] = EXAMPLE[i]!;
    d[o++] = 3;
    d[o++] = 0x63;
    d[o++] = 0x6f;
    d[o++] = 0x6d;
    d[o++] = 0;
    const qtype = aaaa ? 28 : 1;
    d[o++] = 0;
    d[o++] = qtype;
    d[o++] = 0;
    d[o++] = 1;
    if (!response) return o;
    // 1-2 answers usually, up to 16 (a response over the snaplen) for some names
    const sv = this.u32[(slot << 4) + SRV]!;
    const n = 1 + ((sv >>> 3) % 10 === 0 ? sv & 15 : sv & 1);
    d[7] = n;
    const rdlen = aaaa ? 16 : 4;
    for (let i = 0; i < n; i++) {
      d[o++] = 0xc0;
      d[o++] = 12;
      d[o++] = 0;
      d[o++] = qtype;
      d[o++] = 0;
      d[o++] = 1;
      d[o++] = 0;
      d[o++] = 0;
      d[o++] = 0x01;
      d[o++] = 0x2c; // ttl 300
      d[o++] = 0;
      d[o++] = rdlen;
      if (aaaa) {
        d[o++] = 0x20;
        d[o++] = 0x01;
        d[o++] = 0x0d;
        d[o++] = 0xb8;
        for (let j = 4; j < 15; j++) d[o++] = 0;
        d[o++] = i + 1;
      } else {
        d[o++] = 198;
        d[o++] = 51;
        d[o++] = 100;
        d[o++] = i + 1;
      }
    }
    return o;
  }

  private stepIcmp(slot: number): void {
    this.touch(slot);
    const st = this.u8[(slot << 6) + STATE]!;
    const fromServer = st === 1;
    const v6 = (this.u8[(slot << 6) + FLAGS]! & F_V6) !== 0;
    const o = this.beginIp(slot, fromServer, v6 ? 58 : 1, 8 + 56);
    const b = this.buf;
    b[o] = v6 ? (fromServer ? 129 : 128) : fromServer ? 0 : 8;
    w16be(b, o + 4, this.u32[(slot << 4) + AUX]!);
    w16be(b, o + 6, this.u32[(slot << 4) + CNT]!);
    // ping's payload: timestamp then 0x10, 0x11, ...
    w32le(b, o + 8, this.tsSec);
    w32le(b, o + 12, this.tsUsec);
    for (let i = 16; i < 56 && o + 8 + i < this.frame + SNAPLEN; i++) b[o + 8 + i] = i;
    this.l4Checksum(o, 8 + 56, v6 ? 58 : 1, 2, 0);
    this.icmpPackets++;
    this.commit();
    if (fromServer || this.rng.f() < 0.03) {
      // reply sent (or request lost): next request or the end
      const left = this.u32[(slot << 4) + AUX2]! - 1;
      this.u32[(slot << 4) + AUX2] = left;
      this.u32[(slot << 4) + CNT] = (this.u32[(slot << 4) + CNT]! + 1) & 0xffff;
      this.u8[(slot << 6) + STATE] = 0;
      if (left <= 0) this.done(slot);
      else this.setWeight(slot, false);
    } else {
      this.u8[(slot << 6) + STATE] = 1;
      this.setWeight(slot, true);
    }
  }

  private stepArp(): void {
    if (this.pos + MAX_RECORD > BUF_SIZE) this.flush();
    const r = this.rng;
    const b = this.buf;
    const f = this.pos + 16;
    const reply = this.arpPending;
    if (!reply) {
      this.arpHost = r.int(N_CLIENTS);
      this.arpTarget = r.f() < 0.7 ? 0xffffffff : r.int(N_CLIENTS); // mostly the gateway
      const v = r.f();
      this.arpVlan = v < 0.15 ? 1 + r.int(4094) : 0;
    }
    this.arpPending = !reply;
    const host = this.arpHost;
    const target = this.arpTarget;
    // requests are broadcast from the host, replies come back from the target
    if (reply) {
      writeClientMac(b, f, host);
      if (target === 0xffffffff) writeGatewayMac(b, f + 6);
      else writeClientMac(b, f + 6, target);
    } else {
      b.fill(0xff, f, f + 6);
      writeClientMac(b, f + 6, host);
    }
    let o = f + 12;
    if (this.arpVlan) {
      b[o] = 0x81;
      w16be(b, o + 2, this.arpVlan);
      o += 4;
      this.vlanPackets++;
    }
    b[o] = 0x08;
    b[o + 1] = 0x06;
    o += 2;
    b[o + 1] = 1; // Ethernet
    b[o + 2] = 0x08; // IPv4
    b[o + 4] = 6;
    b[o + 5] = 4;
    b[o + 7] = reply ? 2 : 1;
    // sender, target
    const sha = o + 8;
    const spa = o + 14;
    const tha = o + 18;
    const tpa = o + 24;
    if (reply) {
      if (target === 0xffffffff) {
        writeGatewayMac(b, sha);
        writeGateway4(b, spa);
      } else {
        writeClientMac(b, sha, target);
        writeClient4(b, spa, target);
      }
      writeClientMac(b, tha, host);
      writeClient4(b, tpa, host);
    } else {
      writeClientMac(b, sha, host);
      writeClient4(b, spa, host);
      if (target === 0xffffffff) writeGateway4(b, tpa);
      else writeClient4(b, tpa, target);
    }
    this.frame = f;
    this.frameLen = o + 28 - f;
    this.arpPackets++;
    this.commit();
  }

  stats(seconds: number): BenchCaptureStats {
    return {
      packets: this.packets,
      flows: this.flows,
      bytes: this.fileBytes,
      wireBytes: this.wireBytes,
      tcpFlows: this.tcpFlows,
      udpFlows: this.udpFlows,
      icmpFlows: this.icmpFlows,
      finishedFlows: this.finishedFlows,
      peakActiveFlows: this.peakActive,
      tcpPackets: this.tcpPackets,
      udpPackets: this.udpPackets,
      icmpPackets: this.icmpPackets,
      arpPackets: this.arpPackets,
      ipv6Packets: this.ipv6Packets,
      vlanPackets: this.vlanPackets,
      qinqPackets: this.qinqPackets,
      truncatedPackets: this.truncated,
      spanSeconds: this.tsSec - START_TIME_SEC + this.tsUsec / 1e6,
      seconds,
    };
  }

  /** Share of all flow packets carried by the biggest 1 % and 0.1 % of flows. */
  topShares(): string {
    const all = this.finishedSizes.slice();
    for (let i = 0; i < this.nSlots; i++) if (this.u8[(i << 6) + FLAGS]! & F_STARTED) all.push(this.u32[(i << 4) + FPKTS]!);
    all.sort((a, b) => b - a);
    let total = 0;
    for (const x of all) total += x;
    const share = (f: number): string => {
      let s = 0;
      const n = Math.max(1, Math.floor(all.length * f));
      for (let i = 0; i < n; i++) s += all[i]!;
      return ((100 * s) / total).toFixed(1) + '%';
    };
    return `top 1 % of flows: ${share(0.01)} of packets, top 0.1 %: ${share(0.001)}`;
  }

  /** The biggest flows still open at the end: "pool:packets". */
  largestOpen(n: number): string {
    const all: Array<[number, number]> = [];
    for (let i = 0; i < this.nSlots; i++) {
      if (this.u8[(i << 6) + FLAGS]! & F_STARTED) all.push([this.u32[(i << 4) + FPKTS]!, this.u8[(i << 6) + POOL]!]);
    }
    all.sort((a, b) => b[0] - a[0]);
    return all
      .slice(0, n)
      .map(([k, p]) => `${POOL_NAMES[p]}:${k}`)
      .join(' ');
  }

  /** log2 histogram of packets per flow still open at the end of the capture. */
  openHist(): Float64Array {
    const h = new Float64Array(32);
    for (let i = 0; i < this.nSlots; i++) if (this.u8[(i << 6) + FLAGS]! & F_STARTED) h[log2(this.u32[(i << 4) + FPKTS]!)]!++;
    return h;
  }
}

const HEX = Uint8Array.from('0123456789abcdef', (ch) => ch.charCodeAt(0));
const EXAMPLE = Uint8Array.from('example', (ch) => ch.charCodeAt(0));

/** A weight in 16 bits: 1..32767 exactly, above that in steps of 64 (up to 2^21). */
function encodeWeight(w: number): number {
  const r = Math.max(1, Math.round(w));
  return r < 32768 ? r : Math.min(65535, 32767 + Math.round(r / 64));
}
function decodeWeight(v: number): number {
  return v < 32768 ? v : (v - 32767) * 64;
}

function mssOf(flags: number): number {
  return flags & F_V6 ? 1440 : 1460;
}

function log2(n: number): number {
  return n <= 1 ? 0 : 31 - Math.clz32(n);
}

function w16be(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function w32be(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
function w16le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
function w32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = v >>> 24;
}

/** 02:00:0a:xx:xx:xx, locally administered, one per client. */
function writeClientMac(b: Uint8Array, o: number, c: number): void {
  b[o] = 0x02;
  b[o + 2] = 0x0a;
  b[o + 3] = (c >>> 16) & 0xff;
  b[o + 4] = (c >>> 8) & 0xff;
  b[o + 5] = c & 0xff;
}
/** 00:00:5e:00:01:01 (VRRP virtual router MAC). */
function writeGatewayMac(b: Uint8Array, o: number): void {
  b[o + 2] = 0x5e;
  b[o + 4] = 0x01;
  b[o + 5] = 0x01;
}
/** Clients: 10.0.0.0/14. */
function writeClient4(b: Uint8Array, o: number, c: number): void {
  b[o] = 10;
  b[o + 1] = (c >>> 16) & 0xff;
  b[o + 2] = (c >>> 8) & 0xff;
  b[o + 3] = c & 0xff;
}
/** The gateway: 10.255.255.254. */
function writeGateway4(b: Uint8Array, o: number): void {
  b[o] = 10;
  b[o + 1] = 255;
  b[o + 2] = 255;
  b[o + 3] = 254;
}
/** Servers: 198.18.0.1 and up (RFC 2544 benchmarking range 198.18.0.0/15). */
function writeServer4(b: Uint8Array, o: number, srv: number): void {
  const s = srv + 1;
  b[o] = 198;
  b[o + 1] = 18 + ((s >>> 16) & 1);
  b[o + 2] = (s >>> 8) & 0xff;
  b[o + 3] = s & 0xff;
}
/** Clients: fd00:0:0:1::200:ff:fe<cc>:<cccc> (ULA). */
function writeClient6(b: Uint8Array, o: number, c: number): void {
  b[o] = 0xfd;
  b[o + 7] = 1;
  b[o + 8] = 0x02;
  b[o + 11] = 0xff;
  b[o + 12] = 0xfe;
  b[o + 13] = (c >>> 16) & 0xff;
  b[o + 14] = (c >>> 8) & 0xff;
  b[o + 15] = c & 0xff;
}
/** Servers: 2001:db8:0:<ssss>::1 (documentation prefix). */
function writeServer6(b: Uint8Array, o: number, s: number): void {
  b[o] = 0x20;
  b[o + 1] = 0x01;
  b[o + 2] = 0x0d;
  b[o + 3] = 0xb8;
  b[o + 6] = (s >>> 8) & 0xff;
  b[o + 7] = s & 0xff;
  b[o + 15] = 1;
}

/** Sum of big-endian 16-bit words of b[from, to); `from` is even relative to the checksummed data. */
function sumWords(b: Uint8Array, from: number, to: number): number {
  let sum = 0;
  let i = from;
  for (; i + 1 < to; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < to) sum += b[i]! << 8;
  return sum;
}

function ipv4Checksum(b: Uint8Array, o: number): number {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (b[o + i]! << 8) | b[o + i + 1]!;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Writes the benchmark capture to `path` (overwriting it). */
export async function generateBenchCapture(path: string, opts: BenchCaptureOptions = {}): Promise<BenchCaptureStats> {
  return generateSync(path, opts).stats;
}

function generateSync(path: string, opts: BenchCaptureOptions): { stats: BenchCaptureStats; gen: Generator } {
  const packets = opts.packets ?? DEFAULT_PACKETS;
  const flows = opts.flows ?? DEFAULT_FLOWS;
  const seed = opts.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(packets) || packets < 0) throw new Error(`packets: expected a non-negative integer, got ${packets}`);
  if (!Number.isInteger(flows) || flows < 1) throw new Error(`flows: expected a positive integer, got ${flows}`);
  if (!Number.isInteger(seed)) throw new Error(`seed: expected an integer, got ${seed}`);
  const t0 = process.hrtime.bigint();
  const fd = openSync(path, 'w');
  try {
    const gen = new Generator(fd, packets, flows, seed);
    gen.run(packets);
    gen.finish();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { stats: gen.stats(seconds), gen };
  } finally {
    closeSync(fd);
  }
}

function parseCount(name: string, v: string | undefined): number {
  if (v === undefined) throw new Error(`${name}: missing value`);
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v.replace(/_/g, ''));
  if (!m) throw new Error(`${name}: expected a number like 100000, 100k or 10M, got '${v}'`);
  const mult = m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6;
  return Math.round(Number(m[1]) * mult);
}

function histLine(h: Float64Array): string {
  const parts: string[] = [];
  for (let i = 0; i < h.length; i++) if (h[i]) parts.push(`${2 ** i}:${h[i]}`);
  return parts.join(' ');
}

function cli(argv: string[]): number {
  let out: string | undefined;
  const opts: BenchCaptureOptions = {};
  let verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--packets') opts.packets = parseCount(a, argv[++i]);
    else if (a === '--flows') opts.flows = parseCount(a, argv[++i]);
    else if (a === '--seed') opts.seed = parseCount(a, argv[++i]);
    else if (a === '--verbose' || a === '-v') verbose = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node dist/bench/gen.js OUT.pcap [--packets 10000000] [--flows 250000] [--seed 1] [--verbose]\n');
      return 0;
    } else if (a.startsWith('-') || out !== undefined) {
      process.stderr.write(`gen: unexpected argument '${a}'\n`);
      return 2;
    } else out = a;
  }
  if (out === undefined) {
    process.stderr.write('usage: node dist/bench/gen.js OUT.pcap [--packets 10000000] [--flows 250000] [--seed 1] [--verbose]\n');
    return 2;
  }
  const { stats: s, gen } = generateSync(out, opts);
  const pct = (n: number): string => ((100 * n) / Math.max(1, s.packets)).toFixed(1) + '%';
  process.stdout.write(
    `${out}: ${s.packets} packets, ${s.flows} flows (tcp ${s.tcpFlows}, udp ${s.udpFlows}, icmp ${s.icmpFlows}; ` +
      `${s.finishedFlows} finished, peak ${s.peakActiveFlows} alive), ` +
      `${(s.bytes / 2 ** 20).toFixed(1)} MiB file, ${(s.wireBytes / 2 ** 20).toFixed(1)} MiB on the wire, ` +
      `${s.spanSeconds.toFixed(1)} s of packet time\n` +
      `  mix: tcp ${pct(s.tcpPackets)} udp ${pct(s.udpPackets)} icmp ${pct(s.icmpPackets)} arp ${pct(s.arpPackets)}; ` +
      `ipv6 ${pct(s.ipv6Packets)} vlan ${pct(s.vlanPackets)} (qinq ${pct(s.qinqPackets)}); over snaplen ${pct(s.truncatedPackets)}\n` +
      `  generated in ${s.seconds.toFixed(2)} s (${(s.packets / s.seconds / 1e6).toFixed(2)} M packets/s)\n`,
  );
  if (verbose) {
    process.stdout.write(`  packets per finished flow (log2 buckets): ${histLine(gen.finishedHist)}\n`);
    process.stdout.write(`  packets per open flow at the end:          ${histLine(gen.openHist())}\n`);
    for (let k = 0; k < N_POOLS; k++) {
      process.stdout.write(
        `  pool ${POOL_NAMES[k]} (${gen.poolSlots[k]} slots): ${gen.poolFlows[k]} flows, ${gen.poolPackets[k]} packets; ` +
          `finished durations ms: ${histLine(gen.durationHist.subarray(k * 32, k * 32 + 32))}\n`,
      );
    }
    process.stdout.write(`  SYN to SYN-ACK, µs (log2 buckets): ${histLine(gen.rttHist)}\n`);
    process.stdout.write(`  idle flows woken: ${gen.idleWakeups}\n`);
    process.stdout.write(`  largest open flows: ${gen.largestOpen(8)}\n  ${gen.topShares()}\n`);
    const every = Math.max(1, Math.ceil(gen.aliveAt.length / 12));
    process.stdout.write(`  flows alive at second: ${gen.aliveAt.filter((_, i) => i % every === 0).map(([t, n]) => `${t}:${n}`).join(' ')}\n`);
  }
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = cli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`gen: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
