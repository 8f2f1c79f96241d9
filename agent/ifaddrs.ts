/**
 * This host's addresses, from the interfaces (os.networkInterfaces(), i.e.
 * getifaddrs), as /32 and /128 prefixes for the flow table's LocalNets:
 * a flow with one end among them is inbound or outbound, with both local,
 * with neither forwarded.
 *
 * os.networkInterfaces() (libuv) leaves out interfaces whose operational
 * state is not RUNNING yet, and after a link comes up the kernel updates
 * that state a second or more later (linkwatch) while packets already
 * flow. So the list is completed from the kernel's own tables of the
 * agent's network namespace: /proc/net/if_inet6 (every IPv6 address) and
 * the local routes of /proc/net/fib_trie (every IPv4 address).
 *
 * Node has no netlink, so the list is re-read every `intervalMs` (one
 * getifaddrs call, ~50 µs) and LocalNets is replaced only when it changed.
 * Flows keep the classification they got when they started: a flow that
 * began before an address was added is not re-classified.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { LocalNets } from './flows/localnets.js';
import { formatIPv6 } from '../parsers/addr.js';

/** IPv6 addresses of /proc/net/if_inet6 ("fe80000000000000d09e73fffe89bc73 03 40 20 80 eth0" lines). */
export function parseIfInet6(text: string): string[] {
  const out: string[] = [];
  const w = new Uint32Array(4);
  for (const line of text.split('\n')) {
    const hex = line.trim().split(/\s+/)[0];
    if (!/^[0-9a-f]{32}$/i.test(hex)) continue;
    for (let i = 0; i < 4; i++) w[i] = parseInt(hex.slice(i * 8, i * 8 + 8), 16);
    out.push(`${formatIPv6(w, 0)}/128`);
  }
  return out;
}

/** Local IPv4 addresses of /proc/net/fib_trie: each "|-- A.B.C.D" followed by "/N host LOCAL". */
export function parseFibTrie(text: string): string[] {
  const out = new Set<string>();
  let last = '';
  for (const line of text.split('\n')) {
    const a = /\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
    if (a) {
      last = a[1];
      continue;
    }
    const l = /^\s*\/(\d+) host LOCAL$/.exec(line);
    if (l && last) out.add(`${last}/${l[1]}`);
  }
  return [...out];
}

/** The file's text, or '' when it cannot be read or is larger than `max` bytes. */
function readSmall(path: string, max: number): string {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.allocUnsafe(max + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > max) return '';
    }
    return buf.toString('latin1', 0, n);
  } catch {
    return '';
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/**
 * fib_trie lists every route: on a router with a full routing table it is
 * far too big to read every few seconds, and then only the interfaces'
 * list is used for IPv4.
 */
const FIB_TRIE_MAX = 1 << 20;

/**
 * The host's addresses as sorted, de-duplicated prefixes ("192.0.2.1/32",
 * "2001:db8::1/128"): the interfaces' addresses, completed from the
 * kernel's tables under `procNet` (see above).
 */
export function hostAddresses(ifs: ReturnType<typeof networkInterfaces> = networkInterfaces(), procNet = '/proc/net'): string[] {
  const out = new Set<string>();
  for (const list of Object.values(ifs)) {
    for (const a of list ?? []) {
      // Node reports a link-local IPv6 address without its %scope.
      const addr = a.address.replace(/%.*$/, '');
      out.add(a.family === 'IPv4' ? `${addr}/32` : `${addr}/128`);
    }
  }
  if (procNet !== '') {
    for (const x of parseIfInet6(readSmall(`${procNet}/if_inet6`, 4 << 20))) out.add(x);
    for (const x of parseFibTrie(readSmall(`${procNet}/fib_trie`, FIB_TRIE_MAX))) out.add(x);
  }
  return [...out].sort();
}

export interface IfAddrsOptions {
  intervalMs: number;
  /** Called after the list changed (not for the first read). */
  onChange?: (added: string[], removed: string[]) => void;
  /** Source of the interface list (tests substitute one). */
  read?: () => string[];
}

/** Keeps `nets` equal to the host's addresses. start() reads once synchronously. */
export class IfAddrs {
  private timer: NodeJS.Timeout | undefined;
  private current: string[] = [];
  private readonly read: () => string[];
  /** Times the list changed after start. */
  changes = 0;

  constructor(private readonly nets: LocalNets, private readonly opts: IfAddrsOptions) {
    this.read = opts.read ?? (() => hostAddresses());
  }

  get addresses(): readonly string[] {
    return this.current;
  }

  start(): void {
    this.refresh(true);
    if (this.timer) return;
    this.timer = setInterval(() => this.refresh(false), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Re-reads the addresses; returns true when they changed. */
  refresh(first = false): boolean {
    let next: string[];
    try {
      next = this.read();
    } catch {
      return false;
    }
    if (!first && next.length === this.current.length && next.every((x, i) => x === this.current[i])) return false;
    const prev = this.current;
    this.nets.set(next);
    this.current = next;
    if (!first) {
      this.changes++;
      const p = new Set(prev);
      const n = new Set(next);
      this.opts.onChange?.(next.filter((x) => !p.has(x)), prev.filter((x) => !n.has(x)));
    }
    return true;
  }

  shutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
