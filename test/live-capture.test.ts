/**
 * Live capture through the patched `cap` binding (agent/capture/live.ts).
 *
 * These tests need root (or CAP_NET_RAW) and libpcap: CI runs them as root.
 * When a prerequisite is missing they FAIL with a message saying which; they
 * never skip. Traffic: UDP datagrams to 127.0.0.1 only, plus interfaces in a
 * network namespace (ft-<pid>) that the test creates and deletes itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveCaptureError, listDevices, openLive, type LiveCapture } from '../agent/capture/live.js';
import type { InterfaceInfo, PacketSink } from '../agent/capture/types.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Child processes resolve `cap` from here (it walks up to ROOT/node_modules).
const CHILD_DIR = join(ROOT, 'node_modules', '.cache', 'flowtap-live-test');

const ETH_IP_UDP = 14 + 20 + 8;

interface Rec {
  caplen: number;
  wirelen: number;
  tsSec: number;
  tsNsec: number;
  ifIndex: number;
  data: Buffer;
}

class CollectSink implements PacketSink {
  readonly interfaces: InterfaceInfo[] = [];
  readonly packets: Rec[] = [];
  onPacket?: (r: Rec) => void;
  constructor(private readonly base = 7) {}
  addInterface(info: InterfaceInfo): number {
    this.interfaces.push(info);
    return this.base + this.interfaces.length - 1;
  }
  packet(buf: Uint8Array, off: number, caplen: number, wirelen: number, tsSec: number, tsNsec: number, ifIndex: number): void {
    const r = { caplen, wirelen, tsSec, tsNsec, ifIndex, data: Buffer.from(buf.subarray(off, off + caplen)) };
    this.packets.push(r);
    this.onPacket?.(r);
  }
}

function hasCapNetRaw(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt('0x' + m[1]) & (1n << 13n)) !== 0n;
  } catch {
    return false;
  }
}

function payload(seq: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (seq * 7 + i) & 0xff;
  if (len >= 4) b.writeUInt32BE(seq, 0);
  return b;
}

async function udpReceiver(): Promise<{ sock: dgram.Socket; port: number }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((res, rej) => {
    sock.once('error', rej);
    sock.bind(0, '127.0.0.1', () => res());
  });
  sock.on('message', () => {});
  return { sock, port: sock.address().port };
}

async function sendAll(sock: dgram.Socket, port: number, bufs: Buffer[]): Promise<void> {
  for (const b of bufs) {
    await new Promise<void>((res, rej) => sock.send(b, port, '127.0.0.1', (err) => (err ? rej(err) : res())));
  }
}

async function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

function nsOf(r: Rec): bigint {
  return BigInt(r.tsSec) * 1_000_000_000n + BigInt(r.tsNsec);
}

/** Checks one captured lo frame of our datagram `seq` with payload length `len`. */
function checkFrame(r: Rec, port: number, seq: number, len: number, snaplen: number): void {
  const wire = ETH_IP_UDP + len;
  expect(r.wirelen).toBe(wire);
  expect(r.caplen).toBe(Math.min(snaplen, wire));
  expect(r.data.length).toBe(r.caplen);
  expect(r.data.readUInt16BE(12)).toBe(0x0800); // Ethernet type IPv4 (lo is DLT_EN10MB)
  expect(r.data[23]).toBe(17); // IP protocol UDP
  expect(r.data.readUInt16BE(36)).toBe(port);
  const want = payload(seq, len).subarray(0, r.caplen - ETH_IP_UDP);
  expect(r.data.subarray(ETH_IP_UDP).equals(want)).toBe(true);
}

const SIZES = [0, 4, 10, 54, 55, 100, 300, 1000, 1472, 4000, 30000];

let childModule = '';

/** live.ts transpiled for child processes and workers (plain node cannot load .ts). */
async function buildChildModule(): Promise<string> {
  const { transformWithOxc } = await import('vite');
  const src = readFileSync(join(ROOT, 'agent/capture/live.ts'), 'utf8');
  const out = await transformWithOxc(src, 'live.ts', { lang: 'ts' });
  mkdirSync(CHILD_DIR, { recursive: true });
  const file = join(CHILD_DIR, `live-${process.pid}.mjs`);
  writeFileSync(file, out.code);
  return file;
}

