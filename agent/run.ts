/**
 * `flowtap run`: the live host agent (issue: live host agent). Not built yet;
 * this entry point only reports that.
 */
export async function runMain(_argv: string[]): Promise<number> {
  process.stderr.write('flowtap: `run` (live capture) is not available in this build yet\n');
  return 2;
}
