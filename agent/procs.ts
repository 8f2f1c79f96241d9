/**
 * Process attribution of local flows: which process (pid, comm) owns the
 * socket at this host's end of a TCP or UDP flow.
 *
 * How: /proc/net/{tcp,tcp6,udp,udp6} list the sockets of the network
 * namespace with their inode; /proc/<pid>/fd/* link to "socket:[inode]".
 * A scan reads both and joins them (what `ss -p` does). It runs in a worker
 * thread, so the capture (main thread) never waits for it; the main thread
 * only swaps in the result (one Map update per socket).
 *
 * When: on demand. The live agent asks for a scan when a new flow with a
 * local end starts, at most once per `minIntervalMs` (leading edge: the
 * first request after a quiet period scans at once, later ones wait for the
 * interval). Flow records and metrics look the flow's local end up at
 * export time in the latest scans; a socket stays known for `retainMs`
 * after it was last seen, so a flow that ends (idle timeout) after its
 * socket closed is still attributed.
 *
 * Limits, by design: a socket opened and closed between two scans is never
 * seen (short-lived connections, one-shot UDP queries), a socket that
 * changed owner (fd passing, fork) shows the owner at scan time, and a port
 * reused within `retainMs` by another process may be attributed to the
 * earlier one. Reading other users' /proc/<pid>/fd needs CAP_SYS_PTRACE and
 * CAP_DAC_READ_SEARCH (or root); without them only the agent user's own
 * processes are seen (counted in `stats.deniedPids`).
 *
 * `procRoot` (FLOWTAP_PROC / --proc) points at another procfs mount, e.g.
 * the host's /proc in a container that shares the host's PID namespace.
 * Sockets come from `<procRoot>/net/*`, i.e. the network namespace of the
 * agent itself (hostNetwork in Kubernetes).
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { DIR_INBOUND, DIR_LOCAL, DIR_OUTBOUND, type FlowTable } from './flows/table.js';
import { PROTO_TCP, PROTO_UDP } from '../parsers/packet.js';

export interface ProcOwner {
  pid: number;
  comm: string;
}

/** What one scan found. Sockets are parallel arrays (cheap to post from the worker). */
export interface ScanResult {
  /** Lookup keys (see socketKey), one per socket with an owner. */
  keys: string[];
  pids: number[];
  comms: string[];
  /** Sockets listed in /proc/net/* (with an inode). */
  sockets: number;
  /** Processes whose fd directory was read, and those we may not read. */
  pids_scanned: number;
  denied: number;
  /** fd links read. */
  fds: number;
  /** Wall time of the scan, ms. */
  ms: number;
}

/**
 * The scanner, as JavaScript source: evaluated in a worker thread (and
 * in-process for tests and for measuring). Self-contained on purpose.
 * Address keys: IPv4 as 8 hex digits of the big-endian value, IPv6 as 32;
 * IPv4-mapped IPv6 (a dual-stack socket) as the IPv4 key; the unspecified
 * address as '*'.
 */
const SCAN_SRC = String.raw`
function scan(fs, root, little) {
  const t0 = Date.now();
  const swap = (h) => little ? h.slice(6, 8) + h.slice(4, 6) + h.slice(2, 4) + h.slice(0, 2) : h;
  const addrKey = (hex) => {
    let k = '';
    for (let i = 0; i < hex.length; i += 8) k += swap(hex.slice(i, i + 8));
    k = k.toLowerCase();
    if (k.length === 32 && k.startsWith('00000000000000000000ffff')) k = k.slice(24);
    if (/^0+$/.test(k)) return '*';
    return k;
  };
  const buf = Buffer.allocUnsafe(1 << 20);
  const byInode = new Map();
  let sockets = 0;
  for (const [file, proto] of [['tcp', 6], ['tcp6', 6], ['udp', 17], ['udp6', 17]]) {
    // One read() with a large buffer: each read() of these files walks the
    // whole socket hash table, so a short read is taken as the end (seq_file
    // fills the buffer until it is full or the table ends).
    let text = '';
    let fd = -1;
    try {
      fd = fs.openSync(root + '/net/' + file, 'r');
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        text += buf.toString('latin1', 0, n);
        if (n < buf.length) break;
      }
    } catch { if (fd < 0) continue; }
    if (fd >= 0) fs.closeSync(fd);
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = lines[i].trim().split(/\s+/);
      if (f.length < 10) continue;
      const inode = f[9];
      if (inode === '0') continue;
      const [la, lp] = f[1].split(':');
      const [ra, rp] = f[2].split(':');
      const lport = parseInt(lp, 16);
      const rport = parseInt(rp, 16);
      const lkey = addrKey(la);
      const rkey = addrKey(ra);
      const key = rport === 0 && rkey === '*' ? proto + ' ' + lkey + ' ' + lport : proto + ' ' + lkey + ' ' + lport + ' ' + rkey + ' ' + rport;
      let list = byInode.get(inode);
      if (!list) byInode.set(inode, list = []);
      list.push(key);
      sockets++;
    }
  }
  const owner = new Map();
  let pidsScanned = 0, denied = 0, fds = 0;
  let names = [];
  try { names = fs.readdirSync(root); } catch {}
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(name);
    let entries;
    try { entries = fs.readdirSync(root + '/' + name + '/fd'); } catch (e) { if (e && (e.code === 'EACCES' || e.code === 'EPERM')) denied++; continue; }
    pidsScanned++;
    for (const fd of entries) {
      let link;
      try { link = fs.readlinkSync(root + '/' + name + '/fd/' + fd); } catch { continue; }
      fds++;
      if (!link.startsWith('socket:[')) continue;
      const inode = link.slice(8, -1);
      if (!byInode.has(inode)) continue;
      const prev = owner.get(inode);
      if (prev === undefined || pid < prev) owner.set(inode, pid);
    }
  }
  const comm = new Map();
  const keys = [], pids = [], comms = [];
  for (const [inode, pid] of owner) {
    let cm = comm.get(pid);
    if (cm === undefined) {
      try { cm = fs.readFileSync(root + '/' + pid + '/comm', 'latin1').replace(/\n$/, ''); } catch { cm = ''; }
      comm.set(pid, cm);
    }
    for (const k of byInode.get(inode)) { keys.push(k); pids.push(pid); comms.push(cm); }
  }
  return { keys, pids, comms, sockets, pids_scanned: pidsScanned, denied, fds, ms: Date.now() - t0 };
}
`;

