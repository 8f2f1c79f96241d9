/**
 * `flowtap run` as a process: capture health (kernel drops visible in
 * /metrics), graceful shutdown (SIGTERM flushes every flow, exit 0; a second
 * signal exits at once), SIGHUP reopens --flows, idle flows end on
 * wall-clock ticks, least privilege (nobody + CAP_NET_RAW only, promiscuous
 * mode included), a capture whose interface disappears is retried, and each
 * start-up error is one line with the fix.
 *
 * Root is needed (CI is root); traffic stays on loopback or in namespaces
 * ft-<x>-<pid> made and deleted here. Nothing is skipped: a missing tool
 * fails the suite naming it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BIN, ROOT, build, delNetns, httpGet, killAll, netns, parseProm, procStatus, readNdjson, requirePrereqs, sh, sleep, start, startFlowtap, sum, unprivilegedBin,
} from './run-helpers.js';

const PID = process.pid;
const H = `ft-h-${PID}`; // capture health
const D = `ft-d-${PID}`; // shutdown, SIGHUP, ticks
const P = `ft-p-${PID}`; // privilege
const E = `ft-e-${PID}`; // start-up errors, vanishing interface
const ALL = [H, D, P, E];
let dir = '';

/** A UDP sender run in a namespace: `count` datagrams of `len` bytes to host:port, as fast as possible. */
const BLAST = `
import dgram from 'node:dgram';
const [host, port, count, len, parallel] = process.argv.slice(2);
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
const buf = Buffer.alloc(Number(len), 7);
let sent = 0, done = 0;
const total = Number(count);
await new Promise((res) => {
  const one = () => {
    if (sent >= total) return;
    sent++;
    s.send(buf, Number(port), host, () => { if (++done === total) res(); else one(); });
  };
  for (let i = 0; i < Number(parallel || 1); i++) one();
});
s.close();
console.log(JSON.stringify({ sent: done }));
`;

/** Keeps a TCP connection open and sends some UDP: flows that are live when flowtap is stopped. */
const HOLD = `
import net from 'node:net';
import dgram from 'node:dgram';
const srv = net.createServer((c) => c.on('data', (d) => c.write(d)));
await new Promise((r) => srv.listen(0, '127.0.0.1', r));
const c = net.connect(srv.address().port, '127.0.0.1');
await new Promise((r) => c.on('connect', r));
c.write('hello');
await new Promise((r) => c.once('data', r));
const u = dgram.createSocket('udp4');
for (let p = 7001; p <= 7005; p++) for (let i = 0; i < 3; i++) await new Promise((r) => u.send(Buffer.alloc(100), p, '127.0.0.1', r));
console.log(JSON.stringify({ tcp: [c.localPort, srv.address().port] }));
setInterval(() => {}, 1000);
`;

/**
 * In `ns`: a veth pair fta (SUBNET.1/24) - ftb, both up, with a static neighbour
 * SUBNET.2 at ftb's MAC, so packets sent to SUBNET.2 leave through fta without ARP.
 */
function vethToNeighbour(ns: string, subnet: string): void {
  sh('ip', ['-n', ns, 'link', 'add', 'fta', 'type', 'veth', 'peer', 'name', 'ftb']);
  sh('ip', ['-n', ns, 'addr', 'add', `${subnet}.1/24`, 'dev', 'fta']);
  sh('ip', ['-n', ns, 'link', 'set', 'fta', 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'ftb', 'up']);
  const mac = /link\/ether ([0-9a-f:]+)/.exec(sh('ip', ['-n', ns, 'link', 'show', 'ftb']))![1];
  sh('ip', ['-n', ns, 'neigh', 'add', `${subnet}.2`, 'lladdr', mac, 'dev', 'fta']);
}

