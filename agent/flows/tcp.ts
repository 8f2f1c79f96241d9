/**
 * Per-flow TCP tracker: Zeek's TCP endpoint state machine, `conn_state`,
 * `history`, plus retransmission / out-of-order / duplicate-ACK / zero-window
 * counters, content gaps (`missed_bytes`) and handshake timing, all in
 * typed arrays indexed by the flow table's slot. Nothing is allocated per
 * segment (one documented exception: histories longer than 12 letters).
 *
 * Reference: Zeek (zeek/zeek) `src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc`
 * (Process, update_history, update_window, update_last_seq, the
 * Update*State functions, IsReuse), `src/analyzer/protocol/tcp/TCP_Endpoint.cc`
 * (Size, DidRxmit, ZeroWindow, Gap), `TCP_Reassembler.cc` (AckReceived,
 * Undelivered, Gap: content gaps), `src/session/Session.{h,cc}` (CheckHistory,
 * ScaledHistoryEntry), `scripts/base/protocols/conn/main.zeek` (conn_state).
 * Wireshark `epan/dissectors/packet-tcp.c` for port reuse and the
 * duplicate-ACK / keep-alive definitions.
 *
 * ## What follows Zeek exactly
 * - Endpoint states (INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED,
 *   CLOSED, RESET) with their previous state, the transitions of
 *   UpdateStateMachine, and `conn_state` computed from them as in main.zeek
 *   (REJ needs both seq-based sizes 0; RSTOS0 uses the history regex).
 * - Sequence bookkeeping of init_endpoint / init_peer / update_ack_seq /
 *   update_last_seq (start, last, ack per endpoint; ±1 MiB jump rule for
 *   SYN/RST; FIN after only the SYN; nothing trusted after RESET).
 * - History letters S H A D F R I Q T W G, upper case for the originator:
 *   A D I Q once per direction (Zeek's hist_seen mask, which stays with the
 *   *role*, not the endpoint, when roles flip), S H F R again when their
 *   sequence number changes, T W G logarithmic (1st, 10th, 100th, ...
 *   event), and `^` for a flip. Letters are appended in Zeek's order within
 *   a packet: flags letter, W, T, then G (gaps revealed by this packet's ACK).
 * - T (history) = Zeek's retransmission: payload > 0 and the segment's end
 *   not beyond the highest end seen (update_last_seq). This includes
 *   keep-alives and hole fillers; the *metric* counters below do not.
 * - W and `*_zero_win`: window 0 on a non-RST segment (SYN and FIN segments
 *   included; Wireshark leaves them out) while the peer has not sent a FIN
 *   (CLOSED) and the sender has not sent a RST.
 * - G and `missed_bytes`: an ACK that covers sequence space the tracker never
 *   saw is a content gap (Zeek's reassembler: AckReceived -> Undelivered),
 *   counted only while both endpoints are established or cleanly closing
 *   (ESTABLISHED, or CLOSED coming from ESTABLISHED), never for the FIN
 *   octet (the ACK is capped below the FIN).
 *
 * ## Simplifications vs Zeek (each one deliberate)
 * 1. Roles are the flow table's: the tracker never flips by itself. If the
 *    first segment of a flow comes from the responder (the table named the
 *    receiver of a first SYN-ACK the originator) the history starts with `^`,
 *    as Zeek's does when its heuristic flips such a flow (`^hADadFf`).
 *    `flip(slot)` swaps the directions and records `^` for a table that
 *    applies its own heuristic. Zeek's SYN/SYN-ACK reversal flip
 *    (UpdateInactiveState) establishes both endpoints without swapping roles.
 * 2. Sequence numbers are 32-bit, compared modulo 2^32 (`((a - b) | 0) < 0`);
 *    Zeek also counts wraps for 64-bit relative numbers. `seqBytes()` (Zeek's
 *    orig_bytes/resp_bytes) is therefore modulo 2^32.
 * 3. The "same sequence number as the previous one" tests for repeated
 *    letters: S/H repeat when the SYN's relative sequence number is not 0
 *    (Zeek compares with the previous SYN's, which is 0 in all but odd
 *    cases); F repeats when the FIN's position differs from the current end
 *    of the sequence space (Zeek: from the previous FIN's); R compares the low
 *    8 bits of the relative sequence number with the previous RST's.
 * 4. Content gaps use one hole per direction: `contig` (everything below was
 *    seen or declared missing) and the start of the lowest block seen above
 *    it, assumed to reach the highest end seen. Zeek keeps every block.
 *    Truncated captures count as seen (payloadLen comes from the IP length);
 *    Zeek reports a gap for payload it could not capture. Zeek's exemption
 *    for the first ACK of partial connections is not needed (partial
 *    endpoints are never "clean"). Checksums are not verified (no C/c).
 * 5. Saturating counters (layout below): SYN/FIN counts at 255, RST counts,
 *    zero windows and the T/G event counters at 65535 (so at most five T, W
 *    or G letters per direction), retransmitted and missed bytes at 2^32-1.
 * 6. Window scale: a side's shift counts only when both SYN and SYN-ACK
 *    offered the option (RFC 7323); Zeek keeps a scale offered in a SYN-ACK
 *    even when the SYN had none. Shifts above 14 are capped at 14.
 *
 * ## Counters that are not Zeek's (Zeek has no such fields)
 * - `*_retrans_pkts` / `*_retrans_bytes`: segments with payload whose end is
 *   at or below the highest sequence end already seen in that direction,
 *   whose bytes were all seen before (a hole filler is out-of-order instead),
 *   and that are not keep-alives (1 byte at next-1, no SYN/FIN/RST; 0-byte
 *   keep-alives carry no payload). SYN-only and FIN-only retransmissions are
 *   not counted (they show as `*_syn`/`*_fin` > 1). Bytes = payload bytes.
 *   A segment that starts below the highest end but reaches beyond it is new
 *   data here; Wireshark calls it a retransmission.
 * - `*_ooo_pkts`: segments with payload that fill (part of) a hole, i.e.
 *   sequence space above which data was already seen. At the capture point a
 *   reordered original and a retransmission of data lost upstream look the
 *   same; both count here (Wireshark separates them by timing).
 * - `*_dup_acks`: pure ACK (no payload, no SYN/FIN/RST), window non-zero and
 *   equal to that direction's previous segment's, sequence number equal to
 *   that direction's next one, ACK number equal to the highest ACK that
 *   direction sent before, while the other side has sent data beyond it
 *   (Wireshark's rule plus "unacknowledged data outstanding").
 * - Handshake timing at the capture point: `rtt_syn_synack` = first SYN-ACK
 *   minus the latest SYN before it; `rtt_synack_ack` = first ACK from the
 *   originator (no SYN, no RST) minus the latest SYN-ACK before it;
 *   `rtt_handshake` = their sum (Wireshark's iRTT: ACK minus latest SYN).
 *   A SYN-to-SYN-ACK time of 2^32 ns (4.29 s) or more, or time running
 *   backwards, is not reported.
 *
 * ## Port reuse (`isNewConnection`)
 * Wireshark 4.0's rule, which the conversation counts follow: a SYN without
 * ACK starts a new connection when its sender's base sequence number is
 * known and differs from it. The base is the ISN of that side's SYN, else
 * (first segment without SYN) seq-1, else the peer's ACK - 1 (Zeek's
 * init_peer takes the latest ACK while that side has sent nothing; Wireshark
 * the first, which differs only if that side never sends).
 * A retransmitted SYN (same ISN) stays, even after a RST or FIN exchange.
 * Zeek (IsReuse) differs: once the connection is closed any SYN starts a new
 * one (so Zeek logs three REJ rows for SYN,RST x3 with one ISN where we log
 * one REJ with orig_syn=3), and it also reuses on a SYN-ACK for half-open
 * connections; a SYN with a new ISN on an open connection is reuse in both.
 *
 * ## Memory layout: 128 bytes per TCP flow (`BYTES_PER_SLOT`)
 * One record per TCP flow in a pool of its own (UDP/ICMP flows hold none;
 * a flow slot maps to its record through `rec`, 4 bytes per slot), in
 * chunks of 32 Ki records (two cache lines each; a segment touches only its
 * own record), read through u32/u16/u8/f64 views of the record's chunk,
 * which sel() picks. Byte offsets:
 *   0  f64   handshake timer: latest SYN time (timing phase 1), latest
 *            SYN-ACK time (phase 2), SYN-ACK-to-ACK time in ns (phase 3)
 *   8  u32x9 originator: start, last, contig, above, ack, retransPkts,
 *            retransBytes, dupAcks, oooPkts
 *  44  u32x9 responder: the same
 *  80  u32x4 history words 0 and 1, SYN-to-SYN-ACK time (ns), missedBytes
 *  96  u16x5 originator: prevWin, rxmtEvents, gapEvents, rstCount, zeroWin
 * 106  u16x5 responder: the same
 * 116  u8x5  originator: state byte (bits 0-2 state, 3-5 previous state,
 *            6 base sequence number known, 7 hole), hist_seen bits (by role),
 *            synCount, finCount, low 8 bits of the last RST's relative seq
 * 121  u8x5  responder: the same
 * 126  u8    flags: bits 0-3 history length, 4-5 timing phase, 6 overflow
 * 127  u8    window scale offered: low nibble originator, high nibble
 *            responder, 15 = none
 * History: 5-bit letter codes, 6 per u32 word, 12 inline; letters beyond the
 * 12th go to a Map (slot -> string), the only per-segment allocation, which
 * a typical flow (`ShADadFf`, `ShADdtaTTtFf`) never reaches.
 */
