/**
 * Packet time. Internally a time is a float64 count of nanoseconds since a
 * base second (the first packet's), exact to the nanosecond for 104 days
 * around the base; it becomes epoch text only on output.
 */
export class Clock {
  /** Epoch second that t = 0 stands for; NaN until the first packet. */
  base = NaN;

  /** Packet time (ns since base) of an epoch timestamp. */
  toNs(sec: number, nsec: number): number {
    if (this.base !== this.base) this.base = sec;
    return (sec - this.base) * 1e9 + nsec;
  }

  /** Epoch seconds as text with nanosecond digits (a JSON number). */
  epochText(t: number): string {
    if (this.base !== this.base) return '0';
    let whole = Math.floor(t / 1e9);
    let ns = Math.round(t - whole * 1e9);
    // Far from the base a time is not exact to the ns, and its fraction can round up to a whole second.
    if (ns >= 1e9) {
      whole++;
      ns -= 1e9;
    }
    return `${this.base + whole}.${String(ns).padStart(9, '0')}`;
  }

  /** Epoch seconds as a float (µs-level precision), for summaries and metrics. */
  epoch(t: number): number {
    return this.base !== this.base ? 0 : this.base + t / 1e9;
  }
}
