/**
 * Capture file reading: opens a file (or stdin for `-`), detects gzip by its
 * magic (1f 8b) and pcap vs pcapng by theirs, then feeds the bytes to the
 * matching push parser (pcap.ts, pcapng.ts), which delivers packet records
 * to a PacketSink.
 *
 * Plain files are read in big chunks (default 4 MiB) straight into one
 * reused buffer; records are walked in place and only the partial record at
 * the end of a chunk is copied (to the front of the buffer) before the next
 * read. Streams (gzip output, stdin) are walked in place in each incoming
 * chunk; only a record that straddles two chunks is copied into a carry
 * buffer.
 *
 * Nothing here throws for a bad or unreadable file: the ReadResult carries a
 * CaptureFileError with the file name, the offset (in the decompressed
 * stream) of the bad record or block, the packets delivered before it, a
 * reason from a closed set and a detail text.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { constants as zc, createGunzip, gunzipSync, inflateRawSync } from 'node:zlib';
import { PcapReader, pcapMagicKind } from './pcap.js';
import { PCAPNG_SHB, PcapngReader } from './pcapng.js';
import { CaptureFileError, type FileErrorReason, type PacketSink, type ReadResult } from './types.js';

export interface ReadOptions {
  /**
   * Bytes per read (plain files) and per decompressed chunk (gzip). Default
   * 4 MiB. Small values (down to 1) are for tests: results never depend on it.
   */
  chunkSize?: number;
}

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
const GZIP_OUT_CHUNK = 64 * 1024;
/** Bytes at the end of a gzip input fed to zlib one at a time (see gunzipInto). */
const GZIP_TAIL = 1024;
/** A damaged gzip file up to this size is inflated again to recover what zlib dropped with its error (see gunzipInto)... */
const SALVAGE_MAX_INPUT = 16 * 1024 * 1024;
/** ...when that takes at most this much output in all (memory). */
const SALVAGE_MAX_OUTPUT = 256 * 1024 * 1024;
/** Name used for `-` in results and errors. */
export const STDIN_NAME = '<stdin>';

/** What pcap.ts and pcapng.ts have in common (see PcapReader for the protocol). */
interface Walker {
  readonly format: 'pcap' | 'pcapng';
  packets: number;
  error: CaptureFileError | undefined;
  need: number;
  walk(buf: Uint8Array, pos: number, end: number, base: number): number;
  finish(buf: Uint8Array, pos: number, end: number, base: number): void;
}

/**
 * Drives one walker over a byte stream that arrives in pieces. Holds the
 * carry buffer `work`, whose first `held` bytes are the unconsumed start of
 * the stream at offset `pos`.
 */
class Feeder {
  work: Uint8Array;
  held = 0;
  /** Stream offset of work[0], i.e. of the first byte not consumed yet. */
  pos = 0;
  walker: Walker | null = null;
  /** Set when the stream cannot be read further (a walker error or a detection failure). */
  error: CaptureFileError | undefined = undefined;

  constructor(
    readonly file: string,
    private readonly sink: PacketSink,
    private readonly ifName: string,
    capacity: number,
  ) {
    this.work = Buffer.allocUnsafe(Math.max(capacity, 16));
  }

  get stopped(): boolean {
    return this.error !== undefined;
  }

  /** Bytes the walker needs (from work[0]) before it can progress; 4 to detect the format. */
  private get need(): number {
    return this.walker === null ? 4 : this.walker.need;
  }

  /** Makes work hold at least `n` bytes, keeping the first `held`. */
  ensure(n: number): void {
    if (n <= this.work.length) return;
    const next = Buffer.allocUnsafe(Math.max(n, this.work.length * 2));
    next.set(this.work.subarray(0, this.held));
    this.work = next;
  }

  /** Walks work[0, held) and moves the unconsumed tail to the front. */
  walkWork(): void {
    if (this.walker === null) {
      if (this.held < 4) return;
      this.detect();
      if (this.walker === null) return;
    }
    const w = this.walker;
    const p = w.walk(this.work, 0, this.held, this.pos);
    this.sink.flush?.();
    if (p > 0) {
      this.work.copyWithin(0, p, this.held);
      this.held -= p;
      this.pos += p;
    }
    if (w.error !== undefined) this.error = w.error;
  }

