/**
 * TcpTracker: hand-built segment sequences (table-driven) and TCP segment
 * streams of Zeek test-suite captures replayed against Zeek's own conn.log
 * baselines (/work/shared/captures/zeek/*.zeek-conn.log).
 */
import { describe, expect, it } from 'vitest';
import { BYTES_PER_SLOT, TcpTracker, connStateNonTcp } from '../agent/flows/tcp.js';

const F = 0x01;
const S = 0x02;
const R = 0x04;
const P = 0x08;
const A = 0x10;
const NOOPT = new Uint8Array(0);
const MS = 1e6;

interface SegOpts {
  /** Payload bytes (default 0). */
  len?: number;
  /** Sequence number (default: this side's next). */
  seq?: number;
  /** ACK number (default: the other side's next, when ACK is set). */
  ack?: number;
  /** Raw window (default 1000). */
  win?: number;
  /** Time step before this segment, ns (default 1 ms). */
  dt?: number;
  /** Window scale option to put on a SYN. */
  ws?: number;
}

/** Drives one slot of a tracker, keeping each side's next sequence number. */
class Flow {
  readonly next: [number, number];
  t = 0;
  constructor(readonly tr = new TcpTracker(4), readonly slot = 2, isnOrig = 1000, isnResp = 5000) {
    tr.reset(slot);
    this.next = [isnOrig >>> 0, isnResp >>> 0];
  }

  seg(fromOrig: boolean, flags: number, o: SegOpts = {}): this {
    const side = fromOrig ? 0 : 1;
    const seq = (o.seq ?? this.next[side]) >>> 0;
    const len = o.len ?? 0;
    const ack = (o.ack ?? ((flags & A) !== 0 ? this.next[side ^ 1] : 0)) >>> 0;
    this.t += o.dt ?? MS;
    const opts = o.ws === undefined ? NOOPT : new Uint8Array([1, 3, 3, o.ws]);
    this.tr.segment(this.slot, this.tr.record(this.slot), fromOrig, flags, seq, ack, o.win ?? 1000, len, this.t, opts, 0, opts.length);
    const end = (seq + len + ((flags & S) !== 0 ? 1 : 0) + ((flags & F) !== 0 ? 1 : 0)) >>> 0;
    if ((flags & R) === 0 && ((end - this.next[side]) | 0) > 0) this.next[side] = end;
    return this;
  }

  /** Originator segment. */
  o(flags: number, opts?: SegOpts): this {
    return this.seg(true, flags, opts);
  }

  /** Responder segment. */
  r(flags: number, opts?: SegOpts): this {
    return this.seg(false, flags, opts);
  }

  /** SYN, SYN-ACK, ACK. */
  hs(): this {
    return this.o(S).r(S | A).o(A);
  }

  get history(): string {
    return this.tr.history(this.slot);
  }

  get state(): string {
    return this.tr.connState(this.slot);
  }

  rec(): Record<string, unknown> {
    const r: Record<string, unknown> = {};
    this.tr.fill(this.slot, r);
    return r;
  }
}

describe('TcpTracker layout', () => {
  it('uses at most 130 bytes per slot', () => {
    expect(BYTES_PER_SLOT).toBeLessThanOrEqual(130);
    // Records live in a pool of their own: 1024 TCP flows cost their records plus the slot map (free records are linked through themselves).
    const t = new TcpTracker(1024);
    for (let s = 0; s < 1024; s++) t.reset(s);
    expect(t.bytesPerSlot()).toBe(BYTES_PER_SLOT + 4);
    // Released records are reused, not added.
    for (let s = 0; s < 1024; s++) t.release(s);
    for (let s = 0; s < 1024; s++) t.reset(s);
    expect(t.bytesPerSlot()).toBe(BYTES_PER_SLOT + 4);
  });

  it('grow keeps existing slots and clears new ones', () => {
    const tr = new TcpTracker(2);
    const f = new Flow(tr, 1).hs().o(A | P, { len: 10 });
    tr.grow(64);
    expect(tr.capacity).toBe(64);
    expect(f.history).toBe('ShAD');
    expect(tr.connState(1)).toBe('S1');
    tr.reset(63);
    expect(tr.history(63)).toBe('');
    expect(tr.connState(63)).toBe('OTH');
    f.r(A).o(F | A).r(F | A).o(A);
    expect(f.history).toBe('ShADaFf');
    expect(f.state).toBe('SF');
  });

  it('reset clears every field', () => {
    const f = new Flow().hs().o(A | P, { len: 10 }).o(A | P, { len: 10, seq: 1001 });
    f.tr.reset(f.slot);
    expect(f.history).toBe('');
    expect(f.rec()).toMatchObject({ conn_state: 'OTH', history: '', orig_syn: 0, orig_retrans_pkts: 0 });
    expect(f.tr.isNewConnection(f.slot, true, S, 1)).toBe(false);
  });
});

describe('conn_state', () => {
  // Each row: how the flow goes, Zeek's conn_state and history for it.
  const rows: Array<[string, (f: Flow) => unknown, string, string]> = [
    ['S0: SYN only', (f) => f.o(S), 'S0', 'S'],
    ['S0: SYN retransmitted (same ISN)', (f) => f.o(S).o(S, { seq: 1000, dt: 1000 * MS }), 'S0', 'S'],
    ['S1: handshake', (f) => f.hs(), 'S1', 'ShA'],
    ['S1: data both ways (the last pure ACK repeats A: no letter)', (f) => f.hs().o(A | P, { len: 5 }).r(A | P, { len: 7 }).o(A), 'S1', 'ShADd'],
    ['SF: normal close', (f) => f.hs().o(A | P, { len: 5 }).r(A).o(F | A).r(F | A).o(A), 'SF', 'ShADaFf'],
    ['SF: responder closes first', (f) => f.hs().o(A | P, { len: 5 }).r(A | P, { len: 9 }).r(F | A).o(F | A).r(A), 'SF', 'ShADdfFa'],
    ['REJ: SYN answered by RST', (f) => f.o(S).r(R | A, { seq: 0 }), 'REJ', 'Sr'],
    ['REJ: three SYN/RST rounds, one ISN', (f) => f.o(S).r(R | A, { seq: 0 }).o(S, { seq: 1000 }).r(R | A, { seq: 0 })
      .o(S, { seq: 1000 }).r(R | A, { seq: 0 }), 'REJ', 'Sr'],
    ['S2: originator closed, no answer', (f) => f.hs().o(F | A), 'S2', 'ShAF'],
    ['S3: responder closed, no answer', (f) => f.hs().r(F | A), 'S3', 'ShAf'],
    ['RSTO: originator aborts', (f) => f.hs().o(A | P, { len: 5 }).o(R | A), 'RSTO', 'ShADR'],
    ['RSTR: responder aborts', (f) => f.hs().r(R | A), 'RSTR', 'ShAr'],
    ['RSTOS0: SYN then originator RST', (f) => f.o(S).o(R, { seq: 1001 }), 'RSTOS0', 'SR'],
    ['RSTRH: SYN-ACK then responder RST, no SYN', (f) => f.r(S | A, { ack: 1001 }).r(R, { seq: 5001 }), 'RSTRH', '^hr'],
    ['SH: SYN then FIN', (f) => f.o(S).o(F, { seq: 1001 }), 'SH', 'SF'],
    ['SHR: SYN-ACK then responder FIN, no SYN', (f) => f.r(S | A, { ack: 1001 }).r(F | A, { ack: 1001 }), 'SHR', '^hf'],
    ['OTH: midstream data', (f) => f.o(A | P, { len: 100 }), 'OTH', 'D'],
    ['OTH: midstream both ways', (f) => f.o(A | P, { len: 100 }).r(A | P, { len: 10 }), 'OTH', 'Dd'],
    ['SF: FIN then RST from the originator, then the responder FIN', (f) => f.hs().o(A | P, { len: 3 }).r(A | P, { len: 4 })
      .o(F | A).o(R | A, { seq: 1005 }).r(F | A), 'SF', 'ShADdFRf'],
    ['SF: both FINs then a responder RST', (f) => f.hs().r(A | P, { len: 4 }).r(F | A).o(F | A).r(R, { seq: 5006 }), 'SF', 'ShAdfFr'],
    ['SHR-like: SYN-ACK, ACK, then FINs (missed SYN)', (f) => f.r(S | A, { ack: 1001 }).o(A).o(A | P, { len: 10 }).r(A | P, { len: 20 })
      .o(F | A).r(F | A), 'SF', '^hADdFf'],
  ];
  it.each(rows)('%s', (_name, run, state, history) => {
    const f = new Flow();
    run(f);
    expect(f.state).toBe(state);
    expect(f.history).toBe(history);
  });

  it('phase follows the handshake and the close', () => {
    const f = new Flow();
    expect(f.tr.phase(f.slot)).toBe(0);
    f.o(S);
    expect(f.tr.phase(f.slot)).toBe(0);
    f.r(S | A);
    expect(f.tr.phase(f.slot)).toBe(1);
    f.o(A).o(F | A);
    expect(f.tr.phase(f.slot)).toBe(1);
    f.r(F | A);
    expect(f.tr.phase(f.slot)).toBe(2);
    const g = new Flow().o(S).r(R | A, { seq: 0 });
    expect(g.tr.phase(g.slot)).toBe(2);
    const h = new Flow().o(A | P, { len: 1 });
    expect(h.tr.phase(h.slot)).toBe(1);
  });

  it('connStateNonTcp follows Zeek for UDP; everything else is OTH', () => {
    expect(connStateNonTcp(1, 0)).toBe('S0');
    expect(connStateNonTcp(3, 2)).toBe('SF');
    expect(connStateNonTcp(0, 1)).toBe('SHR');
    expect(connStateNonTcp(0, 0)).toBe('OTH');
    expect(connStateNonTcp(5, 5, 17)).toBe('SF');
    expect(connStateNonTcp(5, 5, 1)).toBe('OTH');
    expect(connStateNonTcp(1, 0, 58)).toBe('OTH');
    expect(connStateNonTcp(1, 0, 47)).toBe('OTH');
  });
});

