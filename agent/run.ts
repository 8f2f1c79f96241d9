/**
 * `flowtap run`: the live host agent. Captures on one or more interfaces
 * (agent/capture/live.ts), feeds one Pipeline (each interface declared
 * once), serves Prometheus metrics (exporters/metrics.ts, exporters/http.ts)
 * and appends ended flows to --flows as NDJSON.
 *
 * Time. Packet time drives the flow table, as for files. While no packets
 * arrive, a wall-clock tick (every second) advances the table to
 * `now - CAPTURE_LATENCY` on the pipeline clock, so idle flows still end on
 * time; the latency margin covers packets still in a kernel block that is
 * not handed over yet (block timeout CAPTURE_TIMEOUT_MS).
 *
 * Several interfaces. Each capture hands over packets in batches; a
 * forwarded packet is seen on its way in and on its way out, in two
 * different batches. To count it once the flow table must see the copies
 * close together, so packets of several captures go through a reorder
 * queue (bounded: QUEUE_BYTES in all) and reach the pipeline in timestamp
 * order, each once every capture has passed its time or MERGE_DELAY_MS of
 * wall time went by. When a queue is full its oldest packets are processed
 * early (out of order, counted in flowtap_capture_reordered_packets_total);
 * no packet is dropped in user space. With one capture (or `any`) packets
 * go straight to the pipeline.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ConfigError, loadConfig, parseListen, runUsage, type Config } from './config.js';
import { LiveCaptureError, openLive, type LiveCapture, type LiveStats } from './capture/live.js';
import type { InterfaceInfo, PacketSink } from './capture/types.js';
import { Pipeline } from './pipeline.js';
import { LocalNets, isLoopback } from './flows/localnets.js';
import { IfAddrs } from './ifaddrs.js';
import { ProcResolver } from './procs.js';
import type { Packet } from '../parsers/packet.js';
import { PROTO_TCP, PROTO_UDP } from '../parsers/packet.js';
import type { FlowTableOptions } from './flows/table.js';
import { flowRecordLine, writeAllSync, type RecordContext } from '../exporters/ndjson.js';
import { FlowtapMetrics } from '../exporters/metrics.js';
import { startHttpServer } from '../exporters/http.js';

/** Longest wait for a partly filled kernel block (TPACKET_V3), ms. */
export const CAPTURE_TIMEOUT_MS = 50;
/**
 * Wall time after which a queued packet is processed even if another capture
 * has not passed its time: the lateness allowed to a batch (kernel block
 * timeout plus event-loop delay). Measured with the namespace end-to-end
 * test on a busy 2-core machine: 250 ms let a late batch through out of
 * order in about 1 run of 4, 500 ms in none of 10.
 */
export const MERGE_DELAY_MS = 500;
/** How far behind the wall clock the idle tick keeps the flow table, ms. */
export const CAPTURE_LATENCY_MS = MERGE_DELAY_MS;
/** Reorder queue (several interfaces only), all captures together. */
export const QUEUE_BYTES = 64 << 20;
export const TICK_MS = 1000;
/** Hard limit for a graceful stop. */
export const SHUTDOWN_MS = 5000;
/** A failed capture is reopened this often. */
export const REOPEN_MS = 5000;

/** A failure to start, printed as one line; exit status 1. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

// ------------------------------------------------------------------ NDJSON file

/** Appends lines to a file (or stdout for '-'); reopened on SIGHUP for logrotate. */
export class AppendWriter {
  private fd: number;
  private buf: string[] = [];
  private size = 0;
  lines = 0;
  errors = 0;

  constructor(readonly path: string, private readonly onError: (msg: string) => void) {
    this.fd = path === '-' ? 1 : openSync(path, 'a', 0o640);
  }

  write(line: string): void {
    this.buf.push(line);
    this.size += line.length + 1;
    this.lines++;
    if (this.size >= 256 << 10) this.flush();
  }