  /** Feeds `c[from, to)`. Returns false once reading has stopped on an error. */
  push(c: Uint8Array, from = 0, to = c.length): boolean {
    let i = from;
    // First complete what is carried over, copying only as much as it needs.
    while (this.error === undefined && (this.held > 0 || this.walker === null)) {
      if (i >= to) return true;
      const k = Math.min(Math.max(this.need - this.held, 1), to - i);
      this.ensure(this.held + k);
      this.work.set(c.subarray(i, i + k), this.held);
      this.held += k;
      i += k;
      if (this.held >= this.need) this.walkWork();
    }
    if (this.error !== undefined) return false;
    if (i >= to) return true;
    // Then walk the rest of the chunk in place and keep its tail.
    const w = this.walker!;
    const p = w.walk(c, i, to, this.pos - i);
    this.sink.flush?.();
    this.pos += p - i;
    if (w.error !== undefined) {
      this.error = w.error;
      return false;
    }
    const tail = to - p;
    if (tail > 0) {
      this.ensure(tail);
      this.work.set(c.subarray(p, to), 0);
      this.held = tail;
    }
    return true;
  }

  /** Picks the walker from the 4 bytes at work[0]. */
  private detect(): void {
    const b = this.work;
    if (pcapMagicKind(b, 0) !== 0) {
      this.walker = new PcapReader(this.file, this.sink, this.ifName);
    } else if (((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0 === PCAPNG_SHB) {
      this.walker = new PcapngReader(this.file, this.sink, this.ifName);
    } else {
      this.error = new CaptureFileError(this.file, 0, 0, 'bad_magic', describeMagic(b.subarray(0, 4)));
    }
  }

  /** End of input: reports a truncated header or record, and builds the result. */
  finish(compressed: boolean, error?: CaptureFileError): ReadResult {
    this.sink.flush?.();
    if (this.error === undefined && error === undefined) {
      if (this.walker === null) {
        const have = this.work.subarray(0, this.held);
        this.error = isMagicPrefix(have)
          ? new CaptureFileError(this.file, 0, 0, 'truncated_header', this.held === 0 ? 'empty input' : `only ${this.held} bytes, too short for a capture file header`)
          : new CaptureFileError(this.file, 0, 0, 'bad_magic', describeMagic(have));
      } else {
        this.walker.finish(this.work, 0, this.held, this.pos);
        this.sink.flush?.();
        this.error = this.walker.error;
      }
    }
    const result: ReadResult = {
      file: this.file,
      format: this.walker === null ? 'unknown' : this.walker.format,
      compressed,
      packets: this.walker === null ? 0 : this.walker.packets,
      bytes: this.pos,
    };
    const err = this.error ?? error;
    if (err !== undefined) result.error = err;
    return result;
  }

  /** An error from outside the walker (I/O, gzip) at the current position. */
  failure(reason: FileErrorReason, detail: string): CaptureFileError {
    return new CaptureFileError(this.file, this.pos, this.walker === null ? 0 : this.walker.packets, reason, detail);
  }
}

const KNOWN_MAGICS = [
  [0xa1, 0xb2, 0xc3, 0xd4],
  [0xd4, 0xc3, 0xb2, 0xa1],
  [0xa1, 0xb2, 0x3c, 0x4d],
  [0x4d, 0x3c, 0xb2, 0xa1],
  [0x0a, 0x0d, 0x0d, 0x0a],
];

function isMagicPrefix(b: Uint8Array): boolean {
  return KNOWN_MAGICS.some((m) => b.every((x, i) => m[i] === x));
}

function describeMagic(b: Uint8Array): string {
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
  const be = b.length >= 4 ? ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0 : 0;
  if (be === 0xa1b2cd34 || be === 0x34cdb2a1) return `modified (Kuznetzov) pcap magic ${hex} is not supported`;
  return `unknown file magic ${hex}: not pcap (a1 b2 c3 d4 / a1 b2 3c 4d, either byte order), pcapng (0a 0d 0d 0a) or gzip (1f 8b)`;
}

function isGzip(b: Uint8Array, n: number): boolean {
  return n >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

function ifNameFor(name: string): string {
  return name === STDIN_NAME ? 'stdin' : basename(name);
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function chunkSizeOf(opts: ReadOptions | undefined): number {
  const c = opts?.chunkSize ?? DEFAULT_CHUNK_SIZE;
  return Number.isFinite(c) && c >= 1 ? Math.floor(c) : DEFAULT_CHUNK_SIZE;
}

/**
 * What decompresses from the gzip members in `data` up to the first damage:
 * each member's deflate data is inflated raw (no trailer check, and it stops
 * where the deflate data ends, whatever follows), up to the point where it
 * is corrupt or cut.
 */
function salvageGunzip(data: Uint8Array, maxOutput = Infinity): Uint8Array {
  const out: Uint8Array[] = [];
  let total = 0;
  let p = 0;
  while (data.length - p >= 10 && data[p] === 0x1f && data[p + 1] === 0x8b && data[p + 2] === 8) {
    const flags = data[p + 3];
    let q = p + 10;
    if (flags & 4) q = q + 2 <= data.length ? q + 2 + (data[q] | (data[q + 1] << 8)) : data.length;
    // File name, comment: NUL-terminated.
    for (const bit of [8, 16]) {
      if (flags & bit) {
        while (q < data.length && data[q] !== 0) q++;
        q++;
      }
    }
    if (flags & 2) q += 2;
    if (q >= data.length) break;
    let consumed: number;
    try {
      const opts = { info: true, finishFlush: zc.Z_SYNC_FLUSH, ...(maxOutput < Infinity ? { maxOutputLength: Math.max(1, maxOutput - total) } : {}) };
      const r = inflateRawSync(data.subarray(q), opts) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
      out.push(r.buffer);
      total += r.buffer.length;
      consumed = r.engine.bytesWritten;
    } catch {
      break;
    }
    p = q + consumed + 8;
  }
  return out.length === 1 ? out[0] : Buffer.concat(out);
}

/**
 * Reads a whole capture held in memory, synchronously. gzip input is
 * decompressed first (a damaged gzip stream delivers what decompresses and
 * ends with `gzip_error`).
 */
export function readCaptureBuffer(name: string, data: Uint8Array, sink: PacketSink): ReadResult {
  let bytes = data;
  let gzipError: string | undefined;
  const compressed = isGzip(data, data.length);
  if (compressed) {
    try {
      bytes = gunzipSync(data);
    } catch (e) {
      gzipError = errText(e);
      bytes = salvageGunzip(data);
    }
  }
  const f = new Feeder(name, sink, ifNameFor(name), 16);
  f.push(bytes);
  if (gzipError !== undefined && !f.stopped) return f.finish(true, f.failure('gzip_error', gzipError));
  return f.finish(compressed);
}

/**
 * Reads a capture from a stream of byte chunks (stdin, a socket, a test
 * generator); gzip is detected and decompressed on the fly.
 */
export async function readCaptureStream(
  name: string,
  source: AsyncIterable<Uint8Array>,
  sink: PacketSink,
  opts?: ReadOptions,
): Promise<ReadResult> {
  const chunkSize = chunkSizeOf(opts);
  const it = source[Symbol.asyncIterator]();
  // Sniff the first two bytes for gzip.
  const head: Uint8Array[] = [];
  let headLen = 0;
  try {
    while (headLen < 2) {
      const r = await it.next();
      if (r.done) break;
      head.push(r.value);
      headLen += r.value.length;
    }
  } catch (e) {
    await it.return?.();
    const f = new Feeder(name, sink, ifNameFor(name), 16);
    return f.finish(false, f.failure('read_error', errText(e)));
  }
  const first = head.length === 1 ? head[0] : Buffer.concat(head);
  const rest: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => it,
  };
  if (isGzip(first, first.length)) {
    async function* all(): AsyncGenerator<Uint8Array> {
      yield first;
      yield* rest;
    }
    return gunzipInto(name, all(), sink, chunkSize);
  }
  const f = new Feeder(name, sink, ifNameFor(name), Math.min(chunkSize, 1 << 16));
  if (!f.push(first)) {
    await it.return?.();
    return f.finish(false);
  }
  for (;;) {
    let r: IteratorResult<Uint8Array>;
    try {
      r = await it.next();
    } catch (e) {
      return f.finish(false, f.failure('read_error', errText(e)));
    }
    if (r.done) break;
    // A throwing sink is a bug downstream, not a bad file: it propagates.
    if (!f.push(r.value)) {
      await it.return?.();
      break;
    }
  }
  return f.finish(false);
}

/** Decompresses `source` (gzip, possibly several members) into a Feeder. */
async function gunzipInto(
  name: string,
  source: AsyncIterable<Uint8Array>,
  sink: PacketSink,
  chunkSize: number,
  reread?: () => Promise<Uint8Array | undefined>,
): Promise<ReadResult> {
  const f = new Feeder(name, sink, ifNameFor(name), Math.min(chunkSize, 1 << 16));
  // Output in pieces of at most 64 KiB: zlib discards the piece it was filling when it meets damage (a bad CRC, trailing garbage).
  const gunzip = createGunzip({ chunkSize: Math.max(64, Math.min(chunkSize, GZIP_OUT_CHUNK)) });
  let sourceError: unknown;
  let sinkError: { e: unknown } | undefined;
  // Output is walked in a synchronous 'data' listener, as zlib produces it: an error later in the
  // stream (a bad CRC, trailing garbage) destroys the stream, and with it any output still buffered
  // for an asynchronous consumer (a small file lost every packet).
  let failed: unknown;
  let settled = false;
  const done = new Promise<void>((resolve) => {
    gunzip.once('end', () => {
      settled = true;
      resolve();
    });
    gunzip.once('error', (e) => {
      settled = true;
      failed = e;
      resolve();
    });
  });
  let stop = false;
  let delivered = 0;
  gunzip.on('data', (c: Buffer) => {
    if (stop) return;
    delivered += c.length;
    try {
      if (!f.push(c)) stop = true;
    } catch (e) {
      sinkError = { e };
      stop = true;
    }
    if (stop) gunzip.destroy(new Error('stopped'));
  });
  // One write at a time, each waited for: its output has been walked when it returns.
  const write = (b: Uint8Array): Promise<void> =>
    settled || gunzip.destroyed ? done : Promise.race([new Promise<void>((resolve) => gunzip.write(b, () => resolve())), done]);
  // The last GZIP_TAIL bytes of the input go in one byte at a time: zlib drops the output of the
  // write in which it meets damage, and damage sits mostly at the end (a bad CRC, trailing
  // garbage), so the write that fails then holds no deflate data of its own.
  const feed = async (): Promise<void> => {
    let tail: Uint8Array = new Uint8Array(0);
    try {
      for await (const c of source) {
        if (settled) return;
        if (c.length >= GZIP_TAIL) {
          if (tail.length > 0) await write(tail);
          await write(c.subarray(0, c.length - GZIP_TAIL));
          tail = c.slice(c.length - GZIP_TAIL);
        } else {
          const t = new Uint8Array(tail.length + c.length);
          t.set(tail);
          t.set(c, tail.length);
          if (t.length > GZIP_TAIL) {
            await write(t.subarray(0, t.length - GZIP_TAIL));
            tail = t.slice(t.length - GZIP_TAIL);
          } else tail = t;
        }
      }
    } catch (e) {
      sourceError = e;
      gunzip.destroy(e as Error);
      return;
    }
    for (let i = 0; i < tail.length && !settled; i++) await write(tail.subarray(i, i + 1));
    if (!settled) gunzip.end();
  };
  await Promise.all([feed(), done]);
  // A throwing sink is a bug downstream, not a bad file: it propagates.
  if (sinkError !== undefined) throw sinkError.e;
  if (failed === undefined || f.stopped) return f.finish(true);
  if (sourceError !== undefined) return f.finish(true, f.failure('read_error', errText(sourceError)));
  // What zlib decompressed in its failing write is lost with the stream: a small enough file is
  // inflated again, member by member, and the output beyond what was walked is walked too.
  const data = reread && delivered < SALVAGE_MAX_OUTPUT ? await reread().catch(() => undefined) : undefined;
  if (data !== undefined) {
    const all = salvageGunzip(data, SALVAGE_MAX_OUTPUT);
    if (all.length > delivered) f.push(all, delivered, all.length);
  }
  return f.finish(true, f.failure('gzip_error', errText(failed)));
}

/**
 * Reads a capture file (`-` = stdin) into `sink`. Never throws for a bad or
 * unreadable file: the result's `error` says what went wrong and where.
 */
export async function readCaptureFile(path: string, sink: PacketSink, opts?: ReadOptions): Promise<ReadResult> {
  if (path === '-') return readCaptureStream(STDIN_NAME, process.stdin, sink, opts);
  const chunkSize = chunkSizeOf(opts);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    return openFailed(path, errText(e));
  }
  try {
    try {
      const st = await fh.stat();
      if (st.isDirectory()) return openFailed(path, 'is a directory');
    } catch (e) {
      return openFailed(path, errText(e));
    }
    return await readHandle(path, fh, sink, chunkSize);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function openFailed(path: string, detail: string): ReadResult {
  return {
    file: path,
    format: 'unknown',
    compressed: false,
    packets: 0,
    bytes: 0,
    error: new CaptureFileError(path, 0, 0, 'open_failed', detail),
  };
}

/**
 * Plain-file fast path. The first chunk is read into the Feeder's buffer
 * (gzip and format detection); after that, reads alternate between two
 * buffers so that the next chunk is read (in libuv's thread pool) while the
 * current one is walked in place.
 */
async function readHandle(path: string, fh: FileHandle, sink: PacketSink, chunkSize: number): Promise<ReadResult> {
  const f = new Feeder(path, sink, ifNameFor(path), chunkSize);
  let n: number;
  try {
    n = (await fh.read(f.work, 0, Math.min(f.work.length, chunkSize), null)).bytesRead;
    if (n === 1 && f.work[0] === 0x1f) {
      // One byte is not enough to decide: read until there are two (tiny chunk sizes).
      const more = await fh.read(f.work, 1, 1, null).catch(() => ({ bytesRead: 0 }));
      n += more.bytesRead;
    }
  } catch (e) {
    return f.finish(false, f.failure('read_error', errText(e)));
  }
  // gzip: hand the bytes read so far plus the rest of the file to the stream path.
  if (isGzip(f.work, n)) {
    const head = Buffer.from(f.work.subarray(0, n));
    const reread = async (): Promise<Uint8Array | undefined> => {
      const size = (await fh.stat()).size;
      if (size > SALVAGE_MAX_INPUT) return undefined;
      const b = Buffer.allocUnsafe(size);
      const { bytesRead } = await fh.read(b, 0, size, 0);
      return b.subarray(0, bytesRead);
    };
    return gunzipInto(path, handleChunks(fh, head, Math.max(chunkSize, 64 * 1024)), sink, chunkSize, reread);
  }
  if (n === 0) return f.finish(false);
  const bufs = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];
  let which = 0;
  let next = fh.read(bufs[which], 0, chunkSize, null);
  let error: CaptureFileError | undefined;
  try {
    f.held = n;
    f.walkWork();
    while (!f.stopped) {
      let got: number;
      try {
        got = (await next).bytesRead;
      } catch (e) {
        error = f.failure('read_error', errText(e));
        break;
      }
      if (got === 0) break;
      const cur = bufs[which];
      which ^= 1;
      next = fh.read(bufs[which], 0, chunkSize, null);
      // A record larger than a chunk is completed in the Feeder's carry buffer, which grows (doubling) as
      // the data actually arrives, so memory follows the data present, not a length claimed by a damaged header.
      f.push(cur, 0, got);
    }
  } finally {
    // Stopped on a bad record, or the sink threw: the read already under way must end before the caller closes the file.
    await next.catch(() => undefined);
  }
  return f.finish(false, error);
}

async function* handleChunks(fh: FileHandle, head: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  yield head;
  for (;;) {
    const b = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(b, 0, size, null);
    if (bytesRead === 0) return;
    yield b.subarray(0, bytesRead);
  }
}
