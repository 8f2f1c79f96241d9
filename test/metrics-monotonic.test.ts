/**
 * Property test: counters never decrease across flow expiry (idle, active
 * interim records), eviction under a small --max-flows, and the end of
 * input. Random captures are analyzed with --openmetrics at a 1 s step;
 * every counter series, and every histogram bucket, count and sum, must
 * be non-decreasing from one sample to the next. The last sample must
 * equal the sums over the final flow records.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze, parseAnalyzeArgs } from '../agent/cli.js';
import { parseOpenMetrics, type OmSample } from './helpers/om.js';
import { randomTraffic } from './helpers/traffic.js';

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];

describe('counters are monotonic across flow expiry and eviction', () => {
  for (const seed of SEEDS) {
    it(`random capture, seed ${seed}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'flowtap-mono-'));
      try {
        const pcap = join(dir, `random-${seed}.pcap`);
        const om = join(dir, 'out.om');
        writeFileSync(pcap, randomTraffic({ seed, flows: 400, seconds: 60 }));
        const lines: string[] = [];
        const res = await analyze(
          parseAnalyzeArgs([pcap, '--openmetrics', om, '--step', '1s', '--max-flows', '16', '--local-net', '10.9.0.0/16', '--top-flows', '5',
            '--idle-timeout-tcp', '4s', '--idle-timeout-tcp-closed', '1s', '--idle-timeout-tcp-attempt', '2s', '--idle-timeout-udp', '2s',
            '--idle-timeout-icmp', '2s', '--active-timeout', '3s']),
          { onLine: (l) => lines.push(l), log: () => {} },
        );
        expect(res.status).toBe(0);
        const samples = parseOpenMetrics(readFileSync(om, 'utf8'));
        const ends = res.pipeline.table.ends;
        // The capture exercised what the property is about.
        expect(ends[0]).toBeGreaterThan(0); // idle
        expect(ends[1]).toBeGreaterThan(0); // active (interim)
        expect(ends[2]).toBeGreaterThan(0); // pressure
        expect(res.openmetrics!.steps).toBeGreaterThan(50);

        // Every counter / histogram series: non-decreasing between consecutive samples.
        const series = new Map<string, OmSample[]>();
        for (const s of samples) {
          if (s.type !== 'counter' && s.type !== 'histogram') continue;
          const k = `${s.name}${JSON.stringify(s.labels)}`;
          let a = series.get(k);
          if (!a) series.set(k, (a = []));
          a.push(s);
        }
        let checked = 0;
        for (const [k, a] of series) {
          for (let i = 1; i < a.length; i++) {
            if (a[i].value < a[i - 1].value) throw new Error(`${k} decreased from ${a[i - 1].value} at ${a[i - 1].ts} to ${a[i].value} at ${a[i].ts}`);
            checked++;
          }
        }
        expect(checked).toBeGreaterThan(1000);

        // Live flows were published (not only the final sample).
        expect(samples.some((s) => s.name === 'flowtap_active_flows' && s.value > 0)).toBe(true);

        // The last sample equals the final flow records.
        const last = Math.max(...samples.map((s) => s.ts ?? 0));
        const at = (name: string, match: (l: Record<string, string>) => boolean = () => true) =>
          samples.filter((s) => s.name === name && s.ts === last && match(s.labels)).reduce((n, s) => n + s.value, 0);
        const recs = lines.map((l) => JSON.parse(l) as Record<string, any>).filter((r) => r.final);
        const sum = (f: (r: Record<string, any>) => number) => recs.reduce((n, r) => n + f(r), 0);
        expect(at('flowtap_packets_total')).toBe(sum((r) => r.orig_pkts + r.resp_pkts));
        expect(at('flowtap_bytes_total')).toBe(sum((r) => r.orig_wire_bytes + r.resp_wire_bytes));
        expect(at('flowtap_ip_bytes_total')).toBe(sum((r) => r.orig_ip_bytes + r.resp_ip_bytes));
        expect(at('flowtap_flows_started_total')).toBe(recs.length);
        expect(at('flowtap_flows_ended_total')).toBe(recs.length);
        expect(at('flowtap_flows_ended_total', (l) => l.conn_state === 'REJ')).toBe(recs.filter((r) => r.conn_state === 'REJ').length);
        expect(at('flowtap_tcp_resets_total')).toBe(sum((r) => (r.proto === 'tcp' ? r.orig_rst + r.resp_rst : 0)));
        expect(at('flowtap_tcp_retransmitted_packets_total')).toBe(sum((r) => (r.proto === 'tcp' ? r.orig_retrans_pkts + r.resp_retrans_pkts : 0)));
        expect(at('flowtap_tcp_zero_window_total')).toBe(sum((r) => (r.proto === 'tcp' ? r.orig_zero_win + r.resp_zero_win : 0)));
        expect(at('flowtap_tcp_handshake_rtt_seconds_count')).toBe(recs.filter((r) => r.rtt_handshake !== undefined).length);
        expect(at('flowtap_flow_duration_seconds_count')).toBe(recs.length);
        const service = (r: Record<string, any>) =>
          (r.direction === 'inbound' || r.direction === 'local') &&
          (r.proto === 'tcp' ? r.resp_syn > 0 || r.resp_bytes > 0 : r.proto === 'udp' && r.resp_pkts > 0);
        expect(at('flowtap_service_bytes_total')).toBe(sum((r) => (service(r) ? r.orig_wire_bytes + r.resp_wire_bytes : 0)));
        expect(at('flowtap_capture_packets_total')).toBe(res.pipeline.packets);
        expect(at('flowtap_flow_table_evictions_total', (l) => l.reason === 'pressure')).toBe(ends[2]);
        expect(at('flowtap_active_flows')).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
