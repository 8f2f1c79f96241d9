/**
 * Worker side of ndjson-offload.ts: encodes the ring's slots in order and
 * writes them to the descriptor it was given.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { FlowTable } from '../agent/flows/table.js';
import { Clock } from '../agent/clock.js';
import { LineWriter } from './ndjson.js';
import { Summary } from './summary.js';
import { F_HISTORY, F_NAMES, H_CLOSED, H_DONE, H_ERROR, H_IDLE, H_STARTED, H_R, H_SLEEP, H_W, H_WAIT, HEADER_BYTES, META_WORDS, ringLayout, type OffloadData } from './ndjson-offload.js';

const { sab, slots, fd, port, summary: withSummary } = workerData as OffloadData;
const h = new Int32Array(sab, 0, HEADER_BYTES / 4);

/** The next side message (posted before the slot that announces it was published). */
function side(): unknown {
  for (;;) {
    const m = receiveMessageOnPort(port);
    if (m !== undefined) return m.message;
    Atomics.wait(h, H_IDLE, 0, 1);
  }
}

function fail(e: unknown): void {
  const err = e as NodeJS.ErrnoException;
  port.postMessage({ message: err?.message ?? String(e), code: err?.code });
  Atomics.store(h, H_ERROR, 1);
  Atomics.notify(h, H_R);
}

function run(): void {
  const summary = withSummary ? new Summary() : undefined;
  const lay = ringLayout(slots);
  const meta = new Int32Array(sab, lay.meta, slots * META_WORDS);
  const bases = new Float64Array(sab, lay.bases, slots);
  const ring = FlowTable.over(sab, lay.storage, slots);
  const names: string[] = [];
  const clock = new Clock();
  const ctx = { clock, interfaceName: (i: number) => names[i] ?? String(i) };
  const out = new LineWriter({ fd });
  Atomics.store(h, H_STARTED, 1);
  let r = 0;
  for (;;) {
    let w = Atomics.load(h, H_W);
    if (w === r) {
      if (Atomics.load(h, H_CLOSED) !== 0 && Atomics.load(h, H_W) === r) break;
      Atomics.store(h, H_SLEEP, 1);
      w = Atomics.load(h, H_W);
      // A timeout, because close() may set CLOSED between the check and the wait without changing W.
      if (w === r && Atomics.load(h, H_CLOSED) === 0) Atomics.wait(h, H_W, w, 50);
      Atomics.store(h, H_SLEEP, 0);
      continue;
    }
    for (; r !== w; r++) {
      const i = r % slots;
      const m = i * META_WORDS;
      const flags = meta[m + 2];
      // One by one: a pcapng file can declare more interfaces than a spread call takes arguments.
      if (flags & F_NAMES) for (const name of side() as string[]) names.push(name);
      ring.tcp.setExtraHistory(i, flags & F_HISTORY ? (side() as string) : '');
      clock.base = bases[i];
      out.record(ring, i, meta[m], meta[m + 1] === 1, ctx);
      if (summary) summary.listener(ring, i, meta[m], meta[m + 1] === 1);
    }
    Atomics.store(h, H_R, r);
    if (Atomics.load(h, H_WAIT) !== 0) Atomics.notify(h, H_R);
  }
  out.flush();
  if (summary) parentPort!.postMessage({ summary: summary.state() });
}

try {
  run();
} catch (e) {
  fail(e);
} finally {
  Atomics.store(h, H_DONE, 1);
  Atomics.notify(h, H_R);
}
