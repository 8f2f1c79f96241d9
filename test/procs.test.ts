/**
 * Process attribution (agent/procs.ts): the /proc scanner on a synthetic
 * procfs (exact expectations), lookups (connected > bound > wildcard), the
 * rate limit and retention of the resolver, the worker thread, and one scan
 * of the real /proc that must find this process's own sockets.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import dgram from 'node:dgram';
import { ProcResolver, addrKey, scanProcSync } from '../agent/procs.js';
import { parseAddr } from '../parsers/addr.js';

const LE = endianness() === 'LE';
const root = mkdtempSync(join(tmpdir(), 'ft-procs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** /proc/net hex of an address, as the kernel prints it (native-order 32-bit words). */
function procHex(text: string): string {
  const w = new Uint32Array(4);
  const v = parseAddr(text, w);
  const word = (x: number): string => {
    const h = (x >>> 0).toString(16).padStart(8, '0').toUpperCase();
    return LE ? h.slice(6, 8) + h.slice(4, 6) + h.slice(2, 4) + h.slice(0, 2) : h;
  };
  return v === 4 ? word(w[3]) : word(w[0]) + word(w[1]) + word(w[2]) + word(w[3]);
}

interface Sock {
  local: string;
  lport: number;
  remote: string;
  rport: number;
  st: string;
  inode: number;
}

function netFile(socks: Sock[]): string {
  const head = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
  return head + socks.map((s, i) =>
    `   ${i}: ${procHex(s.local)}:${s.lport.toString(16).toUpperCase().padStart(4, '0')} ${procHex(s.remote)}:${s.rport.toString(16).toUpperCase().padStart(4, '0')} ${s.st} 00000000:00000000 00:00000000 00000000     0        0 ${s.inode} 1 0000000000000000 100 0 0 10 0`,
  ).join('\n') + '\n';
}

/** A fake procfs: net/{tcp,tcp6,udp,udp6} and /<pid>/{fd/*,comm}. */
function fakeProc(dir: string, files: Record<string, Sock[]>, procs: Record<number, { comm: string; fds: (number | string)[] }>): string {
  mkdirSync(join(dir, 'net'), { recursive: true });
  for (const f of ['tcp', 'tcp6', 'udp', 'udp6']) writeFileSync(join(dir, 'net', f), netFile(files[f] ?? []));
  for (const [pid, p] of Object.entries(procs)) {
    mkdirSync(join(dir, pid, 'fd'), { recursive: true });
    writeFileSync(join(dir, pid, 'comm'), p.comm + '\n');
    p.fds.forEach((x, i) => symlinkSync(typeof x === 'number' ? `socket:[${x}]` : x, join(dir, pid, 'fd', String(i + 3))));
  }
  mkdirSync(join(dir, 'self'), { recursive: true }); // not a pid: ignored
  return dir;
}

function words(text: string): { v: number; w: Uint32Array } {
  const w = new Uint32Array(4);
  const v = parseAddr(text, w);
  return { v, w };
}

/** lookup() with text addresses. */
function look(r: ProcResolver, proto: number, local: string, lport: number, remote: string, rport: number) {
  const l = words(local);
  const rr = words(remote);
  const both = new Uint32Array(8);
  both.set(l.w, 0);
  both.set(rr.w, 4);
  return r.lookup(proto, l.v, both, 0, lport, 4, rport);
}

const fake = fakeProc(join(root, 'a'), {
  tcp: [
    { local: '0.0.0.0', lport: 8080, remote: '0.0.0.0', rport: 0, st: '0A', inode: 1001 }, // listener, every address
    { local: '10.0.0.1', lport: 8080, remote: '10.0.0.2', rport: 40000, st: '01', inode: 1002 }, // accepted
    { local: '10.0.0.1', lport: 8080, remote: '10.0.0.3', rport: 40001, st: '01', inode: 0 }, // not accepted yet / TIME_WAIT
    { local: '10.0.0.1', lport: 50000, remote: '192.0.2.9', rport: 443, st: '01', inode: 1003 }, // client
  ],
  tcp6: [
    { local: '::', lport: 9090, remote: '::', rport: 0, st: '0A', inode: 1004 }, // dual-stack listener
    { local: '::ffff:10.0.0.1', lport: 9090, remote: '::ffff:10.0.0.7', rport: 41000, st: '01', inode: 1005 }, // v4 client of it
    { local: '2001:db8::1', lport: 22, remote: '2001:db8::2', rport: 50022, st: '01', inode: 1006 },
  ],
  udp: [
    { local: '10.0.0.1', lport: 53, remote: '0.0.0.0', rport: 0, st: '07', inode: 1007 }, // bound to one address
    { local: '0.0.0.0', lport: 5353, remote: '0.0.0.0', rport: 0, st: '07', inode: 1008 },
  ],
  udp6: [
    { local: '2001:db8::1', lport: 6000, remote: '2001:db8::9', rport: 7000, st: '01', inode: 1009 }, // connected
  ],
}, {
  300: { comm: 'worker', fds: [1002, 'pipe:[5]', '/dev/null'] },
  200: { comm: 'server', fds: [1001, 1002, 1004, 1005] }, // the listener's owner (lower pid wins 1002)
  400: { comm: 'curl', fds: [1003] },
  500: { comm: 'sshd', fds: [1006] },
  600: { comm: 'dnsd', fds: [1007, 1008, 1009] },
  700: { comm: 'idle', fds: ['anon_inode:[eventfd]'] },
});

