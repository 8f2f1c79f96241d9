/**
 * This host's addresses (or a site's networks, as Zeek's Site::local_nets):
 * a short list of IPv4/IPv6 prefixes, looked up when a flow starts.
 */
import { parseAddr } from '../../parsers/addr.js';

interface Net {
  version: 4 | 6;
  words: Uint32Array;
  bits: number;
}

export class LocalNets {
  private nets: Net[] = [];

  /** Parses "10.0.0.0/8", "192.0.2.1" (a /32), "2001:db8::/32", "::1" (a /128). Throws naming the bad entry. */
  static parse(cidrs: readonly string[]): LocalNets {
    const l = new LocalNets();
    l.set(cidrs);
    return l;
  }

  /** Replaces the list (the live agent refreshes it when interface addresses change). */
  set(cidrs: readonly string[]): void {
    const nets: Net[] = [];
    for (const c of cidrs) {
      const [addr, len, extra] = c.trim().split('/');
      const words = new Uint32Array(4);
      const version = parseAddr(addr, words);
      if (version === 0 || extra !== undefined) throw new Error(`"${c}" is not an address or CIDR prefix`);
      const max = version === 4 ? 32 : 128;
      const bits = len === undefined ? max : /^\d+$/.test(len) ? Number(len) : NaN;
      if (!(bits >= 0 && bits <= max)) throw new Error(`"${c}": prefix length must be 0..${max}`);
      nets.push({ version, words, bits });
    }
    this.nets = nets;
  }

  get size(): number {
    return this.nets.length;
  }

  /** True when the address in words[o..o+3] (IPv4 in the last word) is inside one of the prefixes. */
  contains(version: number, words: ArrayLike<number>, o: number): boolean {
    for (const n of this.nets) {
      if (n.version !== version) continue;
      if (version === 4) {
        if (n.bits === 0) return true;
        const mask = n.bits === 32 ? 0xffffffff : ~(0xffffffff >>> n.bits);
        if (((words[o + 3] ^ n.words[3]) & mask) === 0) return true;
        continue;
      }
      let left = n.bits;
      let ok = true;
      for (let i = 0; i < 4 && left > 0; i++, left -= 32) {
        const mask = left >= 32 ? 0xffffffff : ~(0xffffffff >>> left);
        if (((words[o + i] ^ n.words[i]) & mask) !== 0) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }
}

/** 127.0.0.0/8 and ::1: a flow between loopback addresses is local whatever else is known. */
export function isLoopback(version: number, words: ArrayLike<number>, o: number): boolean {
  if (version === 4) return words[o + 3] >>> 24 === 127;
  return words[o] === 0 && words[o + 1] === 0 && words[o + 2] === 0 && words[o + 3] === 1;
}
