/**
 * Address formatting, done only at export time. Addresses are kept as four
 * 32-bit words (IPv4 in the last word).
 */

export function formatIPv4(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 0xff}.${(w >>> 8) & 0xff}.${w & 0xff}`;
}

/** Group i (0..7) of the IPv6 address in words[o..o+3]. */
export function ipv6Group(words: ArrayLike<number>, o: number, i: number): number {
  const w = words[o + (i >> 1)] >>> 0;
  return i & 1 ? w & 0xffff : w >>> 16;
}

/** True for an IPv4-mapped address (::ffff:a.b.c.d), written in mixed notation (RFC 5952 section 5). */
export function isV4Mapped(words: ArrayLike<number>, o: number): boolean {
  return words[o] === 0 && words[o + 1] === 0 && words[o + 2] >>> 0 === 0xffff;
}

/**
 * RFC 5952 section 4.2: the run of zero groups that `::` replaces — the
 * longest of two or more, the first on a tie. Returns (start << 4) | length,
 * or -1 when there is none.
 */
export function ipv6ZeroRun(words: ArrayLike<number>, o: number): number {
  let best = -1;
  let bestLen = 1;
  let run = 0;
  for (let i = 0; i < 8; i++) {
    if (ipv6Group(words, o, i) === 0) {
      run++;
      if (run > bestLen) {
        bestLen = run;
        best = i - run + 1;
      }
    } else {
      run = 0;
    }
  }
  return best < 0 ? -1 : (best << 4) | bestLen;
}

/** RFC 5952 text of an IPv6 address held in words[o..o+3]. */
export function formatIPv6(words: ArrayLike<number>, o: number): string {
  if (isV4Mapped(words, o)) return `::ffff:${formatIPv4(words[o + 3] >>> 0)}`;
  const zr = ipv6ZeroRun(words, o);
  const best = zr < 0 ? -1 : zr >> 4;
  const end = zr < 0 ? -1 : best + (zr & 15);
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      s += '::';
      i = end - 1;
      continue;
    }
    if (i > 0 && i !== end) s += ':';
    s += ipv6Group(words, o, i).toString(16);
  }
  return s;
}

export function formatAddr(version: number, words: ArrayLike<number>, o: number): string {
  return version === 4 ? formatIPv4(words[o + 3] >>> 0) : formatIPv6(words, o);
}

/** Parses an IPv4 or IPv6 address into 4 words (IPv4 in the last word). Returns the version, or 0 if invalid. */
export function parseAddr(text: string, out: Uint32Array | number[], o = 0): 4 | 6 | 0 {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const b = v4.slice(1).map(Number);
    if (b.some((x) => x > 255)) return 0;
    out[o] = 0; out[o + 1] = 0; out[o + 2] = 0;
    out[o + 3] = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    return 4;
  }
  if (!text.includes(':')) return 0;
  let s = text;
  const tailWords: number[] = [];
  const m = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(s);
  if (m) {
    const tmp = [0, 0, 0, 0];
    if (parseAddr(m[2], tmp) !== 4) return 0;
    tailWords.push(tmp[3] >>> 16, tmp[3] & 0xffff);
    s = m[1].endsWith('::') ? m[1] : m[1].slice(0, -1);
  }
  const parts = s.split('::');
  if (parts.length > 2) return 0;
  const parse = (x: string) => (x === '' ? [] : x.split(':').map((h) => (/^[0-9a-fA-F]{1,4}$/.test(h) ? parseInt(h, 16) : NaN)));
  const head = parse(parts[0]);
  const tail = parts.length === 2 ? parse(parts[1]) : [];
  tail.push(...tailWords);
  if (parts.length === 1) head.push(...tailWords.splice(0));
  const fill = 8 - head.length - (parts.length === 2 ? tail.length : 0);
  if (fill < 0 || (parts.length === 1 && head.length !== 8) || (parts.length === 2 && fill < 1 && head.length + tail.length !== 8 - fill)) return 0;
  const groups = parts.length === 2 ? [...head, ...new Array<number>(fill).fill(0), ...tail] : head;
  if (groups.length !== 8 || groups.some((x) => Number.isNaN(x))) return 0;
  for (let i = 0; i < 4; i++) out[o + i] = ((groups[2 * i] << 16) | groups[2 * i + 1]) >>> 0;
  return 6;
}