  flush(): void {
    if (this.buf.length === 0 || this.fd < 0) return;
    const data = Buffer.from(this.buf.join('\n') + '\n');
    this.buf = [];
    this.size = 0;
    try {
      writeAllSync(this.fd, data);
    } catch (e) {
      if (this.errors++ === 0) this.onError(`flows: writing ${this.path} failed: ${(e as Error).message} (records are lost until it works again)`);
    }
  }

  /** Closes and reopens the path (after logrotate moved the file away). */
  reopen(): void {
    this.flush();
    if (this.path === '-') return;
    const old = this.fd;
    this.fd = openSync(this.path, 'a', 0o640);
    closeSync(old);
    this.errors = 0;
  }

  close(): void {
    this.flush();
    if (this.fd > 2) closeSync(this.fd);
    this.fd = -1;
  }
}

// ------------------------------------------------------------------ pipeline with a new-local-flow hook

/**
 * The pipeline, plus one check per transport layer: when that layer started
 * a flow with a local end (TCP/UDP), `onLocalFlow` is called (process
 * attribution scans /proc then). Nothing else differs.
 */
export class LivePipeline extends Pipeline {
  onLocalFlow: (() => void) | undefined;

  override layer(p: Packet): number {
    const table = this.table;
    const n = table.flowsStarted;
    const id = super.layer(p);
    if (table.flowsStarted !== n && this.onLocalFlow !== undefined && (p.proto === PROTO_TCP || p.proto === PROTO_UDP)) {
      const nets = table.localNets;
      const v = p.ipVersion;
      if (nets.contains(v, p.addr, 0) || nets.contains(v, p.addr, 4) || isLoopback(v, p.addr, 0)) this.onLocalFlow();
    }
    return id;
  }
}

// ------------------------------------------------------------------ reorder queue (several captures)

const HDR = 16;
const WRAP = 0xffffffff;

class CaptureQueue {
  readonly buf: Buffer;
  readonly u32: Uint32Array;
  head = 0;
  tail = 0;
  count = 0;
  /** Newest packet time pushed, ns relative to the merger's base. */
  last = -Infinity;
  ifIndex = -1;

  constructor(readonly size: number) {
    this.buf = Buffer.alloc(size);
    this.u32 = new Uint32Array(this.buf.buffer, this.buf.byteOffset, size >>> 2);
  }

  /** Room for a record of `rec` bytes at `tail` (wrapping if needed)? */
  reserve(rec: number): boolean {
    if (this.count === 0) {
      this.head = this.tail = 0;
      return rec <= this.size;
    }
    if (this.tail > this.head) {
      if (this.size - this.tail >= rec) return true;
      if (this.head >= rec) {
        if (this.size - this.tail >= 4) this.u32[this.tail >>> 2] = WRAP;
        this.tail = 0;
        return true;
      }
      return false;
    }
    return this.head - this.tail >= rec;
  }

  /** Offset of the head record (after skipping a wrap). */
  headOff(): number {
    if (this.size - this.head < HDR || this.u32[this.head >>> 2] === WRAP) this.head = 0;
    return this.head;
  }
}

/**
 * Merges the packets of several captures into timestamp order before the
 * pipeline sees them. Each capture gets a PacketSink from `sinkFor`.
 */
export class Merger {
  private readonly queues: CaptureQueue[] = [];
  /** Epoch second that relative time 0 stands for. */
  private readonly base = Math.floor(Date.now() / 1000);
  private lastOut = -Infinity;
  private scheduled = false;
  /** Packets processed before their turn (queue full or late arrival). */
  reordered = 0;
  forced = 0;

  constructor(private readonly pipeline: Pipeline, captures: number, totalBytes: number, private readonly delayNs: number) {
    const each = Math.max(1 << 20, Math.floor(totalBytes / captures / 4) * 4);
    for (let i = 0; i < captures; i++) this.queues.push(new CaptureQueue(each));
  }

  get queued(): number {
    let n = 0;
    for (const q of this.queues) n += q.count;
    return n;
  }