function nsWithLo(ns: string): void {
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

beforeAll(() => {
  requirePrereqs(['ip', 'setpriv']);
  build();
  delNetns(...ALL);
  dir = mkdtempSync(join(tmpdir(), 'ft-agent-'));
  chmodSync(dir, 0o777); // the privilege test's nobody writes here
  writeFileSync(join(dir, 'blast.mjs'), BLAST);
  writeFileSync(join(dir, 'hold.mjs'), HOLD);
  for (const ns of ALL) nsWithLo(ns);
});

afterAll(async () => {
  await killAll();
  delNetns(...ALL);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('capture health', () => {
  it('a burst beyond what a tiny ring holds shows as kernel drops in /metrics; delivered + dropped = sent', async () => {
    const N = 20_000;
    // A veth, not lo: on lo the kernel puts both the outgoing and the incoming copy of a packet in the
    // ring (libpcap skips the outgoing one), so each packet lost there counts twice in tp_drops.
    vethToNeighbour(H, '10.97.0');
    const ft = await startFlowtap(H, ['-i', 'fta', '-f', 'udp dst port 7777', '--buffer-size', '64KiB', '--snaplen', '64', '--listen', '127.0.0.1:0', '--no-processes']);
    // Stopped, flowtap cannot empty the ring: the kernel must drop.
    process.kill(ft.pid, 'SIGSTOP');
    let sent: number;
    try {
      sent = (JSON.parse(netns(H, process.execPath, join(dir, 'blast.mjs'), '10.97.0.2', '7777', String(N), '200', '64')) as { sent: number }).sent;
    } finally {
      process.kill(ft.pid, 'SIGCONT');
    }
    expect(sent).toBe(N);
    await sleep(1600); // drained, and one tick published the capture stats
    const m = parseProm((await httpGet(H, ft.port)).body);
    const kernel = sum(m, 'flowtap_capture_dropped_packets_total', { interface: 'fta', where: 'kernel' });
    const delivered = sum(m, 'flowtap_capture_packets_total', { interface: 'fta' });
    expect(kernel).toBeGreaterThan(0);
    expect(delivered).toBeGreaterThan(0);
    expect(delivered + kernel).toBe(N);
    expect(sum(m, 'flowtap_capture_dropped_packets_total', { interface: 'fta', where: 'queue' })).toBe(0);
    expect((await ft.stop()).code).toBe(0);
  });
});

describe('shutdown, SIGHUP, idle ticks', () => {
  it('SIGTERM stops capture, writes every live flow to --flows and exits 0 within 5 s', async () => {
    const flows = join(dir, 'term.ndjson');
    const ft = await startFlowtap(D, ['-i', 'lo', '--listen', '127.0.0.1:0', '--flows', flows]);
    const hold = start('ip', ['netns', 'exec', D, process.execPath, join(dir, 'hold.mjs')]);
    const { tcp } = JSON.parse((await hold.waitFor(/\{.*\}/))[0]) as { tcp: [number, number] };
    await sleep(400);
    expect(readNdjson(flows)).toEqual([]); // all live (idle timeouts are long)
    const exit = await ft.stop('SIGTERM');
    expect(exit.code, ft.stderr()).toBe(0);
    expect(exit.ms).toBeLessThan(5000);
    expect(ft.stderr()).toMatch(/SIGTERM: stopping/);
    const recs = readNdjson(flows);
    expect(recs.every((r) => r.final === true)).toBe(true);
    for (let p = 7001; p <= 7005; p++) {
      const u = recs.filter((r) => r.proto === 'udp' && r['id.resp_p'] === p);
      expect(u.length, `udp flow to ${p}`).toBe(1);
      expect(u[0].orig_pkts).toBe(3);
      expect(u[0].direction).toBe('local');
      expect(u[0].process).toBe('node'); // the sender, found in /proc
    }
    const t = recs.filter((r) => r.proto === 'tcp' && r['id.orig_p'] === tcp[0] && r['id.resp_p'] === tcp[1]);
    expect(t.length).toBe(1);
    expect(t[0].conn_state).toBe('S1'); // still open
    expect(t[0].orig_bytes).toBe(5);
    expect(t[0].resp_bytes).toBe(5);
    expect(t[0].pid).toBe(hold.pid);
    await hold.stop('SIGKILL');
  });

  it('a second signal exits at once', async () => {
    const ft = await startFlowtap(D, ['-i', 'lo', '--listen', '127.0.0.1:0']);
    // A request still being sent keeps the graceful stop waiting (up to 2 s) for the metrics listener:
    // the second signal surely comes while it runs.
    const hold = `const s = require('net').connect(${ft.port}, '127.0.0.1', () => { s.write('GET /metrics HTTP/1.1\\r\\n'); console.log('open'); }); setTimeout(() => process.exit(0), 5000);`;
    const holder = start('ip', ['netns', 'exec', D, process.execPath, '-e', hold]);
    await holder.waitFor(/open/);
    process.kill(ft.pid, 'SIGTERM');
    await ft.waitFor(/SIGTERM: stopping/);
    process.kill(ft.pid, 'SIGINT');
    const exit = await ft.exited;
    expect(exit.code).toBe(130);
    expect(ft.stderr()).toMatch(/SIGINT again: exiting now/);
  });

  it('idle flows end on wall-clock ticks; SIGHUP reopens --flows (logrotate)', async () => {
    const flows = join(dir, 'hup.ndjson');
    const ft = await startFlowtap(D, ['-i', 'lo', '--listen', '127.0.0.1:0', '--flows', flows, '--idle-timeout-udp', '1s']);
    const blast = (port: number): void => void netns(D, process.execPath, join(dir, 'blast.mjs'), '127.0.0.1', String(port), '4', '50');
    const waitFor = async (path: string, port: number): Promise<void> => {
      const end = Date.now() + 5000;
      while (!readNdjson(path).some((r) => r['id.resp_p'] === port)) {
        if (Date.now() > end) throw new Error(`no record for port ${port} in ${path}`);
        await sleep(100);
      }
    };
    blast(7101);
    const t0 = Date.now();
    await waitFor(flows, 7101); // no packet after it: only the tick can end it
    expect(Date.now() - t0).toBeLessThan(4000);
    renameSync(flows, flows + '.1');
    process.kill(ft.pid, 'SIGHUP');
    await ft.waitFor(/flows: reopened/);
    blast(7102);
    await waitFor(flows, 7102);
    expect(readNdjson(flows + '.1').map((r) => r['id.resp_p'])).toEqual([7101]);
    expect(readNdjson(flows).map((r) => r['id.resp_p'])).toEqual([7102]);
    const r = readNdjson(flows)[0];
    expect(r).toMatchObject({ proto: 'udp', orig_pkts: 4, final: true, direction: 'local' });
    expect((await ft.stop()).code).toBe(0);
  });
});

describe('least privilege', () => {
  it('runs as nobody with only CAP_NET_RAW (ambient), promiscuous mode included, and captures', async () => {
    vethToNeighbour(P, '10.98.0');
    const flows = join(dir, 'priv.ndjson');
    const prefix = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups',
      '--inh-caps=-all,+net_raw', '--ambient-caps=-all,+net_raw', '--bounding-set=-all,+net_raw'];
    const ft = await startFlowtap(P, ['-i', 'fta', '--listen', '127.0.0.1:0', '--flows', flows], { prefix, bin: unprivilegedBin() });
    const st = procStatus(ft.pid);
    expect(st.uid).toBe(65534);
    expect(st.capEff).toBe(1n << 13n); // CAP_NET_RAW and nothing else
    expect(st.capAmb).toBe(1n << 13n);
    expect(sh('ip', ['-n', P, '-d', 'link', 'show', 'fta'])).toMatch(/promiscuity 1 /);
    const out = JSON.parse(netns(P, process.execPath, join(dir, 'blast.mjs'), '10.98.0.2', '7777', '5', '100')) as { sent: number };
    expect(out.sent).toBe(5);
    await sleep(500);
    const health = await httpGet(P, ft.port, '/healthz');
    expect(health.status).toBe(200);
    const exit = await ft.stop('SIGTERM');
    expect(exit.code, ft.stderr()).toBe(0);
    expect(statSync(flows).uid).toBe(65534);
    const recs = readNdjson(flows).filter((r) => r.proto === 'udp' && r['id.resp_h'] === '10.98.0.2');
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ 'id.orig_h': '10.98.0.1', 'id.resp_p': 7777, orig_pkts: 5, orig_ip_bytes: 5 * 128, direction: 'outbound', interface: 'fta' });
    expect(sh('ip', ['-n', P, '-d', 'link', 'show', 'fta'])).toMatch(/promiscuity 0 /);
  });
});

