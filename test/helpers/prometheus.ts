/**
 * Real Prometheus for tests: promtool runs, and a `prometheus` server on a
 * free 127.0.0.1 port with its own data directory, started and stopped (by
 * PID) by the test. Both come from the Debian package `prometheus`
 * (scripts/setup.sh installs it); a missing binary is an error, never a skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** Absolute path of a Prometheus binary, or an error saying what to install. */
export function requireBinary(name: 'prometheus' | 'promtool'): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || path === '') {
    throw new Error(`${name} is not installed: these tests need a real Prometheus (Debian: apt-get install -y prometheus; scripts/setup.sh does it). They never skip.`);
  }
  return path;
}

export function promtool(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(requireBinary('promtool'), args, { input, encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 28 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A free TCP port on 127.0.0.1 (bound to port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface PromResult {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

export interface PrometheusServer {
  url: string;
  pid: number;
  /** Instant query; throws on a Prometheus error (a parse error included). */
  query(q: string, time?: number): Promise<PromResult[]>;
  queryRange(q: string, start: number, end: number, step: number): Promise<PromResult[]>;
  /** GET an API path (e.g. `/api/v1/label/interface/values?...`), returns `data`. */
  api<T = unknown>(path: string): Promise<T>;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  dataDir: string;
  /** YAML of `scrape_configs:` entries (indented list items), if any. */
  scrapeConfigs?: string;
}

/** Starts `prometheus` on a free loopback port over `dataDir`; resolves once it is ready. */
export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const bin = requireBinary('prometheus');
  const port = await freePort();
  const config = join(opts.dataDir, '..', `prometheus-${port}.yml`);
  writeFileSync(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n${opts.scrapeConfigs ? `scrape_configs:\n${opts.scrapeConfigs}` : ''}`);
  const child: ChildProcess = spawn(bin, [
    `--config.file=${config}`,
    `--storage.tsdb.path=${opts.dataDir}`,
    // Time retention counts back from the newest block, but captures can be old: keep everything.
    '--storage.tsdb.retention.time=100y',
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  let exited: number | null | undefined;
  const exit = new Promise<void>((ok) => child.once('exit', (code) => ((exited = code), ok())));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exit;
    clearTimeout(t);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`prometheus exited (${exited}) before it was ready:\n${log}`);
    try {
      const r = await fetch(`${url}/-/ready`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready after 30 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${url}${path}`);
    const j = (await r.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (j.status !== 'success') throw new Error(`prometheus ${path}: ${j.errorType}: ${j.error}`);
    return j.data;
  };
  const enc = encodeURIComponent;
  return {
    url,
    pid: child.pid!,
    api,
    async query(q, time) {
      const d = await api<{ result: PromResult[] }>(`/api/v1/query?query=${enc(q)}${time !== undefined ? `&time=${time}` : ''}`);
      return d.result;
    },
    async queryRange(q, start, end, step) {
      const d = await api<{ result: PromResult[] }>(`/api/v1/query_range?query=${enc(q)}&start=${start}&end=${end}&step=${step}`);
      return d.result;
    },
    stop,
  };
}
