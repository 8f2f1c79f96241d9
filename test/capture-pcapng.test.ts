import { describe, expect, it } from 'vitest';
import { readCaptureBuffer } from '../agent/capture/file.js';
import { PCAPNG_MAX_BLOCK } from '../agent/capture/pcapng.js';
import { MAX_INTERFACES } from '../agent/capture/types.js';
import { Pipeline } from '../agent/pipeline.js';
import { pcapngFile, type Packet, type PcapngBlock, type PcapngInterface, type PcapngSection } from './gen/pcap-writer.js';
import { RecordingSink, expectedRecs, makePackets, pcapngBlockOffsets, rng } from './capture-helpers.js';

function read(buf: Buffer, name = '/data/trace.pcapng', firstIndex = 0) {
  const sink = new RecordingSink(firstIndex);
  const result = readCaptureBuffer(name, buf, sink);
  return { sink, result };
}

/** Independent reference: raw units -> [sec, nsec] with BigInt. */
function refTs(t: bigint, tsresol: number | undefined, tsoffset = 0): [number, number] {
  const r = tsresol ?? 6;
  const units = r & 0x80 ? 1n << BigInt(r & 0x7f) : 10n ** BigInt(r);
  return [Number(t / units) + tsoffset, Number(((t % units) * 1_000_000_000n) / units)];
}

const epbs = (ps: Packet[], iface = 0): PcapngBlock[] => ps.map((packet) => ({ kind: 'epb', iface, packet }));

