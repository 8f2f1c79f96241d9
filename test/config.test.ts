/**
 * `flowtap run` configuration: defaults, the three sources (command line,
 * FLOWTAP_* environment, YAML file) and their precedence, and start-up
 * validation naming the bad key and where its value came from.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError, DEFAULT_BUFFER_SIZE, DEFAULT_LISTEN, DEFAULT_SNAPLEN, KEYS, defaultConfig, envName, loadConfig,
  parseFlatYaml, parseListen, parseSizeText, runUsage, validate,
} from '../agent/config.js';
import { DEFAULT_MAX_FLOWS, DEFAULT_TIMEOUTS } from '../agent/flows/table.js';

const dir = mkdtempSync(join(tmpdir(), 'ft-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function yaml(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function err(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('match the documented values', () => {
    const { config, help } = loadConfig([], {});
    expect(help).toBe(false);
    expect(config).toEqual(defaultConfig());
    expect(config).toMatchObject({
      interfaces: ['any'], filter: '', snaplen: 256, bufferSize: 32 << 20, promisc: true, listen: '127.0.0.1:9877',
      localNets: [], maxFlows: DEFAULT_MAX_FLOWS, timeouts: DEFAULT_TIMEOUTS, maxSeries: 10_000, topFlows: 20, proc: '/proc', processes: true, procInterval: 1, addrRefresh: 2,
    });
    expect(config.flows).toBeUndefined();
    expect([DEFAULT_SNAPLEN, DEFAULT_BUFFER_SIZE, DEFAULT_LISTEN]).toEqual([256, 33554432, '127.0.0.1:9877']);
    expect(() => validate(defaultConfig())).not.toThrow();
  });

  it('usage lists every key, with its env name rule', () => {
    const u = runUsage();
    for (const key of Object.keys(KEYS)) expect(u).toContain(`--${key}`);
    expect(u).toContain('--no-promisc');
    expect(u).toContain('FLOWTAP_<KEY>');
    expect(u).toMatch(/command line > environment > config file > default/);
  });
});

describe('command line', () => {
  it('parses every option', () => {
    const { config } = loadConfig([
      '-i', 'eth0', '--interface', 'eth1', '-f', 'tcp port 80', '--snaplen', '128', '--buffer-size', '64MiB', '--no-promisc',
      '--listen', '[::1]:9100', '--flows', '/var/log/flows.ndjson', '--local-net', '10.0.0.0/8', '--local-net', '2001:db8::1',
      '--max-flows', '5000', '--idle-timeout-tcp', '10m', '--idle-timeout-tcp-closed', '2s', '--idle-timeout-tcp-attempt', '20',
      '--idle-timeout-udp', '30s', '--idle-timeout-icmp', '15s', '--idle-timeout-other', '45s', '--active-timeout', '0',
      '--proc', '/host/proc', '--no-processes', '--proc-interval', '500ms', '--addr-refresh', '10s', '--max-series', '500', '--top-flows', '0',
    ], {});
    expect(config).toEqual({
      interfaces: ['eth0', 'eth1'], filter: 'tcp port 80', snaplen: 128, bufferSize: 64 << 20, promisc: false, listen: '[::1]:9100',
      flows: '/var/log/flows.ndjson', localNets: ['10.0.0.0/8', '2001:db8::1'], maxFlows: 5000,
      timeouts: { tcpEstablished: 600, tcpClosed: 2, tcpAttempt: 20, udp: 30, icmp: 15, other: 45, active: 0 },
      maxSeries: 500, topFlows: 0, proc: '/host/proc', processes: false, procInterval: 0.5, addrRefresh: 10,
    });
  });

  it('--help, unknown options, positionals', () => {
    expect(loadConfig(['-h'], {}).help).toBe(true);
    expect(err(() => loadConfig(['--nope'], {}))).toMatch(/Unknown option '--nope'/);
    expect(err(() => loadConfig(['eth0'], {}))).toMatch(/Unexpected argument 'eth0'/);
    expect(err(() => loadConfig(['--promisc', '--no-promisc'], {}))).toBe('promisc: both --promisc and --no-promisc given');
  });
});

describe('environment', () => {
  it('maps FLOWTAP_<KEY> onto the same fields; lists are comma separated', () => {
    expect(envName('buffer-size')).toBe('FLOWTAP_BUFFER_SIZE');
    expect(envName('proc')).toBe('FLOWTAP_PROC');
    const { config, sources } = loadConfig([], {
      FLOWTAP_INTERFACE: 'eth0,eth1', FLOWTAP_FILTER: 'udp', FLOWTAP_SNAPLEN: '512', FLOWTAP_BUFFER_SIZE: '16m',
      FLOWTAP_PROMISC: 'false', FLOWTAP_LISTEN: ':9100', FLOWTAP_FLOWS: '/tmp/f.ndjson', FLOWTAP_LOCAL_NET: '192.0.2.0/24, 198.51.100.7',
      FLOWTAP_MAX_FLOWS: '100', FLOWTAP_IDLE_TIMEOUT_UDP: '2m', FLOWTAP_PROC: '/host/proc', FLOWTAP_PROCESSES: 'off',
      FLOWTAP_UNRELATED: 'ignored', FLOWTAP_SETUP_PACKAGES: 'runtime',
    });
    expect(config).toMatchObject({
      interfaces: ['eth0', 'eth1'], filter: 'udp', snaplen: 512, bufferSize: 16 << 20, promisc: false, listen: ':9100',
      flows: '/tmp/f.ndjson', localNets: ['192.0.2.0/24', '198.51.100.7'], maxFlows: 100, proc: '/host/proc', processes: false,
    });
    expect(config.timeouts.udp).toBe(120);
    expect(sources.snaplen).toBe('FLOWTAP_SNAPLEN');
  });
});

describe('YAML file', () => {
  it('reads the flat subset: scalars, quoted strings, inline and block lists, comments', () => {
    const p = yaml('full.yaml', [
      '# flowtap agent',
      '---',
      'interface:',
      '  - eth0   # uplink',
      '  - "eth1"',
      'filter: "not port 22"   # keep ssh out',
      "listen: '0.0.0.0:9877'",
      'snaplen: 200',
      'buffer-size: 8MiB',
      'promisc: no',
      'local-net: [10.0.0.0/8, "fd00::/8"]',
      'flows: /var/lib/flowtap/flows.ndjson',
      'idle-timeout-tcp: 5m',
      'processes: true',
      '',
    ].join('\n'));
    const { config, sources } = loadConfig(['--config', p], {});
    expect(config).toMatchObject({
      interfaces: ['eth0', 'eth1'], filter: 'not port 22', listen: '0.0.0.0:9877', snaplen: 200, bufferSize: 8 << 20,
      promisc: false, localNets: ['10.0.0.0/8', 'fd00::/8'], flows: '/var/lib/flowtap/flows.ndjson', processes: true, configFile: p,
    });
    expect(config.timeouts.tcpEstablished).toBe(300);
    expect(sources.snaplen).toBe(`${p}:8`);
  });

  it('FLOWTAP_CONFIG names the file too', () => {
    const p = yaml('env.yaml', 'snaplen: 300\n');
    expect(loadConfig([], { FLOWTAP_CONFIG: p }).config.snaplen).toBe(300);
  });

  it('rejects what it does not support, with file and line', () => {
    expect(() => parseFlatYaml('a:\n  b: 1\n', 'f.yaml')).toThrow('f.yaml:2: nested mappings are not supported (flat key: value only)');
    expect(() => parseFlatYaml('a: 1\na: 2\n', 'f.yaml')).toThrow('f.yaml:2: key "a" given twice');
    expect(() => parseFlatYaml('- x\n', 'f.yaml')).toThrow('f.yaml:1: a list item without a key above it');
    expect(() => parseFlatYaml('just text\n', 'f.yaml')).toThrow('f.yaml:1: expected "key: value", got "just text"');
    expect(() => parseFlatYaml('a: "open\n', 'f.yaml')).toThrow('f.yaml:1: unterminated string "open');
    expect(() => parseFlatYaml('a: &anchor x\n', 'f.yaml')).toThrow(/f.yaml:1: unsupported YAML syntax/);
    expect(() => parseFlatYaml('a: [x, y\n', 'f.yaml')).toThrow('f.yaml:1: unterminated list [x, y');
    expect(parseFlatYaml("a: 'it''s # not a comment' # but this is\nb: x#y\n").get('a')!.value).toBe("it's # not a comment");
    expect(parseFlatYaml('b: x#y\n').get('b')!.value).toBe('x#y');
    const p = yaml('unknown.yaml', 'snaplen: 100\nsnap-len: 100\n');
    expect(err(() => loadConfig(['-c', p], {}))).toMatch(new RegExp(`^${p}:2: unknown key "snap-len" \\(known: interface, filter, snaplen,`));
    expect(err(() => loadConfig(['-c', join(dir, 'missing.yaml')], {}))).toMatch(/^config: cannot read .*missing\.yaml \(from --config\): ENOENT/);
  });
});

describe('precedence: command line > environment > file > default', () => {
  it('applies one rule to every key; a list from a higher source replaces the lower one whole', () => {
    const p = yaml('prec.yaml', 'snaplen: 100\nbuffer-size: 1MiB\nlisten: 127.0.0.1:1\ninterface: [a0, a1]\npromisc: false\n');
    const env = { FLOWTAP_SNAPLEN: '200', FLOWTAP_BUFFER_SIZE: '2MiB', FLOWTAP_INTERFACE: 'e0' };
    const { config, sources } = loadConfig(['-c', p, '--snaplen', '300'], env);
    expect(config.snaplen).toBe(300); // cli over env over file
    expect(config.bufferSize).toBe(2 << 20); // env over file
    expect(config.listen).toBe('127.0.0.1:1'); // file over default
    expect(config.interfaces).toEqual(['e0']); // env list replaces the file's
    expect(config.promisc).toBe(false);
    expect(config.filter).toBe(''); // default
    expect(sources).toMatchObject({ snaplen: '--snaplen', 'buffer-size': 'FLOWTAP_BUFFER_SIZE', listen: `${p}:3`, interface: 'FLOWTAP_INTERFACE' });
    expect(loadConfig(['-c', p, '--promisc'], env).config.promisc).toBe(true);
    expect(loadConfig(['-c', p, '-i', 'x0', '-i', 'x1'], env).config.interfaces).toEqual(['x0', 'x1']);
  });
});

describe('validation names the bad key and the source of its value', () => {
  const cases: [string[], Record<string, string>, string][] = [
    [['--snaplen', '32'], {}, 'snaplen: 32 is outside 64..262144 (from --snaplen)'],
    [['--snaplen', 'big'], {}, 'snaplen: "big" is not a whole number (from --snaplen)'],
    [[], { FLOWTAP_SNAPLEN: '999999' }, 'snaplen: 999999 is outside 64..262144 (from FLOWTAP_SNAPLEN)'],
    [['--buffer-size', '10'], {}, 'buffer-size: 10 bytes is outside 65536 (64KiB)..2147483647 (2GiB - 1) (from --buffer-size)'],
    [['--buffer-size', '4GiB'], {}, 'buffer-size: 4294967296 bytes is outside 65536 (64KiB)..2147483647 (2GiB - 1) (from --buffer-size)'],
    [['--buffer-size', '12 parsecs'], {}, 'buffer-size: "12 parsecs" is not a size (examples: 33554432, 32MiB, 512KiB) (from --buffer-size)'],
    [[], { FLOWTAP_PROMISC: 'maybe' }, 'promisc: "maybe" is not a boolean (true/false) (from FLOWTAP_PROMISC)'],
    [['--listen', 'localhost'], {}, 'listen: "localhost" is not HOST:PORT (examples: 127.0.0.1:9877, [::1]:9877, 0.0.0.0:9877) (from --listen)'],
    [['--listen', '127.0.0.1:70000'], {}, 'listen: port 70000 is out of range 0..65535 (from --listen)'],
    [['--local-net', '10.0.0.0/33'], {}, 'local-net: "10.0.0.0/33": prefix length must be 0..32 (from --local-net)'],
    [[], { FLOWTAP_LOCAL_NET: 'nonsense' }, 'local-net: "nonsense" is not an address or CIDR prefix (from FLOWTAP_LOCAL_NET)'],
    [['--max-flows', '0'], {}, 'max-flows: 0 is not a positive integer (from --max-flows)'],
    [['--idle-timeout-udp', '0'], {}, 'idle-timeout-udp: an idle timeout must be above 0 (from --idle-timeout-udp)'],
    [['--idle-timeout-tcp', 'soon'], {}, 'idle-timeout-tcp: "soon" is not a duration (examples: 30s, 5m, 250ms) (from --idle-timeout-tcp)'],
    [['-i', 'any', '-i', 'eth0'], {}, 'interface: "any" already captures every interface; give it alone (from -i/--interface)'],
    [['-i', 'eth0', '-i', 'eth0'], {}, 'interface: "eth0" given twice (from -i/--interface)'],
    [['-i', 'a-name-far-too-long-for-linux'], {}, 'interface: "a-name-far-too-long-for-linux" is not an interface name (from -i/--interface)'],
    [[], { FLOWTAP_INTERFACE: ' , ' }, 'interface: no capture interface given (from FLOWTAP_INTERFACE)'],
    [['--proc-interval', '1ms'], {}, 'proc-interval: 0.001s is below 50ms (from --proc-interval)'],
    [[], { FLOWTAP_MAX_SERIES: '0' }, 'max-series: 0 is not a positive integer (from FLOWTAP_MAX_SERIES)'],
    [['--top-flows=-1'], {}, 'top-flows: "-1" is not a whole number (from --top-flows)'],
  ];
  for (const [argv, env, msg] of cases) {
    it(msg, () => expect(err(() => loadConfig(argv, env))).toBe(msg));
  }

  it('names the file and line for a bad value in the YAML file', () => {
    const p = yaml('bad.yaml', 'interface: eth0\nsnaplen: 10\n');
    expect(err(() => loadConfig(['-c', p], {}))).toBe(`snaplen: 10 is outside 64..262144 (from ${p}:2)`);
    const q = yaml('bad2.yaml', 'snaplen: [1, 2]\n');
    expect(err(() => loadConfig(['-c', q], {}))).toBe(`snaplen: takes one value, not a list (from ${q}:1)`);
  });

  it('validate() on a Config built in code', () => {
    const c = defaultConfig();
    c.maxFlows = 1.5;
    expect(err(() => validate(c))).toBe('max-flows: 1.5 is not a positive integer');
  });
});

describe('value parsers', () => {
  it('sizes and listen addresses', () => {
    expect(parseSizeText('33554432')).toBe(33554432);
    expect(parseSizeText('32MiB')).toBe(32 << 20);
    expect(parseSizeText('32m')).toBe(32 << 20);
    expect(parseSizeText('512 KiB')).toBe(512 << 10);
    expect(parseSizeText('1GB')).toBe(1e9);
    expect(parseListen('127.0.0.1:9877')).toEqual({ host: '127.0.0.1', port: 9877 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':9877')).toEqual({ host: '127.0.0.1', port: 9877 });
    expect(parseListen('[::]:9877')).toEqual({ host: '::', port: 9877 });
  });
});

describe('the deployment files use valid settings', () => {
  it('the Kubernetes ConfigMap\'s flowtap.yaml and the FLOWTAP_* variables of the unit and the DaemonSet', async () => {
    const { readFileSync } = await import('node:fs');
    const root = new URL('..', import.meta.url);
    const ds = readFileSync(new URL('deploy/kubernetes/daemonset.yaml', root), 'utf8');
    const block = /^ {2}flowtap\.yaml: \|\n((?: {4}.*\n)+)/m.exec(ds);
    expect(block).not.toBeNull();
    const p = yaml('configmap.yaml', block![1].replace(/^ {4}/gm, ''));
    const { config } = loadConfig(['-c', p], {});
    expect(config).toMatchObject({ interfaces: ['any'], snaplen: 256, bufferSize: 32 << 20, maxFlows: 1_000_000 });
    const unit = readFileSync(new URL('deploy/systemd/flowtap.service', root), 'utf8');
    const names = [...unit.matchAll(/^Environment=(FLOWTAP_[A-Z_]+)=/gm), ...ds.matchAll(/- name: (FLOWTAP_[A-Z_]+)/g)].map((m) => m[1]);
    expect(names.length).toBeGreaterThanOrEqual(4);
    const known = new Set(['FLOWTAP_CONFIG', ...Object.keys(KEYS).map(envName)]);
    for (const n of names) expect(known.has(n), n).toBe(true);
  });
});
