/**
 * The metrics endpoint: `/metrics` (Prometheus text 0.0.4, or OpenMetrics
 * 1.0 when the Accept header asks for `application/openmetrics-text`),
 * `/healthz`, and `/` (a short HTML page linking them).
 * Default listen address: 127.0.0.1:9877 (`DEFAULT_LISTEN`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { OPENMETRICS_CONTENT_TYPE, openMetricsFamily, type PromJsonMetric } from './openmetrics.js';

export const DEFAULT_PORT = 9877;
export const DEFAULT_LISTEN = `127.0.0.1:${DEFAULT_PORT}`;

export interface HttpServerOptions {
  /** "host:port", "[v6]:port" or ":port" (= 127.0.0.1); port 0 picks a free port. */
  listen: string;
  registry: Registry;
  health?: () => { ok: boolean; detail?: string };
}

export interface HttpServerHandle {
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Splits "host:port"; throws a message naming the bad value. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`listen address "${listen}" is not HOST:PORT (examples: 127.0.0.1:9877, [::1]:9877, :9877)`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** True when the Accept header prefers OpenMetrics (what Prometheus sends by default). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && /application\/openmetrics-text/i.test(accept);
}

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function promValue(v: number): string {
  return v !== v ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v);
}

/** One family in Prometheus text 0.0.4, exactly as prom-client's `registry.metrics()` writes it. */
export function prometheusFamily(m: PromJsonMetric): string {
  const esc = (x: string) => x.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  const lines = [`# HELP ${m.name} ${esc(m.help)}`, `# TYPE ${m.name} ${String(m.type)}`];
  for (const v of m.values) {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v.labels)) if (x !== undefined) parts.push(`${k}="${typeof x === 'string' ? esc(x).replace(/"/g, '\\"') : x}"`);
    lines.push(`${v.metricName ?? m.name}${parts.length ? `{${parts.join(',')}}` : ''} ${promValue(v.value)}`);
  }
  return lines.join('\n');
}

const turn = () => new Promise<void>((ok) => setImmediate(ok));

/**
 * A scrape: every metric's collect runs at once (FlowtapMetrics shares one
 * pass over the flow table among them), then the text is built one family
 * per event-loop turn, so a large family does not hold up the capture loop
 * together with all the others.
 */
async function exposition(registry: Registry, openMetrics: boolean): Promise<string> {
  const metrics = (await registry.getMetricsAsJSON()) as unknown as PromJsonMetric[];
  const parts: string[] = [];
  for (const m of metrics) {
    parts.push(openMetrics ? openMetricsFamily(m) : prometheusFamily(m));
    await turn();
  }
  return openMetrics ? `${parts.join('\n')}\n# EOF\n` : `${parts.join('\n\n')}\n`;
}

function page(): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>flowtap</title></head>
<body>
<h1>flowtap</h1>
<p>Passive network traffic monitor.</p>
<ul>
<li><a href="metrics">/metrics</a> — Prometheus metrics (OpenMetrics when asked for in the Accept header)</li>
<li><a href="healthz">/healthz</a> — health</li>
</ul>
</body></html>
`;
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const { host, port } = parseListen(opts.listen);
  const registry = opts.registry;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    let status = 200;
    let type: string;
    let body: string;
    if (path === '/metrics') {
      const om = wantsOpenMetrics(req.headers.accept);
      type = om ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
      body = await exposition(registry, om);
    } else if (path === '/healthz') {
      const h = opts.health?.() ?? { ok: true };
      status = h.ok ? 200 : 503;
      type = 'text/plain; charset=utf-8';
      body = `${h.ok ? 'ok' : 'unhealthy'}${h.detail ? `: ${h.detail}` : ''}\n`;
    } else if (path === '/' || path === '/index.html') {
      type = 'text/html; charset=utf-8';
      body = page();
    } else {
      status = 404;
      type = 'text/plain; charset=utf-8';
      body = 'not found\n';
    }
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`error: ${(e as Error).message}\n`);
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const addr = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: addr.address,
    port: addr.port,
    /** Stops accepting, lets a scrape in flight finish (2 s at most), then resolves. Idempotent. */
    close() {
      closing ??= new Promise<void>((ok) => {
        const force = setTimeout(() => server.closeAllConnections(), 2000);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          ok();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
