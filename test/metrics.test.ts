/**
 * Exposition of a fixture capture: golden Prometheus text (stable order,
 * exact values; the process_/nodejs_ defaults and the version normalised
 * out), cross-checked against the flow records; the HTTP endpoint; the
 * `--serve` mode of `flowtap analyze`; setCaptureStats.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze, main, parseAnalyzeArgs } from '../agent/cli.js';
import { Pipeline } from '../agent/pipeline.js';
import { FlowtapMetrics } from '../exporters/metrics.js';
import { parseListen, startHttpServer, wantsOpenMetrics, type HttpServerHandle } from '../exporters/http.js';
import { parseOpenMetrics } from './helpers/om.js';

const FIX = join(import.meta.dirname, 'fixtures');
const GOLDEN = join(import.meta.dirname, 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

/** Analyzes a fixture with metrics attached from the start; returns them and the final flow records. */
async function fixtureMetrics(file: string, args: string[] = [], opts: ConstructorParameters<typeof FlowtapMetrics>[1] = {}) {
  let metrics!: FlowtapMetrics;
  const lines: string[] = [];
  const res = await analyze(parseAnalyzeArgs([join(FIX, file), ...args]), {
    onLine: (l) => lines.push(l),
    log: () => {},
    makePipeline: (o) => {
      const p = new Pipeline(o);
      metrics = new FlowtapMetrics(p, opts);
      return p;
    },
  });
  const records = lines.map((l) => JSON.parse(l) as Record<string, any>).filter((r) => r.final);
  return { res, metrics, records };
}

/** The flowtap families of an exposition, version label normalised. */
function flowtapOnly(text: string): string {
  return text
    .split('\n\n')
    .filter((block) => !/^# HELP (process|nodejs)_/.test(block))
    .join('\n\n')
    .replace(/flowtap_build_info\{version="[^"]*"\}/, 'flowtap_build_info{version="VERSION"}');
}

function golden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE) throw new Error(`${file} is missing: run UPDATE_GOLDEN=1 npx vitest run test/metrics.test.ts`);
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, actual);
  }
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

