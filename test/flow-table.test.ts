import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pcapFile, type Packet as Rec } from './gen/pcap-writer.js';
import { ACK, FIN, RST, SYN, bytes, eth, icmp, ipv4, ipv6, sll2, tcp, udp, vlanTag } from './gen/packets.js';
import { analyzeFiles } from './helpers/analyze.js';
import { main } from '../agent/cli.js';
import { Pipeline } from '../agent/pipeline.js';
import { FlowTable, nextCapacity } from '../agent/flows/table.js';
import { readCaptureBuffer } from '../agent/capture/file.js';

const T0 = 1_700_000_000;
const dir = mkdtempSync(join(tmpdir(), 'flowtap-table-'));
let n = 0;
function file(recs: Rec[]): string {
  const p = join(dir, `t${n++}.pcap`);
  writeFileSync(p, pcapFile(recs));
  return p;
}
const at = (sec: number, data: Uint8Array): Rec => ({ sec: T0 + Math.floor(sec), nsec: Math.round((sec % 1) * 1e9), data });

const udpPkt = (src: string, sport: number, dst: string, dport: number, len = 10) =>
  eth(0x0800, ipv4({ proto: 17, src, dst }, udp(sport, dport, bytes(len))));
const tcpPkt = (src: string, sport: number, dst: string, dport: number, flags: number, seq: number, ack = 0, len = 0) =>
  eth(0x0800, ipv4({ proto: 6, src, dst }, tcp({ sport, dport, flags, seq, ack }, bytes(len))));

