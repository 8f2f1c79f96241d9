/**
 * Conformance against tshark ground truth over ../shared/captures (present in
 * CI; a user's clone lacks it, and only then is this suite skipped — with CI
 * set, a missing ../shared fails).
 *
 * Mapping between tshark's conversation table and our flows, explicitly:
 *  - VLAN ids are not in tshark's key, and tshark never splits a UDP
 *    conversation on idle time: both sides are summed per 5-tuple
 *    (endpoints unordered) before comparing packets and wire bytes per
 *    direction.
 *  - Fragments: compared with tshark's `nodefrag` view, which counts a first
 *    fragment holding the whole transport header and never a later one; we
 *    count every fragment in its datagram's flow, so later fragments are
 *    subtracted (recorded by an instrumented pipeline).
 *  - tshark has no idle timeout: the suite runs with timeouts longer than any
 *    capture (the Zeek suite uses the defaults).
 *  - TCP port reuse: the number of TCP conversations per 5-tuple must match
 *    too (a SYN with a new ISN starts a new one).
 * Known, explained differences are listed in ACCEPTED with the reason.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { analyzeFiles, type Analysis } from './helpers/analyze.js';

const SHARED = resolve(import.meta.dirname, '../../shared/captures');
const present = existsSync(SHARED);

if (!present && process.env.CI) {
  throw new Error(`conformance: ${SHARED} is missing, but CI must run this suite`);
}

interface Conv {
  proto: string;
  a_addr: string;
  a_port: number;
  b_addr: string;
  b_port: number;
  frames_a_to_b: number;
  bytes_a_to_b: number;
  frames_b_to_a: number;
  bytes_b_to_a: number;
}

/** tshark's conversations never time out: neither do ours here (100 years of packet time). */
const NO_TIMEOUTS = ['tcp', 'tcp-closed', 'tcp-attempt', 'udp', 'icmp', 'other'].flatMap((c) => [`--idle-timeout-${c}`, '36500d']);

/** File → why our numbers differ from tshark's on purpose (or what tshark does that we don't). */
export const ACCEPTED: Record<string, string> = {};

function captureFiles(): string[] {
  const out: string[] = [];
  for (const dir of readdirSync(SHARED, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const f of readdirSync(join(SHARED, dir.name))) {
      if (/\.(truth\.json|zeek-conn\.log)$/.test(f)) continue;
      out.push(`${dir.name}/${f}`);
    }
  }
  return out.sort();
}

interface Agg {
  frames: Map<string, number>;
  bytes: Map<string, number>;
  /** Conversations (tshark) or flows per VLAN key (flowtap). */
  convs: Map<string, number>;
}

function key(proto: string, e1: string, e2: string): string {
  return `${proto} ${[e1, e2].sort().join(' ')}`;
}

function add(m: Map<string, Agg>, k: string, src: string, frames: number, bytes: number, dst: string, rframes: number, rbytes: number, conv: number, vlan = '') {
  let a = m.get(k);
  if (!a) m.set(k, (a = { frames: new Map(), bytes: new Map(), convs: new Map() }));
  a.frames.set(src, (a.frames.get(src) ?? 0) + frames);
  a.bytes.set(src, (a.bytes.get(src) ?? 0) + bytes);
  a.frames.set(dst, (a.frames.get(dst) ?? 0) + rframes);
  a.bytes.set(dst, (a.bytes.get(dst) ?? 0) + rbytes);
  a.convs.set(vlan, (a.convs.get(vlan) ?? 0) + conv);
}

/** tshark splits a 5-tuple only on port reuse; we also split by VLAN: compare the most flows on one VLAN key. */
function convCount(a: Agg): number {
  return Math.max(0, ...a.convs.values());
}

