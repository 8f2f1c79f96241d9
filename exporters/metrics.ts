/**
 * Prometheus metrics of a pipeline (issue 4). Every number lives in
 * flowtap's own tables; the prom-client metrics on the private `registry`
 * are filled in their `collect()` callbacks at scrape time, never per packet.
 *
 * Counters are monotonic across flow expiry. A counter's value is what
 * ended flows contributed (accumulated on FINAL flow reports; interim
 * reports of the active timeout are ignored) plus what the live flows hold
 * now. A flow is attached ("pinned") to its series the first time it is
 * published, by a scrape, a sample or its final report, and stays there:
 * a flow whose direction is learnt later (a forwarded copy seen after the
 * first packets) never moves its packets from one series to another, which
 * would make the first one go down.
 *
 * Cardinality: every family holds at most `maxSeries` series (for
 * histograms a series is one label set). A label set that does not fit is
 * folded into an `other` series of the family (its unbounded labels set to
 * `other`) and counted in `flowtap_series_budget_dropped_total{family}`.
 * Service series that saw no traffic for `graceSeconds` of packet time are
 * deleted; a top-flow series is published as 0 at the first refresh that
 * does not find its flow among the top K, and deleted at the next.
 *
 * `collect(now)` is synchronous and returns every family's rows; the
 * OpenMetrics backfill (exporters/openmetrics.ts) samples it at step
 * boundaries of packet time. Scrapes use `collectAsync()`, which walks the
 * flow table in slices across event-loop turns.
 * docs/metrics.md describes every family.
 */
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Pipeline } from '../agent/pipeline.js';
import { DIRECTIONS, DIR_INBOUND, DIR_LOCAL, END_REASONS, type FlowTable } from '../agent/flows/table.js';
import { connStateNonTcp } from '../agent/flows/tcp.js';
import { formatAddr } from '../parsers/addr.js';
import { ethertypeName } from '../parsers/ethertypes.js';
import { PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP } from '../parsers/packet.js';
import { REASONS } from '../parsers/reasons.js';
import { protoName } from './ndjson.js';

export const DEFAULT_MAX_SERIES = 10_000;
export const DEFAULT_TOP_FLOWS = 20;
/** Service series without traffic for this long (packet time) are deleted. */
export const DEFAULT_GRACE_SECONDS = 300;
/** The top-flow list is recomputed at most this often (packet time) by scrapes. */
export const DEFAULT_TOP_WINDOW_SECONDS = 10;

/** Upper bounds (seconds) of `flowtap_tcp_handshake_rtt_seconds`. */
export const RTT_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Upper bounds (seconds) of `flowtap_flow_duration_seconds`. */
export const DURATION_BUCKETS: readonly number[] = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

/** Zeek conn_state values (TCP and non-TCP). */
const CONN_STATES = ['S0', 'S1', 'SF', 'REJ', 'S2', 'S3', 'RSTO', 'RSTR', 'RSTOS0', 'RSTRH', 'SH', 'SHR', 'OTH'] as const;
const CONN_STATE_INDEX = new Map<string, number>(CONN_STATES.map((s, i) => [s, i]));

const DROP_WHERE = ['kernel', 'interface', 'queue'] as const;

/** Service attribution of a flow: not a candidate, responder not heard yet, attached. */
const SVC_NONE = 0;
const SVC_PENDING = 1;
const SVC_ATTACHED = 2;

export interface MetricsOptions {
  /** Series per family at most (default 10,000). */
  maxSeries?: number;
  /** K of `flowtap_top_flow_bytes` (default 20; 0 = off). */
  topFlows?: number;
  /** Local process of a flow's socket (live agent); '' or undefined when unknown. */
  processOf?: (table: FlowTable, slot: number) => string;
  /** Idle time (packet-time seconds) after which a service series is deleted (default 300). */
  graceSeconds?: number;
  /** Minimum packet time between two top-flow refreshes triggered by scrapes (default 10 s). */
  topWindowSeconds?: number;
  /** Register prom-client's process_* / nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
}

export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'info';

/**
 * One family's series at a collection. `values` holds `width` numbers per
 * row: counters and gauges 1; histograms the cumulative bucket counts
 * (one per bound, then +Inf = the count), then the sum.
 */
export interface FamilyRows {
  keys: string[];
  labels: (readonly string[])[];
  values: Float64Array;
}

export interface MetricFamily {
  /** Exposition name (Prometheus text): counters end in `_total`. */
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
  readonly labelNames: readonly string[];
  /** Histogram upper bounds, +Inf excluded. */
  readonly bounds?: readonly number[];
  /** Numbers per row (see FamilyRows). */
  readonly width: number;
  /** Rows of the latest `collect()`. */
  rows: FamilyRows;
}

/** A series of a SeriesSet: `acc` holds what ended flows contributed, `live` what live flows hold now. */
export class Series {
  readonly acc: Float64Array;
  readonly live: Float64Array;
  /** Flows pinned to this series that have not ended. */
  members = 0;
  /** Packet time of the last activity. */
  last = -Infinity;
  dead = false;
  constructor(readonly key: string, readonly labels: readonly string[], width: number) {
    this.acc = new Float64Array(width);
    this.live = new Float64Array(width);
  }
}

/**
 * Series of one or more families that share labels, under the cardinality
 * budget. `get(labels)` admits a new label set while there is room and
 * otherwise folds it (`fold(labels)`), or as a last resort into the series
 * whose every label is `other`; admission never exceeds `max`.
 */
export class SeriesSet {
  private list: Series[] = [];
  private readonly index = new Map<string, Series>();
  private aliases = 0;
  private sorted = true;
  /** Label sets folded into an `other` series. */
  dropped = 0;
  private readonly reserve: number;

  constructor(
    readonly labelNames: readonly string[],
    readonly width: number,
    private readonly max: number,
    private readonly fold: (labels: readonly string[]) => string[],
  ) {
    this.reserve = Math.max(1, Math.min(16, Math.floor(max / 4)));
  }

  get size(): number {
    return this.list.length;
  }

