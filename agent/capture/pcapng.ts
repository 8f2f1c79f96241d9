/**
 * pcapng push parser (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html).
 *
 * Blocks: type (4) | total length (4) | body | total length (4), in the byte
 * order of the current section. A Section Header Block (0x0A0D0D0A, the same
 * in both orders) carries the byte-order magic 0x1A2B3C4D and starts a new
 * interface list. Handled: SHB, Interface Description Block (1: link type,
 * snaplen, if_name, if_tsresol, if_tsoffset, if_fcslen), Enhanced Packet
 * Block (6), Simple Packet Block (3), obsolete Packet Block (2). Every other
 * block (NRB, ISB, DSB, custom 0x00000BAD / 0x40000BAD, unknown) is checked
 * for a sane length and skipped.
 *
 * Same protocol as PcapReader: `walk(buf, pos, end, base)` delivers every
 * complete block of `buf[pos, end)` and returns the offset of the first one
 * it could not finish; `need` is that block's size (or header size).
 *
 * Timestamps are 64-bit counts of 1/units seconds. They are split into
 * seconds and nanoseconds without BigInt and without allocation. Hot path
 * (EPB, units 10^0..10^9): a float estimate of the seconds, corrected by the
 * exact remainder computed modulo 2^32. Elsewhere: long division by 16-bit
 * digits. Seconds are exact down to 2^-36 s (10^-10); nanoseconds exact for
 * 10^-n up to 10^-9 and 2^-n up to 2^-23, within 1 ns below that; finer
 * resolutions are approximated with floats.
 */
import { CaptureFileError, MAX_INTERFACES, type PacketSink } from './types.js';

export const PCAPNG_SHB = 0x0a0d0d0a;
export const PCAPNG_IDB = 0x00000001;
export const PCAPNG_PB = 0x00000002;
export const PCAPNG_SPB = 0x00000003;
export const PCAPNG_EPB = 0x00000006;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** Largest block accepted; a bigger total length is reported as bad_block. */
export const PCAPNG_MAX_BLOCK = 64 * 1024 * 1024;

const SHB_MIN = 28;
const IDB_MIN = 20;
const EPB_MIN = 32;
const PB_MIN = 32;
const SPB_MIN = 16;

/** 2^32 as a number. */
const TWO32 = 4294967296;

/** Push parser for one pcapng stream. */
export class PcapngReader {
  readonly format = 'pcapng' as const;
  packets = 0;
  error: CaptureFileError | undefined = undefined;
  need = 12;
  /** Sections started so far. */
  sections = 0;
  /** Interface Description Blocks read so far, over all sections. */
  interfaces = 0;

  private inSection = false;
  private le = true;

  // Interfaces of the current section, by interface id (reset at each SHB).
  private readonly ifIndex: number[] = [];
  private readonly ifUnits: number[] = [];
  /** 1e9 / units when that is an integer (decimal resolutions up to ns), else 0. */
  private readonly ifNsMul: number[] = [];
  private readonly ifOffset: number[] = [];
  private readonly ifSnap: number[] = [];
  /** 2^32 / units, for the fast timestamp split. */
  private readonly ifHiMul: number[] = [];
  /** The fast split applies while the high word is below this (0: never). */
  private readonly ifHiLimit: number[] = [];
  /** Interfaces declared in the current section. */
  private ifCount = 0;

  /** Last timestamp delivered: reused by Simple Packet Blocks, which have none. */
  private lastSec = 0;
  private lastNsec = 0;
  /** Output of splitTs (fields, so no tuple is allocated per packet). */
  private tsSec = 0;
  private tsNsec = 0;

  /**
   * @param file     name used in errors
   * @param sink     receives interfaces and packets
   * @param baseName name stem for interfaces without if_name: `<baseName>#<n>`, n counted over the file
   */
  constructor(
    readonly file: string,
    private readonly sink: PacketSink,
    private readonly baseName: string,
  ) {}

