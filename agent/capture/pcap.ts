/**
 * Classic pcap ("libpcap savefile") push parser.
 *
 * Format: a 24-byte global header (magic, version, thiszone, sigfigs,
 * snaplen, link-type field), then records of a 16-byte header (ts_sec,
 * ts_frac, incl_len, orig_len) followed by incl_len bytes. The magic gives
 * the byte order and the timestamp unit: a1b2c3d4 = microseconds,
 * a1b23c4d = nanoseconds, either byte order. Any version number is accepted
 * (2.4 is usual, 2.1 is seen in the wild).
 *
 * The parser is fed with `walk(buf, pos, end, base)`: it delivers every
 * complete record in `buf[pos, end)` to the sink and returns the offset of
 * the first byte it could not consume yet; the driver (file.ts) carries that
 * tail over to the next chunk. `need` tells how many bytes the record at the
 * returned offset needs. Nothing is allocated per record.
 */
import { CaptureFileError, MAX_INTERFACES, type PacketSink } from './types.js';

/** Largest incl_len accepted in any record (libpcap's MAXIMUM_SNAPLEN). */
export const PCAP_MAX_CAPLEN = 262144;
/** Size of the global header. */
export const PCAP_HEADER_LEN = 24;
/** Size of a record header. */
export const PCAP_RECORD_HEADER_LEN = 16;

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;

/**
 * Reads the first 4 bytes at `buf[off]` as a pcap magic. Returns 0 when it is
 * not one, else a bit set: 1 = recognised, 2 = little-endian, 4 = nanoseconds.
 */
export function pcapMagicKind(buf: Uint8Array, off: number): number {
  const be = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
  const le = ((buf[off + 3] << 24) | (buf[off + 2] << 16) | (buf[off + 1] << 8) | buf[off]) >>> 0;
  if (be === PCAP_MAGIC_US) return 1;
  if (be === PCAP_MAGIC_NS) return 1 | 4;
  if (le === PCAP_MAGIC_US) return 1 | 2;
  if (le === PCAP_MAGIC_NS) return 1 | 2 | 4;
  return 0;
}

/** Push parser for one classic pcap stream. See the module comment for the protocol. */
export class PcapReader {
  readonly format = 'pcap' as const;
  /** Records delivered to the sink. */
  packets = 0;
  /** Set when the stream is unreadable from some record on; `walk` then consumes nothing. */
  error: CaptureFileError | undefined = undefined;
  /** Bytes needed at the position `walk` returned before it can make progress. */
  need = PCAP_HEADER_LEN;

  /** Header fields, valid once the global header was read. */
  littleEndian = true;
  nanoseconds = false;
  versionMajor = 0;
  versionMinor = 0;
  snaplen = 0;
  /** Raw 32-bit link-type field (LINKTYPE in the low 16 bits, FCS info in the high bits). */
  linktypeField = 0;
  linktype = 0;
  fcsBytes = 0;

  private started = false;
  private limit = PCAP_MAX_CAPLEN;
  private ifIndex = -1;

  /**
   * @param file   name used in errors
   * @param sink   receives the interface and the records
   * @param ifName interface name announced to the sink (usually the file basename)
   */
  constructor(
    readonly file: string,
    private readonly sink: PacketSink,
    private readonly ifName: string,
  ) {}

  /**
   * Delivers every complete record of `buf[pos, end)`.
   * @param base stream offset of `buf[0]` (so `base + i` is the stream offset of `buf[i]`), for errors
   * @returns offset in `buf` of the first byte not consumed
   */
  walk(buf: Uint8Array, pos: number, end: number, base: number): number {
    if (this.error !== undefined) return pos;
    let p = pos;
    if (!this.started) {
      if (end - p < PCAP_HEADER_LEN) {
        this.need = PCAP_HEADER_LEN;
        return p;
      }
      if (!this.readHeader(buf, p, base)) return p;
      p += PCAP_HEADER_LEN;
    }
    return this.littleEndian ? this.walkLE(buf, p, end, base) : this.walkBE(buf, p, end, base);
  }

  /** End of stream with `buf[pos, end)` still unconsumed: records the truncation, if any. */
  finish(buf: Uint8Array, pos: number, end: number, base: number): void {
    if (this.error !== undefined) return;
    const left = end - pos;
    if (!this.started) {
      this.fail(0, 'truncated_header', `pcap global header needs ${PCAP_HEADER_LEN} bytes, stream has ${left}`);
      return;
    }
    if (left === 0) return;
    const at = base + pos;
    if (left < PCAP_RECORD_HEADER_LEN) {
      this.fail(at, 'truncated_record', `record header cut after ${left} of ${PCAP_RECORD_HEADER_LEN} bytes`);
    } else {
      const incl = this.u32(buf, pos + 8);
      this.fail(at, 'truncated_record', `record of ${PCAP_RECORD_HEADER_LEN + incl} bytes (incl_len ${incl}) cut after ${left} bytes`);
    }
  }

