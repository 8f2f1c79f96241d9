/**
 * End to end: `flowtap run` on a router between two network namespaces.
 *
 *   ft-c-<pid> (client)          ft-r-<pid> (router, forwarding on)          ft-s-<pid> (server)
 *   ftc0 10.99.1.2 ---- veth ---- ftrc 10.99.1.1   ftrs 10.99.2.1 ---- veth ---- fts0 10.99.2.2
 *        fd99:1::2                     fd99:1::1        fd99:2::1                     fd99:2::2
 *
 * The client downloads a file of known size over HTTP from the server
 * (IPv4 and IPv6; the router forwards it), exchanges UDP datagrams with the
 * server's echo service (IPv4 and IPv6), and downloads from an HTTP server
 * (python3) on the router itself. flowtap runs in the router namespace,
 * once on both interfaces and once on `any`; tcpdump captures the
 * client-facing interface during the same run, and flowtap's own `analyze`
 * of that pcap is the truth. Offloads are off, so frames are what the wire
 * would carry. The traffic's processes run on one CPU (taskset): veth
 * processes a packet on the CPU that sent it, and the flow table
 * recognises a forwarded copy among the last two packets of a direction, so
 * two CPUs interleaving one flow's packets deeper than that under load
 * would count some twice. A real router's NIC keeps one flow on one queue
 * and CPU (RSS); pinning gives the namespaces the same property.
 *
 * Asserted for both runs: every flow appears once in the NDJSON with the
 * truth's packets and IP bytes per direction (a forwarded packet, seen on
 * both interfaces, counted once); client↔server flows are `forwarded`
 * without a process, the flow to the router's server is `inbound` with
 * pid/process of that python3; /metrics agrees (forwarded packets and IP
 * bytes by protocol equal the truth's sums, the service series carries
 * process="python3", no kernel drops, forwarded copies were seen).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  build, delNetns, httpGet, killAll, netns, parseProm, readNdjson, requirePrereqs, sh, sleep, start, startFlowtap, sum, type Rec,
} from './run-helpers.js';
import { analyzeFiles } from './helpers/analyze.js';

const PID = process.pid;
const C = `ft-c-${PID}`;
const R = `ft-r-${PID}`;
const S = `ft-s-${PID}`;
const BLOB = 1_000_000;
const UDP_N = 40;
const UDP_LEN = 300;
const PY = '/usr/bin/python3';
/** Traffic processes on one CPU (see above). */
const PIN = ['taskset', '-c', '0'];

let dir = '';
let routerServerPid = 0;