  walk(buf: Uint8Array, pos: number, end: number, base: number): number {
    if (this.error !== undefined) return pos;
    const sink = this.sink;
    let p = pos;
    for (;;) {
      const avail = end - p;
      if (avail < 12) {
        this.need = 12;
        break;
      }
      // Fast path: a well-formed Enhanced Packet Block on an interface with a
      // decimal resolution up to 10^-9 s and a timestamp below 2^50 units
      // (ifHiLimit): the seconds come from one float estimate, exact after
      // the correction below. Anything else goes through block().
      const le = this.le;
      const len = u32(buf, p + 4, le);
      if (u32(buf, p, le) === PCAPNG_EPB && len >= EPB_MIN && len <= avail && (len & 3) === 0 && len <= PCAPNG_MAX_BLOCK && this.inSection) {
        const id = u32(buf, p + 8, le);
        const hi = u32(buf, p + 12, le);
        const caplen = u32(buf, p + 20, le);
        if (id < this.ifCount && hi < this.ifHiLimit[id] && caplen <= len - EPB_MIN && u32(buf, p + len - 4, le) === len) {
          const units = this.ifUnits[id];
          const lo = u32(buf, p + 16, le);
          // sec may be one off either way; the remainder, computed exactly
          // modulo 2^32 (it lies in (-units, 2*units), inside int32), corrects it.
          let sec = Math.floor(hi * this.ifHiMul[id] + lo / units);
          let rem = (lo - Math.imul(sec, units)) | 0;
          if (rem < 0) {
            sec--;
            rem += units;
          } else if (rem >= units) {
            sec++;
            rem -= units;
          }
          sec += this.ifOffset[id];
          const nsec = rem * this.ifNsMul[id];
          this.lastSec = sec;
          this.lastNsec = nsec;
          sink.packet(buf, p + 28, caplen, u32(buf, p + 24, le), sec, nsec, this.ifIndex[id]);
          this.packets++;
          p += len;
          continue;
        }
      }
      const q = this.block(buf, p, avail, base);
      if (q < 0) break;
      p = q;
    }
    return p;
  }

  /**
   * Handles the block at `buf[p]` with `avail` bytes available: every block
   * type, every check. Returns the offset after it, or -1 when it is
   * incomplete (`need` set) or bad (`error` set).
   */
  private block(buf: Uint8Array, p: number, avail: number, base: number): number {
    let le = this.le;
    const type = u32(buf, p, le);
    if (type === PCAPNG_SHB) {
      const m = u32(buf, p + 8, true);
      if (m === PCAPNG_BYTE_ORDER_MAGIC) le = true;
      else if (m === 0x4d3c2b1a) le = false;
      else {
        const hex = m.toString(16).padStart(8, '0');
        this.fail(base + p, this.inSection ? 'bad_block' : 'bad_magic', `section header byte-order magic is 0x${hex} (little-endian read), expected 0x1a2b3c4d in either byte order`);
        return -1;
      }
    } else if (!this.inSection) {
      this.fail(base + p, 'bad_magic', `first block has type 0x${type.toString(16)}, expected a section header block (0x0a0d0d0a)`);
      return -1;
    }
    const len = u32(buf, p + 4, le);
    if (len < 12 || (len & 3) !== 0) {
      this.fail(base + p, 'bad_block', `block type 0x${type.toString(16)} has total length ${len} (must be >= 12 and a multiple of 4)`);
      return -1;
    }
    if (len > PCAPNG_MAX_BLOCK) {
      this.fail(base + p, 'bad_block', `block type 0x${type.toString(16)} has total length ${len}, above the ${PCAPNG_MAX_BLOCK}-byte limit`);
      return -1;
    }
    if (avail < len) {
      this.need = len;
      return -1;
    }
    const trail = u32(buf, p + len - 4, le);
    if (trail !== len) {
      this.fail(base + p, 'bad_block', `block type 0x${type.toString(16)}: trailing total length ${trail} differs from leading ${len}`);
      return -1;
    }

    if (type === PCAPNG_EPB || type === PCAPNG_PB) {
      // Enhanced and obsolete packet blocks differ only in the interface id
      // (32 bits; 16 bits + a drop count); from offset 12 on they are alike.
      const epb = type === PCAPNG_EPB;
      const min = epb ? EPB_MIN : PB_MIN;
      if (len < min) return this.tooShort(type, len, min, base, p);
      const id = epb ? u32(buf, p + 8, le) : le ? buf[p + 8] | (buf[p + 9] << 8) : (buf[p + 8] << 8) | buf[p + 9];
      if (id >= this.ifIndex.length) return this.undeclared(id, base, p);
      const caplen = u32(buf, p + 20, le);
      if (caplen > len - min) {
        this.fail(base + p, 'bad_block', `${epb ? 'enhanced packet block' : 'packet block'}: captured length ${caplen} exceeds the block (room for ${len - min})`);
        return -1;
      }
      this.splitTs(u32(buf, p + 12, le), u32(buf, p + 16, le), id);
      this.lastSec = this.tsSec;
      this.lastNsec = this.tsNsec;
      this.sink.packet(buf, p + 28, caplen, u32(buf, p + 24, le), this.tsSec, this.tsNsec, this.ifIndex[id]);
      this.packets++;
    } else if (type === PCAPNG_SPB) {
      if (len < SPB_MIN) return this.tooShort(type, len, SPB_MIN, base, p);
      if (this.ifIndex.length === 0) return this.undeclared(0, base, p);
      const orig = u32(buf, p + 8, le);
      let caplen = len - SPB_MIN;
      if (orig < caplen) caplen = orig;
      const snap = this.ifSnap[0];
      if (snap > 0 && snap < caplen) caplen = snap;
      this.sink.packet(buf, p + 12, caplen, orig, this.lastSec, this.lastNsec, this.ifIndex[0]);
      this.packets++;
    } else if (type === PCAPNG_IDB) {
      if (len < IDB_MIN) return this.tooShort(type, len, IDB_MIN, base, p);
      if (!this.readIdb(buf, p, len, base)) return -1;
    } else if (type === PCAPNG_SHB) {
      if (len < SHB_MIN) return this.tooShort(type, len, SHB_MIN, base, p);
      const major = le ? buf[p + 12] | (buf[p + 13] << 8) : (buf[p + 12] << 8) | buf[p + 13];
      const minor = le ? buf[p + 14] | (buf[p + 15] << 8) : (buf[p + 14] << 8) | buf[p + 15];
      if (major !== 1) {
        this.fail(base + p, 'bad_header', `unsupported pcapng version ${major}.${minor} (only 1.x is defined)`);
        return -1;
      }
      // Section length (p+16, 64-bit, -1 = unknown) is not needed: blocks are walked one by one.
      this.le = le;
      this.inSection = true;
      this.sections++;
      this.ifIndex.length = 0;
      this.ifUnits.length = 0;
      this.ifNsMul.length = 0;
      this.ifOffset.length = 0;
      this.ifSnap.length = 0;
      this.ifHiMul.length = 0;
      this.ifHiLimit.length = 0;
      this.ifCount = 0;
    }
    // else: NRB, ISB, DSB, custom and unknown blocks are skipped.
    return p + len;
  }

