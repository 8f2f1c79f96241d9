/**
 * `npm run bench`: end-to-end benchmarks on one large deterministic capture.
 *
 *   node dist/bench/run.js [SECTION...] [--packets N] [--flows N] [--seed N]
 *                          [--runs 3] [--regen] [--file PATH] [--timeout SEC]
 *
 * Sections (default: all):
 *   reader      bench/readers.ts benchReaders(): read + walk records, no decode
 *   floor       bench/floor.ts: reader + decoder + the plainest flow count (no flow
 *               semantics, no output): what no full flow monitor can beat here
 *   e2e         flowtap analyze FILE --flows /dev/null --json
 *   e2e-1t      the same on one thread (FLOWTAP_FLOWS_WORKER=0: records encoded in the capture thread)
 *   ndjson      flowtap analyze FILE --flows bench/out/flows.ndjson --json
 *   softflowd   C reference: softflowd -r FILE (flows kept in memory, nothing sent)
 *   nfpcapd     C reference: nfpcapd -r FILE -w DIR (nfcapd files written)
 *   ref         softflowd + nfpcapd
 *
 * Every run is a child process; wall time is spawn to exit, peak RSS and CPU
 * come from /usr/bin/time (or, without it, from polling /proc/PID). Prints a
 * table and writes bench/out/results.json. Prints numbers; never fails on
 * speed (the exit status is 1 only when a benchmark could not run at all).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_FLOWS, DEFAULT_PACKETS, DEFAULT_SEED, GENERATOR_VERSION, generateBenchCapture, type BenchCaptureStats } from './gen.js';

/** Repository root (this file runs as dist/bench/run.js). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT_DIR = join(ROOT, 'bench', 'out');
const TIME_BIN = '/usr/bin/time';
const TIME_MARK = '@@flowtap-bench@@';

const SECTIONS = ['reader', 'floor', 'e2e', 'e2e-1t', 'ndjson', 'softflowd', 'nfpcapd'] as const;
type Section = (typeof SECTIONS)[number];
const ALIASES: Record<string, Section[]> = {
  all: [...SECTIONS],
  ref: ['softflowd', 'nfpcapd'],
  'e2e-ndjson': ['ndjson'],
  readers: ['reader'],
};

interface Options {
  sections: Section[];
  packets: number;
  flows: number;
  seed: number;
  runs: number;
  regen: boolean;
  file?: string;
  timeoutSec: number;
  /** Run node benchmarks once under --cpu-prof and print their hottest functions. */
  cpuProf: boolean;
}

const USAGE = `usage: node dist/bench/run.js [SECTION...] [options]

sections (default all): ${SECTIONS.join(', ')}; ref = softflowd + nfpcapd

options:
  --packets N     packets in the generated capture (default 10M; 100k, 2.5M, ... accepted)
  --flows N       concurrent flows in the generated capture (default 250k, scaled down
                  with --packets below 10M)
  --seed N        generator seed (default ${DEFAULT_SEED})
  --runs N        runs per benchmark (default 3)
  --regen         regenerate the capture even if it is up to date
  --file PATH     benchmark this capture instead of a generated one
  --timeout SEC   kill a run after this long (default 1800)
  --cpu-prof      run each node benchmark once under --cpu-prof (profiles in
                  bench/out/prof/SECTION/) and print its hottest functions
  -h, --help      this text
`;

class UsageError extends Error {}

function parseCount(name: string, v: string | undefined): number {
  if (v === undefined) throw new UsageError(`${name}: missing value`);
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v.replace(/_/g, ''));
  if (!m) throw new UsageError(`${name}: expected a number like 100000, 100k or 10M, got '${v}'`);
  const mult = m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6;
  return Math.round(Number(m[1]) * mult);
}

