/**
 * Capture reader benchmarks.
 *
 *   benchReaders(path)  read file + walk records + trivial sink (the number that matters)
 *   u32 styles          how the record walk reads its 32-bit fields: manual shifts
 *                       (what pcap.ts uses), Buffer.readUInt32LE, one DataView per chunk
 *   io modes            whole-file read loop: fs.readSync vs FileHandle.read into one buffer
 *
 * As a script (after `npm run build`):
 *   node dist/bench/readers.js [--only reader|u32|io] [--packets N] [--pcapng] [file]
 * Without a file it generates /tmp/flowtap-bench-<N>.pcap (or .pcapng: N
 * records of 100 captured bytes, default 2,000,000) once and reuses it.
 * Prints numbers; never fails on speed.
 *
 * What it decided (2-core AMD EPYC VM, Node 20, 2 M records of 100 bytes, page cache warm):
 *   u32 reads, in memory:  shifts 80-125 M/s, DataView-per-buffer 70-145 M/s (noisier),
 *                          Buffer.readUInt32LE 15-28 M/s  -> pcap.ts/pcapng.ts use shifts
 *                          (as fast as a DataView and work on any Uint8Array, no view to build)
 *   io, 4 MiB reads:       readSync ~14 GB/s, FileHandle.read ~12.5 GB/s; end to end no
 *                          measurable difference (both 35-50 M packets/s) -> file.ts uses
 *                          FileHandle.read, which lets the event loop run between chunks
 *   reader:                pcap 25-50 M packets/s, pcapng (ns EPBs) 16-20 M packets/s
 *                          (the low ends with other jobs on the machine)
 */