const WORKER_SRC = `
const fs = require('node:fs');
const { parentPort } = require('node:worker_threads');
${SCAN_SRC}
parentPort.on('message', (m) => {
  let r;
  try { r = scan(fs, m.root, m.little); } catch (e) { r = { error: String(e && e.message || e) }; }
  parentPort.postMessage(r);
});
`;

type ScanFn = (fs: unknown, root: string, little: boolean) => ScanResult;
let inProcessScan: ScanFn | undefined;

/** Runs one scan synchronously in this thread (tests, benchmarks). */
export function scanProcSync(procRoot: string): ScanResult {
  inProcessScan ??= new Function(`${SCAN_SRC}; return scan;`)() as ScanFn;
  return inProcessScan(createRequire(import.meta.url)('node:fs'), procRoot, endianness() === 'LE');
}

/** The lookup key of an address held in words[o..o+3] (IPv4 in the last word). */
export function addrKey(version: number, words: ArrayLike<number>, o: number): string {
  if (version === 4) {
    const w = words[o + 3] >>> 0;
    return w === 0 ? '*' : w.toString(16).padStart(8, '0');
  }
  const a = words[o] >>> 0, b = words[o + 1] >>> 0, c = words[o + 2] >>> 0, d = words[o + 3] >>> 0;
  if (a === 0 && b === 0 && c === 0xffff) return d.toString(16).padStart(8, '0');
  if ((a | b | c | d) === 0) return '*';
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0') + c.toString(16).padStart(8, '0') + d.toString(16).padStart(8, '0');
}

export interface ProcResolverOptions {
  /** procfs mount (default /proc). */
  procRoot?: string;
  /** Shortest time between two scans (rate limit), ms. Default 1000. */
  minIntervalMs?: number;
  /** How long a socket stays known after the last scan that saw it, ms. Default 10 min. */
  retainMs?: number;
  /** Scan in a worker thread (default). false: in this thread (tests). */
  worker?: boolean;
  /** Called after every scan (tests, logging). */
  onScan?: (r: ScanResult) => void;
}

interface Known extends ProcOwner {
  seen: number;
}

export class ProcResolver {
  readonly procRoot: string;
  private readonly minIntervalMs: number;
  private readonly retainMs: number;
  private readonly useWorker: boolean;
  private readonly known = new Map<string, Known>();
  private worker: Worker | undefined;
  private inFlight: Promise<void> | undefined;
  private resolveInFlight: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastStart = -Infinity;
  private pending = false;
  private closed = false;

  readonly stats = {
    scans: 0,
    /** Requests (new local flows), including those folded into a scheduled scan. */
    requests: 0,
    lastMs: 0,
    totalMs: 0,
    lastSockets: 0,
    lastFds: 0,
    lastPids: 0,
    deniedPids: 0,
    errors: 0,
    lastError: '',
  };

  constructor(private readonly opts: ProcResolverOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.minIntervalMs = opts.minIntervalMs ?? 1000;
    this.retainMs = opts.retainMs ?? 600_000;
    this.useWorker = opts.worker ?? true;
  }

  get size(): number {
    return this.known.size;
  }