describe('a capture whose interface disappears, or is down at start', () => {
  it('is reported (health 503, flowtap_capture_up 0), retried, and resumes when the interface is back', async () => {
    const add = (): void => {
      sh('ip', ['-n', E, 'link', 'add', 'ftv0', 'type', 'veth', 'peer', 'name', 'ftv1']);
      sh('ip', ['-n', E, 'link', 'set', 'ftv0', 'up']);
      sh('ip', ['-n', E, 'link', 'set', 'ftv1', 'up']);
    };
    add();
    sh('ip', ['-n', E, 'link', 'add', 'ftd0', 'type', 'veth', 'peer', 'name', 'ftd1']); // down
    const ft = await startFlowtap(E, ['-i', 'ftv0', '-i', 'lo', '-i', 'ftd0', '--listen', '127.0.0.1:0']);
    expect(ft.stderr()).toMatch(/capture device "ftd0" is not up: .*; retrying every 5s \(fix: `ip link set ftd0 up`, or capture on another interface\)/);
    expect(ft.stderr()).toMatch(/capturing on ftv0 \(EN10MB\), lo \(EN10MB\), ftd0 \(down, retrying\)/);
    expect(sum(parseProm((await httpGet(E, ft.port)).body), 'flowtap_capture_up', { interface: 'ftd0' })).toBe(0);
    sh('ip', ['-n', E, 'link', 'set', 'ftd0', 'up']);
    sh('ip', ['-n', E, 'link', 'del', 'ftv0']);
    // libpcap reports a deleted interface either way, depending on where its poll was.
    const gone = '(The interface disappeared|The interface went down|capture poll error: [^;\\n]*)';
    await ft.waitFor(new RegExp(`capture on "ftv0" stopped: ${gone}; retrying every 5s`));
    const h = await httpGet(E, ft.port, '/healthz');
    expect(h.status).toBe(503);
    expect(h.body).toMatch(new RegExp(`^unhealthy: ftv0: capture on "ftv0" stopped: ${gone}`));
    expect(sum(parseProm((await httpGet(E, ft.port)).body), 'flowtap_capture_up', { interface: 'ftv0' })).toBe(0);
    add();
    await ft.waitFor(/capture on "ftv0" resumed/, 8000);
    await ft.waitFor(/capture on "ftd0" resumed/, 8000);
    expect((await httpGet(E, ft.port, '/healthz')).status).toBe(200);
    const m = parseProm((await httpGet(E, ft.port)).body);
    expect(sum(m, 'flowtap_capture_up', { interface: 'ftv0' })).toBe(1);
    expect(sum(m, 'flowtap_capture_up', { interface: 'lo' })).toBe(1);
    expect(sum(m, 'flowtap_capture_up', { interface: 'ftd0' })).toBe(1);
    expect((await ft.stop()).code).toBe(0);
  });
});

