/**
 * Configuration of `flowtap run`: one typed `Config`, its `DEFAULT_*`
 * values, and the three places a setting can come from, all mapped onto the
 * same fields by the same key names:
 *
 *   command line   --buffer-size 64MiB           (long flag = the key)
 *   environment    FLOWTAP_BUFFER_SIZE=64MiB      (FLOWTAP_ + key, upper case, '-' → '_')
 *   YAML file      buffer-size: 64MiB             (--config FILE or FLOWTAP_CONFIG)
 *
 * Precedence, one rule for every key: command line > environment > file >
 * default. A list (interface, local-net) given by a higher source replaces
 * the lower one's list whole. Every value is parsed and range-checked at
 * start-up; an error names the key and where the bad value came from.
 *
 * The YAML file is the flat `key: value` subset (plus lists, inline `[a, b]`
 * or block `- a` lines, comments and quoted strings), parsed here: nothing
 * nested is needed, so no YAML package is.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_FLOWS, DEFAULT_TIMEOUTS, type FlowTimeouts } from './flows/table.js';
import { LocalNets } from './flows/localnets.js';
import { DEFAULT_MAX_SERIES, DEFAULT_TOP_FLOWS } from '../exporters/metrics.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface Config {
  /** Capture interfaces (`any` = every interface, one Linux cooked capture). */
  interfaces: string[];
  /** BPF filter ('' = every packet). */
  filter: string;
  /** Bytes kept of each packet. */
  snaplen: number;
  /** Kernel ring buffer per capture, bytes. */
  bufferSize: number;
  promisc: boolean;
  /** Metrics HTTP listener, host:port ([v6]:port; port 0 = any free port; ":port" = 127.0.0.1). */
  listen: string;
  /** NDJSON of flow records, appended; reopened on SIGHUP. */
  flows?: string;
  /** Overrides the interface addresses as "this host" (CIDRs or addresses); empty = discover. */
  localNets: string[];
  maxFlows: number;
  timeouts: FlowTimeouts;
  /** Series per metric family at most (exporters/metrics.ts). */
  maxSeries: number;
  /** Flows in flowtap_top_flow_bytes (0 = off). */
  topFlows: number;
  /** Where procfs is mounted (a container with the host's PID namespace: the host's /proc). */
  proc: string;
  /** Attribute local flows to processes (pid, comm). */
  processes: boolean;
  /** Shortest time between two /proc scans, seconds. */
  procInterval: number;
  /** How often the interface addresses are re-read, seconds. */
  addrRefresh: number;
  /** The YAML file that was read, if any. */
  configFile?: string;
}

export const DEFAULT_INTERFACES: readonly string[] = Object.freeze(['any']);
export const DEFAULT_SNAPLEN = 256;
/**
 * 32 MiB. With TPACKET_V3 a packet takes its captured bytes plus ~80 bytes
 * of headers in the ring, so at snaplen 256 this holds ~100 k packets:
 * a third of a second at 300 k packets/s while JS is busy elsewhere
 * (bench/live.ts measures it; docs/scaling.md has the numbers).
 */
export const DEFAULT_BUFFER_SIZE = 32 << 20;
export const DEFAULT_PROMISC = true;
export const DEFAULT_LISTEN = '127.0.0.1:9877';
export const DEFAULT_PROC = '/proc';
export const DEFAULT_PROCESSES = true;
export const DEFAULT_PROC_INTERVAL = 1;
export const DEFAULT_ADDR_REFRESH = 2;
export { DEFAULT_MAX_FLOWS, DEFAULT_TIMEOUTS, DEFAULT_MAX_SERIES, DEFAULT_TOP_FLOWS };

export const MIN_SNAPLEN = 64;
export const MAX_SNAPLEN = 262144;
export const MIN_BUFFER_SIZE = 64 << 10;
/** libpcap takes the size as an int. */
export const MAX_BUFFER_SIZE = 2 ** 31 - 1;