import { growChunks, nextCapacity, releaseGarbage } from './growth.js';

// ---- TCP flags
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

// ---- endpoint states (Zeek's EndpointState order)
const INACTIVE = 0;
const SYN_SENT = 1;
const SYN_ACK_SENT = 2;
const PARTIAL = 3;
const ESTABLISHED = 4;
const CLOSED = 5;
const RESET = 6;

// ---- state byte
const ST_MASK = 0x07;
const BASE_SET = 0x40;
const HOLE = 0x80;

// ---- hist_seen bits (per role)
const HS_SYN = 0x01;
const HS_FIN = 0x02;
const HS_RST = 0x04;
const HS_FIN_RST = 0x08;
const HS_DATA = 0x10;
const HS_ACK = 0x20;
const HS_MULTI = 0x40;

// ---- history letter codes: originator code, responder code = code + 11
const LETTERS = 'SHADFRTWGIQshadfrtwgiq^';
const L_S = 0;
const L_H = 1;
const L_A = 2;
const L_D = 3;
const L_F = 4;
const L_R = 5;
const L_T = 6;
const L_W = 7;
const L_G = 8;
const L_I = 9;
const L_Q = 10;
const L_FLIP = 22;
const HIST_INLINE = 12;

// ---- connection flags
const CF_LEN = 0x0f;
const CF_PHASE_SHIFT = 4;
const CF_PHASE = 0x30;
const CF_OVERFLOW = 0x40;

// ---- one 128-byte record per slot (see "Memory layout" above)
const REC = 128;
const R32 = REC / 4;
const R16 = REC / 2;
const R64 = REC / 8;
// u32: per direction at 2 + 9*d
const O32_DIR = 2;
const D32 = 9;
const D_START = 0;
const D_LAST = 1;
const D_CONTIG = 2;
const D_ABOVE = 3;
const D_ACK = 4;
const D_RXP = 5;
const D_RXB = 6;
const D_DUP = 7;
const D_OOO = 8;
// u32: per connection
const O32_HIST = 20;
const O32_RTT_A = 22;
const O32_MISSED = 23;
// u16: per direction at 48 + 5*d
const O16_DIR = 48;
const D16 = 5;
const W_PREVWIN = 0;
const W_RXMT = 1;
const W_GAP = 2;
const W_RSTCNT = 3;
const W_ZWIN = 4;
// u8: per direction at 116 + 5*d, then the connection's flags and window scales
const O8_DIR = 116;
const D8 = 5;
const B_STATE = 0;
const B_SEEN = 1;
const B_SYN = 2;
const B_FIN = 3;
const B_RSTREL = 4;
const O8_FLAGS = 126;
const O8_WSCALE = 127;

const TOO_LARGE_SEQ_DELTA = 1048576;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
const TWO32 = 4294967296;

/** Bytes of tracker memory per flow slot (see the layout above). */
export const BYTES_PER_SLOT = REC;
/** TCP records per chunk of the pool (4 MiB: transparent huge pages stay possible). */
const RCHUNK_BITS = 15;
const RCHUNK = 1 << RCHUNK_BITS;
const RCHUNK_MASK = RCHUNK - 1;