  finish(buf: Uint8Array, pos: number, end: number, base: number): void {
    if (this.error !== undefined) return;
    const left = end - pos;
    if (!this.inSection) {
      const len = left >= 12 ? u32(buf, pos + 4, u32(buf, pos + 8, true) === PCAPNG_BYTE_ORDER_MAGIC) : 0;
      this.fail(0, 'truncated_header', left >= 12
        ? `section header block of ${len} bytes cut after ${left} bytes`
        : `section header block cut after ${left} bytes (needs at least ${SHB_MIN})`);
      return;
    }
    if (left === 0) return;
    const at = base + pos;
    if (left < 12) {
      this.fail(at, 'truncated_record', `block header cut after ${left} bytes`);
    } else {
      let le = this.le;
      const type = u32(buf, pos, le);
      if (type === PCAPNG_SHB) le = u32(buf, pos + 8, true) === PCAPNG_BYTE_ORDER_MAGIC;
      this.fail(at, 'truncated_record', `block type 0x${type.toString(16)} of ${u32(buf, pos + 4, le)} bytes cut after ${left} bytes`);
    }
  }

  /** Parses an Interface Description Block at `buf[p, p+len)` and declares it. */
  private readIdb(buf: Uint8Array, p: number, len: number, base: number): boolean {
    const le = this.le;
    const linktype = le ? buf[p + 8] | (buf[p + 9] << 8) : (buf[p + 8] << 8) | buf[p + 9];
    const snaplen = u32(buf, p + 12, le);
    let name = '';
    let units = 1e6;
    let offset = 0;
    let fcsBytes = 0;
    const optEnd = p + len - 4;
    let q = p + 16;
    while (optEnd - q >= 4) {
      const code = le ? buf[q] | (buf[q + 1] << 8) : (buf[q] << 8) | buf[q + 1];
      const olen = le ? buf[q + 2] | (buf[q + 3] << 8) : (buf[q + 2] << 8) | buf[q + 3];
      if (code === 0) break; // opt_endofopt
      const v = q + 4;
      if (olen > optEnd - v) {
        this.fail(base + p, 'bad_block', `interface description block: option ${code} of ${olen} bytes at block offset ${q - p} overruns the block`);
        return false;
      }
      if (code === 2) {
        let n = olen;
        while (n > 0 && buf[v + n - 1] === 0) n--; // tolerate NUL-terminated names
        name = Buffer.from(buf.buffer, buf.byteOffset + v, n).toString('utf8');
      } else if (code === 9 && olen >= 1) {
        const r = buf[v];
        units = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
      } else if (code === 13 && olen >= 1) {
        fcsBytes = buf[v];
      } else if (code === 14 && olen >= 8) {
        const lo = u32(buf, le ? v : v + 4, le);
        const hi = u32(buf, le ? v + 4 : v, le) | 0; // signed
        offset = hi * TWO32 + lo;
      }
      q = v + ((olen + 3) & ~3);
    }
    const n = this.interfaces++;
    const idx = this.sink.addInterface({
      linktype,
      snaplen,
      name: name !== '' ? name : `${this.baseName}#${n}`,
      fcsBytes,
    });
    if (idx < 0) {
      this.fail(base + p, 'bad_block', `interface description block #${n + 1}: the run already has the ${MAX_INTERFACES} interfaces it may declare`);
      return false;
    }
    this.ifIndex.push(idx);
    this.ifUnits.push(units);
    const nsMul = units <= 1e9 && 1e9 % units === 0 ? 1e9 / units : 0;
    this.ifNsMul.push(nsMul);
    this.ifOffset.push(offset);
    this.ifSnap.push(snaplen);
    this.ifHiMul.push(TWO32 / units);
    // Fast split: integer units dividing 1e9 (so below 2^30: the remainder
    // fits int32), values below 2^50 units (float estimate within +-1).
    this.ifHiLimit.push(nsMul !== 0 && Number.isInteger(units) ? Math.min(TWO32, units * 2 ** 18) : 0);
    this.ifCount = this.ifIndex.length;
    return true;
  }

