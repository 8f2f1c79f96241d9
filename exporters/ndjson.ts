/**
 * NDJSON flow records in Zeek conn.log vocabulary, one line per report,
 * encoded as bytes straight from the flow table's arrays into one reused
 * buffer (exporters/encoder.ts) and written in large batches.
 * Every field is documented in docs/flows.md.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { ByteEncoder, bytesOf, constWriter } from './encoder.js';
import { PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP } from '../parsers/packet.js';
import { DIRECTIONS, DIR_UNKNOWN, END_PRESSURE, type FlowTable } from '../agent/flows/table.js';
import { connStateNonTcp } from '../agent/flows/tcp.js';
import type { Clock } from '../agent/clock.js';

export function protoName(proto: number): string {
  switch (proto) {
    case PROTO_TCP: return 'tcp';
    case PROTO_UDP: return 'udp';
    case PROTO_ICMP: return 'icmp';
    case PROTO_ICMPV6: return 'icmpv6';
    default: return 'unknown_transport';
  }
}

const B62 = bytesOf('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz');

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Writes the Zeek-style connection uid ("C" + 17 base62 characters) of a
 * flow id into out[o, o + 18). Derived from the id, so a replay gives the
 * same uids; the first six characters are the base62 digits of a bijection
 * of the id's low 32 bits, so uids are unique among the first 2^32 flows of
 * a run.
 */
function putUid(out: Uint8Array, o: number, id: number): void {
  const lo = id >>> 0;
  const hi = Math.floor(id / 4294967296) >>> 0;
  let w0 = mix32(lo ^ 0x5bd1e995);
  let w1 = mix32(w0 ^ hi ^ 0x68e31da4);
  let w2 = mix32(w1 + 0x1b56c4e9);
  out[o] = 67; // C
  for (let i = 1; i <= 6; i++) {
    const q = Math.floor(w0 / 62);
    out[o + i] = B62[w0 - q * 62];
    w0 = q;
  }
  for (let i = 7; i <= 12; i++) {
    const q = Math.floor(w1 / 62);
    out[o + i] = B62[w1 - q * 62];
    w1 = q;
  }
  for (let i = 13; i <= 17; i++) {
    const q = Math.floor(w2 / 62);
    out[o + i] = B62[w2 - q * 62];
    w2 = q;
  }
}

function uid(e: ByteEncoder, id: number): void {
  e.room(18);
  putUid(e.buf, e.pos, id);
  e.pos += 18;
}

const uidBytes = new Uint8Array(18);

/** The uid of a flow id as text. */
export function flowUid(id: number): string {
  putUid(uidBytes, 0, id);
  return String.fromCharCode(...uidBytes);
}

export interface RecordContext {
  clock: Clock;
  interfaceName(ifIndex: number): string;
  /** The local process of a flow's socket (live agent), when known. */
  processOf?(table: FlowTable, slot: number): { pid: number; comm: string } | undefined;
}

// Keys and punctuation, pre-encoded.
const K_TS = constWriter('{"ts":');
const K_UID = constWriter(',"uid":"');
const K_ORIG_H = constWriter('","id.orig_h":"');
const K_ORIG_P = constWriter('","id.orig_p":');
const K_RESP_H = constWriter(',"id.resp_h":"');
const K_RESP_P = constWriter('","id.resp_p":');
const K_PROTO = constWriter(',"proto":"');
const K_IP_PROTO = constWriter('","ip_proto":');
const K_DURATION_Q = constWriter('","duration":');
const K_DURATION = constWriter(',"duration":');
const K_ORIG_BYTES = constWriter(',"orig_bytes":');
const K_RESP_BYTES = constWriter(',"resp_bytes":');
const K_ORIG_PKTS = constWriter(',"orig_pkts":');
const K_ORIG_IP = constWriter(',"orig_ip_bytes":');
const K_RESP_PKTS = constWriter(',"resp_pkts":');
const K_RESP_IP = constWriter(',"resp_ip_bytes":');
const K_ORIG_WIRE = constWriter(',"orig_wire_bytes":');
const K_RESP_WIRE = constWriter(',"resp_wire_bytes":');
const K_CONN_STATE = constWriter(',"conn_state":"');
const K_HISTORY = constWriter('","history":"');
const K_HISTORY_ONLY = constWriter(',"history":"');
const Q = 34;
const TCP_KEY_TEXT = [
  ',"orig_syn":', ',"orig_fin":', ',"orig_rst":', ',"resp_syn":', ',"resp_fin":', ',"resp_rst":',
  ',"orig_retrans_pkts":', ',"orig_retrans_bytes":', ',"resp_retrans_pkts":', ',"resp_retrans_bytes":',
  ',"orig_ooo_pkts":', ',"resp_ooo_pkts":', ',"orig_dup_acks":', ',"resp_dup_acks":',
  ',"orig_zero_win":', ',"resp_zero_win":', ',"missed_bytes":',
];
const TCP_KEYS = TCP_KEY_TEXT.map(constWriter);
/** The quality counters' keys (6-16 of TCP_KEYS), each with the value 0. */
const K_QUALITY_ZERO = constWriter(TCP_KEY_TEXT.slice(6).map((key) => key + '0').join(''));
const K_RTT1 = constWriter(',"rtt_syn_synack":');
const K_RTT2 = constWriter(',"rtt_synack_ack":');
const K_RTT = constWriter(',"rtt_handshake":');
const K_VLAN = constWriter(',"vlan":');
const K_INNER_VLAN = constWriter(',"inner_vlan":');
const K_PARENTS = constWriter(',"tunnel_parents":["');
const K_PARENTS_END = constWriter('"]');
const K_DIRECTION = constWriter(',"direction":"');
const K_LOCAL_ORIG = constWriter('","local_orig":');
const K_LOCAL_RESP = constWriter(',"local_resp":');
const K_PID = constWriter(',"pid":');
const K_PROCESS = constWriter(',"process":');
const K_INTERFACE = constWriter(',"interface":');
const K_FINAL_TRUE = constWriter(',"final":true');
const K_FINAL_FALSE = constWriter(',"final":false');
const K_EVICTED = constWriter(',"evicted":true');
const TRUE = constWriter('true');
const FALSE = constWriter('false');
const DIR_BYTES = DIRECTIONS.map(constWriter);