describe('history', () => {
  it('records A, D, I, Q once per direction', () => {
    const f = new Flow().hs().o(A).o(A | P, { len: 1 }).o(A | P, { len: 1 }).r(A).r(A).o(F | R | A).r(S | F, { seq: 5001 })
      .o(F | R | A).r(S | F, { seq: 5001 });
    expect(f.history).toBe('ShADaIq');
  });

  it('repeats S only for a different relative sequence number (a new ISN resets it)', () => {
    const f = new Flow().o(S).o(S, { seq: 1000 }).o(S, { seq: 77777 });
    expect(f.history).toBe('S');
    expect(f.rec().orig_syn).toBe(3);
  });

  it('repeats F for a FIN at a new position, not for a retransmitted FIN', () => {
    const f = new Flow().hs().o(F | A).o(F | A, { seq: 1001 }).o(F | A, { seq: 1001 });
    expect(f.history).toBe('ShAF');
    f.o(F | A | P, { seq: 1002, len: 10 });
    expect(f.history).toBe('ShAFF');
    expect(f.rec().orig_fin).toBe(4);
  });

  it('repeats R only when the RST sequence number changes', () => {
    const f = new Flow().hs().r(R, { seq: 5001 }).r(R, { seq: 5001 }).r(R, { seq: 5100 });
    expect(f.history).toBe('ShArr');
    expect(f.rec().resp_rst).toBe(3);
  });

  it('adds T, W and G logarithmically: 1st, 10th, 100th event', () => {
    const f = new Flow().hs().o(A | P, { len: 100 });
    const counts: string[] = [];
    for (let i = 1; i <= 100; i++) {
      f.o(A | P, { len: 100, seq: 1001 });
      if (i === 1 || i === 9 || i === 10 || i === 99 || i === 100) counts.push(f.history);
    }
    expect(counts).toEqual(['ShADT', 'ShADT', 'ShADTT', 'ShADTT', 'ShADTTT']);
    expect(f.tr.retransPkts(f.slot, true)).toBe(100);
    expect(f.tr.retransBytes(f.slot, true)).toBe(10000);
  });

  it('keeps long histories beyond the 12 inline letters', () => {
    const f = new Flow().hs().o(A | P, { len: 10 }).r(A | P, { len: 10 }).r(A);
    f.o(A | P, { len: 10, seq: 1001 }).r(A | P, { len: 10, seq: 5001 }).o(A, { win: 0 }).r(A, { win: 0 });
    f.o(F | A).r(F | A).o(R | A, { seq: 1012 });
    const h = 'ShADdaTtWwFfR';
    expect(f.history).toBe(h);
    expect(f.rec().history).toBe(h);
    f.tr.reset(f.slot);
    expect(f.history).toBe('');
    new Flow(f.tr, f.slot).o(S);
    expect(f.history).toBe('S');
  });

  it('flip swaps the directions, keeps hist_seen with the roles and records ^', () => {
    const f = new Flow().o(A | P, { len: 10 });
    f.tr.flip(f.slot);
    expect(f.history).toBe('D^');
    // The same host, now the responder: its data is lower case and new to the responder role.
    f.r(A | P, { len: 10, seq: 1010 });
    expect(f.history).toBe('D^d');
    expect(f.tr.connState(f.slot)).toBe('OTH');
    expect(f.tr.seqBytes(f.slot, false)).toBe(20);
    expect(f.tr.seqBytes(f.slot, true)).toBe(0);
  });
});

describe('sequence numbers', () => {
  it('handles wrap-around across 2^32', () => {
    const f = new Flow(new TcpTracker(4), 3, 0xffffff00, 0xffffffff);
    f.hs();
    for (let i = 0; i < 6; i++) f.o(A | P, { len: 100 }).r(A);
    // Retransmission of the segment that crosses 0: [0xffffffc5, 0x29).
    f.o(A | P, { len: 100, seq: 0xffffff01 + 200 });
    f.r(A | P, { len: 50 }).o(A);
    f.o(F | A).r(F | A).o(A);
    expect(f.state).toBe('SF');
    expect(f.history).toBe('ShADaTdFf');
    expect(f.tr.seqBytes(f.slot, true)).toBe(600);
    expect(f.tr.seqBytes(f.slot, false)).toBe(50);
    const rec = f.rec();
    expect(rec.orig_retrans_pkts).toBe(1);
    expect(rec.orig_retrans_bytes).toBe(100);
    expect(rec.orig_ooo_pkts).toBe(0);
    expect(rec.missed_bytes).toBe(0);
    expect(rec.resp_dup_acks).toBe(0);
  });

  it('counts a gap across the wrap as missed bytes', () => {
    const f = new Flow(new TcpTracker(4), 0, 0xffffff00, 7);
    f.hs().o(A | P, { len: 200 }); // ends at 0xffffffc9
    f.o(A | P, { len: 100, seq: 0x2d }); // 100 bytes missing before it: [0xffffffc9, 0x2d)
    f.r(A, { ack: 0x91 });
    expect(f.rec().missed_bytes).toBe(100);
    expect(f.history).toBe('ShADaG');
  });

  it('isNewConnection: a SYN with a new ISN starts a new connection, a retransmitted SYN does not', () => {
    const tr = new TcpTracker(4);
    const f = new Flow(tr, 1);
    expect(tr.isNewConnection(1, true, S, 1000)).toBe(false); // nothing seen yet
    f.o(S);
    expect(tr.isNewConnection(1, true, S, 1000)).toBe(false);
    expect(tr.isNewConnection(1, true, S, 1001)).toBe(true);
    expect(tr.isNewConnection(1, true, S | A, 1001)).toBe(false); // SYN-ACK never
    expect(tr.isNewConnection(1, true, A, 1001)).toBe(false);
    expect(tr.isNewConnection(1, false, S, 9)).toBe(false); // responder base unknown
    f.r(R | A, { seq: 0 });
    expect(tr.isNewConnection(1, true, S, 1000)).toBe(false); // same ISN after a RST stays
    expect(tr.isNewConnection(1, true, S, 2000)).toBe(true);
    // After a full close, a SYN with the old ISN still stays (Wireshark), a new one is new.
    const g = new Flow(tr, 2).hs().o(F | A).r(F | A).o(A);
    expect(tr.isNewConnection(2, true, S, 1000)).toBe(false);
    expect(tr.isNewConnection(2, true, S, 3000)).toBe(true);
    expect(tr.isNewConnection(2, false, S, 5000)).toBe(false);
    expect(tr.isNewConnection(2, false, S, 5001)).toBe(true);
    expect(g.state).toBe('SF');
    // Bases from a midstream start: the sender's seq - 1, the peer's ack - 1.
    new Flow(tr, 3).o(A | P, { len: 10, seq: 700, ack: 9000 });
    expect(tr.isNewConnection(3, true, S, 699)).toBe(false);
    expect(tr.isNewConnection(3, true, S, 700)).toBe(true);
    expect(tr.isNewConnection(3, false, S, 8999)).toBe(false);
    expect(tr.isNewConnection(3, false, S, 9000)).toBe(true);
    // 32-bit values.
    new Flow(tr, 0, 0xfffffffe).o(S);
    expect(tr.isNewConnection(0, true, S, 0xfffffffe)).toBe(false);
    expect(tr.isNewConnection(0, true, S, 0xffffffff)).toBe(true);
  });
});

