import { describe, expect, it } from 'vitest';
import { readCaptureBuffer } from '../agent/capture/file.js';
import { PCAP_MAX_CAPLEN } from '../agent/capture/pcap.js';
import { pcapFile, type Packet, type PcapOptions } from './gen/pcap-writer.js';
import { RecordingSink, expectedRecs, makePackets, pcapRecordOffsets } from './capture-helpers.js';

function read(buf: Buffer, name = '/x/y/test.pcap') {
  const sink = new RecordingSink();
  const result = readCaptureBuffer(name, buf, sink);
  return { sink, result };
}

describe('classic pcap: formats', () => {
  const cases: { name: string; opts: PcapOptions }[] = [
    { name: 'LE µs 2.4', opts: {} },
    { name: 'BE µs 2.4', opts: { bigEndian: true } },
    { name: 'LE ns 2.4', opts: { nanos: true } },
    { name: 'BE ns 2.4', opts: { nanos: true, bigEndian: true } },
    { name: 'BE µs 2.1', opts: { bigEndian: true, version: [2, 1] } },
    { name: 'LE ns 2.1', opts: { nanos: true, version: [2, 1] } },
    { name: 'LE µs snaplen 0', opts: { snaplen: 0 } },
    { name: 'BE µs linktype 101', opts: { bigEndian: true, linktype: 101 } },
  ];
  it.each(cases)('$name: every record, field for field', ({ opts }) => {
    const packets = makePackets(300, 7, { nanos: opts.nanos });
    const buf = pcapFile(packets, opts);
    const { sink, result } = read(buf);
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ file: '/x/y/test.pcap', format: 'pcap', compressed: false, packets: 300, bytes: buf.length });
    expect(sink.interfaces).toEqual([{ linktype: opts.linktype ?? 1, snaplen: opts.snaplen ?? 262144, name: 'test.pcap', fcsBytes: 0 }]);
    expect(sink.recs).toEqual(expectedRecs(packets, 0, !opts.nanos));
  });

  it('µs files drop the sub-microsecond part, ns files keep it', () => {
    const p: Packet[] = [{ sec: 1, nsec: 123456789, data: new Uint8Array(4) }];
    expect(read(pcapFile(p)).sink.recs[0].nsec).toBe(123456000);
    expect(read(pcapFile(p, { nanos: true })).sink.recs[0].nsec).toBe(123456789);
  });

  it('seconds are unsigned 32-bit', () => {
    const p: Packet[] = [{ sec: 0xffffffff, nsec: 999999000, data: new Uint8Array(1) }];
    for (const bigEndian of [false, true]) {
      expect(read(pcapFile(p, { bigEndian })).sink.recs[0]).toMatchObject({ sec: 0xffffffff, nsec: 999999000 });
    }
  });

  it('a fraction of a second out of range carries into the seconds', () => {
    for (const [nanos, frac, sec, nsec] of [
      [false, 2_500_000, 12, 500_000_000],
      [true, 3_000_000_001, 13, 1],
    ] as const) {
      for (const bigEndian of [false, true]) {
        const buf = pcapFile([{ sec: 10, nsec: 0, data: new Uint8Array(2) }], { nanos, bigEndian });
        if (bigEndian) buf.writeUInt32BE(frac, 28);
        else buf.writeUInt32LE(frac, 28);
        expect(read(buf).sink.recs[0]).toMatchObject({ sec, nsec });
      }
    }
  });

  it.each([
    { field: 0x00000001, linktype: 1, fcsBytes: 0 },
    { field: 0x30000001, linktype: 1, fcsBytes: 0 }, // FCS nibble without the "present" bit: ignored
    { field: 0x04000001, linktype: 1, fcsBytes: 0 },
    { field: 0x14000001, linktype: 1, fcsBytes: 2 },
    { field: 0x24000001, linktype: 1, fcsBytes: 4 },
    { field: 0xf4000069, linktype: 105, fcsBytes: 30 },
    { field: 0x300000e5, linktype: 229, fcsBytes: 0 },
  ])('link-type field $field: LINKTYPE $linktype, $fcsBytes FCS bytes', ({ field, linktype, fcsBytes }) => {
    for (const bigEndian of [false, true]) {
      const { sink } = read(pcapFile([], { linktype: field, bigEndian }));
      expect(sink.interfaces[0]).toMatchObject({ linktype, fcsBytes });
    }
  });

  it('records up to 262144 bytes pass when the snaplen allows them', () => {
    const big = new Uint8Array(PCAP_MAX_CAPLEN).fill(0xab);
    for (const snaplen of [0, PCAP_MAX_CAPLEN, 0x7fffffff]) {
      const { sink, result } = read(pcapFile([{ sec: 1, nsec: 0, data: big }], { snaplen }));
      expect(result.error).toBeUndefined();
      expect(sink.recs[0].caplen).toBe(PCAP_MAX_CAPLEN);
    }
    const { result } = read(pcapFile([{ sec: 1, nsec: 0, data: new Uint8Array(100) }], { snaplen: 100 }));
    expect(result.error).toBeUndefined();
  });
});