function setupTopology(): void {
  for (const ns of [C, R, S]) {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  sh('ip', ['-n', C, 'link', 'add', 'ftc0', 'type', 'veth', 'peer', 'name', 'ftrc', 'netns', R]);
  sh('ip', ['-n', S, 'link', 'add', 'fts0', 'type', 'veth', 'peer', 'name', 'ftrs', 'netns', R]);
  const addr = (ns: string, dev: string, v4: string, v6: string): void => {
    sh('ip', ['-n', ns, 'addr', 'add', v4, 'dev', dev]);
    sh('ip', ['-n', ns, '-6', 'addr', 'add', v6, 'dev', dev, 'nodad']);
    // Real-sized frames: no TSO/GSO/GRO super-packets.
    netns(ns, 'ethtool', '-K', dev, 'tso', 'off', 'gso', 'off', 'gro', 'off');
    sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  };
  addr(C, 'ftc0', '10.99.1.2/24', 'fd99:1::2/64');
  addr(R, 'ftrc', '10.99.1.1/24', 'fd99:1::1/64');
  addr(R, 'ftrs', '10.99.2.1/24', 'fd99:2::1/64');
  addr(S, 'fts0', '10.99.2.2/24', 'fd99:2::2/64');
  sh('ip', ['-n', C, 'route', 'add', 'default', 'via', '10.99.1.1']);
  sh('ip', ['-n', C, '-6', 'route', 'add', 'default', 'via', 'fd99:1::1']);
  sh('ip', ['-n', S, 'route', 'add', 'default', 'via', '10.99.2.1']);
  sh('ip', ['-n', S, '-6', 'route', 'add', 'default', 'via', 'fd99:2::1']);
  netns(R, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  netns(R, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
}

const UDP_ECHO = `
import dgram from 'node:dgram';
const s = dgram.createSocket({ type: 'udp6', ipv6Only: false });
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(9999, '::', () => console.error('echo ready'));
`;

/** The client: two downloads from the server, UDP echo exchanges, one download from the router. */
const CLIENT = `
import http from 'node:http';
import dgram from 'node:dgram';
const get = (url) => new Promise((res, rej) => {
  http.get(url, { agent: false }, (r) => {
    let n = 0;
    r.on('data', (d) => (n += d.length));
    r.on('end', () => res({ n, port: r.socket?.localPort }));
  }).on('error', rej);
});
const udp = (host, family) => new Promise((res, rej) => {
  const s = dgram.createSocket(family);
  let got = 0, i = 0;
  const send = () => s.send(Buffer.alloc(${UDP_LEN}, i++), 9999, host);
  s.on('message', () => { if (++got === ${UDP_N}) { const port = s.address().port; s.close(); res({ got, port }); } else send(); });
  s.on('error', rej);
  s.bind(0, () => send());
});
const out = {};
const a = await get('http://10.99.2.2:8080/blob');
out.v4 = a;
out.v6 = await get('http://[fd99:2::2]:8080/blob');
out.udp4 = await udp('10.99.2.2', 'udp4');
out.udp6 = await udp('fd99:2::2', 'udp6');
out.router = await get('http://10.99.1.1:8081/blob');
console.log(JSON.stringify(out));
`;

beforeAll(async () => {
  requirePrereqs(['ip', 'tcpdump', 'ethtool', 'sysctl', 'python3', 'taskset']);
  build();
  delNetns(C, R, S);
  dir = mkdtempSync(join(tmpdir(), 'ft-e2e-'));
  writeFileSync(join(dir, 'blob'), Buffer.alloc(BLOB, 0x5a));
  writeFileSync(join(dir, 'echo.mjs'), UDP_ECHO);
  writeFileSync(join(dir, 'client.mjs'), CLIENT);
  setupTopology();
  const web = start('ip', ['netns', 'exec', S, ...PIN, PY, '-m', 'http.server', '8080', '--bind', '::', '--directory', dir]);
  const echo = start('ip', ['netns', 'exec', S, ...PIN, process.execPath, join(dir, 'echo.mjs')]);
  const local = start('ip', ['netns', 'exec', R, ...PIN, PY, '-m', 'http.server', '8081', '--bind', '10.99.1.1', '--directory', dir]);
  routerServerPid = local.pid;
  await Promise.all([web.waitFor(/Serving HTTP/), echo.waitFor(/echo ready/), local.waitFor(/Serving HTTP/)]);
}, 30_000);

afterAll(async () => {
  await killAll();
  delNetns(C, R, S);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface RunResult {
  live: Rec[];
  truth: Rec[];
  metrics: ReturnType<typeof parseProm>;
  client: Record<string, { n?: number; got?: number; port: number }>;
  stderr: string;
}

async function runOnce(name: string, ifaceArgs: string[]): Promise<RunResult> {
  const flows = join(dir, `${name}.ndjson`);
  const pcap = join(dir, `${name}.pcap`);
  const ft = await startFlowtap(R, [...ifaceArgs, '--listen', '127.0.0.1:0', '--flows', flows]);
  const td = start('ip', ['netns', 'exec', R, 'tcpdump', '-i', 'ftrc', '-s', '256', '-n', '-U', '-w', pcap]);
  await td.waitFor(/listening on/);
  const client = JSON.parse(netns(C, PIN[0], ...PIN.slice(1), process.execPath, join(dir, 'client.mjs'))) as RunResult['client'];
  // Block timeout + merge delay: every packet has reached the flow table.
  await sleep(700);
  const m = await httpGet(R, ft.port);
  expect(m.status).toBe(200);
  const health = await httpGet(R, ft.port, '/healthz');
  expect(health).toEqual({ status: 200, body: `ok: capturing on ${ifaceArgs.filter((a) => a !== '-i').join(', ')}\n` });
  const tdExit = await td.stop('SIGINT');
  expect(tdExit.code, td.stderr()).toBe(0);
  expect(td.stderr()).toMatch(/^0 packets dropped by kernel$/m);
  const ftExit = await ft.stop('SIGTERM');
  expect(ftExit.code, ft.stderr()).toBe(0);
  expect(ftExit.ms).toBeLessThan(5000);
  const truth = (await analyzeFiles([pcap], ['-q'])).records;
  return { live: readNdjson(flows), truth, metrics: parseProm(m.body), client, stderr: ft.stderr() };
}

/** The record of the flow between client port `cport` and server (addr, port). */
function find(recs: Rec[], proto: string, client: string, cport: number, server: string, sport: number): Rec[] {
  return recs.filter((r) => r.proto === proto && r['id.orig_h'] === client && r['id.orig_p'] === cport && r['id.resp_h'] === server && r['id.resp_p'] === sport);
}

const COUNTS = ['orig_pkts', 'resp_pkts', 'orig_ip_bytes', 'resp_ip_bytes', 'orig_bytes', 'resp_bytes'] as const;

function checkRun(r: RunResult, label: string): void {
  const c = r.client;
  expect(c.v4.n).toBe(BLOB);
  expect(c.v6.n).toBe(BLOB);
  expect(c.router.n).toBe(BLOB);
  expect(c.udp4.got).toBe(UDP_N);
  expect(c.udp6.got).toBe(UDP_N);
  const expected: [string, string, number, string, number, string][] = [
    ['tcp', '10.99.1.2', c.v4.port, '10.99.2.2', 8080, 'forwarded'],
    ['tcp', 'fd99:1::2', c.v6.port, 'fd99:2::2', 8080, 'forwarded'],
    ['udp', '10.99.1.2', c.udp4.port, '10.99.2.2', 9999, 'forwarded'],
    ['udp', 'fd99:1::2', c.udp6.port, 'fd99:2::2', 9999, 'forwarded'],
    ['tcp', '10.99.1.2', c.router.port, '10.99.1.1', 8081, 'inbound'],
  ];
  const fwdSums: Record<string, { pkts: number; ip: number }> = { tcp: { pkts: 0, ip: 0 }, udp: { pkts: 0, ip: 0 } };
  for (const [proto, ch, cp, srv, sp, dir] of expected) {
    const what = `${label}: ${proto} ${ch}:${cp} -> ${srv}:${sp}`;
    const live = find(r.live, proto, ch, cp, srv, sp);
    const truth = find(r.truth, proto, ch, cp, srv, sp);
    expect(truth.length, `${what} in the tcpdump capture`).toBe(1);
    expect(live.length, `${what} once in the NDJSON`).toBe(1);
    const l = live[0];
    const t = truth[0];
    for (const k of COUNTS) expect(l[k], `${what} ${k}`).toBe(t[k]);
    expect(l.final).toBe(true);
    expect(l.direction, what).toBe(dir);
    if (proto === 'tcp') {
      expect(l.resp_bytes).toBeGreaterThan(BLOB);
      expect(l.conn_state, what).toBe('SF');
    } else {
      expect(l.orig_pkts).toBe(UDP_N);
      expect(l.resp_pkts).toBe(UDP_N);
      expect(l.orig_bytes).toBe(UDP_N * UDP_LEN);
    }
    if (dir === 'forwarded') {
      expect(l.pid, `${what}: a forwarded flow has no local process`).toBeUndefined();
      fwdSums[proto].pkts += t.orig_pkts + t.resp_pkts;
      fwdSums[proto].ip += t.orig_ip_bytes + t.resp_ip_bytes;
    } else {
      expect(l.local_resp).toBe(true);
      expect(l.local_orig).toBe(false);
      expect(l.pid, `${what}: the router's python3`).toBe(routerServerPid);
      expect(l.process).toBe(readFileSync(`/proc/${routerServerPid}/comm`, 'utf8').trim());
      expect(l.process).toBe('python3');
    }
  }
  // Metrics: the same flows, counted once.
  const m = r.metrics;
  for (const proto of ['tcp', 'udp']) {
    expect(sum(m, 'flowtap_packets_total', { proto, direction: 'forwarded' }), `${label} ${proto} forwarded packets`).toBe(fwdSums[proto].pkts);
    expect(sum(m, 'flowtap_ip_bytes_total', { proto, direction: 'forwarded' }), `${label} ${proto} forwarded IP bytes`).toBe(fwdSums[proto].ip);
  }
  expect(sum(m, 'flowtap_forwarded_copies_total')).toBeGreaterThanOrEqual(fwdSums.tcp.pkts + fwdSums.udp.pkts);
  expect(sum(m, 'flowtap_service_bytes_total', { proto: 'tcp', port: '8081', process: 'python3', direction: 'inbound' })).toBeGreaterThan(BLOB);
  expect(sum(m, 'flowtap_capture_dropped_packets_total', { where: 'kernel' })).toBe(0);
  expect(sum(m, 'flowtap_capture_dropped_packets_total', { where: 'queue' })).toBe(0);
  expect(sum(m, 'flowtap_capture_reordered_packets_total')).toBe(0);
  expect(sum(m, 'flowtap_process_scans_total')).toBeGreaterThanOrEqual(1);
}

describe('flowtap run on a router (network namespaces)', () => {
  it('both interfaces: forwarded flows counted once, exact counts, the local server\'s process', async () => {
    const r = await runOnce('ifaces', ['-i', 'ftrc', '-i', 'ftrs']);
    expect(r.stderr).toMatch(/capturing on ftrc \(EN10MB\), ftrs \(EN10MB\)/);
    checkRun(r, 'two interfaces');
  });

  it('`any`: the same', async () => {
    const r = await runOnce('any', ['-i', 'any']);
    expect(r.stderr).toMatch(/capturing on any \(LINUX_SLL2\)/);
    checkRun(r, 'any');
  });
});
