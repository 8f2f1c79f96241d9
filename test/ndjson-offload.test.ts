/**
 * `--flows` written by the worker thread (exporters/ndjson-offload.ts) is
 * byte for byte what the capture thread writes itself: tunnels, interim
 * records, several input files (interface names), TCP histories longer than
 * the inline 12 letters, rings far smaller than the flow count; and a write
 * error in the worker fails the run as the in-thread writer does.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, build } from './run-helpers.js';
import { randomTraffic, GEN_BASE } from './helpers/traffic.js';
import { pcapFile, pcapngFile } from './gen/pcap-writer.js';
import { ACK, RST, SYN, eth, ipv4, tcp, udp } from './gen/packets.js';

let dir: string;

beforeAll(() => {
  build();
  dir = mkdtempSync(join(tmpdir(), 'flowtap-offload-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'analyze', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** NDJSON of `files` written in-thread and by the worker (ring of `ring` slots); both must succeed. */
function both(files: string[], ring: number, extra: string[] = []): { inThread: string; worker: string } {
  const a = join(dir, 'a.ndjson');
  const b = join(dir, 'b.ndjson');
  const r0 = run([...files, '-q', '--flows', a, ...extra], { FLOWTAP_FLOWS_WORKER: '0' });
  expect(r0.stderr).toBe('');
  expect(r0.status).toBe(0);
  const r1 = run([...files, '-q', '--flows', b, ...extra], { FLOWTAP_FLOWS_WORKER: '1', FLOWTAP_FLOWS_RING: String(ring) });
  expect(r1.stderr).toBe('');
  expect(r1.status).toBe(0);
  return { inThread: readFileSync(a, 'utf8'), worker: readFileSync(b, 'utf8') };
}

describe('NDJSON written by the worker thread', () => {
  it('equals the in-thread output on every fixture together (several files: interface names), with a 3-slot ring', () => {
    const fixtures = ['lo-tcp-udp.pcap', 'router-any.pcap', 'router-any-sll2.pcap', 'router-ifaces.pcapng', 'router-nat.pcap', 'veth-ethernet.pcapng']
      .map((f) => join(ROOT, 'test', 'fixtures', f));
    const { inThread, worker } = both(fixtures, 3);
    expect(inThread.split('\n').length).toBeGreaterThan(20);
    expect(worker).toBe(inThread);
    // Interface names of every input, sent to the worker as files are opened.
    expect(worker).toContain('"interface":"router-any.pcap"');
    expect(worker).toContain('"interface":"router-nat.pcap"');
  });

  it('equals the in-thread output on generated traffic with interim records and local nets, for ring sizes 1, 7 and 4096', () => {
    const file = join(dir, 'random.pcap');
    writeFileSync(file, randomTraffic({ seed: 11, flows: 3000, seconds: 900 }));
    let reference: string | undefined;
    for (const ring of [1, 7, 4096]) {
      const { inThread, worker } = both([file], ring, ['--local-net', '10.9.0.0/16', '--active-timeout', '60s']);
      reference ??= inThread;
      expect(inThread).toBe(reference);
      expect(worker).toBe(inThread);
    }
    expect(reference).toContain('"final":false');
    expect(reference!.split('\n').length).toBeGreaterThan(3000);
  });

  it('takes the names of the 65535 interfaces a run may have, declared before the first record', () => {
    const n = 21845;
    const files = [0, 1, 2].map((k) => {
      const frame = eth(0x0800, ipv4({ proto: 17 }, udp(1000 + k, 53, new Uint8Array(4))));
      const file = join(dir, `idbs-${k}.pcapng`);
      writeFileSync(file, pcapngFile([{
        interfaces: Array.from({ length: n }, () => ({})),
        blocks: [{ kind: 'epb', iface: n - 1, packet: { sec: 1_700_000_000 + k, nsec: 0, data: frame } }],
      }]));
      return file;
    });
    const { inThread, worker } = both(files, 16);
    expect(worker).toBe(inThread);
    expect(worker).toContain(`"interface":"idbs-2.pcapng#${n - 1}"`);
  });

  it('counts the same summary (the worker runs its per-flow part), as JSON and as text', () => {
    const file = join(dir, 'random-summary.pcap');
    writeFileSync(file, randomTraffic({ seed: 5, flows: 2000, seconds: 600 }));
    const fixture = join(ROOT, 'test', 'fixtures', 'router-any-sll2.pcap');
    for (const extra of [['--json'], []]) {
      const out: string[] = [];
      for (const w of ['0', '1']) {
        const r = run([file, fixture, '--flows', '/dev/null', '--local-net', '10.9.0.0/16', ...extra], { FLOWTAP_FLOWS_WORKER: w, FLOWTAP_FLOWS_RING: '5' });
        expect(r.status).toBe(0);
        out.push(r.stdout);
      }
      expect(out[1]).toBe(out[0]);
      if (extra.length) {
        const j = JSON.parse(out[0]);
        expect(j.flows).toBeGreaterThan(2000);
        expect(j.top_hosts.length).toBe(10);
        expect(j.flows_by_direction.inbound).toBeGreaterThan(0);
      }
    }
  });

  it('carries TCP histories longer than the inline 12 letters', () => {
    const packets = [];
    const t = (i: number) => ({ sec: GEN_BASE + i, nsec: 0 });
    const frame = (flags: number, seq: number, fromClient = true) => eth(0x0800, ipv4(
      { src: fromClient ? '10.1.0.1' : '10.2.0.2', dst: fromClient ? '10.2.0.2' : '10.1.0.1', proto: 6 },
      tcp({ sport: fromClient ? 40000 : 80, dport: fromClient ? 80 : 40000, seq, ack: 0, flags }),
    ));
    packets.push({ ...t(0), data: frame(SYN, 1000) });
    packets.push({ ...t(0), data: frame(SYN | ACK, 5000, false) });
    // Resets at 40 different sequence numbers: an R letter each (Zeek repeats R when its sequence number changes).
    for (let i = 1; i <= 40; i++) packets.push({ ...t(i), data: frame(RST, 1001 + i * 3) });
    const file = join(dir, 'long-history.pcap');
    writeFileSync(file, pcapFile(packets));
    const { inThread, worker } = both([file], 2);
    expect(worker).toBe(inThread);
    const rec = JSON.parse(worker.trim().split('\n')[0]);
    expect(rec.history.length).toBeGreaterThan(30);
    expect(rec.history.startsWith('ShR')).toBe(true);
  });

  it('fails the run with the write error (no space left on /dev/full), as the in-thread writer does', () => {
    const file = join(ROOT, 'test', 'fixtures', 'router-any.pcap');
    for (const w of ['0', '1']) {
      const r = run([file, '-q', '--flows', '/dev/full'], { FLOWTAP_FLOWS_WORKER: w, FLOWTAP_FLOWS_RING: '2' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toBe('flowtap: ENOSPC: no space left on device, write\n');
    }
  });
});
