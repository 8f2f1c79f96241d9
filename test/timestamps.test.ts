/**
 * Record times that are damage, not dates (found by fuzzing the readers):
 * a pcapng interface with a 1 s resolution and a 2^52 timestamp, a negative
 * if_tsoffset, a classic pcap jumping from 2023 to 2106. Such a record is
 * counted as `bad_timestamp` and never moves packet time; a long gap in
 * packet time is not walked step by step once every flow has ended; epoch
 * text stays a JSON number far from the clock's base.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Clock } from '../agent/clock.js';
import { MAX_PACKET_SEC } from '../agent/pipeline.js';
import { pcapFile, pcapngFile } from './gen/pcap-writer.js';
import { eth, ipv4, udp } from './gen/packets.js';
import { analyzeFiles } from './helpers/analyze.js';
import { parseOpenMetrics } from './helpers/om.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowtap-ts-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function frame(sport: number): Uint8Array {
  return eth(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17 }, udp(sport, 53, new Uint8Array(4))));
}

function save(name: string, data: Buffer): string {
  const f = join(dir, name);
  writeFileSync(f, data);
  return f;
}

describe('record times out of range', () => {
  it('a pcapng timestamp of 2^52 seconds is bad_timestamp: counted in the totals, in no flow, and packet time does not jump', async () => {
    const f = save('huge.pcapng', pcapngFile([{
      interfaces: [{ tsresol: 0 }],
      blocks: [
        { kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: frame(1000) }, ts: 1_700_000_000n },
        { kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: frame(1001) }, ts: 2n ** 52n },
        { kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: frame(1002) }, ts: 1_700_000_001n },
      ],
    }]));
    const res = await analyzeFiles([f], ['--json']);
    expect(res.pipeline.packets).toBe(3);
    expect(res.summary?.toJSON(res.pipeline, res.files)).toMatchObject({ decode_errors: { bad_timestamp: 1 } });
    expect(res.records.map((r) => [r['id.orig_p'], r.ts])).toEqual([[1000, 1700000000], [1002, 1700000001]]);
    // Still one flow table's worth of packet time: no idle timeout fired between the two good packets.
    expect(res.pipeline.table.ends[0]).toBe(0);
  });

  it('a negative if_tsoffset putting a record before 1970 is bad_timestamp, and the NDJSON stays valid', async () => {
    const f = save('neg.pcapng', pcapngFile([{
      interfaces: [{ tsresol: 6 }, { tsresol: 6, tsoffset: -2_000_000_000 }],
      blocks: [
        { kind: 'epb', iface: 0, packet: { sec: 1_700_000_000, nsec: 5000, data: frame(1000) } },
        { kind: 'epb', iface: 1, packet: { sec: 0, nsec: 0, data: frame(1001) }, ts: 1_000_000n },
      ],
    }]));
    const res = await analyzeFiles([f], ['--json']);
    expect(res.summary?.toJSON(res.pipeline, res.files)).toMatchObject({ decode_errors: { bad_timestamp: 1 } });
    expect(res.records).toHaveLength(1);
    expect(res.lines[0]).toMatch(/^\{"ts":1700000000\.000005000,/);
  });

  it('only bad timestamps: no time range in the summary (first_ts null, duration 0)', async () => {
    const f = save('allbad.pcapng', pcapngFile([{
      interfaces: [{ tsresol: 0 }],
      blocks: [{ kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: frame(1000) }, ts: 2n ** 52n }],
    }]));
    const res = await analyzeFiles([f], ['--json']);
    expect(res.summary?.toJSON(res.pipeline, res.files)).toMatchObject({ packets: 1, first_ts: null, last_ts: null, duration: 0 });
  });

  it('times centuries apart (beyond the 104 days the clock keeps exact to the ns) stay valid epoch numbers', async () => {
    const f = save('far.pcapng', pcapngFile([{
      interfaces: [{ tsresol: 6 }],
      blocks: [
        // Found by fuzzing: the fraction came out negative ("ts":891654122.00000.0,( and "ts":/.999981056).
        { kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: frame(1000) }, ts: 19_088_136_980_000_000n },
        { kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: frame(1001) }, ts: 891_654_121_999_999n },
        { kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: frame(1002) }, ts: 148_899_502_778_000_000n },
        { kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: frame(1003) }, ts: 10n },
      ],
    }]));
    const res = await analyzeFiles([f], ['--json']);
    for (const line of res.lines) expect(line).toMatch(/^\{"ts":\d+\.\d{9},/);
    const byPort = new Map(res.records.map((r) => [r['id.orig_p'] as number, r.ts as number]));
    const ts = [1000, 1001, 1002, 1003].map((p) => byPort.get(p)!);
    expect(ts[0]).toBe(19088136980);
    expect(Math.abs(ts[1] - 891654122)).toBeLessThan(1e-4);
    expect(ts[2]).toBe(148899502778);
    expect(ts[3]).toBeGreaterThanOrEqual(0);
    expect(ts[3]).toBeLessThan(1e-4);
    expect(res.summary?.toJSON(res.pipeline, res.files)).toMatchObject({ last_ts: 148899502778 });
    expect((res.summary?.toJSON(res.pipeline, res.files) as { first_ts: number }).first_ts).toBeGreaterThanOrEqual(0);
  });

  it('the bound is the last second of year 9999', () => {
    expect(new Date(MAX_PACKET_SEC * 1000).toISOString()).toBe('9999-12-31T23:59:59.000Z');
  });
});

describe('a gap of 83 years in packet time with --openmetrics', () => {
  it('is sampled while flows live, then jumps to the last boundary before the next packet', async () => {
    const f = save('gap.pcap', pcapFile([
      { sec: 1_700_000_000, nsec: 0, data: frame(1000) },
      { sec: 1_700_000_010, nsec: 0, data: frame(1000) },
      { sec: 4_294_967_295, nsec: 0, data: frame(1001) },
    ]));
    const om = join(dir, 'gap.om');
    const res = await analyzeFiles([f], ['--openmetrics', om, '--step', '15s', '--quiet']);
    // Without the jump this would be 1.7e8 steps (and a hang).
    expect(res.openmetrics!.steps).toBeLessThan(10);
    const ts = [...new Set(parseOpenMetrics(readFileSync(om, 'utf8')).filter((s) => s.name === 'flowtap_packets_total').map((s) => s.ts))].sort((a, b) => a! - b!);
    // The flow's idle timeout (UDP 60 s) is sampled step by step, then the boundary just before 2106's packet, then the final one.
    expect(ts.slice(0, 2)).toEqual([1700000015, 1700000030]);
    expect(ts.at(-2)).toBe(4294967295 - (4294967295 - 1700000000) % 15);
    expect(ts.at(-1)).toBe(4294967295 - (4294967295 - 1700000000) % 15 + 15);
    expect(res.records).toHaveLength(2);
  });
});

describe('epoch text', () => {
  it('carries a fraction that rounds up to a whole second into the seconds', () => {
    const c = new Clock();
    c.toNs(1_700_000_000, 0);
    expect(c.epochText(5e9 - 0.4)).toBe('1700000005.000000000');
    expect(c.epochText(5e9 + 999_999_999.6)).toBe('1700000006.000000000');
    expect(c.epochText(123_456_789)).toBe('1700000000.123456789');
  });
});