export function parseOptions(argv: string[]): Options {
  const sections = new Set<Section>();
  let packets = DEFAULT_PACKETS;
  let flows: number | undefined;
  let seed = DEFAULT_SEED;
  let runs = 3;
  let regen = false;
  let file: string | undefined;
  let timeoutSec = 1800;
  let cpuProf = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--packets') packets = parseCount(a, argv[++i]);
    else if (a === '--flows') flows = parseCount(a, argv[++i]);
    else if (a === '--seed') seed = parseCount(a, argv[++i]);
    else if (a === '--runs') runs = parseCount(a, argv[++i]);
    else if (a === '--timeout') timeoutSec = parseCount(a, argv[++i]);
    else if (a === '--regen') regen = true;
    else if (a === '--cpu-prof') cpuProf = true;
    else if (a === '--file') {
      file = argv[++i];
      if (!file) throw new UsageError('--file: missing path');
    } else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'`);
    else if ((SECTIONS as readonly string[]).includes(a)) sections.add(a as Section);
    else if (ALIASES[a]) for (const s of ALIASES[a]!) sections.add(s);
    else throw new UsageError(`unknown section '${a}' (sections: ${SECTIONS.join(', ')}, ref, all)`);
  }
  if (packets < 1) throw new UsageError('--packets: must be at least 1');
  if (runs < 1) throw new UsageError('--runs: must be at least 1');
  if (timeoutSec < 1) throw new UsageError('--timeout: must be at least 1');
  flows ??= defaultFlows(packets);
  return {
    sections: sections.size ? SECTIONS.filter((s) => sections.has(s)) : [...SECTIONS],
    packets,
    flows,
    seed,
    runs,
    regen,
    file,
    timeoutSec,
    cpuProf,
  };
}

/** 250k concurrent flows for 10M packets, proportionally fewer for smaller captures. */
function defaultFlows(packets: number): number {
  return Math.max(100, Math.round(DEFAULT_FLOWS * Math.min(1, packets / DEFAULT_PACKETS)));
}

/** 10000000 -> "10m", 100000 -> "100k", 1234567 -> "1234567". */
export function countLabel(n: number): string {
  if (n % 1_000_000 === 0) return `${n / 1_000_000}m`;
  if (n % 1_000 === 0) return `${n / 1_000}k`;
  return String(n);
}

// ------------------------------------------------------------------ capture

interface CaptureInfo {
  path: string;
  bytes: number;
  /** Packet records in the file, when known (generated, or counted while warming). */
  packets: number | null;
  generated: boolean;
  generator?: { version: number; packets: number; flows: number; seed: number; stats: BenchCaptureStats };
}

interface Meta {
  version: number;
  packets: number;
  flows: number;
  seed: number;
  stats: BenchCaptureStats;
}

async function ensureCapture(o: Options): Promise<CaptureInfo> {
  if (o.file !== undefined) {
    const path = resolve(o.file);
    if (!existsSync(path)) throw new UsageError(`--file: ${path} does not exist`);
    return { path, bytes: statSync(path).size, packets: null, generated: false };
  }
  mkdirSync(OUT_DIR, { recursive: true });
  const base = o.flows === defaultFlows(o.packets)
    ? `bench-${countLabel(o.packets)}`
    : `bench-${countLabel(o.packets)}-f${countLabel(o.flows)}`;
  const name = o.seed === DEFAULT_SEED ? base : `${base}-s${o.seed}`;
  const path = join(OUT_DIR, `${name}.pcap`);
  const metaPath = join(OUT_DIR, `${name}.meta.json`);
  let meta: Meta | undefined;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Meta;
  } catch {
    meta = undefined;
  }
  let why: string | undefined;
  if (o.regen) why = '--regen';
  else if (!existsSync(path)) why = 'missing';
  else if (!meta) why = 'no metadata';
  else if (meta.version !== GENERATOR_VERSION) why = `generator version ${meta.version} -> ${GENERATOR_VERSION}`;
  else if (meta.packets !== o.packets || meta.flows !== o.flows || meta.seed !== o.seed) why = 'different parameters';
  else if (statSync(path).size !== meta.stats.bytes) why = 'size differs from its metadata';
  if (why !== undefined || !meta) {
    log(`generating ${rel(path)} (${why}): ${o.packets} packets, ${o.flows} concurrent flows, seed ${o.seed} ...`);
    rmSync(metaPath, { force: true });
    const stats = await generateBenchCapture(path, { packets: o.packets, flows: o.flows, seed: o.seed });
    meta = { version: GENERATOR_VERSION, packets: o.packets, flows: o.flows, seed: o.seed, stats };
    writeFileSync(metaPath, JSON.stringify(meta, null, 2) + '\n');
    log(
      `  ${stats.packets} packets, ${stats.flows} flows, ${mib(stats.bytes)} MiB in ${stats.seconds.toFixed(1)} s ` +
        `(${(stats.packets / stats.seconds / 1e6).toFixed(2)} M packets/s)`,
    );
  } else {
    log(`using ${rel(path)} (${meta.packets} packets, ${meta.stats.flows} flows, ${mib(meta.stats.bytes)} MiB)`);
  }
  return {
    path,
    bytes: meta.stats.bytes,
    packets: meta.stats.packets,
    generated: true,
    generator: { version: meta.version, packets: meta.packets, flows: meta.flows, seed: meta.seed, stats: meta.stats },
  };
}

