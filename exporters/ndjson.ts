/**
 * NDJSON flow records in Zeek conn.log vocabulary, one line per report.
 * Lines are built as strings straight from the flow table's arrays (no
 * intermediate object for the common fields) and written in large batches.
 * Every field is documented in docs/flows.md.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { formatAddr } from '../parsers/addr.js';
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

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Zeek-style connection uid ("C" + 17 base62 characters), derived from the
 * flow id so that a replay gives the same uids. The first word is a
 * bijection of the id, so uids are unique for the first 2^32 flows of a run.
 */
export function flowUid(id: number): string {
  const lo = id >>> 0;
  const hi = Math.floor(id / 4294967296) >>> 0;
  let w0 = mix32(lo ^ 0x5bd1e995);
  let w1 = mix32(w0 ^ hi ^ 0x68e31da4);
  let w2 = mix32(w1 + 0x1b56c4e9);
  let s = 'C';
  for (let i = 0; i < 17; i++) {
    // Long division of the 96-bit number (w2:w1:w0) by 62.
    let r = w2 % 62;
    w2 = Math.floor(w2 / 62);
    let cur = r * 4294967296 + w1;
    w1 = Math.floor(cur / 62);
    r = cur - w1 * 62;
    cur = r * 4294967296 + w0;
    w0 = Math.floor(cur / 62);
    r = cur - w0 * 62;
    s += B62[r];
  }
  return s;
}

/** Seconds with nanosecond digits, as a JSON number, trailing zeros trimmed. */
export function secondsText(ns: number): string {
  if (!(ns >= 0)) return '0';
  const whole = Math.floor(ns / 1e9);
  const frac = Math.round(ns - whole * 1e9);
  if (frac === 0) return String(whole);
  return `${whole}.${String(frac).padStart(9, '0').replace(/0+$/, '')}`;
}

export interface RecordContext {
  clock: Clock;
  interfaceName(ifIndex: number): string;
  /** The local process of a flow's socket (live agent), when known. */
  processOf?(table: FlowTable, slot: number): { pid: number; comm: string } | undefined;
}

/** Builds the NDJSON line for one flow report (without the newline). */
export function flowRecordLine(table: FlowTable, s: number, reason: number, final: boolean, ctx: RecordContext): string {
  const u = table.u32;
  const version = table.ipVersion(s);
  const proto = table.proto(s);
  const vlan = table.vlan(s);
  const origH = formatAddr(version, u, table.addrOffset(s, true));
  const respH = formatAddr(version, u, table.addrOffset(s, false));
  const pname = protoName(proto);
  const first = table.first(s);
  let line = `{"ts":${ctx.clock.epochText(first)},"uid":"${flowUid(table.flowId(s))}"` +
    `,"id.orig_h":"${origH}","id.orig_p":${table.port(s, true)},"id.resp_h":"${respH}","id.resp_p":${table.port(s, false)}` +
    `,"proto":"${pname}"`;
  if (pname === 'unknown_transport') line += `,"ip_proto":${proto}`;
  const op = table.pkts(s, true);
  const rp = table.pkts(s, false);
  line += `,"duration":${secondsText(table.last(s) - first)}` +
    `,"orig_bytes":${table.payloadBytes(s, true)},"resp_bytes":${table.payloadBytes(s, false)}` +
    `,"orig_pkts":${op},"orig_ip_bytes":${table.ipBytes(s, true)}` +
    `,"resp_pkts":${rp},"resp_ip_bytes":${table.ipBytes(s, false)}` +
    `,"orig_wire_bytes":${table.wireBytes(s, true)},"resp_wire_bytes":${table.wireBytes(s, false)}`;
  if (proto === PROTO_TCP) {
    line += table.tcp.jsonFields(s);
  } else {
    line += `,"conn_state":"${connStateNonTcp(op, rp, proto)}"`;
    if (proto === PROTO_UDP) {
      const hist = table.udpHistory(s);
      if (hist) line += `,"history":"${hist}"`;
    }
  }
  if (vlan !== 0) {
    const outer = vlan >>> 12;
    const inner = vlan & 0xfff;
    line += `,"vlan":${outer}`;
    if (inner !== 0) line += `,"inner_vlan":${inner}`;
  }
  const parent = table.parentId(s);
  if (parent >= 0) line += `,"tunnel_parents":["${flowUid(parent)}"]`;
  const dir = table.direction(s);
  line += `,"direction":"${DIRECTIONS[dir]}"`;
  if (dir !== DIR_UNKNOWN) line += `,"local_orig":${table.isLocal(s, true)},"local_resp":${table.isLocal(s, false)}`;
  const proc = ctx.processOf?.(table, s);
  if (proc) line += `,"pid":${proc.pid},"process":${JSON.stringify(proc.comm)}`;
  line += `,"interface":${JSON.stringify(ctx.interfaceName(table.ifIndex(s)))}`;
  line += `,"final":${final}`;
  if (reason === END_PRESSURE) line += `,"evicted":true`;
  return line + '}';
}

/** Buffered line writer to a path (`-` = stdout): lines are encoded straight into one reused buffer. */
export class LineWriter {
  private fd: number;
  private readonly ownsFd: boolean;
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private pos = 0;
  lines = 0;

  constructor(path: string) {
    if (path === '-') {
      this.fd = 1;
      this.ownsFd = false;
    } else {
      this.fd = openSync(path, 'w');
      this.ownsFd = true;
    }
  }

  write(line: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit; +1 for the newline.
    if (this.pos + 3 * line.length + 1 > this.buf.length) {
      this.flush();
      if (3 * line.length + 1 > this.buf.length) {
        this.writeAll(Buffer.from(line + '\n'));
        this.lines++;
        return;
      }
    }
    this.pos += this.buf.write(line, this.pos, 'utf8');
    this.buf[this.pos++] = 10;
    this.lines++;
  }

  flush(): void {
    if (this.pos === 0) return;
    this.writeAll(this.buf.subarray(0, this.pos));
    this.pos = 0;
  }

  private writeAll(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      try {
        off += writeSync(this.fd, data, off);
      } catch (e) {
        // A non-blocking stdout pipe that is full: wait for it briefly, then retry.
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
  }

  close(): void {
    this.flush();
    if (this.ownsFd) closeSync(this.fd);
    this.fd = -1;
  }
}
