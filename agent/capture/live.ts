/**
 * Live capture on top of the patched `cap` binding (patches/cap+0.2.1.patch).
 *
 * The native side copies up to a buffer's worth of packets per
 * `pcap_dispatch` into one reusable buffer and calls JS once per batch; this
 * module walks the records and feeds a `PacketSink` with plain numbers, so no
 * object is created per packet. Each record in the batch buffer is:
 *
 *   uint32 caplen | uint32 wirelen | uint32 tsSec | uint32 tsNsec | caplen bytes | pad to 4
 *
 * (native byte order, read here through a Uint32Array over the same memory).
 *
 * Needs root or CAP_NET_RAW. `cap` must not be loaded in a worker thread
 * unless it is the patched build (the patch makes it worker-safe).
 */
import { createRequire } from 'node:module';
import type { PacketSink } from './types.js';

export interface LiveOptions {
  /** Interface name as libpcap knows it (`lo`, `eth0`, `any`). */
  device: string;
  /** BPF filter expression; empty or absent: every packet. */
  filter?: string;
  /** Bytes kept of each packet. Default 262144 (libpcap's maximum: nothing truncated). */
  snaplen?: number;
  /** Kernel capture buffer (ring) in bytes. Default 16 MiB. */
  bufferSize?: number;
  /** Promiscuous mode. Default true (as tcpdump). */
  promisc?: boolean;
  /**
   * Deliver each packet as soon as it arrives. Default false: on Linux the
   * kernel then packs packets into TPACKET_V3 blocks (much cheaper at high
   * rates) and hands a block over when it is full or `timeoutMs` passed.
   */
  immediate?: boolean;
  /** Longest wait for a partly filled block, in ms (non-immediate mode). Default 100. */
  timeoutMs?: number;
  /** Size of the user-space batch buffer. Default 4 MiB; at least 16 + snaplen rounded up to 4. */
  batchBytes?: number;
  /**
   * true (default): one JS call per batch of packets. false: one native→JS
   * call per packet (cap's original path, with timestamps); for comparison.
   */
  batch?: boolean;
  /** Request a link-layer type after opening (DLT_* value, e.g. 276 = LINUX_SLL2 on `any`). */
  datalink?: number;
  /**
   * Use this interface index instead of calling `sink.addInterface` (a
   * capture reopened after an error keeps the index it had).
   */
  ifIndex?: number;
  /** Called after each batch was handed to the sink (packets, captured bytes incl. record headers). */
  onBatch?: (packets: number, bytes: number) => void;
  /**
   * The capture stopped by itself (interface went down or away, or the sink
   * threw). The capture is closed when this is called. Without it, the error
   * is thrown from the event loop (uncaught).
   */
  onError?: (err: LiveCaptureError) => void;
}

export interface LiveStats {
  /** libpcap ps_recv: packets received by the capture (Linux: passed the filter, incl. not yet read). */
  received: number;
  /** libpcap ps_drop: dropped because the buffer was full. */
  dropped: number;
  /** libpcap ps_ifdrop: dropped by the interface / driver (where known). */
  ifDropped: number;
  /** Packets handed to the sink. */
  packets: number;
  /** Batches (JS callbacks) so far. */
  batches: number;
}

export interface LiveCapture {
  readonly device: string;
  /** LINKTYPE_* of the capture (as in capture files: 1 Ethernet, 101 raw IP, 113 SLL, 276 SLL2). */
  readonly linktype: number;
  /** The DLT_* value libpcap reports (differs from linktype for raw IP: DLT_RAW 12 vs LINKTYPE_RAW 101). */
  readonly dlt: number;
  /** libpcap's name for the DLT (e.g. 'EN10MB', 'LINUX_SLL2'), or null. */
  readonly dltName: string | null;
  /** Snapshot length in effect. */
  readonly snaplen: number;
  /** Time stamp precision the kernel gives (tsNsec is always nanoseconds). */
  readonly tstampPrecision: 'nano' | 'micro';
  /** Index the sink returned for this interface. */
  readonly ifIndex: number;
  readonly closed: boolean;
  /** Counters; after close (or a capture error) the values as of that moment. */
  stats(): LiveStats;
  /** Stops capturing. Safe to call more than once, and from inside the sink. */
  close(): void;
}

