import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * How the flow table and the TCP record pool grow when full: doubling while
 * small (below 64 Ki entries), then by an eighth (rounded up to a multiple
 * of 4096). Memory follows the live flows:
 * a large table is at least 8/9 full after a growth step. Flow records
 * live in chunks (table.ts CHUNK_BITS) and are not copied; the index, the
 * timer links and the TCP record pool are, each element about 8 times in
 * all, amortised.
 */
export function nextCapacity(cap: number): number {
  if (cap < 65536) return Math.max(16, cap * 2);
  return Math.ceil((cap * 1.125) / 4096) * 4096;
}

/**
 * Grows chunked storage to `cap` records: chunk c holds records
 * [c * per, (c + 1) * per), and is (re)allocated when it holds fewer than it
 * must (the last chunk is allocated at the size needed and reallocated as
 * it fills). For each new buffer, `place(c, records, had)` installs it:
 * `had` old records of chunk c to copy over. Returns true when an old
 * chunk was replaced (garbage to collect).
 */
export function growChunks(held: (c: number) => number, cap: number, per: number, place: (c: number, records: number, had: number) => void): boolean {
  let replaced = false;
  for (let c = 0; c * per < cap; c++) {
    const records = Math.min(per, cap - c * per);
    const had = held(c);
    if (had >= records) continue;
    place(c, records, had);
    if (had > 0) replaced = true;
  }
  return replaced;
}

let collect: (() => void) | null | undefined;

/**
 * After a growth step the old arrays are garbage: tens of MiB of backing
 * store that V8 would free only at its next full collection, after the
 * following growth step had allocated more. Collecting right away keeps the
 * peak RSS at about the old plus the new table (a full collection of our
 * small JS heap takes a few ms, once per growth step). Falls back to
 * nothing where the collector cannot be reached.
 */
export function releaseGarbage(): void {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      // Free the dead buffers during the collection itself: the concurrent sweeper may wait behind busy
      // threads (the NDJSON worker) while the next growth step allocates (peak RSS +100 MiB seen).
      v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping');
      collect = runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  if (collect) collect();
}