/** True for the counts at which Zeek's ScaledHistoryEntry adds a letter (1, 10, 100, ...). */
function scaled(n: number): boolean {
  return n === 1 || n === 10 || n === 100 || n === 1000 || n === 10000;
}

/** Zeek's is_handshake: the endpoint has not left the handshake states. */
function isHandshake(st: number): boolean {
  return st <= SYN_ACK_SENT;
}

/** Zeek's is_clean: established, or closed straight from established. */
function isClean(stateByte: number): boolean {
  const st = stateByte & ST_MASK;
  return st === ESTABLISHED || (st === CLOSED && ((stateByte >>> 3) & ST_MASK) === ESTABLISHED);
}

/** Zeek conn_state for UDP (proto 17) from packet counts; every other non-TCP protocol (ICMP included) is OTH. */
export function connStateNonTcp(origPkts: number, respPkts: number, proto = 17): string {
  if (proto !== 17) return 'OTH';
  if (origPkts > 0) return respPkts > 0 ? 'SF' : 'S0';
  return respPkts > 0 ? 'SHR' : 'OTH';
}

/** A flow's phase from its endpoint states: 0 not established, 1 established, 2 closed (FIN both ways, or RST). */
function phaseOf(so: number, sr: number): 0 | 1 | 2 {
  if ((so === CLOSED && sr === CLOSED) || so === RESET || sr === RESET) return 2;
  if (isHandshake(so) && isHandshake(sr)) return 0;
  return 1;
}

const RSTOS0_RE = /^\^?S[^HAFGIQ]*R/;

export class TcpTracker {
  /** Flow slots the map covers (the flow table's capacity). */
  capacity = 0;
  /** TCP records allocated (only TCP flows hold one). */
  private recCap = 0;
  /** Flow slot -> TCP record. */
  private rec = new Int32Array(0);
  /** Free TCP records: a stack linked through the first word of each free record (next + 1; 0 ends it). */
  private freeHead = -1;
  /** Records [fresh, recCap) were never used. */
  private fresh = 0;
  /** Record chunks (RCHUNK records each; u32/u16/u8/f64 views of the same buffers): growth adds chunks, copying at most the last, partial one. */
  private cu32: Uint32Array<ArrayBufferLike>[] = [];
  private cu16: Uint16Array<ArrayBufferLike>[] = [];
  private cu8: Uint8Array<ArrayBufferLike>[] = [];
  private cf64: Float64Array<ArrayBufferLike>[] = [];
  /** The chunk sel() picked last (-1: none, or its arrays were replaced). */
  private selected = -1;
  /** Views of the chunk selected last (sel()): every record offset below is local to it. */
  private u32: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
  private u16: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
  private u8: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  private f64: Float64Array<ArrayBufferLike> = new Float64Array(0);
  /** History letters beyond the inline 12, by slot. */
  private readonly extra = new Map<number, string>();

  constructor(capacity: number) {
    this.grow(capacity);
  }

  /** Selects record r's chunk (the u8/u16/u32/f64 views) and returns r's index within it. */
  private sel(r: number): number {
    const c = r >>> RCHUNK_BITS;
    if (c !== this.selected) {
      this.selected = c;
      this.u8 = this.cu8[c];
      this.u16 = this.cu16[c];
      this.u32 = this.cu32[c];
      this.f64 = this.cf64[c];
    }
    return r & RCHUNK_MASK;
  }

  /** Bytes of tracker memory in all. */
  memoryBytes(): number {
    let n = this.rec.byteLength;
    for (const c of this.cu8) n += c.byteLength;
    return n;
  }

  /** Bytes of tracker memory per flow slot: the slot map plus the records in use or pooled, shared out (the overflow map of long histories not included). */
  bytesPerSlot(): number {
    return this.memoryBytes() / Math.max(1, this.capacity);
  }

  /** Grow the slot map to newCapacity flow slots, keeping slots [0, oldCapacity). */
  grow(newCapacity: number): void {
    if (newCapacity <= this.capacity) return;
    const rec = new Int32Array(newCapacity);
    rec.set(this.rec);
    this.rec = rec;
    this.capacity = newCapacity;
  }

  /** Grows the record pool (growth.ts; records in use keep their index). */
  private growRecords(): void {
    const old = this.recCap;
    // Never more records than flow slots (every TCP flow holds one at most).
    const cap = Math.max(old + 1, Math.min(Math.max(1024, nextCapacity(old)), this.capacity));
    const copied = growChunks((c) => (c < this.cu8.length ? this.cu8[c].length / REC : 0), cap, RCHUNK, (c, n, had) => {
      const buf = new ArrayBuffer(n * REC);
      const u8 = new Uint8Array(buf);
      if (had > 0) u8.set(this.cu8[c]);
      this.cu8[c] = u8;
      this.cu16[c] = new Uint16Array(buf);
      this.cu32[c] = new Uint32Array(buf);
      this.cf64[c] = new Float64Array(buf);
    });
    this.recCap = cap;
    this.selected = -1;
    if (copied) releaseGarbage();
  }

  /**
   * Copies the TCP record of the flow in `slot` into record `i` of `to` (a
   * tracker from over()) and returns its history letters beyond the inline
   * ones ('' when none).
   */
  exportRecord(slot: number, to: TcpTracker, i: number): string {
    const r = this.rec[slot];
    const u = this.cu32[r >>> RCHUNK_BITS];
    const b = (r & RCHUNK_MASK) * R32;
    const d = to.cu32[i >>> RCHUNK_BITS];
    const db = (i & RCHUNK_MASK) * R32;
    for (let k = 0; k < R32; k++) d[db + k] = u[b + k];
    return (this.cu8[r >>> RCHUNK_BITS][(r & RCHUNK_MASK) * REC + O8_FLAGS] & CF_OVERFLOW) !== 0 ? this.extra.get(slot) ?? '' : '';
  }