describe('address keys', () => {
  it('IPv4, IPv6, IPv4-mapped and unspecified', () => {
    const k = (t: string): string => {
      const { v, w } = words(t);
      return addrKey(v, w, 0);
    };
    expect(k('10.0.0.1')).toBe('0a000001');
    expect(k('0.0.0.0')).toBe('*');
    expect(k('::')).toBe('*');
    expect(k('::ffff:10.0.0.1')).toBe('0a000001');
    expect(k('2001:db8::1')).toBe('20010db8000000000000000000000001');
  });
});

describe('scanner on a synthetic procfs', () => {
  it('joins /proc/net sockets with /proc/<pid>/fd links', () => {
    const r = scanProcSync(fake);
    expect(r.sockets).toBe(9); // inode 0 skipped
    expect(r.pids_scanned).toBe(6);
    expect(r.fds).toBe(13);
    const got = Object.fromEntries(r.keys.map((k, i) => [k, `${r.pids[i]} ${r.comms[i]}`]));
    expect(got).toEqual({
      '6 * 8080': '200 server',
      '6 0a000001 8080 0a000002 40000': '200 server',
      '6 0a000001 50000 c0000209 443': '400 curl',
      '6 * 9090': '200 server',
      '6 0a000001 9090 0a000007 41000': '200 server',
      '6 20010db8000000000000000000000001 22 20010db8000000000000000000000002 50022': '500 sshd',
      '17 0a000001 53': '600 dnsd',
      '17 * 5353': '600 dnsd',
      '17 20010db8000000000000000000000001 6000 20010db8000000000000000000000009 7000': '600 dnsd',
    });
  });
});

