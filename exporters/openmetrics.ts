/**
 * OpenMetrics text (https://prometheus.io/docs/specs/om/open_metrics_spec/):
 *
 *  - `registryToOpenMetrics()`: a scrape of a prom-client registry as
 *    OpenMetrics 1.0 (for `/metrics` when the scraper asks for it).
 *    prom-client's own OpenMetrics mode renames counters in place (it
 *    strips `_total` from the shared metric objects), so it is not used.
 *  - `OpenMetricsBackfill`: `flowtap analyze --openmetrics OUT` — every
 *    family sampled at each step boundary of packet time, with the
 *    capture's own timestamps, for `promtool tsdb create-blocks-from
 *    openmetrics`.
 *
 * The spec forbids interleaving families, and within a family interleaving
 * metrics (label sets): all samples of one series come together, in time
 * order. Samples are produced step by step, so the backfill writes them as
 * fixed-size binary records (series, step, values) to one temporary file
 * per family and, at the end, transposes each file into series order
 * (in passes of at most 64 MB) while writing the text.
 */
import { closeSync, mkdtempSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Pipeline } from '../agent/pipeline.js';
import type { FlowtapMetrics, MetricFamily } from './metrics.js';

export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** Label value / HELP escaping (backslash, double quote, line feed). */
export function omEscape(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** A sample value: integers without a decimal point, NaN and infinities spelled as the spec says. */
export function omNumber(v: number): string {
  if (v !== v) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Canonical `le` label value: Go's %g with ".0" when there is neither a point nor an exponent. */
export function omLe(b: number | string): string {
  if (b === '+Inf' || b === Infinity) return '+Inf';
  const x = typeof b === 'number' ? b : Number(b);
  let s = String(x);
  const m = /^(\d(?:\.\d+)?)e([+-])(\d+)$/.exec(s);
  if (m) s = `${m[1]}e${m[2]}${m[3].padStart(2, '0')}`;
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** OpenMetrics family name and type of an exposition family. */
function omFamily(name: string, type: string): { family: string; type: string } {
  if (type === 'counter') return { family: name.endsWith('_total') ? name.slice(0, -6) : name, type };
  if (type === 'info') return { family: name.endsWith('_info') ? name.slice(0, -5) : name, type };
  return { family: name, type };
}

function labelPairs(names: readonly string[], values: readonly string[]): string {
  let s = '';
  for (let i = 0; i < names.length; i++) s += `${i ? ',' : ''}${names[i]}="${omEscape(values[i])}"`;
  return s;
}

/** A family as prom-client's `getMetricsAsJSON()` returns it. */
export interface PromJsonMetric {
  name: string;
  help: string;
  type: unknown;
  values: { value: number; labels: Partial<Record<string, string | number>>; metricName?: string }[];
}

/** One family of a prom-client scrape as OpenMetrics 1.0 lines (no trailing newline). */
export function openMetricsFamily(m: PromJsonMetric): string {
  let type = String(m.type);
  if (type === 'gauge' && m.name.endsWith('_info') && m.values.every((v) => v.value === 1)) type = 'info';
  if (type !== 'counter' && type !== 'gauge' && type !== 'histogram' && type !== 'info' && type !== 'summary') type = 'unknown';
  const { family } = omFamily(m.name, type);
  const out = [`# TYPE ${family} ${type}`, `# HELP ${family} ${omEscape(m.help)}`];
  for (const v of m.values) {
    let name = v.metricName ?? m.name;
    if (type === 'counter' && !name.endsWith('_total')) name += '_total';
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v.labels)) if (x !== undefined) parts.push(`${k}="${k === 'le' ? omLe(x) : omEscape(String(x))}"`);
    out.push(`${name}${parts.length ? `{${parts.join(',')}}` : ''} ${omNumber(v.value)}`);
  }
  return out.join('\n');
}

/** A prom-client registry's JSON (`getMetricsAsJSON()`) as OpenMetrics 1.0 text, ending with `# EOF`. */
export function registryToOpenMetrics(metrics: readonly PromJsonMetric[]): string {
  return `${metrics.map(openMetricsFamily).join('\n')}\n# EOF\n`;
}

// ------------------------------------------------------------------ backfill

/** Records buffered per family before a write (doubles). */
const CHUNK_DOUBLES = 1 << 16;
/** Largest part of a family's record file transposed in memory at once. */
const PASS_BYTES = 64 << 20;
const OUT_FLUSH = 1 << 20;

interface FamilyState {
  fam: MetricFamily;
  /** Series key -> series number in this file. */
  index: Map<string, number>;
  keys: string[];
  /** Label pairs text (no braces) per series. */
  pairs: string[];
  fd: number;
  path: string;
  chunk: Float64Array;
  used: number;
  records: number;
}

export interface BackfillStats {
  path: string;
  /** Step boundaries sampled (the final sample included). */
  steps: number;
  /** Sample lines written. */
  samples: number;
  bytes: number;
  /** Unix seconds of the first and last sample (NaN without packets). */
  firstTs: number;
  lastTs: number;
}

/**
 * Samples a FlowtapMetrics at every step boundary of packet time into an
 * OpenMetrics file. Registers itself with `pipeline.onStep`; call
 * `finish()` after `pipeline.finish()` for the final sample (at the first
 * boundary at or after the last packet, later than every earlier sample)
 * and the file; `abort()` on failure.
 */
export class OpenMetricsBackfill {
  readonly stepNs: number;
  private readonly tmp: string;
  private readonly fams: FamilyState[] = [];
  private readonly steps: number[] = [];
  private lastBoundary = -Infinity;
  private closed = false;
  private readonly passBytes: number;

  constructor(
    private readonly metrics: FlowtapMetrics,
    private readonly pipeline: Pipeline,
    readonly path: string,
    stepSeconds: number,
    opts: { passBytes?: number } = {},
  ) {
    this.passBytes = opts.passBytes ?? PASS_BYTES;
    this.stepNs = Math.round(stepSeconds * 1e9);
    if (!(this.stepNs >= 1e6)) throw new RangeError(`step must be at least 1 ms (got ${stepSeconds} s)`);
    this.tmp = mkdtempSync(join(dirname(resolve(path)), '.flowtap-openmetrics-'));
    metrics.families.forEach((fam, i) => {
      const file = join(this.tmp, `${i}.bin`);
      this.fams.push({ fam, index: new Map(), keys: [], pairs: [], fd: openSync(file, 'w+'), path: file, chunk: new Float64Array(CHUNK_DOUBLES), used: 0, records: 0 });
    });
    pipeline.onStep(this.stepNs, (b) => this.sample(b));
  }

  /** Samples every family at boundary `b` (ns on the pipeline clock). */
  sample(b: number): void {
    if (this.closed || b <= this.lastBoundary) return;
    const families = this.metrics.collect(b, { refreshTop: true });
    const step = this.steps.length;
    this.steps.push(b);
    this.lastBoundary = b;
    for (let f = 0; f < families.length; f++) {
      const st = this.fams[f];
      const fam = families[f];
      const rows = fam.rows;
      const w = fam.width;
      const rec = 2 + w;
      for (let r = 0; r < rows.keys.length; r++) {
        const key = rows.keys[r];
        let idx = st.index.get(key);
        if (idx === undefined) {
          idx = st.keys.length;
          st.index.set(key, idx);
          st.keys.push(key);
          st.pairs.push(labelPairs(fam.labelNames, rows.labels[r]));
        }
        if (st.used + rec > st.chunk.length) this.flushChunk(st);
        const c = st.chunk;
        let o = st.used;
        c[o++] = idx;
        c[o++] = step;
        for (let j = 0; j < w; j++) c[o++] = rows.values[r * w + j];
        st.used = o;
        st.records++;
      }
    }
  }

  private flushChunk(st: FamilyState): void {
    if (st.used === 0) return;
    const buf = Buffer.from(st.chunk.buffer, 0, st.used * 8);
    let off = 0;
    while (off < buf.length) off += writeSync(st.fd, buf, off);
    st.used = 0;
  }

  /** Unix-seconds text of a boundary (millisecond digits at most). */
  private ts(b: number): string {
    const clock = this.pipeline.clock;
    clock.split(b);
    let sec = clock.sec;
    let ms = Math.round(clock.nsec / 1e6);
    if (ms >= 1000) {
      sec++;
      ms -= 1000;
    }
    return ms === 0 ? String(sec) : `${sec}.${String(ms).padStart(3, '0')}`;
  }

  /** Final sample, then the file. */
  finish(): BackfillStats {
    const p = this.pipeline;
    if (p.packets > 0) {
      let b = Math.ceil(p.lastT / this.stepNs) * this.stepNs;
      if (b <= this.lastBoundary) b = this.lastBoundary + this.stepNs;
      this.sample(b);
    }
    this.closed = true;
    const partial = `${this.path}.partial`;
    const out = openSync(partial, 'w');
    let pending: string[] = [];
    let pendingLen = 0;
    let bytes = 0;
    let samples = 0;
    const write = (s: string) => {
      pending.push(s);
      pendingLen += s.length;
      if (pendingLen >= OUT_FLUSH) flush();
    };
    const flush = () => {
      if (pending.length === 0) return;
      const buf = Buffer.from(pending.join(''));
      let off = 0;
      while (off < buf.length) off += writeSync(out, buf, off);
      bytes += buf.length;
      pending = [];
      pendingLen = 0;
    };
    try {
      const tsText = this.steps.map((b) => this.ts(b));
      for (const st of this.fams) {
        this.flushChunk(st);
        const fam = st.fam;
        const { family, type } = omFamily(fam.name, fam.type);
        write(`# TYPE ${family} ${type}\n# HELP ${family} ${omEscape(fam.help)}\n`);
        samples += this.writeFamily(st, family, tsText, write);
        closeSync(st.fd);
      }
      write('# EOF\n');
      flush();
      closeSync(out);
      renameSync(partial, this.path);
    } catch (e) {
      try {
        closeSync(out);
      } catch {
        // already closed
      }
      rmSync(partial, { force: true });
      throw e;
    } finally {
      rmSync(this.tmp, { recursive: true, force: true });
    }
    const n = this.steps.length;
    const epoch = (b: number) => p.clock.base + b / 1e9;
    return { path: this.path, steps: n, samples, bytes, firstTs: n ? epoch(this.steps[0]) : NaN, lastTs: n ? epoch(this.steps[n - 1]) : NaN };
  }

  /** Writes one family's samples grouped by series (label order), each series in time order. Returns the sample lines written. */
  private writeFamily(st: FamilyState, family: string, tsText: string[], write: (s: string) => void): number {
    const fam = st.fam;
    const w = fam.width;
    const rec = 2 + w;
    const nSeries = st.keys.length;
    if (st.records === 0) return 0;
    // Pass 1: records per series.
    const counts = new Int32Array(nSeries);
    this.scan(st, rec, (c, o) => counts[c[o]]++);
    const order = Array.from({ length: nSeries }, (_, i) => i).sort((a, b) => (st.keys[a] < st.keys[b] ? -1 : st.keys[a] > st.keys[b] ? 1 : 0));
    const lines = fam.type === 'histogram' ? fam.bounds!.length + 3 : 1;
    const maxRecs = Math.max(1, Math.floor(this.passBytes / (rec * 8)));
    let samples = 0;
    for (let from = 0; from < order.length; ) {
      // A pass: consecutive series (in output order) whose records fit in memory.
      let to = from;
      let total = 0;
      while (to < order.length && (to === from || total + counts[order[to]] <= maxRecs)) total += counts[order[to++]];
      const pos = new Int32Array(nSeries).fill(-1);
      let at = 0;
      for (let i = from; i < to; i++) {
        pos[order[i]] = at;
        at += counts[order[i]];
      }
      const start = Int32Array.from(pos);
      const buf = new Float64Array(total * rec);
      this.scan(st, rec, (c, o) => {
        const s = c[o];
        const p = pos[s];
        if (p < 0) return;
        buf.set(c.subarray(o, o + rec), p * rec);
        pos[s] = p + 1;
      });
      for (let i = from; i < to; i++) {
        const s = order[i];
        const pairs = st.pairs[s];
        for (let r = start[s]; r < start[s] + counts[s]; r++) {
          const o = r * rec;
          const ts = tsText[buf[o + 1]];
          write(this.format(fam, family, pairs, buf, o + 2, ts));
          samples += lines;
        }
      }
      from = to;
    }
    return samples;
  }

  private format(fam: MetricFamily, family: string, pairs: string, v: Float64Array, o: number, ts: string): string {
    const lbl = pairs ? `{${pairs}}` : '';
    switch (fam.type) {
      case 'counter':
        return `${family}_total${lbl} ${omNumber(v[o])} ${ts}\n`;
      case 'info':
        return `${family}_info${lbl} 1 ${ts}\n`;
      case 'gauge':
        return `${family}${lbl} ${omNumber(v[o])} ${ts}\n`;
      default: {
        const bounds = fam.bounds!;
        const sep = pairs ? `${pairs},` : '';
        let s = '';
        for (let b = 0; b < bounds.length; b++) s += `${family}_bucket{${sep}le="${omLe(bounds[b])}"} ${omNumber(v[o + b])} ${ts}\n`;
        s += `${family}_bucket{${sep}le="+Inf"} ${omNumber(v[o + bounds.length])} ${ts}\n`;
        s += `${family}_count${lbl} ${omNumber(v[o + bounds.length])} ${ts}\n`;
        s += `${family}_sum${lbl} ${omNumber(v[o + bounds.length + 1])} ${ts}\n`;
        return s;
      }
    }
  }

  /** Calls fn(block, offset) for every record of a family file, in file order. */
  private scan(st: FamilyState, rec: number, fn: (c: Float64Array, o: number) => void): void {
    const size = statSync(st.path).size;
    const recBytes = rec * 8;
    const per = Math.max(1, Math.floor((8 << 20) / recBytes));
    const block = Buffer.alloc(per * recBytes);
    const view = new Float64Array(block.buffer, block.byteOffset, per * rec);
    for (let pos = 0; pos < size; ) {
      const want = Math.min(block.length, size - pos);
      let got = 0;
      while (got < want) {
        const n = readSync(st.fd, block, got, want - got, pos + got);
        if (n <= 0) throw new Error(`openmetrics: short read of ${st.path}`);
        got += n;
      }
      const recs = got / recBytes;
      for (let r = 0; r < recs; r++) fn(view, r * rec);
      pos += got;
    }
  }

  /** Drops the temporary files (the output is not written). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    for (const st of this.fams) {
      try {
        closeSync(st.fd);
      } catch {
        // already closed
      }
    }
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