  /**
   * A read-only tracker over records stored elsewhere (`buf` from
   * `byteOffset`, `slots` records of BYTES_PER_SLOT bytes): slot i's record is
   * record i. Export accessors only (the worker that writes NDJSON).
   */
  static over(buf: ArrayBufferLike, byteOffset: number, slots: number): TcpTracker {
    const t = new TcpTracker(0);
    for (let c = 0; c * RCHUNK < slots; c++) {
      const n = Math.min(RCHUNK, slots - c * RCHUNK);
      const o = byteOffset + c * RCHUNK * REC;
      t.cu8.push(new Uint8Array(buf, o, n * REC));
      t.cu16.push(new Uint16Array(buf, o, n * R16));
      t.cu32.push(new Uint32Array(buf, o, n * R32));
      t.cf64.push(new Float64Array(buf, o, n * R64));
    }
    t.rec = new Int32Array(slots);
    for (let i = 0; i < slots; i++) t.rec[i] = i;
    t.capacity = slots;
    t.recCap = slots;
    t.fresh = slots;
    return t;
  }

  /** Sets the history letters beyond the inline ones of `slot` (a tracker from over()). */
  setExtraHistory(slot: number, letters: string): void {
    if (letters === '') this.extra.delete(slot);
    else this.extra.set(slot, letters);
  }

  /** The TCP record of the flow in `slot` (what reset() returned), -1 for none. */
  record(slot: number): number {
    return this.rec[slot];
  }

  /** The flow in `slot` ended: its record goes back to the pool. */
  release(slot: number): void {
    const r = this.rec[slot];
    if (r < 0) return;
    this.cu32[r >>> RCHUNK_BITS][(r & RCHUNK_MASK) * R32] = this.freeHead + 1;
    this.freeHead = r;
    this.rec[slot] = -1;
  }

  /** Slot starts a new TCP flow: it gets a cleared record, whose number is returned (the flow table keeps it for segment()). */
  reset(slot: number): number {
    let r = this.freeHead;
    if (r >= 0) {
      this.freeHead = this.cu32[r >>> RCHUNK_BITS][(r & RCHUNK_MASK) * R32] - 1;
    } else {
      if (this.fresh === this.recCap) this.growRecords();
      r = this.fresh++;
    }
    if (this.extra.has(slot)) this.extra.delete(slot);
    this.rec[slot] = r;
    const b8 = this.sel(r) * REC;
    this.u8.fill(0, b8, b8 + REC);
    this.u8[b8 + O8_WSCALE] = 0xff;
    return r;
  }

  /**
   * Would this segment start a NEW connection on the same 5-tuple? A SYN
   * without ACK whose sequence number differs from its sender's known base
   * sequence number (Wireshark 4.0's port-reuse rule; see the file comment
   * for the base and for how Zeek differs).
   */
  isNewConnection(slot: number, fromOrig: boolean, flags: number, seq: number): boolean {
    const lr = this.sel(this.rec[slot]);
    if ((flags & (SYN | ACK)) !== SYN) return false;
    const role = fromOrig ? 0 : 1;
    if ((this.u8[lr * REC + O8_DIR + role * D8 + B_STATE] & BASE_SET) === 0) return false;
    return this.u32[lr * R32 + O32_DIR + role * D32 + D_START] !== seq >>> 0;
  }

  /** Append one history letter code. */
  private addHist(slot: number, code: number): void {
    const lr = this.sel(this.rec[slot]);
    const i = lr * REC + O8_FLAGS;
    const cf = this.u8[i];
    const n = cf & CF_LEN;
    if (n < HIST_INLINE) {
      const w = n < 6 ? 0 : 1;
      this.u32[lr * R32 + O32_HIST + w] |= code << ((n - w * 6) * 5);
      this.u8[i] = cf + 1;
    } else {
      this.extra.set(slot, (this.extra.get(slot) ?? '') + LETTERS[code]);
      this.u8[i] = cf | CF_OVERFLOW;
    }
  }

  /** Zeek CheckHistory: add the letter once per role; true if it was already there. */
  private seen(slot: number, role: number, bit: number, letter: number): boolean {
    const lr = this.sel(this.rec[slot]);
    const i = lr * REC + O8_DIR + role * D8 + B_SEEN;
    const f = this.u8[i];
    if ((f & bit) !== 0) return true;
    this.u8[i] = f | bit;
    this.addHist(slot, letter + role * 11);
    return false;
  }

  /** Zeek ScaledHistoryEntry on a saturating u16 counter. */
  private scaledEvent(slot: number, role: number, i16: number, letter: number): void {
    const n = this.u16[i16];
    if (n === U16_MAX) return;
    this.u16[i16] = n + 1;
    if (scaled(n + 1)) this.addHist(slot, letter + role * 11);
  }

  /** (Re)initialise one endpoint's sequence numbers (Zeek InitStartSeq/InitAckSeq/InitLastSeq). */
  private initSeq(i32: number, i8: number, start: number, last: number): void {
    const u32 = this.u32;
    u32[i32 + D_START] = start;
    u32[i32 + D_ACK] = start;
    u32[i32 + D_LAST] = last;
    u32[i32 + D_CONTIG] = start + 1;
    this.u8[i8] = (this.u8[i8] | BASE_SET) & ~HOLE;
  }

  private setState(i8: number, st: number): void {
    const b = this.u8[i8];
    const cur = b & ST_MASK;
    if (cur !== st) this.u8[i8] = (b & (BASE_SET | HOLE)) | (cur << 3) | st;
  }

