/**
 * The capture readers against the shared real-world captures
 * (/work/shared/captures, see its README.md): every file reads without a
 * throw or hang, packet counts match capinfos (`<file>.truth.json`), the
 * per-frame times and lengths match tshark's conversation table, and every
 * classic µs pcap gives the same records as the independent npm
 * `pcap-parser`. Skipped only when the folder does not exist.
 */
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createGunzip, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../agent/capture/file.js';
import { RecordingSink, asRefRecs, digest, normalizeRef, pcapParserRecords } from './capture-helpers.js';

const CAPTURES = '/work/shared/captures';
const present = existsSync(CAPTURES);
if (!present && process.env.CI) throw new Error(`conformance: ${CAPTURES} is missing, but CI must run this suite`);

function listCaptures(d: string): string[] {
  return readdirSync(d)
    .sort()
    .flatMap((n) => {
      const p = join(d, n);
      if (statSync(p).isDirectory()) return listCaptures(p);
      if (/\.(json|log|md)$/.test(n) || n === 'SHA1SUMS') return [];
      return [p];
    });
}

const files = present ? listCaptures(CAPTURES) : [];
const rel = (f: string) => relative(CAPTURES, f);

/**
 * Files that must stop early, with the reason and the offset of the bad
 * record. Every other file must read to its end without an error.
 */
const EXPECTED_ERRORS: Record<string, { reason: string; offset: number; packets: number }> = {
  // Cut one byte into the header of record 786 (README: "785 + partial").
  'suricata-verify/pgsql__pgsql-5000-query-results__input.pcap': { reason: 'truncated_record', offset: 3276005, packets: 785 },
  // First record incl_len 90 > snaplen 53 (libpcap would clip it to 53; we reject by policy).
  'tcpdump/bootp_asan.pcap': { reason: 'bad_record_length', offset: 24, packets: 0 },
  // First record incl_len 64 > snaplen 37 (same).
  'tcpdump/icmp-icmp_print-oobr-1.pcap': { reason: 'bad_record_length', offset: 24, packets: 0 },
};

interface Truth {
  packets: number;
  format: string;
  default: { conversations: { frame_numbers: string; frames: number; bytes: number; caplen_bytes: number; first_epoch: string; last_epoch: string }[] };
}

function truthOf(f: string): Truth | undefined {
  const t = `${f}.truth.json`;
  return existsSync(t) ? (JSON.parse(readFileSync(t, 'utf8')) as Truth) : undefined;
}

/** "1-3,7" -> [1, 2, 3, 7] */
function frames(spec: string): number[] {
  return spec.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

/** "1730145002.9003834" -> nanoseconds since the epoch, as a BigInt (exact). */
function epochNs(s: string): bigint {
  const [sec, frac = ''] = s.split('.');
  return BigInt(sec) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
}

function firstBytes(f: string, gz: boolean): Buffer {
  const b = readFileSync(f);
  if (!gz) return b.subarray(0, 4);
  try {
    return gunzipSync(b).subarray(0, 4);
  } catch {
    return Buffer.alloc(0);
  }
}

describe.skipIf(!present)('readers on the shared captures', () => {
  it('the folder holds the 149 captures its README lists', () => {
    expect(files.length).toBe(149);
  });

  it.each(files.map(rel))('%s', async (name) => {
    const f = join(CAPTURES, name);
    const sink = new RecordingSink();
    const result = await readCaptureFile(f, sink);
    const truth = truthOf(f);

    // Errors: exactly the expected ones, each with a usable message.
    const want = EXPECTED_ERRORS[name];
    if (want === undefined) {
      expect(result.error, result.error?.message).toBeUndefined();
    } else {
      expect(result.error).toMatchObject({ file: f, ...want });
      expect(result.error?.message).toContain(`${f}: ${want.reason} at byte ${want.offset} after ${want.packets} packets`);
    }
    expect(result.packets).toBe(sink.recs.length);

    // Format and packet count as capinfos saw them.
    const gz = name.endsWith('.gz');
    expect(result.compressed).toBe(gz);
    if (truth !== undefined) {
      expect(result.packets).toBe(truth.packets);
      expect(`${gz ? 'gzip+' : ''}${result.format}`).toBe(truth.format.replace(/-(us|ns)(-be)?$/, ''));
      // Times and lengths of every frame in tshark's conversation table.
      for (const c of truth.default.conversations) {
        const fs = frames(c.frame_numbers).map((n) => sink.recs[n - 1]);
        expect(fs.length).toBe(c.frames);
        expect(fs.reduce((s, r) => s + r.caplen, 0)).toBe(c.caplen_bytes);
        expect(fs.reduce((s, r) => s + r.wirelen, 0)).toBe(c.bytes);
        const ts = fs.map((r) => BigInt(r.sec) * 1_000_000_000n + BigInt(r.nsec));
        const min = ts.reduce((a, b) => (b < a ? b : a));
        const max = ts.reduce((a, b) => (b > a ? b : a));
        expect(min).toBe(epochNs(c.first_epoch));
        expect(max).toBe(epochNs(c.last_epoch));
      }
    }

    // Chunking never changes anything.
    const small = new RecordingSink();
    const r2 = await readCaptureFile(f, small, { chunkSize: 4093 });
    expect({ ...r2, error: r2.error?.message }).toEqual({ ...result, error: result.error?.message });
    expect(digest(small)).toBe(digest(sink));

    // Classic µs pcap: the independent reference parser agrees record for record.
    const magic = firstBytes(f, gz);
    if (magic.length === 4 && (magic.readUInt32LE(0) === 0xa1b2c3d4 || magic.readUInt32BE(0) === 0xa1b2c3d4)) {
      const ref = await pcapParserRecords(gz ? createReadStream(f).pipe(createGunzip()) : f);
      const refRecs = normalizeRef(ref.recs);
      expect(asRefRecs(sink.recs)).toEqual(refRecs.slice(0, sink.recs.length));
      if (result.error?.reason === 'bad_record_length') {
        // The reference (no length check) goes on; the record we refused is the oversized one.
        expect(refRecs.length).toBeGreaterThan(sink.recs.length);
        expect(refRecs[sink.recs.length].incl).toBeGreaterThan(sink.interfaces[0].snaplen);
      } else {
        expect(refRecs.length).toBe(sink.recs.length);
      }
    }
  });
});
