/**
 * NDJSON flow records encoded and written on a worker thread.
 *
 * Encoding a record costs about a microsecond, as much as counting a dozen
 * packets, so on a machine with a second core `flowtap analyze --flows`
 * hands it over: for each report the capture thread copies the flow's
 * record, cold words and TCP record (about 300 bytes) into the next slot of
 * a ring in a SharedArrayBuffer, and the worker encodes the slots in order
 * with the same encodeFlowRecord(), through a FlowTable over the ring
 * (FlowTable.over). The output is byte for byte what the capture thread
 * would have written.
 *
 * Ring protocol (header words, each on its own cache line): the capture
 * thread publishes its write count W every PUBLISH records and at close;
 * the worker publishes its read count R after every batch. Either side
 * sleeps with Atomics.wait only after announcing it (SLEEP / WAIT flags), so
 * the other side notifies only when someone sleeps. What a slot cannot hold
 * — interface names, TCP histories longer than the inline 12 letters — goes
 * through a MessagePort before the slot is published; the slot's flags tell
 * the worker to take it (receiveMessageOnPort, synchronous, in order).
 *
 * A write error in the worker (ENOSPC, EPIPE, ...) sets ERROR; the capture
 * thread throws it from the next record() or from close(), as the
 * in-thread writer would have.
 */
import { closeSync } from 'node:fs';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { FlowTable } from '../agent/flows/table.js';
import type { Pipeline } from '../agent/pipeline.js';
import type { Summary, SummaryState } from './summary.js';
import { openFlowsOutput } from './ndjson.js';

export const H_W = 0;
export const H_R = 16;
export const H_SLEEP = 32;
export const H_WAIT = 48;
export const H_CLOSED = 64;
export const H_ERROR = 80;
/** Never written: a word to sleep on for a fixed time. */
export const H_IDLE = 96;
/** Set by the worker once it runs, and when it stops (however it stops). */
export const H_STARTED = 104;
export const H_DONE = 108;
/** How long the capture thread waits for a worker that has not started before it gives up. */
const START_TIMEOUT_MS = 30_000;
export const HEADER_BYTES = 512;
export const META_WORDS = 4;
/** Slot flags: a names message, a history message precede this slot on the port. */
export const F_NAMES = 1;
export const F_HISTORY = 2;

const PUBLISH = 32;

/** The worker's script, beside this module's compiled file. */
export const WORKER_SCRIPT = new URL('./ndjson-worker.js', import.meta.url);

export interface OffloadData {
  sab: SharedArrayBuffer;
  slots: number;
  fd: number;
  port: MessagePort;
  /** Run the summary's listener too, and post its state at the end. */
  summary: boolean;
}

/** Byte offsets of the ring's parts for `slots` slots. */
export function ringLayout(slots: number): { meta: number; bases: number; storage: number; bytes: number } {
  const meta = HEADER_BYTES;
  const bases = meta + slots * META_WORDS * 4;
  const storage = bases + slots * 8;
  return { meta, bases, storage, bytes: storage + FlowTable.storageBytes(slots) };
}

export class OffloadWriter {
  lines = 0;
  private readonly sab: SharedArrayBuffer;
  private readonly h: Int32Array;
  private readonly meta: Int32Array;
  private readonly bases: Float64Array;
  private readonly ring: FlowTable;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly done: Promise<void>;
  private readonly fd: number;
  private readonly ownsFd: boolean;
  private w = 0;
  /** The worker's read count as last seen. */
  private r = 0;
  private published = 0;
  private namesSent = 0;
  private closed = false;
  private workerError: Error | undefined;
  private summaryState: SummaryState | undefined;