function writeChild(name: string, code: string): string {
  const file = join(CHILD_DIR, `${name}-${process.pid}.mjs`);
  writeFileSync(file, code.replaceAll('__LIVE__', JSON.stringify(childModule)));
  return file;
}

function runNode(args: string[], prefix: string[] = [], ms = 15_000): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const cmd = prefix.length > 0 ? prefix[0]! : process.execPath;
    const argv = prefix.length > 0 ? [...prefix.slice(1), process.execPath, ...args] : args;
    const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

describe('live capture (needs root/CAP_NET_RAW and libpcap)', () => {
  const open: LiveCapture[] = [];
  const track = (c: LiveCapture): LiveCapture => (open.push(c), c);

  beforeAll(async () => {
    if (process.platform !== 'linux') throw new Error('live-capture tests need Linux');
    if (process.getuid?.() !== 0 && !hasCapNetRaw()) {
      throw new Error('live-capture tests need root or CAP_NET_RAW (CI runs them as root); they do not skip');
    }
    let devices: string[];
    try {
      devices = listDevices();
    } catch (err) {
      throw new Error(`live-capture tests need the patched cap binding and libpcap: ${(err as Error).message}`);
    }
    if (!devices.includes('lo')) throw new Error(`libpcap does not list "lo" (devices: ${devices.join(', ')})`);
    childModule = await buildChildModule();
  });

  afterAll(() => {
    for (const c of open) c.close();
    for (const name of ['live', 'perm', 'gc', 'worker', 'netns']) rmSync(join(CHILD_DIR, `${name}-${process.pid}.mjs`), { force: true });
  });

  it('delivers every datagram with caplen, wirelen, timestamps and pcap stats', async () => {
    const { sock, port } = await udpReceiver();
    const sink = new CollectSink();
    const snaplen = 96;
    let batches = 0;
    // Not immediate: the TPACKET_V3 block path, handed over after 10 ms.
    const cap = track(openLive({ device: 'lo', filter: `udp and dst port ${port}`, snaplen, timeoutMs: 10, onBatch: () => batches++ }, sink));
    expect(cap.linktype).toBe(1);
    expect(cap.dltName).toBe('EN10MB');
    expect(cap.snaplen).toBe(snaplen);
    expect(cap.tstampPrecision).toBe('nano');
    expect(sink.interfaces).toEqual([{ linktype: 1, snaplen, name: 'lo', fcsBytes: 0 }]);

    const n = 60;
    const lens = Array.from({ length: n }, (_, i) => SIZES[i % SIZES.length]!);
    const t0 = BigInt(Date.now() - 1) * 1_000_000n;
    await sendAll(sock, port, lens.map((l, i) => payload(i, l)));
    await waitFor(() => sink.packets.length >= n, 3000);
    const t1 = BigInt(Date.now() + 1) * 1_000_000n;
    const st = cap.stats();
    cap.close();
    sock.close();

    expect(sink.packets.length).toBe(n);
    let prev = 0n;
    for (let i = 0; i < n; i++) {
      const r = sink.packets[i]!;
      expect(r.ifIndex).toBe(7);
      expect(r.data.length >= ETH_IP_UDP + 4 ? r.data.readUInt32BE(ETH_IP_UDP) : i).toBe(i);
      checkFrame(r, port, i, lens[i]!, snaplen);
      expect(r.tsNsec).toBeGreaterThanOrEqual(0);
      expect(r.tsNsec).toBeLessThan(1e9);
      const ts = nsOf(r);
      expect(ts >= t0 && ts <= t1, `timestamp ${ts} outside [${t0}, ${t1}]`).toBe(true);
      expect(ts >= prev, 'timestamps nondecreasing').toBe(true);
      prev = ts;
    }
    expect(sink.packets.some((r) => r.caplen < r.wirelen)).toBe(true);
    expect(st.received).toBeGreaterThanOrEqual(n);
    expect(st.dropped).toBe(0);
    expect(st.packets).toBe(n);
    expect(batches).toBe(st.batches);
    expect(batches).toBeLessThan(n); // several packets per JS call
  });

  it('the batch path delivers the same packets as the one-at-a-time path', async () => {
    const { sock, port } = await udpReceiver();
    const filter = `udp and dst port ${port}`;
    const sA = new CollectSink(0);
    const sB = new CollectSink(0);
    const a = track(openLive({ device: 'lo', filter, snaplen: 200, timeoutMs: 5 }, sA));
    const b = track(openLive({ device: 'lo', filter, snaplen: 200, immediate: true, batch: false }, sB));
    const n = 40;
    const lens = Array.from({ length: n }, (_, i) => SIZES[(i * 3) % SIZES.length]!);
    await sendAll(sock, port, lens.map((l, i) => payload(1000 + i, l)));
    await waitFor(() => sA.packets.length >= n && sB.packets.length >= n, 3000);
    a.close();
    b.close();
    sock.close();

    expect(sA.packets.length).toBe(n);
    expect(sB.packets.length).toBe(n);
    expect(a.stats().batches).toBeLessThan(n);
    expect(b.stats().batches).toBe(n);
    for (let i = 0; i < n; i++) {
      const pa = sA.packets[i]!;
      const pb = sB.packets[i]!;
      checkFrame(pa, port, 1000 + i, lens[i]!, 200);
      expect([pb.caplen, pb.wirelen]).toEqual([pa.caplen, pa.wirelen]);
      expect(pb.data.equals(pa.data)).toBe(true);
      // Each packet socket stamps the packet itself: same moment within 5 ms.
      const d = nsOf(pa) - nsOf(pb);
      expect(d < 5_000_000n && d > -5_000_000n, `timestamps differ by ${d} ns`).toBe(true);
    }
  });

  it('close() is idempotent, works from inside the sink, and stats() answers after it', async () => {
    const { sock, port } = await udpReceiver();
    const sink = new CollectSink();
    const cap = track(openLive({ device: 'lo', filter: `udp and dst port ${port}`, snaplen: 128, timeoutMs: 5 }, sink));
    sink.onPacket = () => {
      if (sink.packets.length === 3) cap.close();
    };
    await sendAll(sock, port, Array.from({ length: 10 }, (_, i) => payload(i, 20)));
    await waitFor(() => cap.closed, 3000);
    await new Promise((r) => setTimeout(r, 50));
    expect(cap.closed).toBe(true);
    expect(sink.packets.length).toBe(3); // nothing after close, even from the same batch
    const st = cap.stats();
    expect(st.packets).toBe(3);
    expect(st.received).toBeGreaterThanOrEqual(3);
    expect(() => cap.close()).not.toThrow();
    expect(() => cap.close()).not.toThrow();
    expect(cap.stats()).toEqual(st);
    sock.close();

    const idle = openLive({ device: 'lo', filter: 'udp and port 9', snaplen: 64 }, new CollectSink());
    idle.close();
    idle.close();
    expect(idle.closed).toBe(true);
  });

  it('a bad BPF filter fails with libpcap\'s message', () => {
    for (const filter of ['udp port nonsense_xyz', 'tcp and and']) {
      let err: unknown;
      try {
        track(openLive({ device: 'lo', filter }, new CollectSink()));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(LiveCaptureError);
      const e = err as LiveCaptureError;
      expect(e.reason).toBe('bad_filter');
      expect(e.detail.length).toBeGreaterThan(0);
      expect(e.message).toBe(`invalid BPF filter "${filter}" for "lo": ${e.detail}`);
    }
    expect(() => openLive({ device: 'lo', filter: 'udp port nonsense_xyz' }, new CollectSink())).toThrow(/unknown port 'nonsense_xyz'/);
    expect(() => openLive({ device: 'lo', filter: 'tcp and and' }, new CollectSink())).toThrow(/syntax error/);
  });

  it('a missing device fails listing the available ones', () => {
    let err: unknown;
    try {
      track(openLive({ device: 'ft-nosuch0' }, new CollectSink()));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LiveCaptureError);
    const e = err as LiveCaptureError;
    expect(e.reason).toBe('no_such_device');
    expect(e.available).toContain('lo');
    expect(e.message).toMatch(/^no such capture device "ft-nosuch0"; available devices: .*\blo\b/);
  });

  it('bad options fail before touching libpcap', () => {
    expect(() => openLive({ device: 'lo', snaplen: 0 }, new CollectSink())).toThrow(/snaplen/);
    expect(() => openLive({ device: 'lo', snaplen: 1000, batchBytes: 500 }, new CollectSink())).toThrow(/batchBytes/);
    expect(() => openLive({ device: '' }, new CollectSink())).toThrow(/device/);
  });

  it('permission denied names CAP_NET_RAW (child without CAP_NET_RAW)', async () => {
    expect(existsSync('/usr/bin/setpriv'), 'setpriv (util-linux) is needed for this test').toBe(true);
    const child = writeChild('perm', `
      import { openLive } from __LIVE__;
      try {
        openLive({ device: 'lo' }, { addInterface: () => 0, packet() {} });
        console.log(JSON.stringify({ opened: true }));
      } catch (e) {
        console.log(JSON.stringify({ reason: e.reason, message: e.message }));
      }
    `);
    const r = await runNode([child], ['setpriv', '--bounding-set', '-net_raw']);
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r.stdout);
    expect(out.reason).toBe('permission_denied');
    expect(String(out.message)).toMatch(/^permission denied capturing on "lo": .*CAP_NET_RAW.*libpcap: .*Operation not permitted/);
  });

  it('survives forced GCs while capturing; the binding holds the buffer itself', async () => {
    const child = writeChild('gc', `
      import { createRequire } from 'node:module';
      import dgram from 'node:dgram';
      import { openLive } from __LIVE__;
      const { Cap } = createRequire(import.meta.url)('cap');
      if (typeof gc !== 'function') throw new Error('run with --expose-gc');
      const recv = dgram.createSocket('udp4');
      await new Promise((r) => recv.bind(0, '127.0.0.1', r));
      recv.on('message', () => {});
      const port = recv.address().port;
      // 1. Raw binding, buffer referenced by nothing in JS.
      const raw = new Cap();
      let rawPackets = 0;
      raw.on('batch', (count) => { rawPackets += count; });
      // (8 MiB ring: with TPACKET_V3 libpcap makes 256 KiB blocks, each retired after \`timeout\` ms)
      raw.open('lo', 'udp and dst port ' + port, 8 << 20, Buffer.alloc(1 << 20), { batch: true, snaplen: 256, timeout: 20, immediate: false });
      for (let i = 0; i < 5; i++) gc();
      // Same-size buffers that would reuse the memory if the binding had let it go.
      const canaries = Array.from({ length: 32 }, () => Buffer.alloc(1 << 20, 0xa5));
      // 2. openLive, GCs between sends.
      let livePackets = 0, bad = 0;
      const sink = { addInterface: () => 0, packet(buf, off, caplen, wirelen) {
        livePackets++;
        if (wirelen !== 42 + 200 || caplen !== 242 || buf[off + 23] !== 17) bad++;
        if (livePackets % 50 === 0) gc();
      } };
      const live = openLive({ device: 'lo', filter: 'udp and dst port ' + port, snaplen: 512, timeoutMs: 20 }, sink);
      const sender = dgram.createSocket('udp4');
      const n = 1000;
      for (let i = 0; i < n; i++) {
        await new Promise((r) => sender.send(Buffer.alloc(200, i & 0xff), port, '127.0.0.1', r));
        if (i % 100 === 0) gc();
      }
      const end = Date.now() + 3000;
      while ((rawPackets < n || livePackets < n) && Date.now() < end) { await new Promise((r) => setTimeout(r, 10)); gc(); }
      const intact = canaries.every((c) => c.every((x) => x === 0xa5));
      const st = live.stats();
      raw.close(); live.close(); live.close(); sender.close(); recv.close();
      console.log(JSON.stringify({ rawPackets, livePackets, bad, intact, received: st.received, dropped: st.dropped }));
    `);
    const r = await runNode(['--expose-gc', child]);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r.stdout);
    expect(out).toMatchObject({ rawPackets: 1000, livePackets: 1000, bad: 0, intact: true });
    expect(out.received as number).toBeGreaterThanOrEqual(1000);
  });

  it('works in a worker thread, which can be terminated while capturing', async () => {
    const child = writeChild('worker', `
      import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
      import dgram from 'node:dgram';
      if (isMainThread) {
        const recv = dgram.createSocket('udp4');
        await new Promise((r) => recv.bind(0, '127.0.0.1', r));
        const port = recv.address().port;
        const w = new Worker(new URL(import.meta.url), { workerData: port });
        const got = await new Promise((res, rej) => {
          w.on('error', rej);
          w.on('message', (m) => {
            if (m === 'ready') { const s = dgram.createSocket('udp4'); s.send('hello', port, '127.0.0.1', () => s.close()); }
            else res(m);
          });
        });
        const code = await w.terminate(); // capture still open in the worker
        recv.close();
        console.log(JSON.stringify({ got, code }));
      } else {
        const { openLive } = await import(__LIVE__);
        openLive({ device: 'lo', filter: 'udp and dst port ' + workerData, immediate: true }, {
          addInterface: () => 0,
          packet: (buf, off, caplen, wirelen) => parentPort.postMessage({ caplen, wirelen }),
        });
        parentPort.postMessage('ready');
      }
    `);
    const r = await runNode([child]);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout)).toEqual({ got: { caplen: 47, wirelen: 47 }, code: 1 });
  });

  it('in a namespace: raw IP (tun) and SLL2 link types by number; a vanished interface is an error, not a crash', async () => {
    const ns = `ft-${process.pid}`;
    const child = writeChild('netns', `
      import { execFileSync } from 'node:child_process';
      import { openLive } from __LIVE__;
      const ip = (...a) => execFileSync('ip', a);
      const sink = { addInterface: () => 0, packet() {} };
      const out = {};
      ip('link', 'set', 'lo', 'up');
      ip('tuntap', 'add', 'ft-tun0', 'mode', 'tun');
      ip('link', 'set', 'ft-tun0', 'up');
      const t = openLive({ device: 'ft-tun0' }, sink);
      out.tun = { linktype: t.linktype, dlt: t.dlt, dltName: t.dltName };
      t.close();
      const a = openLive({ device: 'any', datalink: 276 }, sink);
      out.any = { linktype: a.linktype, dltName: a.dltName };
      a.close();
      ip('link', 'add', 'ft-a', 'type', 'veth', 'peer', 'name', 'ft-b');
      ip('link', 'set', 'ft-b', 'up');
      ip('link', 'set', 'ft-a', 'up');
      for (const how of ['down', 'del']) {
        ip('link', 'set', 'ft-a', 'up');
        const err = await new Promise((resolve) => {
          const c = openLive({ device: 'ft-a', immediate: how === 'down', onError: (e) => resolve({ reason: e.reason, message: e.message, closed: c.closed }) }, sink);
          setTimeout(() => how === 'down' ? ip('link', 'set', 'ft-a', 'down') : ip('link', 'del', 'ft-a'), 20);
          setTimeout(() => resolve({ timeout: true }), 2000).unref();
        });
        out[how] = err;
      }
      console.log(JSON.stringify(out));
    `);
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const r = await runNode([child], ['ip', 'netns', 'exec', ns]);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      const out = lastJson(r.stdout);
      expect(out.tun).toEqual({ linktype: 101, dlt: 12, dltName: 'RAW' });
      expect(out.any).toEqual({ linktype: 276, dltName: 'LINUX_SLL2' });
      expect(out.down).toEqual({ reason: 'capture_failed', message: 'capture on "ft-a" stopped: The interface went down', closed: true });
      expect(out.del).toEqual({ reason: 'capture_failed', message: 'capture on "ft-a" stopped: The interface disappeared', closed: true });
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});