  /**
   * Splits the 64-bit timestamp hi:lo of interface `id` into this.tsSec and
   * this.tsNsec (plus the interface's if_tsoffset).
   */
  private splitTs(hi: number, lo: number, id: number): void {
    const units = this.ifUnits[id];
    let sec: number;
    let rem: number;
    if (hi < 0x200000) {
      // The value is below 2^53: exact as a double. The quotient may round up
      // when very close to an integer: the remainder check corrects it.
      const t = hi * TWO32 + lo;
      sec = Math.floor(t / units);
      rem = t - sec * units;
      if (rem < 0) {
        sec--;
        rem += units;
      } else if (rem >= units) {
        sec++;
        rem -= units;
      }
    } else if (units <= 68719476736) {
      // Long division by 16-bit digits: with units <= 2^36 every partial
      // dividend stays below 2^52, so each step is exact in doubles.
      let q = Math.floor(hi / units);
      let r = hi - q * units;
      sec = q * TWO32;
      let cur = r * 65536 + (lo >>> 16);
      q = Math.floor(cur / units);
      r = cur - q * units;
      sec += q * 65536;
      cur = r * 65536 + (lo & 0xffff);
      q = Math.floor(cur / units);
      rem = cur - q * units;
      sec += q;
    } else {
      // Resolution finer than 2^-36 s with a value above 2^53: approximate.
      const t = hi * TWO32 + lo;
      sec = Math.floor(t / units);
      rem = t - sec * units;
      if (rem < 0) rem = 0;
      else if (rem >= units) rem = units - 1;
    }
    const mul = this.ifNsMul[id];
    let nsec = mul !== 0 ? rem * mul : Math.floor((rem * 1e9) / units);
    if (nsec >= 1e9) nsec = 999999999;
    this.tsSec = sec + this.ifOffset[id];
    this.tsNsec = nsec;
  }

  /** Records a block shorter than its fixed part; returns -1 for block() to return. */
  private tooShort(type: number, len: number, min: number, base: number, p: number): number {
    this.fail(base + p, 'bad_block', `block type 0x${type.toString(16)} has total length ${len}, below its minimum ${min}`);
    return -1;
  }

  /** Records a packet on an interface id the section did not declare; returns -1. */
  private undeclared(id: number, base: number, p: number): number {
    this.fail(base + p, 'bad_block', `packet on interface ${id}, but the section declares ${this.ifIndex.length} interface(s)`);
    return -1;
  }

  private fail(at: number, reason: CaptureFileError['reason'], detail: string): void {
    this.error = new CaptureFileError(this.file, at, this.packets, reason, detail);
  }
}

function u32(buf: Uint8Array, p: number, le: boolean): number {
  return le
    ? (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0
    : ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
}