  /**
   * Opens `path` (`-` = stdout) and starts the worker; `slots` is the ring
   * size. With `summary`, the worker also runs that summary's listener on the
   * reports, and close() hands what it counted to `summary` (absorb()).
   */
  constructor(path: string, private readonly pipeline: Pipeline, readonly slots = 4096, private readonly summary?: Summary) {
    const out = openFlowsOutput(path);
    this.fd = out.fd;
    this.ownsFd = out.owned;
    const lay = ringLayout(slots);
    this.sab = new SharedArrayBuffer(lay.bytes);
    this.h = new Int32Array(this.sab, 0, HEADER_BYTES / 4);
    this.meta = new Int32Array(this.sab, lay.meta, slots * META_WORDS);
    this.bases = new Float64Array(this.sab, lay.bases, slots);
    this.ring = FlowTable.over(this.sab, lay.storage, slots);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const data: OffloadData = { sab: this.sab, slots, fd: this.fd, port: port2, summary: summary !== undefined };
    this.worker = new Worker(WORKER_SCRIPT, { workerData: data, transferList: [port2] });
    this.done = new Promise((resolve) => {
      this.worker.once('error', (e) => {
        this.workerError ??= e instanceof Error ? e : new Error(String(e));
        resolve();
      });
      this.worker.on('message', (m: { summary?: SummaryState }) => {
        if (m.summary) this.summaryState = m.summary;
      });
      this.worker.once('exit', () => resolve());
    });
  }

  /** Hands one flow report to the worker (FlowReportListener shape). */
  record(table: FlowTable, s: number, reason: number, final: boolean): void {
    const h = this.h;
    if (Atomics.load(h, H_ERROR) !== 0) throw this.error();
    const w = this.w;
    if (w - this.r >= this.slots) this.waitForRoom(w);
    const i = w % this.slots;
    let flags = 0;
    const names = this.pipeline.interfaces;
    if (names.length > this.namesSent) {
      this.port.postMessage(names.slice(this.namesSent).map((x) => x.name));
      this.namesSent = names.length;
      flags |= F_NAMES;
    }
    const extra = table.exportFlow(s, this.ring, i);
    if (extra !== '') {
      this.port.postMessage(extra);
      flags |= F_HISTORY;
    }
    const m = i * META_WORDS;
    this.meta[m] = reason;
    this.meta[m + 1] = final ? 1 : 0;
    this.meta[m + 2] = flags;
    this.bases[i] = this.pipeline.clock.base;
    this.w = w + 1;
    this.lines++;
    if (this.w - this.published >= PUBLISH) this.publish();
  }

  private publish(): void {
    this.published = this.w;
    Atomics.store(this.h, H_W, this.w);
    if (Atomics.load(this.h, H_SLEEP) !== 0) Atomics.notify(this.h, H_W);
  }

  private waitForRoom(w: number): void {
    const h = this.h;
    this.publish();
    Atomics.store(h, H_WAIT, 1);
    const since = Date.now();
    try {
      for (;;) {
        const r = Atomics.load(h, H_R);
        this.r = r;
        if (w - r < this.slots) return;
        if (Atomics.load(h, H_ERROR) !== 0) throw this.error();
        // Events (the worker's 'error', 'exit') cannot arrive while this thread waits: the worker's own flags tell.
        if (Atomics.load(h, H_DONE) !== 0) throw (this.workerError = new Error('the NDJSON worker stopped before writing every record'));
        if (Atomics.load(h, H_STARTED) === 0 && Date.now() - since > START_TIMEOUT_MS) {
          throw (this.workerError = new Error(`the NDJSON worker did not start within ${START_TIMEOUT_MS / 1000} s`));
        }
        Atomics.wait(h, H_R, r, 100);
      }
    } finally {
      Atomics.store(h, H_WAIT, 0);
    }
  }

  private error(): Error {
    if (this.workerError) return this.workerError;
    const m = receiveMessageOnPort(this.port)?.message as { message: string; code?: string } | undefined;
    const e = new Error(m?.message ?? 'the NDJSON worker failed') as NodeJS.ErrnoException;
    if (m?.code) e.code = m.code;
    this.workerError = e;
    return e;
  }

  /** Publishes the rest, waits until the worker has written every record, closes the output. Throws the worker's error, if any. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.publish();
    Atomics.store(this.h, H_CLOSED, 1);
    Atomics.notify(this.h, H_W);
    await this.done;
    const failed = Atomics.load(this.h, H_ERROR) !== 0 || this.workerError !== undefined;
    const err = failed ? this.error() : undefined;
    this.port.close();
    if (this.ownsFd) closeSync(this.fd);
    if (err) throw err;
    if (this.summary) {
      if (!this.summaryState) throw new Error('the NDJSON worker ended without its summary');
      this.summary.absorb(this.summaryState);
    }
  }
}
