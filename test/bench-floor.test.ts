/**
 * The benchmark's floor loop (bench/floor.ts) must count what it claims to:
 * every IP layer of every packet in exactly one bidirectional flow, through
 * its table's growth. Checked against a string-keyed Map built from the same
 * decoder output, on a generated benchmark capture and on a fixture of ours.
 * (Its speed is reported by `npm run bench`, not tested.)
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DecodingSink, FloorTable, benchFloor } from '../bench/floor.js';
import { generateBenchCapture } from '../bench/gen.js';
import { readCaptureBuffer } from '../agent/capture/file.js';
import type { LayerSink } from '../parsers/decoder.js';
import type { Packet } from '../parsers/packet.js';

/** The reference: one Map entry per canonical (version, proto, vlan, endpoints) string. */
function referenceFlows(data: Uint8Array): { flows: number; packets: number; bytes: number } {
  const flows = new Map<string, number>();
  let packets = 0;
  let bytes = 0;
  const reference: LayerSink = {
    layer(p: Packet): number {
      const src = `${Array.from(p.addr.subarray(0, 4)).join('.')}:${p.sport}`;
      const dst = `${Array.from(p.addr.subarray(4, 8)).join('.')}:${p.dport}`;
      const [a, b] = [src, dst].sort();
      const k = `${p.ipVersion}/${p.proto}/${p.vlan}/${a}/${b}`;
      flows.set(k, (flows.get(k) ?? 0) + 1);
      packets++;
      bytes += p.wirelen;
      return -1;
    },
    nonIp(): void {},
  };
  readCaptureBuffer('ref', data, new DecodingSink(reference));
  return { flows: flows.size, packets, bytes };
}

function floorOf(data: Uint8Array, bits?: number): { flows: number; packets: number; bytes: number } {
  const table = new FloorTable(bits);
  const r = readCaptureBuffer('floor', data, new DecodingSink(table));
  expect(r.error).toBeUndefined();
  return { flows: table.flows, ...table.totals() };
}

describe('bench floor loop', () => {
  it('counts every IP packet in one flow per canonical key, through several table growths', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtap-floor-'));
    try {
      const path = join(dir, 'b.pcap');
      const stats = await generateBenchCapture(path, { packets: 60_000, flows: 20_000, seed: 7 });
      const data = readFileSync(path);
      const ref = referenceFlows(data);
      expect(ref.packets).toBe(stats.tcpPackets + stats.udpPackets + stats.icmpPackets);
      // 256 slots at a load of 1/2 hold 128 flows: the table doubles about seven times.
      expect(ref.flows).toBeGreaterThan(10_000);
      expect(floorOf(data, 8)).toEqual(ref);
      expect(floorOf(data)).toEqual(ref);
      const run = await benchFloor(path);
      expect(run.packets).toBe(stats.packets);
      expect(run.flows).toBe(ref.flows);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keys both directions of a conversation, VLANs and tunnels as the reference does', () => {
    const data = readFileSync(resolve(import.meta.dirname, 'fixtures', 'router-any.pcap'));
    const ref = referenceFlows(data);
    expect(ref.flows).toBeGreaterThan(0);
    expect(floorOf(data)).toEqual(ref);
  });
});
