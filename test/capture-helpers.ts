/** Shared helpers for the capture reader tests (not a test file itself). */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { InterfaceInfo, PacketSink, ReadResult } from '../agent/capture/types.js';
import type { Packet } from './gen/pcap-writer.js';

/** One delivered packet, copied out of the reader's buffer. */
export interface Rec {
  data: string; // hex of the captured bytes
  caplen: number;
  wirelen: number;
  sec: number;
  nsec: number;
  ifIndex: number;
}

/**
 * Records every interface and packet. Interface indexes start at `firstIndex`
 * (the sink, not the reader, owns them). Fails loudly if a reader hands out
 * bytes outside its buffer or a bad nanosecond value.
 */
export class RecordingSink implements PacketSink {
  readonly interfaces: InterfaceInfo[] = [];
  readonly recs: Rec[] = [];
  constructor(private readonly firstIndex = 0) {}

  addInterface(info: InterfaceInfo): number {
    this.interfaces.push({ ...info });
    return this.firstIndex + this.interfaces.length - 1;
  }

  packet(buf: Uint8Array, off: number, caplen: number, wirelen: number, tsSec: number, tsNsec: number, ifIndex: number): void {
    if (!(off >= 0 && caplen >= 0 && off + caplen <= buf.length)) {
      throw new Error(`packet bytes [${off}, ${off + caplen}) outside a buffer of ${buf.length}`);
    }
    if (!(Number.isInteger(tsNsec) && tsNsec >= 0 && tsNsec < 1e9) || !Number.isInteger(tsSec)) {
      throw new Error(`bad timestamp ${tsSec}.${tsNsec}`);
    }
    this.recs.push({
      data: Buffer.from(buf.subarray(off, off + caplen)).toString('hex'),
      caplen,
      wirelen,
      sec: tsSec,
      nsec: tsNsec,
      ifIndex,
    });
  }
}

/** A ReadResult with its error flattened to plain fields (for toEqual across runs). */
export function flat(r: ReadResult): object {
  const { error, ...rest } = r;
  return error === undefined
    ? rest
    : { ...rest, error: { file: error.file, offset: error.offset, packets: error.packets, reason: error.reason, detail: error.detail } };
}

/** Digest of everything a sink saw, for comparing large runs. */
export function digest(s: RecordingSink): string {
  const h = createHash('sha1');
  h.update(JSON.stringify(s.interfaces));
  for (const r of s.recs) h.update(`${r.caplen},${r.wirelen},${r.sec},${r.nsec},${r.ifIndex},${r.data};`);
  return h.digest('hex');
}

/** Deterministic pseudo-random numbers (xorshift32). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/**
 * `n` packets with sizes in [0, maxLen], increasing timestamps from
 * `startSec`, nanosecond parts that are whole microseconds unless `nanos`.
 */
export function makePackets(n: number, seed: number, opts: { maxLen?: number; startSec?: number; nanos?: boolean } = {}): Packet[] {
  const r = rng(seed);
  const maxLen = opts.maxLen ?? 200;
  let sec = opts.startSec ?? 1_700_000_000;
  const out: Packet[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.floor(r() * (maxLen + 1));
    const data = new Uint8Array(len);
    for (let j = 0; j < len; j++) data[j] = Math.floor(r() * 256);
    sec += Math.floor(r() * 3);
    const nsec = opts.nanos ? Math.floor(r() * 1e9) : Math.floor(r() * 1e6) * 1000;
    const origLen = r() < 0.3 ? len + Math.floor(r() * 1000) : len;
    out.push({ sec, nsec, data, origLen });
  }
  return out;
}

/** What a reader must deliver for `packets` (ifIndex fixed), µs files dropping the sub-µs part. */
export function expectedRecs(packets: readonly Packet[], ifIndex = 0, micros = false): Rec[] {
  return packets.map((p) => ({
    data: Buffer.from(p.data).toString('hex'),
    caplen: p.data.length,
    wirelen: p.origLen ?? p.data.length,
    sec: p.sec,
    nsec: micros ? Math.floor(p.nsec / 1000) * 1000 : p.nsec,
    ifIndex,
  }));
}

/** Offsets of the blocks of a pcapng buffer (walks the lengths; the byte order follows each SHB). */
export function pcapngBlockOffsets(b: Buffer): number[] {
  const out: number[] = [];
  let le = true;
  for (let p = 0; p + 12 <= b.length; ) {
    if (b.readUInt32LE(p) === 0x0a0d0d0a) le = b.readUInt32LE(p + 8) === 0x1a2b3c4d;
    out.push(p);
    p += le ? b.readUInt32LE(p + 4) : b.readUInt32BE(p + 4);
  }
  return out;
}

/** Offsets of the records of a classic pcap buffer. */
export function pcapRecordOffsets(b: Buffer): number[] {
  const le = b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d;
  const out: number[] = [];
  for (let p = 24; p + 16 <= b.length; ) {
    out.push(p);
    p += 16 + (le ? b.readUInt32LE(p + 8) : b.readUInt32BE(p + 8));
  }
  return out;
}

/** One record as the reference parser (npm `pcap-parser`) reports it. */
export interface RefRec {
  sec: number;
  usec: number;
  incl: number;
  orig: number;
  data: string;
}

interface PcapParserEmitter {
  on(ev: 'packet', f: (p: { header: { timestampSeconds: number; timestampMicroseconds: number; capturedLength: number; originalLength: number }; data: Buffer }) => void): void;
  on(ev: 'end', f: () => void): void;
  on(ev: 'error', f: (e: Error) => void): void;
}

/**
 * Runs the independent reference parser (npm `pcap-parser`, classic µs pcap
 * only) over a file path or a readable stream.
 */
export function pcapParserRecords(input: string | NodeJS.ReadableStream): Promise<{ recs: RefRec[]; error?: string }> {
  const require = createRequire(import.meta.url);
  const pcapp = require('pcap-parser') as { parse(input: string | NodeJS.ReadableStream): PcapParserEmitter };
  return new Promise((resolve) => {
    const recs: RefRec[] = [];
    let error: string | undefined;
    const parser = pcapp.parse(input);
    parser.on('packet', (p) =>
      recs.push({
        sec: p.header.timestampSeconds,
        usec: p.header.timestampMicroseconds,
        incl: p.header.capturedLength,
        orig: p.header.originalLength,
        data: p.data.toString('hex'),
      }),
    );
    parser.on('error', (e) => {
      error = e.message;
    });
    parser.on('end', () => resolve(error === undefined ? { recs } : { recs, error }));
  });
}

/** Our records in the reference parser's terms (µs files: nsec is a whole number of µs). */
export function asRefRecs(recs: readonly Rec[]): RefRec[] {
  return recs.map((r) => ({ sec: r.sec, usec: r.nsec / 1000, incl: r.caplen, orig: r.wirelen, data: r.data }));
}

/** Reference records with an out-of-range µs part carried into the seconds, as our reader does. */
export function normalizeRef(recs: readonly RefRec[]): RefRec[] {
  return recs.map((r) => (r.usec < 1e6 ? r : { ...r, sec: r.sec + Math.floor(r.usec / 1e6), usec: r.usec % 1e6 }));
}
