/**
 * How the flow table and the TCP record pool grow when full: doubling while
 * small (below 64 Ki entries), then by an eighth (rounded up to a multiple
 * of 4096). Memory follows the live flows:
 * a large table is at least 8/9 full after a growth step. Growing copies
 * the records; by an eighth, each record is copied about 8 times in all,
 * amortised (a few hundred ms over a 1 M-flow run).
 */
export function nextCapacity(cap: number): number {
  if (cap < 65536) return Math.max(16, cap * 2);
  return Math.ceil((cap * 1.125) / 4096) * 4096;
}