/** Appends the NDJSON record of one flow report, newline included, to `e`. Fields: docs/flows.md. */
export function encodeFlowRecord(e: ByteEncoder, table: FlowTable, s: number, reason: number, final: boolean, ctx: RecordContext): void {
  e.room(2048);
  const u = table.recWords(s);
  const version = table.ipVersion(s);
  const proto = table.proto(s);
  const first = table.first(s);
  const clock = ctx.clock;
  K_TS(e);
  if (clock.base === clock.base) {
    clock.split(first);
    e.epoch(clock.sec, clock.nsec);
  } else e.byte(48);
  K_UID(e);
  uid(e, table.flowId(s));
  K_ORIG_H(e);
  const oo = table.addrOffset(s, true);
  const ro = table.addrOffset(s, false);
  if (version === 4) e.ipv4(u[oo + 3]);
  else e.ipv6(u, oo);
  K_ORIG_P(e);
  e.uint(table.port(s, true));
  K_RESP_H(e);
  if (version === 4) e.ipv4(u[ro + 3]);
  else e.ipv6(u, ro);
  K_RESP_P(e);
  e.uint(table.port(s, false));
  K_PROTO(e);
  const pname = protoName(proto);
  e.ascii(pname);
  if (pname === 'unknown_transport') {
    K_IP_PROTO(e);
    e.uint(proto);
    K_DURATION(e);
  } else {
    K_DURATION_Q(e);
  }
  e.seconds(table.last(s) - first);
  const op = table.pkts(s, true);
  const rp = table.pkts(s, false);
  K_ORIG_BYTES(e);
  e.uint(table.payloadBytes(s, true));
  K_RESP_BYTES(e);
  e.uint(table.payloadBytes(s, false));
  K_ORIG_PKTS(e);
  e.uint(op);
  K_ORIG_IP(e);
  e.uint(table.ipBytes(s, true));
  K_RESP_PKTS(e);
  e.uint(rp);
  K_RESP_IP(e);
  e.uint(table.ipBytes(s, false));
  K_ORIG_WIRE(e);
  e.uint(table.wireBytes(s, true));
  K_RESP_WIRE(e);
  e.uint(table.wireBytes(s, false));
  K_CONN_STATE(e);
  if (proto === PROTO_TCP) {
    const tcp = table.tcp;
    e.ascii(tcp.connState(s));
    K_HISTORY(e);
    e.ascii(tcp.history(s));
    e.byte(Q);
    const k = TCP_KEYS;
    k[0](e); e.uint(tcp.syns(s, true));
    k[1](e); e.uint(tcp.fins(s, true));
    k[2](e); e.uint(tcp.resets(s, true));
    k[3](e); e.uint(tcp.syns(s, false));
    k[4](e); e.uint(tcp.fins(s, false));
    k[5](e); e.uint(tcp.resets(s, false));
    const q0 = tcp.retransPkts(s, true);
    const q1 = tcp.retransBytes(s, true);
    const q2 = tcp.retransPkts(s, false);
    const q3 = tcp.retransBytes(s, false);
    const q4 = tcp.oooPkts(s, true);
    const q5 = tcp.oooPkts(s, false);
    const q6 = tcp.dupAcks(s, true);
    const q7 = tcp.dupAcks(s, false);
    const q8 = tcp.zeroWin(s, true);
    const q9 = tcp.zeroWin(s, false);
    const q10 = tcp.missedBytes(s);
    if ((q0 | q1 | q2 | q3 | q4 | q5 | q6 | q7 | q8 | q9 | q10) === 0) {
      // The common case, a clean connection: every quality counter 0, in one constant.
      K_QUALITY_ZERO(e);
    } else {
      k[6](e); e.uint(q0);
      k[7](e); e.uint(q1);
      k[8](e); e.uint(q2);
      k[9](e); e.uint(q3);
      k[10](e); e.uint(q4);
      k[11](e); e.uint(q5);
      k[12](e); e.uint(q6);
      k[13](e); e.uint(q7);
      k[14](e); e.uint(q8);
      k[15](e); e.uint(q9);
      k[16](e); e.uint(q10);
    }
    const a = tcp.rttSynSynAckNs(s);
    if (a === a) {
      const b = tcp.rttSynAckAckNs(s);
      K_RTT1(e);
      e.seconds(a);
      K_RTT2(e);
      e.seconds(b);
      K_RTT(e);
      e.seconds(a + b);
    }
  } else {
    e.ascii(connStateNonTcp(op, rp, proto));
    e.byte(Q);
    if (proto === PROTO_UDP) {
      const hist = table.udpHistory(s);
      if (hist) {
        K_HISTORY_ONLY(e);
        e.ascii(hist);
        e.byte(Q);
      }
    }
  }
  const vlan = table.vlan(s);
  if (vlan !== 0) {
    K_VLAN(e);
    e.uint(vlan >>> 12);
    if ((vlan & 0xfff) !== 0) {
      K_INNER_VLAN(e);
      e.uint(vlan & 0xfff);
    }
  }
  const parent = table.parentId(s);
  if (parent >= 0) {
    K_PARENTS(e);
    uid(e, parent);
    K_PARENTS_END(e);
  }
  const dir = table.direction(s);
  K_DIRECTION(e);
  DIR_BYTES[dir](e);
  if (dir !== DIR_UNKNOWN) {
    K_LOCAL_ORIG(e);
    (table.isLocal(s, true) ? TRUE : FALSE)(e);
    K_LOCAL_RESP(e);
    (table.isLocal(s, false) ? TRUE : FALSE)(e);
  } else {
    e.byte(Q);
  }
  const proc = ctx.processOf?.(table, s);
  if (proc) {
    K_PID(e);
    e.uint(proc.pid);
    K_PROCESS(e);
    e.string(proc.comm);
  }
  K_INTERFACE(e);
  e.string(ctx.interfaceName(table.ifIndex(s)));
  (final ? K_FINAL_TRUE : K_FINAL_FALSE)(e);
  if (reason === END_PRESSURE) K_EVICTED(e);
  e.byte(125);
  e.byte(10);
}