  /**
   * A new local flow started: scan soon. Cheap when a scan is already due
   * (one comparison); never blocks.
   */
  requestRefresh(): void {
    this.stats.requests++;
    if (this.pending || this.closed) return;
    this.pending = true;
    const wait = Math.max(0, this.lastStart + this.minIntervalMs - Date.now());
    if (wait === 0 && !this.inFlight) {
      void this.runScan();
    } else {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.runScan();
      }, wait || 10);
      this.timer.unref();
    }
  }

  /** Scans now (ignoring the rate limit) and resolves when the result is in. */
  async refreshNow(): Promise<void> {
    if (this.inFlight) await this.inFlight;
    this.pending = true;
    await this.runScan();
  }

  private async runScan(): Promise<void> {
    if (this.closed || !this.pending) return;
    if (this.inFlight) {
      // One scan at a time: run again right after this one.
      await this.inFlight;
      if (!this.pending || this.closed) return;
    }
    this.pending = false;
    this.lastStart = Date.now();
    this.inFlight = new Promise<void>((res) => (this.resolveInFlight = res));
    let r: ScanResult | { error: string };
    try {
      r = this.useWorker ? await this.scanInWorker() : scanProcSync(this.procRoot);
    } catch (e) {
      r = { error: (e as Error).message };
    }
    if (!this.closed) this.apply(r);
    const done = this.resolveInFlight;
    this.inFlight = undefined;
    this.resolveInFlight = undefined;
    done?.();
  }

  private scanInWorker(): Promise<ScanResult | { error: string }> {
    if (!this.worker) {
      this.worker = new Worker(WORKER_SRC, { eval: true });
      this.worker.unref();
    }
    const w = this.worker;
    return new Promise((resolve) => {
      const onMsg = (m: ScanResult | { error: string }): void => {
        w.off('error', onErr);
        resolve(m);
      };
      const onErr = (e: Error): void => {
        w.off('message', onMsg);
        this.worker = undefined;
        resolve({ error: e.message });
      };
      w.once('message', onMsg);
      w.once('error', onErr);
      w.postMessage({ root: this.procRoot, little: endianness() === 'LE' });
    });
  }

  private apply(r: ScanResult | { error: string }): void {
    const st = this.stats;
    if ('error' in r) {
      st.errors++;
      st.lastError = r.error;
      return;
    }
    const now = Date.now();
    for (let i = 0; i < r.keys.length; i++) {
      const k = this.known.get(r.keys[i]);
      if (k) {
        k.pid = r.pids[i];
        k.comm = r.comms[i];
        k.seen = now;
      } else {
        this.known.set(r.keys[i], { pid: r.pids[i], comm: r.comms[i], seen: now });
      }
    }
    for (const [key, k] of this.known) if (now - k.seen > this.retainMs) this.known.delete(key);
    st.scans++;
    st.lastMs = r.ms;
    st.totalMs += r.ms;
    st.lastSockets = r.sockets;
    st.lastFds = r.fds;
    st.lastPids = r.pids_scanned;
    st.deniedPids = r.denied;
    this.opts.onScan?.(r);
  }

  /**
   * The owner of the local socket (proto, local address/port, remote
   * address/port): the connected socket, else a socket bound to the local
   * address and port (listening TCP, unconnected UDP), else one bound to
   * the port on every address.
   */
  lookup(proto: number, version: number, words: ArrayLike<number>, lOff: number, lport: number, rOff: number, rport: number): ProcOwner | undefined {
    const lkey = addrKey(version, words, lOff);
    const rkey = addrKey(version, words, rOff);
    const k = this.known.get(`${proto} ${lkey} ${lport} ${rkey} ${rport}`)
      ?? this.known.get(`${proto} ${lkey} ${lport}`)
      ?? this.known.get(`${proto} * ${lport}`);
    return k ? { pid: k.pid, comm: k.comm } : undefined;
  }

  /**
   * The process at this host's end of a flow (TCP and UDP; inbound: the
   * responder, outbound: the originator, local: the originator if known,
   * else the responder). Forwarded and unclassified flows have none.
   */
  ownerOf(table: FlowTable, s: number): ProcOwner | undefined {
    const proto = table.proto(s);
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) return undefined;
    const dir = table.direction(s);
    if (dir !== DIR_INBOUND && dir !== DIR_OUTBOUND && dir !== DIR_LOCAL) return undefined;
    const v = table.ipVersion(s);
    const u = table.recWords(s);
    const end = (orig: boolean): ProcOwner | undefined =>
      this.lookup(proto, v, u, table.addrOffset(s, orig), table.port(s, orig), table.addrOffset(s, !orig), table.port(s, !orig));
    if (dir === DIR_INBOUND) return end(false);
    if (dir === DIR_OUTBOUND) return end(true);
    return end(true) ?? end(false);
  }

  /** Stops the worker and timers. Idempotent. */
  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
    this.resolveInFlight?.();
  }
}
