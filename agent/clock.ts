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

  /** Whole epoch seconds and nanoseconds of the time split() was given last. */
  sec = 0;
  nsec = 0;

  /**
   * Splits packet time t into epoch seconds and nanoseconds (`sec`, `nsec`).
   * Far from the base (beyond 2^53 ns, 104 days) t is not exact to the ns:
   * its fraction may then round to a whole second or below zero, and is
   * carried so that the digits always form a valid time (never before 1970).
   */
  split(t: number): void {
    let whole = Math.floor(t / 1e9);
    let ns = Math.round(t - whole * 1e9);
    if (ns >= 1e9) {
      whole++;
      ns -= 1e9;
    } else if (ns < 0) {
      whole--;
      ns += 1e9;
    }
    let sec = this.base + whole;
    if (sec < 0) {
      sec = 0;
      ns = 0;
    }
    this.sec = sec;
    this.nsec = ns;
  }

  /** Epoch seconds as text with nanosecond digits (a JSON number). */
  epochText(t: number): string {
    if (this.base !== this.base) return '0';
    this.split(t);
    return `${this.sec}.${String(this.nsec).padStart(9, '0')}`;
  }

  /** Epoch seconds as a float (µs-level precision), for summaries and metrics. */
  epoch(t: number): number {
    return this.base !== this.base ? 0 : this.base + t / 1e9;
  }
}
