/**
 * NDJSON flow records in Zeek conn.log vocabulary, one line per report,
 * encoded as bytes straight from the flow table's arrays into one reused
 * buffer (exporters/encoder.ts) and written in large batches.
 * Every field is documented in docs/flows.md.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { ByteEncoder, bytesOf } from './encoder.js';
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

const uidBytes = new Uint8Array(18);

/**
 * Zeek-style connection uid ("C" + 17 base62 characters) of a flow id,
 * into `uidBytes`. Derived from the id, so a replay gives the same uids; the
 * first six characters are the base62 digits of a bijection of the id's low
 * 32 bits, so uids are unique among the first 2^32 flows of a run.
 */
function uidOf(id: number): Uint8Array {
  const lo = id >>> 0;
  const hi = Math.floor(id / 4294967296) >>> 0;
  let w0 = mix32(lo ^ 0x5bd1e995);
  let w1 = mix32(w0 ^ hi ^ 0x68e31da4);
  let w2 = mix32(w1 + 0x1b56c4e9);
  const out = uidBytes;
  out[0] = 67; // C
  for (let i = 1; i <= 6; i++) {
    const q = Math.floor(w0 / 62);
    out[i] = B62[w0 - q * 62];
    w0 = q;
  }
  for (let i = 7; i <= 12; i++) {
    const q = Math.floor(w1 / 62);
    out[i] = B62[w1 - q * 62];
    w1 = q;
  }
  for (let i = 13; i <= 17; i++) {
    const q = Math.floor(w2 / 62);
    out[i] = B62[w2 - q * 62];
    w2 = q;
  }
  return out;
}

/** The uid of a flow id as text. */
export function flowUid(id: number): string {
  return String.fromCharCode(...uidOf(id));
}

export interface RecordContext {
  clock: Clock;
  interfaceName(ifIndex: number): string;
  /** The local process of a flow's socket (live agent), when known. */
  processOf?(table: FlowTable, slot: number): { pid: number; comm: string } | undefined;
}

// Keys and punctuation, pre-encoded.
const K_TS = bytesOf('{"ts":');
const K_UID = bytesOf(',"uid":"');
const K_ORIG_H = bytesOf('","id.orig_h":"');
const K_ORIG_P = bytesOf('","id.orig_p":');
const K_RESP_H = bytesOf(',"id.resp_h":"');
const K_RESP_P = bytesOf('","id.resp_p":');
const K_PROTO = bytesOf(',"proto":"');
const K_IP_PROTO = bytesOf('","ip_proto":');
const K_DURATION_Q = bytesOf('","duration":');
const K_DURATION = bytesOf(',"duration":');
const K_ORIG_BYTES = bytesOf(',"orig_bytes":');
const K_RESP_BYTES = bytesOf(',"resp_bytes":');
const K_ORIG_PKTS = bytesOf(',"orig_pkts":');
const K_ORIG_IP = bytesOf(',"orig_ip_bytes":');
const K_RESP_PKTS = bytesOf(',"resp_pkts":');
const K_RESP_IP = bytesOf(',"resp_ip_bytes":');
const K_ORIG_WIRE = bytesOf(',"orig_wire_bytes":');
const K_RESP_WIRE = bytesOf(',"resp_wire_bytes":');
const K_CONN_STATE = bytesOf(',"conn_state":"');
const K_HISTORY = bytesOf('","history":"');
const K_HISTORY_ONLY = bytesOf(',"history":"');
const Q = 34;
const TCP_KEYS = [
  ',"orig_syn":', ',"orig_fin":', ',"orig_rst":', ',"resp_syn":', ',"resp_fin":', ',"resp_rst":',
  ',"orig_retrans_pkts":', ',"orig_retrans_bytes":', ',"resp_retrans_pkts":', ',"resp_retrans_bytes":',
  ',"orig_ooo_pkts":', ',"resp_ooo_pkts":', ',"orig_dup_acks":', ',"resp_dup_acks":',
  ',"orig_zero_win":', ',"resp_zero_win":', ',"missed_bytes":',
].map(bytesOf);
const K_RTT1 = bytesOf(',"rtt_syn_synack":');
const K_RTT2 = bytesOf(',"rtt_synack_ack":');
const K_RTT = bytesOf(',"rtt_handshake":');
const K_VLAN = bytesOf(',"vlan":');
const K_INNER_VLAN = bytesOf(',"inner_vlan":');
const K_PARENTS = bytesOf(',"tunnel_parents":["');
const K_PARENTS_END = bytesOf('"]');
const K_DIRECTION = bytesOf(',"direction":"');
const K_LOCAL_ORIG = bytesOf('","local_orig":');
const K_LOCAL_RESP = bytesOf(',"local_resp":');
const K_PID = bytesOf(',"pid":');
const K_PROCESS = bytesOf(',"process":');
const K_INTERFACE = bytesOf(',"interface":');
const K_FINAL_TRUE = bytesOf(',"final":true');
const K_FINAL_FALSE = bytesOf(',"final":false');
const K_EVICTED = bytesOf(',"evicted":true');
const TRUE = bytesOf('true');
const FALSE = bytesOf('false');
const DIR_BYTES = DIRECTIONS.map(bytesOf);

