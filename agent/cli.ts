/**
 * `flowtap` command line. `main(argv)` returns the exit status:
 * 0 everything read, 1 some input damaged or unreadable (results still
 * written), 2 usage error. Errors are one line each on stderr.
 */
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { readCaptureFile } from './capture/file.js';
import type { ReadResult } from './capture/types.js';
import { Pipeline } from './pipeline.js';
import { DEFAULT_MAX_FLOWS, DEFAULT_TIMEOUTS, type FlowTimeouts } from './flows/table.js';
import { Summary } from '../exporters/summary.js';
import { LocalNets } from './flows/localnets.js';
import { LineWriter, flowRecordLine } from '../exporters/ndjson.js';
import { OffloadWriter, WORKER_SCRIPT } from '../exporters/ndjson-offload.js';
import { DEFAULT_MAX_SERIES, DEFAULT_TOP_FLOWS, FlowtapMetrics } from '../exporters/metrics.js';
import { OpenMetricsBackfill, type BackfillStats } from '../exporters/openmetrics.js';
import { parseListen, startHttpServer } from '../exporters/http.js';

export class UsageError extends Error {}

/** Default --step of --openmetrics, seconds. */
export const DEFAULT_STEP_SECONDS = 15;

const USAGE = `usage: flowtap analyze FILE... [options]

Reads capture files (pcap or pcapng, optionally gzip-compressed; - = stdin)
and reports every flow.

options:
  --json                      print the summary as one JSON document
  --flows PATH                write one NDJSON flow record per line (- = stdout)
  --max-flows N               live flows kept at most (default ${DEFAULT_MAX_FLOWS})
  --idle-timeout-tcp DUR      established TCP idle timeout (default ${DEFAULT_TIMEOUTS.tcpEstablished}s)
  --idle-timeout-tcp-closed DUR   after FIN both ways or RST (default ${DEFAULT_TIMEOUTS.tcpClosed}s)
  --idle-timeout-tcp-attempt DUR  not (yet) established (default ${DEFAULT_TIMEOUTS.tcpAttempt}s)
  --idle-timeout-udp DUR      (default ${DEFAULT_TIMEOUTS.udp}s)
  --idle-timeout-icmp DUR     (default ${DEFAULT_TIMEOUTS.icmp}s)
  --idle-timeout-other DUR    other IP protocols (default ${DEFAULT_TIMEOUTS.other}s)
  --active-timeout DUR        interim record for longer flows (default ${DEFAULT_TIMEOUTS.active}s, 0 = off)
  --local-net CIDR            this host's address or network (repeatable; an address is a /32 or /128);
                              decides inbound / outbound / forwarded / local (else SLL packet types do)
  --openmetrics PATH          write the metrics as OpenMetrics text with the capture's own timestamps,
                              sampled every --step of packet time (for promtool tsdb create-blocks-from)
  --step DUR                  sampling step of --openmetrics (default ${DEFAULT_STEP_SECONDS}s)
  --serve HOST:PORT           after the analysis, serve the final metrics on http://HOST:PORT/metrics
                              until interrupted (SIGINT / SIGTERM); port 0 picks a free port
  --max-series N              series per metric family at most, the rest folded into "other"
                              (default ${DEFAULT_MAX_SERIES})
  --top-flows K               flows in flowtap_top_flow_bytes (default ${DEFAULT_TOP_FLOWS}, 0 = off)
  -q, --quiet                 no summary on stdout
  -h, --help                  this text
  --version                   print the version

DUR is a number with an optional unit: ms, s, m, h, d (default s).
exit status: 0 all input read, 1 some input damaged (results still written), 2 usage error.
`;

/** Parses "300", "300s", "5m", "1.5h", "250ms" into seconds. */
export function parseDuration(text: string, field: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${field}: "${text}" is not a duration (examples: 30s, 5m, 250ms)`);
  const v = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? v / 1000 : unit === 'm' ? v * 60 : unit === 'h' ? v * 3600 : unit === 'd' ? v * 86400 : v;
}

function parsePositiveInt(text: string, field: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${field}: "${text}" is not a positive integer`);
  return Number(text);
}