  private readHeader(buf: Uint8Array, p: number, base: number): boolean {
    const kind = pcapMagicKind(buf, p);
    if (kind === 0) {
      const hex = Array.from(buf.subarray(p, p + 4), (b) => b.toString(16).padStart(2, '0')).join('');
      this.fail(base + p, 'bad_magic', `not a pcap magic: ${hex}`);
      return false;
    }
    this.littleEndian = (kind & 2) !== 0;
    this.nanoseconds = (kind & 4) !== 0;
    this.versionMajor = this.u16(buf, p + 4);
    this.versionMinor = this.u16(buf, p + 6);
    this.snaplen = this.u32(buf, p + 16);
    const field = this.u32(buf, p + 20);
    this.linktypeField = field;
    this.linktype = field & 0xffff;
    this.fcsBytes = (field & 0x04000000) !== 0 ? ((field >>> 28) & 0xf) * 2 : 0;
    this.limit = this.snaplen > 0 && this.snaplen < PCAP_MAX_CAPLEN ? this.snaplen : PCAP_MAX_CAPLEN;
    this.ifIndex = this.sink.addInterface({
      linktype: this.linktype,
      snaplen: this.snaplen,
      name: this.ifName,
      fcsBytes: this.fcsBytes,
    });
    if (this.ifIndex < 0) {
      this.fail(0, 'bad_header', `the run already has the ${MAX_INTERFACES} interfaces it may declare`);
      return false;
    }
    this.started = true;
    this.need = PCAP_RECORD_HEADER_LEN;
    return true;
  }

  // The two record loops are the hot path: one per byte order so the reads
  // are plain shifts with no branch (measured in bench/readers.ts).

  private walkLE(buf: Uint8Array, pos: number, end: number, base: number): number {
    const sink = this.sink;
    const limit = this.limit;
    const ifIndex = this.ifIndex;
    const nanos = this.nanoseconds;
    let packets = this.packets;
    let p = pos;
    for (;;) {
      if (end - p < 16) {
        this.need = 16;
        break;
      }
      const incl = (buf[p + 8] | (buf[p + 9] << 8) | (buf[p + 10] << 16) | (buf[p + 11] << 24)) >>> 0;
      if (incl > limit) {
        this.packets = packets;
        this.badLength(incl, base + p);
        return p;
      }
      if (end - p - 16 < incl) {
        this.need = 16 + incl;
        break;
      }
      let sec = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
      let frac = (buf[p + 4] | (buf[p + 5] << 8) | (buf[p + 6] << 16) | (buf[p + 7] << 24)) >>> 0;
      const orig = (buf[p + 12] | (buf[p + 13] << 8) | (buf[p + 14] << 16) | (buf[p + 15] << 24)) >>> 0;
      if (nanos) {
        if (frac >= 1e9) {
          sec += Math.floor(frac / 1e9);
          frac %= 1e9;
        }
      } else {
        if (frac >= 1e6) {
          sec += Math.floor(frac / 1e6);
          frac %= 1e6;
        }
        frac *= 1000;
      }
      sink.packet(buf, p + 16, incl, orig, sec, frac, ifIndex);
      packets++;
      p += 16 + incl;
    }
    this.packets = packets;
    return p;
  }

  private walkBE(buf: Uint8Array, pos: number, end: number, base: number): number {
    const sink = this.sink;
    const limit = this.limit;
    const ifIndex = this.ifIndex;
    const nanos = this.nanoseconds;
    let packets = this.packets;
    let p = pos;
    for (;;) {
      if (end - p < 16) {
        this.need = 16;
        break;
      }
      const incl = ((buf[p + 8] << 24) | (buf[p + 9] << 16) | (buf[p + 10] << 8) | buf[p + 11]) >>> 0;
      if (incl > limit) {
        this.packets = packets;
        this.badLength(incl, base + p);
        return p;
      }
      if (end - p - 16 < incl) {
        this.need = 16 + incl;
        break;
      }
      let sec = ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
      let frac = ((buf[p + 4] << 24) | (buf[p + 5] << 16) | (buf[p + 6] << 8) | buf[p + 7]) >>> 0;
      const orig = ((buf[p + 12] << 24) | (buf[p + 13] << 16) | (buf[p + 14] << 8) | buf[p + 15]) >>> 0;
      if (nanos) {
        if (frac >= 1e9) {
          sec += Math.floor(frac / 1e9);
          frac %= 1e9;
        }
      } else {
        if (frac >= 1e6) {
          sec += Math.floor(frac / 1e6);
          frac %= 1e6;
        }
        frac *= 1000;
      }
      sink.packet(buf, p + 16, incl, orig, sec, frac, ifIndex);
      packets++;
      p += 16 + incl;
    }
    this.packets = packets;
    return p;
  }

  private badLength(incl: number, at: number): void {
    const why =
      incl > PCAP_MAX_CAPLEN
        ? `exceeds the maximum of ${PCAP_MAX_CAPLEN}`
        : `exceeds the file's snaplen ${this.snaplen}`;
    this.fail(at, 'bad_record_length', `record incl_len ${incl} ${why}`);
  }

  private fail(at: number, reason: CaptureFileError['reason'], detail: string): void {
    this.error = new CaptureFileError(this.file, at, this.packets, reason, detail);
  }

  private u32(buf: Uint8Array, p: number): number {
    return this.littleEndian
      ? (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0
      : ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
  }

  private u16(buf: Uint8Array, p: number): number {
    return this.littleEndian ? buf[p] | (buf[p + 1] << 8) : (buf[p] << 8) | buf[p + 1];
  }
}