describe('pcapng: sections, interfaces, timestamps', () => {
  for (const bigEndian of [false, true]) {
    const bo = bigEndian ? 'BE' : 'LE';

    it(`${bo}: one interface, default µs resolution`, () => {
      const packets = makePackets(200, 3);
      const { sink, result } = read(pcapngFile([{ bigEndian, interfaces: [{ linktype: 1, snaplen: 65535 }], blocks: epbs(packets) }]));
      expect(result.error).toBeUndefined();
      expect(result).toMatchObject({ format: 'pcapng', compressed: false, packets: 200 });
      expect(sink.interfaces).toEqual([{ linktype: 1, snaplen: 65535, name: 'trace.pcapng#0', fcsBytes: 0 }]);
      expect(sink.recs).toEqual(expectedRecs(packets, 0));
    });

    it(`${bo}: several interfaces with names, resolutions, offsets and FCS lengths`, () => {
      const ifs: PcapngInterface[] = [
        { linktype: 1, name: 'eth0', tsresol: 9 },
        { linktype: 113, snaplen: 96, tsresol: 3, tsoffset: 1000 },
        { linktype: 101, name: 'wan', tsresol: 6, tsoffset: -3600, fcslen: 4 },
        { linktype: 228, tsresol: 0 },
        { linktype: 1, name: 'bin20', tsresol: 0x80 | 20 },
        { linktype: 1, tsresol: 0x80 | 0, tsoffset: 7 },
      ];
      const r = rng(11);
      const blocks: PcapngBlock[] = [];
      const expected: { iface: number; p: Packet }[] = [];
      for (const p of makePackets(300, 5, { nanos: true })) {
        const iface = Math.floor(r() * ifs.length);
        blocks.push({ kind: 'epb', iface, packet: p });
        expected.push({ iface, p });
      }
      const buf = pcapngFile([{ bigEndian, interfaces: ifs, blocks }]);
      const { sink, result } = read(buf, 'multi.pcapng', 10);
      expect(result.error).toBeUndefined();
      expect(sink.interfaces).toEqual([
        { linktype: 1, snaplen: 0, name: 'eth0', fcsBytes: 0 },
        { linktype: 113, snaplen: 96, name: 'multi.pcapng#1', fcsBytes: 0 },
        { linktype: 101, snaplen: 0, name: 'wan', fcsBytes: 4 },
        { linktype: 228, snaplen: 0, name: 'multi.pcapng#3', fcsBytes: 0 },
        { linktype: 1, snaplen: 0, name: 'bin20', fcsBytes: 0 },
        { linktype: 1, snaplen: 0, name: 'multi.pcapng#5', fcsBytes: 0 },
      ]);
      expect(sink.recs.length).toBe(300);
      expected.forEach(({ iface, p }, k) => {
        const i = ifs[iface];
        const units = i.tsresol! & 0x80 ? 2n ** BigInt(i.tsresol! & 0x7f) : 10n ** BigInt(i.tsresol!);
        const t = BigInt(p.sec - (i.tsoffset ?? 0)) * units + (BigInt(p.nsec) * units) / 1_000_000_000n;
        const [sec, nsec] = refTs(t, i.tsresol, i.tsoffset);
        expect(sink.recs[k]).toEqual({ ...expectedRecs([p], 10 + iface)[0], sec, nsec });
        if (i.tsresol === 9) expect([sec, nsec]).toEqual([p.sec, p.nsec]);
      });
    });
  }

  it('several sections: byte order per section, a new interface list each time', () => {
    const a = makePackets(20, 1, { nanos: true });
    const b = makePackets(20, 2);
    const c = makePackets(20, 3);
    const sections: PcapngSection[] = [
      { interfaces: [{ linktype: 1, name: 'a0', tsresol: 9 }, { linktype: 1, name: 'a1', tsresol: 9 }], blocks: [...epbs(a.slice(0, 10), 1), ...epbs(a.slice(10), 0)] },
      { bigEndian: true, interfaces: [{ linktype: 101 }], blocks: epbs(b) },
      { interfaces: [{ linktype: 228, name: 'c0' }, { linktype: 1, name: 'c1' }], blocks: epbs(c, 1) },
    ];
    const { sink, result } = read(pcapngFile(sections), 's.pcapng');
    expect(result.error).toBeUndefined();
    expect(sink.interfaces.map((i) => i.name)).toEqual(['a0', 'a1', 's.pcapng#2', 'c0', 'c1']);
    expect(sink.recs).toEqual([...expectedRecs(a.slice(0, 10), 1), ...expectedRecs(a.slice(10), 0), ...expectedRecs(b, 2), ...expectedRecs(c, 4)]);
  });

  it('packet on an interface of an earlier section only is bad_block', () => {
    const ps = makePackets(3, 4);
    const buf = pcapngFile([
      { interfaces: [{}, {}], blocks: epbs(ps, 1) },
      { interfaces: [{}], blocks: epbs(ps, 1) },
    ]);
    const { result } = read(buf);
    expect(result.error).toMatchObject({ reason: 'bad_block', packets: 3, offset: pcapngBlockOffsets(buf)[8] });
    expect(result.error?.detail).toContain('interface 1');
  });

  describe('timestamp precision', () => {
    const max64 = (1n << 64n) - 1n;
    const edges = [0n, 1n, 999_999n, 1_000_000n, (1n << 32n) - 1n, 1n << 32n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 1_700_000_000_123_456_789n, 1_700_000_000_999_999_999n, max64 - 1n, max64];
    const resols = [0, 1, 3, 6, 9, 10, 0x80 | 0, 0x80 | 10, 0x80 | 20, 0x80 | 23, 0x80 | 30, 0x80 | 32, 0x80 | 36];
    it.each(resols)('tsresol %i: exact for edge values and random 64-bit values', (tsresol) => {
      const r = rng(tsresol + 1);
      const values = [...edges];
      for (let i = 0; i < 2000; i++) {
        const hi = BigInt(Math.floor(r() * 2 ** 32));
        const lo = BigInt(Math.floor(r() * 2 ** 32));
        values.push((hi << 32n) | lo);
        values.push((BigInt(Math.floor(r() * 2 ** 21)) << 32n) | lo); // below 2^53
      }
      const units = tsresol & 0x80 ? 1n << BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol);
      values.push(...values.slice(0, 50).map((v) => ((v / units) * units + units - 1n) & max64)); // last unit of a second
      const packet = { sec: 0, nsec: 0, data: new Uint8Array(1) };
      for (const bigEndian of [false, true]) {
        const buf = pcapngFile([{ bigEndian, interfaces: [{ tsresol }], blocks: values.map((ts) => ({ kind: 'epb' as const, iface: 0, packet, ts })) }]);
        const { sink } = read(buf);
        const got = sink.recs.map((x) => [x.sec, x.nsec]);
        const want = values.map((v) => refTs(v, tsresol));
        if ((tsresol & 0x80 && (tsresol & 0x7f) > 23) || tsresol === 10) {
          // Finer than 2^-23 s (and 10^-10): seconds exact, nanoseconds within 1.
          got.forEach(([s, n], i) => {
            expect(s).toBe(want[i][0]);
            expect(Math.abs(n - want[i][1])).toBeLessThanOrEqual(1);
          });
        } else {
          expect(got).toEqual(want);
        }
      }
    });

    it('finer resolutions (10^-12, 2^-40) are close', () => {
      for (const tsresol of [12, 0x80 | 40]) {
        const units = tsresol & 0x80 ? 1n << 40n : 10n ** 12n;
        const ts = 1_000_123n * units + units / 3n;
        const { sink } = read(pcapngFile([{ interfaces: [{ tsresol }], blocks: [{ kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: new Uint8Array(0) }, ts }] }]));
        expect(sink.recs[0].sec).toBe(1_000_123);
        expect(Math.abs(sink.recs[0].nsec - 333_333_333)).toBeLessThan(2000);
      }
    });

    it('if_tsoffset is added, also when negative', () => {
      const ts = 5_000_000n;
      for (const [tsoffset, sec] of [[100, 105], [-3, 2], [2 ** 40, 2 ** 40 + 5]] as const) {
        const { sink } = read(pcapngFile([{ interfaces: [{ tsoffset }], blocks: [{ kind: 'epb', iface: 0, packet: { sec: 0, nsec: 0, data: new Uint8Array(0) }, ts }] }]));
        expect(sink.recs[0]).toMatchObject({ sec, nsec: 0 });
      }
    });
  });
});