  /**
   * One TCP segment of the flow in `slot`, whose record is `r` (what reset()
   * returned: the caller keeps it beside the flow, so the common path never
   * reads the slot map). See the file comment for every rule. Returns the
   * flow's phase afterwards (as phase()).
   */
  segment(slot: number, r: number, fromOrig: boolean, flags: number, seq: number, ack: number, win: number,
    payloadLen: number, t: number, buf: Uint8Array, optOff: number, optLen: number): 0 | 1 | 2 {
    r = this.sel(r);
    const u32 = this.u32;
    const u16 = this.u16;
    const u8 = this.u8;
    const role = fromOrig ? 0 : 1;
    const b32 = r * R32;
    const d = b32 + O32_DIR + role * D32;
    const p = b32 + O32_DIR + (role ^ 1) * D32;
    const d16 = r * R16 + O16_DIR + role * D16;
    const b8 = r * REC;
    const d8 = b8 + O8_DIR + role * D8;
    const p8 = b8 + O8_DIR + (role ^ 1) * D8;
    const syn = flags & SYN;
    const fin = flags & FIN;
    const rst = flags & RST;
    const hasAck = flags & ACK;

    // First segment of the flow from the responder: the table flipped the roles.
    if (!fromOrig && u8[d8] === 0 && u8[p8] === 0) this.addHist(slot, L_FLIP);

    if (syn !== 0) { const v = u8[d8 + B_SYN]; if (v !== 255) u8[d8 + B_SYN] = v + 1; }
    if (fin !== 0) { const v = u8[d8 + B_FIN]; if (v !== 255) u8[d8 + B_FIN] = v + 1; }
    if (rst !== 0) { const v = u16[d16 + W_RSTCNT]; if (v !== U16_MAX) u16[d16 + W_RSTCNT] = v + 1; }

    let segLen = payloadLen;
    if (syn !== 0) segLen++;
    if (fin !== 0) segLen++;
    if (rst !== 0) segLen -= payloadLen;
    const end = (seq + segLen) >>> 0;

    // ---- init_endpoint
    const st = u8[d8] & ST_MASK;
    switch (st) {
      case INACTIVE:
        if (syn !== 0) this.initSeq(d, d8, seq, end);
        else this.initSeq(d, d8, (seq - 1) >>> 0, seq);
        break;
      case SYN_SENT:
      case SYN_ACK_SENT:
        if (syn !== 0 && seq !== u32[d + D_START]) this.initSeq(d, d8, seq, end);
        break;
      case ESTABLISHED:
      case PARTIAL:
        if (syn !== 0) this.initSeq(d, d8, seq, end);
        break;
      case RESET:
        if (syn !== 0 && ((u8[d8] >>> 3) & ST_MASK) === INACTIVE) this.initSeq(d, d8, seq, end);
        break;
      default:
        break;
    }
    const start = u32[d + D_START];
    const relSigned = (seq - start) | 0;
    const lastBefore = u32[d + D_LAST];

    // ---- update_history
    const bits = (syn !== 0 ? 1 : 0) + (fin !== 0 ? 1 : 0) + (rst !== 0 ? 1 : 0);
    if (bits > 1) {
      if (fin !== 0 && rst !== 0) this.seen(slot, role, HS_FIN_RST, L_I);
      else this.seen(slot, role, HS_MULTI, L_Q);
    } else if (bits === 1) {
      if (syn !== 0) {
        const code = hasAck !== 0 ? L_H : L_S;
        if (this.seen(slot, role, HS_SYN, code) && relSigned !== 0) this.addHist(slot, code + role * 11);
      } else if (fin !== 0) {
        if (this.seen(slot, role, HS_FIN, L_F) && ((seq + payloadLen + 1 - lastBefore) | 0) !== 0) {
          this.addHist(slot, L_F + role * 11);
        }
      } else {
        const rel8 = relSigned & 0xff;
        if (this.seen(slot, role, HS_RST, L_R) && rel8 !== u8[d8 + B_RSTREL]) this.addHist(slot, L_R + role * 11);
        u8[d8 + B_RSTREL] = rel8;
      }
    } else if (payloadLen > 0) {
      if ((u8[d8 + B_SEEN] & HS_DATA) === 0) this.seen(slot, role, HS_DATA, L_D);
    } else if (hasAck !== 0) {
      if ((u8[d8 + B_SEEN] & HS_ACK) === 0) this.seen(slot, role, HS_ACK, L_A);
    }

    // ---- update_window: zero windows
    if (win === 0 && rst === 0 && (u8[p8] & ST_MASK) !== CLOSED && st !== RESET) {
      this.scaledEvent(slot, role, d16 + W_ZWIN, L_W);
    }

    // ---- window scale offered on SYNs (options parsed only here)
    if (syn !== 0) {
      let ws = 15;
      const stop = optOff + optLen;
      let i = optOff;
      while (i < stop) {
        const kind = buf[i];
        if (kind === 0) break;
        if (kind === 1) { i++; continue; }
        if (i + 1 >= stop) break;
        const len = buf[i + 1];
        if (len < 2 || i + len > stop) break;
        if (kind === 3 && len >= 3) { ws = buf[i + 2] > 14 ? 14 : buf[i + 2]; break; }
        i += len;
      }
      const w = u8[b8 + O8_WSCALE];
      u8[b8 + O8_WSCALE] = role === 0 ? (w & 0xf0) | ws : (w & 0x0f) | (ws << 4);
    }

    // ---- ACK: peer initialisation, duplicate ACKs, highest ACK
    let gapAck = -1;
    if (hasAck !== 0) {
      if ((u8[p8] & ST_MASK) === INACTIVE) {
        // init_peer: number the peer's sequence space as though its SYN had been seen.
        this.initSeq(p, p8, (ack - 1) >>> 0, (ack - 1) >>> 0);
      } else if (((ack - u32[p + D_START]) | 0) >= 0) {
        const prevAck = u32[p + D_ACK];
        if (ack === prevAck && payloadLen === 0 && bits === 0 && win !== 0 && st !== INACTIVE &&
          win === u16[d16 + W_PREVWIN] && seq === lastBefore && ((ack - u32[p + D_LAST]) | 0) < 0) {
          u32[d + D_DUP]++;
        }
        if (rst === 0) {
          const delta = (ack - prevAck) | 0;
          if (delta > 0 && !(ack === 0 && delta > TOO_LARGE_SEQ_DELTA)) u32[p + D_ACK] = ack;
        }
        gapAck = ack;
      }
    }

    // ---- metric classification of data segments (before `last` moves)
    const deltaLast = (end - lastBefore) | 0;
    const dataStart = syn !== 0 ? (seq + 1) >>> 0 : seq;
    const dataEnd = (dataStart + payloadLen) >>> 0;
    if (payloadLen > 0 && rst === 0 && deltaLast <= 0) {
      if (payloadLen === 1 && bits === 0 && ((seq + 1 - lastBefore) | 0) === 0) {
        // keep-alive
      } else if ((u8[d8] & HOLE) !== 0 && ((dataStart - u32[d + D_ABOVE]) | 0) < 0 &&
        ((dataEnd - u32[d + D_CONTIG]) | 0) > 0) {
        u32[d + D_OOO]++;
      } else {
        u32[d + D_RXP]++;
        const nb = u32[d + D_RXB] + payloadLen;
        u32[d + D_RXB] = nb > U32_MAX ? U32_MAX : nb;
      }
    }

    // ---- update_last_seq (Zeek), with Zeek's retransmission events
    if ((syn !== 0 || rst !== 0) && (deltaLast > TOO_LARGE_SEQ_DELTA || deltaLast < -TOO_LARGE_SEQ_DELTA)) {
      // untrusted jump
    } else if (fin !== 0 && lastBefore === ((start + 1) >>> 0)) {
      u32[d + D_LAST] = end;
    } else if (st === RESET) {
      // nothing trusted after a RST
    } else if (deltaLast > 0) {
      u32[d + D_LAST] = end;
    } else if (payloadLen > 0) {
      this.scaledEvent(slot, role, d16 + W_RXMT, L_T);
    }

    // ---- state machine (without SYN/FIN/RST only an INACTIVE endpoint changes state)
    if (bits !== 0 || st === INACTIVE) this.updateState(d8, p8, fromOrig, flags, seq, payloadLen, start);

    // ---- the ACK may reveal a content gap in the peer's data
    if (gapAck >= 0 && ((gapAck - u32[p + D_CONTIG]) | 0) > 0) this.ackReceived(slot, role ^ 1, gapAck);

    // ---- the payload extends the contiguous range or lands above a hole (Zeek's reassembler)
    if (payloadLen > 0 && rst === 0 && relSigned >= 0) {
      const c = u32[d + D_CONTIG];
      if (((dataEnd - c) | 0) > 0) {
        const sb = u8[d8];
        if (((dataStart - c) | 0) <= 0) {
          let nc = dataEnd;
          if ((sb & HOLE) !== 0 && ((nc - u32[d + D_ABOVE]) | 0) >= 0) {
            const last = u32[d + D_LAST];
            if (((last - nc) | 0) > 0) nc = last;
            u8[d8] = sb & ~HOLE;
          }
          u32[d + D_CONTIG] = nc;
        } else if ((sb & HOLE) === 0) {
          u8[d8] = sb | HOLE;
          u32[d + D_ABOVE] = dataStart;
        } else if (((dataStart - u32[d + D_ABOVE]) | 0) < 0) {
          u32[d + D_ABOVE] = dataStart;
        }
      }
    }

    // ---- handshake timing
    const cf = u8[b8 + O8_FLAGS];
    const phase = (cf & CF_PHASE) >>> CF_PHASE_SHIFT;
    if (phase === 3) {
      // timed already
    } else if (syn !== 0) {
      const it = r * R64;
      if (hasAck === 0) {
        if (fromOrig) {
          this.f64[it] = t;
          u8[b8 + O8_FLAGS] = (cf & ~CF_PHASE) | (1 << CF_PHASE_SHIFT);
        }
      } else if (!fromOrig) {
        if (phase === 1) {
          const dt = t - this.f64[it];
          if (dt >= 0 && dt < TWO32) {
            u32[b32 + O32_RTT_A] = dt;
            this.f64[it] = t;
            u8[b8 + O8_FLAGS] = (cf & ~CF_PHASE) | (2 << CF_PHASE_SHIFT);
          } else {
            u8[b8 + O8_FLAGS] = cf & ~CF_PHASE;
          }
        } else if (phase === 2) {
          this.f64[it] = t;
        }
      }
    } else if (phase === 2 && fromOrig && hasAck !== 0 && rst === 0) {
      const it = r * R64;
      const dt = t - this.f64[it];
      if (dt >= 0) {
        this.f64[it] = dt;
        u8[b8 + O8_FLAGS] = cf | (3 << CF_PHASE_SHIFT);
      } else {
        u8[b8 + O8_FLAGS] = cf & ~CF_PHASE;
      }
    }

    u16[d16 + W_PREVWIN] = win;
    return phaseOf(u8[b8 + O8_DIR + B_STATE] & ST_MASK, u8[b8 + O8_DIR + D8 + B_STATE] & ST_MASK);
  }