import { closeSync, existsSync, openSync, readSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { readCaptureFile } from '../agent/capture/file.js';
import type { InterfaceInfo, PacketSink } from '../agent/capture/types.js';

/** Counts packets and captured bytes: the cheapest sink that still uses its arguments. */
class CountingSink implements PacketSink {
  packets = 0;
  bytes = 0;
  addInterface(_info: InterfaceInfo): number {
    return 0;
  }
  packet(_buf: Uint8Array, _off: number, caplen: number): void {
    this.packets++;
    this.bytes += caplen;
  }
}

/** Reads `path` once with readCaptureFile into a counting sink. */
export async function benchReaders(path: string): Promise<{ packets: number; seconds: number; pps: number }> {
  const sink = new CountingSink();
  const t0 = performance.now();
  const r = await readCaptureFile(path, sink);
  const seconds = (performance.now() - t0) / 1000;
  if (r.error) throw r.error;
  return { packets: r.packets, seconds, pps: r.packets / seconds };
}

/** Writes a little-endian µs pcap of `count` records of `size` captured bytes (deterministic content). */
export function writeBenchPcap(path: string, count: number, size = 100): void {
  const fd = openSync(path, 'w');
  try {
    const hdr = Buffer.alloc(24);
    hdr.writeUInt32LE(0xa1b2c3d4, 0);
    hdr.writeUInt16LE(2, 4);
    hdr.writeUInt16LE(4, 6);
    hdr.writeUInt32LE(262144, 16);
    hdr.writeUInt32LE(1, 20);
    writeSync(fd, hdr);
    const rec = 16 + size;
    const per = Math.max(1, Math.floor((4 << 20) / rec));
    const chunk = Buffer.alloc(per * rec);
    for (let i = 0; i < per; i++) {
      const at = i * rec;
      chunk.writeUInt32LE(size, at + 8);
      chunk.writeUInt32LE(size + 20, at + 12);
      for (let j = 0; j < size; j++) chunk[at + 16 + j] = (i + j) & 0xff;
    }
    let sec = 1_700_000_000;
    let usec = 0;
    for (let done = 0; done < count; ) {
      const n = Math.min(per, count - done);
      for (let i = 0; i < n; i++) {
        chunk.writeUInt32LE(sec, i * rec);
        chunk.writeUInt32LE(usec, i * rec + 4);
        usec += 7;
        if (usec >= 1e6) {
          usec -= 1e6;
          sec++;
        }
      }
      writeSync(fd, chunk, 0, n * rec);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes a little-endian pcapng (one ns interface) of `count` EPBs of `size` captured bytes. */
export function writeBenchPcapng(path: string, count: number, size = 100): void {
  const fd = openSync(path, 'w');
  try {
    const head = Buffer.alloc(28 + 32);
    head.writeUInt32LE(0x0a0d0d0a, 0);
    head.writeUInt32LE(28, 4);
    head.writeUInt32LE(0x1a2b3c4d, 8);
    head.writeUInt16LE(1, 12);
    head.writeInt32LE(-1, 16);
    head.writeInt32LE(-1, 20);
    head.writeUInt32LE(28, 24);
    // IDB: Ethernet, snaplen 0, if_tsresol 9, end of options.
    head.writeUInt32LE(1, 28);
    head.writeUInt32LE(32, 32);
    head.writeUInt16LE(1, 36);
    head.writeUInt16LE(9, 44);
    head.writeUInt16LE(1, 46);
    head.writeUInt8(9, 48);
    head.writeUInt32LE(32, 56);
    writeSync(fd, head);
    const rec = 32 + ((size + 3) & ~3);
    const per = Math.max(1, Math.floor((4 << 20) / rec));
    const chunk = Buffer.alloc(per * rec);
    for (let i = 0; i < per; i++) {
      const at = i * rec;
      chunk.writeUInt32LE(6, at);
      chunk.writeUInt32LE(rec, at + 4);
      chunk.writeUInt32LE(size, at + 20);
      chunk.writeUInt32LE(size + 20, at + 24);
      for (let j = 0; j < size; j++) chunk[at + 28 + j] = (i + j) & 0xff;
      chunk.writeUInt32LE(rec, at + rec - 4);
    }
    let t = 1_700_000_000_000_000_000n;
    for (let done = 0; done < count; ) {
      const n = Math.min(per, count - done);
      for (let i = 0; i < n; i++) {
        chunk.writeUInt32LE(Number(t >> 32n), i * rec + 12);
        chunk.writeUInt32LE(Number(t & 0xffffffffn), i * rec + 16);
        t += 7_001n;
      }
      writeSync(fd, chunk, 0, n * rec);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

type U32Style = 'shift' | 'readUInt32LE' | 'dataview';

/** Walks the records of an in-memory LE pcap with one u32 read style; returns packets/s. */
export function benchU32Style(buf: Buffer, style: U32Style, passes = 5): number {
  const counter = new CountingSink();
  const sink: PacketSink = counter;
  const t0 = performance.now();
  for (let pass = 0; pass < passes; pass++) walkU32Style(buf, style, sink);
  return counter.packets / ((performance.now() - t0) / 1000);
}

function walkU32Style(buf: Buffer, style: U32Style, sink: PacketSink): void {
  const end = buf.length;
  let p = 24;
  if (style === 'shift') {
    while (end - p >= 16) {
      const incl = (buf[p + 8] | (buf[p + 9] << 8) | (buf[p + 10] << 16) | (buf[p + 11] << 24)) >>> 0;
      if (end - p - 16 < incl) break;
      const sec = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
      const frac = (buf[p + 4] | (buf[p + 5] << 8) | (buf[p + 6] << 16) | (buf[p + 7] << 24)) >>> 0;
      const orig = (buf[p + 12] | (buf[p + 13] << 8) | (buf[p + 14] << 16) | (buf[p + 15] << 24)) >>> 0;
      sink.packet(buf, p + 16, incl, orig, sec, frac * 1000, 0);
      p += 16 + incl;
    }
  } else if (style === 'readUInt32LE') {
    while (end - p >= 16) {
      const incl = buf.readUInt32LE(p + 8);
      if (end - p - 16 < incl) break;
      sink.packet(buf, p + 16, incl, buf.readUInt32LE(p + 12), buf.readUInt32LE(p), buf.readUInt32LE(p + 4) * 1000, 0);
      p += 16 + incl;
    }
  } else {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    while (end - p >= 16) {
      const incl = dv.getUint32(p + 8, true);
      if (end - p - 16 < incl) break;
      sink.packet(buf, p + 16, incl, dv.getUint32(p + 12, true), dv.getUint32(p, true), dv.getUint32(p + 4, true) * 1000, 0);
      p += 16 + incl;
    }
  }
}

/** Reads the whole file into one reused buffer; returns MB/s. */
export async function benchIo(path: string, mode: 'readSync' | 'fh.read', chunk = 4 << 20): Promise<number> {
  const buf = Buffer.allocUnsafe(chunk);
  let total = 0;
  const t0 = performance.now();
  if (mode === 'readSync') {
    const fd = openSync(path, 'r');
    for (let n; (n = readSync(fd, buf, 0, chunk, null)) > 0; ) total += n;
    closeSync(fd);
  } else {
    const fh = await open(path, 'r');
    for (let n; (n = (await fh.read(buf, 0, chunk, null)).bytesRead) > 0; ) total += n;
    await fh.close();
  }
  return total / 1e6 / ((performance.now() - t0) / 1000);
}

async function main(argv: string[]): Promise<void> {
  let only = '';
  let count = 2_000_000;
  let path = '';
  let ng = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only') only = argv[++i] ?? '';
    else if (argv[i] === '--pcapng') ng = true;
    else if (argv[i] === '--packets') count = Number(argv[++i]);
    else path = argv[i];
  }
  if (path === '') {
    path = `/tmp/flowtap-bench-${count}.${ng ? 'pcapng' : 'pcap'}`;
    if (!existsSync(path)) {
      process.stdout.write(`writing ${path}\n`);
      if (ng) writeBenchPcapng(path, count);
      else writeBenchPcap(path, count);
    }
  }
  const runs = 5;
  if (only === '' || only === 'reader') {
    for (let i = 0; i < runs; i++) {
      const r = await benchReaders(path);
      process.stdout.write(`reader  ${r.packets} packets in ${r.seconds.toFixed(3)} s: ${(r.pps / 1e6).toFixed(2)} M packets/s\n`);
    }
  }
  if ((only === '' || only === 'u32') && !ng) {
    const fh = await open(path, 'r');
    const buf = await fh.readFile();
    await fh.close();
    for (let i = 0; i < runs; i++) {
      const line = (i % 2 === 0 ? (['shift', 'readUInt32LE', 'dataview'] as const) : (['dataview', 'readUInt32LE', 'shift'] as const))
        .map((s) => `${s} ${(benchU32Style(buf, s) / 1e6).toFixed(2)}`)
        .join('  ');
      process.stdout.write(`u32     M packets/s in memory: ${line}\n`);
    }
  }
  if (only === '' || only === 'io') {
    for (let i = 0; i < runs; i++) {
      const a = await benchIo(path, 'readSync');
      const b = await benchIo(path, 'fh.read');
      process.stdout.write(`io      MB/s 4 MiB reads: readSync ${a.toFixed(0)}  fh.read ${b.toFixed(0)}\n`);
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  });
}
