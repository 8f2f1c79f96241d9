/**
 * The container image without a Docker engine: the Dockerfile's build stage
 * is scripts/docker-build.sh, run here into a temporary directory; its
 * runtime stage (a copy of node with cap_net_raw file capabilities, a
 * non-root user, HEALTHCHECK on /healthz) is re-enacted on the result in a
 * network namespace. Also checks that the Dockerfile and the script name the
 * same sources, so the two stay in step.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, delNetns, httpGet, killAll, netns, procStatus, readNdjson, requirePrereqs, sh, sleep, start } from './run-helpers.js';

const NS = `ft-k-${process.pid}`;
/** The Dockerfile with continuation lines joined. */
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
let dir = '';
let out = '';

beforeAll(() => {
  requirePrereqs(['ip', 'setpriv', 'setcap', 'getcap', 'ldd', 'make', 'g++']);
  dir = mkdtempSync(join(tmpdir(), 'ft-docker-'));
  chmodSync(dir, 0o755);
  out = join(dir, 'opt-flowtap');
  sh(join(ROOT, 'scripts', 'docker-build.sh'), [out]);
  delNetns(NS);
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
}, 240_000);

afterAll(async () => {
  await killAll();
  delNetns(NS);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Dockerfile and scripts/docker-build.sh', () => {
  it('copy the same sources; the build stage runs the script; the runtime stage is libpcap-only, non-root, with a HEALTHCHECK', () => {
    const sources = sh(join(ROOT, 'scripts', 'docker-build.sh'), ['--sources']).trim().split('\n');
    const stages = dockerfile.split(/^FROM /m).slice(1);
    expect(stages).toHaveLength(2);
    const [build, runtime] = stages;
    const copied = [...build.matchAll(/^COPY (.+)$/gm)].flatMap((m) => {
      const parts = m[1].trim().split(/\s+/);
      return parts.slice(0, -1).map((p) => p.replace(/\/$/, ''));
    });
    expect(copied.sort()).toEqual([...sources].sort());
    expect(build).toMatch(/^RUN scripts\/docker-build\.sh \/opt\/flowtap$/m);
    expect(build).toMatch(/libpcap-dev/);
    expect(runtime).toMatch(/libpcap0\.8/);
    expect(runtime).not.toMatch(/libpcap-dev|g\+\+/);
    expect(runtime).toMatch(/^USER 10001:10001$/m);
    expect(runtime).toMatch(/^COPY --from=build \/opt\/flowtap \/opt\/flowtap$/m);
    expect(runtime).toMatch(/setcap cap_net_raw\+ep \/usr\/local\/bin\/flowtap-node /);
    expect(runtime).toMatch(/^HEALTHCHECK .*\/healthz/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/flowtap-node", "\/opt\/flowtap\/bin\/flowtap\.js", "run"\]$/m);
  });

  it('the script builds a runtime tree: production dependencies only, cap linked against libpcap.so.0.8', () => {
    expect(readdirSync(out).sort()).toEqual(['bin', 'dist', 'node_modules', 'package.json']);
    const mods = readdirSync(join(out, 'node_modules'));
    expect(mods).toEqual(expect.arrayContaining(['cap', 'prom-client']));
    for (const dev of ['typescript', 'vitest', 'patch-package', 'pcap-parser', '@types']) expect(mods).not.toContain(dev);
    expect(existsSync(join(out, 'dist', 'agent', 'run.js'))).toBe(true);
    expect(existsSync(join(out, 'dist', 'bench'))).toBe(false);
    expect(sh('ldd', [join(out, 'node_modules', 'cap', 'build', 'Release', 'cap.node')])).toMatch(/libpcap\.so\.0\.8 =>/);
    // The patched binding (batches, stats), not cap as published.
    expect(readFileSync(join(out, 'node_modules', 'cap', 'lib', 'Cap.js'), 'utf8')).toContain('BATCH_HEADER_BYTES');
  });

  it('as in the image: non-root, CAP_NET_RAW from file capabilities only, captures; the HEALTHCHECK command passes', async () => {
    const node = join(dir, 'flowtap-node');
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
    sh('setcap', ['cap_net_raw+ep', node]);
    expect(sh('getcap', [node])).toMatch(/cap_net_raw[=+]ep/);
    const flowsDir = join(dir, 'var');
    sh('install', ['-d', '-m', '0777', flowsDir]);
    const flows = join(flowsDir, 'flows.ndjson');
    // No inherited or ambient capabilities: only the binary's file capability can grant CAP_NET_RAW.
    const prefix = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all'];
    const ip = ['ip', 'netns', 'exec', NS, ...prefix, node, join(out, 'bin', 'flowtap.js'), 'run', '-i', 'lo', '--flows', flows, '--listen', '127.0.0.1:0'];
    const ft = start(ip[0], ip.slice(1));
    const port = Number((await ft.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    const st = procStatus(ft.pid);
    expect(st.uid).toBe(65534);
    expect(st.capEff).toBe(1n << 13n);
    expect(st.capAmb).toBe(0n);
    netns(NS, process.execPath, '-e', "const s = require('dgram').createSocket('udp4'); s.send(Buffer.alloc(10), 7777, '127.0.0.1', () => s.close())");
    await sleep(400);
    const hc = JSON.parse(/^HEALTHCHECK .*? CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
    expect(hc[0]).toBe('/usr/local/bin/node');
    const health = sh('ip', ['netns', 'exec', NS, 'env', `FLOWTAP_LISTEN=0.0.0.0:${port}`, process.execPath, ...hc.slice(1)]);
    expect(health).toBe('');
    expect((await httpGet(NS, port, '/healthz')).status).toBe(200);
    expect((await ft.stop()).code, ft.stderr()).toBe(0);
    expect(readNdjson(flows).filter((r) => r.proto === 'udp' && r['id.resp_p'] === 7777)).toHaveLength(1);
  });
});
