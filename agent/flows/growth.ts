/**
 * How the flow table and the TCP record pool grow when full: doubling up to
 * 256 Ki entries, then by a quarter (a multiple of 4096). Spare entries stay
 * below a fifth of the total once the table is large, and growth copies
 * each record about four times in all, amortised.
 */
export function nextCapacity(cap: number): number {
  if (cap < 262144) return Math.max(16, cap * 2);
  return Math.ceil((cap * 1.25) / 4096) * 4096;
}
