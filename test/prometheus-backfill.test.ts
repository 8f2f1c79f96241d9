/**
 * The capture → OpenMetrics → promtool → Prometheus recipe, for real:
 * `flowtap analyze --openmetrics` output is turned into TSDB blocks by
 * `promtool tsdb create-blocks-from openmetrics`, a `prometheus` server is
 * started on those blocks (127.0.0.1, a free port, stopped by PID), and it
 * must answer with exactly what flowtap counted, at the capture's own
 * timestamps. A second Prometheus scrapes a live flowtap endpoint (which
 * answers in OpenMetrics, as Prometheus asks for it).
 * Needs the Debian package `prometheus`; fails (never skips) without it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze, parseAnalyzeArgs } from '../agent/cli.js';
import { startHttpServer, type HttpServerHandle } from '../exporters/http.js';
import { parseOpenMetrics } from './helpers/om.js';
import { promtool, requireBinary, startPrometheus, type PrometheusServer } from './helpers/prometheus.js';

const FIX = join(import.meta.dirname, 'fixtures');

let dir: string;
const servers: PrometheusServer[] = [];
const endpoints: HttpServerHandle[] = [];

beforeAll(() => {
  requireBinary('promtool');
  requireBinary('prometheus');
  dir = mkdtempSync(join(tmpdir(), 'flowtap-prom-'));
});

afterAll(async () => {
  for (const s of servers) await s.stop();
  for (const e of endpoints) await e.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function capture(file: string, args: string[]) {
  const out = join(dir, `${file}.om`);
  const lines: string[] = [];
  const res = await analyze(parseAnalyzeArgs([join(FIX, file), '--openmetrics', out, ...args]), { onLine: (l) => lines.push(l), log: () => {} });
  const records = lines.map((l) => JSON.parse(l) as Record<string, any>).filter((r) => r.final);
  const flowPackets = records.reduce((n, r) => n + r.orig_pkts + r.resp_pkts, 0);
  return { out, res, records, flowPackets, stats: res.openmetrics! };
}

describe('OpenMetrics backfill into a real Prometheus', () => {
  it('is accepted by promtool, and Prometheus answers with exactly the packets flowtap counted', async () => {
    const lo = await capture('lo-tcp-udp.pcap', []); // default --step 15s
    const rt = await capture('router-any.pcap', ['--step', '1s']);
    const data = join(dir, 'tsdb');
    mkdirSync(data);
    for (const c of [lo, rt]) {
      const r = promtool(['tsdb', 'create-blocks-from', 'openmetrics', c.out, data]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
    const prom = await startPrometheus({ dataDir: data });
    servers.push(prom);

    // lo-tcp-udp: one sample, at the first 15 s boundary after the last packet.
    const loLast = lo.stats.lastTs;
    expect(loLast).toBeGreaterThanOrEqual(lo.res.pipeline.clock.epoch(lo.res.pipeline.lastT));
    const q = async (expr: string, t: number) => {
      const r = await prom.query(expr, t);
      expect(r.length, `${expr} @ ${t}`).toBe(1);
      return Number(r[0].value![1]);
    };
    expect(await q('sum(flowtap_packets_total{interface="lo-tcp-udp.pcap"})', loLast)).toBe(lo.flowPackets);
    expect(await q('sum(flowtap_capture_packets_total{interface="lo-tcp-udp.pcap"})', loLast)).toBe(51);
    expect(await q('sum(flowtap_flows_ended_total{direction="local"})', loLast)).toBe(lo.records.length);

    // router-any at a 1 s step: the whole series, sample by sample, equals the file, and the last step the flow records.
    const rtLast = rt.stats.lastTs;
    expect(await q('sum(flowtap_packets_total{interface="router-any.pcap"})', rtLast)).toBe(rt.flowPackets);
    expect(await q('sum(flowtap_capture_packets_total{interface="router-any.pcap"})', rtLast)).toBe(232);
    expect(await q('sum(flowtap_service_bytes_total{port="8081",direction="inbound"})', rtLast)).toBe(
      rt.records.filter((r) => r['id.resp_p'] === 8081 && r.direction === 'inbound').reduce((n, r) => n + r.orig_wire_bytes + r.resp_wire_bytes, 0),
    );
    const fileSums = new Map<number, number>();
    for (const s of parseOpenMetrics(readFileSync(rt.out, 'utf8'))) {
      if (s.name === 'flowtap_packets_total') fileSums.set(s.ts!, (fileSums.get(s.ts!) ?? 0) + s.value);
    }
    expect(fileSums.size).toBe(rt.stats.steps);
    // Query at each sample's own timestamp (a series that starts later has no sample at the earlier steps).
    for (const [ts, v] of fileSums) expect(await q('sum(flowtap_packets_total{interface="router-any.pcap"})', ts), `at ${ts}`).toBe(v);
    const range = await prom.queryRange('sum(flowtap_packets_total{interface="router-any.pcap"})', rt.stats.firstTs, rtLast, 1);
    expect(range[0].values!.length).toBe(rt.stats.steps);
    // Histograms made it through too (lo-tcp-udp's samples, all direction="local", are still within the lookback).
    expect(await q('sum(flowtap_tcp_handshake_rtt_seconds_count{direction!="local"})', rtLast)).toBe(rt.records.filter((r) => r.rtt_handshake !== undefined).length);
    expect(await q('count(flowtap_build_info)', rtLast)).toBe(1);
  });

  it('scrapes a running flowtap endpoint', async () => {
    const rt = await capture('router-any.pcap', ['--step', '15s']);
    const ep = await startHttpServer({ listen: '127.0.0.1:0', registry: rt.res.metrics!.registry });
    endpoints.push(ep);
    const data = join(dir, 'tsdb-scrape');
    mkdirSync(data);
    const prom = await startPrometheus({
      dataDir: data,
      scrapeConfigs: `  - job_name: flowtap\n    static_configs:\n      - targets: ['127.0.0.1:${ep.port}']\n`,
    });
    servers.push(prom);
    let got: number | undefined;
    for (let i = 0; i < 150 && got === undefined; i++) {
      const r = await prom.query('sum(flowtap_packets_total{job="flowtap"})');
      if (r.length === 1) got = Number(r[0].value![1]);
      else await new Promise((res) => setTimeout(res, 100));
    }
    expect(got).toBe(rt.flowPackets);
    const up = await prom.query('up{job="flowtap"}');
    expect(up[0].value![1]).toBe('1');
    // The info and histogram families arrived as well.
    expect((await prom.query('flowtap_build_info{job="flowtap"}')).length).toBe(1);
    expect((await prom.query('flowtap_tcp_handshake_rtt_seconds_bucket{job="flowtap",le="+Inf"}')).length).toBeGreaterThan(0);
  });
});