/** Sample value of a Prometheus-text exposition line `name{labels}`. */
function values(text: string, name: string): { labels: string; value: number }[] {
  const out: { labels: string; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(\{.*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.push({ labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
}
const sumOf = (text: string, name: string, re?: RegExp) => values(text, name).filter((v) => !re || re.test(v.labels)).reduce((a, v) => a + v.value, 0);

describe('exposition of router-any.pcap', () => {
  it('matches the golden Prometheus text and the flow records', async () => {
    const { res, metrics, records } = await fixtureMetrics('router-any.pcap');
    const text = await metrics.registry.metrics();
    golden('metrics-router-any.prom', flowtapOnly(text));
    const sum = (f: (r: Record<string, any>) => number) => records.reduce((n, r) => n + f(r), 0);
    expect(sumOf(text, 'flowtap_packets_total')).toBe(sum((r) => r.orig_pkts + r.resp_pkts));
    expect(sumOf(text, 'flowtap_bytes_total')).toBe(sum((r) => r.orig_wire_bytes + r.resp_wire_bytes));
    expect(sumOf(text, 'flowtap_ip_bytes_total')).toBe(sum((r) => r.orig_ip_bytes + r.resp_ip_bytes));
    expect(sumOf(text, 'flowtap_flows_started_total')).toBe(records.length);
    for (const dir of ['inbound', 'outbound', 'forwarded']) {
      expect(sumOf(text, 'flowtap_packets_total', new RegExp(`direction="${dir}"`)), dir).toBe(sum((r) => (r.direction === dir ? r.orig_pkts + r.resp_pkts : 0)));
    }
    expect(sumOf(text, 'flowtap_capture_packets_total')).toBe(232);
    expect(sumOf(text, 'flowtap_forwarded_copies_total')).toBe(res.pipeline.table.copies);
    // Local services of the router: TCP 8081, 8083 and UDP 5301, inbound.
    expect(values(text, 'flowtap_service_bytes_total').map((v) => v.labels)).toEqual([
      '{proto="tcp",port="8081",process="",direction="inbound"}',
      '{proto="tcp",port="8083",process="",direction="inbound"}',
      '{proto="udp",port="5301",process="",direction="inbound"}',
    ]);
    expect(sumOf(text, 'flowtap_tcp_handshake_rtt_seconds_count')).toBe(records.filter((r) => r.rtt_handshake !== undefined).length);
    expect(sumOf(text, 'flowtap_active_flows')).toBe(0);
    // The OpenMetrics rendering of the same scrape is well formed.
    const { registryToOpenMetrics } = await import('../exporters/openmetrics.js');
    const om = parseOpenMetrics(registryToOpenMetrics(await metrics.registry.getMetricsAsJSON()));
    expect(om.filter((s) => s.name === 'flowtap_packets_total').reduce((a, s) => a + s.value, 0)).toBe(sumOf(text, 'flowtap_packets_total'));
    expect(om.find((s) => s.name === 'flowtap_build_info')?.type).toBe('info');
  });

  it('writes the golden OpenMetrics backfill of lo-tcp-udp.pcap (default 15 s step)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtap-golden-'));
    const out = join(dir, 'lo.om');
    let text: string;
    let steps: number;
    try {
      const { res } = await fixtureMetrics('lo-tcp-udp.pcap', ['--openmetrics', out], { defaultMetrics: false });
      steps = res.openmetrics!.steps;
      text = readFileSync(out, 'utf8').replace(/flowtap_build_info\{version="[^"]*"\}/, 'flowtap_build_info{version="VERSION"}');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    golden('lo-tcp-udp.om', text);
    expect(steps).toBe(1);
    parseOpenMetrics(text);
  });
});

describe('HTTP endpoint', () => {
  const servers: HttpServerHandle[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.1:9877')).toEqual({ host: '127.0.0.1', port: 9877 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':9877')).toEqual({ host: '127.0.0.1', port: 9877 });
    expect(() => parseListen('localhost')).toThrow(/HOST:PORT/);
    expect(() => parseListen('x:70000')).toThrow(/HOST:PORT/);
    expect(wantsOpenMetrics('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5')).toBe(true);
    expect(wantsOpenMetrics('text/plain')).toBe(false);
    expect(wantsOpenMetrics(undefined)).toBe(false);
  });

  it('serves /metrics in both formats, /healthz and /', async () => {
    const { metrics } = await fixtureMetrics('router-any.pcap');
    let healthy = true;
    const srv = await startHttpServer({ listen: '127.0.0.1:0', registry: metrics.registry, health: () => ({ ok: healthy, detail: healthy ? undefined : 'capture stopped' }) });
    servers.push(srv);
    expect(srv.address).toBe('127.0.0.1');
    const base = `http://127.0.0.1:${srv.port}`;

    const prom = await fetch(`${base}/metrics`);
    expect(prom.status).toBe(200);
    expect(prom.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const promText = await prom.text();
    // Byte for byte what prom-client writes (the flowtap families; the defaults change between scrapes).
    expect(flowtapOnly(promText)).toBe(flowtapOnly(await metrics.registry.metrics()));

    const om = await fetch(`${base}/metrics`, { headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' } });
    expect(om.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const omText = await om.text();
    expect(omText.endsWith('# EOF\n')).toBe(true);
    const samples = parseOpenMetrics(omText);
    expect(samples.filter((s) => s.name === 'flowtap_packets_total').reduce((a, s) => a + s.value, 0)).toBe(156);
    expect(samples.some((s) => s.family === 'process_cpu_seconds' && s.name === 'process_cpu_seconds_total')).toBe(true);

    const health = await fetch(`${base}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    healthy = false;
    const sick = await fetch(`${base}/healthz`);
    expect([sick.status, await sick.text()]).toEqual([503, 'unhealthy: capture stopped\n']);

    const index = await fetch(`${base}/`);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await index.text()).toMatch(/href="metrics".*href="healthz"/s);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);
  });

  it('fails clearly when the port is taken', async () => {
    const a = await startHttpServer({ listen: '127.0.0.1:0', registry: new FlowtapMetrics(new Pipeline(), { defaultMetrics: false }).registry });
    servers.push(a);
    await expect(startHttpServer({ listen: `127.0.0.1:${a.port}`, registry: new FlowtapMetrics(new Pipeline(), { defaultMetrics: false }).registry })).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('flowtap analyze --serve', () => {
  it('serves the final metrics until SIGTERM', async () => {
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
    let status: number | undefined;
    try {
      const run = main(['analyze', join(FIX, 'lo-tcp-udp.pcap'), '-q', '--serve', '127.0.0.1:0']).then((s) => (status = s));
      let url: string | undefined;
      for (let i = 0; i < 200 && !url; i++) {
        url = /serving the final metrics on (http:\/\/\S+)/.exec(err.join(''))?.[1];
        if (!url) await new Promise((r) => setTimeout(r, 25));
      }
      expect(url, err.join('')).toBeDefined();
      const text = await (await fetch(url!)).text();
      expect(sumOf(text, 'flowtap_capture_packets_total')).toBe(51);
      expect(sumOf(text, 'flowtap_flows_ended_total')).toBe(10);
      expect(text).toMatch(/^process_cpu_seconds_total /m);
      await new Promise((r) => setTimeout(r, 100));
      expect(status).toBeUndefined(); // still serving
      expect(process.listenerCount('SIGTERM')).toBeGreaterThan(0); // flowtap's handler is installed: the signal will not kill this worker
      process.kill(process.pid, 'SIGTERM');
      await run;
      expect(status).toBe(0);
      await expect(fetch(url!)).rejects.toThrow();
    } finally {
      spy.mockRestore();
    }
  });

  it('rejects bad options', () => {
    expect(() => parseAnalyzeArgs(['x.pcap', '--serve', 'nope'])).toThrow(/--serve/);
    expect(() => parseAnalyzeArgs(['x.pcap', '--step', '5s'])).toThrow(/--step: only with --openmetrics/);
    expect(() => parseAnalyzeArgs(['x.pcap', '--openmetrics', 'o', '--step', '0s'])).toThrow(/--step/);
    expect(() => parseAnalyzeArgs(['x.pcap', '--max-series', '0'])).toThrow(/--max-series/);
    expect(parseAnalyzeArgs(['x.pcap', '--top-flows', '0']).topFlows).toBe(0);
    const cfg = parseAnalyzeArgs(['x.pcap', '--openmetrics', 'o.om']);
    expect([cfg.stepSeconds, cfg.maxSeries, cfg.topFlows]).toEqual([15, 10000, 20]);
  });
});

describe('capture drop counters', () => {
  it('keep growing when the live counters restart', () => {
    const p = new Pipeline();
    const m = new FlowtapMetrics(p, { defaultMetrics: false });
    const drops = () => {
      const f = m.collect().find((x) => x.name === 'flowtap_capture_dropped_packets_total')!;
      return Object.fromEntries(f.rows.labels.map((l, i) => [l.join('/'), f.rows.values[i]]));
    };
    m.setCaptureStats('eth0', { kernel: 10, interface: 1, queue: 0 });
    expect(drops()).toEqual({ 'eth0/interface': 1, 'eth0/kernel': 10, 'eth0/queue': 0 });
    m.setCaptureStats('eth0', { kernel: 15, interface: 1, queue: 2 });
    m.setCaptureStats('eth0', { kernel: 3, interface: 1, queue: 2 }); // handle reopened
    expect(drops()).toEqual({ 'eth0/interface': 1, 'eth0/kernel': 18, 'eth0/queue': 2 });
  });
});