export function defaultConfig(): Config {
  return {
    interfaces: [...DEFAULT_INTERFACES],
    filter: '',
    snaplen: DEFAULT_SNAPLEN,
    bufferSize: DEFAULT_BUFFER_SIZE,
    promisc: DEFAULT_PROMISC,
    listen: DEFAULT_LISTEN,
    localNets: [],
    maxFlows: DEFAULT_MAX_FLOWS,
    timeouts: { ...DEFAULT_TIMEOUTS },
    maxSeries: DEFAULT_MAX_SERIES,
    topFlows: DEFAULT_TOP_FLOWS,
    proc: DEFAULT_PROC,
    processes: DEFAULT_PROCESSES,
    procInterval: DEFAULT_PROC_INTERVAL,
    addrRefresh: DEFAULT_ADDR_REFRESH,
  };
}

// ------------------------------------------------------------------ keys

type Kind = 'list' | 'string' | 'int' | 'size' | 'bool' | 'duration';

interface KeyDef {
  kind: Kind;
  /** Applies a parsed value to the config. */
  set(c: Config, v: never): void;
  short?: string;
  /** Placeholder in the usage text. */
  arg?: string;
  help: string;
}

const timeoutKey = (k: keyof FlowTimeouts, help: string): KeyDef => ({
  kind: 'duration',
  set: (c, v: number) => (c.timeouts[k] = v),
  help,
});

/** Every setting, by its key (= long flag, YAML key; env FLOWTAP_<KEY>). */
export const KEYS: Readonly<Record<string, KeyDef>> = {
  interface: { kind: 'list', short: 'i', arg: 'IFACE', set: (c, v: string[]) => (c.interfaces = v), help: `capture interface (repeatable; env/YAML: a list), \`any\` = all (default ${DEFAULT_INTERFACES.join(',')})` },
  filter: { kind: 'string', short: 'f', arg: 'BPF', set: (c, v: string) => (c.filter = v), help: 'BPF filter expression (default: every packet)' },
  snaplen: { kind: 'int', set: (c, v: number) => (c.snaplen = v), help: `bytes kept of each packet, ${MIN_SNAPLEN}..${MAX_SNAPLEN} (default ${DEFAULT_SNAPLEN})` },
  'buffer-size': { kind: 'size', set: (c, v: number) => (c.bufferSize = v), help: `kernel capture ring per interface, e.g. 64MiB (default ${DEFAULT_BUFFER_SIZE >> 20}MiB)` },
  promisc: { kind: 'bool', set: (c, v: boolean) => (c.promisc = v), help: 'promiscuous mode (default on; --no-promisc turns it off)' },
  listen: { kind: 'string', arg: 'HOST:PORT', set: (c, v: string) => (c.listen = v), help: `metrics HTTP listener HOST:PORT (default ${DEFAULT_LISTEN}; 0.0.0.0:PORT or [::]:PORT = every address)` },
  flows: { kind: 'string', arg: 'PATH', set: (c, v: string) => (c.flows = v === '' ? undefined : v), help: 'append NDJSON flow records to PATH (reopened on SIGHUP)' },
  'local-net': { kind: 'list', arg: 'CIDR', set: (c, v: string[]) => (c.localNets = v), help: "this host's addresses/networks (repeatable); overrides the interface addresses" },
  'max-flows': { kind: 'int', set: (c, v: number) => (c.maxFlows = v), help: `live flows kept at most (default ${DEFAULT_MAX_FLOWS})` },
  'idle-timeout-tcp': timeoutKey('tcpEstablished', `established TCP idle timeout (default ${DEFAULT_TIMEOUTS.tcpEstablished}s)`),
  'idle-timeout-tcp-closed': timeoutKey('tcpClosed', `after FIN both ways or RST (default ${DEFAULT_TIMEOUTS.tcpClosed}s)`),
  'idle-timeout-tcp-attempt': timeoutKey('tcpAttempt', `not (yet) established (default ${DEFAULT_TIMEOUTS.tcpAttempt}s)`),
  'idle-timeout-udp': timeoutKey('udp', `(default ${DEFAULT_TIMEOUTS.udp}s)`),
  'idle-timeout-icmp': timeoutKey('icmp', `(default ${DEFAULT_TIMEOUTS.icmp}s)`),
  'idle-timeout-other': timeoutKey('other', `other IP protocols (default ${DEFAULT_TIMEOUTS.other}s)`),
  'active-timeout': timeoutKey('active', `interim record for longer flows (default ${DEFAULT_TIMEOUTS.active}s, 0 = off)`),
  'max-series': { kind: 'int', set: (c, v: number) => (c.maxSeries = v), help: `series per metric family at most, the rest folded into "other" (default ${DEFAULT_MAX_SERIES})` },
  'top-flows': { kind: 'int', set: (c, v: number) => (c.topFlows = v), help: `flows in flowtap_top_flow_bytes (default ${DEFAULT_TOP_FLOWS}, 0 = off)` },
  proc: { kind: 'string', arg: 'PATH', set: (c, v: string) => (c.proc = v), help: `procfs to read sockets and processes from (default ${DEFAULT_PROC})` },
  processes: { kind: 'bool', set: (c, v: boolean) => (c.processes = v), help: 'attribute local flows to processes (default on; --no-processes turns it off)' },
  'proc-interval': { kind: 'duration', set: (c, v: number) => (c.procInterval = v), help: `shortest time between /proc scans (default ${DEFAULT_PROC_INTERVAL}s)` },
  'addr-refresh': { kind: 'duration', set: (c, v: number) => (c.addrRefresh = v), help: `how often interface addresses are re-read (default ${DEFAULT_ADDR_REFRESH}s)` },
};