describe('pcapng: simple, obsolete and skipped blocks', () => {
  for (const bigEndian of [false, true]) {
    const bo = bigEndian ? 'BE' : 'LE';
    it(`${bo}: SPB uses interface 0, min(orig, block, snaplen) and the last timestamp`, () => {
      const d = (n: number) => new Uint8Array(n).map((_, i) => i);
      const blocks: PcapngBlock[] = [
        { kind: 'spb', packet: { sec: 9, nsec: 9, data: d(10) } }, // before any timestamp: 0.0
        { kind: 'epb', iface: 1, packet: { sec: 50, nsec: 123000, data: d(3) } },
        { kind: 'spb', packet: { sec: 0, nsec: 0, data: d(10), origLen: 7 } }, // orig < block data
        { kind: 'spb', packet: { sec: 0, nsec: 0, data: d(80), origLen: 1500 } }, // snaplen 64
        { kind: 'spb', packet: { sec: 0, nsec: 0, data: d(11), origLen: 1500 } }, // block data (padded to 12) < orig: 12
      ];
      const { sink, result } = read(pcapngFile([{ bigEndian, interfaces: [{ snaplen: 64 }, {}], blocks }]));
      expect(result.error).toBeUndefined();
      expect(sink.recs.map(({ caplen, wirelen, sec, nsec, ifIndex }) => ({ caplen, wirelen, sec, nsec, ifIndex }))).toEqual([
        { caplen: 10, wirelen: 10, sec: 0, nsec: 0, ifIndex: 0 },
        { caplen: 3, wirelen: 3, sec: 50, nsec: 123000, ifIndex: 1 },
        { caplen: 7, wirelen: 7, sec: 50, nsec: 123000, ifIndex: 0 },
        { caplen: 64, wirelen: 1500, sec: 50, nsec: 123000, ifIndex: 0 },
        { caplen: 12, wirelen: 1500, sec: 50, nsec: 123000, ifIndex: 0 },
      ]);
      expect(sink.recs[2].data).toBe('00010203040506');
    });

    it(`${bo}: obsolete Packet Block`, () => {
      const ps = makePackets(10, 8);
      const { sink, result } = read(pcapngFile([{ bigEndian, interfaces: [{}, { tsresol: 9 }], blocks: ps.map((packet, i) => ({ kind: 'pb', iface: i % 2, packet })) }]));
      expect(result.error).toBeUndefined();
      expect(sink.recs).toEqual(ps.map((p, i) => expectedRecs([p], i % 2)[0]));
    });

    it(`${bo}: custom, NRB, ISB, DSB and unknown blocks are skipped`, () => {
      const ps = makePackets(6, 9);
      const body = (n: number) => new Uint8Array(n).fill(0x5a);
      const odd: PcapngBlock[] = [
        { kind: 'raw', type: 0x00000bad, body: body(13) },
        { kind: 'raw', type: 0x40000bad, body: body(4) },
        { kind: 'raw', type: 4, body: body(20) },
        { kind: 'raw', type: 5, body: body(24) },
        { kind: 'raw', type: 10, body: body(0) },
        { kind: 'raw', type: 0x12345678, body: body(1000) },
        { kind: 'raw', type: 0x80000001, body: body(3) },
      ];
      const blocks = ps.flatMap((p, i) => [odd[i], { kind: 'epb' as const, iface: 0, packet: p }]);
      const { sink, result } = read(pcapngFile([{ bigEndian, interfaces: [{}], blocks: [...blocks, odd[6]] }]));
      expect(result.error).toBeUndefined();
      expect(sink.recs).toEqual(expectedRecs(ps, 0));
    });
  }
});

describe('pcapng: more interfaces than a run may have', () => {
  it('stops at the first IDB beyond MAX_INTERFACES with bad_block, keeping the packets before it', () => {
    const ps = makePackets(1, 5, { maxLen: 60 });
    const file = pcapngFile([{ interfaces: Array.from({ length: MAX_INTERFACES + 1 }, () => ({})), blocks: epbs(ps) }]);
    const p = new Pipeline();
    const r = readCaptureBuffer('many.pcapng', file, p);
    expect(r.error?.reason).toBe('bad_block');
    // The SHB is 28 bytes, an IDB without options 20.
    expect(r.error?.offset).toBe(28 + MAX_INTERFACES * 20);
    expect(r.error?.detail).toContain(`${MAX_INTERFACES} interfaces`);
    expect(p.interfaces).toHaveLength(MAX_INTERFACES);
  });
});

