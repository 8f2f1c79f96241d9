/**
 * The cardinality budget under 100 k distinct flows to 1 k listening
 * ports; the scrape cost at 100 k live flows (printed, never asserted:
 * benchmarks do not fail on speed); `promtool check metrics` on a scrape
 * of that busy pipeline.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Pipeline } from '../agent/pipeline.js';
import { LocalNets } from '../agent/flows/localnets.js';
import { readCaptureBuffer } from '../agent/capture/file.js';
import { FlowtapMetrics, type MetricFamily } from '../exporters/metrics.js';
import { manyConnections } from './helpers/traffic.js';
import { promtool } from './helpers/prometheus.js';
import { startHttpServer } from '../exporters/http.js';

const FLOWS = 100_000;
const PORTS = 1_000;

let capture: Buffer;

function run(opts: ConstructorParameters<typeof FlowtapMetrics>[1]): { p: Pipeline; m: FlowtapMetrics } {
  // initialCapacity: the table never grows here (growth during a packet currently loses that packet's count; reported).
  const p = new Pipeline({ localNets: LocalNets.parse(['10.0.0.1']), initialCapacity: 1 << 17 });
  const m = new FlowtapMetrics(p, opts);
  const r = readCaptureBuffer('gen0', capture, p);
  if (r.error) throw r.error;
  return { p, m };
}

const family = (fams: MetricFamily[], name: string) => fams.find((f) => f.name === name)!;
const total = (f: MetricFamily) => f.rows.values.reduce((a, b) => a + b, 0);

describe('series budget with 100 k flows and 1 k listening ports', () => {
  beforeAll(() => {
    capture = manyConnections(FLOWS, PORTS);
  });

  it('keeps every family within --max-series, folds the rest into "other" and counts it', () => {
    const max = 300;
    const { p, m } = run({ maxSeries: max, topFlows: 20, defaultMetrics: false });
    expect(p.table.count).toBe(FLOWS);
    const check = (fams: MetricFamily[]) => {
      for (const f of fams) expect(f.rows.keys.length, f.name).toBeLessThanOrEqual(max);
      const svc = family(fams, 'flowtap_service_bytes_total');
      expect(svc.rows.keys.length).toBeGreaterThan(max / 2);
      // Folding keeps the sums: every byte of every flow is in some service series.
      expect(total(svc)).toBe(total(family(fams, 'flowtap_bytes_total')));
      const other = svc.rows.labels.findIndex((l) => l[1] === 'other');
      expect(other).toBeGreaterThanOrEqual(0);
      expect(svc.rows.labels[other]).toEqual(['tcp', 'other', '', 'inbound']);
      const dropped = family(fams, 'flowtap_series_budget_dropped_total');
      const di = dropped.rows.labels.findIndex((l) => l[0] === 'flowtap_service_bytes_total');
      // Each port beyond the admitted ones is folded once.
      expect(dropped.rows.values[di]).toBe(PORTS - (svc.rows.keys.length - 1));
      expect(family(fams, 'flowtap_top_flow_bytes').rows.keys.length).toBe(20);
    };
    const live = m.collect();
    check(live);
    expect(total(family(live, 'flowtap_active_flows'))).toBe(FLOWS);
    p.finish();
    const fin = m.collect();
    check(fin);
    expect(total(family(fin, 'flowtap_flows_ended_total'))).toBe(FLOWS);
    expect(total(family(fin, 'flowtap_packets_total'))).toBe(2 * FLOWS);
  });

  it('admits all 1 k services under the default budget; measures the scrape cost at 100 k live flows', async () => {
    const { p, m } = run({});
    expect(p.table.count).toBe(FLOWS);
    const fams = m.collect();
    const svc = family(fams, 'flowtap_service_bytes_total');
    expect(svc.rows.keys.length).toBe(PORTS);
    expect(family(fams, 'flowtap_series_budget_dropped_total').rows.values.every((v) => v === 0)).toBe(true);
    const time = async (f: () => unknown, n: number) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await f();
        ms.push(performance.now() - t0);
      }
      ms.sort((a, b) => a - b);
      return { median: ms[n >> 1], max: ms[n - 1] };
    };
    /** Runs f while measuring the longest the event loop was held (what a capture loop would wait). */
    const stallOf = async (f: () => Promise<unknown>) => {
      let stall = 0;
      let last = performance.now();
      let run = true;
      const tick = () => {
        const now = performance.now();
        stall = Math.max(stall, now - last);
        last = now;
        if (run) setImmediate(tick);
      };
      setImmediate(tick);
      await f();
      run = false;
      await new Promise((r) => setImmediate(r));
      return stall;
    };
    const collect = await time(() => m.collect(), 15);
    const srv = await startHttpServer({ listen: '127.0.0.1:0', registry: m.registry });
    let text = '';
    const scrapes: number[] = [];
    const stalls: number[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 250)); // past the reuse window: every scrape walks the table
        const t0 = performance.now();
        stalls.push(await stallOf(async () => (text = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text())));
        scrapes.push(performance.now() - t0);
      }
    } finally {
      await srv.close();
    }
    scrapes.sort((a, b) => a - b);
    stalls.sort((a, b) => a - b);
    console.log(
      `scrape cost at ${FLOWS.toLocaleString('en-US')} live flows, ${PORTS} services: ` +
        `synchronous collect() median ${collect.median.toFixed(2)} ms (max ${collect.max.toFixed(2)}); ` +
        `HTTP /metrics median ${scrapes[6].toFixed(2)} ms (max ${scrapes[11].toFixed(2)}), ` +
        `longest event-loop stall during a scrape median ${stalls[6].toFixed(2)} ms (max ${stalls[11].toFixed(2)}); ` +
        `${text.length.toLocaleString('en-US')} bytes`,
    );

    // promtool's linter has nothing to say about a scrape of this busy pipeline (defaults included).
    const lint = promtool(['check', 'metrics'], text);
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
    expect(text).toMatch(/^flowtap_active_flows\{proto="tcp",direction="inbound"\} 100000$/m);
  });
});