  get(labels: readonly string[]): Series {
    const key = labels.join('\u0000');
    const found = this.index.get(key);
    if (found !== undefined) {
      if (!found.dead) return found;
      this.index.delete(key);
      if (found.key !== key) this.aliases--;
    }
    if (this.list.length < this.max - this.reserve) return this.add(key, labels);
    this.dropped++;
    let target = this.admit(this.fold(labels), this.max - 1);
    if (target === undefined) target = this.admit(labels.map(() => 'other'), this.max)!;
    if (target.key !== key) {
      // Remember the fold so the same label set is not counted again; bounded, forgotten in bulk.
      if (this.aliases >= 4 * this.max) this.forgetAliases();
      this.index.set(key, target);
      this.aliases++;
    }
    return target;
  }

  private admit(labels: readonly string[], limit: number): Series | undefined {
    const key = labels.join('\u0000');
    const s = this.index.get(key);
    if (s !== undefined && !s.dead && s.key === key) return s;
    if (this.list.length < limit) return this.add(key, labels);
    // Full: the catch-all is always admitted (the reserve keeps room for it).
    return limit === this.max ? this.add(key, labels) : undefined;
  }

  private add(key: string, labels: readonly string[]): Series {
    const s = new Series(key, labels, this.width);
    this.index.set(key, s);
    this.list.push(s);
    this.sorted = false;
    return s;
  }

  private forgetAliases(): void {
    for (const [k, s] of this.index) if (s.key !== k) this.index.delete(k);
    this.aliases = 0;
  }

  /** Series in label order. */
  all(): readonly Series[] {
    if (!this.sorted) {
      this.list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.sorted = true;
    }
    return this.list;
  }

  clearLive(): void {
    for (const s of this.list) s.live.fill(0);
  }

  /** Deletes series with no live member and no activity since `before`. */
  sweep(before: number): void {
    let n = 0;
    for (const s of this.list) {
      if (s.members === 0 && s.last < before) {
        s.dead = true;
        this.index.delete(s.key);
        n++;
      }
    }
    if (n > 0) this.list = this.list.filter((s) => !s.dead);
  }
}

/** Label value of a protocol number (a bounded set). */
function protoLabel(proto: number): string {
  return protoName(proto);
}

interface TopEntry {
  key: string;
  labels: string[];
  value: number;
  lastTop: number;
  gen: number;
}

interface LivePass {
  gen: number;
  /** Packet time of the pass. */
  at: number;
  refreshTop: boolean;
  k: number;
  /** Next slot to visit. */
  next: number;
}

/** Flow slots visited per event-loop turn by `collectAsync`. */
const SLICE_SLOTS = 8192;
/** A scrape starting this soon (ms) after the previous one reuses its numbers. */
const SCRAPE_REUSE_MS = 200;

interface DropState {
  base: Float64Array;
  last: Float64Array;
}

function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'flowtap' && pkg.version) return pkg.version;
    } catch {
      // try the next location (source tree vs dist/)
    }
  }
  return 'unknown';
}