  sinkFor(i: number): PacketSink {
    const q = this.queues[i];
    const pipeline = this.pipeline;
    return {
      addInterface: (info: InterfaceInfo): number => (q.ifIndex = pipeline.addInterface(info)),
      packet: (buf, off, caplen, wirelen, tsSec, tsNsec) => this.push(q, buf, off, caplen, wirelen, tsSec, tsNsec),
    };
  }

  /** Setting the index of a reopened capture (its interface was declared already). */
  queueIndex(i: number): number {
    return this.queues[i].ifIndex;
  }

  private push(q: CaptureQueue, buf: Uint8Array, off: number, caplen: number, wirelen: number, sec: number, nsec: number): void {
    const rec = HDR + ((caplen + 3) & ~3);
    if (!q.reserve(rec)) {
      // Full: process the oldest packets now, whatever the watermark.
      do {
        if (!this.releaseOne(Infinity)) break;
        this.forced++;
      } while (!q.reserve(rec));
      // The pipeline may hold references into the slots just freed.
      this.pipeline.flush();
    }
    const o = q.tail;
    const w = o >>> 2;
    q.u32[w] = caplen;
    q.u32[w + 1] = wirelen;
    q.u32[w + 2] = sec;
    q.u32[w + 3] = nsec;
    q.buf.set(buf.subarray(off, off + caplen), o + HDR);
    q.tail = o + rec;
    q.count++;
    const t = (sec - this.base) * 1e9 + nsec;
    if (t > q.last) q.last = t;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.release();
      });
    }
  }

  private timeOf(q: CaptureQueue): number {
    const w = q.headOff() >>> 2;
    return (q.u32[w + 2] - this.base) * 1e9 + q.u32[w + 3];
  }

  /** Hands the oldest queued packet to the pipeline if it is at or before `limit`. */
  private releaseOne(limit: number): boolean {
    let best: CaptureQueue | undefined;
    let bestT = Infinity;
    for (const q of this.queues) {
      if (q.count === 0) continue;
      const t = this.timeOf(q);
      if (t < bestT) {
        bestT = t;
        best = q;
      }
    }
    if (!best || bestT > limit) return false;
    const o = best.head;
    const w = o >>> 2;
    const u = best.u32;
    const caplen = u[w];
    if (bestT < this.lastOut) this.reordered++;
    else this.lastOut = bestT;
    this.pipeline.packet(best.buf, o + HDR, caplen, u[w + 1], u[w + 2], u[w + 3], best.ifIndex);
    best.head = o + HDR + ((caplen + 3) & ~3);
    best.count--;
    return true;
  }

  /** Processes every packet that no capture can still precede. */
  release(nowMs = Date.now()): void {
    const wall = (nowMs / 1000 - this.base) * 1e9 - this.delayNs;
    let limit = Infinity;
    for (const q of this.queues) limit = Math.min(limit, Math.max(q.last, wall));
    let n = 0;
    while (this.releaseOne(limit)) n++;
    if (n > 0) this.pipeline.flush();
  }

  /** Processes everything queued (shutdown). */
  drain(): void {
    while (this.releaseOne(Infinity));
    this.pipeline.flush();
  }
}

// ------------------------------------------------------------------ the agent

interface CaptureState {
  device: string;
  index: number;
  cap: LiveCapture | undefined;
  /** Pipeline interface index once declared. */
  ifIndex: number | undefined;
  error: string | undefined;
  retry: NodeJS.Timeout | undefined;
  /** Counters of closed (failed) handles, added to the current one's. */
  carried: { dropped: number; ifDropped: number; received: number; packets: number };
}

export interface AgentHooks {
  log?: (line: string) => void;
}

