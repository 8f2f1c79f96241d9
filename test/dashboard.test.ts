/**
 * dashboards/flowtap-overview.json is an importable Grafana dashboard, and
 * every PromQL expression of every panel (template variables substituted
 * as Grafana does for "All": regex `.*`) parses and returns data on a real
 * Prometheus holding flowtap data backfilled from router-any.pcap (1 s
 * step: forwarded, inbound and outbound flows, local services, TCP
 * handshakes). Needs the Debian package `prometheus`; never skips.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze, parseAnalyzeArgs } from '../agent/cli.js';
import type { BackfillStats } from '../exporters/openmetrics.js';
import { promtool, requireBinary, startPrometheus, type PrometheusServer } from './helpers/prometheus.js';

const ROOT = join(import.meta.dirname, '..');
const DASH = join(ROOT, 'dashboards', 'flowtap-overview.json');

interface Target { refId: string; expr: string; instant?: boolean; range?: boolean; format?: string; datasource?: { type: string; uid: string } }
interface Panel { id: number; type: string; title: string; gridPos?: object; datasource?: { uid: string }; targets?: Target[] }

const dashboard = JSON.parse(readFileSync(DASH, 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; definition?: string; includeAll?: boolean; allValue?: string }[] };
};
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');

let dir: string;
let prom: PrometheusServer | undefined;
let stats: BackfillStats;

beforeAll(async () => {
  requireBinary('promtool');
  requireBinary('prometheus');
  dir = mkdtempSync(join(tmpdir(), 'flowtap-dash-'));
  const om = join(dir, 'router-any.om');
  const res = await analyze(parseAnalyzeArgs([join(ROOT, 'test/fixtures/router-any.pcap'), '--openmetrics', om, '--step', '1s', '-q']), { log: () => {} });
  stats = res.openmetrics!;
  const data = join(dir, 'tsdb');
  mkdirSync(data);
  const r = promtool(['tsdb', 'create-blocks-from', 'openmetrics', om, data]);
  if (r.status !== 0) throw new Error(`promtool: ${r.stdout}${r.stderr}`);
  prom = await startPrometheus({ dataDir: data });
});

afterAll(async () => {
  await prom?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Grafana's substitutions for "All" selections and the capture's time range at a 1 s step. */
function substitute(expr: string): string {
  const span = Math.ceil(stats.lastTs - stats.firstTs) + 1;
  return expr
    .replaceAll('$interface', '.*')
    .replaceAll('$direction', '.*')
    .replaceAll('$__rate_interval', '4s')
    .replaceAll('$__interval', '1s')
    .replaceAll('$__range', `${span}s`);
}

describe('Grafana dashboard flowtap-overview', () => {
  it('is an importable dashboard with the required variables and panels', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.uid).toBe('flowtap-overview');
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource?.type).toBe('datasource');
    expect(vars.datasource?.query).toBe('prometheus');
    for (const name of ['interface', 'direction']) {
      expect(vars[name]?.includeAll, name).toBe(true);
      expect(vars[name]?.allValue, name).toBe('.*');
    }
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of queryPanels) {
      expect(p.gridPos, p.title).toBeDefined();
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource?.uid, `${p.title} ${t.refId}`).toBe('${datasource}');
    }
    const titles = queryPanels.map((p) => p.title);
    for (const want of ['Throughput by direction', 'Throughput by protocol', 'Forwarded vs local traffic', 'Top flows', 'Services by process',
      'TCP retransmitted packets', 'TCP resets', 'TCP zero windows', 'TCP handshake RTT', 'Flows started by protocol', 'Flows ended by conn_state',
      'Capture drops by where', 'Decode errors by reason', 'Flow table evictions by reason', 'Active flows']) {
      expect(titles, want).toContain(want);
    }
    expect(queryPanels.find((p) => p.title === 'TCP handshake RTT')!.type).toBe('heatmap');
    expect(queryPanels.find((p) => p.title === 'Top flows')!.type).toBe('table');
    // Provisioning files name the datasource type and the dashboards provider.
    const dsYaml = readFileSync(join(ROOT, 'dashboards/provisioning/datasources/flowtap.yaml'), 'utf8');
    expect(dsYaml).toMatch(/^apiVersion: 1$/m);
    expect(dsYaml).toMatch(/type: prometheus/);
    const dbYaml = readFileSync(join(ROOT, 'dashboards/provisioning/dashboards/flowtap.yaml'), 'utf8');
    expect(dbYaml).toMatch(/^providers:$/m);
    expect(dbYaml).toMatch(/type: file/);
  });

  it('has variable queries that return values', async () => {
    const iface = dashboard.templating.list.find((v) => v.name === 'interface')!;
    const m = /^label_values\((\w+), (\w+)\)$/.exec(iface.definition!);
    expect(m).not.toBeNull();
    const values = await prom!.api<string[]>(`/api/v1/label/${m![2]}/values?match[]=${m![1]}&start=${stats.firstTs}&end=${stats.lastTs}`);
    expect(values).toEqual(['router-any.pcap']);
    const dirs = await prom!.api<string[]>(`/api/v1/label/direction/values?match[]=flowtap_packets_total&start=${stats.firstTs}&end=${stats.lastTs}`);
    const offered = String(dashboard.templating.list.find((v) => v.name === 'direction')!.query).split(',');
    for (const d of dirs) expect(offered).toContain(d);
  });

  describe('every panel query parses and returns data', () => {
    for (const p of queryPanels) {
      for (const t of p.targets ?? []) {
        it(`${p.title} / ${t.refId}: ${t.expr}`, async () => {
          const expr = substitute(t.expr);
          expect(expr).not.toMatch(/\$/);
          const results = t.instant ? await prom!.query(expr, stats.lastTs) : await prom!.queryRange(expr, stats.firstTs, stats.lastTs, 1);
          expect(results.length, expr).toBeGreaterThan(0);
          const points = results.flatMap((r) => (r.values ?? [r.value!]).map((v) => Number(v[1])));
          expect(points.some((v) => Number.isFinite(v)), `${expr}: only NaN`).toBe(true);
        });
      }
    }
  });
});