describe('ProcResolver', () => {
  it('looks up connected, then bound, then wildcard sockets (worker thread)', async () => {
    const r = new ProcResolver({ procRoot: fake });
    await r.refreshNow();
    expect(r.stats.scans).toBe(1);
    expect(r.stats.errors).toBe(0);
    expect(look(r, 6, '10.0.0.1', 8080, '10.0.0.2', 40000)).toEqual({ pid: 200, comm: 'server' }); // accepted socket
    expect(look(r, 6, '10.0.0.1', 8080, '10.0.0.3', 40001)).toEqual({ pid: 200, comm: 'server' }); // via the listener
    expect(look(r, 6, '10.0.0.1', 50000, '192.0.2.9', 443)).toEqual({ pid: 400, comm: 'curl' });
    expect(look(r, 6, '10.0.0.1', 50001, '192.0.2.9', 443)).toBeUndefined();
    expect(look(r, 6, '10.0.0.1', 9090, '10.0.0.7', 41000)).toEqual({ pid: 200, comm: 'server' }); // IPv4 on a dual-stack socket
    expect(look(r, 6, '10.0.0.5', 9090, '10.0.0.8', 41001)).toEqual({ pid: 200, comm: 'server' }); // wildcard ::
    expect(look(r, 6, '2001:db8::1', 22, '2001:db8::2', 50022)).toEqual({ pid: 500, comm: 'sshd' });
    expect(look(r, 17, '10.0.0.1', 53, '198.51.100.1', 33333)).toEqual({ pid: 600, comm: 'dnsd' }); // bound UDP
    expect(look(r, 17, '10.0.0.2', 53, '198.51.100.1', 33333)).toBeUndefined(); // other address
    expect(look(r, 17, '10.9.9.9', 5353, '224.0.0.251', 5353)).toEqual({ pid: 600, comm: 'dnsd' });
    expect(look(r, 6, '10.9.9.9', 5353, '224.0.0.251', 5353)).toBeUndefined(); // protocol matters
    expect(look(r, 17, '2001:db8::1', 6000, '2001:db8::9', 7000)).toEqual({ pid: 600, comm: 'dnsd' });
    await r.shutdown();
    await r.shutdown();
  });

  it('rate-limits scans: the first request scans at once, a burst of requests yields one more scan', async () => {
    let scans = 0;
    const r = new ProcResolver({ procRoot: fake, minIntervalMs: 300, worker: false, onScan: () => scans++ });
    const t0 = Date.now();
    r.requestRefresh();
    await new Promise((res) => setTimeout(res, 20));
    expect(scans).toBe(1);
    for (let i = 0; i < 1000; i++) r.requestRefresh();
    await new Promise((res) => setTimeout(res, 100));
    expect(scans).toBe(1); // within the interval: waits
    await new Promise((res) => setTimeout(res, 300));
    expect(scans).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(r.stats.requests).toBe(1001);
    await new Promise((res) => setTimeout(res, 400));
    expect(scans).toBe(2); // nothing asked since
    await r.shutdown();
  });

  it('keeps a socket known for retainMs after it disappeared', async () => {
    const dir = join(root, 'b');
    const mk = (withClient: boolean) => {
      rmSync(dir, { recursive: true, force: true });
      fakeProc(dir, { tcp: withClient ? [{ local: '10.0.0.1', lport: 50000, remote: '192.0.2.9', rport: 443, st: '01', inode: 77 }] : [] },
        { 42: { comm: 'client', fds: withClient ? [77] : [] } });
    };
    mk(true);
    const r = new ProcResolver({ procRoot: dir, worker: false, retainMs: 150 });
    await r.refreshNow();
    expect(look(r, 6, '10.0.0.1', 50000, '192.0.2.9', 443)).toEqual({ pid: 42, comm: 'client' });
    mk(false);
    await r.refreshNow();
    expect(look(r, 6, '10.0.0.1', 50000, '192.0.2.9', 443)).toEqual({ pid: 42, comm: 'client' }); // retained
    await new Promise((res) => setTimeout(res, 200));
    await r.refreshNow();
    expect(look(r, 6, '10.0.0.1', 50000, '192.0.2.9', 443)).toBeUndefined();
    expect(r.size).toBe(0);
    await r.shutdown();
  });

  it('a procfs that is not there is an error counted, not a crash', async () => {
    const r = new ProcResolver({ procRoot: join(root, 'nope') });
    await r.refreshNow();
    expect(r.stats.scans).toBe(1);
    expect(r.size).toBe(0);
    await r.shutdown();
  });
});

describe('the real /proc', () => {
  it('finds this process as the owner of its TCP and UDP sockets; reports the scan cost', async () => {
    const server = net.createServer((s) => s.on('data', () => {}));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const sport = (server.address() as net.AddressInfo).port;
    const client = net.connect(sport, '127.0.0.1');
    await new Promise<void>((res) => client.once('connect', () => res()));
    const cport = client.localPort!;
    const udp = dgram.createSocket('udp6');
    await new Promise<void>((res) => udp.bind(0, '::', () => res()));
    const uport = udp.address().port;

    const comm = readFileSync('/proc/self/comm', 'utf8').trim();
    const me = { pid: process.pid, comm };
    const r = new ProcResolver();
    const t0 = performance.now();
    await r.refreshNow();
    const wall = performance.now() - t0;
    try {
      expect(look(r, 6, '127.0.0.1', cport, '127.0.0.1', sport)).toEqual(me); // client end
      expect(look(r, 6, '127.0.0.1', sport, '127.0.0.1', cport)).toEqual(me); // accepted end
      expect(look(r, 6, '127.0.0.1', sport, '127.0.0.1', 1)).toEqual(me); // the listener
      expect(look(r, 17, '192.0.2.1', uport, '198.51.100.2', 9)).toEqual(me); // dual-stack UDP, IPv4 flow
      expect(look(r, 17, '2001:db8::1', uport, '2001:db8::2', 9)).toEqual(me);
      // Informational: what a scan costs here (docs/scaling.md quotes it).
      console.log(`/proc scan: ${r.stats.lastMs} ms in the worker (${wall.toFixed(1)} ms until the result was in) for ${r.stats.lastPids} processes, ${r.stats.lastFds} fds, ${r.stats.lastSockets} sockets`);
    } finally {
      client.destroy();
      udp.close();
      server.close();
      await r.shutdown();
    }
  });
});