/** A one-line fix for each capture failure. */
function captureFix(e: LiveCaptureError): string {
  switch (e.reason) {
    case 'no_such_device':
      return ' (fix: -i/--interface with one of these, or `any`)';
    case 'permission_denied':
      return /CAP_NET_ADMIN/.test(e.message)
        ? ' (fix: grant CAP_NET_ADMIN, or run with --no-promisc)'
        : ' (fix: run as root, or give the process CAP_NET_RAW: AmbientCapabilities=CAP_NET_RAW in systemd, `setcap cap_net_raw+ep` on the node binary, or --cap-add NET_RAW in a container)';
    case 'bad_filter':
      return ' (fix: correct -f/--filter; the syntax is tcpdump\'s, see `man pcap-filter`)';
    case 'interface_down':
      return ` (fix: \`ip link set ${e.device} up\`, or capture on another interface)`;
    default:
      return '';
  }
}

export class Agent {
  readonly pipeline: LivePipeline;
  readonly metrics: FlowtapMetrics;
  readonly procs: ProcResolver | undefined;
  readonly ifaddrs: IfAddrs | undefined;
  private readonly captures: CaptureState[] = [];
  private merger: Merger | undefined;
  private writer: AppendWriter | undefined;
  private server: { address: string; port: number; close(): Promise<void> } | undefined;
  private tick: NodeJS.Timeout | undefined;
  private mergeTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private readonly log: (line: string) => void;

  constructor(readonly config: Config, hooks: AgentHooks = {}) {
    this.log = hooks.log ?? ((l) => process.stderr.write(`flowtap: ${l}\n`));
    const fixedNets = config.localNets.length > 0;
    const localNets = fixedNets ? LocalNets.parse(config.localNets) : new LocalNets();
    const popts: FlowTableOptions = { maxFlows: config.maxFlows, timeouts: config.timeouts, localNets };
    this.pipeline = new LivePipeline(popts);
    if (!fixedNets) {
      this.ifaddrs = new IfAddrs(localNets, {
        intervalMs: config.addrRefresh * 1000,
        onChange: (added, removed) => this.log(`interface addresses changed:${added.length ? ` added ${added.join(' ')}` : ''}${removed.length ? ` removed ${removed.join(' ')}` : ''}`),
      });
    }
    if (config.processes) {
      const t = config.timeouts;
      const longestIdle = Math.max(t.tcpEstablished, t.tcpClosed, t.tcpAttempt, t.udp, t.icmp, t.other);
      this.procs = new ProcResolver({
        procRoot: config.proc,
        minIntervalMs: config.procInterval * 1000,
        retainMs: Math.max(600, longestIdle + 60) * 1000,
      });
      const procs = this.procs;
      this.pipeline.onLocalFlow = () => procs.requestRefresh();
    }
    const procs = this.procs;
    this.metrics = new FlowtapMetrics(this.pipeline, {
      maxSeries: config.maxSeries,
      topFlows: config.topFlows,
      ...(procs ? { processOf: (t, s) => procs.ownerOf(t, s)?.comm ?? '' } : {}),
    });
    this.agentMetrics(this.metrics.registry);
  }