describe('pcapng: damaged files', () => {
  const ps = makePackets(4, 21, { maxLen: 60 });
  const good = (bigEndian: boolean) => pcapngFile([{ bigEndian, interfaces: [{ name: 'x' }], blocks: epbs(ps) }]);
  // Blocks of `good`: 0 SHB, 1 IDB, 2..5 EPB.
  const w32 = (b: Buffer, at: number, v: number, be: boolean) => (be ? b.writeUInt32BE(v >>> 0, at) : b.writeUInt32LE(v >>> 0, at));
  type Case = { name: string; build: (be: boolean) => Buffer; reason: string; offset: (be: boolean) => number; packets: number; detail?: string };
  const at = (k: number) => (be: boolean) => pcapngBlockOffsets(good(be))[k];
  const patched = (k: number, rel: number | ((len: number) => number), v: number) => (be: boolean) => {
    const b = good(be);
    const o = pcapngBlockOffsets(b)[k];
    const len = be ? b.readUInt32BE(o + 4) : b.readUInt32LE(o + 4);
    w32(b, o + (typeof rel === 'number' ? rel : rel(len)), v, be);
    return b;
  };
  const cases: Case[] = [
    { name: 'bad byte-order magic', build: patched(0, 8, 0x11223344), reason: 'bad_magic', offset: () => 0, packets: 0 },
    { name: 'SHB cut', build: (be) => good(be).subarray(0, 20), reason: 'truncated_header', offset: () => 0, packets: 0 },
    { name: 'SHB version 2', build: (be) => { const b = good(be); if (be) b.writeUInt16BE(2, 12); else b.writeUInt16LE(2, 12); return b; }, reason: 'bad_header', offset: () => 0, packets: 0 },
    { name: 'cut mid block', build: (be) => good(be).subarray(0, at(4)(be) + 30), reason: 'truncated_record', offset: at(4), packets: 2 },
    { name: 'cut mid block header', build: (be) => good(be).subarray(0, at(5)(be) + 6), reason: 'truncated_record', offset: at(5), packets: 3 },
    { name: 'bad trailing block length', build: patched(3, (len) => len - 4, 999), reason: 'bad_block', offset: at(3), packets: 1, detail: 'trailing' },
    { name: 'block length not a multiple of 4', build: patched(4, 4, 45), reason: 'bad_block', offset: at(4), packets: 2 },
    { name: 'block length below 12', build: patched(2, 4, 8), reason: 'bad_block', offset: at(2), packets: 0 },
    { name: 'block length above the limit', build: patched(5, 4, PCAPNG_MAX_BLOCK + 4), reason: 'bad_block', offset: at(5), packets: 3 },
    { name: 'EPB on undeclared interface', build: patched(3, 8, 1), reason: 'bad_block', offset: at(3), packets: 1, detail: 'interface 1' },
    { name: 'EPB caplen beyond its block', build: patched(4, 20, 4000), reason: 'bad_block', offset: at(4), packets: 2 },
    { name: 'IDB option overruns the block', build: (be) => patched(1, 16, be ? (2 << 16) | 200 : 2 | (200 << 16))(be), reason: 'bad_block', offset: at(1), packets: 0 },
    { name: 'first block is not a SHB', build: (be) => good(be).subarray(at(1)(be)), reason: 'bad_magic', offset: () => 0, packets: 0 },
    {
      name: 'second SHB with a bad magic',
      build: (be) => { const b = Buffer.concat([good(be), good(be)]); w32(b, b.length / 2 + 8, 0x11223344, be); return b; },
      reason: 'bad_block',
      offset: (be) => good(be).length,
      packets: 4,
    },
    {
      name: 'SPB with no interface',
      build: (be) => pcapngFile([{ bigEndian: be, interfaces: [], blocks: [{ kind: 'spb', packet: ps[0] }] }]),
      reason: 'bad_block',
      offset: () => 28,
      packets: 0,
    },
  ];
  for (const be of [false, true]) {
    it.each(cases)(`$name (${be ? 'BE' : 'LE'})`, ({ build, reason, offset, packets, detail }) => {
      const { sink, result } = read(build(be), 'bad.pcapng');
      expect(result.error?.reason).toBe(reason);
      expect(result.error?.offset).toBe(offset(be));
      expect(result.error?.packets).toBe(packets);
      expect(result.error?.file).toBe('bad.pcapng');
      if (detail) expect(result.error?.detail).toContain(detail);
      expect(result.packets).toBe(packets);
      expect(sink.recs).toEqual(expectedRecs(ps.slice(0, packets), 0));
    });
  }
});
