/**
 * The OpenMetrics writer: number and `le` rendering, the structure the spec
 * requires (families and metrics not interleaved, increasing timestamps,
 * `# EOF`), the transposition done in several passes giving the same file,
 * the step boundaries (the final sample never repeats a timestamp), and
 * sub-second steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pipeline } from '../agent/pipeline.js';
import { readCaptureBuffer } from '../agent/capture/file.js';
import { LocalNets } from '../agent/flows/localnets.js';
import { FlowtapMetrics } from '../exporters/metrics.js';
import { OpenMetricsBackfill, omLe, omNumber, type BackfillStats } from '../exporters/openmetrics.js';
import { pcapFile, pcapngFile } from './gen/pcap-writer.js';
import { bytes, eth, ipv4, udp } from './gen/packets.js';
import { parseOpenMetrics } from './helpers/om.js';
import { GEN_BASE, randomTraffic } from './helpers/traffic.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowtap-om-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function backfill(capture: Buffer, name: string, step: number, opts: { passBytes?: number } = {}): { text: string; stats: BackfillStats; p: Pipeline } {
  const p = new Pipeline({ localNets: LocalNets.parse(['10.9.0.0/16']), timeouts: { udp: 2, tcpEstablished: 5, active: 3 } });
  const m = new FlowtapMetrics(p, { defaultMetrics: false, topFlows: 5 });
  const out = join(dir, name);
  const w = new OpenMetricsBackfill(m, p, out, step, opts);
  const r = readCaptureBuffer('gen0', capture, p);
  if (r.error) throw r.error;
  p.finish();
  const stats = w.finish();
  return { text: readFileSync(out, 'utf8'), stats, p };
}

describe('OpenMetrics rendering', () => {
  it('writes numbers and le values as the spec asks', () => {
    expect([omNumber(3), omNumber(0.5), omNumber(NaN), omNumber(Infinity), omNumber(-Infinity)]).toEqual(['3', '0.5', 'NaN', '+Inf', '-Inf']);
    expect([omLe(1), omLe(0.0001), omLe(2.5), omLe(3600), omLe(1e-7), omLe('+Inf'), omLe(Infinity)]).toEqual(['1.0', '0.0001', '2.5', '3600.0', '1e-07', '+Inf', '+Inf']);
  });
});

describe('OpenMetrics backfill file', () => {
  const capture = randomTraffic({ seed: 42, flows: 300, seconds: 40 });

  it('is well formed, and transposing in many small passes gives the same file', () => {
    const one = backfill(capture, 'one.om', 1);
    const many = backfill(capture, 'many.om', 1, { passBytes: 1000 });
    expect(many.text).toBe(one.text);
    const samples = parseOpenMetrics(one.text);
    expect(samples.length).toBe(one.stats.samples);
    expect(Buffer.byteLength(one.text)).toBe(one.stats.bytes);
    // Every family is there, in the exporter's order, each once.
    const families = [...new Set(one.text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]))];
    expect(families.slice(0, 4)).toEqual(['flowtap_packets', 'flowtap_bytes', 'flowtap_ip_bytes', 'flowtap_flows_started']);
    expect(families).toContain('flowtap_build');
    // Timestamps: the capture's own, at whole-second boundaries.
    const ts = [...new Set(samples.map((s) => s.ts!))].sort((a, b) => a - b);
    expect(ts.length).toBe(one.stats.steps);
    expect(ts[0]).toBe(one.stats.firstTs);
    expect(ts.at(-1)).toBe(one.stats.lastTs);
    for (const t of ts) expect(Number.isInteger(t)).toBe(true);
    expect(ts[0]).toBeGreaterThan(GEN_BASE);
    // No temporary files left beside the output.
    expect(readdirSync(dir).filter((f) => f.startsWith('.flowtap-openmetrics-'))).toEqual([]);
  });

  it('samples at every boundary, and the final sample after a packet on a boundary is one step later', () => {
    const pkt = (sec: number, nsec: number, sport: number) => ({ sec, nsec, data: eth(0x0800, ipv4({ src: '198.51.100.1', dst: '10.9.0.1', proto: 17 }, udp(sport, 53, bytes(10)))) });
    // Base second GEN_BASE: boundaries at +1 s, +2 s, ... ; the last packet is exactly on +3 s.
    const cap = pcapFile([pkt(GEN_BASE, 500_000_000, 1000), pkt(GEN_BASE + 1, 200_000_000, 1001), pkt(GEN_BASE + 3, 0, 1002)], { nanos: true });
    const { text, stats } = backfill(cap, 'edge.om', 1);
    const samples = parseOpenMetrics(text);
    // (flowtap_packets_total: flows are counted when the pipeline processes a packet. The capture_* totals are counted
    // when a packet enters the pipeline's batch, so a step sample may include a few packets past its boundary.)
    const pk = samples.filter((s) => s.name === 'flowtap_packets_total').map((s) => [s.ts, s.value]);
    expect(pk).toEqual([
      [GEN_BASE + 1, 1],
      [GEN_BASE + 2, 2],
      [GEN_BASE + 3, 2], // sampled before the packet at exactly +3 s is counted
      [GEN_BASE + 4, 3], // the final sample: the next boundary
    ]);
    expect(stats.steps).toBe(4);
  });

  it('writes millisecond timestamps for sub-second steps', () => {
    const { text } = backfill(capture, 'half.om', 0.25);
    const ts = [...new Set(parseOpenMetrics(text).map((s) => s.ts!))];
    expect(ts.some((t) => !Number.isInteger(t))).toBe(true);
    for (const t of ts) expect(Math.round(t * 4)).toBe(t * 4);
    expect(text).toMatch(/ \d{10}\.(250|5|500|750)\n/);
  });

  it('gives capture-interface series only to interfaces that saw a packet (a pcapng declaring 5000 wrote 580 MB at a 15 s step)', () => {
    const frame = eth(0x0800, ipv4({ proto: 17 }, udp(1000, 53, bytes(4))));
    const file = pcapngFile([{
      interfaces: Array.from({ length: 5000 }, (_, i) => ({ name: `if${i}` })),
      blocks: [
        { kind: 'epb', iface: 7, packet: { sec: 1_700_000_000, nsec: 0, data: frame } },
        { kind: 'epb', iface: 4999, packet: { sec: 1_700_000_030, nsec: 0, data: frame } },
      ],
    }]);
    const p = new Pipeline();
    const m = new FlowtapMetrics(p, { defaultMetrics: false });
    expect(readCaptureBuffer('many', file, p).error).toBeUndefined();
    p.finish();
    const fams = m.collect();
    const rows = (name: string) => fams.find((f) => f.name === name)!.rows.labels.map((l) => l[0]);
    expect(rows('flowtap_capture_packets_total').sort()).toEqual(['if4999', 'if7']);
    expect(new Set(rows('flowtap_capture_dropped_packets_total'))).toEqual(new Set(['if4999', 'if7']));
  });

  it('abort() leaves nothing behind', () => {
    const p = new Pipeline();
    const m = new FlowtapMetrics(p, { defaultMetrics: false });
    const out = join(dir, 'aborted.om');
    const w = new OpenMetricsBackfill(m, p, out, 1);
    w.abort();
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('.flowtap-openmetrics-'))).toEqual([]);
  });
});
