/**
 * Generated captures for the metrics tests: a random mix of TCP, UDP and
 * ICMP flows (property tests), and many short TCP connections to many
 * listening ports (budget and scrape-cost tests).
 */
import { pcapFile, type Packet as PcapPacket } from '../gen/pcap-writer.js';
import { ACK, FIN, RST, SYN, bytes, eth, icmp, ipv4, tcp, udp } from '../gen/packets.js';

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Epoch second of packet time 0 in generated captures. */
export const GEN_BASE = 1_700_000_000;

export interface RandomTrafficOptions {
  seed: number;
  flows: number;
  /** Seconds over which flows start. */
  seconds: number;
}

/**
 * Random traffic between local servers 10.9.0.1-4 (use `--local-net
 * 10.9.0.0/16`) and remote hosts: TCP connections (handshake, data both
 * ways, retransmissions, zero windows, FIN or RST or nothing at the end,
 * unanswered and refused attempts, pauses long enough for idle and active
 * timeouts), UDP exchanges and ICMP echoes. Returns a classic pcap.
 */
export function randomTraffic(o: RandomTrafficOptions): Buffer {
  const r = rng(o.seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const pkts: { t: number; n: number; data: Uint8Array }[] = [];
  let order = 0;
  const push = (t: number, data: Uint8Array) => pkts.push({ t: Math.round(t), n: order++, data });
  const gap = () => (r() < 0.1 ? 1e9 + r() * 6e9 : r() * 2e8);
  for (let i = 0; i < o.flows; i++) {
    const local = `10.9.0.${1 + Math.floor(r() * 4)}`;
    const remote = `198.51.100.${1 + Math.floor(r() * 200)}`;
    const inbound = r() < 0.7;
    const cli = inbound ? remote : local;
    const srv = inbound ? local : remote;
    const kind = r();
    let t = r() * o.seconds * 1e9;
    if (kind < 0.6) {
      const cport = 20000 + ((i * 7919) % 40000);
      const sport = pick([22, 80, 443, 5432, 8080]);
      const c2s = (flags: number, seq: number, ack: number, len = 0, win = 65535) =>
        eth(0x0800, ipv4({ src: cli, dst: srv, proto: 6 }, tcp({ sport: cport, dport: sport, seq, ack, flags, win }, bytes(len))));
      const s2c = (flags: number, seq: number, ack: number, len = 0, win = 65535) =>
        eth(0x0800, ipv4({ src: srv, dst: cli, proto: 6 }, tcp({ sport, dport: cport, seq, ack, flags, win }, bytes(len))));
      let cs = Math.floor(r() * 1e9);
      let ss = Math.floor(r() * 1e9);
      push(t, c2s(SYN, cs, 0));
      const fate = r();
      if (fate < 0.1) {
        push(t + 1e9, c2s(SYN, cs, 0)); // unanswered, retried
        continue;
      }
      if (fate < 0.2) {
        push(t + 1e5, s2c(RST | ACK, 0, cs + 1)); // refused
        continue;
      }
      const rtt = 1e5 + r() * 5e7;
      push((t += rtt / 2), s2c(SYN | ACK, ss, cs + 1));
      push((t += rtt / 2), c2s(ACK, ++cs, ++ss));
      const rounds = Math.floor(r() * 8);
      for (let k = 0; k < rounds; k++) {
        t += gap();
        const up = 1 + Math.floor(r() * 1400);
        push(t, c2s(ACK, cs, ss, up));
        if (r() < 0.15) push(t + 2e8, c2s(ACK, cs, ss, up)); // retransmission
        cs += up;
        const down = 1 + Math.floor(r() * 1400);
        push((t += 1e6), s2c(ACK, ss, cs, down, r() < 0.05 ? 0 : 65535));
        ss += down;
      }
      t += gap();
      const end = r();
      if (end < 0.6) {
        push(t, c2s(FIN | ACK, cs, ss));
        push((t += 1e5), s2c(FIN | ACK, ss, cs + 1));
        push((t += 1e5), c2s(ACK, cs + 1, ss + 1));
      } else if (end < 0.8) {
        push(t, pick([c2s(RST | ACK, cs, ss), s2c(RST | ACK, ss, cs)]));
      }
    } else if (kind < 0.9) {
      const cport = 30000 + ((i * 104729) % 30000);
      const sport = pick([53, 123, 5300, 5301]);
      const n = 1 + Math.floor(r() * 6);
      for (let k = 0; k < n; k++) {
        push(t, eth(0x0800, ipv4({ src: cli, dst: srv, proto: 17 }, udp(cport, sport, bytes(20 + Math.floor(r() * 500))))));
        if (r() < 0.8) push(t + 1e6, eth(0x0800, ipv4({ src: srv, dst: cli, proto: 17 }, udp(sport, cport, bytes(20 + Math.floor(r() * 1000))))));
        t += gap();
      }
    } else {
      const id = i & 0xffff;
      const n = 1 + Math.floor(r() * 4);
      for (let k = 0; k < n; k++) {
        const echo = Uint8Array.from([id >> 8, id & 255, 0, k, ...bytes(32)]);
        push(t, eth(0x0800, ipv4({ src: cli, dst: srv, proto: 1 }, icmp(8, 0, echo))));
        push(t + 5e5, eth(0x0800, ipv4({ src: srv, dst: cli, proto: 1 }, icmp(0, 0, echo))));
        t += gap();
      }
    }
  }
  pkts.sort((a, b) => a.t - b.t || a.n - b.n);
  const out: PcapPacket[] = pkts.map((p) => ({ sec: GEN_BASE + Math.floor(p.t / 1e9), nsec: p.t % 1e9, data: p.data }));
  return pcapFile(out, { nanos: true });
}

/**
 * `flows` TCP connection attempts answered by a SYN-ACK, from distinct
 * clients (10.1.0.0 + i) to 10.0.0.1 on `ports` listening ports
 * (10000 + i % ports), 100 µs apart, all within flows × 100 µs of packet
 * time. Built from two frame templates (fast for 100 k flows).
 */
export function manyConnections(flows: number, ports: number): Buffer {
  const syn = eth(0x0800, ipv4({ src: '10.1.0.0', dst: '10.0.0.1', proto: 6 }, tcp({ sport: 40000, dport: 10000, seq: 1000, flags: SYN })));
  const synAck = eth(0x0800, ipv4({ src: '10.0.0.1', dst: '10.1.0.0', proto: 6 }, tcp({ sport: 10000, dport: 40000, seq: 5000, ack: 1001, flags: SYN | ACK })));
  const len = syn.length;
  const rec = 16 + len;
  const b = Buffer.alloc(24 + 2 * flows * rec);
  b.writeUInt32LE(0xa1b23c4d, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(262144, 16);
  b.writeUInt32LE(1, 20);
  let at = 24;
  const IP = 14;
  for (let i = 0; i < flows; i++) {
    const client = (10 << 24) | (1 << 16);
    const addr = (client + i) >>> 0;
    const cport = 40000 + (i % 20000);
    const sport = 10000 + (i % ports);
    for (let d = 0; d < 2; d++) {
      const t = i * 100_000 + d * 50_000;
      b.writeUInt32LE(GEN_BASE + Math.floor(t / 1e9), at);
      b.writeUInt32LE(t % 1e9, at + 4);
      b.writeUInt32LE(len, at + 8);
      b.writeUInt32LE(len, at + 12);
      const f = at + 16;
      b.set(d === 0 ? syn : synAck, f);
      // client address: source of the SYN, destination of the SYN-ACK; ports likewise
      b.writeUInt32BE(addr, f + IP + (d === 0 ? 12 : 16));
      b.writeUInt16BE(d === 0 ? cport : sport, f + IP + 20);
      b.writeUInt16BE(d === 0 ? sport : cport, f + IP + 22);
      at += rec;
    }
  }
  return b;
}