  /** Metrics of the agent itself (capture state, reorder queue, /proc scans), read at scrape time. */
  private agentMetrics(registry: Registry): void {
    const self = this;
    new Gauge({
      name: 'flowtap_capture_up',
      help: 'Whether the capture on an interface is open (1) or failed and being retried (0).',
      labelNames: ['interface'],
      registers: [registry],
      collect() {
        for (const c of self.captures) this.set({ interface: c.device }, c.cap && !c.cap.closed ? 1 : 0);
      },
    });
    new Counter({
      name: 'flowtap_capture_reordered_packets_total',
      help: 'Packets of several interfaces processed out of timestamp order (reorder queue full, or a capture delivered later than the merge delay); forwarded copies among them may be counted twice.',
      registers: [registry],
      collect() {
        this.reset();
        if (self.merger) this.inc(self.merger.reordered);
      },
    });
    if (this.procs) {
      const procs = this.procs;
      new Counter({
        name: 'flowtap_process_scans_total',
        help: 'Scans of /proc for process attribution of local flows.',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(procs.stats.scans);
        },
      });
      new Counter({
        name: 'flowtap_process_scan_seconds_total',
        help: 'Time spent scanning /proc (in a worker thread, not the capture thread).',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(procs.stats.totalMs / 1000);
        },
      });
    }
  }

  /** Opens everything; throws StartupError (one line, with the fix) when something cannot start. */
  async start(): Promise<void> {
    const cfg = this.config;
    this.ifaddrs?.start();
    if (this.procs) {
      try {
        readFileSync(`${cfg.proc}/net/tcp`);
      } catch (e) {
        this.ifaddrs?.shutdown();
        throw new StartupError(`proc: cannot read ${cfg.proc}/net/tcp: ${(e as Error).message} (fix: point --proc/FLOWTAP_PROC at a procfs mount, or turn attribution off with --no-processes)`);
      }
    }
    if (cfg.flows !== undefined) {
      try {
        this.writer = new AppendWriter(cfg.flows, (m) => this.log(m));
      } catch (e) {
        this.ifaddrs?.shutdown();
        throw new StartupError(`flows: cannot open ${cfg.flows} for appending: ${(e as Error).message} (fix: create the directory or choose a writable --flows path)`);
      }
      const w = this.writer;
      const procs = this.procs;
      const pipeline = this.pipeline;
      const ctx: RecordContext = {
        clock: pipeline.clock,
        interfaceName: (i) => pipeline.interfaceName(i),
        ...(procs ? { processOf: (t, s) => procs.ownerOf(t, s) } : {}),
      };
      pipeline.onFlowReport((t, s, reason, final) => w.write(flowRecordLine(t, s, reason, final, ctx)));
    }

    const { host, port } = parseListen(cfg.listen);
    try {
      this.server = await startHttpServer({ listen: cfg.listen, registry: this.metrics.registry, health: () => this.health() });
    } catch (e) {
      this.writer?.close();
      this.ifaddrs?.shutdown();
      const err = e as NodeJS.ErrnoException;
      const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      const fix = err.code === 'EADDRINUSE' ? 'address already in use (fix: stop the other process or choose another --listen HOST:PORT)'
        : err.code === 'EACCES' ? `permission denied (fix: use a port above 1023, or grant CAP_NET_BIND_SERVICE)`
        : err.code === 'EADDRNOTAVAIL' ? 'no such local address (fix: --listen with an address of this host, e.g. 127.0.0.1:9877 or :9877)'
        : err.message;
      throw new StartupError(`listen: cannot listen on ${where}: ${fix}`);
    }

    const n = cfg.interfaces.length;
    if (n > 1) this.merger = new Merger(this.pipeline, n, QUEUE_BYTES, MERGE_DELAY_MS * 1e6);
    try {
      for (let i = 0; i < n; i++) {
        const st: CaptureState = {
          device: cfg.interfaces[i], index: i, cap: undefined, ifIndex: undefined, error: undefined, retry: undefined,
          carried: { dropped: 0, ifDropped: 0, received: 0, packets: 0 },
        };
        this.captures.push(st);
        try {
          this.open(st);
        } catch (e) {
          // An interface that exists but is down is waited for (retried), not fatal.
          if (!(e instanceof LiveCaptureError) || e.reason !== 'interface_down') throw e;
          this.onCaptureError(st, e, captureFix(e));
        }
      }
    } catch (e) {
      for (const c of this.captures) {
        if (c.retry) clearTimeout(c.retry);
        c.cap?.close();
      }
      await this.server.close();
      this.writer?.close();
      this.ifaddrs?.shutdown();
      if (e instanceof LiveCaptureError) throw new StartupError(`${e.message}${captureFix(e)}`);
      throw e;
    }

    // Timers fire before libuv's poll phase reads the captures; release and
    // advance from the check phase (setImmediate) that follows it, so after
    // a stall every packet the kernel already handed over is queued first.
    this.tick = setInterval(() => setImmediate(() => this.onTick()), TICK_MS);
    if (this.merger) {
      const m = this.merger;
      this.mergeTimer = setInterval(() => setImmediate(() => m.release()), 20);
    }
    const caps = this.captures.map((c) => `${c.device} (${c.cap ? c.cap.dltName ?? c.cap.linktype : 'down, retrying'})`).join(', ');
    const addr = this.server.address.includes(':') ? `[${this.server.address}]` : this.server.address;
    this.log(`capturing on ${caps}, snaplen ${cfg.snaplen}, buffer ${cfg.bufferSize} bytes${cfg.promisc ? '' : ', not promiscuous'}${cfg.filter ? `, filter "${cfg.filter}"` : ''}; `
      + `metrics on http://${addr}:${this.server.port}/metrics${this.writer ? `; flows to ${cfg.flows}` : ''}`);
  }

  /** Opens (or reopens) one capture; throws LiveCaptureError. */
  private open(st: CaptureState): void {
    const cfg = this.config;
    const sink: PacketSink = this.merger ? this.merger.sinkFor(st.index) : this.pipeline;
    const base = {
      device: st.device,
      filter: cfg.filter,
      snaplen: cfg.snaplen,
      bufferSize: cfg.bufferSize,
      promisc: cfg.promisc,
      timeoutMs: CAPTURE_TIMEOUT_MS,
      ...(st.ifIndex !== undefined ? { ifIndex: st.ifIndex } : {}),
      onError: (e: LiveCaptureError) => this.onCaptureError(st, e),
    };
    let cap: LiveCapture;
    if (st.device === 'any') {
      // SLL2 carries the interface index too; older libpcap: its default (SLL).
      try {
        cap = openLive({ ...base, datalink: 276 }, sink);
      } catch (e) {
        if (!(e instanceof LiveCaptureError) || e.reason !== 'open_failed') throw e;
        cap = openLive(base, sink);
      }
    } else {
      cap = openLive(base, sink);
    }
    st.cap = cap;
    st.ifIndex = cap.ifIndex;
    st.error = undefined;
  }

  private onCaptureError(st: CaptureState, e: LiveCaptureError, fix = ''): void {
    if (this.stopping) return;
    const s = st.cap?.stats();
    if (s) {
      st.carried.dropped += s.dropped;
      st.carried.ifDropped += s.ifDropped;
      st.carried.received += s.received;
      st.carried.packets += s.packets;
    }
    st.cap = undefined;
    st.error = e.message;
    this.log(`${e.message}; retrying every ${REOPEN_MS / 1000}s${fix}`);
    const retry = (): void => {
      st.retry = undefined;
      if (this.stopping) return;
      try {
        this.open(st);
        this.log(`capture on "${st.device}" resumed`);
      } catch (err) {
        st.error = (err as Error).message;
        st.retry = setTimeout(retry, REOPEN_MS);
      }
    };
    st.retry = setTimeout(retry, REOPEN_MS);
  }

  health(): { ok: boolean; detail?: string } {
    const bad = this.captures.filter((c) => !c.cap || c.cap.closed);
    if (this.stopping) return { ok: false, detail: 'stopping' };
    if (bad.length === 0) return { ok: true, detail: `capturing on ${this.captures.map((c) => c.device).join(', ')}` };
    return { ok: false, detail: bad.map((c) => `${c.device}: ${c.error ?? 'closed'}`).join('; ') };
  }

  /** Kernel, interface and queue drops so far of one capture (including handles that failed). */
  captureStats(st: CaptureState): LiveStats & { queue: number } {
    const s = st.cap?.stats() ?? { received: 0, dropped: 0, ifDropped: 0, packets: 0, batches: 0 };
    return {
      received: s.received + st.carried.received,
      dropped: s.dropped + st.carried.dropped,
      ifDropped: s.ifDropped + st.carried.ifDropped,
      packets: s.packets + st.carried.packets,
      batches: s.batches,
      queue: 0,
    };
  }

  private publishStats(): void {
    for (const c of this.captures) {
      const s = this.captureStats(c);
      this.metrics.setCaptureStats(c.device, { kernel: s.dropped, interface: s.ifDropped, queue: s.queue });
    }
  }

  /** Every second: idle flows end on wall-clock time, stats and the flows file are brought up to date. */
  private onTick(): void {
    if (this.stopping) return;
    this.merger?.release();
    const clock = this.pipeline.clock;
    if (clock.base === clock.base) {
      const ms = Date.now() - CAPTURE_LATENCY_MS;
      const sec = Math.floor(ms / 1000);
      const t = clock.toNs(sec, (ms - sec * 1000) * 1e6);
      if (t > this.pipeline.table.clock) this.pipeline.table.advance(t);
    }
    this.publishStats();
    this.writer?.flush();
  }

  /** SIGHUP: reopen the flows file. */
  reopenFlows(): void {
    if (!this.writer) return;
    try {
      this.writer.reopen();
      this.log(`flows: reopened ${this.writer.path}`);
    } catch (e) {
      this.log(`flows: cannot reopen ${this.writer.path}: ${(e as Error).message}; still writing to the old file`);
    }
  }

  /**
   * Stops capturing, reports every live flow, writes and closes the flows
   * file, lets an in-flight scrape finish, closes the listener. Idempotent.
   */
  shutdown(): Promise<void> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<void> {
    if (this.tick) clearInterval(this.tick);
    if (this.mergeTimer) clearInterval(this.mergeTimer);
    this.ifaddrs?.shutdown();
    for (const c of this.captures) {
      if (c.retry) clearTimeout(c.retry);
      c.cap?.close();
    }
    this.merger?.drain();
    this.pipeline.finish();
    this.publishStats();
    this.writer?.close();
    // close() lets a scrape in flight get its answer before the server goes.
    await this.server?.close();
    await this.procs?.shutdown();
  }
}