describe('flow table', () => {
  it('counts both directions of a flow in one record, with the originator first seen', async () => {
    const f = file([
      at(0, udpPkt('10.0.0.2', 5000, '10.0.0.1', 53, 20)),
      at(0.5, udpPkt('10.0.0.1', 53, '10.0.0.2', 5000, 40)),
      at(1, udpPkt('10.0.0.2', 5000, '10.0.0.1', 53, 20)),
    ]);
    const r = await analyzeFiles([f]);
    expect(r.records).toHaveLength(1);
    expect(r.records[0]).toMatchObject({
      'id.orig_h': '10.0.0.2', 'id.orig_p': 5000, 'id.resp_h': '10.0.0.1', 'id.resp_p': 53, proto: 'udp',
      orig_pkts: 2, resp_pkts: 1, orig_bytes: 40, resp_bytes: 40, orig_ip_bytes: 96, resp_ip_bytes: 68,
      orig_wire_bytes: 124, resp_wire_bytes: 82, duration: 1, final: true,
    });
    expect(r.records[0].ts).toBe(T0);
  });

  it('a SYN-ACK seen first makes its receiver the originator', async () => {
    const f = file([
      at(0, tcpPkt('10.0.0.1', 80, '10.0.0.2', 40000, SYN | ACK, 500, 101)),
      at(0.1, tcpPkt('10.0.0.2', 40000, '10.0.0.1', 80, ACK, 101, 501)),
    ]);
    const r = await analyzeFiles([f]);
    expect(r.records[0]).toMatchObject({ 'id.orig_h': '10.0.0.2', 'id.orig_p': 40000, 'id.resp_p': 80, orig_pkts: 1, resp_pkts: 1 });
  });

  it('an idle gap longer than the UDP timeout splits the flow', async () => {
    const f = file([
      at(0, udpPkt('10.0.0.2', 5000, '10.0.0.1', 53)),
      at(59, udpPkt('10.0.0.2', 5000, '10.0.0.1', 53)),
      at(59 + 61, udpPkt('10.0.0.2', 5000, '10.0.0.1', 53)),
    ]);
    const r = await analyzeFiles([f]);
    expect(r.records.map((x) => x.orig_pkts)).toEqual([2, 1]);
    expect(r.records[0].uid).not.toBe(r.records[1].uid);
    expect(r.pipeline.table.ends[0]).toBe(1); // idle
    // With a longer timeout it is one flow.
    const r2 = await analyzeFiles([f], ['--idle-timeout-udp', '2m']);
    expect(r2.records.map((x) => x.orig_pkts)).toEqual([3]);
  });

  it('flows are written when they end, before later packets are read', async () => {
    const recs: Rec[] = [at(0, udpPkt('10.0.0.2', 1, '10.0.0.1', 2))];
    for (let i = 1; i <= 200; i++) recs.push(at(i, udpPkt('10.0.0.3', 3, '10.0.0.1', 4)));
    const r = await analyzeFiles([file(recs)]);
    // The first flow timed out at 60 s of packet time; it is reported first, the long one at the end.
    expect(r.records.map((x) => x['id.orig_p'])).toEqual([1, 3]);
    expect(r.pipeline.table.ends[0]).toBe(1);
    expect(r.pipeline.table.ends[3]).toBe(1);
  });

  it('a closed TCP connection times out after the short timeout', async () => {
    const f = file([
      at(0, tcpPkt('10.0.0.2', 40000, '10.0.0.1', 80, SYN, 100)),
      at(0.01, tcpPkt('10.0.0.1', 80, '10.0.0.2', 40000, RST | ACK, 0, 101)),
      at(10, udpPkt('10.0.0.9', 1, '10.0.0.8', 2)),
      at(11, tcpPkt('10.0.0.2', 40000, '10.0.0.1', 80, ACK, 101, 1)),
    ]);
    const r = await analyzeFiles([f]);
    const tcps = r.records.filter((x) => x.proto === 'tcp');
    expect(tcps).toHaveLength(2);
    expect(tcps[0]).toMatchObject({ orig_pkts: 1, resp_pkts: 1, conn_state: 'REJ' });
  });

  it('the active timeout writes interim records with cumulative counts and keeps counting', async () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 25; i++) recs.push(at(i * 30, udpPkt('10.0.0.2', 7, '10.0.0.1', 9)));
    const r = await analyzeFiles([file(recs)], ['--active-timeout', '5m']);
    const finals = r.records.filter((x) => x.final);
    const interim = r.records.filter((x) => !x.final);
    expect(finals).toHaveLength(1);
    expect(finals[0].orig_pkts).toBe(25);
    expect(interim.length).toBe(2);
    expect(new Set(r.records.map((x) => x.uid)).size).toBe(1);
    expect(interim[0].orig_pkts).toBeLessThan(interim[1].orig_pkts);
  });

  it('when the table is full the flow nearest its deadline is evicted, and every packet still counts', async () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 2000; i++) {
      const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      recs.push(at(i * 0.001, udpPkt(src, 1000, '192.0.2.1', 53)));
    }
    const r = await analyzeFiles([file(recs)], ['--max-flows', '100']);
    expect(r.pipeline.table.count).toBe(0);
    expect(r.records).toHaveLength(2000);
    const evicted = r.records.filter((x) => x.evicted);
    expect(evicted).toHaveLength(1900);
    // The oldest go first.
    expect(evicted[0]['id.orig_h']).toBe('10.0.0.0');
    expect(r.records.reduce((a, x) => a + x.orig_pkts, 0)).toBe(2000);
    expect(r.pipeline.table.capacity).toBe(100);
  });

  it('a flood of 2 x --max-flows distinct TCP sources stays within the memory bound; every packet is counted', async () => {
    const max = 20_000;
    const recs: Rec[] = [];
    for (let i = 0; i < 2 * max; i++) {
      const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      recs.push(at(i * 1e-4, tcpPkt(src, 1024 + (i % 50000), '192.0.2.1', 80, SYN, i)));
    }
    const r = await analyzeFiles([file(recs)], ['--max-flows', String(max)]);
    const table = r.pipeline.table;
    // Capacity never passed the bound, and memory is what that capacity costs (all-TCP worst case,
    // with the index of a small table at its loosest: see docs/flows.md for the per-slot layout).
    expect(table.capacity).toBe(max);
    // 160 B record + 12.8 B index + 10 B timer links + 4 B TCP slot map + 128 B TCP record = 315 B.
    expect(table.memoryBytes() / max).toBeLessThan(320);
    expect(r.records.filter((x) => x.evicted)).toHaveLength(max);
    expect(r.records.reduce((a, x) => a + x.orig_pkts + x.resp_pkts, 0)).toBe(2 * max);
    expect(r.pipeline.packets).toBe(2 * max);
  });

  it('growing the table never loses the packet that made it grow', () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 3000; i++) {
      recs.push(at(i * 1e-3, udpPkt(`10.0.${i >> 8}.${i & 255}`, 1000, '192.0.2.1', 53)));
      recs.push(at(i * 1e-3, tcpPkt(`10.1.${i >> 8}.${i & 255}`, 2000, '192.0.2.2', 80, SYN, i)));
    }
    const p = new Pipeline({ initialCapacity: 16 });
    const ends: number[] = [];
    p.onFlowReport((t, s, _r, final) => final && ends.push(t.pkts(s, true) + t.pkts(s, false)));
    readCaptureBuffer('grow.pcap', pcapFile(recs), p);
    expect(p.table.capacity).toBeGreaterThanOrEqual(6000);
    p.finish();
    expect(ends).toHaveLength(6000);
    expect(ends.every((n) => n === 1)).toBe(true);
  });

  it('memory follows the live flows: growth by an eighth, under 300 bytes per live flow for a half-TCP mix', () => {
    expect(nextCapacity(16)).toBe(32);
    expect(nextCapacity(65536)).toBe(73728);
    expect(nextCapacity(1_000_000)).toBe(1_126_400);
    // 100 k live flows, half TCP, from a 64 Ki-slot start: the table grows in steps of an eighth.
    const recs: Rec[] = [];
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      recs.push(at(i * 1e-5, i & 1 ? udpPkt(src, 1000, '192.0.2.1', 53) : tcpPkt(src, 2000, '192.0.2.2', 80, SYN, i)));
    }
    const p = new Pipeline({});
    readCaptureBuffer('live.pcap', pcapFile(recs), p);
    const t = p.table;
    expect(t.peakLive).toBe(n);
    expect(t.capacity).toBeLessThan(n * 1.125 + 4096);
    // 128 B record + 32 B cold words + 12.8 B index + 10 B timer links + 4 B slot map + half of a 128 B TCP record, plus growth slack.
    expect(t.memoryBytes() / t.peakLive).toBeLessThan(300);
    p.finish();
    expect(t.count).toBe(0);
  });

  it('evicts under pressure when every flow waits beyond the timing wheel (idle timeout over 1024 s)', async () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 17; i++) recs.push(at(i * 0.01, udpPkt(`10.0.0.${i + 1}`, 1000, '192.0.2.1', 53)));
    const r = await analyzeFiles([file(recs)], ['--idle-timeout-udp', '3600s', '--active-timeout', '0', '--max-flows', '16']);
    expect(r.records).toHaveLength(17);
    expect(r.records.filter((x) => x.evicted)).toHaveLength(1);
    expect(r.records.find((x) => x.evicted)!['id.orig_h']).toBe('10.0.0.1');
  });

  it('a forwarded copy stamped slightly before the packet it copies, across a millisecond boundary, is still a copy', async () => {
    const pkt = ipv6({ nh: 17, src: '2001:db8:1::10', dst: '2001:db8:2::20' }, udp(5000, 53, bytes(20)));
    const recs: Rec[] = [
      { sec: T0, nsec: 1_000_001, data: sll2(0, 0x86dd, 2, pkt) }, // arriving, 1.000001 ms
      { sec: T0, nsec: 999_999, data: sll2(4, 0x86dd, 3, pkt) }, // leaving, stamped 2 µs earlier
    ];
    const f = join(dir, `t${n++}.pcap`);
    writeFileSync(f, pcapFile(recs, { linktype: 276 }));
    const r = await analyzeFiles([f]);
    expect(r.records).toHaveLength(1);
    expect(r.records[0]).toMatchObject({ direction: 'forwarded', orig_pkts: 1 });
    expect(r.pipeline.table.copies).toBe(1);
  });

  it('a table over exported copies (the ring of the NDJSON worker) reads every flow back, in its second chunk too', () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 70_000; i++) {
      const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      recs.push(at(i * 1e-5, i % 3 ? udpPkt(src, 1000 + (i & 7), '192.0.2.1', 53) : tcpPkt(src, 2000, '192.0.2.2', 80, SYN, i)));
      if (i % 3 === 0) recs.push(at(i * 1e-5 + 1e-6, tcpPkt('192.0.2.2', 80, src, 2000, SYN | ACK, 7, i + 1)));
    }
    const p = new Pipeline({});
    readCaptureBuffer('copies.pcap', pcapFile(recs), p);
    const t = p.table;
    const slots = 70_001;
    const ring = FlowTable.over(new SharedArrayBuffer(FlowTable.storageBytes(slots)), 0, slots);
    const seen = (tb: FlowTable, s: number) => [
      tb.flowId(s), tb.proto(s), tb.port(s, true), tb.port(s, false), tb.recWords(s)[tb.addrOffset(s, true) + 3], tb.recWords(s)[tb.addrOffset(s, false) + 3],
      tb.pkts(s, true), tb.pkts(s, false), tb.ipBytes(s, true), tb.wireBytes(s, false), tb.first(s), tb.last(s), tb.direction(s),
      tb.proto(s) === 6 ? `${tb.tcp.connState(s)} ${tb.tcp.history(s)} ${tb.tcp.rttSynSynAckNs(s)}` : tb.udpHistory(s),
    ];
    let n = 0;
    t.forEachLive((s) => {
      const i = (n++ * 4099) % slots; // spread over both chunks of the ring
      t.exportFlow(s, ring, i);
      expect(seen(ring, i)).toEqual(seen(t, s));
    });
    expect(n).toBe(70_000);
  });

  it('VLAN ids are part of the key', async () => {
    const inner = ipv4({ proto: 17 }, udp(1, 2, bytes(4)));
    const f = file([at(0, eth(0x8100, vlanTag(10, 0x0800, inner))), at(0.1, eth(0x8100, vlanTag(20, 0x0800, inner))), at(0.2, eth(0x0800, inner))]);
    const r = await analyzeFiles([f]);
    expect(r.records.map((x) => x.vlan)).toEqual([10, 20, undefined]);
  });

  it('ICMP echo request and reply are one flow; IPv6 addresses are RFC 5952 text', async () => {
    const f = file([
      at(0, eth(0x0800, ipv4({ proto: 1, src: '10.0.0.1', dst: '10.0.0.2' }, icmp(8, 0, bytes(60))))),
      at(0.001, eth(0x0800, ipv4({ proto: 1, src: '10.0.0.2', dst: '10.0.0.1' }, icmp(0, 0, bytes(60))))),
      at(0.002, eth(0x86dd, ipv6({ nh: 58, src: '2001:db8:0:0:1:0:0:1', dst: '2001:db8::2' }, icmp(128, 0, bytes(8))))),
    ]);
    const r = await analyzeFiles([f]);
    expect(r.records[0]).toMatchObject({ proto: 'icmp', 'id.orig_p': 8, 'id.resp_p': 0, orig_pkts: 1, resp_pkts: 1 });
    expect(r.records[1]).toMatchObject({ proto: 'icmpv6', 'id.orig_h': '2001:db8::1:0:0:1', 'id.resp_h': '2001:db8::2', 'id.orig_p': 128, 'id.resp_p': 129 });
  });

  it('the same capture twice gives byte-identical NDJSON', async () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 3000; i++) {
      const k = (i * 7919) % 500;
      recs.push(at(i * 0.2, udpPkt(`10.0.${k >> 8}.${k & 255}`, 1000 + (k % 7), '192.0.2.1', 53, k % 50)));
      if (i % 3 === 0) recs.push(at(i * 0.2 + 0.01, tcpPkt(`10.1.${k >> 8}.${k & 255}`, 2000, '192.0.2.2', 80, i % 2 ? ACK : SYN, i, 1, k % 100)));
    }
    const f = file(recs);
    const o1 = join(dir, 'a.ndjson');
    const o2 = join(dir, 'b.ndjson');
    expect(await main(['analyze', f, '--flows', o1, '-q'])).toBe(0);
    expect(await main(['analyze', f, '--flows', o2, '-q'])).toBe(0);
    const a = readFileSync(o1);
    expect(a.length).toBeGreaterThan(1000);
    expect(a.equals(readFileSync(o2))).toBe(true);
  });

  it('a FIN exchange closes the flow with the short timeout', async () => {
    const f = file([
      at(0, tcpPkt('10.0.0.2', 40000, '10.0.0.1', 80, SYN, 100)),
      at(0.01, tcpPkt('10.0.0.1', 80, '10.0.0.2', 40000, SYN | ACK, 500, 101)),
      at(0.02, tcpPkt('10.0.0.2', 40000, '10.0.0.1', 80, ACK, 101, 501)),
      at(0.03, tcpPkt('10.0.0.2', 40000, '10.0.0.1', 80, FIN | ACK, 101, 501)),
      at(0.04, tcpPkt('10.0.0.1', 80, '10.0.0.2', 40000, FIN | ACK, 501, 102)),
      at(0.05, tcpPkt('10.0.0.2', 40000, '10.0.0.1', 80, ACK, 102, 502)),
      at(20, udpPkt('10.0.0.9', 1, '10.0.0.8', 2)),
    ]);
    const r = await analyzeFiles([f]);
    expect(r.records[0]).toMatchObject({ proto: 'tcp', conn_state: 'SF', orig_pkts: 4, resp_pkts: 2 });
    expect(r.pipeline.table.ends[0]).toBe(1); // ended by the idle sweep at 5 s, before the UDP flow
  });

  it('counts a forwarded packet once however many packets of its flow arrive before its copy leaves (capture on any)', async () => {
    // A router captured on `any` (SLL2): a batch of 64 data segments arrives (packet type host, ifindex 2)
    // before any of them leaves (outgoing, ifindex 3), then the ACKs, IPv6 duplicates among them
    // (identical headers: no IP id), interleaved the same way.
    const recs: Rec[] = [];
    let t = 0;
    const v6 = (flags: number, seq: number, ack: number, len: number, fromClient: boolean) => ipv6(
      { nh: 6, src: fromClient ? '2001:db8:1::10' : '2001:db8:2::20', dst: fromClient ? '2001:db8:2::20' : '2001:db8:1::10' },
      tcp({ sport: fromClient ? 40000 : 443, dport: fromClient ? 443 : 40000, flags, seq, ack }, bytes(len)));
    const both = (pkts: Uint8Array[], inIf: number, outIf: number) => {
      for (const p of pkts) recs.push({ sec: T0, nsec: (t += 1000), data: sll2(0, 0x86dd, inIf, p) });
      for (const p of pkts) recs.push({ sec: T0, nsec: (t += 1000), data: sll2(4, 0x86dd, outIf, p) });
    };
    both([v6(SYN, 1000, 0, 0, true)], 2, 3);
    both([v6(SYN | ACK, 9000, 1001, 0, false)], 3, 2);
    both([v6(ACK, 1001, 9001, 0, true)], 2, 3);
    const data: Uint8Array[] = [];
    for (let i = 0; i < 64; i++) data.push(v6(ACK, 1001 + i * 100, 9001, 100, true));
    both(data, 2, 3);
    // Six ACKs, three of them duplicates of the same ACK (a lost segment), all in one batch.
    const acks = [3401, 3401, 3401, 3401, 7401, 7401].map((a) => v6(ACK, 9001, a, 0, false));
    both(acks, 3, 2);
    const f = join(dir, `t${n++}.pcap`);
    writeFileSync(f, pcapFile(recs, { linktype: 276 }));
    const r = await analyzeFiles([f]);
    expect(r.records).toHaveLength(1);
    expect(r.records[0]).toMatchObject({ proto: 'tcp', direction: 'forwarded', orig_pkts: 2 + 64, resp_pkts: 1 + 6, orig_bytes: 6400 });
    expect(r.pipeline.table.copies).toBe(recs.length / 2);
  });
});
