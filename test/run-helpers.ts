/**
 * Helpers for the `flowtap run` tests (not a test file itself): network
 * namespaces, starting the built CLI in one, scraping it, parsing the
 * Prometheus text format.
 *
 * Every namespace is named ft-<what>-<pid> and deleted by the test that made
 * it; processes are ended by their PID only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, cpSync, rmSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'flowtap.js');

/** Runs a command, returns stdout; throws with stderr on failure. */
export function sh(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}) });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    const text = `${err.stdout ?? ''}\n${(err.stderr ?? '').replace(/^npm warn .*\n?/gm, '')}`.trim();
    throw new Error(`${cmd} ${args.join(' ')}: ${text || err.message}`);
  }
}

export function netns(ns: string, cmd: string, ...args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/**
 * Checks what the live tests need; throws (never skips) naming what is
 * missing. CI runs as root with scripts/setup.sh's packages.
 */
export function requirePrereqs(tools: string[]): void {
  if (process.platform !== 'linux') throw new Error('flowtap run tests need Linux');
  if (process.getuid?.() !== 0) throw new Error('flowtap run tests need root (network namespaces, capture); CI runs them as root; they do not skip');
  const missing = tools.filter((t) => !['/usr/bin/', '/usr/sbin/', '/bin/', '/sbin/'].some((d) => existsSync(d + t)));
  if (missing.length > 0) throw new Error(`flowtap run tests need ${missing.join(', ')} (scripts/setup.sh installs them)`);
}

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Builds dist/ (the CLI the tests start) unless it is newer than every
 * source. Test files run in parallel processes: a lock file keeps two of
 * them from writing dist/ at once (a flowtap started meanwhile could load a
 * half-written module).
 */
export function build(): void {
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const lock = join(cache, 'flowtap-build.lock');
  const stamp = join(cache, 'flowtap-build.stamp');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120_000) unlinkSync(lock); // left by a killed run
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`build: ${lock} held for 2 minutes`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    const src = Math.max(...['agent', 'parsers', 'exporters', 'bench', join('test', 'gen')].map((d) => newestSource(join(ROOT, d))));
    const built = existsSync(stamp) && existsSync(join(ROOT, 'dist', 'agent', 'cli.js')) ? statSync(stamp).mtimeMs : 0;
    if (src >= built) {
      const started = Date.now();
      sh('npx', ['tsc', '-p', join(ROOT, 'tsconfig.build.json')]);
      writeFileSync(stamp, '');
      utimesSync(stamp, new Date(started), new Date(started));
    }
  } finally {
    unlinkSync(lock);
  }
}