/**
 * Reads the whole file once so every run starts from the page cache.
 * Counts the records on the way when the file is a classic pcap.
 */
function warm(path: string): { seconds: number; bytes: number; packets: number | null } {
  const t0 = performance.now();
  const fd = openSync(path, 'r');
  const size = statSync(path).size;
  const buf = Buffer.allocUnsafe(8 << 20);
  let pos = 0;
  let le: boolean | null = null;
  let next = 24; // file offset of the next record header (classic pcap only)
  let packets = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      if (pos === 0 && n >= 24) {
        const magic = buf.readUInt32LE(0);
        if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
        else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false;
      }
      let advance = n;
      if (le !== null) {
        while (next + 16 <= pos + n) {
          const at = next - pos + 8;
          next += 16 + (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
          packets++;
        }
        // a record header cut by the chunk's end is read again with the next chunk
        if (next < pos + n) advance = next - pos;
        if (advance === 0) {
          le = null; // a truncated header at the end of the file: count unknown
          advance = n;
        }
      }
      pos += advance;
    }
  } finally {
    closeSync(fd);
  }
  return { seconds: (performance.now() - t0) / 1000, bytes: size, packets: le !== null && next === size ? packets : null };
}

// ------------------------------------------------------------------ child processes

interface RunSample {
  wall: number;
  user: number | null;
  sys: number | null;
  maxRssKiB: number | null;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

const haveTime = existsSync(TIME_BIN);

/** Runs a command, measuring wall time, CPU time and peak RSS. */
function measure(cmd: string, args: string[], timeoutSec: number, env?: Record<string, string>): Promise<RunSample> {
  return new Promise((resolveRun, reject) => {
    const argv = haveTime ? ['-f', `${TIME_MARK} %e %U %S %M`, cmd, ...args] : args;
    const t0 = process.hrtime.bigint();
    const child = spawn(haveTime ? TIME_BIN : cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    const LIMIT = 64 << 20;
    child.stdout.on('data', (d: Buffer) => {
      if (outLen < LIMIT) out.push(d);
      outLen += d.length;
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    // Without /usr/bin/time: poll the child's peak RSS and CPU ticks.
    let hwm: number | null = null;
    let ticks: [number, number] | null = null;
    const poll = haveTime
      ? undefined
      : setInterval(() => {
          try {
            const st = readFileSync(`/proc/${child.pid}/status`, 'utf8');
            const m = /VmHWM:\s+(\d+) kB/.exec(st);
            if (m) hwm = Math.max(hwm ?? 0, Number(m[1]));
            const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
            const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            ticks = [Number(f[11]), Number(f[12])];
          } catch {
            // gone
          }
        }, 20);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutSec * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      reject(e);
    });
    child.on('close', (code, signal) => {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      let stderr = Buffer.concat(err).toString('utf8');
      let user: number | null = null;
      let sys: number | null = null;
      let rss: number | null = hwm;
      if (haveTime) {
        const i = stderr.lastIndexOf(TIME_MARK);
        if (i >= 0) {
          const f = stderr.slice(i + TIME_MARK.length).trim().split(/\s+/);
          user = Number(f[1]);
          sys = Number(f[2]);
          rss = Number(f[3]);
          stderr = stderr.slice(0, i);
        }
        // "Command exited with non-zero status N" / "Command terminated by signal N"
        stderr = stderr.replace(/^Command (exited with non-zero status|terminated by signal) \d+\n?/m, '');
      } else if (ticks) {
        user = (ticks as [number, number])[0] / 100;
        sys = (ticks as [number, number])[1] / 100;
      }
      resolveRun({
        wall,
        user,
        sys,
        maxRssKiB: rss,
        exitCode: code,
        signal,
        timedOut,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr,
      });
    });
  });
}

function which(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : null;
}

// ------------------------------------------------------------------ benchmarks

interface BenchSpec {
  name: Section;
  title: string;
  /** A node program: --cpu-prof applies. */
  node: boolean;
  /** Why it cannot run, or undefined. */
  unavailable(): string | undefined;
  command(cap: CaptureInfo): { cmd: string; args: string[]; env?: Record<string, string> };
  before?(): void;
  /** Reads what the run reported: packets seen, extra numbers; throws when the output makes no sense. */
  inspect(s: RunSample, cap: CaptureInfo): { packets?: number; extra?: Record<string, number | string> };
}

const NODE = process.execPath;
const CLI_JS = join(ROOT, 'dist', 'agent', 'cli.js');
const FLOWTAP_BIN = join(ROOT, 'bin', 'flowtap.js');
const READERS_JS = join(ROOT, 'dist', 'bench', 'readers.js');
const FLOOR_JS = join(ROOT, 'dist', 'bench', 'floor.js');
const NDJSON_OUT = join(OUT_DIR, 'flows.ndjson');
const NFPCAPD_DIR = join(OUT_DIR, 'nfpcapd');
const REF_PID = join(OUT_DIR, 'softflowd.pid');

/** The last line of stdout that parses as a JSON object. */
function lastJson(stdout: string): Record<string, unknown> | undefined {
  const lines = stdout.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!.trim();
    if (!l.startsWith('{')) continue;
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      // keep looking
    }
  }
  try {
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function countLines(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  let lines = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      for (let i = buf.indexOf(10, 0); i >= 0 && i < n; i = buf.indexOf(10, i + 1)) lines++;
    }
  } finally {
    closeSync(fd);
  }
  return lines;
}