/** `flowtap run ARGS`: returns the exit status (0 after a signal, 1 start-up failure, 2 bad configuration). */
export async function runMain(argv: string[]): Promise<number> {
  const log = (l: string): void => void process.stderr.write(`flowtap: ${l}\n`);
  let config: Config;
  try {
    const loaded = loadConfig(argv, process.env);
    if (loaded.help) {
      process.stdout.write(runUsage());
      return 0;
    }
    config = loaded.config;
  } catch (e) {
    if (e instanceof ConfigError) {
      log(e.message);
      return 2;
    }
    throw e;
  }

  const agent = new Agent(config, { log });
  // Handlers first: a signal during start-up must not kill the process with
  // the default action (flows and the listener are then cleaned up too).
  let signals = 0;
  let started = false;
  let resolveRun: (code: number) => void = () => {};
  const done = new Promise<number>((r) => (resolveRun = r));
  const stop = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log(`${sig} again: exiting now`);
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    }
    log(`${sig}: stopping (flushing flows; a second signal exits at once)`);
    if (!started) return; // start() sees `signals` and stops right after
    finish();
  };
  const finish = (): void => {
    const deadline = setTimeout(() => {
      log(`stopping took longer than ${SHUTDOWN_MS / 1000}s; exiting`);
      process.exit(1);
    }, SHUTDOWN_MS);
    agent.shutdown().then(
      () => {
        clearTimeout(deadline);
        log(`stopped: ${agent.pipeline.packets} packets, ${agent.pipeline.table.flowsStarted} flows`);
        // Anything left holding the event loop must not keep us alive.
        setTimeout(() => process.exit(0), 1000).unref();
        resolveRun(0);
      },
      (e: unknown) => {
        clearTimeout(deadline);
        log(`stopping failed: ${(e as Error)?.message ?? String(e)}`);
        resolveRun(1);
      },
    );
  };
  const hup = (): void => agent.reopenFlows();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', hup);
  const detach = (): void => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    process.off('SIGHUP', hup);
  };

  try {
    await agent.start();
  } catch (e) {
    detach();
    if (e instanceof StartupError) {
      log(e.message);
      return 1;
    }
    throw e;
  }
  started = true;
  if (signals > 0) finish();
  const code = await done;
  process.off('SIGHUP', hup);
  return code;
}