export function envName(key: string): string {
  return 'FLOWTAP_' + key.toUpperCase().replaceAll('-', '_');
}

// ------------------------------------------------------------------ value parsers (text → typed)

/** Parses "300", "300s", "5m", "1.5h", "250ms" into seconds. */
export function parseDurationText(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration (examples: 30s, 5m, 250ms)`);
  const v = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? v / 1000 : unit === 'm' ? v * 60 : unit === 'h' ? v * 3600 : unit === 'd' ? v * 86400 : v;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1 << 20, mb: 1e6, mib: 1 << 20,
  g: 1 << 30, gb: 1e9, gib: 1 << 30,
};

/** Parses "33554432", "32MiB", "32m", "64 KiB", "1GB" into bytes. */
export function parseSizeText(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`"${text}" is not a size (examples: 33554432, 32MiB, 512KiB)`);
  const v = Math.round(Number(m[1]) * unit);
  return v;
}

function parseBoolText(text: string): boolean {
  const t = text.trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(t)) return true;
  if (['false', 'no', 'off', '0'].includes(t)) return false;
  throw new Error(`"${text}" is not a boolean (true/false)`);
}

function parseIntText(text: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new Error(`"${text}" is not a whole number`);
  return Number(t);
}

/** A list from an env var or a scalar: comma and/or whitespace separated. */
function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter((x) => x !== '');
}

interface Raw {
  value: string | string[];
  /** Where it came from, for messages: "--snaplen", "FLOWTAP_SNAPLEN", "flowtap.yaml:3". */
  source: string;
}

function convert(key: string, def: KeyDef, raw: Raw): unknown {
  const v = raw.value;
  const scalar = (): string => {
    if (Array.isArray(v)) {
      if (v.length !== 1) throw new Error('takes one value, not a list');
      return v[0];
    }
    return v;
  };
  switch (def.kind) {
    case 'list': {
      const items = Array.isArray(v) ? v.flatMap((x) => splitList(x)) : splitList(v);
      return items;
    }
    case 'string':
      return scalar();
    case 'int':
      return parseIntText(scalar());
    case 'size':
      return parseSizeText(scalar());
    case 'bool':
      return parseBoolText(scalar());
    case 'duration':
      return parseDurationText(scalar());
  }
  throw new Error(`unknown kind for ${key}`);
}

// ------------------------------------------------------------------ YAML subset

/**
 * Parses the flat YAML subset: `key: value` lines, `key: [a, b]`, `key:`
 * followed by `- item` lines, `#` comments, single- or double-quoted
 * strings. Returns each key with its line. Throws naming file and line for
 * anything else (nesting, anchors, multi-line strings, repeated keys).
 */
export function parseFlatYaml(text: string, file = 'config'): Map<string, { value: string | string[]; line: number }> {
  const out = new Map<string, { value: string | string[]; line: number }>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let listKey: string | undefined;
  const fail = (n: number, msg: string): never => {
    throw new ConfigError(`${file}:${n}: ${msg}`);
  };
  const unquote = (s: string, n: number): string => {
    if (s.startsWith('"')) {
      if (!s.endsWith('"') || s.length < 2) fail(n, `unterminated string ${s}`);
      try {
        return JSON.parse(s) as string;
      } catch {
        return fail(n, `bad double-quoted string ${s}`);
      }
    }
    if (s.startsWith("'")) {
      if (!s.endsWith("'") || s.length < 2) fail(n, `unterminated string ${s}`);
      return s.slice(1, -1).replaceAll("''", "'");
    }
    if (/^[&*!|>%@`{]/.test(s)) fail(n, `unsupported YAML syntax "${s}" (only flat key: value, lists and quoted strings)`);
    return s;
  };
  /** Drops a trailing " # comment" outside quotes. */
  const stripComment = (s: string): string => {
    let q = '';
    for (let i = 0; i < s.length; i++) {
      const ch = s[i];
      if (q) {
        if (ch === q) q = '';
      } else if (ch === '"' || ch === "'") {
        q = ch;
      } else if (ch === '#' && (i === 0 || /\s/.test(s[i - 1]))) {
        return s.slice(0, i);
      }
    }
    return s;
  };
  const splitInline = (s: string, n: number): string[] => {
    const items: string[] = [];
    let cur = '';
    let q = '';
    for (const ch of s) {
      if (q) {
        cur += ch;
        if (ch === q) q = '';
      } else if (ch === '"' || ch === "'") {
        q = ch;
        cur += ch;
      } else if (ch === ',') {
        items.push(cur.trim());
        cur = '';
      } else {
        cur += ch;
      }
    }
    if (cur.trim() !== '' || items.length > 0) items.push(cur.trim());
    return items.map((x) => unquote(x, n));
  };
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const raw = stripComment(lines[i]).replace(/\s+$/, '');
    if (raw.trim() === '' || raw === '---') continue;
    if (/\t/.test(raw.match(/^\s*/)![0])) fail(n, 'tabs are not allowed for indentation');
    const item = /^\s+-\s+(.*)$|^-\s+(.*)$/.exec(raw);
    if (item) {
      if (listKey === undefined) fail(n, 'a list item without a key above it');
      const entry = out.get(listKey!)!;
      (entry.value as string[]).push(unquote((item[1] ?? item[2]).trim(), n));
      continue;
    }
    if (/^\s/.test(raw)) fail(n, 'nested mappings are not supported (flat key: value only)');
    const kv = /^([A-Za-z0-9_.-]+)\s*:(?:\s+(.*))?$/.exec(raw);
    if (!kv) fail(n, `expected "key: value", got "${raw.trim()}"`);
    const key = kv![1];
    if (out.has(key)) fail(n, `key "${key}" given twice`);
    const rest = (kv![2] ?? '').trim();
    listKey = undefined;
    if (rest === '') {
      out.set(key, { value: [], line: n });
      listKey = key;
    } else if (rest.startsWith('[')) {
      if (!rest.endsWith(']')) fail(n, `unterminated list ${rest}`);
      out.set(key, { value: splitInline(rest.slice(1, -1), n), line: n });
    } else {
      out.set(key, { value: unquote(rest, n), line: n });
    }
  }
  return out;
}

// ------------------------------------------------------------------ sources

export interface LoadedConfig {
  config: Config;
  help: boolean;
  /** Where each key that is not a default came from. */
  sources: Record<string, string>;
}

/**
 * Builds the Config from command-line arguments (after `run`), the
 * environment and the YAML file, in that order of precedence, then
 * validates it. Throws ConfigError naming the bad key and its source.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const [key, def] of Object.entries(KEYS)) {
    if (def.kind === 'bool') {
      options[key] = { type: 'boolean' };
      options[`no-${key}`] = { type: 'boolean' };
    } else {
      options[key] = { type: 'string', multiple: def.kind === 'list', ...(def.short ? { short: def.short } : {}) };
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new ConfigError((e as Error).message.replace(/\. To specify a positional argument.*$/, ''));
  }
  const cli = parsed.values as Record<string, string | string[] | boolean | undefined>;

  // Lowest to highest: file, environment, command line.
  const layers: Map<string, Raw>[] = [];
  const configFile = (cli.config as string | undefined) ?? (env.FLOWTAP_CONFIG || undefined);
  if (configFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (e) {
      const how = cli.config !== undefined ? '--config' : 'FLOWTAP_CONFIG';
      throw new ConfigError(`config: cannot read ${configFile} (from ${how}): ${(e as Error).message}`);
    }
    const layer = new Map<string, Raw>();
    for (const [key, { value, line }] of parseFlatYaml(text, configFile)) {
      if (!(key in KEYS)) {
        throw new ConfigError(`${configFile}:${line}: unknown key "${key}" (known: ${Object.keys(KEYS).join(', ')})`);
      }
      layer.set(key, { value, source: `${configFile}:${line}` });
    }
    layers.push(layer);
  }
  const envLayer = new Map<string, Raw>();
  for (const key of Object.keys(KEYS)) {
    const name = envName(key);
    const v = env[name];
    if (v !== undefined && v !== '') envLayer.set(key, { value: v, source: name });
  }
  layers.push(envLayer);
  const cliLayer = new Map<string, Raw>();
  for (const [key, def] of Object.entries(KEYS)) {
    if (def.kind === 'bool') {
      const yes = cli[key] === true;
      const no = cli[`no-${key}`] === true;
      if (yes && no) throw new ConfigError(`${key}: both --${key} and --no-${key} given`);
      if (yes || no) cliLayer.set(key, { value: yes ? 'true' : 'false', source: yes ? `--${key}` : `--no-${key}` });
      continue;
    }
    const v = cli[key];
    if (v === undefined) continue;
    const flag = def.short ? `-${def.short}/--${key}` : `--${key}`;
    cliLayer.set(key, { value: v as string | string[], source: flag });
  }
  layers.push(cliLayer);

  const merged = new Map<string, Raw>();
  for (const layer of layers) for (const [k, r] of layer) merged.set(k, r);

  const config = defaultConfig();
  if (configFile !== undefined) config.configFile = configFile;
  const sources: Record<string, string> = {};
  for (const [key, raw] of merged) {
    const def = KEYS[key];
    let value: unknown;
    try {
      value = convert(key, def, raw);
    } catch (e) {
      throw new ConfigError(`${key}: ${(e as Error).message} (from ${raw.source})`);
    }
    (def.set as (c: Config, v: unknown) => void)(config, value);
    sources[key] = raw.source;
  }
  validate(config, sources);
  return { config, help: cli.help === true, sources };
}

// ------------------------------------------------------------------ validation

/**
 * Host and port of a listen address: "127.0.0.1:9877", "[::1]:9877",
 * "0.0.0.0:9877" / "[::]:9877" (every address); ":9877" is 127.0.0.1:9877
 * (as exporters/http.ts reads it).
 */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not HOST:PORT (examples: 127.0.0.1:9877, [::1]:9877, 0.0.0.0:9877)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is out of range 0..65535`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/**
 * Checks ranges and consistency of a Config. Throws ConfigError naming the
 * field (and, given `sources`, where its value came from).
 */
export function validate(c: Config, sources: Record<string, string> = {}): void {
  const bad = (key: string, msg: string): never => {
    const src = sources[key];
    throw new ConfigError(`${key}: ${msg}${src ? ` (from ${src})` : ''}`);
  };
  if (c.interfaces.length === 0) bad('interface', 'no capture interface given');
  const seen = new Set<string>();
  for (const i of c.interfaces) {
    if (!/^[^\s/]{1,15}$/.test(i) && i !== 'any') bad('interface', `"${i}" is not an interface name`);
    if (seen.has(i)) bad('interface', `"${i}" given twice`);
    seen.add(i);
  }
  if (seen.has('any') && seen.size > 1) bad('interface', '"any" already captures every interface; give it alone');
  if (!Number.isInteger(c.snaplen) || c.snaplen < MIN_SNAPLEN || c.snaplen > MAX_SNAPLEN) {
    bad('snaplen', `${c.snaplen} is outside ${MIN_SNAPLEN}..${MAX_SNAPLEN}`);
  }
  if (!Number.isInteger(c.bufferSize) || c.bufferSize < MIN_BUFFER_SIZE || c.bufferSize > MAX_BUFFER_SIZE) {
    bad('buffer-size', `${c.bufferSize} bytes is outside ${MIN_BUFFER_SIZE} (64KiB)..${MAX_BUFFER_SIZE} (2GiB - 1)`);
  }
  try {
    parseListen(c.listen);
  } catch (e) {
    bad('listen', (e as Error).message);
  }
  if (c.flows !== undefined && c.flows.trim() === '') bad('flows', 'empty path');
  try {
    LocalNets.parse(c.localNets);
  } catch (e) {
    bad('local-net', (e as Error).message);
  }
  if (!Number.isInteger(c.maxFlows) || c.maxFlows < 1) bad('max-flows', `${c.maxFlows} is not a positive integer`);
  const tkeys: [keyof FlowTimeouts, string][] = [
    ['tcpEstablished', 'idle-timeout-tcp'], ['tcpClosed', 'idle-timeout-tcp-closed'], ['tcpAttempt', 'idle-timeout-tcp-attempt'],
    ['udp', 'idle-timeout-udp'], ['icmp', 'idle-timeout-icmp'], ['other', 'idle-timeout-other'], ['active', 'active-timeout'],
  ];
  for (const [k, key] of tkeys) {
    const v = c.timeouts[k];
    if (!(v >= 0) || !Number.isFinite(v)) bad(key, `${v} is not a duration`);
    if (k !== 'active' && v <= 0) bad(key, 'an idle timeout must be above 0');
  }
  if (!Number.isInteger(c.maxSeries) || c.maxSeries < 1) bad('max-series', `${c.maxSeries} is not a positive integer`);
  if (!Number.isInteger(c.topFlows) || c.topFlows < 0) bad('top-flows', `${c.topFlows} is not a whole number`);
  if (c.proc.trim() === '') bad('proc', 'empty path');
  if (!(c.procInterval >= 0.05)) bad('proc-interval', `${c.procInterval}s is below 50ms`);
  if (!(c.addrRefresh >= 0.1)) bad('addr-refresh', `${c.addrRefresh}s is below 100ms`);
}

/** The `flowtap run` usage text (generated from KEYS, so it never drifts). */
export function runUsage(): string {
  const rows: string[] = [];
  for (const [key, def] of Object.entries(KEYS)) {
    let flag = def.short ? `-${def.short}, --${key}` : `    --${key}`;
    if (def.kind === 'bool') flag = `    --${key} / --no-${key}`;
    else flag += ` ${def.arg ?? (def.kind === 'duration' ? 'DUR' : def.kind === 'size' ? 'SIZE' : 'N')}`;
    rows.push(`  ${flag.padEnd(35)} ${def.help}`);
  }
  return `usage: flowtap run [-i IFACE]... [options]

Captures live traffic, tracks flows, serves Prometheus metrics on /metrics
(health on /healthz) and appends ended flows to --flows as NDJSON.

options (each also an environment variable FLOWTAP_<KEY> and a YAML key <key>):
  -c, --config FILE                   YAML file of key: value settings (env FLOWTAP_CONFIG)
${rows.join('\n')}
  -h, --help                          this text

precedence: command line > environment > config file > default.
DUR: 30s, 5m, 250ms (default unit s); SIZE: 33554432, 32MiB, 512KiB.
signals: SIGTERM/SIGINT stop (flows flushed, exit 0; a second one exits at once), SIGHUP reopens --flows.
exit status: 0 stopped by a signal, 1 capture or start-up failure, 2 configuration error.
`;
}