function flowtapInspect(s: RunSample): { packets?: number; extra?: Record<string, number | string> } {
  const j = lastJson(s.stdout);
  if (!j) throw new Error('no JSON summary on stdout');
  const extra: Record<string, number | string> = {};
  if (typeof j.flows === 'number') extra.flows = j.flows;
  return { packets: typeof j.packets === 'number' ? j.packets : undefined, extra };
}

/** What an in-process benchmark printed: packets, and its own timing (without node's start-up) and flow count when given. */
function inProcessInspect(s: RunSample, who: string): { packets?: number; extra?: Record<string, number | string> } {
  const j = lastJson(s.stdout);
  if (!j) throw new Error(`${who} printed no JSON`);
  const extra: Record<string, number | string> = {};
  if (typeof j.flows === 'number') extra.flows = j.flows;
  if (typeof j.seconds === 'number') extra.inner_seconds = j.seconds;
  if (typeof j.pps === 'number') extra.inner_pps = j.pps;
  return { packets: typeof j.packets === 'number' ? j.packets : undefined, extra };
}

function flowtapUnavailable(): string | undefined {
  if (!existsSync(CLI_JS)) return `${rel(CLI_JS)} missing (CLI not built yet: npm run build)`;
  if (!existsSync(FLOWTAP_BIN)) return `${rel(FLOWTAP_BIN)} missing`;
  return undefined;
}

