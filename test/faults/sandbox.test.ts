/**
 * Issue 6, "Sandboxed user code": `command` jobs try to escape. Each attempt
 * (network, writes outside scratch, fork bomb, filling the disk, memory, cpu,
 * wall time) is stopped and reported as a clear task error, and the worker
 * carries on. Direct runSandboxed cases check each mechanism (and the
 * fallbacks when cgroups or bubblewrap are not used); the mesh cases check
 * what a user sees and that the same worker runs the next job.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLedger, summarizeLedger } from '../../ledger/index.js';
import type { UbatchClient } from '../../protocol/index.js';
import { canBubblewrap, runSandboxed, type SandboxOptions, type SandboxResult } from '../../worker/sandbox.js';
import { startStack, type TestStack } from '../helpers/stack.js';

const MiB = 1024 * 1024;
const bwrap = canBubblewrap();
const root = process.getuid?.() === 0;
const cgroupsWritable = root && existsSync('/sys/fs/cgroup');

let dir: string;
let server: Server;
let port: number;
let connections = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ubatch-sandbox-'));
  server = createServer((sock) => {
    connections++;
    sock.end('hello from the host\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function run(command: string, o: Partial<SandboxOptions> = {}): Promise<SandboxResult & { stdout: string; stderr: string; out: string; scratch: string; ms: number }> {
  const base = join(dir, `run-${++n}`);
  const out = join(base, 'out');
  const scratch = join(base, 'scratch');
  await mkdir(out, { recursive: true });
  await mkdir(scratch, { recursive: true });
  const t0 = Date.now();
  const r = await runSandboxed({
    argv: ['sh', '-c', command],
    cwd: scratch,
    outputDir: out,
    env: { UBATCH_OUTPUT_DIR: out, PORT: String(port) },
    walltimeS: 30,
    memoryMb: 256,
    cpuSeconds: 20,
    maxProcesses: 64,
    maxOutputBytes: 10 * MiB,
    stdoutPath: join(base, 'stdout'),
    stderrPath: join(base, 'stderr'),
    ...o,
  });
  return { ...r, stdout: await readFile(join(base, 'stdout'), 'utf8'), stderr: await readFile(join(base, 'stderr'), 'utf8'), out, scratch, ms: Date.now() - t0 };
}

const CONNECT = `python3 -c "
import os, socket
try:
    s = socket.create_connection(('127.0.0.1', int(os.environ['PORT'])), timeout=3)
    print('CONNECTED', s.recv(100))
except OSError as e:
    print('refused:', e)
"`;

describe('sandbox mechanisms (runSandboxed)', () => {
  it('a TCP connection to a server on the host loopback fails', async () => {
    const before = connections;
    const r = await run(CONNECT);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^refused:/);
    expect(r.stdout).not.toMatch(/CONNECTED/);
    expect(connections).toBe(before);
    expect(r.network).toBe('none (network namespace)');
  });

  it.skipIf(!bwrap)('writes outside scratch and outputs fail or stay invisible to the host; only the inputs are readable', async () => {
    const input = join(dir, 'input.csv');
    await writeFile(input, 'a,b\n1,2\n');
    const secret = join(dir, 'other-user-result.txt');
    await writeFile(secret, 'not yours\n');
    const hostTmp = `/tmp/ubatch-escape-${process.pid}-${Date.now()}`;
    const repoFile = join(import.meta.dirname, '..', '..', `ESCAPE-${process.pid}`);
    const attempt = (label: string, sh: string) => `if ${sh} 2>/dev/null; then echo "${label}: ok"; else echo "${label}: denied"; fi`;
    const r = await run(
      [
        attempt('etc', 'echo x > /etc/ubatch-escape'),
        attempt('input', `echo x >> ${input}`),
        attempt('input-dir', `echo x > ${dir}/next-to-input`),
        attempt('repo', `echo x > ${repoFile}`),
        attempt('hosttmp', `echo x > ${hostTmp}`),
        attempt('read-input', `grep -q 1,2 ${input}`),
        attempt('read-other', `cat ${secret}`),
        attempt('read-repo', `cat ${join(import.meta.dirname, '..', '..', 'package.json')}`),
        attempt('scratch', 'echo x > ./scratch.txt'),
        attempt('output', 'echo x > "$UBATCH_OUTPUT_DIR/result.txt"'),
        attempt('mount', 'mount -t tmpfs none /etc'),
      ].join('; '),
      { readOnlyPaths: [input] },
    );
    expect(r.exitCode).toBe(0);
    const got = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(': ')));
    // next to the input: denied on the read-only tree, or (inputs under /tmp) written to the private /tmp only
    expect(['ok', 'denied']).toContain(got['input-dir']);
    delete got['input-dir'];
    expect(got).toEqual({ etc: 'denied', input: 'denied', repo: 'denied', hosttmp: 'ok', 'read-input': 'ok', 'read-other': 'denied', 'read-repo': 'denied', scratch: 'ok', output: 'ok', mount: 'denied' });
    // the write to /tmp went to the sandbox's private tmpfs
    expect(existsSync(hostTmp)).toBe(false);
    expect(existsSync('/etc/ubatch-escape')).toBe(false);
    expect(existsSync(repoFile)).toBe(false);
    expect(existsSync(join(dir, 'next-to-input'))).toBe(false);
    expect(readFileSync(input, 'utf8')).toBe('a,b\n1,2\n');
    expect(readFileSync(join(r.out, 'result.txt'), 'utf8')).toBe('x\n');
    expect(r.filesystem).toBe('read-only system tree (bubblewrap)');
  });

  it.skipIf(!root)('a fork bomb is stopped at the process limit and leaves nothing behind', async () => {
    const r = await run('f() { f | f & }; f; sleep 30', { maxProcesses: 32, walltimeS: 20 });
    expect(r.killedFor).toBe('processes');
    expect(r.limitMessage).toMatch(/^process limit 32 reached/);
    expect(r.ms).toBeLessThan(15_000);
    // nothing of the tree survives: no sandbox cgroup left, no shell of ours running
    for (const c of ['pids', 'memory']) {
      const d = `/sys/fs/cgroup/${c}`;
      if (existsSync(d)) expect(readdirSync(d).filter((x) => x.startsWith(`ubatch-sbx-${process.pid}-`))).toEqual([]);
    }
    console.log(`fork bomb: stopped after ${r.ms} ms (${r.limits})`);
  });

  it('without cgroups, orphaned processes are still counted and the tree is stopped at the limit', async () => {
    // background children whose parent exits are re-parented: the sampler follows the process group / pid namespace
    const r = await run('for i in $(seq 60); do (sleep 20 &); done; sleep 30', { maxProcesses: 32, useCgroups: false });
    expect(r.killedFor).toBe('processes');
    expect(r.ms).toBeLessThan(15_000);
  });

  it('filling the disk stops at the output limit (one big file, and many small ones)', async () => {
    const big = await run('dd if=/dev/zero of="$UBATCH_OUTPUT_DIR/fill" bs=1M count=100000');
    expect(big.killedFor).toBe('output');
    expect(big.limitMessage).toMatch(/^output size limit 10 MiB exceeded/);
    const many = await run('i=0; while true; do i=$((i+1)); head -c 1048576 /dev/zero > "$UBATCH_OUTPUT_DIR/f$i" || exit 1; done');
    expect(many.killedFor).toBe('output');
    expect(many.limitMessage).toMatch(/^output size limit 10 MiB exceeded \(outputs, scratch and logs reached/);
    // bounded: at most what can be written between two samples
    expect(many.outputBytes).toBeLessThan(10 * MiB + 2000 * MiB);
    // a flood of stdout counts too
    const logs = await run('yes ubatch | head -c 50000000');
    expect(logs.killedFor).toBe('output');
  });

  it('allocating twice the memory limit is stopped', async () => {
    const r = await run('python3 -c "b = bytearray(128 * 1024 * 1024); import time; time.sleep(5)"', { memoryMb: 64 });
    expect(r.killedFor).toBe('memory');
    expect(r.limitMessage).toMatch(/^memory limit 64 MiB exceeded/);
    const sampled = await run('python3 -c "b = bytearray(128 * 1024 * 1024); import time; time.sleep(5)"', { memoryMb: 64, useCgroups: false });
    expect(sampled.killedFor).toBe('memory');
  });

  it('a busy loop is stopped at its cpu limit, a sleeper at its wall-time limit', async () => {
    const cpu = await run('python3 -c "while True: pass"', { cpuSeconds: 1, walltimeS: 60 });
    expect(cpu.killedFor).toBe('cpu');
    expect(cpu.limitMessage).toMatch(/^cpu time limit 1 s exceeded/);
    expect(cpu.cpuSeconds).toBeGreaterThan(0.5);
    const wall = await run('sleep 30', { walltimeS: 1 });
    expect(wall.killedFor).toBe('walltime');
    expect(wall.ms).toBeLessThan(5000);
  });

  it.skipIf(!bwrap)('the fallback without bubblewrap still has no network and records the host filesystem', async () => {
    const r = await run(CONNECT, { useBubblewrap: false });
    expect(r.stdout).toMatch(/^refused:/);
    expect(r.filesystem).toBe('host');
  });
});

describe.skipIf(!cgroupsWritable && !bwrap)('escapes through the mesh: clear task errors, the worker carries on', () => {
  let s: TestStack;
  let c: UbatchClient;
  beforeAll(async () => {
    s = await startStack({ workers: 1 });
    c = await s.client('mallory');
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('each escape fails its job with the limit named; the same worker then runs a normal job', async () => {
    const out = (name: string) => ({ path: join(s.dir, name) });
    const cases = [
      { name: 'memory', spec: { command: 'python3 -c "b = bytearray(128 * 1024 * 1024)"' }, resources: { memory_mb: 64 }, code: 'memory_exceeded', message: /^memory limit 64 MiB exceeded/ },
      { name: 'forkbomb', spec: { command: 'f() { f | f & }; f; sleep 30' }, resources: { processes: 32 }, code: 'process_limit', message: /^process limit 32 reached/ },
      { name: 'disk', spec: { command: 'dd if=/dev/zero of="$UBATCH_OUTPUT_DIR/fill" bs=1M count=100000' }, resources: { output_mb: 10 }, code: 'output_limit', message: /^output size limit 10 MiB exceeded/ },
      { name: 'cpu', spec: { command: 'python3 -c "while True: pass"' }, resources: { cpu_s: 1 }, code: 'cpu_exceeded', message: /^cpu time limit 1 s exceeded/ },
      { name: 'wall', spec: { command: 'sleep 60' }, resources: { walltime_s: 1 }, code: 'walltime_exceeded', message: /wall-time limit of 1 s/ },
      { name: 'socket', spec: { command: `${CONNECT.replace("print('refused:', e)", "raise SystemExit(f'no network: {e}')")}` }, resources: {}, code: 'command_failed', message: /no network/ },
      { name: 'etc', spec: { command: 'echo owned > /etc/ubatch-escape' }, resources: {}, code: 'command_failed', message: /Read-only file system/ },
    ];
    const before = connections;
    const subs = [];
    for (const k of cases) {
      const params = { ...k.spec, env: { PORT: String(port) } };
      subs.push({ k, sub: await c.submit({ kind: 'command', name: `escape-${k.name}`, params, resources: { max_attempts: 3, ...k.resources }, output: out(k.name) }) });
    }
    for (const { k, sub } of subs) {
      const info = await c.wait(sub.jobId, { timeoutMs: 90_000 });
      expect(info.state, k.name).toBe('failed');
      expect(info.failures[0]!.error.code, k.name).toBe(k.code);
      expect(info.failures[0]!.error.message, k.name).toMatch(k.message);
      // a limit of the job's own is not retried
      expect(info.failures[0]!.attempt, k.name).toBe(1);
      expect(existsSync(join(s.dir, k.name, 'task-0')), k.name).toBe(false);
    }
    expect(existsSync('/etc/ubatch-escape')).toBe(false);
    expect(connections, 'the host server saw no connection').toBe(before);
    // the same (only) worker runs the next job
    const ok = await c.submit({ kind: 'command', params: { command: 'echo fine > "$UBATCH_OUTPUT_DIR/ok.txt"' }, output: out('after') });
    const info = await c.wait(ok.jobId, { timeoutMs: 30_000 });
    expect(info.state).toBe('succeeded');
    expect(readFileSync(join(s.dir, 'after', 'task-0', 'ok.txt'), 'utf8')).toBe('fine\n');
    const records = await readLedger(s.connections[0]!);
    const charges = records.flatMap((r) => (r.entry.kind === 'task.charged' ? r.entry.charges : []));
    const okCharge = charges.find((ch) => ch.jobId === ok.jobId)!;
    expect(okCharge.provenance.worker.id).toBe(s.workers[0]!.id);
    expect(okCharge.provenance.sandbox?.network).toBe('none (network namespace)');
    if (bwrap) expect(okCharge.provenance.sandbox?.filesystem).toBe('read-only system tree (bubblewrap)');
    // every failed attempt charged once, as failed
    const sum = summarizeLedger(records);
    expect(sum.duplicateCharges).toEqual([]);
    for (const { sub } of subs) expect(charges.filter((ch) => ch.jobId === sub.jobId).map((ch) => ch.outcome)).toEqual(['failed']);
  }, 150_000);
});
