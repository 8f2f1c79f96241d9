/** Runs flowtap's analysis in-process and returns parsed flow records. */
import { analyze, parseAnalyzeArgs, type AnalyzeResult } from '../../agent/cli.js';
import { Pipeline } from '../../agent/pipeline.js';
import type { Packet } from '../../parsers/packet.js';
import { formatAddr } from '../../parsers/addr.js';

export type FlowRec = Record<string, any>;

export interface Analysis extends AnalyzeResult {
  records: FlowRec[];
  lines: string[];
  errors: string[];
  /** Later IP fragments seen, per "proto src sport dst dport": packets and wire bytes. */
  laterFragments: Map<string, { pkts: number; bytes: number }>;
}

const PROTO: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmpv6' };

/** A pipeline that also records later fragments (which tshark's no-defrag view does not count). */
class FragmentRecordingPipeline extends Pipeline {
  readonly laterFragments = new Map<string, { pkts: number; bytes: number }>();
  override layer(p: Packet): number {
    if (p.fragment === 2) {
      const k = `${PROTO[p.proto] ?? p.proto} ${formatAddr(p.ipVersion, p.addr, 0)} ${p.sport} ${formatAddr(p.ipVersion, p.addr, 4)} ${p.dport}`;
      const e = this.laterFragments.get(k) ?? { pkts: 0, bytes: 0 };
      e.pkts++;
      e.bytes += p.wirelen;
      this.laterFragments.set(k, e);
    }
    return super.layer(p);
  }
}

export async function analyzeFiles(files: string[], args: string[] = []): Promise<Analysis> {
  const cfg = parseAnalyzeArgs([...files, ...args]);
  const lines: string[] = [];
  const errors: string[] = [];
  let rec: FragmentRecordingPipeline | undefined;
  const res = await analyze(cfg, {
    log: (l) => errors.push(l),
    onLine: (l) => lines.push(l),
    makePipeline: (o) => (rec = new FragmentRecordingPipeline(o)),
  });
  return { ...res, lines, records: lines.map((l) => JSON.parse(l) as FlowRec), errors, laterFragments: rec!.laterFragments };
}
