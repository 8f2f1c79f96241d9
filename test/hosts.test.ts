import { describe, expect, it } from 'vitest';
import { HostTable, select } from '../exporters/hosts.js';
import { formatAddr } from '../parsers/addr.js';
import { rng } from './helpers/traffic.js';

interface Truth { packets: number; bytes: number; flows: number }

/** Feeds `updates` (host id, packets, bytes) to a table; host id h is IPv4 10.x.y.z = h, or IPv6 2001:db8::h when odd and v6. */
function feed(t: HostTable, updates: [number, number, number][], v6 = false): Map<string, Truth> {
  const truth = new Map<string, Truth>();
  const w = new Uint32Array(4);
  for (const [h, packets, bytes] of updates) {
    const six = v6 && (h & 1) === 1;
    w.fill(0);
    if (six) {
      w[0] = 0x20010db8;
      w[3] = h;
    } else w[3] = (0x0a000000 | h) >>> 0;
    const version = six ? 6 : 4;
    t.add(version, w, 0, packets, bytes);
    const key = formatAddr(version, w, 0);
    const x = truth.get(key) ?? { packets: 0, bytes: 0, flows: 0 };
    x.packets += packets;
    x.bytes += bytes;
    x.flows++;
    truth.set(key, x);
  }
  return truth;
}

describe('select (quickselect)', () => {
  it('returns the value of every rank, duplicates included', () => {
    const r = rng(7);
    for (const n of [1, 2, 3, 10, 257, 1000]) {
      const values = Array.from({ length: n }, () => Math.floor(r() * (n / 3 + 1)));
      const sorted = [...values].sort((a, b) => a - b);
      for (const rank of [0, n >> 2, n >> 1, n - 1]) {
        expect(select(Float64Array.from(values), n, rank)).toBe(sorted[rank]);
      }
    }
  });
});

describe('top hosts table', () => {
  it('is exact while the hosts fit: every count equals a Map reference, IPv4 and IPv6', () => {
    const r = rng(1);
    const updates: [number, number, number][] = [];
    for (let i = 0; i < 20000; i++) updates.push([Math.floor(r() * 500), 1 + Math.floor(r() * 10), 60 + Math.floor(r() * 1400)]);
    const t = new HostTable(512);
    const truth = feed(t, updates, true);
    expect(t.exact).toBe(true);
    expect(t.count).toBe(truth.size);
    const top = t.top(truth.size);
    expect(top).toHaveLength(truth.size);
    for (const h of top) {
      expect(h.error_bytes).toBeUndefined();
      expect({ packets: h.packets, bytes: h.bytes, flows: h.flows }).toEqual(truth.get(h.host));
    }
    // Sorted by bytes, descending.
    for (let i = 1; i < top.length; i++) expect(top[i - 1].bytes).toBeGreaterThanOrEqual(top[i].bytes);
    const want = [...truth.entries()].sort((a, b) => b[1].bytes - a[1].bytes || b[1].packets - a[1].packets).slice(0, 10).map(([k]) => k);
    expect(t.top(10).map((h) => h.host)).toEqual(want);
  });

  it('beyond its capacity keeps every heavy host, with bounds that hold the true bytes', () => {
    const r = rng(2);
    const updates: [number, number, number][] = [];
    // 50 heavy hosts among 200 000 light ones, interleaved.
    for (let i = 0; i < 400000; i++) {
      if (i % 8 === 0) updates.push([1 + Math.floor(r() * 50), 10, 20000 + Math.floor(r() * 1000)]);
      else updates.push([1000 + Math.floor(r() * 200000), 1, 60 + Math.floor(r() * 100)]);
    }
    const t = new HostTable(1024);
    const truth = feed(t, updates);
    expect(t.exact).toBe(false);
    expect(t.count).toBeLessThanOrEqual(1024);
    expect(t.floor).toBeGreaterThan(0);
    const top = t.top(1024);
    for (const h of top) {
      const x = truth.get(h.host)!;
      expect(h.bytes).toBeLessThanOrEqual(x.bytes);
      expect(h.bytes + (h.error_bytes ?? 0)).toBeGreaterThanOrEqual(x.bytes);
      expect(h.packets).toBeLessThanOrEqual(x.packets);
      if (!h.error_bytes) expect({ packets: h.packets, bytes: h.bytes, flows: h.flows }).toEqual(x);
    }
    // Every host with more than floor bytes is in the table; here that is all 50 heavy hosts, and they lead.
    const heavy = [...truth.entries()].filter(([, x]) => x.bytes > t.floor).map(([k]) => k);
    expect(heavy.length).toBeGreaterThanOrEqual(50);
    const held = new Set(top.map((h) => h.host));
    for (const k of heavy) expect(held.has(k)).toBe(true);
    const want = [...truth.entries()].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 10).map(([k]) => k);
    expect(new Set(t.top(10).map((h) => h.host))).toEqual(new Set(want));
  });

  it('evicts half the table at a time even when every host has the same count', () => {
    const t = new HostTable(16);
    const updates: [number, number, number][] = [];
    for (let h = 0; h < 100; h++) updates.push([h, 1, 100]);
    feed(t, updates);
    expect(t.count).toBeLessThanOrEqual(16);
    expect(t.count).toBeGreaterThanOrEqual(8);
    expect(t.floor).toBeGreaterThanOrEqual(100);
    expect(t.evicted + t.count).toBe(100);
  });
});