  /** Zeek's UpdateStateMachine (events and weirds left out). */
  private updateState(d8: number, p8: number, isOrig: boolean, flags: number, seq: number, len: number,
    start: number): void {
    const u8 = this.u8;
    const st = u8[d8] & ST_MASK;
    const syn = flags & SYN;
    const fin = flags & FIN;
    const rst = flags & RST;
    switch (st) {
      case INACTIVE: {
        if (syn !== 0) {
          if (isOrig) {
            this.setState(d8, (flags & ACK) !== 0 ? SYN_ACK_SENT : SYN_SENT);
          } else {
            if ((flags & ACK) === 0 && (u8[p8] & ST_MASK) === SYN_ACK_SENT && seq === start) {
              // SYN/SYN-ACK reversal: Zeek flips the roles and establishes; we establish without flipping.
              this.setState(p8, ESTABLISHED);
            }
            if ((u8[p8] & ST_MASK) === SYN_SENT) this.setState(p8, ESTABLISHED);
            this.setState(d8, ESTABLISHED);
          }
        }
        if (fin !== 0) this.setState(d8, CLOSED);
        if (rst !== 0) this.setState(d8, RESET);
        if ((u8[d8] & ST_MASK) === INACTIVE) {
          const pst = u8[p8] & ST_MASK;
          if (!isOrig && len === 0 && pst === SYN_SENT) {
            // an ACK of the SYN before the SYN-ACK: not a partial connection
          } else if ((flags & ACK) !== 0 && pst === ESTABLISHED) {
            this.setState(d8, ESTABLISHED);
          } else {
            this.setState(d8, PARTIAL);
          }
        }
        break;
      }
      case SYN_SENT:
      case SYN_ACK_SENT:
        if (fin !== 0) this.setState(d8, CLOSED);
        if (rst !== 0) this.setState(d8, RESET);
        break;
      case ESTABLISHED:
      case PARTIAL:
        if (syn !== 0 && st === PARTIAL && (u8[p8] & ST_MASK) === INACTIVE && (flags & ACK) === 0) {
          this.setState(d8, SYN_SENT);
        }
        if (fin !== 0 && rst === 0) {
          this.setState(d8, CLOSED);
          const pb = u8[p8];
          if ((pb & ST_MASK) === RESET && ((pb >>> 3) & ST_MASK) === CLOSED) this.setState(p8, CLOSED);
        }
        if (rst !== 0) this.setState(d8, RESET);
        break;
      case CLOSED:
        if (rst !== 0 && (u8[p8] & ST_MASK) !== CLOSED) this.setState(d8, RESET);
        break;
      default:
        break;
    }
  }