export type LiveCaptureErrorReason =
  | 'no_such_device'
  | 'permission_denied'
  | 'bad_filter'
  | 'interface_down'
  | 'bad_options'
  | 'not_patched'
  | 'open_failed'
  | 'capture_failed'
  | 'sink_failed';

export class LiveCaptureError extends Error {
  constructor(
    readonly reason: LiveCaptureErrorReason,
    readonly device: string,
    message: string,
    /** libpcap's own message, when there is one. */
    readonly detail: string = '',
    /** Devices libpcap lists, for `no_such_device`. */
    readonly available: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LiveCaptureError';
  }
}

// --- the binding (CommonJS, no types of its own) -------------------------

interface NativeDevice {
  name: string;
  description?: string;
  addresses: { addr?: string }[];
  flags?: string;
}

interface NativeOpenOptions {
  snaplen?: number;
  promisc?: boolean;
  immediate?: boolean;
  timeout?: number;
  batch?: boolean;
  tstampPrecision?: 'nano' | 'micro';
  datalink?: number;
}

interface NativeCap {
  open(device: string, filter: string, bufSize: number, buffer: Buffer, options?: NativeOpenOptions): string;
  close(): boolean;
  stats(): { ps_recv: number; ps_drop: number; ps_ifdrop: number };
  info(): { linktype: number; dlt: number; dltName: string | null; snaplen: number; tstampPrecision: 'nano' | 'micro'; batch: boolean };
  on(event: 'batch', fn: (count: number, bytes: number) => void): this;
  on(event: 'packet', fn: (nbytes: number, truncated: boolean, wirelen: number, tsSec: number, tsNsec: number) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  removeAllListeners(): this;
}

interface NativeCapClass {
  new (): NativeCap;
  deviceList(): NativeDevice[];
  BATCH_HEADER_BYTES?: number;
  features?: { batch?: boolean; stats?: boolean; options?: boolean; heldBuffer?: boolean };
}

let capClass: NativeCapClass | undefined;

/**
 * Native capture objects are never left to the garbage collector: the
 * binding's destructor (Nan::AsyncResource → node::EmitAsyncDestroy) runs
 * inside the GC's weak callback and crashes the process there once async
 * hooks are in use (seen with an HTTP server in the same process: SIGSEGV
 * in AsyncWrap::EmitDestroy from Pcap::~Pcap). So a closed one goes back to
 * this pool and the next openLive reuses it (the binding's open() accepts a
 * closed handle); the pool never holds more than the most captures open
 * at once.
 */
const idleCaps: NativeCap[] = [];

function takeCap(C: NativeCapClass): NativeCap {
  const c = idleCaps.pop();
  if (c === undefined) return new C();
  c.removeAllListeners();
  return c;
}

/** Returns a closed capture object for reuse, once the native side finished the batch it may be in. */
function releaseCap(cap: NativeCap): void {
  setImmediate(() => idleCaps.push(cap));
}

/** Loads `cap` on first use, and checks it is the patched build. */
function loadCap(device: string): NativeCapClass {
  if (capClass) return capClass;
  let mod: { Cap: NativeCapClass };
  try {
    mod = createRequire(import.meta.url)('cap') as { Cap: NativeCapClass };
  } catch (err) {
    throw new LiveCaptureError('not_patched', device,
      `cannot load the cap capture binding (is libpcap installed and did \`npm ci\` build it?): ${(err as Error).message}`,
      (err as Error).message, [], { cause: err });
  }
  const f = mod.Cap.features;
  if (!f?.batch || !f.stats || !f.options || !f.heldBuffer || mod.Cap.BATCH_HEADER_BYTES !== 16) {
    throw new LiveCaptureError('not_patched', device,
      'the installed cap binding is not the patched build (patches/cap+0.2.1.patch): run `npm ci` (its postinstall applies the patch and rebuilds cap)');
  }
  capClass = mod.Cap;
  return capClass;
}

/** Capture devices libpcap can see (names only). */
export function listDevices(): string[] {
  return loadCap('').deviceList().map((d) => d.name);
}

const HDR = 16;
const MAX_SNAPLEN = 262144;

function positiveInt(name: string, v: number | undefined, dflt: number, device: string, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > 0x7fffffff) {
    throw new LiveCaptureError('bad_options', device, `openLive: ${name} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

function openError(err: unknown, device: string, filter: string, C: NativeCapClass): LiveCaptureError {
  const e = err as Error & { code?: string; pcapStatus?: number; stage?: string };
  const detail = e?.message ?? String(err);
  const code = e?.code ?? '';
  if (code === 'PCAP_ERROR_NO_SUCH_DEVICE' || /no such device/i.test(detail)) {
    let names: string[] = [];
    try {
      names = C.deviceList().map((d) => d.name);
    } catch {
      // listing is best effort
    }
    const list = names.length > 0 ? names.join(', ') : '(none: libpcap lists no devices)';
    return new LiveCaptureError('no_such_device', device,
      `no such capture device "${device}"; available devices: ${list}`, detail, names, { cause: err });
  }
  if (code === 'PCAP_ERROR_PROMISC_PERM_DENIED') {
    return new LiveCaptureError('permission_denied', device,
      `permission denied for promiscuous mode on "${device}": it needs the CAP_NET_ADMIN capability `
      + `(or capture without promiscuous mode); libpcap: ${detail}`,
      detail, [], { cause: err });
  }
  if (code === 'PCAP_ERROR_PERM_DENIED' || /permission|not permitted/i.test(detail)) {
    return new LiveCaptureError('permission_denied', device,
      `permission denied capturing on "${device}": live capture needs root or the CAP_NET_RAW capability `
      + `(e.g. setcap cap_net_raw+eip on the node binary, or AmbientCapabilities=CAP_NET_RAW in a systemd unit); libpcap: ${detail}`,
      detail, [], { cause: err });
  }
  if (code === 'ERR_CAP_FILTER' || e?.stage === 'filter') {
    return new LiveCaptureError('bad_filter', device,
      `invalid BPF filter "${filter}" for "${device}": ${detail}`, detail, [], { cause: err });
  }
  if (code === 'PCAP_ERROR_IFACE_NOT_UP') {
    return new LiveCaptureError('interface_down', device,
      `capture device "${device}" is not up: ${detail}`, detail, [], { cause: err });
  }
  if (code === 'ERR_CAP_BUFFER_TOO_SMALL' || e instanceof TypeError) {
    return new LiveCaptureError('bad_options', device, `openLive: ${detail}`, detail, [], { cause: err });
  }
  return new LiveCaptureError('open_failed', device,
    `cannot open capture on "${device}": ${detail}`, detail, [], { cause: err });
}

/**
 * Opens a live capture and feeds `sink`: declares the interface first
 * (`sink.addInterface`), then one `sink.packet` per captured packet. The
 * buffer given to `sink.packet` is reused: it is valid during the call only.
 * Throws LiveCaptureError when the capture cannot be opened.
 */
export function openLive(options: LiveOptions, sink: PacketSink): LiveCapture {
  const device = options.device;
  if (typeof device !== 'string' || device === '') {
    throw new LiveCaptureError('bad_options', String(device), 'openLive: device must be a non-empty string');
  }
  const filter = options.filter ?? '';
  const snaplenReq = positiveInt('snaplen', options.snaplen, MAX_SNAPLEN, device);
  if (snaplenReq > MAX_SNAPLEN) {
    throw new LiveCaptureError('bad_options', device, `openLive: snaplen must be at most ${MAX_SNAPLEN}, got ${snaplenReq}`);
  }
  const bufferSize = positiveInt('bufferSize', options.bufferSize, 16 << 20, device);
  const timeoutMs = positiveInt('timeoutMs', options.timeoutMs, 100, device, 0);
  const batch = options.batch ?? true;
  const minBatch = HDR + ((snaplenReq + 3) & ~3);
  const batchBytes = positiveInt('batchBytes', options.batchBytes, Math.max(4 << 20, minBatch), device);
  if (batch && batchBytes < minBatch) {
    throw new LiveCaptureError('bad_options', device,
      `openLive: batchBytes ${batchBytes} is too small for snaplen ${snaplenReq} (needs at least ${minBatch})`);
  }

  const C = loadCap(device);
  // Its own ArrayBuffer (not a pool slice): offset 0, so 4-aligned for the Uint32Array view.
  const buf = Buffer.alloc(batch ? batchBytes : Math.max(snaplenReq, 1));
  const u32 = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  if (buf.byteOffset % 4 !== 0) throw new Error('openLive: batch buffer is not 4-byte aligned');

  const cap = takeCap(C);
  try {
    cap.open(device, filter, bufferSize, buf, {
      snaplen: snaplenReq,
      promisc: options.promisc ?? true,
      immediate: options.immediate ?? false,
      timeout: timeoutMs,
      batch,
      tstampPrecision: 'nano',
      ...(options.datalink !== undefined ? { datalink: options.datalink } : {}),
    });
  } catch (err) {
    releaseCap(cap);
    throw openError(err, device, filter, C);
  }

  const info = cap.info();
  let ifIndex: number;
  try {
    ifIndex = options.ifIndex ?? sink.addInterface({ linktype: info.linktype, snaplen: info.snaplen, name: device, fcsBytes: 0 });
    if (ifIndex < 0) throw new Error(`${device}: more capture interfaces than a run may have`);
  } catch (err) {
    cap.close();
    releaseCap(cap);
    throw err;
  }

  let closed = false;
  let packets = 0;
  let batches = 0;
  const onBatch = options.onBatch;
  const onError = options.onError;

  const fail = (err: LiveCaptureError): void => {
    close();
    if (onError) onError(err);
    else throw err;
  };

  if (batch) {
    cap.on('batch', (count, bytes) => {
      batches++;
      let off = 0;
      let i = 0;
      try {
        for (; i < count && !closed; i++) {
          const w = off >>> 2;
          const caplen = u32[w];
          sink.packet(buf, off + HDR, caplen, u32[w + 1], u32[w + 2], u32[w + 3], ifIndex);
          off += HDR + ((caplen + 3) & ~3);
          packets++;
        }
        // The batch buffer is reused by the next batch: a sink holding packets back must finish them now.
        sink.flush?.();
      } catch (err) {
        fail(new LiveCaptureError('sink_failed', device, `packet sink threw on "${device}": ${(err as Error)?.message ?? String(err)}`,
          '', [], { cause: err }));
        return;
      }
      if (onBatch) onBatch(i, bytes);
    });
  } else {
    cap.on('packet', (nbytes, _truncated, wirelen, tsSec, tsNsec) => {
      if (closed) return;
      batches++;
      try {
        sink.packet(buf, 0, nbytes, wirelen, tsSec, tsNsec, ifIndex);
        sink.flush?.();
      } catch (err) {
        fail(new LiveCaptureError('sink_failed', device, `packet sink threw on "${device}": ${(err as Error)?.message ?? String(err)}`,
          '', [], { cause: err }));
        return;
      }
      packets++;
      if (onBatch) onBatch(1, nbytes);
    });
  }

  cap.on('error', (err) => {
    // The binding already closed the handle (its stats are kept).
    fail(new LiveCaptureError('capture_failed', device, `capture on "${device}" stopped: ${err.message}`, err.message, [], { cause: err }));
  });

  // pcap_stats as of close (the binding keeps them too, but not if reading them failed).
  let finalPcap: { ps_recv: number; ps_drop: number; ps_ifdrop: number } | undefined;

  function stats(): LiveStats {
    const s = finalPcap ?? cap.stats();
    return { received: s.ps_recv, dropped: s.ps_drop, ifDropped: s.ps_ifdrop, packets, batches };
  }

  function close(): void {
    if (closed) return;
    closed = true;
    cap.close();
    try {
      finalPcap = cap.stats();
    } catch {
      finalPcap = { ps_recv: 0, ps_drop: 0, ps_ifdrop: 0 };
    }
    releaseCap(cap);
  }

  return {
    device,
    linktype: info.linktype,
    dlt: info.dlt,
    dltName: info.dltName,
    snaplen: info.snaplen,
    tstampPrecision: info.tstampPrecision,
    ifIndex,
    get closed() {
      return closed;
    },
    stats,
    close,
  };
}
