/**
 * A strict little reader of OpenMetrics text for tests: checks the
 * structure the spec requires of flowtap's output (TYPE before samples,
 * families and metrics not interleaved, timestamps increasing per metric,
 * `# EOF` last) and returns the samples.
 */

export interface OmSample {
  family: string;
  type: string;
  /** Sample name (with _total, _bucket, ...). */
  name: string;
  labels: Record<string, string>;
  /** Metric identity within the family: the labels without `le`. */
  metric: string;
  value: number;
  ts?: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (\S+)(?: (\S+))?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescape(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

const SUFFIXES: Record<string, string[]> = {
  counter: ['_total', '_created'],
  gauge: [''],
  info: ['_info'],
  histogram: ['_bucket', '_count', '_sum', '_created'],
  unknown: [''],
};

export function parseOpenMetrics(text: string): OmSample[] {
  if (!text.endsWith('# EOF\n') && !text.endsWith('# EOF')) throw new Error('no "# EOF" at the end');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.pop() !== '# EOF') throw new Error('"# EOF" is not the last line');
  const out: OmSample[] = [];
  const seenFamilies = new Set<string>();
  let family = '';
  let type = 'unknown';
  let doneMetrics = new Set<string>();
  let metric = '';
  let started = false;
  const lastTs = new Map<string, number>();
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line.startsWith('#')) {
      const m = /^# (TYPE|HELP|UNIT) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/.exec(line);
      if (!m) throw new Error(`bad comment, ${where}`);
      if (m[2] !== family) {
        if (seenFamilies.has(m[2])) throw new Error(`family ${m[2]} interleaved, ${where}`);
        seenFamilies.add(m[2]);
        family = m[2];
        type = 'unknown';
        doneMetrics = new Set();
        metric = '';
        started = false;
      }
      if (m[1] === 'TYPE') type = m[3];
      return;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`bad sample, ${where}`);
    const name = m[1];
    const suffix = SUFFIXES[type]?.find((s) => name === family + s);
    if (suffix === undefined) throw new Error(`sample ${name} outside its family (${family} ${type}), ${where}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = unescape(l[2]);
    const id = Object.entries(labels).filter(([k]) => k !== 'le').map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',');
    if (!started || id !== metric) {
      if (started) doneMetrics.add(metric);
      if (doneMetrics.has(id)) throw new Error(`metric {${id}} of ${family} interleaved, ${where}`);
      metric = id;
      started = true;
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value, ${where}`);
    const ts = m[4] !== undefined ? Number(m[4]) : undefined;
    if (ts !== undefined) {
      const key = `${name}{${JSON.stringify(labels)}}`;
      const prev = lastTs.get(key);
      if (prev !== undefined && !(ts > prev)) throw new Error(`timestamps not increasing, ${where}`);
      lastTs.set(key, ts);
    }
    out.push({ family, type, name, labels, metric: id, value, ts });
  });
  return out;
}