export function delNetns(...names: string[]): void {
  for (const n of names) {
    try {
      execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    } catch {
      // not there
    }
  }
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when `re` matches stderr (or stdout); rejects after `ms` or on exit. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Sends a signal (by PID) and returns the exit, killing it after `ms`. */
  stop(sig?: NodeJS.Signals, ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

const started: Proc[] = [];

/** Starts a process; the last argument list element can be a full command. */
export function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; res: (m: RegExpMatchArray) => void }[] = [];
  const check = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const m = waiters[i].re.exec(err) ?? waiters[i].re.exec(out);
      if (m) {
        waiters[i].res(m);
        waiters.splice(i, 1);
      }
    }
  };
  child.stdout!.on('data', (d) => {
    out += d;
    check();
  });
  child.stderr!.on('data', (d) => {
    err += d;
    check();
  });
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null; ms: number } | undefined;
  let sentAt = Date.now();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => {
    child.on('close', (code, signal) => {
      exitInfo = { code, signal, ms: Date.now() - sentAt };
      resolve(exitInfo);
    });
    child.on('error', () => {
      exitInfo = { code: -1, signal: null, ms: 0 };
      resolve(exitInfo);
    });
  });
  const p: Proc = {
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    waitFor(re, ms = 10_000) {
      return new Promise((res, rej) => {
        const m = re.exec(err) ?? re.exec(out);
        if (m) return res(m);
        const timer = setTimeout(() => rej(new Error(`timed out waiting for ${re} from ${cmd} ${args.join(' ')}; stderr: ${err.trim()}`)), ms);
        waiters.push({ re, res: (x) => (clearTimeout(timer), res(x)) });
        void exited.then((x) => {
          clearTimeout(timer);
          rej(new Error(`${cmd} ${args.join(' ')} exited (${x.code ?? x.signal}) before ${re}; stderr: ${err.trim()}`));
        });
      });
    },
    exited,
    async stop(sig = 'SIGTERM', ms = 8000) {
      if (exitInfo) return exitInfo;
      sentAt = Date.now();
      try {
        process.kill(child.pid!, sig);
      } catch {
        // gone
      }
      const t = setTimeout(() => {
        try {
          process.kill(child.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }, ms);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
  started.push(p);
  return p;
}

/** Kills (by PID) every process started by `start` that is still running. */
export async function killAll(): Promise<void> {
  await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL', 1000)));
}

let runtimeBin: string | undefined;

/**
 * A copy of what `flowtap` needs at run time (bin/, dist/, package.json and
 * the production dependencies in node_modules), in a directory everyone may
 * read, for tests that run it as an unprivileged user: the checkout itself
 * may sit under a private directory (`mktemp -d` makes mode 0700). Returns
 * the copy's bin/flowtap.js; made once per test process.
 */
export function unprivilegedBin(): string {
  if (runtimeBin) return runtimeBin;
  const to = mkdtempSync(join(tmpdir(), 'ft-runtime-'));
  chmodSync(to, 0o755);
  process.once('exit', () => rmSync(to, { recursive: true, force: true }));
  const deps = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n').map((l) => l.trim()).filter((l) => l !== '' && l !== ROOT.replace(/\/$/, ''));
  for (const part of ['bin', 'dist', 'package.json', ...deps.map((d) => relative(ROOT, d))]) {
    cpSync(join(ROOT, part), join(to, part), { recursive: true });
  }
  return (runtimeBin = join(to, 'bin', 'flowtap.js'));
}

/** `flowtap run ARGS` in namespace `ns` (or here), with its startup line parsed. `bin`: another copy of bin/flowtap.js. */
export async function startFlowtap(ns: string | undefined, args: string[], opts: { prefix?: string[]; env?: NodeJS.ProcessEnv; bin?: string } = {}): Promise<Proc & { port: number }> {
  const bin = opts.bin ?? BIN;
  const prefix = [...(ns ? ['ip', 'netns', 'exec', ns] : []), ...(opts.prefix ?? [])];
  const argv = [...prefix.slice(1), process.execPath, bin, 'run', ...args];
  const p = prefix.length > 0 ? start(prefix[0], argv, opts.env) : start(process.execPath, [bin, 'run', ...args], opts.env);
  const m = await p.waitFor(/metrics on http:\/\/[^ ]+:(\d+)\/metrics/);
  return Object.assign(p, { port: Number(m[1]) });
}

/** GET http://127.0.0.1:port/path from inside `ns` (the listener is in the namespace). */
export async function httpGet(ns: string | undefined, port: number, path = '/metrics'): Promise<{ status: number; body: string }> {
  const code = `fetch('http://127.0.0.1:${port}${path}').then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), (e) => { console.error(e.message, e.cause?.code ?? '', e.cause?.message ?? ''); process.exit(1); })`;
  const out = ns ? netns(ns, process.execPath, '-e', code) : sh(process.execPath, ['-e', code]);
  return JSON.parse(out) as { status: number; body: string };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough for flowtap's output). */
export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of a family's samples whose labels include `match`. */
export function sum(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  let s = 0;
  for (const x of samples) {
    if (x.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => x.labels[k] === v)) s += x.value;
  }
  return s;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Rec = Record<string, any>;

export function readNdjson(path: string): Rec[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Rec);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Effective capabilities and uid of a process, from /proc. */
export function procStatus(pid: number): { uid: number; capEff: bigint; capAmb: bigint } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(s)![1]);
  const capEff = BigInt('0x' + /^CapEff:\s+([0-9a-f]+)/m.exec(s)![1]);
  const capAmb = BigInt('0x' + /^CapAmb:\s+([0-9a-f]+)/m.exec(s)![1]);
  return { uid, capEff, capAmb };
}