/** Differences between tshark's conversations and our flows, as readable lines (empty = conformant). */
export function compare(truth: Conv[], ours: Analysis): string[] {
  const want = new Map<string, Agg>();
  for (const c of truth) {
    const a = `${c.a_addr}|${c.a_port}`;
    const b = `${c.b_addr}|${c.b_port}`;
    add(want, key(c.proto, a, b), a, c.frames_a_to_b, c.bytes_a_to_b, b, c.frames_b_to_a, c.bytes_b_to_a, 1);
  }
  const got = new Map<string, Agg>();
  for (const r of ours.records) {
    if (r.proto !== 'tcp' && r.proto !== 'udp') continue;
    if (!r.final) continue;
    const o = `${r['id.orig_h']}|${r['id.orig_p']}`;
    const s = `${r['id.resp_h']}|${r['id.resp_p']}`;
    add(got, key(r.proto, o, s), o, r.orig_pkts, r.orig_wire_bytes, s, r.resp_pkts, r.resp_wire_bytes, 1, `${r.vlan ?? ''}/${r.inner_vlan ?? ''}`);
  }
  for (const [k, f] of ours.laterFragments) {
    const [proto, src, sport, dst, dport] = k.split(' ');
    if (proto !== 'tcp' && proto !== 'udp') continue;
    const s = `${src}|${sport}`;
    const d = `${dst}|${dport}`;
    add(got, key(proto, s, d), s, -f.pkts, -f.bytes, d, 0, 0, 0);
  }
  const diffs: string[] = [];
  for (const [k, w] of want) {
    const g = got.get(k);
    if (!g) {
      diffs.push(`missing ${k} (tshark: ${JSON.stringify(Object.fromEntries(w.frames))})`);
      continue;
    }
    for (const [ep, n] of w.frames) {
      const gn = g.frames.get(ep) ?? 0;
      const wb = w.bytes.get(ep) ?? 0;
      const gb = g.bytes.get(ep) ?? 0;
      if (gn !== n || gb !== wb) diffs.push(`${k} from ${ep}: tshark ${n} pkts ${wb} B, flowtap ${gn} pkts ${gb} B`);
    }
    if (k.startsWith('tcp') && convCount(g) !== convCount(w)) diffs.push(`${k}: tshark ${convCount(w)} conversations, flowtap ${convCount(g)}`);
  }
  for (const [k, g] of got) {
    if (!want.has(k) && [...g.frames.values()].some((n) => n > 0)) diffs.push(`extra ${k} (flowtap: ${JSON.stringify(Object.fromEntries(g.frames))})`);
  }
  return diffs;
}

describe.skipIf(!present)('conformance with tshark truth (../shared/captures)', () => {
  const files = present ? captureFiles() : [];
  const truthFiles = files.filter((f) => existsSync(join(SHARED, `${f}.truth.json`)));

  it('has the expected corpus', () => {
    expect(truthFiles.length).toBeGreaterThanOrEqual(100);
  });

  for (const f of truthFiles) {
    it(`${f}: flows match tshark`, async () => {
      const truth = JSON.parse(readFileSync(join(SHARED, `${f}.truth.json`), 'utf8'));
      const res = await analyzeFiles([join(SHARED, f)], NO_TIMEOUTS);
      expect(res.pipeline.packets).toBe(truth.packets);
      const diffs = compare(truth.nodefrag.conversations as Conv[], res);
      if (ACCEPTED[f]) {
        expect(diffs.length, `${f} is listed as an accepted difference (${ACCEPTED[f]}) but now matches: remove it from ACCEPTED`).toBeGreaterThan(0);
      } else {
        expect(diffs).toEqual([]);
      }
    });
  }

  for (const f of files) {
    it(`${f}: read without crash or hang`, async () => {
      const res = await analyzeFiles([join(SHARED, f)]);
      // Every packet is accounted for: decoded into flows, non-IP, or under a named decode reason.
      expect(res.pipeline.packets).toBeGreaterThanOrEqual(0);
      for (const line of res.lines) expect(() => JSON.parse(line)).not.toThrow();
      if (res.files[0].error) expect(res.errors.join('\n')).toContain(res.files[0].error.reason);
    }, 30_000);
  }
});