const BENCHES: BenchSpec[] = [
  {
    name: 'reader',
    title: 'reader (benchReaders)',
    node: true,
    unavailable: () => (existsSync(READERS_JS) ? undefined : `${rel(READERS_JS)} missing (bench/readers.ts not written or not built)`),
    command: (cap) => ({
      cmd: NODE,
      args: [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(pathToFileURL(READERS_JS).href)});\n` +
          `if (typeof m.benchReaders !== 'function') { console.error('benchReaders is not exported'); process.exit(3); }\n` +
          `const r = await m.benchReaders(process.argv[1]);\n` +
          `process.stdout.write(JSON.stringify(r) + '\\n');`,
        cap.path,
      ],
    }),
    inspect: (s) => inProcessInspect(s, 'benchReaders'),
  },
  {
    name: 'floor',
    title: 'floor: decode + plain flow count (bench/floor.ts)',
    node: true,
    unavailable: () => (existsSync(FLOOR_JS) ? undefined : `${rel(FLOOR_JS)} missing (not built: npm run build)`),
    command: (cap) => ({ cmd: NODE, args: [FLOOR_JS, cap.path] }),
    inspect: (s) => inProcessInspect(s, 'floor.js'),
  },
  {
    name: 'e2e',
    title: 'flowtap analyze, flows to /dev/null',
    node: true,
    unavailable: flowtapUnavailable,
    command: (cap) => ({ cmd: NODE, args: [FLOWTAP_BIN, 'analyze', cap.path, '--flows', '/dev/null', '--json'] }),
    inspect: (s) => flowtapInspect(s),
  },
  {
    name: 'e2e-1t',
    title: 'flowtap analyze, flows to /dev/null, one thread',
    node: true,
    unavailable: flowtapUnavailable,
    command: (cap) => ({ cmd: NODE, args: [FLOWTAP_BIN, 'analyze', cap.path, '--flows', '/dev/null', '--json'], env: { FLOWTAP_FLOWS_WORKER: '0' } }),
    inspect: (s) => flowtapInspect(s),
  },
  {
    name: 'ndjson',
    title: 'flowtap analyze, flows to NDJSON file',
    node: true,
    unavailable: flowtapUnavailable,
    before: () => rmSync(NDJSON_OUT, { force: true }),
    command: (cap) => ({ cmd: NODE, args: [FLOWTAP_BIN, 'analyze', cap.path, '--flows', NDJSON_OUT, '--json'] }),
    inspect: (s) => {
      const r = flowtapInspect(s);
      if (existsSync(NDJSON_OUT)) {
        r.extra ??= {};
        r.extra.ndjson_bytes = statSync(NDJSON_OUT).size;
        r.extra.ndjson_lines = countLines(NDJSON_OUT);
      }
      return r;
    },
  },
  {
    // softflowd reading a file never expires flows by time, only when its
    // table is full (-m), and with no -n it exports nowhere; -c none: no
    // control socket (with one, it waits for commands after EOF).
    name: 'softflowd',
    title: 'softflowd 1.x -r (C reference)',
    node: false,
    unavailable: () => (which('softflowd') ? undefined : 'not installed (apt-get install softflowd)'),
    command: (cap) => ({
      cmd: which('softflowd')!,
      args: ['-r', cap.path, '-d', '-6', '-m', '4000000', '-c', 'none', '-p', REF_PID],
    }),
    inspect: (s) => {
      const out = s.stdout + s.stderr;
      const processed = /Packets processed:\s*(\d+)/.exec(out);
      const ignored = /Ignored packets:\s*(\d+)/.exec(out);
      const flows = /Flows expired:\s*(\d+)/.exec(out);
      if (!processed) throw new Error('no statistics from softflowd');
      const extra: Record<string, number | string> = {};
      if (flows) extra.flows = Number(flows[1]);
      if (ignored) extra.ignored = Number(ignored[1]);
      return { packets: Number(processed[1]) + (ignored ? Number(ignored[1]) : 0), extra };
    },
  },
  {
    // nfpcapd (nfdump 1.7): builds unidirectional NetFlow records and writes
    // nfcapd files; expiry pushed past the capture's span like flowtap's 5 min.
    name: 'nfpcapd',
    title: 'nfpcapd -r -w (C reference)',
    node: false,
    unavailable: () => (which('nfpcapd') ? undefined : 'not installed (apt-get install nfdump)'),
    before: () => {
      rmSync(NFPCAPD_DIR, { recursive: true, force: true });
      mkdirSync(NFPCAPD_DIR, { recursive: true });
    },
    command: (cap) => ({
      cmd: which('nfpcapd')!,
      args: ['-r', cap.path, '-w', NFPCAPD_DIR, '-e', '3600,600', '-B', '1048576'],
    }),
    inspect: (s) => {
      const out = s.stdout + s.stderr;
      const m = /Total: Processed: (\d+), skipped: (\d+)/.exec(out);
      const flows = /Flows: (\d+)/.exec(out);
      if (!m) throw new Error('no statistics from nfpcapd');
      const extra: Record<string, number | string> = { skipped: Number(m[2]) };
      if (flows) extra.flows_unidirectional = Number(flows[1]);
      return { packets: Number(m[1]), extra };
    },
  },
];

interface BenchResult {
  name: Section;
  title: string;
  status: 'ok' | 'not available' | 'failed';
  reason?: string;
  command?: string;
  runs: Array<{
    wall_s: number;
    user_s: number | null;
    sys_s: number | null;
    peak_rss_mib: number | null;
    exit_code: number | null;
    /** 1-minute load average just before the run: other work on the machine skews the numbers. */
    load_before: number;
    packets?: number;
    extra?: Record<string, number | string>;
  }>;
  median_s?: number;
  best_s?: number;
  pps_median?: number;
  pps_best?: number;
  peak_rss_mib?: number | null;
  cpu_median_s?: number | null;
  packets?: number;
  extra?: Record<string, number | string>;
}

/** The most telling line of a failed run's output: a thrown error's message, else the last line. */
function errorLine(text: string): string | undefined {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^Node\.js v\d/.test(l) && !l.startsWith('at '));
  return lines.find((l) => /^[A-Z]\w*(Error|Exception)\b/.test(l)) ?? lines[lines.length - 1];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function runBench(spec: BenchSpec, cap: CaptureInfo, o: Options): Promise<BenchResult> {
  const res: BenchResult = { name: spec.name, title: spec.title, status: 'ok', runs: [] };
  const why = spec.unavailable();
  if (why !== undefined) {
    log(`${spec.name}: not available: ${why}`);
    return { ...res, status: 'not available', reason: why };
  }
  const { cmd, args, env } = spec.command(cap);
  const profDir = join(OUT_DIR, 'prof', spec.name);
  let runs = o.runs;
  if (o.cpuProf) {
    if (!spec.node) {
      log(`${spec.name}: skipped under --cpu-prof (not a node program)`);
      return { ...res, status: 'not available', reason: 'not a node program (--cpu-prof)' };
    }
    rmSync(profDir, { recursive: true, force: true });
    args.unshift('--cpu-prof', `--cpu-prof-dir=${profDir}`);
    runs = 1;
    res.title += ' [--cpu-prof]';
  }
  res.command = [...Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`), cmd, ...args].map((a) => (/^[\w./:=,@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  for (let i = 0; i < runs; i++) {
    spec.before?.();
    const load = loadavg()[0]!;
    const s = await measure(cmd, args, o.timeoutSec, env);
    const failed = s.timedOut ? `timed out after ${o.timeoutSec} s` : s.exitCode !== 0 ? `exit status ${s.exitCode ?? s.signal}` : undefined;
    let seen: { packets?: number; extra?: Record<string, number | string> } = {};
    let bad = failed;
    if (!bad) {
      try {
        seen = spec.inspect(s, cap);
      } catch (e) {
        bad = (e as Error).message;
      }
    }
    if (bad) {
      const tail = (s.stderr.trim() || s.stdout.trim()).split('\n').slice(-8).join('\n');
      log(`${spec.name} run ${i + 1}: FAILED (${bad})${tail ? `\n${indent(tail)}` : ''}`);
      const msg = errorLine(s.stderr) ?? errorLine(s.stdout);
      return { ...res, status: 'failed', reason: `${bad}${msg ? `: ${msg}` : ''}` };
    }
    const rssMiB = s.maxRssKiB !== null ? s.maxRssKiB / 1024 : null;
    res.runs.push({
      wall_s: round(s.wall, 3),
      user_s: s.user,
      sys_s: s.sys,
      peak_rss_mib: rssMiB !== null ? round(rssMiB, 1) : null,
      exit_code: s.exitCode,
      load_before: round(load, 2),
      packets: seen.packets,
      extra: seen.extra,
    });
    const pk = cap.packets ?? seen.packets;
    log(
      `${spec.name} run ${i + 1}/${runs}: ${s.wall.toFixed(2)} s` +
        (pk ? `, ${fmtRate(pk / s.wall)} packets/s` : '') +
        (rssMiB !== null ? `, peak RSS ${rssMiB.toFixed(0)} MiB` : '') +
        (s.user !== null && s.sys !== null ? `, cpu ${(s.user + s.sys).toFixed(2)} s` : '') +
        (load > 0.5 ? ` (load ${load.toFixed(2)} before the run)` : '') +
        (seen.packets !== undefined && cap.packets !== null && seen.packets !== cap.packets ? ` (saw ${seen.packets} packets of ${cap.packets}!)` : ''),
    );
  }
  const walls = res.runs.map((r) => r.wall_s);
  res.median_s = round(median(walls), 3);
  res.best_s = round(Math.min(...walls), 3);
  const pk = cap.packets ?? res.runs[0]!.packets;
  if (pk) {
    res.packets = pk;
    res.pps_median = Math.round(pk / res.median_s);
    res.pps_best = Math.round(pk / res.best_s);
  }
  const rss = res.runs.map((r) => r.peak_rss_mib).filter((x): x is number => x !== null);
  res.peak_rss_mib = rss.length ? Math.max(...rss) : null;
  const cpu = res.runs.filter((r) => r.user_s !== null && r.sys_s !== null).map((r) => r.user_s! + r.sys_s!);
  res.cpu_median_s = cpu.length ? round(median(cpu), 2) : null;
  // numbers the tool reported, from the median run
  const mid = res.runs.find((r) => r.wall_s === res.median_s) ?? res.runs[0]!;
  res.extra = mid.extra;
  if (o.cpuProf) log(hotFunctions(profDir, spec.name));
  return res;
}

/** The functions with the most self time in the .cpuprofile files of `dir`. */
function hotFunctions(dir: string, name: string, top = 15): string {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const self = new Map<string, number>();
  let total = 0;
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    // none
  }
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const n = byId.get(id);
      const dt = p.timeDeltas[i] ?? 0;
      if (!n) return;
      const cf = n.callFrame;
      const where = cf.url ? `${rel(fileURLToPath(cf.url.startsWith('file:') ? cf.url : pathToFileURL(cf.url).href))}:${cf.lineNumber + 1}` : '';
      const key = `${cf.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  if (total === 0) return `${name}: no profile found in ${rel(dir)}`;
  const lines = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, t]) => `  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  return `${name}: hottest functions by self time (${files.length} profile(s) in ${rel(dir)}; open them in Chrome DevTools or speedscope)\n${lines.join('\n')}`;
}

// ------------------------------------------------------------------ output

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}
function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
function fmtRate(pps: number): string {
  return pps >= 1e6 ? `${(pps / 1e6).toFixed(2)} M` : `${(pps / 1e3).toFixed(0)} k`;
}
function rel(p: string): string {
  const r = relative(ROOT, p);
  return r.startsWith('..') ? p : r;
}
function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function table(results: BenchResult[], cap: CaptureInfo): string {
  const head = ['benchmark', 'runs', 'median s', 'best s', 'pkt/s median', 'pkt/s best', 'peak RSS MiB', 'cpu s', 'notes'];
  const rows: string[][] = results.map((r) => {
    if (r.status !== 'ok') return [r.title, '-', '-', '-', '-', '-', '-', '-', `${r.status}: ${r.reason ?? ''}`];
    const notes: string[] = [];
    const x = r.extra ?? {};
    if (typeof x.inner_pps === 'number') notes.push(`in-process ${fmtRate(x.inner_pps)} pkt/s`);
    if (typeof x.flows === 'number') {
      const expected = cap.generator?.stats.flows;
      notes.push(`${x.flows} flows` + (expected !== undefined && r.name !== 'softflowd' && x.flows !== expected ? ` (capture has ${expected})` : ''));
    }
    if (typeof x.flows_unidirectional === 'number') notes.push(`${x.flows_unidirectional} uni-flows`);
    if (typeof x.ndjson_lines === 'number') notes.push(`${x.ndjson_lines} lines`);
    if (typeof x.ndjson_bytes === 'number') notes.push(`${mib(x.ndjson_bytes)} MiB ndjson`);
    if (typeof x.ignored === 'number' && x.ignored) notes.push(`${x.ignored} ignored`);
    if (typeof x.skipped === 'number' && x.skipped) notes.push(`${x.skipped} skipped`);
    const seen = r.runs[0]?.packets;
    if (seen !== undefined && r.packets !== undefined && seen !== r.packets) notes.push(`saw ${seen} packets`);
    return [
      r.title,
      String(r.runs.length),
      r.median_s!.toFixed(2),
      r.best_s!.toFixed(2),
      r.pps_median ? fmtRate(r.pps_median) : '-',
      r.pps_best ? fmtRate(r.pps_best) : '-',
      r.peak_rss_mib != null ? r.peak_rss_mib.toFixed(0) : '-',
      r.cpu_median_s != null ? r.cpu_median_s.toFixed(2) : '-',
      notes.join(', '),
    ];
  });
  const all = [head, ...rows];
  const w = head.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const right = new Set([1, 2, 3, 4, 5, 6, 7]);
  const line = (r: string[]): string =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : right.has(c) ? cell.padStart(w[c]!) : cell.padEnd(w[c]!)))
      .join('  ')
      .trimEnd();
  return [line(head), w.map((n, c) => (c === head.length - 1 ? '-'.repeat(5) : '-'.repeat(n))).join('  '), ...rows.map(line)].join('\n');
}