  /** Zeek's TCP_Reassembler::AckReceived for the data of `owner`, acknowledged up to `ack`. */
  private ackReceived(slot: number, owner: number, ack: number): void {
    const lr = this.sel(this.rec[slot]);
    const u32 = this.u32;
    const u8 = this.u8;
    const o = lr * R32 + O32_DIR + owner * D32;
    const o8 = lr * REC + O8_DIR + owner * D8;
    let a = ack;
    const last = u32[o + D_LAST];
    // Never a gap for the FIN octet.
    if (u8[o8 + B_FIN] !== 0 && ((a - last) | 0) >= 0) a = (last - 1) >>> 0;
    let c = u32[o + D_CONTIG];
    if (((a - c) | 0) <= 0) return;
    let missing = 0;
    let events = 0;
    const sb = u8[o8];
    if ((sb & HOLE) !== 0 && ((u32[o + D_ABOVE] - a) | 0) < 0) {
      // The hole below the block seen above it, then anything beyond the block.
      missing = (u32[o + D_ABOVE] - c) >>> 0;
      if (missing !== 0) events = 1;
      if (((last - c) | 0) > 0) c = last;
      u8[o8] = sb & ~HOLE;
      if (((a - c) | 0) > 0) {
        missing += (a - c) >>> 0;
        events++;
        c = a;
      }
    } else {
      missing = (a - c) >>> 0;
      events = 1;
      c = a;
    }
    u32[o + D_CONTIG] = c;
    if (missing === 0 || !isClean(u8[o8]) || !isClean(u8[lr * REC + O8_DIR + (owner ^ 1) * D8])) return;
    const m = u32[lr * R32 + O32_MISSED] + missing;
    u32[lr * R32 + O32_MISSED] = m > U32_MAX ? U32_MAX : m;
    const i16 = lr * R16 + O16_DIR + owner * D16 + W_GAP;
    for (let e = 0; e < events; e++) this.scaledEvent(slot, owner, i16, L_G);
  }

  /** Swap originator and responder (Zeek FlipRoles): directions swap, hist_seen stays with the roles, `^` is recorded. */
  flip(slot: number): void {
    const lr = this.sel(this.rec[slot]);
    const u32 = this.u32;
    const u16 = this.u16;
    const u8 = this.u8;
    const b32 = lr * R32 + O32_DIR;
    for (let i = 0; i < D32; i++) {
      const x = u32[b32 + i];
      u32[b32 + i] = u32[b32 + D32 + i];
      u32[b32 + D32 + i] = x;
    }
    const b16 = lr * R16 + O16_DIR;
    for (let i = 0; i < D16; i++) {
      const x = u16[b16 + i];
      u16[b16 + i] = u16[b16 + D16 + i];
      u16[b16 + D16 + i] = x;
    }
    const b8 = lr * REC + O8_DIR;
    for (let i = 0; i < D8; i++) {
      if (i === B_SEEN) continue;
      const x = u8[b8 + i];
      u8[b8 + i] = u8[b8 + D8 + i];
      u8[b8 + D8 + i] = x;
    }
    const w = u8[lr * REC + O8_WSCALE];
    u8[lr * REC + O8_WSCALE] = ((w & 0x0f) << 4) | (w >>> 4);
    u8[lr * REC + O8_FLAGS] &= ~CF_PHASE;
    this.addHist(slot, L_FLIP);
  }

  private stateByte(slot: number, role: number): number {
    const lr = this.sel(this.rec[slot]);
    return this.u8[lr * REC + O8_DIR + role * D8 + B_STATE];
  }

  /** 0 = not established (half-open / attempt), 1 = established, 2 = closed (FIN both ways, or RST). */
  phase(slot: number): 0 | 1 | 2 {
    return phaseOf(this.stateByte(slot, 0) & ST_MASK, this.stateByte(slot, 1) & ST_MASK);
  }

  /** Zeek's endpoint Size(): payload bytes from sequence numbers (modulo 2^32); Zeek's orig_bytes/resp_bytes. */
  seqBytes(slot: number, orig: boolean): number {
    const lr = this.sel(this.rec[slot]);
    const role = orig ? 0 : 1;
    const i = lr * R32 + O32_DIR + role * D32;
    const b = this.stateByte(slot, role);
    const pb = this.stateByte(slot, role ^ 1);
    if ((b & BASE_SET) === 0) return 0;
    const start = this.u32[i + D_START];
    const ack = this.u32[i + D_ACK];
    const last = this.u32[i + D_LAST];
    const noDataAcked = ack === start || ack === ((start + 1) >>> 0);
    if (((b >>> 3) & ST_MASK) === SYN_SENT && (b & ST_MASK) === RESET && (pb & ST_MASK) === INACTIVE && !noDataAcked) {
      return 0;
    }
    const top = ((last - ack) | 0) > 0 ? last : ack;
    let size = (top - start) >>> 0;
    if (size !== 0) size--;
    if (this.fins(slot, orig) > 0 && size !== 0) size--;
    return size;
  }

  /** Zeek conn_state: one of S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH. */
  connState(slot: number): string {
    const os = this.stateByte(slot, 0) & ST_MASK;
    const rs = this.stateByte(slot, 1) & ST_MASK;
    const oInactive = os === INACTIVE || os === PARTIAL;
    const rInactive = rs === INACTIVE || rs === PARTIAL;
    if (rs === RESET) {
      if (os === SYN_SENT || os === SYN_ACK_SENT ||
        (os === RESET && this.seqBytes(slot, true) === 0 && this.seqBytes(slot, false) === 0)) return 'REJ';
      return oInactive ? 'RSTRH' : 'RSTR';
    }
    if (os === RESET) {
      if (rInactive) return RSTOS0_RE.test(this.history(slot)) ? 'RSTOS0' : 'OTH';
      return 'RSTO';
    }
    if (rs === CLOSED && os === CLOSED) return 'SF';
    if (os === CLOSED) return rInactive ? 'SH' : 'S2';
    if (rs === CLOSED) return oInactive ? 'SHR' : 'S3';
    if (os === SYN_SENT && rs === INACTIVE) return 'S0';
    if (os === ESTABLISHED && rs === ESTABLISHED) return 'S1';
    return 'OTH';
  }

