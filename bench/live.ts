/**
 * `npm run bench:live`: how many packets per second `flowtap run` keeps up
 * with, with its default options, before the kernel drops any.
 *
 *   node dist/bench/live.js [--rates 100k,200k,...] [--seconds 3] [--packets 1M]
 *                           [-- EXTRA flowtap run OPTIONS]
 *
 * A capture made by bench/gen.ts (padded back to full frame length with
 * tcprewrite, so the wire carries real sizes) is replayed with tcpreplay at
 * increasing rates into a veth pair in a network namespace (ft-bench-<pid>);
 * `flowtap run -i brb` listens on the other end. For each rate: packets
 * sent (tcpreplay's own count and achieved rate), packets flowtap received,
 * kernel drops (pcap_stats, from /metrics), and flowtap's CPU (utime+stime
 * from /proc, until it drained, over tcpreplay's sending time, as % of one
 * core; and per packet). The capture's copy into the ring runs in the
 * sender's softirq, not in flowtap's time. The last line names the
 * highest rate with zero kernel drops. A last run at tcpreplay's top speed
 * shows what the sender itself reaches on this machine.
 *
 * Needs root, tcpreplay and tcprewrite (Debian package tcpreplay). Prints
 * numbers and writes bench/out/live-results.json; never fails on speed.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { generateBenchCapture } from './gen.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'bench', 'out');
const BIN = join(ROOT, 'bin', 'flowtap.js');
const NS = `ft-bench-${process.pid}`;
const CLK_TCK = 100;

function count(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text);
  if (!m) throw new Error(`bad number "${text}"`);
  return Math.round(Number(m[1]) * (m[2].toLowerCase() === 'k' ? 1e3 : m[2].toLowerCase() === 'm' ? 1e6 : 1));
}

interface Opts {
  rates: number[];
  seconds: number;
  packets: number;
  extra: string[];
}

function parse(argv: string[]): Opts {
  const o: Opts = { rates: [100e3, 150e3, 200e3, 250e3, 300e3, 325e3, 350e3, 375e3, 400e3], seconds: 3, packets: 1e6, extra: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      o.extra = argv.slice(i + 1);
      break;
    }
    if (a === '--rates') o.rates = argv[++i].split(',').map(count);
    else if (a === '--seconds') o.seconds = Number(argv[++i]);
    else if (a === '--packets') o.packets = count(argv[++i]);
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime, stime
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function metrics(port: number): { kernel: number; received: number; packets: number } {
  const code = `fetch('http://127.0.0.1:${port}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
  const text = sh('ip', ['netns', 'exec', NS, process.execPath, '-e', code]);
  const get = (re: RegExp): number => {
    let s = 0;
    for (const m of text.matchAll(re)) s += Number(m[1]);
    return s;
  };
  return {
    kernel: get(/^flowtap_capture_dropped_packets_total\{interface="brb",where="kernel"\} (\S+)$/gm),
    received: get(/^flowtap_capture_packets_total\{interface="brb"\} (\S+)$/gm),
    packets: get(/^flowtap_packets_total\{[^}]*\} (\S+)$/gm),
  };
}

async function capture(packets: number): Promise<string> {
  mkdirSync(OUT, { recursive: true });
  const raw = join(OUT, `live-${packets}.pcap`);
  const padded = join(OUT, `live-${packets}-pad.pcap`);
  if (existsSync(padded)) return padded;
  process.stderr.write(`generating ${raw} ...\n`);
  await generateBenchCapture(raw, { packets, flows: Math.max(1000, Math.floor(packets / 20)) });
  // The generator keeps 128 bytes of each frame; pad back to the original length for real wire sizes.
  const r = spawnSync('tcprewrite', ['--fixlen=pad', '-i', raw, '-o', padded], { stdio: ['ignore', 'ignore', 'ignore'] });
  if (r.status !== 0) throw new Error('tcprewrite failed');
  return padded;
}

interface Row {
  target: number | 'top';
  sent: number;
  failed: number;
  rate: number;
  received: number;
  kernelDrops: number;
  cpuPct: number;
  /** flowtap CPU time per received packet, µs. */
  cpuUsPerPacket: number;
  rssMiB: number;
}

