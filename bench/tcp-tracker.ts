/**
 * TCP tracker micro-benchmark: TcpTracker.segment() over a synthetic,
 * pre-generated segment stream (no decoding, no flow lookup).
 *
 * The stream interleaves `flows` connections round-robin. Each connection:
 * SYN (with window-scale option), SYN-ACK, ACK, then rounds of two 1448-byte
 * data segments from the originator answered by one ACK, with a
 * retransmission every 50th round, a duplicate ACK every 64th and a 1-byte
 * keep-alive every 97th, and finally FIN / FIN-ACK / ACK. Every pass resets
 * the slots and replays the same arrays (1 M segments). The fastest pass is
 * reported beside the overall rate: on a shared machine it is the number
 * least disturbed by other load.
 *
 * As a script (after `npm run build`):
 *   node dist/bench/tcp-tracker.js [--segments N] [--flows F]
 * Prints numbers; never fails on speed.
 */
import { pathToFileURL } from 'node:url';
import { TcpTracker } from '../agent/flows/tcp.js';

export interface TcpBenchResult {
  /** Segments processed in the timed passes. */
  segments: number;
  /** Wall time of the timed passes. */
  seconds: number;
  /** Segments per second over all timed passes. */
  sps: number;
  /** Segments per second of the fastest pass (the least disturbed by other load). */
  bestSps: number;
}

interface Stream {
  n: number;
  slot: Int32Array;
  orig: Uint8Array;
  flags: Uint8Array;
  seq: Float64Array;
  ack: Float64Array;
  win: Uint16Array;
  len: Uint16Array;
  t: Float64Array;
}

const OPTS = new Uint8Array([2, 4, 5, 180, 1, 3, 3, 7, 4, 2, 0, 0]);

/** Builds `n` segments over `flows` interleaved connections. */
function buildStream(n: number, flows: number): Stream {
  const s: Stream = {
    n,
    slot: new Int32Array(n),
    orig: new Uint8Array(n),
    flags: new Uint8Array(n),
    seq: new Float64Array(n),
    ack: new Float64Array(n),
    win: new Uint16Array(n),
    len: new Uint16Array(n),
    t: new Float64Array(n),
  };
  const step = new Int32Array(flows);
  const seqO = new Float64Array(flows);
  const seqR = new Float64Array(flows);
  const rounds = 200;
  let k = 0;
  let t = 0;
  const put = (slot: number, orig: boolean, flags: number, seq: number, ack: number, len: number): void => {
    s.slot[k] = slot;
    s.orig[k] = orig ? 1 : 0;
    s.flags[k] = flags;
    s.seq[k] = seq >>> 0;
    s.ack[k] = ack >>> 0;
    s.win[k] = 512;
    s.len[k] = len;
    s.t[k] = t;
    k++;
  };
  for (let f = 0; f < flows; f++) {
    // Spread ISNs so that some flows wrap around 2^32.
    seqO[f] = (0xfff00000 + f * 7919 * 1448) >>> 0;
    seqR[f] = (f * 104729 * 1000) >>> 0;
  }
  while (k < n) {
    for (let f = 0; f < flows && k < n; f++) {
      t += 1000;
      const i = step[f]++;
      const o = seqO[f];
      const r = seqR[f];
      if (i === 0) put(f, true, 0x02, o, 0, 0);
      else if (i === 1) put(f, false, 0x12, r, o + 1, 0);
      else if (i === 2) put(f, true, 0x10, o + 1, r + 1, 0);
      else if (i < 3 + rounds * 3) {
        const round = ((i - 3) / 3) | 0;
        const phase = (i - 3) % 3;
        const base = o + 1 + round * 2896;
        if (phase === 0) put(f, true, 0x18, round % 50 === 49 ? base - 2896 : base, r + 1, 1448);
        else if (phase === 1) {
          if (round % 97 === 96) put(f, true, 0x10, base + 1447, r + 1, 1);
          else put(f, true, 0x18, base + 1448, r + 1, 1448);
        } else put(f, false, 0x10, r + 1, round % 64 === 63 ? base : base + 2896, 0);
      } else if (i === 3 + rounds * 3) put(f, true, 0x11, o + 1 + rounds * 2896, r + 1, 0);
      else if (i === 4 + rounds * 3) put(f, false, 0x11, r + 1, o + 2 + rounds * 2896, 0);
      else {
        put(f, true, 0x10, o + 2 + rounds * 2896, r + 2, 0);
        step[f] = 0;
        seqO[f] = (seqO[f] + 0x01000193) >>> 0;
      }
    }
  }
  return s;
}

/** Runs the tracker over about `segments` segments (passes of up to 1 M); returns the measured rates. */
export function benchTcpTracker(segments = 20_000_000, flows = 4096): TcpBenchResult {
  const stream = buildStream(Math.min(segments, 1_000_000), flows);
  const tr = new TcpTracker(flows);
  const { slot, orig, flags, seq, ack, win, len, t } = stream;
  const n = stream.n;
  const passes = Math.max(1, Math.round(segments / n));
  const rec = new Int32Array(flows);
  const run = (): void => {
    for (let f = 0; f < flows; f++) rec[f] = tr.reset(f);
    for (let i = 0; i < n; i++) {
      tr.segment(slot[i], rec[slot[i]], orig[i] === 1, flags[i], seq[i], ack[i], win[i], len[i], t[i], OPTS, 0, flags[i] & 2 ? OPTS.length : 0);
    }
  };
  run(); // warm-up (JIT), not timed
  let seconds = 0;
  let best = Infinity;
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    run();
    const s = (performance.now() - t0) / 1000;
    seconds += s;
    if (s < best) best = s;
  }
  const total = passes * n;
  return { segments: total, seconds, sps: total / seconds, bestSps: n / best };
}

function main(argv: string[]): void {
  let segments = 20_000_000;
  let flows = 4096;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--segments') segments = Number(argv[++i]);
    else if (argv[i] === '--flows') flows = Number(argv[++i]);
  }
  const r = benchTcpTracker(segments, flows);
  console.log(`tcp-tracker: ${r.segments} segments over ${flows} flows in ${r.seconds.toFixed(3)} s = ` +
    `${(r.sps / 1e6).toFixed(1)} M segments/s (${(1e9 / r.sps).toFixed(1)} ns/segment); ` +
    `best pass ${(r.bestSps / 1e6).toFixed(1)} M segments/s (${(1e9 / r.bestSps).toFixed(1)} ns/segment)`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