const scratch = new ByteEncoder(4096);

/** The NDJSON line of one flow report, without the newline (tests, small outputs). */
export function flowRecordLine(table: FlowTable, s: number, reason: number, final: boolean, ctx: RecordContext): string {
  scratch.pos = 0;
  encodeFlowRecord(scratch, table, s, reason, final, ctx);
  return scratch.buf.toString('utf8', 0, scratch.pos - 1);
}

/** Writes all of `data` to `fd`; a non-blocking pipe that is full (EAGAIN, e.g. stdout) is waited for briefly and retried. */
export function writeAllSync(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

/** The descriptor `--flows PATH` writes to: `-` is stdout (not ours to close), anything else a file opened for writing. */
export function openFlowsOutput(path: string): { fd: number; owned: boolean } {
  return path === '-' ? { fd: 1, owned: false } : { fd: openSync(path, 'w'), owned: true };
}

/** Buffered NDJSON writer to a path (`-` = stdout): records are encoded straight into one reused buffer. */
export class LineWriter {
  private fd: number;
  private readonly ownsFd: boolean;
  private readonly enc: ByteEncoder;
  lines = 0;

  /** Opens `path` (`-` = stdout), or writes to the open descriptor `fd` (which close() leaves open). */
  constructor(path: string | { fd: number }) {
    const out = typeof path === 'object' ? { fd: path.fd, owned: false } : openFlowsOutput(path);
    this.fd = out.fd;
    this.ownsFd = out.owned;
    this.enc = new ByteEncoder(1 << 20, () => this.flush());
  }

  /** Writes the record of one flow report. */
  record(table: FlowTable, s: number, reason: number, final: boolean, ctx: RecordContext): void {
    encodeFlowRecord(this.enc, table, s, reason, final, ctx);
    this.lines++;
  }

  /** Writes one line of text (a newline is added). */
  write(line: string): void {
    const e = this.enc;
    e.room(3 * line.length + 1);
    e.pos += e.buf.write(line, e.pos, 'utf8');
    e.byte(10);
    this.lines++;
  }

  flush(): void {
    const e = this.enc;
    if (e.pos === 0) return;
    writeAllSync(this.fd, e.buf.subarray(0, e.pos));
    e.pos = 0;
  }

  close(): void {
    this.flush();
    if (this.ownsFd) closeSync(this.fd);
    this.fd = -1;
  }
}
