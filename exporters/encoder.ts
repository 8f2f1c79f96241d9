/**
 * Writes JSON text straight into a byte buffer: numbers digit by digit,
 * addresses byte by byte, keys from pre-encoded constants. No string is
 * built per record, so writing a million flow records costs no garbage.
 */
import { ipv6Group, ipv6ZeroRun, isV4Mapped } from '../parsers/addr.js';

/** Pre-encodes an ASCII constant (JSON keys and punctuation). */
export function bytesOf(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

const HEX = bytesOf('0123456789abcdef');

/** Writes a constant at the encoder's position (see {@link constWriter}). */
export type ConstWriter = (e: ByteEncoder) => void;

/**
 * Compiles an ASCII constant (a JSON key with its punctuation) into a
 * writer that stores it four bytes at a time with the bytes as immediates:
 * about 4 ns for a 20-byte key where a byte loop over an array takes 20-35.
 * A record writes some 40 of them. The last store may spill up to 3 bytes
 * past the constant, inside the room reserved and overwritten next.
 */
export function constWriter(s: string): ConstWriter {
  const b = bytesOf(s);
  let body = `e.room(${b.length + 4});\nconst dv = e.dv;\nconst p = e.pos;\n`;
  for (let i = 0; i < b.length; i += 4) {
    let w = 0;
    for (let j = 0; j < 4 && i + j < b.length; j++) w |= b[i + j] << (8 * j);
    body += `dv.setInt32(p + ${i}, ${w | 0}, true);\n`;
  }
  body += `e.pos = p + ${b.length};`;
  return new Function('e', body) as ConstWriter;
}

export class ByteEncoder {
  buf: Buffer;
  /** A view of `buf` for word stores (constWriter). */
  dv: DataView;
  pos = 0;
  private readonly digits = new Uint8Array(24);

  constructor(size = 1 << 20, private readonly onFull: (enc: ByteEncoder) => void = (e) => e.grow()) {
    this.buf = Buffer.allocUnsafe(size);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Makes room for `n` more bytes: flushes (or grows) when needed. */
  room(n: number): void {
    if (this.pos + n > this.buf.length) {
      this.onFull(this);
      if (this.pos + n > this.buf.length) this.grow(n);
    }
  }

  grow(n = 0): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.dv = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  raw(b: Uint8Array): void {
    this.room(b.length);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < b.length; i++) buf[p++] = b[i];
    this.pos = p;
  }

  byte(c: number): void {
    if (this.pos >= this.buf.length) this.room(1);
    this.buf[this.pos++] = c;
  }

  /** A non-negative integer below 2^53. */
  uint(n: number): void {
    this.room(24);
    const buf = this.buf;
    if (n < 10) {
      buf[this.pos++] = 48 + n;
      return;
    }
    if (n < 2147483648) {
      // Int32 arithmetic (division by 10 becomes a multiply), digits written from the end.
      let v = n | 0;
      const len = v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5 : v < 1000000 ? 6 :
        v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
      let p = this.pos + len;
      this.pos = p;
      while (v >= 10) {
        const q = (v / 10) | 0;
        buf[--p] = 48 + v - q * 10;
        v = q;
      }
      buf[--p] = 48 + v;
      return;
    }
    const d = this.digits;
    let k = 0;
    while (n >= 1) {
      const q = Math.floor(n / 10);
      d[k++] = 48 + (n - q * 10);
      n = q;
    }
    let p = this.pos;
    while (k > 0) buf[p++] = d[--k];
    this.pos = p;
  }

  /** Any number, as JSON writes it (integers fast, the rest through String()). */
  num(n: number): void {
    if (n >= 0 && n < 9007199254740992 && Math.floor(n) === n) this.uint(n);
    else this.ascii(Number.isFinite(n) ? String(n) : 'null');
  }

  /** A duration or time in ns as seconds with up to 9 decimals, trailing zeros trimmed (a JSON number). */
  seconds(ns: number): void {
    if (!(ns >= 0)) ns = 0;
    this.room(40);
    let whole = Math.floor(ns / 1e9);
    let frac = Math.round(ns - whole * 1e9);
    if (frac >= 1e9) {
      whole++;
      frac -= 1e9;
    }
    this.uint(whole);
    if (frac === 0) return;
    let f = frac | 0;
    let width = 9;
    for (;;) {
      const q = (f / 10) | 0;
      if (f !== q * 10) break;
      f = q;
      width--;
    }
    this.fraction(f, width);
  }

  /** Epoch seconds `sec` plus `ns` nanoseconds (0 <= ns < 1e9), always with 9 decimals. */
  epoch(sec: number, ns: number): void {
    this.room(40);
    this.uint(sec);
    this.fraction(ns | 0, 9);
  }

  /** A decimal point and the `width` low digits of the int32 `f`, zero-padded (room already made). */
  private fraction(f: number, width: number): void {
    const buf = this.buf;
    buf[this.pos] = 46;
    let p = this.pos + 1 + width;
    this.pos = p;
    for (let i = 0; i < width; i++) {
      const q = (f / 10) | 0;
      buf[--p] = 48 + f - q * 10;
      f = q;
    }
  }

  /** An ASCII string written as is (no escaping: only for text known to be plain). */
  ascii(s: string): void {
    this.room(s.length);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A JSON string literal (quotes, escapes, UTF-8). */
  string(s: string): void {
    this.room(6 * s.length + 2);
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = 34;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x20 && c < 0x7f && c !== 34 && c !== 92) {
        buf[p++] = c;
      } else if (c === 34 || c === 92) {
        buf[p++] = 92;
        buf[p++] = c;
      } else if (c < 0x20) {
        buf[p++] = 92;
        buf[p++] = 117;
        buf[p++] = 48;
        buf[p++] = 48;
        buf[p++] = HEX[c >> 4];
        buf[p++] = HEX[c & 15];
      } else {
        // Non-ASCII: let the platform encode the rest as UTF-8 (lone surrogates become U+FFFD).
        this.pos = p;
        const rest = JSON.stringify(s.slice(i)).slice(1);
        this.room(3 * rest.length);
        this.pos += this.buf.write(rest, this.pos, 'utf8');
        return;
      }
    }
    buf[p++] = 34;
    this.pos = p;
  }

  /** Dotted-quad IPv4 address. */
  ipv4(w: number): void {
    this.room(16);
    this.uint(w >>> 24);
    this.byte(46);
    this.uint((w >>> 16) & 0xff);
    this.byte(46);
    this.uint((w >>> 8) & 0xff);
    this.byte(46);
    this.uint(w & 0xff);
  }

  private hexGroup(g: number): void {
    const buf = this.buf;
    let p = this.pos;
    if (g >= 0x1000) buf[p++] = HEX[g >> 12];
    if (g >= 0x100) buf[p++] = HEX[(g >> 8) & 15];
    if (g >= 0x10) buf[p++] = HEX[(g >> 4) & 15];
    buf[p++] = HEX[g & 15];
    this.pos = p;
  }

  /** RFC 5952 text of the IPv6 address in words[o..o+3] (the same rule as formatIPv6). */
  ipv6(words: ArrayLike<number>, o: number): void {
    this.room(48);
    if (isV4Mapped(words, o)) {
      this.ascii('::ffff:');
      this.ipv4(words[o + 3] >>> 0);
      return;
    }
    const zr = ipv6ZeroRun(words, o);
    const best = zr < 0 ? -1 : zr >> 4;
    const end = zr < 0 ? -1 : best + (zr & 15);
    for (let i = 0; i < 8; i++) {
      if (i === best) {
        this.byte(58);
        this.byte(58);
        i = end - 1;
        continue;
      }
      if (i > 0 && i !== end) this.byte(58);
      this.hexGroup(ipv6Group(words, o, i));
    }
  }
}