/** Replays; `ms` is tcpreplay's own sending time (without loading the file). */
function replay(file: string, pps: number | 'top', seconds: number, packets: number): { sent: number; failed: number; rate: number; ms: number } {
  const total = pps === 'top' ? packets : Math.round(pps * seconds);
  const loops = Math.ceil(total / packets);
  const args = ['netns', 'exec', NS, 'tcpreplay', '-i', 'bra', '-K', ...(pps === 'top' ? ['-t'] : [`--pps=${pps}`]), '-L', String(total), ...(loops > 1 ? ['-l', String(loops)] : []), file];
  const t0 = Date.now();
  const r = spawnSync('ip', args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const ms = Date.now() - t0;
  const out = `${r.stdout}\n${r.stderr}`;
  const sent = Number(/Actual: (\d+) packets/.exec(out)?.[1] ?? NaN);
  const sendSeconds = Number(/packets \(\d+ bytes\) sent in ([\d.]+) seconds/.exec(out)?.[1] ?? ms / 1000);
  const rate = Number(/Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps/.exec(out)?.[1] ?? NaN);
  const failed = Number(/Failed packets:\s+(\d+)/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(sent)) throw new Error(`tcpreplay: ${out.trim().slice(-500)}`);
  return { sent, failed, rate, ms: sendSeconds * 1000 };
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench:live needs root (network namespace, capture)');
  for (const t of ['tcpreplay', 'tcprewrite']) if (spawnSync('which', [t]).status !== 0) throw new Error(`bench:live needs ${t} (apt-get install tcpreplay)`);
  const file = await capture(o.packets);
  sh('ip', ['netns', 'add', NS]);
  let ft: ReturnType<typeof spawn> | undefined;
  try {
    sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', NS, 'link', 'add', 'bra', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'brb', 'mtu', '9000']);
    sh('ip', ['-n', NS, 'link', 'set', 'bra', 'up']);
    sh('ip', ['-n', NS, 'link', 'set', 'brb', 'up']);
    const args = ['netns', 'exec', NS, process.execPath, BIN, 'run', '-i', 'brb', '--listen', '127.0.0.1:0', ...o.extra];
    ft = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const port = await new Promise<number>((res, rej) => {
      ft!.stderr!.on('data', (d) => {
        err += d;
        const m = /metrics on http:\/\/[^ ]+:(\d+)\/metrics/.exec(err);
        if (m) res(Number(m[1]));
      });
      ft!.on('exit', () => rej(new Error(`flowtap exited: ${err}`)));
    });
    const pid = ft.pid!;
    const startLine = /capturing on .*/.exec(err)?.[0] ?? '';
    process.stdout.write(`flowtap run -i brb ${o.extra.join(' ')}\n  ${startLine}\n  ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); capture ${file} (${o.packets} packets, replayed with tcpreplay -K)\n\n`);
    process.stdout.write('target pps   achieved pps   sent        received    kernel drops   flowtap CPU   µs/packet   RSS MiB\n');
    const rows: Row[] = [];
    let misses = 0;
    for (const target of [...o.rates, 'top' as const]) {
      const before = metrics(port);
      const c0 = cpuTicks(pid);
      const r = replay(file, target, o.seconds, o.packets);
      await new Promise((res) => setTimeout(res, 1500)); // drained, stats published by a tick
      const c1 = cpuTicks(pid);
      const after = metrics(port);
      const row: Row = {
        target,
        sent: r.sent,
        failed: r.failed,
        rate: r.rate,
        received: after.received - before.received,
        kernelDrops: after.kernel - before.kernel,
        cpuPct: (((c1 - c0) / CLK_TCK) / (r.ms / 1000)) * 100,
        cpuUsPerPacket: (((c1 - c0) / CLK_TCK) * 1e6) / Math.max(1, after.received - before.received),
        rssMiB: rssMiB(pid),
      };
      rows.push(row);
      process.stdout.write(`${String(target).padEnd(12)} ${row.rate.toFixed(0).padStart(12)}   ${String(row.sent).padStart(9)}   ${String(row.received).padStart(9)}   ${String(row.kernelDrops).padStart(12)}   ${row.cpuPct.toFixed(0).padStart(9)} %   ${row.cpuUsPerPacket.toFixed(2).padStart(9)}   ${row.rssMiB.toFixed(0).padStart(6)}\n`);
      if (target !== 'top') {
        misses = row.kernelDrops > 0 ? misses + 1 : 0;
        if (misses >= 2) break;
      }
    }
    const ok = rows.filter((r) => r.target !== 'top' && r.kernelDrops === 0 && r.received >= r.sent);
    const best = ok.reduce<Row | undefined>((b, r) => (b === undefined || r.rate > b.rate ? r : b), undefined);
    const top = rows.find((r) => r.target === 'top');
    process.stdout.write(`\nhighest rate without kernel drops: ${best ? `${best.rate.toFixed(0)} packets/s at ${best.cpuPct.toFixed(0)} % of one core` : 'none'}`
      + `${top ? `; tcpreplay's top speed here: ${top.rate.toFixed(0)} packets/s (${top.kernelDrops} dropped)` : ''}\n`);
    writeFileSync(join(OUT, 'live-results.json'), JSON.stringify({ options: o, startLine, rows, best: best ?? null }, null, 2) + '\n');
    return 0;
  } finally {
    if (ft?.pid) {
      try {
        process.kill(ft.pid, 'SIGTERM');
      } catch {
        // gone
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    spawnSync('ip', ['netns', 'del', NS]);
  }
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`bench:live: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