  /** Zeek history string. */
  history(slot: number): string {
    const lr = this.sel(this.rec[slot]);
    const cf = this.u8[lr * REC + O8_FLAGS];
    const n = cf & CF_LEN;
    let s = '';
    for (let k = 0; k < n; k++) {
      const w = k < 6 ? 0 : 1;
      s += LETTERS[(this.u32[lr * R32 + O32_HIST + w] >>> ((k - w * 6) * 5)) & 31];
    }
    if (cf & CF_OVERFLOW) s += this.extra.get(slot) ?? '';
    return s;
  }

  private dir32(slot: number, orig: boolean, field: number): number {
    const lr = this.sel(this.rec[slot]);
    return this.u32[lr * R32 + O32_DIR + (orig ? 0 : D32) + field];
  }

  private dir16(slot: number, orig: boolean, field: number): number {
    const lr = this.sel(this.rec[slot]);
    return this.u16[lr * R16 + O16_DIR + (orig ? 0 : D16) + field];
  }

  private dir8(slot: number, orig: boolean, field: number): number {
    const lr = this.sel(this.rec[slot]);
    return this.u8[lr * REC + O8_DIR + (orig ? 0 : D8) + field];
  }

  /** Retransmitted data segments (see the file comment), per direction. */
  retransPkts(slot: number, orig: boolean): number {
    return this.dir32(slot, orig, D_RXP);
  }

  /** Payload bytes of retransmitted segments. */
  retransBytes(slot: number, orig: boolean): number {
    return this.dir32(slot, orig, D_RXB);
  }

  /** Data segments that filled a hole. */
  oooPkts(slot: number, orig: boolean): number {
    return this.dir32(slot, orig, D_OOO);
  }

  /** Duplicate ACKs sent by this side. */
  dupAcks(slot: number, orig: boolean): number {
    return this.dir32(slot, orig, D_DUP);
  }

  /** Zero-window advertisements sent by this side. */
  zeroWin(slot: number, orig: boolean): number {
    return this.dir16(slot, orig, W_ZWIN);
  }

  /** Segments with RST sent by this side. */
  resets(slot: number, orig: boolean): number {
    return this.dir16(slot, orig, W_RSTCNT);
  }

  /** Segments with SYN sent by this side. */
  syns(slot: number, orig: boolean): number {
    return this.dir8(slot, orig, B_SYN);
  }

  /** Segments with FIN sent by this side. */
  fins(slot: number, orig: boolean): number {
    return this.dir8(slot, orig, B_FIN);
  }

  /** Bytes in content gaps (Zeek missed_bytes), both directions. */
  missedBytes(slot: number): number {
    const lr = this.sel(this.rec[slot]);
    return this.u32[lr * R32 + O32_MISSED];
  }

  /** Window scale shift in effect for a side's windows (0 unless both SYN and SYN-ACK offered the option). */
  windowScale(slot: number, orig: boolean): number {
    const lr = this.sel(this.rec[slot]);
    const w = this.u8[lr * REC + O8_WSCALE];
    const o = w & 0x0f;
    const r = w >>> 4;
    if (o === 15 || r === 15) return 0;
    return orig ? o : r;
  }

  /** The last raw (unscaled) window a side advertised. */
  lastWindow(slot: number, orig: boolean): number {
    return this.dir16(slot, orig, W_PREVWIN);
  }

  private rttPhase(slot: number): number {
    const lr = this.sel(this.rec[slot]);
    return (this.u8[lr * REC + O8_FLAGS] & CF_PHASE) >>> CF_PHASE_SHIFT;
  }

  /** SYN -> SYN-ACK -> ACK time in seconds (rounded to the ns), NaN when the handshake was not seen. */
  rttHandshake(slot: number): number {
    const lr = this.sel(this.rec[slot]);
    if (this.rttPhase(slot) !== 3) return NaN;
    return (this.u32[lr * R32 + O32_RTT_A] + Math.round(this.f64[lr * R64])) / 1e9;
  }

  /** SYN -> SYN-ACK time in ns, NaN when the handshake was not seen. */
  rttSynSynAckNs(slot: number): number {
    const lr = this.sel(this.rec[slot]);
    return this.rttPhase(slot) === 3 ? this.u32[lr * R32 + O32_RTT_A] : NaN;
  }

  /** SYN-ACK -> ACK time in ns, NaN when the handshake was not seen. */
  rttSynAckAckNs(slot: number): number {
    const lr = this.sel(this.rec[slot]);
    return this.rttPhase(slot) === 3 ? Math.round(this.f64[lr * R64]) : NaN;
  }

  /** Write the per-flow TCP fields into `rec` (a plain object being built for one NDJSON line). */
  fill(slot: number, rec: Record<string, unknown>): void {
    const lr = this.sel(this.rec[slot]);
    rec.conn_state = this.connState(slot);
    rec.history = this.history(slot);
    rec.orig_syn = this.syns(slot, true);
    rec.orig_fin = this.fins(slot, true);
    rec.orig_rst = this.resets(slot, true);
    rec.resp_syn = this.syns(slot, false);
    rec.resp_fin = this.fins(slot, false);
    rec.resp_rst = this.resets(slot, false);
    rec.orig_retrans_pkts = this.retransPkts(slot, true);
    rec.orig_retrans_bytes = this.retransBytes(slot, true);
    rec.resp_retrans_pkts = this.retransPkts(slot, false);
    rec.resp_retrans_bytes = this.retransBytes(slot, false);
    rec.orig_ooo_pkts = this.oooPkts(slot, true);
    rec.resp_ooo_pkts = this.oooPkts(slot, false);
    rec.orig_dup_acks = this.dupAcks(slot, true);
    rec.resp_dup_acks = this.dupAcks(slot, false);
    rec.orig_zero_win = this.zeroWin(slot, true);
    rec.resp_zero_win = this.zeroWin(slot, false);
    rec.missed_bytes = this.missedBytes(slot);
    if (this.rttPhase(slot) === 3) {
      const a = this.u32[lr * R32 + O32_RTT_A];
      const b = Math.round(this.f64[lr * R64]);
      rec.rtt_syn_synack = a / 1e9;
      rec.rtt_synack_ack = b / 1e9;
      rec.rtt_handshake = (a + b) / 1e9;
    }
  }
}