/** The three prom-client default gauges that promtool rejects (a non-counter ending in _total); they duplicate the labelled ones. */
const LINT_REJECTED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class FlowtapMetrics {
  /** prom-client registry (private to this instance): flowtap families, build info and the process_/nodejs_ defaults. */
  readonly registry: Registry;
  /** Families in exposition order. */
  readonly families: MetricFamily[] = [];
  readonly version: string;

  private readonly table: FlowTable;
  private readonly maxSeries: number;
  private readonly topK: number;
  private readonly graceNs: number;
  private readonly topWindowNs: number;
  private readonly processOf?: (table: FlowTable, slot: number) => string;

  // ---- series sets
  private readonly ifSet: SeriesSet;
  private readonly endSet: SeriesSet;
  private readonly activeSet: SeriesSet;
  private readonly tcpSet: SeriesSet;
  private readonly rttSet: SeriesSet;
  private readonly durSet: SeriesSet;
  private readonly reasonSet: SeriesSet;
  private readonly nonIpSet: SeriesSet;
  private readonly evictSet: SeriesSet;
  private readonly capSet: SeriesSet;
  private readonly dropSet: SeriesSet;
  private readonly svcSet: SeriesSet;
  private readonly budgetSet: SeriesSet;

  // ---- numeric caches of label lookups (never-deleted sets only)
  private readonly ifCache = new Map<number, Series>();
  private readonly endCache = new Map<number, Series>();
  private readonly activeCache = new Map<number, Series>();
  private readonly byDirTcp: (Series | undefined)[] = [];
  private readonly byDirRtt: (Series | undefined)[] = [];
  private readonly durByProto = new Map<number, Series>();
  private readonly reasonSeries: Series[] = [];
  private readonly evictSeries: Series[] = [];
  private readonly capByIf: Series[] = [];
  /** The drop series (one per DROP_WHERE) of an interface name. */
  private readonly dropByName = new Map<string, Series[]>();

  // ---- per flow slot: the pin (flow id + 1, 0 = none) and what it is pinned to
  private pinId = new Float64Array(0);
  private pinDir = new Uint8Array(0);
  private pinIf: Series[] = [];
  private pinSvc: (Series | null)[] = [];
  /** Handshake RTT of the flow once known: bucket + 1 (0 = not known yet), and ns. */
  private rttBucket = new Uint8Array(0);
  private rttNs = new Float64Array(0);
  /** SVC_*: whether the flow counts for a local service. */
  private svcState = new Uint8Array(0);
  /** Wire bytes of the flow at the previous top-flow refresh. */
  private winPrev = new Float64Array(0);
  private seenGen = new Uint32Array(0);
  private gen = 0;

  // ---- top flows
  private readonly top = new Map<string, TopEntry>();
  private topDropped = 0;
  private lastTopRefresh = -Infinity;
  private topSorted: TopEntry[] = [];
  private readonly heapSlot: Int32Array;
  private readonly heapVal: Float64Array;
  private heapSize = 0;

  // ---- capture drops reported by the live agent
  private readonly drops = new Map<string, DropState>();

  private readonly p: Pipeline;
  private pass: LivePass | undefined;
  private scrapePromise: Promise<MetricFamily[]> | undefined;
  private scrapeBusy = false;
  private scrapeDone = 0;

  constructor(pipeline: Pipeline, opts: MetricsOptions = {}) {
    this.p = pipeline;
    this.table = pipeline.table;
    this.maxSeries = Math.max(1, Math.floor(opts.maxSeries ?? DEFAULT_MAX_SERIES));
    this.topK = Math.max(0, Math.min(this.maxSeries, Math.floor(opts.topFlows ?? DEFAULT_TOP_FLOWS)));
    this.graceNs = (opts.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1e9;
    this.topWindowNs = (opts.topWindowSeconds ?? DEFAULT_TOP_WINDOW_SECONDS) * 1e9;
    this.processOf = opts.processOf;
    this.version = packageVersion();
    this.heapSlot = new Int32Array(this.topK);
    this.heapVal = new Float64Array(this.topK);

    const max = this.maxSeries;
    const other = (names: readonly string[], foldable: readonly string[]) => (labels: readonly string[]) =>
      labels.map((v, i) => (foldable.includes(names[i]) ? 'other' : v));
    const set = (names: readonly string[], width: number, foldable: readonly string[]) => new SeriesSet(names, width, max, other(names, foldable));
    const hw = (b: readonly number[]) => b.length + 2;

    this.ifSet = set(['interface', 'proto', 'direction'], 4, ['interface']);
    this.endSet = set(['proto', 'conn_state', 'direction'], 1, ['conn_state']);
    this.activeSet = set(['proto', 'direction'], 1, ['proto']);
    this.tcpSet = set(['direction'], 3, ['direction']);
    this.rttSet = set(['direction'], hw(RTT_BUCKETS), ['direction']);
    this.durSet = set(['proto'], hw(DURATION_BUCKETS), ['proto']);
    this.reasonSet = set(['reason'], 1, ['reason']);
    this.nonIpSet = set(['ethertype'], 1, ['ethertype']);
    this.evictSet = set(['reason'], 1, ['reason']);
    this.capSet = set(['interface'], 2, ['interface']);
    this.dropSet = set(['interface', 'where'], 1, ['interface']);
    this.svcSet = set(['proto', 'port', 'process', 'direction'], 1, ['port']);
    this.budgetSet = set(['family'], 1, ['family']);
    for (let i = 1; i < REASONS.length; i++) this.reasonSeries.push(this.reasonSet.get([REASONS[i]]));
    for (const r of END_REASONS) this.evictSeries.push(this.evictSet.get([r]));

    const fam = (name: string, help: string, type: FamilyType, labelNames: readonly string[], width = 1, bounds?: readonly number[]): MetricFamily => {
      const f: MetricFamily = { name, help, type, labelNames, width, bounds, rows: { keys: [], labels: [], values: new Float64Array(0) } };
      this.families.push(f);
      return f;
    };
    const ifl = ['interface', 'proto', 'direction'];
    fam('flowtap_packets_total', 'Packets counted in flows (forwarded copies counted once), by capture interface, transport protocol and direction.', 'counter', ifl);
    fam('flowtap_bytes_total', 'Wire bytes (link-layer frame length) counted in flows.', 'counter', ifl);
    fam('flowtap_ip_bytes_total', 'IP bytes (IP header and payload) counted in flows.', 'counter', ifl);
    fam('flowtap_flows_started_total', 'Flows started.', 'counter', ifl);
    fam('flowtap_flows_ended_total', 'Flows ended (final flow records), by Zeek conn_state.', 'counter', ['proto', 'conn_state', 'direction']);
    fam('flowtap_active_flows', 'Live flows in the flow table.', 'gauge', ['proto', 'direction']);
    fam('flowtap_tcp_retransmitted_packets_total', 'TCP data segments retransmitted, both sides of the connection.', 'counter', ['direction']);
    fam('flowtap_tcp_resets_total', 'TCP segments with RST, both sides of the connection.', 'counter', ['direction']);
    fam('flowtap_tcp_zero_window_total', 'TCP zero-window advertisements, both sides of the connection.', 'counter', ['direction']);
    fam('flowtap_tcp_handshake_rtt_seconds', 'TCP handshake round-trip time (SYN to SYN-ACK to ACK) of connections whose handshake was seen.', 'histogram', ['direction'], hw(RTT_BUCKETS), RTT_BUCKETS);
    fam('flowtap_flow_duration_seconds', 'Duration of ended flows (first to last packet).', 'histogram', ['proto'], hw(DURATION_BUCKETS), DURATION_BUCKETS);
    fam('flowtap_decode_errors_total', 'Packets that could not be fully decoded, by reason.', 'counter', ['reason']);
    fam('flowtap_nonip_frames_total', 'Non-IP frames, by EtherType name.', 'counter', ['ethertype']);
    fam('flowtap_flow_table_evictions_total', 'Flow records written by the flow table, by reason (idle, active = interim record, pressure = table full, end = end of input, reuse = TCP port reuse).', 'counter', ['reason']);
    fam('flowtap_capture_packets_total', 'Packets captured (every frame, decoded or not), by interface.', 'counter', ['interface']);
    fam('flowtap_capture_bytes_total', 'Wire bytes of captured frames, by interface.', 'counter', ['interface']);
    fam('flowtap_capture_dropped_packets_total', 'Packets lost before flowtap saw them, by interface and where (kernel, interface, queue); 0 for capture files.', 'counter', ['interface', 'where']);
    fam('flowtap_service_bytes_total', 'Wire bytes of flows to local listening services (responder local and answering), by protocol, responder port, local process and direction.', 'counter', ['proto', 'port', 'process', 'direction']);
    fam('flowtap_top_flow_bytes', 'Wire bytes in the last window of the flows with the most bytes in it (top K), both directions.', 'gauge', ['proto', 'orig', 'orig_port', 'resp', 'resp_port', 'direction', 'process']);
    fam('flowtap_series_budget_dropped_total', 'Label sets that did not fit in the series budget of a family (--max-series) and were folded into its other series.', 'counter', ['family']);
    fam('flowtap_forwarded_copies_total', 'Forwarded packets seen a second time (another interface or direction) and not counted again.', 'counter', []);
    fam('flowtap_snapped_packets_total', 'Packets whose captured length is shorter than their wire length.', 'counter', []);
    fam('flowtap_flow_table_max_flows', 'Live flows the flow table holds at most (--max-flows).', 'gauge', []);
    fam('flowtap_flow_table_memory_bytes', 'Memory the flow table holds (records, index, timers, TCP state); it grows with the live flows and never shrinks.', 'gauge', []);
    fam('flowtap_last_packet_timestamp_seconds', 'Packet time of the newest packet (Unix seconds).', 'gauge', []);
    fam('flowtap_build_info', 'flowtap build information.', 'info', ['version']);

    pipeline.onFlowReport((t, s, _reason, final) => {
      if (final) this.ended(t, s);
    });

    this.registry = new Registry();
    this.register(opts.defaultMetrics !== false);
  }

  // ------------------------------------------------------------------ flows

  private ensure(cap: number): void {
    if (this.pinId.length >= cap) return;
    const grow = <T extends Float64Array | Uint8Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.pinId = grow(this.pinId, (n) => new Float64Array(n));
    this.pinDir = grow(this.pinDir, (n) => new Uint8Array(n));
    this.svcState = grow(this.svcState, (n) => new Uint8Array(n));
    this.rttBucket = grow(this.rttBucket, (n) => new Uint8Array(n));
    this.rttNs = grow(this.rttNs, (n) => new Float64Array(n));
    this.winPrev = grow(this.winPrev, (n) => new Float64Array(n));
    this.seenGen = grow(this.seenGen, (n) => new Uint32Array(n));
    // Filled, not lengthened: a long holey array would fall back to slow dictionary elements.
    const refs = <T>(old: T[], fill: T): T[] => {
      const a = new Array<T>(cap).fill(fill);
      for (let i = 0; i < old.length; i++) a[i] = old[i];
      return a;
    };
    this.pinIf = refs(this.pinIf, NO_SERIES);
    this.pinSvc = refs(this.pinSvc, null);
  }

  /** Attaches a flow to its series (first publication). */
  private pin(t: FlowTable, s: number, id: number): void {
    if (s >= this.pinId.length) this.ensure(Math.max(t.capacity, s + 1));
    const dir = t.direction(s);
    const proto = t.proto(s);
    const ifIndex = t.ifIndex(s);
    const ck = (ifIndex * 256 + proto) * 8 + dir;
    let ifs = this.ifCache.get(ck);
    if (ifs === undefined) {
      ifs = this.ifSet.get([this.p.interfaceName(ifIndex), protoLabel(proto), DIRECTIONS[dir]]);
      this.ifCache.set(ck, ifs);
    }
    ifs.members++;
    this.pinId[s] = id + 1;
    this.pinDir[s] = dir;
    this.pinIf[s] = ifs;
    this.winPrev[s] = 0;
    this.pinSvc[s] = null;
    this.rttBucket[s] = 0;
    this.svcState[s] = (dir === DIR_INBOUND || dir === DIR_LOCAL) && (proto === PROTO_TCP || proto === PROTO_UDP) ? SVC_PENDING : SVC_NONE;
    // The gauge of live flows gets its series (0 when none are live) as soon as the kind of flow is seen.
    this.activeSeries(proto, dir);
  }

  private activeSeries(proto: number, dir: number): Series {
    const ak = protoKey(proto) * 8 + dir;
    let as = this.activeCache.get(ak);
    if (as === undefined) {
      as = this.activeSet.get([protoLabel(proto), DIRECTIONS[dir]]);
      this.activeCache.set(ak, as);
    }
    return as;
  }

  /**
   * A flow counts for a local service once the responder has answered as a
   * listener does (TCP: a SYN-ACK or data; UDP: any datagram), so scans of
   * closed ports create no service series. Decided once per flow; from then
   * on all of the flow's bytes count for the service.
   */
  private attachService(t: FlowTable, s: number): Series | null {
    const proto = t.proto(s);
    const answered = proto === PROTO_TCP ? t.tcp.syns(s, false) > 0 || t.payloadBytes(s, false) > 0 : t.pkts(s, false) > 0;
    if (!answered) return null;
    const proc = this.processOf?.(t, s) ?? '';
    const svc = this.svcSet.get([protoLabel(proto), String(t.port(s, false)), proc, DIRECTIONS[this.pinDir[s]]]);
    svc.members++;
    this.pinSvc[s] = svc;
    this.svcState[s] = SVC_ATTACHED;
    return svc;
  }

  private tcpSeries(dir: number): Series {
    return (this.byDirTcp[dir] ??= this.tcpSet.get([DIRECTIONS[dir]]));
  }

  private rttSeries(dir: number): Series {
    return (this.byDirRtt[dir] ??= this.rttSet.get([DIRECTIONS[dir]]));
  }

  /** A final flow report: the flow's numbers move from "live" into the accumulators. */
  private ended(t: FlowTable, s: number): void {
    const id = t.flowId(s);
    if (s >= this.pinId.length || this.pinId[s] !== id + 1) this.pin(t, s, id);
    const now = t.now;
    const dir = this.pinDir[s];
    const proto = t.proto(s);
    const op = t.pkts(s, true);
    const rp = t.pkts(s, false);
    const wire = t.wireBytes(s, true) + t.wireBytes(s, false);
    const ip = t.ipBytes(s, true) + t.ipBytes(s, false);
    // Visited by the pass in progress (collectAsync between two turns): the pass counted it live, and now
    // its final numbers go into `acc`; taking them out of `live` leaves the pass's view of it unchanged.
    const unvisit = this.pass !== undefined && this.seenGen[s] === this.pass.gen;
    this.seenGen[s] = 0;
    const ifs = this.pinIf[s];
    ifs.acc[0] += op + rp;
    ifs.acc[1] += wire;
    ifs.acc[2] += ip;
    ifs.acc[3] += 1;
    ifs.members--;
    ifs.last = now;
    if (unvisit) {
      ifs.live[0] -= op + rp;
      ifs.live[1] -= wire;
      ifs.live[2] -= ip;
      ifs.live[3] -= 1;
      this.activeSeries(proto, dir).live[0]--;
    }
    const svc = this.svcState[s] === SVC_PENDING ? this.attachService(t, s) : this.pinSvc[s];
    if (svc !== null) {
      svc.acc[0] += wire;
      if (unvisit) svc.live[0] -= wire;
      svc.members--;
      svc.last = now;
    }
    let state: string;
    if (proto === PROTO_TCP) {
      const tcp = t.tcp;
      state = tcp.connState(s);
      const ts = this.tcpSeries(dir);
      const retrans = tcp.retransPkts(s, true) + tcp.retransPkts(s, false);
      const resets = tcp.resets(s, true) + tcp.resets(s, false);
      const zeroWin = tcp.zeroWin(s, true) + tcp.zeroWin(s, false);
      ts.acc[0] += retrans;
      ts.acc[1] += resets;
      ts.acc[2] += zeroWin;
      const rtt = tcp.rttHandshake(s);
      if (rtt === rtt) observe(this.rttSeries(dir).acc, RTT_BUCKETS, rtt, RTT_UNITS);
      if (unvisit) {
        ts.live[0] -= retrans;
        ts.live[1] -= resets;
        ts.live[2] -= zeroWin;
        if (rtt === rtt) observe(this.rttSeries(dir).live, RTT_BUCKETS, rtt, RTT_UNITS, -1);
      }
    } else {
      state = connStateNonTcp(op, rp, proto);
    }
    const si = CONN_STATE_INDEX.get(state) ?? CONN_STATES.length - 1;
    const ek = (proto * 16 + si) * 8 + dir;
    let es = this.endCache.get(ek);
    if (es === undefined) {
      es = this.endSet.get([protoLabel(proto), CONN_STATES[si], DIRECTIONS[dir]]);
      this.endCache.set(ek, es);
    }
    es.acc[0]++;
    const pk = protoKey(proto);
    let ds = this.durByProto.get(pk);
    if (ds === undefined) {
      ds = this.durSet.get([protoLabel(proto)]);
      this.durByProto.set(pk, ds);
    }
    observe(ds.acc, DURATION_BUCKETS, (t.last(s) - t.first(s)) / 1e9, DURATION_UNITS);
    this.pinId[s] = 0;
    this.pinIf[s] = NO_SERIES;
    this.pinSvc[s] = null;
    this.svcState[s] = SVC_NONE;
  }

  // ------------------------------------------------------------------ live flows

  /** Starts a pass over the live flows: clears the `live` parts. */
  private beginPass(at: number, refreshTop: boolean): LivePass {
    this.ensure(this.table.capacity);
    this.ifSet.clearLive();
    this.svcSet.clearLive();
    this.tcpSet.clearLive();
    this.rttSet.clearLive();
    this.activeSet.clearLive();
    this.heapSize = 0;
    const pass: LivePass = { gen: ++this.gen, at, refreshTop, k: refreshTop ? this.topK : 0, next: 0 };
    this.pass = pass;
    return pass;
  }

  /** Visits the live flows of the next `n` slots; true when the pass has seen every slot. */
  private visitSlots(pass: LivePass, n: number): boolean {
    const t = this.table;
    this.ensure(t.capacity);
    const end = Math.min(t.capacity, pass.next + n);
    for (let s = pass.next; s < end; s++) if (t.isLive(s)) this.visit(t, s, pass);
    pass.next = end;
    return end >= t.capacity;
  }

  /** Adds a live flow to the `live` parts of its series. */
  private visit(t: FlowTable, s: number, pass: LivePass): void {
    const id = t.flowId(s);
    if (this.pinId[s] !== id + 1) this.pin(t, s, id);
    this.seenGen[s] = pass.gen;
    const now = pass.at;
    const dir = this.pinDir[s];
    const proto = t.proto(s);
    const wire = t.wireBytes(s, true) + t.wireBytes(s, false);
    const ifs = this.pinIf[s];
    const live = ifs.live;
    live[0] += t.pkts(s, true) + t.pkts(s, false);
    live[1] += wire;
    live[2] += t.ipBytes(s, true) + t.ipBytes(s, false);
    live[3] += 1;
    ifs.last = now;
    const svc = this.svcState[s] === SVC_PENDING ? this.attachService(t, s) : this.pinSvc[s];
    if (svc !== null) {
      svc.live[0] += wire;
      svc.last = now;
    }
    this.activeSeries(proto, dir).live[0]++;
    if (proto === PROTO_TCP) {
      const tcp = t.tcp;
      const ts = this.tcpSeries(dir).live;
      ts[0] += tcp.retransPkts(s, true) + tcp.retransPkts(s, false);
      ts[1] += tcp.resets(s, true) + tcp.resets(s, false);
      ts[2] += tcp.zeroWin(s, true) + tcp.zeroWin(s, false);
      // The handshake RTT never changes once known: its bucket and ns are kept per slot.
      let b = this.rttBucket[s];
      if (b === 0) {
        const rtt = tcp.rttHandshake(s);
        if (rtt === rtt) {
          b = this.rttBucket[s] = bucketOf(RTT_BUCKETS, rtt) + 1;
          this.rttNs[s] = Math.round(rtt * RTT_UNITS);
        }
      }
      if (b !== 0) {
        const h = this.rttSeries(dir).live;
        h[b - 1]++;
        h[RTT_BUCKETS.length + 1] += this.rttNs[s];
      }
    }
    if (pass.refreshTop) {
      const w = wire - this.winPrev[s];
      this.winPrev[s] = wire;
      if (pass.k > 0 && w > 0) this.heapPush(s, w, pass.k);
    }
  }

  /** Ends a pass: the top flows (when due), then the grace-period sweep. */
  private endPass(pass: LivePass): void {
    if (pass.refreshTop) this.refreshTop(pass.at, pass.gen);
    this.svcSet.sweep(pass.at - this.graceNs);
    this.pass = undefined;
  }

  /** Keeps the k largest (slot, bytes) in a min-heap. */
  private heapPush(s: number, w: number, k: number): void {
    const hs = this.heapSlot;
    const hv = this.heapVal;
    if (this.heapSize < k) {
      let i = this.heapSize++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (hv[p] <= w) break;
        hs[i] = hs[p];
        hv[i] = hv[p];
        i = p;
      }
      hs[i] = s;
      hv[i] = w;
      return;
    }
    if (w <= hv[0]) return;
    // Replace the minimum and sift down.
    const n = this.heapSize;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && hv[r] < hv[l] ? r : l;
      if (hv[c] >= w) break;
      hs[i] = hs[c];
      hv[i] = hv[c];
      i = c;
    }
    hs[i] = s;
    hv[i] = w;
  }

  private refreshTop(now: number, gen: number): void {
    const t = this.table;
    this.lastTopRefresh = now;
    // Largest first; ties by flow id so the order does not depend on slots.
    // A flow that ended after it was visited (a pass spread over several turns) has left the table: skipped.
    const order = Array.from({ length: this.heapSize }, (_, i) => i)
      .filter((i) => this.seenGen[this.heapSlot[i]] === gen)
      .sort((a, b) => this.heapVal[b] - this.heapVal[a] || t.flowId(this.heapSlot[a]) - t.flowId(this.heapSlot[b]));
    for (const i of order) {
      const s = this.heapSlot[i];
      const w = this.heapVal[i];
      const labels = this.topLabels(t, s);
      const key = labels.join('\u0000');
      let e = this.top.get(key);
      if (e === undefined) {
        if (this.top.size >= this.maxSeries && !this.evictTop(gen)) {
          this.topDropped++;
          continue;
        }
        e = { key, labels, value: 0, lastTop: now, gen };
        this.top.set(key, e);
      } else if (e.gen === gen) {
        e.value += w; // two live flows with the same labels (VLANs, interfaces)
        continue;
      }
      e.value = w;
      e.lastTop = now;
      e.gen = gen;
    }
    // Out of the top (or ended): published once more as 0, so that the last value a backfill or a scrape
    // leaves behind is not a stale byte count, then deleted at the next refresh.
    for (const [key, e] of this.top) {
      if (e.gen === gen) continue;
      if (e.value === 0) this.top.delete(key);
      else e.value = 0;
    }
    this.topSorted = [...this.top.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Frees room for a new top entry: drops the one out of the top for longest. */
  private evictTop(gen: number): boolean {
    let victim: TopEntry | undefined;
    for (const e of this.top.values()) if (e.gen !== gen && (victim === undefined || e.lastTop < victim.lastTop)) victim = e;
    if (victim === undefined) return false;
    this.top.delete(victim.key);
    return true;
  }

  private topLabels(t: FlowTable, s: number): string[] {
    const v = t.ipVersion(s);
    const proto = t.proto(s);
    const ports = proto === PROTO_TCP || proto === PROTO_UDP || proto === PROTO_ICMP || proto === PROTO_ICMPV6;
    return [
      protoLabel(proto),
      formatAddr(v, t.recWords(s), t.addrOffset(s, true)),
      ports ? String(t.port(s, true)) : '',
      formatAddr(v, t.recWords(s), t.addrOffset(s, false)),
      ports ? String(t.port(s, false)) : '',
      DIRECTIONS[this.pinDir[s]],
      this.processOf?.(t, s) ?? '',
    ];
  }

  // ------------------------------------------------------------------ capture stats

  /**
   * Drop counters of a live capture interface, as the kernel / NIC / queue
   * report them (cumulative). A counter that goes back (the capture handle
   * was reopened) is taken as restarted: flowtap's total keeps growing.
   */
  setCaptureStats(iface: string, drops: { kernel: number; interface: number; queue: number }): void {
    let d = this.drops.get(iface);
    if (d === undefined) {
      d = { base: new Float64Array(3), last: new Float64Array(3) };
      this.drops.set(iface, d);
    }
    const v = [drops.kernel, drops.interface, drops.queue];
    for (let i = 0; i < 3; i++) {
      const x = Number.isFinite(v[i]) && v[i] >= 0 ? v[i] : 0;
      if (x < d.last[i]) d.base[i] += d.last[i];
      d.last[i] = x;
    }
  }

  // ------------------------------------------------------------------ collection

  /**
   * Computes every family's rows at packet time `now` (ns on the pipeline
   * clock; default: the newest packet). `refreshTop`: recompute the top
   * flows now (default: when `topWindowSeconds` have passed since the last time).
   */
  collect(now?: number, opts: { refreshTop?: boolean } = {}): MetricFamily[] {
    const t = this.table;
    const at = now ?? (t.clock > -Infinity ? t.clock : 0);
    const pass = this.beginPass(at, opts.refreshTop ?? this.topDue(at));
    this.visitSlots(pass, Infinity);
    this.endPass(pass);
    return this.publish(at);
  }

  private topDue(at: number): boolean {
    return this.lastTopRefresh === -Infinity || at - this.lastTopRefresh >= this.topWindowNs;
  }

  /**
   * `collect()` spread over several turns of the event loop (SLICE_SLOTS
   * flow slots per turn), so a scrape never holds up the capture loop for
   * long. Flows that end between two turns keep the counters exact (see
   * `ended`). A synchronous `collect()` meanwhile restarts it.
   */
  async collectAsync(): Promise<MetricFamily[]> {
    const t = this.table;
    for (;;) {
      const at = t.clock > -Infinity ? t.clock : 0;
      const pass = this.beginPass(at, this.topDue(at));
      while (!this.visitSlots(pass, SLICE_SLOTS)) {
        await new Promise<void>((ok) => setImmediate(ok));
        if (this.pass !== pass) break;
      }
      if (this.pass !== pass) continue;
      this.endPass(pass);
      return this.publish(at);
    }
  }

  /** Rows of every family from the series (after a pass) and the pipeline's totals. */
  private publish(at: number): MetricFamily[] {
    const p = this.p;
    const t = this.table;

    for (let i = 1; i < REASONS.length; i++) this.reasonSeries[i - 1].live[0] = p.reasons[i];
    for (let i = 0; i < END_REASONS.length; i++) this.evictSeries[i].live[0] = t.ends[i];
    this.nonIpSet.clearLive();
    const nonIp = p.nonIpFrames;
    for (let i = 0; i < nonIp.length; i++) if (nonIp[i] > 0) this.nonIpSet.get([ethertypeName(i)]).live[0] += nonIp[i];
    this.capSet.clearLive();
    const names = new Set<string>();
    for (let i = 0; i < p.interfaces.length; i++) {
      // An interface that has seen no packet yet has series only when it is live (drop counters): a
      // capture file can declare 65 k interfaces it never uses, 4 series each at every step.
      if (p.ifPackets[i] === 0 && this.capByIf[i] === undefined && !this.drops.has(p.interfaceName(i))) continue;
      const name = p.interfaceName(i);
      names.add(name);
      const cs = (this.capByIf[i] ??= this.capSet.get([name]));
      cs.live[0] += p.ifPackets[i];
      cs.live[1] += p.ifBytes[i];
    }
    for (const name of this.drops.keys()) names.add(name);
    this.dropSet.clearLive();
    for (const name of names) {
      const d = this.drops.get(name);
      // Resolved once per name: past the series budget every get() folds again (65 k interfaces: 0.4 s a step).
      let ds = this.dropByName.get(name);
      if (ds === undefined) {
        ds = DROP_WHERE.map((w) => this.dropSet.get([name, w]));
        this.dropByName.set(name, ds);
      }
      for (let w = 0; w < DROP_WHERE.length; w++) ds[w].live[0] += d ? d.base[w] + d.last[w] : 0;
    }

    const f = this.families;
    let i = 0;
    const counters = (set: SeriesSet, col: number) => rowsOf(set, col, 1);
    f[i++].rows = counters(this.ifSet, 0);
    f[i++].rows = counters(this.ifSet, 1);
    f[i++].rows = counters(this.ifSet, 2);
    f[i++].rows = counters(this.ifSet, 3);
    f[i++].rows = counters(this.endSet, 0);
    f[i++].rows = counters(this.activeSet, 0);
    f[i++].rows = counters(this.tcpSet, 0);
    f[i++].rows = counters(this.tcpSet, 1);
    f[i++].rows = counters(this.tcpSet, 2);
    f[i++].rows = histogramRows(this.rttSet, RTT_BUCKETS, RTT_UNITS);
    f[i++].rows = histogramRows(this.durSet, DURATION_BUCKETS, DURATION_UNITS);
    f[i++].rows = counters(this.reasonSet, 0);
    f[i++].rows = counters(this.nonIpSet, 0);
    f[i++].rows = counters(this.evictSet, 0);
    f[i++].rows = counters(this.capSet, 0);
    f[i++].rows = counters(this.capSet, 1);
    f[i++].rows = counters(this.dropSet, 0);
    f[i++].rows = counters(this.svcSet, 0);
    f[i++].rows = topRows(this.topSorted);
    const budget: [string, number][] = [
      ['flowtap_packets_total', this.ifSet.dropped],
      ['flowtap_bytes_total', this.ifSet.dropped],
      ['flowtap_ip_bytes_total', this.ifSet.dropped],
      ['flowtap_flows_started_total', this.ifSet.dropped],
      ['flowtap_flows_ended_total', this.endSet.dropped],
      ['flowtap_active_flows', this.activeSet.dropped],
      ['flowtap_tcp_retransmitted_packets_total', this.tcpSet.dropped],
      ['flowtap_tcp_resets_total', this.tcpSet.dropped],
      ['flowtap_tcp_zero_window_total', this.tcpSet.dropped],
      ['flowtap_tcp_handshake_rtt_seconds', this.rttSet.dropped],
      ['flowtap_flow_duration_seconds', this.durSet.dropped],
      ['flowtap_decode_errors_total', this.reasonSet.dropped],
      ['flowtap_nonip_frames_total', this.nonIpSet.dropped],
      ['flowtap_flow_table_evictions_total', this.evictSet.dropped],
      ['flowtap_capture_packets_total', this.capSet.dropped],
      ['flowtap_capture_bytes_total', this.capSet.dropped],
      ['flowtap_capture_dropped_packets_total', this.dropSet.dropped],
      ['flowtap_service_bytes_total', this.svcSet.dropped],
      ['flowtap_top_flow_bytes', this.topDropped],
    ];
    for (const [name, n] of budget) this.budgetSet.get([name]).live[0] = n;
    f[i++].rows = counters(this.budgetSet, 0);
    f[i++].rows = scalar(t.copies);
    f[i++].rows = scalar(p.snapped);
    f[i++].rows = scalar(t.maxFlows);
    f[i++].rows = scalar(t.memoryBytes());
    f[i++].rows = scalar(p.packets > 0 ? p.clock.epoch(Math.min(p.lastT, at)) : 0);
    f[i++].rows = { keys: [this.version], labels: [[this.version]], values: Float64Array.of(1) };
    return f;
  }

  /**
   * The families for prom-client's collect callbacks: one `collectAsync()`
   * serves every callback of a scrape (and scrapes that start within
   * SCRAPE_REUSE_MS of it).
   */
  private scrape(): Promise<MetricFamily[]> {
    if (this.scrapePromise !== undefined && (this.scrapeBusy || Date.now() - this.scrapeDone < SCRAPE_REUSE_MS)) return this.scrapePromise;
    this.scrapeBusy = true;
    this.scrapePromise = this.collectAsync().then(
      (f) => {
        this.scrapeBusy = false;
        this.scrapeDone = Date.now();
        return f;
      },
      (e: unknown) => {
        this.scrapeBusy = false;
        this.scrapePromise = undefined;
        throw e;
      },
    );
    return this.scrapePromise;
  }

  // ------------------------------------------------------------------ prom-client

  private register(defaults: boolean): void {
    const registers = [this.registry];
    for (const fam of this.families) {
      const owner = this;
      const idx = this.families.indexOf(fam);
      const labelCache = new Map<string, Record<string, string>>();
      const labelsOf = (rows: FamilyRows, r: number): Record<string, string> => {
        const key = rows.keys[r];
        let o = labelCache.get(key);
        if (o === undefined) {
          if (labelCache.size > 4 * this.maxSeries) labelCache.clear();
          o = {};
          fam.labelNames.forEach((n, j) => (o![n] = rows.labels[r][j]));
          labelCache.set(key, o);
        }
        return o;
      };
      const base = { name: fam.name, help: fam.help, labelNames: fam.labelNames as string[], registers };
      if (fam.type === 'counter') {
        new Counter({
          ...base,
          async collect(this: Counter<string>) {
            const rows = (await owner.scrape())[idx].rows;
            this.reset();
            for (let r = 0; r < rows.keys.length; r++) this.inc(labelsOf(rows, r), rows.values[r]);
          },
        });
      } else if (fam.type === 'gauge' || fam.type === 'info') {
        new Gauge({
          ...base,
          async collect(this: Gauge<string>) {
            const rows = (await owner.scrape())[idx].rows;
            this.reset();
            for (let r = 0; r < rows.keys.length; r++) this.set(labelsOf(rows, r), rows.values[r]);
          },
        });
      } else {
        const bounds = fam.bounds!;
        const w = fam.width;
        new Histogram({
          ...base,
          buckets: bounds as number[],
          async collect(this: Histogram<string>) {
            const rows = (await owner.scrape())[idx].rows;
            this.reset();
            for (let r = 0; r < rows.keys.length; r++) setHistogram(this, labelsOf(rows, r), bounds, rows.values, r * w);
          },
        });
      }
    }
    if (defaults) {
      collectDefaultMetrics({ register: this.registry });
      for (const name of LINT_REJECTED_DEFAULTS) this.registry.removeSingleMetric(name);
    }
  }
}

/**
 * Histogram sums are kept as integers (ns for RTTs, µs for durations) so
 * that adding them is exact: `ended + live` then equals the later `ended`
 * to the last bit, and the published sum never goes down. Exact up to 2^53
 * units (104 days of summed RTTs, 285 years of summed flow durations).
 */
const RTT_UNITS = 1e9;
const DURATION_UNITS = 1e6;

/** Adds one observation (seconds) to a histogram's numbers: per bound, +Inf, then the sum in `units` per second; sign -1 takes it back. */
function observe(a: Float64Array, bounds: readonly number[], v: number, units: number, sign = 1): void {
  a[bucketOf(bounds, v)] += sign;
  a[bounds.length + 1] += sign * Math.round(v * units);
}

/** Index of the first bound >= v (bounds.length = +Inf). */
function bucketOf(bounds: readonly number[], v: number): number {
  let i = 0;
  while (i < bounds.length && v > bounds[i]) i++;
  return i;
}

/** Placeholder of pinIf for unpinned slots. */
const NO_SERIES = new Series('', [], 0);

/** Protocol key of the bounded proto label (so unknown protocols share one series). */
function protoKey(proto: number): number {
  return proto === PROTO_TCP || proto === PROTO_UDP || proto === PROTO_ICMP || proto === PROTO_ICMPV6 ? proto : 255;
}

function rowsOf(set: SeriesSet, col: number, _w: number): FamilyRows {
  const all = set.all();
  const values = new Float64Array(all.length);
  const keys = new Array<string>(all.length);
  const labels = new Array<readonly string[]>(all.length);
  for (let i = 0; i < all.length; i++) {
    const s = all[i];
    keys[i] = s.key;
    labels[i] = s.labels;
    values[i] = s.acc[col] + s.live[col];
  }
  return { keys, labels, values };
}

function histogramRows(set: SeriesSet, bounds: readonly number[], units: number): FamilyRows {
  const all = set.all();
  const w = bounds.length + 2;
  const values = new Float64Array(all.length * w);
  const keys = new Array<string>(all.length);
  const labels = new Array<readonly string[]>(all.length);
  for (let i = 0; i < all.length; i++) {
    const s = all[i];
    keys[i] = s.key;
    labels[i] = s.labels;
    let cum = 0;
    for (let b = 0; b <= bounds.length; b++) {
      cum += s.acc[b] + s.live[b];
      values[i * w + b] = cum;
    }
    values[i * w + bounds.length + 1] = (s.acc[bounds.length + 1] + s.live[bounds.length + 1]) / units;
  }
  return { keys, labels, values };
}

function topRows(entries: readonly TopEntry[]): FamilyRows {
  return {
    keys: entries.map((e) => e.key),
    labels: entries.map((e) => e.labels),
    values: Float64Array.from(entries, (e) => e.value),
  };
}

function scalar(v: number): FamilyRows {
  return { keys: [''], labels: [[]], values: Float64Array.of(v) };
}

/**
 * Publishes precomputed histogram numbers through prom-client: `zero()`
 * creates the label set's entry, whose per-bucket counts, sum and count
 * are then set (prom-client keeps per-bucket, non-cumulative counts).
 */
function setHistogram(h: Histogram<string>, labels: Record<string, string>, bounds: readonly number[], v: Float64Array, off: number): void {
  h.zero(labels);
  const map = (h as unknown as { hashMap: Record<string, { labels: object; bucketValues: Record<string, number>; sum: number; count: number }> }).hashMap;
  let entry: { labels: object; bucketValues: Record<string, number>; sum: number; count: number } | undefined;
  for (const k in map) if (map[k].labels === labels) entry = map[k];
  if (entry === undefined) throw new Error('prom-client histogram internals changed');
  let prev = 0;
  for (let b = 0; b < bounds.length; b++) {
    entry.bucketValues[bounds[b]] = v[off + b] - prev;
    prev = v[off + b];
  }
  entry.count = v[off + bounds.length];
  entry.sum = v[off + bounds.length + 1];
}
