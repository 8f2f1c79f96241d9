import { describe, expect, it } from 'vitest';
import { ByteEncoder, constWriter } from '../exporters/encoder.js';
import { formatIPv6, parseAddr } from '../parsers/addr.js';

function text(f: (e: ByteEncoder) => void): string {
  const e = new ByteEncoder(16); // tiny: exercises growth
  f(e);
  return e.buf.toString('utf8', 0, e.pos);
}

describe('byte encoder', () => {
  it('writes RFC 5952 IPv6 text, as the string formatter does', () => {
    const cases: [string, string][] = [
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['fe80::ff:fe01:2', 'fe80::ff:fe01:2'],
      ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
      ['ABCD:EF01:2345:6789:ABCD:EF01:2345:6789', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789'],
    ];
    for (const [input, want] of cases) {
      const w = new Uint32Array(4);
      expect(parseAddr(input, w)).toBe(6);
      expect(text((e) => e.ipv6(w, 0))).toBe(want);
      expect(formatIPv6(w, 0)).toBe(want);
    }
  });

  it('writes numbers as JSON does', () => {
    for (const n of [0, 7, 10, 99, 1234567890123, 2 ** 53 - 1, 0.5, 1e-7, -3]) {
      expect(JSON.parse(text((e) => e.num(n)))).toBe(n);
    }
    expect(text((e) => e.seconds(1_500_000_000))).toBe('1.5');
    expect(text((e) => e.seconds(123))).toBe('0.000000123');
    expect(text((e) => e.seconds(0))).toBe('0');
    expect(text((e) => e.epoch(1700000000, 5))).toBe('1700000000.000000005');
    expect(text((e) => e.ipv4(0xc0000201))).toBe('192.0.2.1');
  });

  it('writes compiled constants of any length, growing the buffer when needed', () => {
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', ',"orig_retrans_bytes":', '","id.orig_h":"'];
    const writers = keys.map(constWriter);
    const e = new ByteEncoder(8);
    let want = '';
    for (let r = 0; r < 20; r++) {
      for (let i = 0; i < keys.length; i++) {
        writers[i](e);
        want += keys[i];
        e.uint(r);
        want += String(r);
      }
    }
    expect(e.buf.toString('latin1', 0, e.pos)).toBe(want);
  });

  it('writes integers around the int32 fast path and seconds that round up', () => {
    for (const n of [9, 10, 99, 100, 999999999, 1000000000, 2147483647, 2147483648, 4294967295, 4294967296, 2 ** 53 - 1]) {
      expect(text((e) => e.uint(n))).toBe(String(n));
    }
    expect(text((e) => e.seconds(999_999_999.6))).toBe('1');
    expect(text((e) => e.seconds(1_999_999_999.7))).toBe('2');
    expect(text((e) => e.seconds(10_000_000_010))).toBe('10.00000001');
    expect(text((e) => e.epoch(5, 999_999_999))).toBe('5.999999999');
  });

  it('escapes strings as JSON does, UTF-8 included', () => {
    for (const s of ['eth0', 'a"b\\c', 'tab\there\n', 'ünïcødé ✓', '\u0001x', '']) {
      expect(JSON.parse(text((e) => e.string(s)))).toBe(s);
    }
  });
});