describe('retransmissions, keep-alives, out-of-order, gaps', () => {
  // [name, extra segments after handshake + 100 bytes from the originator, expected counters, history]
  type Row = [string, (f: Flow) => unknown, Record<string, number>, string];
  const rows: Row[] = [
    ['in-order data: nothing', (f) => f.o(A | P, { len: 100 }).r(A),
      { orig_retrans_pkts: 0, orig_ooo_pkts: 0, missed_bytes: 0 }, 'ShADa'],
    ['full retransmission', (f) => f.o(A | P, { len: 100, seq: 1001 }),
      { orig_retrans_pkts: 1, orig_retrans_bytes: 100, orig_ooo_pkts: 0 }, 'ShADT'],
    ['partial retransmission (tail of the data)', (f) => f.o(A | P, { len: 40, seq: 1061 }),
      { orig_retrans_pkts: 1, orig_retrans_bytes: 40 }, 'ShADT'],
    ['repacketized: starts below, ends beyond the highest seen: new data', (f) => f.o(A | P, { len: 150, seq: 1051 }),
      { orig_retrans_pkts: 0, orig_retrans_bytes: 0, orig_ooo_pkts: 0 }, 'ShAD'],
    ['1-byte keep-alive at next-1: Zeek T, not a retransmission', (f) => f.o(A, { len: 1, seq: 1100 }),
      { orig_retrans_pkts: 0, orig_ooo_pkts: 0 }, 'ShADT'],
    ['0-byte keep-alive at next-1: a pure ACK', (f) => f.o(A, { seq: 1100 }),
      { orig_retrans_pkts: 0 }, 'ShAD'],
    ['1-byte data below next-1 is a retransmission', (f) => f.o(A | P, { len: 1, seq: 1050 }),
      { orig_retrans_pkts: 1, orig_retrans_bytes: 1 }, 'ShADT'],
    ['FIN retransmitted without data: not counted', (f) => f.o(F | A).o(F | A, { seq: 1101 }),
      { orig_retrans_pkts: 0, orig_fin: 2 }, 'ShADF'],
    ['FIN with data, retransmitted: counted', (f) => f.o(F | A | P, { len: 10 }).o(F | A | P, { len: 10, seq: 1101 }),
      { orig_retrans_pkts: 1, orig_retrans_bytes: 10, orig_fin: 2 }, 'ShADFT'],
    ['old data with a new FIN: the FIN octet is new, not a retransmission', (f) => f.o(F | A | P, { len: 10, seq: 1091 }),
      { orig_retrans_pkts: 0, orig_retrans_bytes: 0 }, 'ShADF'],
    ['reordering: the segment after a hole, then the hole filler', (f) => f.o(A | P, { len: 100, seq: 1201 }).o(A | P, { len: 100, seq: 1101 }).r(A),
      { orig_retrans_pkts: 0, orig_ooo_pkts: 1, missed_bytes: 0 }, 'ShADTa'],
    ['filler in two parts, then a true retransmission of the block above', (f) => f.o(A | P, { len: 100, seq: 1201 })
      .o(A | P, { len: 50, seq: 1101 }).o(A | P, { len: 50, seq: 1151 }).o(A | P, { len: 100, seq: 1201 }).r(A),
    { orig_retrans_pkts: 1, orig_retrans_bytes: 100, orig_ooo_pkts: 2, missed_bytes: 0 }, 'ShADTa'],
    ['a hole acked by the receiver is missed; the late segment is then a retransmission', (f) => f.o(A | P, { len: 100, seq: 1201 })
      .r(A, { ack: 1301 }).o(A | P, { len: 100, seq: 1101 }),
    { orig_retrans_pkts: 1, orig_ooo_pkts: 0, missed_bytes: 100 }, 'ShADaGT'],
    ['acked beyond everything seen: one gap', (f) => f.r(A, { ack: 1501 }),
      { missed_bytes: 400 }, 'ShADaG'],
    ['hole and a tail: two gap events', (f) => f.o(A | P, { len: 100, seq: 1201 }).r(A, { ack: 1401 }),
      { missed_bytes: 200 }, 'ShADaG'],
    ['the FIN octet is never a gap', (f) => f.o(F | A).r(A, { ack: 1102 }).r(F | A).o(A),
      { missed_bytes: 0 }, 'ShADFaf'],
    ['no gap after a RST', (f) => f.r(R | A, { ack: 1500 }),
      { missed_bytes: 0 }, 'ShADr'],
  ];
  it.each(rows)('%s', (_name, run, counters, history) => {
    const f = new Flow().hs().o(A | P, { len: 100 });
    run(f);
    expect(f.rec()).toMatchObject(counters);
    expect(f.history).toBe(history);
  });

  it('no gap for a midstream flow acked beyond what was seen', () => {
    const f = new Flow().o(A | P, { len: 100 }).r(A | P, { len: 10, ack: 5000 });
    expect(f.rec().missed_bytes).toBe(0);
    expect(f.history).toBe('Dd');
  });

  it('counts two gap events when a hole and a tail are acked together', () => {
    const f = new Flow().hs();
    for (let i = 0; i < 5; i++) {
      const base = 1001 + i * 1000;
      f.o(A | P, { len: 100, seq: base }).o(A | P, { len: 100, seq: base + 200 }).r(A, { ack: base + 1000 });
    }
    // 5 x (100 hole + 700 tail) = 4000 bytes, 10 gap events: G at the 1st and the 10th.
    expect(f.rec().missed_bytes).toBe(4000);
    expect(f.history).toBe('ShADaGG');
  });
});

describe('duplicate ACKs and zero windows', () => {
  it('counts pure ACKs repeating the last ACK and window while data is outstanding', () => {
    const f = new Flow().hs();
    f.o(A | P, { len: 100 }).r(A); // ack 1101
    f.o(A | P, { len: 100, seq: 1201 }).o(A | P, { len: 100, seq: 1301 }); // 1101..1200 lost
    f.r(A, { ack: 1101 }).r(A, { ack: 1101 });
    f.r(A, { ack: 1101, win: 2000 }); // window changed: not a duplicate
    f.r(A, { ack: 1101, win: 2000 }); // duplicate again
    f.r(A | P, { ack: 1101, win: 2000, len: 10 }); // carries data: not a duplicate
    f.o(A | P, { len: 100, seq: 1101 }).r(A, { ack: 1401, win: 2000 });
    f.r(A, { ack: 1401, win: 2000 }); // nothing outstanding: not a duplicate
    expect(f.rec()).toMatchObject({ resp_dup_acks: 3, orig_dup_acks: 0, orig_ooo_pkts: 1, orig_retrans_pkts: 0, missed_bytes: 0 });
  });

  it('counts zero windows, not on RST and not after the peer FIN', () => {
    const f = new Flow().hs().o(A | P, { len: 100 });
    f.r(A, { win: 0 }).r(A, { win: 0 }).r(A, { win: 500 });
    f.o(A, { win: 0 });
    f.o(F | A).r(A, { win: 0 }); // after the originator's FIN: boring
    f.r(R | A, { win: 0 });
    expect(f.rec()).toMatchObject({ resp_zero_win: 2, orig_zero_win: 1 });
    expect(f.tr.zeroWin(f.slot, false)).toBe(2);
    expect(f.history).toBe('ShADawWFr');
  });

  it('a zero window advertised on the SYN-ACK counts', () => {
    const f = new Flow().o(S).r(S | A, { win: 0 });
    expect(f.rec().resp_zero_win).toBe(1);
    expect(f.history).toBe('Shw');
  });
});

describe('handshake timing and window scale', () => {
  it('times SYN -> SYN-ACK -> ACK from the latest SYN and SYN-ACK', () => {
    const f = new Flow();
    f.o(S, { dt: 0 }).o(S, { seq: 1000, dt: 1000 * MS }).r(S | A, { dt: 50 * MS }).r(S | A, { seq: 5000, dt: 7 * MS }).o(A, { dt: 3 * MS });
    const rec = f.rec();
    expect(rec.rtt_syn_synack).toBe(0.05);
    expect(rec.rtt_synack_ack).toBe(0.003);
    expect(rec.rtt_handshake).toBe(0.053);
    expect(f.tr.rttHandshake(f.slot)).toBe(0.053);
    // Later segments do not change it.
    f.o(S, { seq: 1000 }).r(S | A, { seq: 5000 }).o(A);
    expect(f.tr.rttHandshake(f.slot)).toBe(0.053);
  });

  it('keeps nanoseconds', () => {
    const f = new Flow();
    f.o(S, { dt: 123456789 }).r(S | A, { dt: 1234567 }).o(A, { dt: 89 });
    expect(f.rec()).toMatchObject({ rtt_syn_synack: 0.001234567, rtt_synack_ack: 8.9e-8, rtt_handshake: 0.001234656 });
  });

  it('is unknown without the whole handshake', () => {
    const cases: Array<(f: Flow) => unknown> = [
      (f) => f.o(S),
      (f) => f.o(S).r(S | A),
      (f) => f.r(S | A, { ack: 1001 }).o(A),
      (f) => f.o(S).r(S | A).o(R | A),
      (f) => f.o(A | P, { len: 5 }).r(A),
      (f) => f.o(S).r(S | A, { dt: 5000 * MS }).o(A), // SYN to SYN-ACK over 4.29 s
    ];
    for (const run of cases) {
      const f = new Flow();
      run(f);
      expect(f.tr.rttHandshake(f.slot)).toBeNaN();
      expect(f.rec().rtt_handshake).toBeUndefined();
    }
  });

  it('window scale counts when both sides offered it', () => {
    const both = new Flow().o(S, { ws: 7 }).r(S | A, { ws: 9 }).o(A, { win: 300 });
    expect(both.tr.windowScale(both.slot, true)).toBe(7);
    expect(both.tr.windowScale(both.slot, false)).toBe(9);
    expect(both.tr.lastWindow(both.slot, true)).toBe(300);
    const synOnly = new Flow().o(S, { ws: 7 }).r(S | A).o(A);
    expect(synOnly.tr.windowScale(synOnly.slot, true)).toBe(0);
    expect(synOnly.tr.windowScale(synOnly.slot, false)).toBe(0);
    const capped = new Flow().o(S, { ws: 20 }).r(S | A, { ws: 0 });
    expect(capped.tr.windowScale(capped.slot, true)).toBe(14);
    expect(capped.tr.windowScale(capped.slot, false)).toBe(0);
  });

  it('parses options only within optLen (truncated capture)', () => {
    const tr = new TcpTracker(2);
    tr.reset(0);
    tr.reset(1);
    const opts = new Uint8Array([0xee, 2, 4, 5, 180, 1, 3, 3, 7, 4, 2, 0, 0]);
    tr.segment(0, tr.record(0), true, S, 1, 0, 100, 0, 0, opts, 1, 8); // MSS, NOP, WS 7
    tr.segment(0, tr.record(0), false, S | A, 9, 2, 100, 0, 1, opts, 1, 7); // the WS option is cut off
    expect(tr.windowScale(0, true)).toBe(0);
    tr.segment(1, tr.record(1), true, S, 1, 0, 100, 0, 0, opts, 1, 8);
    tr.segment(1, tr.record(1), false, S | A, 9, 2, 100, 0, 1, opts, 1, 12);
    expect(tr.windowScale(1, true)).toBe(7);
    expect(tr.windowScale(1, false)).toBe(7);
  });
});

