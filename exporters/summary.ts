/**
 * The run summary of `flowtap analyze`: totals, flows by protocol, top flows
 * and hosts by bytes, decode problems by reason, non-IP frames by EtherType,
 * file errors. Fed with final flow reports; rendered as text or JSON.
 */
import { formatAddr } from '../parsers/addr.js';
import { REASONS } from '../parsers/reasons.js';
import { DIRECTIONS, END_REASONS, type FlowTable } from '../agent/flows/table.js';
import { HostTable, type TopHost } from './hosts.js';
import type { Pipeline } from '../agent/pipeline.js';
import type { ReadResult } from '../agent/capture/types.js';
import { flowUid, protoName } from './ndjson.js';
import { ethertypeName } from '../parsers/ethertypes.js';

interface ProtoStats { flows: number; packets: number; bytes: number }
interface TopFlow { uid: string; proto: string; orig: string; orig_p: number; resp: string; resp_p: number; packets: number; bytes: number }

const TOP = 10;

/** What a Summary counted, as plain data (the NDJSON worker runs the listener and hands this back). */
export interface SummaryState {
  byProto: (ProtoStats | undefined)[];
  top: TopFlow[];
  topHosts: TopHost[];
  hostsExact: boolean;
  byDirection: Float64Array;
  flows: number;
}

export class Summary {
  /** By IP protocol number. */
  private readonly byProto: (ProtoStats | undefined)[] = new Array(256);
  private top: TopFlow[] = [];
  private topMin = 0;
  private readonly hosts = new HostTable();
  /** Top hosts counted elsewhere (absorb()), instead of `hosts`. */
  private absorbed: { top: TopHost[]; exact: boolean } | undefined;
  /** Flows by direction (DIRECTIONS index). */
  private readonly byDirection = new Float64Array(DIRECTIONS.length);
  flows = 0;

  /** Flow report listener: counts final reports only (interim ones would double count). */
  readonly listener = (t: FlowTable, s: number, _reason: number, final: boolean): void => {
    if (!final) return;
    this.flows++;
    const proto = t.proto(s);
    this.byDirection[t.direction(s)]++;
    const packets = t.pkts(s, true) + t.pkts(s, false);
    const bytes = t.wireBytes(s, true) + t.wireBytes(s, false);
    let ps = this.byProto[proto];
    if (!ps) this.byProto[proto] = ps = { flows: 0, packets: 0, bytes: 0 };
    ps.flows++;
    ps.packets += packets;
    ps.bytes += bytes;
    const version = t.ipVersion(s);
    this.hosts.add(version, t.recWords(s), t.addrOffset(s, true), packets, bytes);
    this.hosts.add(version, t.recWords(s), t.addrOffset(s, false), packets, bytes);
    if (this.top.length < TOP || bytes > this.topMin) {
      this.top.push({
        uid: flowUid(t.flowId(s)),
        proto: protoName(proto),
        orig: formatAddr(version, t.recWords(s), t.addrOffset(s, true)),
        orig_p: t.port(s, true),
        resp: formatAddr(version, t.recWords(s), t.addrOffset(s, false)),
        resp_p: t.port(s, false),
        packets,
        bytes,
      });
      this.top.sort((x, y) => y.bytes - x.bytes);
      if (this.top.length > TOP) this.top.length = TOP;
      this.topMin = this.top.length === TOP ? this.top[TOP - 1].bytes : 0;
    }
  };

  /** What this summary counted, for absorb() in another thread's Summary. */
  state(): SummaryState {
    return {
      byProto: this.byProto,
      top: this.top,
      topHosts: this.hosts.top(TOP),
      hostsExact: this.hosts.exact,
      byDirection: this.byDirection,
      flows: this.flows,
    };
  }

  /** Takes over what another Summary counted (this one must not have counted anything). */
  absorb(st: SummaryState): void {
    for (let i = 0; i < st.byProto.length; i++) if (st.byProto[i]) this.byProto[i] = st.byProto[i];
    this.top = st.top;
    this.byDirection.set(st.byDirection);
    this.flows = st.flows;
    this.absorbed = { top: st.topHosts, exact: st.hostsExact };
  }