/** Appends the NDJSON record of one flow report, newline included, to `e`. Fields: docs/flows.md. */
export function encodeFlowRecord(e: ByteEncoder, table: FlowTable, s: number, reason: number, final: boolean, ctx: RecordContext): void {
  e.room(2048);
  const u = table.u32;
  const version = table.ipVersion(s);
  const proto = table.proto(s);
  const first = table.first(s);
  const clock = ctx.clock;
  e.raw(K_TS);
  if (clock.base === clock.base) {
    const whole = Math.floor(first / 1e9);
    e.epoch(clock.base + whole, Math.round(first - whole * 1e9));
  } else e.byte(48);
  e.raw(K_UID);
  e.raw(uidOf(table.flowId(s)));
  e.raw(K_ORIG_H);
  const oo = table.addrOffset(s, true);
  const ro = table.addrOffset(s, false);
  if (version === 4) e.ipv4(u[oo + 3]);
  else e.ipv6(u, oo);
  e.raw(K_ORIG_P);
  e.uint(table.port(s, true));
  e.raw(K_RESP_H);
  if (version === 4) e.ipv4(u[ro + 3]);
  else e.ipv6(u, ro);
  e.raw(K_RESP_P);
  e.uint(table.port(s, false));
  e.raw(K_PROTO);
  const pname = protoName(proto);
  e.ascii(pname);
  if (pname === 'unknown_transport') {
    e.raw(K_IP_PROTO);
    e.uint(proto);
    e.raw(K_DURATION);
  } else {
    e.raw(K_DURATION_Q);
  }
  e.seconds(table.last(s) - first);
  const op = table.pkts(s, true);
  const rp = table.pkts(s, false);
  e.raw(K_ORIG_BYTES);
  e.uint(table.payloadBytes(s, true));
  e.raw(K_RESP_BYTES);
  e.uint(table.payloadBytes(s, false));
  e.raw(K_ORIG_PKTS);
  e.uint(op);
  e.raw(K_ORIG_IP);
  e.uint(table.ipBytes(s, true));
  e.raw(K_RESP_PKTS);
  e.uint(rp);
  e.raw(K_RESP_IP);
  e.uint(table.ipBytes(s, false));
  e.raw(K_ORIG_WIRE);
  e.uint(table.wireBytes(s, true));
  e.raw(K_RESP_WIRE);
  e.uint(table.wireBytes(s, false));
  e.raw(K_CONN_STATE);
  if (proto === PROTO_TCP) {
    const tcp = table.tcp;
    e.ascii(tcp.connState(s));
    e.raw(K_HISTORY);
    e.ascii(tcp.history(s));
    e.byte(Q);
    const k = TCP_KEYS;
    e.raw(k[0]); e.uint(tcp.syns(s, true));
    e.raw(k[1]); e.uint(tcp.fins(s, true));
    e.raw(k[2]); e.uint(tcp.resets(s, true));
    e.raw(k[3]); e.uint(tcp.syns(s, false));
    e.raw(k[4]); e.uint(tcp.fins(s, false));
    e.raw(k[5]); e.uint(tcp.resets(s, false));
    e.raw(k[6]); e.uint(tcp.retransPkts(s, true));
    e.raw(k[7]); e.uint(tcp.retransBytes(s, true));
    e.raw(k[8]); e.uint(tcp.retransPkts(s, false));
    e.raw(k[9]); e.uint(tcp.retransBytes(s, false));
    e.raw(k[10]); e.uint(tcp.oooPkts(s, true));
    e.raw(k[11]); e.uint(tcp.oooPkts(s, false));
    e.raw(k[12]); e.uint(tcp.dupAcks(s, true));
    e.raw(k[13]); e.uint(tcp.dupAcks(s, false));
    e.raw(k[14]); e.uint(tcp.zeroWin(s, true));
    e.raw(k[15]); e.uint(tcp.zeroWin(s, false));
    e.raw(k[16]); e.uint(tcp.missedBytes(s));
    const a = tcp.rttSynSynAckNs(s);
    if (a === a) {
      const b = tcp.rttSynAckAckNs(s);
      e.raw(K_RTT1);
      e.seconds(a);
      e.raw(K_RTT2);
      e.seconds(b);
      e.raw(K_RTT);
      e.seconds(a + b);
    }
  } else {
    e.ascii(connStateNonTcp(op, rp, proto));
    e.byte(Q);
    if (proto === PROTO_UDP) {
      const hist = table.udpHistory(s);
      if (hist) {
        e.raw(K_HISTORY_ONLY);
        e.ascii(hist);
        e.byte(Q);
      }
    }
  }
  const vlan = table.vlan(s);
  if (vlan !== 0) {
    e.raw(K_VLAN);
    e.uint(vlan >>> 12);
    if ((vlan & 0xfff) !== 0) {
      e.raw(K_INNER_VLAN);
      e.uint(vlan & 0xfff);
    }
  }
  const parent = table.parentId(s);
  if (parent >= 0) {
    e.raw(K_PARENTS);
    e.raw(uidOf(parent));
    e.raw(K_PARENTS_END);
  }
  const dir = table.direction(s);
  e.raw(K_DIRECTION);
  e.raw(DIR_BYTES[dir]);
  if (dir !== DIR_UNKNOWN) {
    e.raw(K_LOCAL_ORIG);
    e.raw(table.isLocal(s, true) ? TRUE : FALSE);
    e.raw(K_LOCAL_RESP);
    e.raw(table.isLocal(s, false) ? TRUE : FALSE);
  } else {
    e.byte(Q);
  }
  const proc = ctx.processOf?.(table, s);
  if (proc) {
    e.raw(K_PID);
    e.uint(proc.pid);
    e.raw(K_PROCESS);
    e.string(proc.comm);
  }
  e.raw(K_INTERFACE);
  e.string(ctx.interfaceName(table.ifIndex(s)));
  e.raw(final ? K_FINAL_TRUE : K_FINAL_FALSE);
  if (reason === END_PRESSURE) e.raw(K_EVICTED);
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

/** Buffered NDJSON writer to a path (`-` = stdout): records are encoded straight into one reused buffer. */
export class LineWriter {
  private fd: number;
  private readonly ownsFd: boolean;
  private readonly enc: ByteEncoder;
  lines = 0;

  constructor(path: string) {
    if (path === '-') {
      this.fd = 1;
      this.ownsFd = false;
    } else {
      this.fd = openSync(path, 'w');
      this.ownsFd = true;
    }
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
    const data = e.buf.subarray(0, e.pos);
    let off = 0;
    while (off < data.length) {
      try {
        off += writeSync(this.fd, data, off);
      } catch (err) {
        // A non-blocking stdout pipe that is full: wait for it briefly, then retry.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
    e.pos = 0;
  }

  close(): void {
    this.flush();
    if (this.ownsFd) closeSync(this.fd);
    this.fd = -1;
  }
}
