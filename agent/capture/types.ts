/**
 * The narrow interface between a packet source (capture file reader, live
 * capture) and everything downstream. One call per packet record, all
 * arguments are numbers or the reader's own chunk buffer: no object is
 * created per packet. The buffer is only valid during the call.
 */

/** One capture interface: a classic pcap file has one, a pcapng section one per IDB. */
export interface InterfaceInfo {
  /** LINKTYPE_* value (the lower 16 bits of the link-type field). */
  linktype: number;
  /** Snapshot length announced by the file (0 = unknown / unlimited). */
  snaplen: number;
  /** Human name: pcapng `if_name`, else `<file basename>` or `<file basename>#<n>`. */
  name: string;
  /** Bytes of frame check sequence at the end of every frame (from the pcap FCS bits), usually 0. */
  fcsBytes: number;
}

/** Interfaces one run may declare: a flow record keeps the interface index in 16 bits (a real capture has a handful). */
export const MAX_INTERFACES = 65535;

export interface PacketSink {
  /**
   * Declares an interface before its first packet. Returns the index the
   * source must pass as `ifIndex` for packets on it (indexes are global for
   * a run, so several files never share one), or -1 when the run already
   * has MAX_INTERFACES: the source then stops with an error.
   */
  addInterface(info: InterfaceInfo): number;

  /**
   * One packet record.
   * @param buf     buffer holding the packet bytes (a chunk of the file or a capture buffer)
   * @param off     offset of the first captured byte in `buf`
   * @param caplen  captured bytes available at `buf[off .. off+caplen)`
   * @param wirelen original length on the wire (>= caplen in a sane file; sources pass it as recorded)
   * @param tsSec   timestamp, whole seconds since the epoch (may exceed 2^32 for pcapng)
   * @param tsNsec  timestamp, nanoseconds within the second, 0 <= tsNsec < 1e9
   * @param ifIndex index returned by `addInterface`
   */
  packet(buf: Uint8Array, off: number, caplen: number, wirelen: number, tsSec: number, tsNsec: number, ifIndex: number): void;

  /**
   * The buffer given to `packet()` is about to be reused: a sink that keeps
   * references into it (to process packets in batches) must finish them now.
   * Sources call it after every chunk or batch of packets, and at the end.
   */
  flush?(): void;
}

/** Why a capture file stopped being readable. Closed set. */
export type FileErrorReason =
  | 'open_failed'
  | 'bad_magic'
  | 'bad_header'
  | 'bad_record_length'
  | 'bad_block'
  | 'truncated_record'
  | 'truncated_header'
  | 'gzip_error'
  | 'read_error';

/** A damaged or unreadable capture file: what, where, and how much was read before it. */
export class CaptureFileError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly packets: number,
    readonly reason: FileErrorReason,
    readonly detail: string,
  ) {
    super(`${file}: ${reason} at byte ${offset} after ${packets} packets: ${detail}`);
    this.name = 'CaptureFileError';
  }
}

/** What a reader reports when a file is done (completely or not). */
export interface ReadResult {
  file: string;
  format: 'pcap' | 'pcapng' | 'unknown';
  /** True when the file was gzip-compressed. */
  compressed: boolean;
  /** Packet records delivered to the sink. */
  packets: number;
  /** Bytes of (decompressed) capture data consumed. */
  bytes: number;
  /** Set when the file ended early or was unreadable; packets before it were delivered. */
  error?: CaptureFileError;
}