  toJSON(p: Pipeline, files: ReadResult[]): Record<string, unknown> {
    const clock = p.clock;
    const decodeErrors: Record<string, number> = {};
    for (let i = 1; i < REASONS.length; i++) if (p.reasons[i] > 0) decodeErrors[REASONS[i]] = p.reasons[i];
    const nonIp: Record<string, number> = {};
    for (let i = 0; i < p.nonIpFrames.length; i++) {
      if (p.nonIpFrames[i] > 0) {
        const name = ethertypeName(i);
        nonIp[name] = (nonIp[name] ?? 0) + p.nonIpFrames[i];
      }
    }
    const flowsByProto: Record<string, ProtoStats> = {};
    const protos: [string, ProtoStats][] = [];
    this.byProto.forEach((v, proto) => {
      if (!v) return;
      const name = protoName(proto);
      protos.push([name === 'unknown_transport' ? `ip-proto-${proto}` : name, v]);
    });
    for (const [k, v] of protos.sort((a, b) => b[1].bytes - a[1].bytes)) flowsByProto[k] = v;
    const hosts = this.absorbed ? this.absorbed.top : this.hosts.top(TOP);
    const evictions: Record<string, number> = {};
    END_REASONS.forEach((r, i) => (evictions[r] = p.table.ends[i]));
    // Packets with a time: a run whose every record had a bad timestamp has none.
    const has = p.lastT >= p.firstT;
    return {
      packets: p.packets,
      bytes: p.wireBytes,
      captured_bytes: p.capturedBytes,
      snapped_packets: p.snapped,
      first_ts: has ? Number(clock.epochText(p.firstT)) : null,
      last_ts: has ? Number(clock.epochText(p.lastT)) : null,
      duration: has ? (p.lastT - p.firstT) / 1e9 : 0,
      flows: this.flows,
      flows_by_proto: flowsByProto,
      flows_by_direction: Object.fromEntries(DIRECTIONS.map((d, i) => [d, this.byDirection[i]]).filter(([, n]) => (n as number) > 0)),
      forwarded_copies: p.table.copies,
      flow_table: {
        peak_live_flows: p.table.peakLive,
        capacity: p.table.capacity,
        memory_bytes: p.table.memoryBytes(),
        bytes_per_peak_live_flow: p.table.peakLive > 0 ? Math.round(p.table.memoryBytes() / p.table.peakLive) : 0,
      },
      top_flows: this.top,
      top_hosts: hosts,
      top_hosts_exact: this.absorbed ? this.absorbed.exact : this.hosts.exact,
      decode_errors: decodeErrors,
      decode_error_packets: p.reasons.reduce((a, b) => a + b, 0),
      non_ip_frames: nonIp,
      flow_reports: evictions,
      interfaces: p.interfaces.map((i, n) => ({ name: i.name, linktype: i.linktype, snaplen: i.snaplen, packets: p.ifPackets[n], bytes: p.ifBytes[n] })),
      files: files.map((f) => ({
        file: f.file,
        format: f.format,
        compressed: f.compressed,
        packets: f.packets,
        complete: !f.error,
        ...(f.error ? { error: { reason: f.error.reason, offset: f.error.offset, detail: f.error.detail } } : {}),
      })),
    };
  }

  toText(p: Pipeline, files: ReadResult[]): string {
    const j = this.toJSON(p, files) as ReturnType<Summary['toJSON']> & Record<string, any>;
    const n = (x: number) => x.toLocaleString('en-US');
    const lines: string[] = [];
    const first = j.first_ts === null ? '-' : new Date(j.first_ts * 1000).toISOString();
    const last = j.last_ts === null ? '-' : new Date(j.last_ts * 1000).toISOString();
    lines.push(`packets ${n(j.packets)}  bytes ${n(j.bytes)}  duration ${j.duration.toFixed(6)} s  (${first} .. ${last})`);
    lines.push(`flows ${n(j.flows)}${j.snapped_packets ? `  snapped packets ${n(j.snapped_packets)}` : ''}${j.forwarded_copies ? `  forwarded copies not counted again ${n(j.forwarded_copies)}` : ''}`);
    const ft = j.flow_table as { peak_live_flows: number; capacity: number; memory_bytes: number };
    lines.push(`flow table: peak ${n(ft.peak_live_flows)} live flows in ${n(ft.capacity)} slots, ${(ft.memory_bytes / 1048576).toFixed(1)} MiB`);
    lines.push(`flows by direction: ${Object.entries(j.flows_by_direction as Record<string, number>).map(([d, c]) => `${d} ${n(c)}`).join(', ') || '-'}`);
    lines.push('');
    lines.push('flows by protocol');
    for (const [k, v] of Object.entries(j.flows_by_proto as Record<string, ProtoStats>)) {
      lines.push(`  ${k.padEnd(18)} ${n(v.flows).padStart(10)} flows ${n(v.packets).padStart(12)} pkts ${n(v.bytes).padStart(15)} bytes`);
    }
    lines.push('');
    lines.push('top flows by bytes');
    for (const f of j.top_flows as TopFlow[]) {
      const ep = (h: string, port: number) => (h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`);
      lines.push(`  ${f.proto.padEnd(7)} ${ep(f.orig, f.orig_p)} -> ${ep(f.resp, f.resp_p)}  ${n(f.packets)} pkts ${n(f.bytes)} bytes`);
    }
    lines.push('');
    lines.push(j.top_hosts_exact ? 'top hosts by bytes' : `top hosts by bytes (approximate: more than ${n(this.hosts.capacity)} hosts, counts since each host entered the table)`);
    for (const h of j.top_hosts as TopHost[]) {
      const err = h.error_bytes ? `  (+ at most ${n(h.error_bytes)} bytes)` : '';
      lines.push(`  ${h.host.padEnd(39)} ${n(h.bytes).padStart(15)} bytes ${n(h.packets).padStart(12)} pkts ${n(h.flows).padStart(8)} flows${err}`);
    }
    const errs = Object.entries(j.decode_errors as Record<string, number>);
    if (errs.length) {
      lines.push('');
      lines.push('decode problems');
      for (const [k, v] of errs) lines.push(`  ${k.padEnd(24)} ${n(v)}`);
    }
    const nonIp = Object.entries(j.non_ip_frames as Record<string, number>);
    if (nonIp.length) {
      lines.push('');
      lines.push('non-IP frames');
      for (const [k, v] of nonIp) lines.push(`  ${k.padEnd(24)} ${n(v)}`);
    }
    const bad = files.filter((f) => f.error);
    if (bad.length) {
      lines.push('');
      lines.push('file errors');
      for (const f of bad) lines.push(`  ${f.error!.message}`);
    }
    return lines.join('\n') + '\n';
  }
}