describe('fill', () => {
  it('writes every field with Zeek names', () => {
    const f = new Flow().hs().o(A | P, { len: 100 }).r(A).o(F | A).r(F | A).o(A);
    const rec = f.rec();
    expect(Object.keys(rec)).toEqual([
      'conn_state', 'history', 'orig_syn', 'orig_fin', 'orig_rst', 'resp_syn', 'resp_fin', 'resp_rst',
      'orig_retrans_pkts', 'orig_retrans_bytes', 'resp_retrans_pkts', 'resp_retrans_bytes', 'orig_ooo_pkts', 'resp_ooo_pkts',
      'orig_dup_acks', 'resp_dup_acks', 'orig_zero_win', 'resp_zero_win', 'missed_bytes',
      'rtt_syn_synack', 'rtt_synack_ack', 'rtt_handshake',
    ]);
    expect(rec).toMatchObject({
      conn_state: 'SF', history: 'ShADaFf', orig_syn: 1, orig_fin: 1, orig_rst: 0, resp_syn: 1, resp_fin: 1, resp_rst: 0,
      rtt_syn_synack: 0.001, rtt_synack_ack: 0.001, rtt_handshake: 0.002,
    });
    expect(f.tr.seqBytes(f.slot, true)).toBe(100);
    expect(f.tr.seqBytes(f.slot, false)).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Zeek test-suite captures, replayed segment by segment.
//
// Each stream is one Wireshark TCP conversation of a capture in
// /work/shared/captures/zeek/, extracted with tshark 4.0.17:
//   tshark -r FILE -Y tcp -T fields -E occurrence=l -e tcp.stream -e frame.time_epoch
//     -e ip.src -e ipv6.src -e tcp.srcport -e tcp.flags -e tcp.seq_raw -e tcp.ack_raw
//     -e tcp.window_size_value -e ip.len -e ip.hdr_len -e ipv6.plen -e tcp.hdr_len
//     -e tcp.options.wscale.shift
// One segment per `;` or line: "ns since the stream's first packet, direction (0 = sender
// of the first packet), flags, seq, ack, raw window, payload length from the IP length
// (so pppoe-over-qinq's 6 bytes of padding inside the IP length count, as in Zeek),
// window-scale shift or -1". Expected: the matching row of FILE.zeek-conn.log
// (conn_state, history, orig_bytes, resp_bytes, missed_bytes 0) and tshark's
// tcp.analysis.initial_rtt.
// ---------------------------------------------------------------------------

interface Capture {
  file: string;
  stream: number;
  connState: string;
  history: string;
  origBytes: number;
  respBytes: number;
  irtt: number | undefined;
  segs: string;
}

const CAPTURES: Capture[] = [
  {
    file: 'tcp-http-with-padding.pcap', stream: 0, connState: 'SF', history: 'ShADadfF', origBytes: 16, respBytes: 191, irtt: 0.157411,
    segs: `
      0 0 2 1394854461 0 65535 0 6;53000 1 18 2707052749 1394854462 65160 0 7
      157411000 0 16 1394854462 2707052750 2070 0 -1;1467283000 0 24 1394854462 2707052750 2070 1 -1
      1467301000 1 16 2707052750 1394854463 510 0 -1;2868853000 0 24 1394854463 2707052750 2070 1 -1
      2868866000 1 16 2707052750 1394854464 510 0 -1;6207750000 0 24 1394854464 2707052750 2070 8 -1
      6207760000 1 16 2707052750 1394854472 510 0 -1;8909234000 0 24 1394854472 2707052750 2070 2 -1
      8909245000 1 16 2707052750 1394854474 510 0 -1;9432889000 0 24 1394854474 2707052750 2070 1 -1
      9432898000 1 16 2707052750 1394854475 510 0 -1;10210823000 0 24 1394854475 2707052750 2070 1 -1
      10210831000 1 16 2707052750 1394854476 510 0 -1;10596405000 0 24 1394854476 2707052750 2070 1 -1
      10596413000 1 16 2707052750 1394854477 510 0 -1;10752497000 0 24 1394854477 2707052750 2070 1 -1
      10752506000 1 16 2707052750 1394854478 510 0 -1;10756757000 1 24 2707052750 1394854478 510 185 -1
      10756805000 1 25 2707052935 1394854478 510 6 -1;10914135000 0 16 1394854478 2707052935 2067 0 -1
      10914386000 0 16 1394854478 2707052942 2067 0 -1;10914549000 0 17 1394854478 2707052942 2067 0 -1
      10914567000 1 16 2707052942 1394854479 510 0 -1`,
  },
  {
    file: 'tcp__missing-syn.pcap', stream: 0, connState: 'SF', history: '^hADdFaf', origBytes: 98, respBytes: 9417, irtt: undefined,
    segs: `
      0 0 18 2697137987 1512382794 57344 0 0;649000 1 16 1512382794 2697137988 1460 0 -1
      781000 1 24 1512382794 2697137988 1460 98 -1;184821000 0 16 2697137988 1512382892 57920 1448 -1
      184984000 0 16 2697139436 1512382892 57920 1448 -1;186032000 1 16 1512382892 2697139436 2184 0 -1
      186148000 1 16 1512382892 2697140884 2908 0 -1;369159000 0 16 2697140884 1512382892 57920 1448 -1
      369310000 0 16 2697142332 1512382892 57920 1448 -1;369483000 0 16 2697143780 1512382892 57920 1448 -1
      369604000 0 16 2697145228 1512382892 57920 1448 -1;370386000 1 16 1512382892 2697142332 3632 0 -1
      370506000 1 16 1512382892 2697143780 4356 0 -1;370738000 1 16 1512382892 2697145228 5080 0 -1
      370863000 1 16 1512382892 2697146676 5804 0 -1;553128000 0 24 2697146676 1512382892 57920 729 -1
      554082000 1 16 1512382892 2697147405 6528 0 -1;1368449000 1 17 1512382892 2697147405 6528 0 -1
      1550739000 0 16 2697147405 1512382893 57920 0 -1;1550793000 0 17 2697147405 1512382893 57920 0 -1
      1551523000 1 16 1512382893 2697147406 6528 0 -1`,
  },
  {
    file: 'tls__irc-starttls.pcap', stream: 0, connState: 'SF', history: 'ShADadFRf', origBytes: 913, respBytes: 1903, irtt: 0.333825,
    segs: `
      0 0 2 1130049455 0 29200 0 7;333794000 1 18 3519432067 1130049456 7240 0 0
      333825000 0 16 1130049456 3519432068 229 0 -1;333923000 0 24 1130049456 3519432068 229 10 -1
      667697000 1 16 3519432068 1130049466 7230 0 -1;669097000 1 24 3519432068 1130049466 7230 74 -1
      669113000 0 16 1130049466 3519432142 229 0 -1;669223000 0 24 1130049466 3519432142 229 317 -1
      1042564000 1 16 3519432142 1130049783 6913 0 -1;1670487000 1 24 3519432142 1130049783 6913 1572 -1
      1670532000 0 16 1130049783 3519433714 253 0 -1;1671378000 0 24 1130049783 3519433714 253 586 -1
      2004954000 1 16 3519433714 1130050369 6327 0 -1;2013098000 1 24 3519433714 1130050369 6327 226 -1
      2052979000 0 16 1130050369 3519433940 276 0 -1;4589507000 0 17 1130050369 3519433940 276 0 -1
      4923113000 1 24 3519433940 1130050370 6327 31 -1;4923139000 0 4 1130050370 0 0 0 -1
      4923144000 1 17 3519433971 1130050370 6327 0 -1;4923147000 0 4 1130050370 0 0 0 -1`,
  },
  {
    file: 'tls__pop3-starttls.pcap', stream: 0, connState: 'SF', history: 'ShAadDfFr', origBytes: 851, respBytes: 2590, irtt: 8.9e-05,
    segs: `
      0 0 2 3477461263 0 65535 0 4;69000 1 18 1284526236 3477461264 65535 0 4
      89000 0 16 3477461264 1284526237 9186 0 -1;103000 1 16 1284526237 3477461264 9186 0 -1
      745000 1 24 1284526237 3477461264 9186 107 -1;772000 0 16 3477461264 1284526344 9180 0 -1
      813000 0 24 3477461264 1284526344 9180 6 -1;836000 1 16 1284526344 3477461270 9186 0 -1
      858000 1 24 1284526344 3477461270 9186 31 -1;874000 0 16 3477461270 1284526375 9178 0 -1
      995000 0 24 3477461270 1284526375 9178 517 -1;1018000 1 16 1284526375 3477461787 9154 0 -1
      2945000 1 24 1284526375 3477461787 9154 2115 -1;2976000 0 16 3477461787 1284528490 9045 0 -1
      5834000 0 24 3477461787 1284528490 9045 211 -1;5890000 1 16 1284528490 3477461998 9140 0 -1
      7039000 1 24 1284528490 3477461998 9140 235 -1;7104000 0 16 3477461998 1284528725 9031 0 -1
      1937933000 0 24 3477461998 1284528725 9031 40 -1;1938015000 1 16 1284528725 3477462038 9138 0 -1
      1938143000 1 24 1284528725 3477462038 9138 62 -1;1938219000 0 16 3477462038 1284528787 9027 0 -1
      2487808000 0 24 3477462038 1284528787 9027 40 -1;2487893000 1 16 1284528787 3477462078 9135 0 -1
      2488644000 1 24 1284528787 3477462078 9135 40 -1;2488712000 0 16 3477462078 1284528827 9024 0 -1
      2488775000 1 17 1284528827 3477462078 9135 0 -1;2488811000 0 16 3477462078 1284528828 9024 0 -1
      2488842000 1 16 1284528828 3477462078 9135 0 -1;2488946000 0 24 3477462078 1284528828 9024 37 -1
      2489002000 0 17 3477462115 1284528828 9024 0 -1;2489031000 1 4 1284528828 0 0 0 -1
      2489063000 1 4 1284528828 0 0 0 -1`,
  },
  {
    file: 'pppoe-over-qinq.pcap', stream: 0, connState: 'SF', history: 'ShADdtaTTtFf', origBytes: 11352, respBytes: 4984, irtt: 0.413687,
    segs: `
      0 0 2 3618128213 0 65535 0 6;411185000 1 18 4237337342 3618128214 8190 0 4
      413687000 0 16 3618128214 4237337343 4096 0 -1;415602000 0 24 3618128214 4237337343 4096 517 -1
      827179000 1 24 4237337343 3618128731 2165 1440 -1;827221000 1 24 4237338783 3618128731 2165 1440 -1
      827224000 1 24 4237340223 3618128731 2165 456 -1;921214000 0 16 3618128731 4237338783 4073 0 -1
      921215000 0 16 3618128731 4237340223 4051 0 -1;921216000 0 16 3618128731 4237340679 4043 0 -1
      921216000 0 16 3618128731 4237340679 4088 0 -1;972940000 0 24 3618128731 4237340679 4096 318 -1
      1137539000 1 24 4237337343 3618128731 2165 1440 -1;1143354000 0 16 3618129049 4237340679 4096 0 -1
      1332960000 1 24 4237340223 3618128731 2165 456 -1;1332988000 1 24 4237338783 3618128731 2165 1440 -1
      1334813000 0 16 3618129049 4237340679 4096 0 -1;1334813000 0 16 3618129049 4237340679 4096 0 -1
      1384146000 1 16 4237340679 3618129049 2146 6 -1;1385796000 1 24 4237340679 3618129049 2146 51 -1
      1387487000 0 16 3618129049 4237340730 4095 0 -1;1391363000 0 16 3618129049 4237340730 4096 1440 -1
      1391365000 0 24 3618130489 4237340730 4096 429 -1;1392305000 0 24 3618130918 4237340730 4096 764 -1
      1567478000 1 24 4237340679 3618129049 2146 51 -1;1569873000 0 16 3618131682 4237340730 4096 0 -1
      1803881000 1 16 4237340730 3618129049 2146 0 -1;1840973000 0 16 3618129049 4237340730 4096 1440 -1
      3144515000 0 16 3618129049 4237340730 4096 1440 -1;3574315000 1 16 4237340730 3618130489 2056 0 -1
      3649656000 0 16 3618130489 4237340730 4096 429 -1;3649679000 0 16 3618130489 4237340730 4096 1011 -1
      4074901000 1 16 4237340730 3618131682 1981 6 -1;4074914000 1 16 4237340730 3618130918 2029 0 -1
      4075908000 1 24 4237340730 3618131682 2480 522 -1;4077779000 0 16 3618131682 4237341252 4087 0 -1
      4117083000 0 16 3618131682 4237341252 4096 1440 -1;4117086000 0 24 3618133122 4237341252 4096 428 -1
      4377448000 1 24 4237340730 3618131682 2480 522 -1;4396744000 0 16 3618133550 4237341252 4096 1012 -1
      4528315000 1 16 4237341252 3618133550 2443 6 -1;4603664000 0 16 3618134562 4237341252 4096 1440 -1
      4603677000 0 24 3618136002 4237341252 4096 110 -1;5015014000 1 16 4237341252 3618133550 2601 0 -1
      5015015000 1 16 4237341252 3618133550 2601 0 -1;5017443000 0 16 3618133550 4237341252 4096 1012 -1
      5431810000 1 16 4237341252 3618136112 2441 6 -1;5433353000 1 24 4237341252 3618136112 2715 522 -1
      5435987000 0 16 3618136112 4237341774 4087 0 -1;5484892000 0 16 3618136112 4237341774 4096 1440 -1
      5484895000 0 24 3618137552 4237341774 4096 428 -1;5737448000 1 24 4237341252 3618136112 2715 522 -1
      5740043000 0 16 3618137980 4237341774 4096 1012 -1;6151263000 1 16 4237341774 3618136112 2715 0 -1
      6347510000 1 24 4237341252 3618136112 2715 522 -1;6964161000 0 24 3618138992 4237341774 4096 543 -1
      6967062000 0 16 3618136112 4237341774 4096 1440 -1;6967065000 0 16 3618137552 4237341774 4096 428 -1
      6967993000 0 24 3618138992 4237341774 4096 543 -1;7375434000 1 16 4237341774 3618136112 2715 0 -1
      7378351000 1 16 4237341774 3618137552 2559 0 -1;7378352000 1 16 4237341774 3618137980 2533 0 -1
      7378353000 1 16 4237341774 3618139535 2435 6 -1;7379294000 1 16 4237341774 3618139535 2655 0 -1
      7379508000 1 24 4237341774 3618139535 2655 522 -1;7687532000 1 24 4237341774 3618139535 2655 522 -1
      8187752000 0 16 3618136112 4237341774 4096 1440 -1;8190628000 0 16 3618136112 4237341774 4096 1440 -1
      8190631000 0 16 3618137552 4237341774 4096 428 -1;8190641000 0 16 3618137552 4237341774 4096 1012 -1
      8190654000 0 16 3618139535 4237342296 4087 0 -1;8190654000 0 16 3618139535 4237342296 4087 0 -1
      8297435000 1 24 4237341774 3618139535 2655 522 -1;8299785000 0 16 3618139535 4237342296 4096 0 -1
      8599785000 1 16 4237342296 3618139535 2655 0 -1;8602938000 1 16 4237342296 3618139535 2655 0 -1
      8602938000 1 16 4237342296 3618139535 2655 0 -1;8602939000 1 16 4237342296 3618139535 2655 0 -1
      38208757000 0 24 3618139535 4237342296 4096 31 -1;38208758000 0 17 3618139566 4237342296 4096 0 -1
      38619779000 1 16 4237342296 3618139566 2557 6 -1;273626833000 1 17 4237342296 3618139566 2557 31 -1
      273936511000 1 25 4237342296 3618139566 2557 31 -1;274546538000 1 25 4237342296 3618139566 2557 31 -1
      275756512000 1 25 4237342296 3618139566 2557 31 -1;278166482000 1 25 4237342296 3618139566 2557 31 -1`,
  },
  {
    file: 'tcp__http-on-irc-port-missing-syn.pcapng', stream: 0, connState: 'SF', history: '^hADadFf', origBytes: 136, respBytes: 5007, irtt: undefined,
    segs: `
      0 0 18 2779762238 4263588411 14480 0 7;294000 1 16 4263588411 2779762239 8235 0 -1
      443000 1 24 4263588411 2779762239 8235 136 -1;69425000 0 16 2779762239 4263588547 122 0 -1
      70428000 0 16 2779762239 4263588547 122 1448 -1;70637000 0 16 2779763687 4263588547 122 1448 -1
      70681000 0 16 2779765135 4263588547 122 1448 -1;70691000 0 24 2779766583 4263588547 122 663 -1
      70771000 1 16 4263588547 2779765135 8054 0 -1;70803000 1 16 4263588547 2779767246 7922 0 -1
      72762000 1 17 4263588547 2779767246 8192 0 -1;141744000 0 17 2779767246 4263588548 122 0 -1
      141888000 1 16 4263588548 2779767247 8192 0 -1`,
  },
  {
    file: 'pop3__pop3.pcap', stream: 2, connState: 'SF', history: 'ShAdDafF', origBytes: 12, respBytes: 175, irtt: 0.0659,
    segs: `
      0 0 2 3085338888 0 8192 0 2;65819000 1 18 4294484924 3085338889 5840 0 9
      65900000 0 16 3085338889 4294484925 4380 0 -1;113270000 1 24 4294484925 3085338889 12 56 -1
      113647000 0 24 3085338889 4294484981 4366 6 -1;113790000 0 24 3085338895 4294484981 4366 6 -1
      161720000 1 16 4294484981 3085338895 12 0 -1;162995000 1 24 4294484981 3085338895 12 91 -1
      163102000 1 25 4294485072 3085338901 12 28 -1;163202000 0 16 3085338901 4294485101 4336 0 -1
      163506000 0 17 3085338901 4294485101 4336 0 -1;212024000 1 16 4294485101 3085338902 12 0 -1`,
  },
  {
    file: 'pop3__pop3.pcap', stream: 3, connState: 'SF', history: 'ShAdDafF', origBytes: 86, respBytes: 205, irtt: 0.050014,
    segs: `
      0 0 2 3198861406 0 8192 0 2;2995842000 0 2 3198861406 0 8192 0 2
      3045773000 1 18 2878246233 3198861407 5840 0 9;3045856000 0 16 3198861407 2878246234 4380 0 -1
      3094752000 1 24 2878246234 3198861407 12 56 -1;3130444000 0 24 3198861407 2878246290 4366 6 -1
      3177141000 1 16 2878246290 3198861413 12 0 -1;3178325000 1 24 2878246290 3198861413 12 26 -1
      3209121000 0 24 3198861413 2878246316 4359 6 -1;3256047000 1 24 2878246316 3198861419 12 91 -1
      3288923000 0 24 3198861419 2878246407 4336 12 -1;3336399000 1 24 2878246407 3198861431 12 4 -1
      3370440000 0 24 3198861431 2878246411 4335 62 -1;3434636000 1 24 2878246411 3198861493 12 28 -1
      3435815000 1 17 2878246439 3198861493 12 0 -1;3435873000 0 16 3198861493 2878246440 4328 0 -1
      3469839000 0 17 3198861493 2878246440 4328 0 -1;3520190000 1 16 2878246440 3198861494 12 0 -1`,
  },
  {
    file: 'pop3__pop3.pcap', stream: 4, connState: 'SF', history: 'ShAdDafF', origBytes: 12, respBytes: 175, irtt: 0.048224,
    segs: `
      0 0 2 3068590223 0 8192 0 2;48122000 1 18 3639128203 3068590224 5840 0 9
      48224000 0 16 3068590224 3639128204 4380 0 -1;96015000 1 24 3639128204 3068590224 12 56 -1
      122211000 0 24 3068590224 3639128260 4366 6 -1;122294000 0 24 3068590230 3639128260 4366 6 -1
      177920000 1 16 3639128260 3068590230 12 0 -1;179404000 1 24 3639128260 3068590230 12 91 -1
      179533000 1 25 3639128351 3068590236 12 28 -1;179641000 0 16 3068590236 3639128380 4336 0 -1
      206558000 0 17 3068590236 3639128380 4336 0 -1;253258000 1 16 3639128380 3068590237 12 0 -1`,
  },
  {
    file: 'pop3__pop3.pcap', stream: 5, connState: 'SF', history: 'ShAdDafF', origBytes: 96, respBytes: 297, irtt: 0.054446,
    segs: `
      0 0 2 4012658760 0 8192 0 2;54377000 1 18 1812910438 4012658761 5840 0 9
      54446000 0 16 4012658761 1812910439 4380 0 -1;103132000 1 24 1812910439 4012658761 12 57 -1
      127455000 0 24 4012658761 1812910496 4365 6 -1;180327000 1 16 1812910496 4012658767 12 0 -1
      180355000 1 24 1812910496 4012658767 12 26 -1;208244000 0 24 4012658767 1812910522 4359 6 -1
      260059000 1 24 1812910522 4012658773 12 91 -1;288802000 0 24 4012658773 1812910613 4336 12 -1
      339310000 1 24 1812910613 4012658785 12 4 -1;371057000 0 24 4012658785 1812910617 4335 66 -1
      427811000 1 24 1812910617 4012658851 12 91 -1;452894000 0 24 4012658851 1812910708 4312 6 -1
      507627000 1 24 1812910708 4012658857 12 28 -1;507703000 1 17 1812910736 4012658857 12 0 -1
      507746000 0 16 4012658857 1812910737 4305 0 -1;537230000 0 17 4012658857 1812910737 4305 0 -1
      586325000 1 16 1812910737 4012658858 12 0 -1`,
  },
  {
    file: 'pop3__pop3.pcap', stream: 6, connState: 'SF', history: 'ShAdDafF', origBytes: 138, respBytes: 19651, irtt: 0.048825,
    segs: `
      0 0 2 182499597 0 8192 0 2;48715000 1 18 1529665578 182499598 5840 0 9
      48825000 0 16 182499598 1529665579 4380 0 -1;100791000 1 24 1529665579 182499598 12 57 -1
      134109000 0 24 182499598 1529665636 4365 6 -1;180593000 1 16 1529665636 182499604 12 0 -1
      181745000 1 24 1529665636 182499604 12 26 -1;230933000 0 24 182499604 1529665662 4359 6 -1
      281485000 1 24 1529665662 182499610 12 91 -1;325949000 0 24 182499610 1529665753 4336 12 -1
      373931000 1 24 1529665753 182499622 12 4 -1;422792000 0 24 182499622 1529665757 4335 66 -1
      485474000 1 24 1529665757 182499688 12 91 -1;519609000 0 24 182499688 1529665848 4312 6 -1
      567891000 1 24 1529665848 182499694 12 13 -1;615569000 0 24 182499694 1529665861 4309 6 -1
      662852000 1 24 1529665861 182499700 12 32 -1;712569000 0 24 182499700 1529665893 4301 6 -1
      758868000 1 24 1529665893 182499706 12 92 -1;807812000 0 24 182499706 1529665985 4278 8 -1
      856828000 1 24 1529665985 182499714 12 5 -1;858780000 1 16 1529665990 182499714 12 1460 -1
      858838000 0 16 182499714 1529667450 4380 0 -1;861969000 1 16 1529667450 182499714 12 1460 -1
      862036000 1 16 1529668910 182499714 12 1460 -1;862073000 0 16 182499714 1529670370 4380 0 -1
      906732000 1 24 1529670370 182499714 12 1189 -1;918526000 0 24 182499714 1529671559 4082 8 -1
      966397000 1 24 1529671559 182499722 12 5 -1;968788000 1 16 1529671564 182499722 12 1460 -1
      968810000 0 16 182499722 1529673024 4380 0 -1;968887000 1 16 1529673024 182499722 12 1460 -1
      972126000 1 16 1529674484 182499722 12 1460 -1;972141000 0 16 182499722 1529675944 4380 0 -1
      972185000 1 16 1529675944 182499722 12 1460 -1;972204000 1 16 1529677404 182499722 12 1460 -1
      972214000 0 16 182499722 1529678864 4380 0 -1;1015626000 1 24 1529678864 182499722 12 1116 -1
      1024245000 0 24 182499722 1529679980 4101 8 -1;1071660000 1 24 1529679980 182499730 12 5 -1
      1074158000 1 16 1529679985 182499730 12 1460 -1;1074195000 0 16 182499730 1529681445 4380 0 -1
      1074289000 1 16 1529681445 182499730 12 1460 -1;1076236000 1 16 1529682905 182499730 12 1460 -1
      1076256000 0 16 182499730 1529684365 4380 0 -1;1121576000 1 24 1529684365 182499730 12 837 -1
      1144090000 0 24 182499730 1529685202 4170 6 -1;1192819000 1 24 1529685202 182499736 12 28 -1
      1193878000 1 17 1529685230 182499736 12 0 -1;1193916000 0 16 182499736 1529685231 4163 0 -1
      1213485000 0 17 182499736 1529685231 4163 0 -1;1262130000 1 16 1529685231 182499737 12 0 -1`,
  },
  {
    file: 'ftp__ipv4.pcap', stream: 0, connState: 'SF', history: 'ShAdDfFa', origBytes: 180, respBytes: 3146, irtt: 0.055566,
    segs: `
      0 0 2 1843701389 0 14600 0 6;55533000 1 18 616064503 1843701390 4096 0 6
      55566000 0 16 1843701390 616064504 229 0 -1;114861000 1 24 616064504 1843701390 68 61 -1
      114937000 0 16 1843701390 616064565 229 0 -1;2895726000 0 24 1843701390 616064565 229 16 -1
      2951964000 1 24 616064565 1843701406 68 49 -1;2952021000 0 16 1843701406 616064614 229 0 -1
      4495725000 0 24 1843701406 616064614 229 11 -1;4551861000 1 24 616064614 1843701417 68 6 -1
      4551904000 0 16 1843701417 616064620 229 0 -1;4552209000 1 24 616064620 1843701417 68 1448 -1
      4552235000 0 16 1843701417 616066068 274 0 -1;4607739000 1 24 616066068 1843701417 68 769 -1
      4607802000 0 16 1843701417 616066837 319 0 -1;4608020000 0 24 1843701417 616066837 319 6 -1
      4663729000 1 24 616066837 1843701423 68 49 -1;4703630000 0 16 1843701423 616066886 319 0 -1
      13711756000 0 24 1843701423 616066886 319 6 -1;13767338000 1 24 616066886 1843701429 68 52 -1
      13767481000 0 16 1843701429 616066938 319 0 -1;13823036000 0 24 1843701429 616066938 319 6 -1
      13878441000 1 24 616066938 1843701435 68 55 -1;13878476000 0 16 1843701435 616066993 319 0 -1
      13933840000 1 24 616066993 1843701435 68 24 -1;13933900000 0 16 1843701435 616067017 319 0 -1
      17791811000 0 24 1843701435 616067017 319 8 -1;17847328000 1 24 616067017 1843701443 68 20 -1
      17847396000 0 16 1843701443 616067037 319 0 -1;17847455000 0 24 1843701443 616067037 319 6 -1
      17903068000 1 24 616067037 1843701449 68 52 -1;17939627000 0 16 1843701449 616067089 319 0 -1
      17958071000 0 24 1843701449 616067089 319 17 -1;18014033000 1 24 616067089 1843701466 68 70 -1
      18014112000 0 16 1843701466 616067159 319 0 -1;18069383000 1 24 616067159 1843701466 68 24 -1
      18069436000 0 16 1843701466 616067183 319 0 -1;32015730000 0 24 1843701466 616067183 319 8 -1
      32071528000 1 24 616067183 1843701474 68 20 -1;32071576000 0 16 1843701474 616067203 319 0 -1
      32071696000 0 24 1843701474 616067203 319 29 -1;32127226000 1 24 616067203 1843701503 68 30 -1
      32127290000 0 24 1843701503 616067233 319 6 -1;32239032000 1 24 616067233 1843701509 68 55 -1
      32275626000 0 16 1843701509 616067288 319 0 -1;32331387000 1 24 616067288 1843701509 68 24 -1
      32331412000 0 16 1843701509 616067312 319 0 -1;35647765000 0 24 1843701509 616067312 319 8 -1
      35703518000 1 24 616067312 1843701517 68 20 -1;35703589000 0 16 1843701517 616067332 319 0 -1
      35703687000 0 24 1843701517 616067332 319 30 -1;35759213000 1 24 616067332 1843701547 68 30 -1
      35759277000 0 24 1843701547 616067362 319 17 -1;35870635000 1 24 616067362 1843701564 68 70 -1
      35907631000 0 16 1843701564 616067432 319 0 -1;35963437000 1 24 616067432 1843701564 68 24 -1
      35963463000 0 16 1843701564 616067456 319 0 -1;37999720000 0 24 1843701564 616067456 319 6 -1
      38054955000 1 24 616067456 1843701570 68 6 -1;38055024000 0 16 1843701570 616067462 319 0 -1
      38055127000 1 25 616067462 1843701570 68 188 -1;38055625000 0 17 1843701570 616067651 364 0 -1
      38111438000 1 16 616067651 1843701571 68 0 -1`,
  },
  {
    file: 'ftp__ipv4.pcap', stream: 1, connState: 'SF', history: 'ShAdfFa', origBytes: 0, respBytes: 342, irtt: 0.055328,
    segs: `
      0 0 2 2067011900 0 14600 0 6;55284000 1 18 1940804297 2067011901 32768 0 6
      55328000 0 16 2067011901 1940804298 229 0 -1;112264000 1 24 1940804298 2067011901 524 342 -1
      112274000 1 17 1940804640 2067011901 524 0 -1;112326000 0 16 2067011901 1940804640 245 0 -1
      112432000 0 17 2067011901 1940804641 245 0 -1;167736000 1 16 1940804641 2067011902 524 0 -1`,
  },
  {
    file: 'ftp__ipv4.pcap', stream: 2, connState: 'SF', history: 'ShAdfFa', origBytes: 0, respBytes: 77, irtt: 0.054859,
    segs: `
      0 0 2 2118963244 0 14600 0 6;54829000 1 18 4261579967 2118963245 32768 0 6
      54859000 0 16 2118963245 4261579968 229 0 -1;110908000 1 24 4261579968 2118963245 524 77 -1
      110920000 0 16 2118963245 4261580045 229 0 -1;110924000 1 17 4261580045 2118963245 524 0 -1
      111218000 0 17 2118963245 4261580046 229 0 -1;166199000 1 16 4261580046 2118963246 524 0 -1`,
  },
  {
    file: 'ftp__ipv4.pcap', stream: 3, connState: 'SF', history: 'ShADaFf', origBytes: 342, respBytes: 0, irtt: 0.055804,
    segs: `
      0 0 2 3526091905 0 32768 0 6;45000 1 18 2343738036 3526091906 14480 0 6
      55804000 0 16 3526091906 2343738037 524 0 -1;55957000 0 24 3526091906 2343738037 524 342 -1
      55971000 1 16 2343738037 3526092248 243 0 -1;55976000 0 17 3526092248 2343738037 524 0 -1
      56211000 1 17 2343738037 3526092249 243 0 -1;111928000 0 16 3526092249 2343738038 524 0 -1`,
  },
  {
    file: 'ftp__ipv4.pcap', stream: 4, connState: 'SF', history: 'ShADaFf', origBytes: 77, respBytes: 0, irtt: 0.055696,
    segs: `
      0 0 2 1625537894 0 32768 0 6;36000 1 18 2403328109 1625537895 14480 0 6
      55696000 0 16 1625537895 2403328110 524 0 -1;55800000 0 24 1625537895 2403328110 524 77 -1
      55810000 1 16 2403328110 1625537972 227 0 -1;55815000 0 17 1625537972 2403328110 524 0 -1
      56005000 1 17 2403328110 1625537973 227 0 -1;111655000 0 16 1625537973 2403328111 524 0 -1`,
  },
  {
    file: 'ftp__ipv6.pcap', stream: 0, connState: 'SF', history: 'ShAdDfFa', origBytes: 310, respBytes: 3448, irtt: 0.107014,
    segs: `
      0 0 2 646610527 0 65535 0 1;106877000 1 18 108197924 646610528 4096 0 6
      107014000 0 16 646610528 108197925 32844 0 -1;224823000 1 24 108197925 646610528 67 61 -1
      224962000 0 16 646610528 108197986 32813 0 -1;1876916000 0 24 646610528 108197986 32844 16 -1
      1983908000 1 24 108197986 646610544 67 49 -1;1984057000 0 16 646610544 108198035 32819 0 -1
      3957658000 0 24 646610544 108198035 32844 11 -1;4065569000 1 24 108198035 646610555 67 6 -1
      4065747000 0 16 646610555 108198041 32841 0 -1;4067045000 1 16 108198041 646610555 67 1208 -1
      4167395000 0 16 646610555 108199249 32844 0 -1;4276672000 1 24 108199249 646610555 67 1009 -1
      4276856000 0 16 646610555 108200258 32339 0 -1;4277770000 0 24 646610555 108200258 32844 6 -1
      4384681000 1 24 108200258 646610561 67 49 -1;4384855000 0 16 646610561 108200307 32819 0 -1
      4385128000 0 24 646610561 108200307 32844 6 -1;4493415000 1 24 108200307 646610567 67 24 -1
      4493590000 0 16 646610567 108200331 32832 0 -1;4601622000 1 24 108200331 646610567 67 86 -1
      4601762000 0 16 646610567 108200417 32801 0 -1;4602260000 0 24 646610567 108200417 32844 5 -1
      4710362000 1 24 108200417 646610572 67 35 -1;4710536000 0 16 646610572 108200452 32826 0 -1
      5385781000 0 24 646610572 108200452 32844 6 -1;5494320000 1 24 108200452 646610578 67 48 -1
      5494505000 0 16 646610578 108200500 32820 0 -1;5603400000 0 24 646610578 108200500 32844 6 -1
      5711940000 1 24 108200500 646610584 67 55 -1;5712095000 0 16 646610584 108200555 32816 0 -1
      5820101000 1 24 108200555 646610584 67 24 -1;5820225000 0 16 646610584 108200579 32832 0 -1
      8593751000 0 24 646610584 108200579 32844 6 -1;8702051000 1 24 108200579 646610590 67 48 -1
      8702210000 0 16 646610590 108200627 32820 0 -1;8811112000 0 24 646610590 108200627 32844 6 -1
      8918610000 1 24 108200627 646610596 67 57 -1;8918677000 0 16 646610596 108200684 32815 0 -1
      9026284000 1 24 108200684 646610596 67 24 -1;9026346000 0 16 646610596 108200708 32832 0 -1
      9143484000 0 24 646610596 108200708 32844 8 -1;9250248000 1 24 108200708 646610604 67 20 -1
      9250396000 0 16 646610604 108200728 32834 0 -1;9250550000 0 24 646610604 108200728 32844 17 -1
      9358305000 1 24 108200728 646610621 67 8 -1;9358446000 0 16 646610621 108200736 32840 0 -1
      9358810000 0 24 646610621 108200736 32844 6 -1;9466595000 1 24 108200736 646610627 67 48 -1
      9466738000 0 16 646610627 108200784 32820 0 -1;9574980000 0 24 646610627 108200784 32844 17 -1
      9683215000 1 24 108200784 646610644 67 70 -1;9683398000 0 16 646610644 108200854 32809 0 -1
      9789981000 1 24 108200854 646610644 67 24 -1;9790089000 0 16 646610644 108200878 32832 0 -1
      9790193000 0 24 646610644 108200878 32844 17 -1;9897591000 1 24 108200878 646610661 67 20 -1
      9897767000 0 16 646610661 108200898 32834 0 -1;17425129000 0 24 646610661 108200898 32844 17 -1
      17532907000 1 24 108200898 646610678 67 8 -1;17533033000 0 16 646610678 108200906 32840 0 -1
      17533244000 0 24 646610678 108200906 32844 53 -1;17641575000 1 24 108200906 646610731 67 30 -1
      17641745000 0 16 646610731 108200936 32829 0 -1;17641942000 0 24 646610731 108200936 32844 17 -1
      17858728000 1 24 108200936 646610748 67 70 -1;17858871000 0 16 646610748 108201006 32809 0 -1
      17966135000 1 24 108201006 646610748 67 24 -1;17966277000 0 16 646610748 108201030 32832 0 -1
      17966413000 0 24 646610748 108201030 32844 17 -1;18074549000 1 24 108201030 646610765 67 20 -1
      18074719000 0 16 646610765 108201050 32834 0 -1;21869108000 0 24 646610765 108201050 32844 8 -1
      21976846000 1 24 108201050 646610773 67 20 -1;21977008000 0 16 646610773 108201070 32834 0 -1
      21977323000 0 24 646610773 108201070 32844 53 -1;22086574000 1 24 108201070 646610826 67 30 -1
      22086748000 0 16 646610826 108201100 32829 0 -1;22086949000 0 24 646610826 108201100 32844 6 -1
      22304062000 1 24 108201100 646610832 67 55 -1;22304193000 0 16 646610832 108201155 32816 0 -1
      22411714000 1 24 108201155 646610832 67 24 -1;22411853000 0 16 646610832 108201179 32832 0 -1
      26549246000 0 24 646610832 108201179 32844 6 -1;26657814000 1 24 108201179 646610838 67 6 -1
      26657934000 1 25 108201185 646610838 67 188 -1;26657948000 0 16 646610838 108201185 32841 0 -1
      26657974000 0 16 646610838 108201374 32747 0 -1;26658219000 0 17 646610838 108201374 32844 0 -1
      26767719000 1 16 108201374 646610839 67 0 -1`,
  },
  {
    file: 'ftp__ipv6.pcap', stream: 1, connState: 'SF', history: 'ShAdfFa', origBytes: 0, respBytes: 342, irtt: 0.108375,
    segs: `
      0 0 2 189719764 0 65535 0 1;108178000 1 18 3610389906 189719765 32768 0 6
      108375000 0 16 189719765 3610389907 32844 0 -1;219395000 1 24 3610389907 189719765 517 342 -1
      219460000 0 16 189719765 3610390249 32673 0 -1;219636000 1 17 3610390249 189719765 517 0 -1
      219668000 0 16 189719765 3610390250 32844 0 -1;219721000 0 17 189719765 3610390250 32844 0 -1
      328852000 1 16 3610390250 189719766 517 0 -1`,
  },
  {
    file: 'ftp__ipv6.pcap', stream: 2, connState: 'SF', history: 'ShAdfFa', origBytes: 0, respBytes: 43, irtt: 0.108728,
    segs: `
      0 0 2 4203625759 0 65535 0 1;108659000 1 18 1004742704 4203625760 32768 0 6
      108728000 0 16 4203625760 1004742705 32844 0 -1;216604000 1 24 1004742705 4203625760 517 43 -1
      216633000 0 16 4203625760 1004742748 32822 0 -1;217178000 1 17 1004742748 4203625760 517 0 -1
      217245000 0 16 4203625760 1004742749 32844 0 -1;217501000 0 17 4203625760 1004742749 32844 0 -1
      326388000 1 16 1004742749 4203625761 517 0 -1`,
  },
  {
    file: 'ftp__ipv6.pcap', stream: 3, connState: 'SF', history: 'ShAdfFa', origBytes: 0, respBytes: 77, irtt: 0.107799,
    segs: `
      0 0 2 1908923222 0 65535 0 1;107723000 1 18 1359700971 1908923223 32768 0 6
      107799000 0 16 1908923223 1359700972 32844 0 -1;216326000 1 24 1359700972 1908923223 517 77 -1
      216402000 0 16 1908923223 1359701049 32805 0 -1;216504000 1 17 1359701049 1908923223 517 0 -1
      216563000 0 16 1908923223 1359701050 32805 0 -1;217941000 0 17 1908923223 1359701050 32844 0 -1
      325681000 1 16 1359701050 1908923224 517 0 -1`,
  },
  {
    file: 'ftp__ipv6.pcap', stream: 4, connState: 'SF', history: 'ShADFaf', origBytes: 77, respBytes: 0, irtt: 0.108351,
    segs: `
      0 0 2 2076736318 0 32768 0 6;302000 1 18 1309311050 2076736319 65535 0 1
      108351000 0 16 2076736319 1309311051 517 0 -1;108818000 0 24 2076736319 1309311051 517 77 -1
      108824000 0 17 2076736396 1309311051 517 0 -1;109008000 1 16 1309311051 2076736396 32805 0 -1
      109048000 1 16 1309311051 2076736397 32805 0 -1;109813000 1 17 1309311051 2076736397 32844 0 -1
      221522000 0 16 2076736397 1309311052 517 0 -1`,
  },
  {
    file: 'ftp__ipv6.pcap', stream: 5, connState: 'SF', history: 'ShADFaf', origBytes: 342, respBytes: 0, irtt: 0.108133,
    segs: `
      0 0 2 3714942655 0 32768 0 6;135000 1 18 2043511482 3714942656 65535 0 1
      108133000 0 16 3714942656 2043511483 517 0 -1;108854000 0 24 3714942656 2043511483 517 342 -1
      108862000 0 17 3714942998 2043511483 517 0 -1;108927000 1 16 2043511483 3714942998 32673 0 -1
      108970000 1 16 2043511483 3714942999 32673 0 -1;109181000 1 17 2043511483 3714942999 32844 0 -1
      217456000 0 16 3714942999 2043511484 517 0 -1`,
  },
  {
    file: 'pbb.pcap', stream: 0, connState: 'SF', history: 'ShADFaf', origBytes: 209, respBytes: 0, irtt: 0.000333,
    segs: `
      0 0 2 2151987126 0 8192 0 2;195000 1 18 437261982 2151987127 8192 0 8
      333000 0 16 2151987127 437261983 16425 0 -1;338000 0 24 2151987127 437261983 16425 209 -1
      339000 0 17 2151987336 437261983 16425 0 -1;445000 1 16 437261983 2151987337 256 0 -1
      2215000 1 17 437261983 2151987337 256 0 -1;2347000 0 16 2151987337 437261984 16425 0 -1`,
  },
  {
    file: 'tunnels__geneve-many-options.pcap', stream: 0, connState: 'SF', history: 'ShADadFf', origBytes: 81, respBytes: 577, irtt: 0.203588,
    segs: `
      0 0 2 2448085449 0 64860 0 7;203571000 1 18 3621024923 2448085450 65160 0 7
      203588000 0 16 2448085450 3621024924 507 0 -1;203595000 0 24 2448085450 3621024924 507 81 -1
      347509000 1 16 3621024924 2448085531 509 0 -1;347566000 1 24 3621024924 2448085531 509 577 -1
      347573000 0 16 2448085531 3621025501 503 0 -1;347580000 0 17 2448085531 3621025501 503 0 -1
      555571000 1 17 3621025501 2448085532 509 0 -1;555579000 0 16 2448085532 3621025502 503 0 -1`,
  },
  {
    // Zeek logs three REJ rows (one per SYN: a SYN on a closed connection is reuse); Wireshark keeps one ISN together.
    file: 'pop3__pop3.pcap', stream: 0, connState: 'REJ', history: 'Sr', origBytes: 0, respBytes: 0, irtt: undefined,
    segs: `
      0 0 2 3145310914 0 8192 0 2
      50692000 1 20 0 3145310915 0 0 -1
      548764000 0 2 3145310914 0 8192 0 2
      609611000 1 20 0 3145310915 0 0 -1
      1109789000 0 2 3145310914 0 8192 0 -1
      1160756000 1 20 0 3145310915 0 0 -1`,
  },
  {
    // Zeek logs three REJ rows (one per SYN: a SYN on a closed connection is reuse); Wireshark keeps one ISN together.
    file: 'pop3__pop3.pcap', stream: 1, connState: 'REJ', history: 'Sr', origBytes: 0, respBytes: 0, irtt: undefined,
    segs: `
      0 0 2 2210944814 0 8192 0 2
      50705000 1 20 0 2210944815 0 0 -1
      550644000 0 2 2210944814 0 8192 0 2
      600706000 1 20 0 2210944815 0 0 -1
      1100662000 0 2 2210944814 0 8192 0 -1
      1148380000 1 20 0 2210944815 0 0 -1`,
  },
];

/**
 * pppoe-over-qinq.pcap by hand from the frame list (tshark frame numbers):
 * - originator retransmissions: 28 29 31 32 46 57 58 59 67 68 69 70 (12 segments, 12063 bytes);
 * - responder: 13 15 16 25 39 47 52 55 66 73 and the FIN+data repeats 83-86 (14 segments, 6127
 *   bytes; 47 repeats the 6 bytes inside the IP length of 41, which tshark trims by the PPPoE length);
 * - responder duplicate ACKs: 27 54 60. Wireshark also flags 14 17 18 26 72 75-78, which repeat
 *   an ACK that already covers everything the peer sent (no outstanding data), and 45, which
 *   follows 41's 6 bytes (its sequence number is not the responder's next one).
 */
const PPPOE_COUNTERS = {
  orig_retrans_pkts: 12, orig_retrans_bytes: 12063, resp_retrans_pkts: 14, resp_retrans_bytes: 6127,
  orig_ooo_pkts: 0, resp_ooo_pkts: 0, orig_dup_acks: 0, resp_dup_acks: 3, orig_zero_win: 0, resp_zero_win: 0,
  orig_fin: 1, resp_fin: 5, rtt_syn_synack: 0.411185, rtt_synack_ack: 0.002502, rtt_handshake: 0.413687,
};

/** Replays a stream with the flow table's rule for roles: the first sender is the originator unless it sent a SYN-ACK. */
function replay(c: Capture, tr = new TcpTracker(1), slot = 0): TcpTracker {
  tr.reset(slot);
  const segs = c.segs.split(/[;\n]/).map((s) => s.trim()).filter((s) => s !== '').map((s) => s.split(' ').map(Number));
  const firstIsSynAck = (segs[0][2] & (S | A)) === (S | A);
  for (const [t, dir, flags, seq, ack, win, len, ws] of segs) {
    const opts = ws >= 0 ? new Uint8Array([1, 3, 3, ws]) : NOOPT;
    tr.segment(slot, tr.record(slot), (dir === 0) !== firstIsSynAck, flags, seq, ack, win, len, t, opts, 0, opts.length);
  }
  return tr;
}

describe('Zeek baselines', () => {
  it.each(CAPTURES.map((c) => [`${c.file} stream ${c.stream}`, c] as const))('%s', (_name, c) => {
    const tr = replay(c);
    expect(tr.connState(0)).toBe(c.connState);
    expect(tr.history(0)).toBe(c.history);
    expect(tr.seqBytes(0, true)).toBe(c.origBytes);
    expect(tr.seqBytes(0, false)).toBe(c.respBytes);
    expect(tr.missedBytes(0)).toBe(0);
    if (c.irtt === undefined) expect(tr.rttHandshake(0)).toBeNaN();
    else expect(tr.rttHandshake(0)).toBe(c.irtt);
  });

  it('pppoe-over-qinq: retransmissions, out-of-order, duplicate ACKs', () => {
    const c = CAPTURES.find((x) => x.file === 'pppoe-over-qinq.pcap');
    if (c === undefined) throw new Error('fixture missing');
    const rec: Record<string, unknown> = {};
    replay(c).fill(0, rec);
    expect(rec).toMatchObject(PPPOE_COUNTERS);
  });

  it('pop3 REJ: one flow for three SYN/RST rounds with one ISN', () => {
    const c = CAPTURES.find((x) => x.file === 'pop3__pop3.pcap' && x.stream === 0);
    if (c === undefined) throw new Error('fixture missing');
    const rec: Record<string, unknown> = {};
    replay(c).fill(0, rec);
    expect(rec).toMatchObject({ conn_state: 'REJ', history: 'Sr', orig_syn: 3, resp_rst: 3, orig_retrans_pkts: 0 });
  });

  it('replays every capture into one tracker, one slot each', () => {
    const tr = new TcpTracker(2);
    tr.grow(CAPTURES.length);
    CAPTURES.forEach((c, i) => replay(c, tr, i));
    CAPTURES.forEach((c, i) => {
      expect(tr.history(i)).toBe(c.history);
      expect(tr.connState(i)).toBe(c.connState);
    });
  });
});