function parseCount(text: string, field: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${field}: "${text}" is not a non-negative integer`);
  return Number(text);
}

export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

export interface AnalyzeConfig {
  files: string[];
  json: boolean;
  quiet: boolean;
  flows?: string;
  maxFlows: number;
  timeouts: FlowTimeouts;
  /** This host's addresses / the site's networks (CIDR or single addresses). */
  localNets: string[];
  /** OpenMetrics output path (--openmetrics). */
  openmetrics?: string;
  /** Sampling step of --openmetrics, seconds. */
  stepSeconds: number;
  /** HOST:PORT to serve the final metrics on (--serve). */
  serve?: string;
  maxSeries: number;
  topFlows: number;
}

export function parseAnalyzeArgs(args: string[]): AnalyzeConfig {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        flows: { type: 'string' },
        'max-flows': { type: 'string' },
        'idle-timeout-tcp': { type: 'string' },
        'idle-timeout-tcp-closed': { type: 'string' },
        'idle-timeout-tcp-attempt': { type: 'string' },
        'idle-timeout-udp': { type: 'string' },
        'idle-timeout-icmp': { type: 'string' },
        'idle-timeout-other': { type: 'string' },
        'active-timeout': { type: 'string' },
        'local-net': { type: 'string', multiple: true },
        openmetrics: { type: 'string' },
        step: { type: 'string' },
        serve: { type: 'string' },
        'max-series': { type: 'string' },
        'top-flows': { type: 'string' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (parsed.positionals.length === 0) throw new UsageError('analyze: no capture file given');
  const timeouts: FlowTimeouts = { ...DEFAULT_TIMEOUTS };
  const dur = (name: keyof typeof v, key: keyof FlowTimeouts) => {
    const x = v[name];
    if (typeof x === 'string') timeouts[key] = parseDuration(x, `--${name}`);
  };
  dur('idle-timeout-tcp', 'tcpEstablished');
  dur('idle-timeout-tcp-closed', 'tcpClosed');
  dur('idle-timeout-tcp-attempt', 'tcpAttempt');
  dur('idle-timeout-udp', 'udp');
  dur('idle-timeout-icmp', 'icmp');
  dur('idle-timeout-other', 'other');
  dur('active-timeout', 'active');
  const stepSeconds = v.step !== undefined ? parseDuration(v.step, '--step') : DEFAULT_STEP_SECONDS;
  if (!(stepSeconds >= 0.001)) throw new UsageError(`--step: "${v.step}" is shorter than 1 ms`);
  if (v.step !== undefined && v.openmetrics === undefined) throw new UsageError('--step: only with --openmetrics');
  if (v.serve !== undefined) {
    try {
      parseListen(v.serve);
    } catch (e) {
      throw new UsageError(`--serve: ${(e as Error).message}`);
    }
  }
  return {
    files: parsed.positionals,
    json: v.json === true,
    quiet: v.quiet === true,
    flows: v.flows,
    maxFlows: v['max-flows'] !== undefined ? parsePositiveInt(v['max-flows'], '--max-flows') : DEFAULT_MAX_FLOWS,
    timeouts,
    localNets: v['local-net'] ?? [],
    openmetrics: v.openmetrics,
    stepSeconds,
    serve: v.serve,
    maxSeries: v['max-series'] !== undefined ? parsePositiveInt(v['max-series'], '--max-series') : DEFAULT_MAX_SERIES,
    topFlows: v['top-flows'] !== undefined ? parseCount(v['top-flows'], '--top-flows') : DEFAULT_TOP_FLOWS,
  };
}

export interface AnalyzeResult {
  pipeline: Pipeline;
  /** The run summary; absent with --quiet, which prints none (its top-hosts aggregation is not free). */
  summary?: Summary;
  files: ReadResult[];
  /** 0 complete, 1 some input damaged. */
  status: number;
  /** The metrics (with --openmetrics or --serve). */
  metrics?: FlowtapMetrics;
  /** What --openmetrics wrote. */
  openmetrics?: BackfillStats;
}

export interface AnalyzeHooks {
  /** Where one-line errors go (default: stderr). */
  log?: (line: string) => void;
  /** Receives every NDJSON flow line (in addition to --flows). */
  onLine?: (line: string) => void;
  /** Builds the pipeline (tests substitute an instrumented one). */
  makePipeline?: (opts: ConstructorParameters<typeof Pipeline>[0]) => Pipeline;
}

/** Runs an analysis; writes flows as configured, returns the results (no summary printing). */
export async function analyze(cfg: AnalyzeConfig, hooks: AnalyzeHooks = {}): Promise<AnalyzeResult> {
  const log = hooks.log ?? ((l: string) => process.stderr.write(l + '\n'));
  let localNets: LocalNets;
  try {
    localNets = LocalNets.parse(cfg.localNets);
  } catch (e) {
    throw new UsageError(`--local-net: ${(e as Error).message}`);
  }
  const popts = { maxFlows: cfg.maxFlows, timeouts: cfg.timeouts, localNets };
  const pipeline = hooks.makePipeline ? hooks.makePipeline(popts) : new Pipeline(popts);
  const summary = cfg.quiet ? undefined : new Summary();
  let writer: LineWriter | undefined;
  let offload: OffloadWriter | undefined;
  const onLine = hooks.onLine;
  if (cfg.flows !== undefined) {
    if (!onLine && useFlowsWorker()) {
      // The worker writes the records and counts the summary's per-flow part too.
      const o = (offload = new OffloadWriter(cfg.flows, pipeline, flowsRingSlots(), summary));
      pipeline.onFlowReport((t, s, reason, final) => o.record(t, s, reason, final));
    } else writer = new LineWriter(cfg.flows);
  }
  if (summary && !offload) pipeline.onFlowReport(summary.listener);
  if (writer || onLine) {
    const w = writer;
    const ctx = { clock: pipeline.clock, interfaceName: (i: number) => pipeline.interfaceName(i) };
    pipeline.onFlowReport((t, s, reason, final) => {
      w?.record(t, s, reason, final, ctx);
      if (onLine) onLine(flowRecordLine(t, s, reason, final, ctx));
    });
  }
  let metrics: FlowtapMetrics | undefined;
  let backfill: OpenMetricsBackfill | undefined;
  if (cfg.openmetrics !== undefined || cfg.serve !== undefined) {
    // process_/nodejs_ defaults only when serving (they describe this process, not the capture).
    metrics = new FlowtapMetrics(pipeline, { maxSeries: cfg.maxSeries, topFlows: cfg.topFlows, defaultMetrics: cfg.serve !== undefined });
    if (cfg.openmetrics !== undefined) backfill = new OpenMetricsBackfill(metrics, pipeline, cfg.openmetrics, cfg.stepSeconds);
  }
  let openmetrics: BackfillStats | undefined;
  const files: ReadResult[] = [];
  let status = 0;
  const progress = process.stderr.isTTY && !cfg.json ? startProgress(pipeline) : undefined;
  try {
    for (const f of cfg.files) {
      const firstIf = pipeline.interfaces.length;
      const r = await readCaptureFile(f, pipeline);
      files.push(r);
      if (r.error) {
        status = 1;
        progress?.clear();
        log(`flowtap: ${r.error.message}`);
      }
      const unsupported = new Set<number>();
      for (let i = firstIf; i < pipeline.interfaces.length; i++) {
        const lt = pipeline.interfaces[i].linktype;
        if (pipeline.ifPackets[i] > 0 && !pipeline.isSupportedLinktype(lt)) unsupported.add(lt);
      }
      for (const lt of unsupported) log(`flowtap: ${f}: link type ${lt} is not supported; its packets are counted as unsupported_linktype`);
    }
    pipeline.finish();
    openmetrics = backfill?.finish();
  } finally {
    backfill?.abort();
    progress?.stop();
    writer?.close();
    await offload?.close();
  }
  return { pipeline, summary, files, status, metrics, openmetrics };
}

/**
 * Whether `--flows` records are encoded on a worker thread (ndjson-offload.ts):
 * with two or more CPUs, unless FLOWTAP_FLOWS_WORKER=0 (1 forces it), and
 * only from the compiled build (the worker is a .js file of its own).
 */
function useFlowsWorker(): boolean {
  const v = process.env.FLOWTAP_FLOWS_WORKER;
  if (v === '0' || !existsSync(fileURLToPath(WORKER_SCRIPT))) return false;
  return v === '1' || availableParallelism() >= 2;
}

/** Ring slots between the capture thread and the NDJSON worker (FLOWTAP_FLOWS_RING, default 4096). */
function flowsRingSlots(): number {
  const n = Number(process.env.FLOWTAP_FLOWS_RING ?? 4096);
  return Number.isInteger(n) && n >= 1 && n <= 1 << 20 ? n : 4096;
}

function startProgress(p: Pipeline): { stop(): void; clear(): void } {
  const start = Date.now();
  const clear = () => process.stderr.write('\r\x1b[K');
  const timer = setInterval(() => {
    const s = (Date.now() - start) / 1000;
    process.stderr.write(`\r\x1b[K${p.packets.toLocaleString('en-US')} packets, ${p.table.count.toLocaleString('en-US')} live flows, ${(p.packets / s / 1e6).toFixed(2)} Mpps`);
  }, 500);
  timer.unref();
  return {
    clear,
    stop() {
      clearInterval(timer);
      clear();
    },
  };
}

/** Serves the final metrics until SIGINT or SIGTERM (`--serve`). */
async function serveUntilSignal(listen: string, metrics: FlowtapMetrics): Promise<void> {
  let stop!: () => void;
  const stopped = new Promise<void>((ok) => (stop = ok));
  const signals = ['SIGINT', 'SIGTERM'] as const;
  for (const s of signals) process.once(s, stop);
  try {
    const srv = await startHttpServer({ listen, registry: metrics.registry });
    const host = srv.address.includes(':') ? `[${srv.address}]` : srv.address;
    process.stderr.write(`flowtap: serving the final metrics on http://${host}:${srv.port}/metrics until interrupted\n`);
    await stopped;
    await srv.close();
  } finally {
    for (const s of signals) process.off(s, stop);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === '--version' || cmd === 'version') {
      process.stdout.write(`flowtap ${version()}\n`);
      return 0;
    }
    if (cmd === 'run') return (await import('./run.js')).runMain(rest);
    if (cmd !== 'analyze') throw new UsageError(`unknown command "${cmd}" (try: flowtap analyze FILE, or flowtap run -i IFACE)`);
    if (rest.includes('-h') || rest.includes('--help')) {
      process.stdout.write(USAGE);
      return 0;
    }
    const cfg = parseAnalyzeArgs(rest);
    const res = await analyze(cfg);
    if (res.summary) {
      const out = cfg.json ? JSON.stringify(res.summary.toJSON(res.pipeline, res.files)) + '\n' : res.summary.toText(res.pipeline, res.files);
      // With flow records on stdout, the summary goes to stderr so stdout stays NDJSON.
      if (cfg.flows === '-') process.stderr.write(out);
      else process.stdout.write(out);
    }
    if (res.openmetrics && !cfg.quiet) {
      const om = res.openmetrics;
      const range = Number.isNaN(om.firstTs) ? 'no samples' : `${new Date(om.firstTs * 1000).toISOString()} .. ${new Date(om.lastTs * 1000).toISOString()} (Grafana: from=${Math.floor(om.firstTs * 1000)}&to=${Math.ceil(om.lastTs * 1000)})`;
      process.stderr.write(`flowtap: ${om.path}: ${om.samples.toLocaleString('en-US')} samples at ${om.steps} steps, ${om.bytes.toLocaleString('en-US')} bytes; ${range}\n`);
    }
    if (cfg.serve !== undefined && res.metrics) await serveUntilSignal(cfg.serve, res.metrics);
    return res.status;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`flowtap: ${e.message}\n`);
      return 2;
    }
    const err = e as NodeJS.ErrnoException;
    const prefix = err.code && !String(err.message).startsWith(err.code) ? `${err.code}: ` : '';
    process.stderr.write(`flowtap: ${prefix}${err.message}\n`);
    return 1;
  }
}
