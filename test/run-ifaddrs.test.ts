/**
 * This host's addresses for direction (agent/ifaddrs.ts): the kernel-table
 * parsers, the union with os.networkInterfaces(), change detection feeding
 * LocalNets, and the case that made the union necessary: an interface that
 * carries packets before its operational state is RUNNING (libuv leaves it
 * out of os.networkInterfaces()).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IfAddrs, hostAddresses, parseFibTrie, parseIfInet6 } from '../agent/ifaddrs.js';
import { LocalNets } from '../agent/flows/localnets.js';
import { parseAddr } from '../parsers/addr.js';
import { ROOT, build, delNetns, requirePrereqs, sh } from './run-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ft-ifaddrs-'));
const NS = `ft-a-${process.pid}`;
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  delNetns(NS);
});

const IF_INET6 = `fe8000000000000000fc00fffe000001 04 40 20 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
fd990001000000000000000000000001 05 40 00 80     ftrc
`;

const FIB_TRIE = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.99.1.0/24 2 0 2
        |-- 10.99.1.0
           /24 link UNICAST
        |-- 10.99.1.1
           /32 host LOCAL
        |-- 10.99.1.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.0
           /8 host LOCAL
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
        |-- 10.99.1.1
           /32 host LOCAL
        |-- 127.0.0.1
           /32 host LOCAL
`;

function has(nets: LocalNets, addr: string): boolean {
  const w = new Uint32Array(4);
  const v = parseAddr(addr, w);
  return nets.contains(v, w, 0);
}

describe('kernel tables', () => {
  it('parse /proc/net/if_inet6 and the local routes of /proc/net/fib_trie', () => {
    expect(parseIfInet6(IF_INET6)).toEqual(['fe80::fc:ff:fe00:1/128', '::1/128', 'fd99:1::1/128']);
    expect(parseFibTrie(FIB_TRIE).sort()).toEqual(['10.99.1.1/32', '127.0.0.0/8', '127.0.0.1/32']);
    expect(parseIfInet6('garbage\n')).toEqual([]);
    expect(parseFibTrie('')).toEqual([]);
  });

  it('hostAddresses() = interfaces ∪ kernel tables, sorted and de-duplicated', () => {
    writeFileSync(join(dir, 'if_inet6'), IF_INET6);
    writeFileSync(join(dir, 'fib_trie'), FIB_TRIE);
    const ifs = {
      eth0: [
        { address: '192.0.2.7', netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '192.0.2.7/24' },
        { address: 'fe80::fc:ff:fe00:1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: null, scopeid: 2 },
      ],
    } as unknown as Parameters<typeof hostAddresses>[0];
    expect(hostAddresses(ifs, '')).toEqual(['192.0.2.7/32', 'fe80::fc:ff:fe00:1/128']);
    expect(hostAddresses(ifs, dir)).toEqual([
      '10.99.1.1/32', '127.0.0.0/8', '127.0.0.1/32', '192.0.2.7/32', '::1/128', 'fd99:1::1/128', 'fe80::fc:ff:fe00:1/128',
    ]);
    expect(hostAddresses(ifs, join(dir, 'missing'))).toEqual(['192.0.2.7/32', 'fe80::fc:ff:fe00:1/128']);
  });
});

describe('IfAddrs', () => {
  it('fills LocalNets at start and replaces it when the addresses change', () => {
    let list = ['10.0.0.1/32', 'fd00::1/128'];
    const changes: [string[], string[]][] = [];
    const nets = new LocalNets();
    const a = new IfAddrs(nets, { intervalMs: 60_000, read: () => list, onChange: (x, y) => changes.push([x, y]) });
    a.start();
    expect(has(nets, '10.0.0.1')).toBe(true);
    expect(has(nets, 'fd00::1')).toBe(true);
    expect(has(nets, '10.0.0.2')).toBe(false);
    expect(a.refresh()).toBe(false);
    list = ['10.0.0.2/32', 'fd00::1/128'];
    expect(a.refresh()).toBe(true);
    expect(has(nets, '10.0.0.1')).toBe(false);
    expect(has(nets, '10.0.0.2')).toBe(true);
    expect(changes).toEqual([[['10.0.0.2/32'], ['10.0.0.1/32']]]);
    expect(a.changes).toBe(1);
    a.shutdown();
    a.shutdown();
  });

  it('a failing read keeps the last list', () => {
    const nets = new LocalNets();
    let fail = false;
    const a = new IfAddrs(nets, { intervalMs: 60_000, read: () => (fail ? (() => { throw new Error('x'); })() : ['10.1.1.1/32']) });
    a.start();
    fail = true;
    expect(a.refresh()).toBe(false);
    expect(has(nets, '10.1.1.1')).toBe(true);
    a.shutdown();
  });
});

describe('an interface not RUNNING yet (needs root)', () => {
  it('its addresses are local although os.networkInterfaces() leaves it out', () => {
    requirePrereqs(['ip']);
    delNetns(NS);
    sh('ip', ['netns', 'add', NS]);
    sh('ip', ['-n', NS, 'link', 'add', 'fta', 'type', 'veth', 'peer', 'name', 'ftb']);
    sh('ip', ['-n', NS, 'addr', 'add', '10.96.0.1/24', 'dev', 'fta']);
    sh('ip', ['-n', NS, '-6', 'addr', 'add', 'fd96::1/64', 'dev', 'fta', 'nodad']);
    sh('ip', ['-n', NS, 'link', 'set', 'fta', 'up']); // peer down: no carrier, not RUNNING
    const code = `import('${join(ROOT, 'dist', 'agent', 'ifaddrs.js')}').then((m) => console.log(JSON.stringify({ node: Object.keys(require('os').networkInterfaces()), all: m.hostAddresses() })))`;
    build();
    const out = JSON.parse(sh('ip', ['netns', 'exec', NS, process.execPath, '-e', code])) as { node: string[]; all: string[] };
    expect(out.node).not.toContain('fta');
    expect(out.all).toEqual(['10.96.0.1/32', 'fd96::1/128']); // (lo is down in this namespace)
  });
});
