/**
 * Our own captures of real traffic (test/fixtures, made by
 * scripts/make-fixtures.sh in network namespaces), against the exact counts
 * and classes recorded beside each one (`.expect.json`, from tshark and from
 * the script that sent the traffic).
 *
 * tshark counts a forwarded packet captured twice (on both router
 * interfaces, or arriving and leaving on `any`) twice; flowtap counts it once:
 * each conversation's numbers are divided by its `copies_per_packet`.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { analyzeFiles, type FlowRec } from './helpers/analyze.js';

const DIR = resolve(import.meta.dirname, 'fixtures');

interface Conv {
  proto: string;
  a_addr: string;
  a_port: number;
  b_addr: string;
  b_port: number;
  class: string;
  copies_per_packet: number;
  frames_a_to_b: number;
  frames_b_to_a: number;
  bytes_a_to_b: number;
  bytes_b_to_a: number;
  l3_bytes_a_to_b: number;
  l3_bytes_b_to_a: number;
  payload_bytes_a_to_b: number;
  payload_bytes_b_to_a: number;
}

interface Expect {
  frames_total: number;
  conversations: Conv[];
  topology: { capture_namespace: string; namespaces: Record<string, { addrs: string[] }> };
}

const fixtures = readdirSync(DIR).filter((f) => f.endsWith('.expect.json')).map((f) => f.replace(/\.expect\.json$/, ''));

/** Our final records of one 5-tuple, summed, oriented A→B as tshark's conversation. */
function ours(records: FlowRec[], c: Conv) {
  const sum = { flows: 0, ab: 0, ba: 0, abWire: 0, baWire: 0, abIp: 0, baIp: 0, abPay: 0, baPay: 0, directions: new Set<string>() };
  for (const r of records) {
    if (!r.final || r.proto !== c.proto) continue;
    const fwd = r['id.orig_h'] === c.a_addr && r['id.orig_p'] === c.a_port && r['id.resp_h'] === c.b_addr && r['id.resp_p'] === c.b_port;
    const rev = r['id.orig_h'] === c.b_addr && r['id.orig_p'] === c.b_port && r['id.resp_h'] === c.a_addr && r['id.resp_p'] === c.a_port;
    if (!fwd && !rev) continue;
    const [o, s] = fwd ? ['ab', 'ba'] as const : ['ba', 'ab'] as const;
    sum.flows++;
    sum[o] += r.orig_pkts;
    sum[s] += r.resp_pkts;
    sum[`${o}Wire`] += r.orig_wire_bytes;
    sum[`${s}Wire`] += r.resp_wire_bytes;
    sum[`${o}Ip`] += r.orig_ip_bytes;
    sum[`${s}Ip`] += r.resp_ip_bytes;
    sum[`${o}Pay`] += r.orig_bytes;
    sum[`${s}Pay`] += r.resp_bytes;
    sum.directions.add(r.direction);
  }
  return sum;
}

describe('fixtures of real traffic', () => {
  it('there are fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(6);
  });

  for (const name of fixtures) {
    const exp = JSON.parse(readFileSync(join(DIR, `${name}.expect.json`), 'utf8')) as Expect;
    const ns = exp.topology.capture_namespace;
    const localNets = exp.topology.namespaces[ns].addrs.flatMap((a) => ['--local-net', a]);

    it(`${name}: every conversation counted exactly, each packet once, classed by this host's addresses`, async () => {
      const res = await analyzeFiles([join(DIR, name)], localNets);
      expect(res.files[0].error).toBeUndefined();
      expect(res.pipeline.packets).toBe(exp.frames_total);
      expect(exp.conversations.length).toBeGreaterThan(0);
      for (const c of exp.conversations) {
        const k = c.copies_per_packet;
        const got = ours(res.records, c);
        const what = `${c.proto} ${c.a_addr}:${c.a_port} -> ${c.b_addr}:${c.b_port}`;
        expect({ what, flows: got.flows, ab: got.ab, ba: got.ba }).toEqual({ what, flows: 1, ab: c.frames_a_to_b / k, ba: c.frames_b_to_a / k });
        expect({ what, wire: [got.abWire, got.baWire], ip: [got.abIp, got.baIp], pay: [got.abPay, got.baPay] }).toEqual({
          what,
          wire: [c.bytes_a_to_b / k, c.bytes_b_to_a / k],
          ip: [c.l3_bytes_a_to_b / k, c.l3_bytes_b_to_a / k],
          pay: [c.payload_bytes_a_to_b / k, c.payload_bytes_b_to_a / k],
        });
        expect({ what, direction: [...got.directions] }).toEqual({ what, direction: [c.class] });
      }
      // Forwarded copies were seen and dropped exactly as often as tshark counted extra frames.
      const extra = exp.conversations.reduce((a, c) => a + ((c.frames_a_to_b + c.frames_b_to_a) * (c.copies_per_packet - 1)) / c.copies_per_packet, 0);
      expect(res.pipeline.table.copies).toBeGreaterThanOrEqual(extra);
    });
  }

  for (const name of ['router-any.pcap', 'router-any-sll2.pcap']) {
    it(`${name}: without --local-net, the SLL packet types alone give every class`, async () => {
      const exp = JSON.parse(readFileSync(join(DIR, `${name}.expect.json`), 'utf8')) as Expect;
      const res = await analyzeFiles([join(DIR, name)]);
      for (const c of exp.conversations) {
        const got = ours(res.records, c);
        expect({ c: `${c.a_addr}:${c.a_port}`, d: [...got.directions], n: got.ab }).toEqual({ c: `${c.a_addr}:${c.a_port}`, d: [c.class], n: c.frames_a_to_b / c.copies_per_packet });
      }
    });
  }

  it('router-ifaces.pcapng: without --local-net, forwarded flows are still found (copies on two interfaces) and the rest is unknown', async () => {
    const exp = JSON.parse(readFileSync(join(DIR, 'router-ifaces.pcapng.expect.json'), 'utf8')) as Expect;
    const res = await analyzeFiles([join(DIR, 'router-ifaces.pcapng')]);
    for (const c of exp.conversations) {
      const got = ours(res.records, c);
      expect([...got.directions]).toEqual([c.class === 'forwarded' ? 'forwarded' : 'unknown']);
    }
  });

  it('router-nat.pcap: with the router\'s addresses the inside leg is forwarded and the translated leg outbound', async () => {
    const exp = JSON.parse(readFileSync(join(DIR, 'router-nat.pcap.expect.json'), 'utf8')) as Expect & { nat_pairs: unknown[] };
    expect(exp.nat_pairs.length).toBeGreaterThan(0);
    const classes = new Set(exp.conversations.map((c) => c.class));
    expect(classes).toEqual(new Set(['forwarded', 'outbound']));
  });
});
