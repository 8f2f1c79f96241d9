/**
 * The only module that knows every stage: packet source → decoder → flow
 * table → reports. Sources call `packet()` (PacketSink); the decoder calls
 * `layer()`/`nonIp()` (LayerSink); the flow table calls the reporter when a
 * flow record is due.
 */
import { MAX_INTERFACES, type InterfaceInfo, type PacketSink } from './capture/types.js';
import { Clock } from './clock.js';
import { Decoder, SUPPORTED_LINKTYPES, type LayerSink } from '../parsers/decoder.js';
import type { Packet } from '../parsers/packet.js';
import { R, REASON_COUNT } from '../parsers/reasons.js';
import { FlowTable, type FlowTableOptions } from './flows/table.js';

/**
 * The last second a packet may carry: 9999-12-31T23:59:59Z. Beyond it (and
 * before 1970) a record's time is damage, not a date, and would drive every
 * timeout and step boundary; such a record is counted as `bad_timestamp`.
 */
export const MAX_PACKET_SEC = 253402300799;

export type FlowReportListener = (table: FlowTable, slot: number, reason: number, final: boolean) => void;

export class Pipeline implements PacketSink, LayerSink {
  readonly clock = new Clock();
  readonly interfaces: InterfaceInfo[] = [];
  private linktype: number[] = [];
  private fcs: number[] = [];
  readonly decoder: Decoder;
  readonly table: FlowTable;

  // ---- totals (every packet, decoded or not) ----
  packets = 0;
  wireBytes = 0;
  capturedBytes = 0;
  /** Packets whose captured length is less than their wire length. */
  snapped = 0;
  /** Packet time of the first and last packet (ns on `clock`). */
  firstT = Infinity;
  lastT = -Infinity;
  /** Packets that could not be fully decoded, by reason code (parsers/reasons.ts). */
  readonly reasons = new Float64Array(REASON_COUNT);
  /** Non-IP frames by EtherType (pseudo types from 0x10000: see ETHERTYPE_* in parsers/decoder.ts). */
  readonly nonIpFrames = new Float64Array(0x10003);
  /** Packets and wire bytes per interface. */
  readonly ifPackets: number[] = [];
  readonly ifBytes: number[] = [];

  private readonly listeners: FlowReportListener[] = [];
  private nextStep = Infinity;
  private stepNs = 0;
  private stepFn: (boundary: number) => void = () => {};


  constructor(opts: FlowTableOptions = {}) {
    this.table = new FlowTable(opts);
    this.decoder = new Decoder(this);
    this.table.onReport = (t, s, reason, final) => {
      for (const l of this.listeners) l(t, s, reason, final);
    };
  }

  /** Registers a consumer of flow reports (NDJSON writer, summary, metrics). */
  onFlowReport(l: FlowReportListener): void {
    this.listeners.push(l);
  }

  addInterface(info: InterfaceInfo): number {
    if (this.interfaces.length >= MAX_INTERFACES) return -1;
    this.interfaces.push(info);
    this.linktype.push(info.linktype);
    this.fcs.push(info.fcsBytes);
    this.ifPackets.push(0);
    this.ifBytes.push(0);
    if (this.interfaces.length > 1 || info.linktype === 113 || info.linktype === 276) this.table.dedupe = true;
    return this.interfaces.length - 1;
  }

  interfaceName(ifIndex: number): string {
    return this.interfaces[ifIndex]?.name ?? String(ifIndex);
  }

  isSupportedLinktype(linktype: number): boolean {
    return SUPPORTED_LINKTYPES.has(linktype);
  }

  packet(buf: Uint8Array, off: number, caplen: number, wirelen: number, tsSec: number, tsNsec: number, ifIndex: number): void {
    if (!(tsSec >= 0 && tsSec <= MAX_PACKET_SEC && tsNsec >= 0 && tsNsec < 1e9)) {
      // Damage, not a date: in the totals, under `bad_timestamp`, and nowhere else (not in packet time).
      this.countTotals(caplen, wirelen, ifIndex);
      this.reasons[R.bad_timestamp]++;
      return;
    }
    const t = this.clock.toNs(tsSec, tsNsec);
    // A step boundary is sampled before the packet that crosses it is counted anywhere.
    if (t >= this.nextStep) this.step(t);
    this.countTotals(caplen, wirelen, ifIndex);
    if (t < this.firstT) this.firstT = t;
    if (t > this.lastT) this.lastT = t;
    this.table.advance(t);
    const r = this.decoder.decode(buf, off, caplen, wirelen, this.linktype[ifIndex], this.fcs[ifIndex], ifIndex, t);
    if (r !== 0) this.reasons[r]++;
  }

  /** The totals every record counts in, decoded or not. */
  private countTotals(caplen: number, wirelen: number, ifIndex: number): void {
    this.packets++;
    this.wireBytes += wirelen;
    this.capturedBytes += caplen;
    if (caplen < wirelen) this.snapped++;
    this.ifPackets[ifIndex]++;
    this.ifBytes[ifIndex] += wirelen;
  }

  /**
   * Calls `fn(boundary)` each time packet time reaches a multiple of
   * `stepNs` (ns on `clock`), before the packet that reaches it is counted:
   * the hook for sampling metrics at step boundaries of packet time.
   * One comparison per packet when nothing is due.
   */
  onStep(stepNs: number, fn: (boundary: number) => void): void {
    this.stepNs = stepNs;
    this.stepFn = fn;
    this.nextStep = this.lastT > -Infinity ? (Math.floor(this.lastT / stepNs) + 1) * stepNs : -Infinity;
  }

  private step(t: number): void {
    if (this.nextStep === -Infinity) {
      // First packet: the first boundary is the next multiple after it.
      this.nextStep = (Math.floor(t / this.stepNs) + 1) * this.stepNs;
      return;
    }
    while (this.nextStep <= t) {
      const b = this.nextStep;
      this.nextStep += this.stepNs;
      this.table.advance(b);
      this.stepFn(b);
      // A gap in packet time with no flow left: every boundary up to t would sample the same values.
      // Only the last one before t is sampled (a gap of years at a 15 s step is not walked step by step).
      if (this.table.count === 0 && this.nextStep + this.stepNs <= t) this.nextStep = Math.floor(t / this.stepNs) * this.stepNs;
    }
  }

  layer(p: Packet): number {
    return this.table.layer(p);
  }

  nonIp(ethertype: number): void {
    this.nonIpFrames[ethertype]++;
  }

  /**
   * PacketSink: the source's buffer is about to be reused. Every packet is
   * processed within its `packet()` call, so nothing is pending here; the
   * hook stays so that sources need not know (a batching sink would finish
   * its batch).
   */
  flush(): void {}

  /** End of input: every live flow is reported. */
  finish(): void {
    this.table.flush();
  }
}