describe('capture objects and the garbage collector', () => {
  it('opening and closing captures while an HTTP server works does not crash (closed native objects are reused, never collected)', () => {
    // The binding's destructor crashes when it runs inside a GC with async hooks in use (agent/capture/live.ts, idleCaps).
    const child = join(dir, 'gc.mjs');
    writeFileSync(child, `
      import http from 'node:http';
      const { openLive } = await import(${JSON.stringify(join(ROOT, 'dist', 'agent', 'capture', 'live.js'))});
      const srv = http.createServer((req, res) => res.end('x'.repeat(10000)));
      await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      const port = srv.address().port;
      for (let i = 0; i < 40; i++) {
        const c = openLive({ device: 'lo', filter: 'udp port 9', bufferSize: 1 << 20, batchBytes: 65536, snaplen: 256 }, { addInterface: () => 0, packet() {} });
        c.close();
        await (await fetch('http://127.0.0.1:' + port + '/')).text();
        const junk = [];
        for (let k = 0; k < 20000; k++) junk.push({ k, s: 'x' + k });
      }
      srv.close();
      console.log('ok');
    `);
    expect(netns(E, process.execPath, child).trim()).toBe('ok');
  });
});

describe('start-up errors: one line with the fix', () => {
  async function fails(ns: string | undefined, args: string[], prefix: string[] = []): Promise<{ code: number | null; line: string }> {
    // Run as another user (a prefix), it needs a copy it can read.
    const cmd = [...(ns ? ['ip', 'netns', 'exec', ns] : []), ...prefix, process.execPath, prefix.length > 0 ? unprivilegedBin() : BIN, 'run', ...args];
    const p = start(cmd[0], cmd.slice(1));
    const exit = await p.exited;
    const lines = p.stderr().split('\n').filter((l) => l !== '');
    expect(lines, p.stderr()).toHaveLength(1);
    return { code: exit.code, line: lines[0] };
  }

  it('no such interface: lists the available ones', async () => {
    const r = await fails(E, ['-i', 'ft-nosuch0', '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.line).toMatch(/^flowtap: no such capture device "ft-nosuch0"; available devices: (.*, )?lo(, .*)? \(fix: -i\/--interface with one of these, or `any`\)$/);
  });

  it('no permission: names CAP_NET_RAW', async () => {
    const r = await fails(E, ['-i', 'lo', '--listen', '127.0.0.1:0'],
      ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all']);
    expect(r.code).toBe(1);
    expect(r.line).toMatch(/^flowtap: permission denied capturing on "lo": live capture needs root or the CAP_NET_RAW capability .*libpcap: .*Operation not permitted \(fix: run as root, or give the process CAP_NET_RAW: AmbientCapabilities=CAP_NET_RAW/);
  });

  it('bad BPF: libpcap\'s message', async () => {
    const r = await fails(E, ['-i', 'lo', '-f', 'tcp and and', '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.line).toMatch(/^flowtap: invalid BPF filter "tcp and and" for "lo": .*syntax error.* \(fix: correct -f\/--filter; the syntax is tcpdump's, see `man pcap-filter`\)$/);
  });

  it('port in use', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const r = await fails(undefined, ['-i', 'lo', '--listen', `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.line).toBe(`flowtap: listen: cannot listen on 127.0.0.1:${port}: address already in use (fix: stop the other process or choose another --listen HOST:PORT)`);
    } finally {
      srv.close();
    }
  });

  it('bad configuration: exit 2 naming the field and its source', async () => {
    expect(await fails(E, ['--snaplen', '10'])).toEqual({ code: 2, line: 'flowtap: snaplen: 10 is outside 64..262144 (from --snaplen)' });
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'interface: lo\nbuffer-size: huge\n');
    expect(await fails(E, ['--config', cfg])).toEqual({ code: 2, line: `flowtap: buffer-size: "huge" is not a size (examples: 33554432, 32MiB, 512KiB) (from ${cfg}:2)` });
  });

  it('unusable --proc and --flows paths', async () => {
    expect(existsSync('/ft-nonexistent')).toBe(false);
    const a = await fails(E, ['-i', 'lo', '--proc', '/ft-nonexistent', '--listen', '127.0.0.1:0']);
    expect(a.code).toBe(1);
    expect(a.line).toMatch(/^flowtap: proc: cannot read \/ft-nonexistent\/net\/tcp: ENOENT.*\(fix: point --proc\/FLOWTAP_PROC at a procfs mount, or turn attribution off with --no-processes\)$/);
    const b = await fails(E, ['-i', 'lo', '--flows', '/ft-nonexistent/f.ndjson', '--listen', '127.0.0.1:0']);
    expect(b.code).toBe(1);
    expect(b.line).toMatch(/^flowtap: flows: cannot open \/ft-nonexistent\/f\.ndjson for appending: ENOENT.*\(fix: /);
  });
});