function gitCommit(): { commit: string | null; dirty: boolean | null } {
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  const d = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' });
  return { commit: r.status === 0 ? r.stdout.trim() : null, dirty: d.status === 0 ? d.stdout.trim() !== '' : null };
}

// ------------------------------------------------------------------ main

export async function main(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(argv);
  } catch (e) {
    if (argv.includes('-h') || argv.includes('--help')) {
      process.stdout.write(USAGE);
      return 0;
    }
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  mkdirSync(OUT_DIR, { recursive: true });
  const cpu = cpus();
  log(`node ${process.version}, ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM` + (haveTime ? '' : ', no /usr/bin/time: polling /proc'));
  const cap = await ensureCapture(o);
  const w = warm(cap.path);
  if (cap.packets === null) cap.packets = w.packets;
  log(`page cache warmed: ${mib(w.bytes)} MiB read in ${w.seconds.toFixed(2)} s (${(w.bytes / w.seconds / 2 ** 30).toFixed(2)} GiB/s)`);

  const results: BenchResult[] = [];
  for (const spec of BENCHES) {
    if (!o.sections.includes(spec.name)) continue;
    results.push(await runBench(spec, cap, o));
  }

  const capLine =
    `capture: ${rel(cap.path)}, ${cap.packets ?? '?'} packets, ${mib(cap.bytes)} MiB` +
    (cap.generator ? `, ${cap.generator.stats.flows} flows (${cap.generator.stats.peakActiveFlows} concurrent at peak), seed ${cap.generator.seed}` : '');
  process.stdout.write(`\n${capLine}\n\n${table(results, cap)}\n`);

  const report = {
    date: new Date().toISOString(),
    host: { node: process.version, platform: `${process.platform} ${process.arch}`, cpu: cpu[0]?.model ?? null, cores: cpu.length, mem_gib: round(totalmem() / 2 ** 30, 1) },
    git: gitCommit(),
    measured_with: haveTime ? TIME_BIN : '/proc polling',
    runs_per_benchmark: o.runs,
    capture: {
      path: rel(cap.path),
      bytes: cap.bytes,
      packets: cap.packets,
      generator: cap.generator ?? null,
      warm_read_s: round(w.seconds, 3),
    },
    results,
  };
  // a profiled run is not a measurement: keep it apart from results.json
  const out = join(OUT_DIR, o.cpuProf ? 'results-cpu-prof.json' : 'results.json');
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`\nwrote ${rel(out)}\n`);
  return results.some((r) => r.status === 'failed') ? 1 : 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