describe('classic pcap: damaged files', () => {
  const five = makePackets(5, 99, { maxLen: 120 });
  type Case = { name: string; build: (o: PcapOptions) => Buffer; reason: string; offset: (b: Buffer) => number; packets: number };
  const rec = (k: number) => (o: PcapOptions) => pcapRecordOffsets(pcapFile(five, o))[k];
  const patchIncl = (k: number, v: number) => (o: PcapOptions) => {
    const b = pcapFile(five, o);
    const at = pcapRecordOffsets(b)[k] + 8;
    if (o.bigEndian) b.writeUInt32BE(v, at);
    else b.writeUInt32LE(v, at);
    return b;
  };
  const cases: Case[] = [
    { name: 'bad magic', build: () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), reason: 'bad_magic', offset: () => 0, packets: 0 },
    { name: 'empty file', build: () => Buffer.alloc(0), reason: 'truncated_header', offset: () => 0, packets: 0 },
    { name: '3 bytes of a magic', build: (o) => pcapFile([], o).subarray(0, 3), reason: 'truncated_header', offset: () => 0, packets: 0 },
    { name: 'global header cut at 20', build: (o) => pcapFile(five, o).subarray(0, 20), reason: 'truncated_header', offset: () => 0, packets: 0 },
    { name: 'caplen above 262144', build: patchIncl(2, PCAP_MAX_CAPLEN + 1), reason: 'bad_record_length', offset: (b) => pcapRecordOffsets(b)[2], packets: 2 },
    { name: 'caplen 0xffffffff', build: patchIncl(0, 0xffffffff), reason: 'bad_record_length', offset: () => 24, packets: 0 },
    {
      name: 'caplen above snaplen',
      build: (o) => pcapFile([...five.slice(0, 3), { sec: 9, nsec: 0, data: new Uint8Array(121) }], { ...o, snaplen: 120 }),
      reason: 'bad_record_length',
      offset: (b) => pcapRecordOffsets(b)[3],
      packets: 3,
    },
    { name: 'cut mid record data', build: (o) => pcapFile(five, o).subarray(0, rec(3)(o) + 16 + Math.floor(five[3].data.length / 2)), reason: 'truncated_record', offset: (b) => pcapRecordOffsets(b)[3], packets: 3 },
    { name: 'cut mid record header', build: (o) => pcapFile(five, o).subarray(0, rec(4)(o) + 5), reason: 'truncated_record', offset: (b) => b.length - 5, packets: 4 },
    { name: 'one stray byte at the end', build: (o) => Buffer.concat([pcapFile(five, o), Buffer.from([0])]), reason: 'truncated_record', offset: (b) => b.length - 1, packets: 5 },
  ];
  for (const bigEndian of [false, true]) {
    for (const nanos of [false, true]) {
      const o: PcapOptions = { bigEndian, nanos };
      it.each(cases)(`$name (${bigEndian ? 'BE' : 'LE'} ${nanos ? 'ns' : 'µs'})`, ({ build, reason, offset, packets }) => {
        const buf = build(o);
        const { sink, result } = read(buf, 'damaged.pcap');
        expect(result.error?.reason).toBe(reason);
        expect(result.error?.offset).toBe(offset(buf));
        expect(result.error?.packets).toBe(packets);
        expect(result.error?.file).toBe('damaged.pcap');
        expect(result.error?.message).toContain(`damaged.pcap: ${reason} at byte ${offset(buf)}`);
        expect(result.packets).toBe(packets);
        // Everything before the damage was delivered, unchanged.
        expect(sink.recs).toEqual(expectedRecs(five.slice(0, packets), 0, !nanos));
      });
    }
  }
});
