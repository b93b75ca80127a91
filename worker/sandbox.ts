/**
 * Runs a user command in a sandbox: its own process group, a private scratch
 * directory as cwd/HOME/TMPDIR, no network (a fresh network namespace via
 * `unshare -n` where the host allows it, otherwise recorded as not isolated),
 * a file-size limit (prlimit --fsize), a wall-time limit and a memory limit
 * (the process tree's resident memory is sampled and the group killed above it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';

export interface SandboxOptions {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  walltimeS: number;
  memoryMb: number;
  /** largest file the command may write @default 4 GiB */
  maxFileBytes?: number;
  stdoutPath: string;
  stderrPath: string;
  signal?: AbortSignal;
  onTick?: () => void;
}

export interface SandboxResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  killedFor?: 'walltime' | 'memory' | 'cancelled';
  cpuSeconds: number;
  wallSeconds: number;
  peakRssBytes: number;
  network: 'none (network namespace)' | 'host (unshare unavailable)';
}

let unshareWorks: boolean | undefined;
export function canUnshareNetwork(): boolean {
  if (unshareWorks === undefined) {
    const r = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore', timeout: 5000 });
    unshareWorks = r.status === 0;
  }
  return unshareWorks;
}

const CLK_TCK = 100;
const PAGE = 4096;

/** cpu seconds and resident bytes of every live process in a process group (from /proc). */
async function sampleGroup(pgid: number): Promise<{ cpu: number; rss: number }> {
  let cpu = 0;
  let rss = 0;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return { cpu, rss };
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await readFile(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after comm: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13) cstime(14) ... rss(21)
      if (Number(rest[2]) !== pgid) continue;
      cpu += (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
      rss += Number(rest[21]) * PAGE;
    } catch {
      /* process exited while we looked: fine */
    }
  }
  return { cpu, rss };
}

export async function runSandboxed(o: SandboxOptions): Promise<SandboxResult> {
  const isolated = canUnshareNetwork();
  const fsize = o.maxFileBytes ?? 4 * 1024 ** 3;
  // `times` after the command reports user+sys of all waited-for descendants
  const wrapped = ['sh', '-c', '"$@"; rc=$?; times >&3; exit $rc', 'ubatch-sandbox', ...o.argv];
  const prefix = ['prlimit', `--fsize=${fsize}`, '--core=0', '--'];
  const argv = isolated ? ['unshare', '-n', ...prefix, ...wrapped] : [...prefix, ...wrapped];
  const t0 = performance.now();
  const out = createWriteStream(o.stdoutPath);
  const err = createWriteStream(o.stderrPath);
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: o.cwd,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...o.env, HOME: o.cwd, TMPDIR: o.cwd },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(err);
  let timesText = '';
  child.stdio[3]!.on('data', (d: Buffer) => (timesText += d.toString()));
  let killedFor: SandboxResult['killedFor'];
  let peakRss = 0;
  let lastCpu = 0;
  const killGroup = (why: NonNullable<SandboxResult['killedFor']>) => {
    if (!killedFor) killedFor = why;
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const onAbort = () => killGroup('cancelled');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const wallTimer = setTimeout(() => killGroup('walltime'), o.walltimeS * 1000);
  const limitBytes = o.memoryMb * 1024 * 1024;
  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling || !child.pid) return;
    sampling = true;
    void sampleGroup(child.pid)
      .then(({ cpu, rss }) => {
        peakRss = Math.max(peakRss, rss);
        lastCpu = Math.max(lastCpu, cpu);
        if (rss > limitBytes) killGroup('memory');
        o.onTick?.();
      })
      .finally(() => (sampling = false));
  }, 200);
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(wallTimer);
  clearInterval(sampler);
  o.signal?.removeEventListener('abort', onAbort);
  // make sure nothing of the group survives (daemonised children)
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* group already empty */
  }
  await Promise.all([new Promise((r) => out.end(r)), new Promise((r) => err.end(r))]);
  const cpu = parseTimes(timesText) ?? lastCpu;
  return {
    exitCode: code,
    signal: sig,
    ...(killedFor ? { killedFor } : {}),
    cpuSeconds: cpu,
    wallSeconds: (performance.now() - t0) / 1000,
    peakRssBytes: peakRss,
    network: isolated ? 'none (network namespace)' : 'host (unshare unavailable)',
  };
}

/** `times` prints two lines "XmY.YYYs XmY.YYYs": the shell's own, then its children's user and system time. */
export function parseTimes(text: string): number | undefined {
  const lines = text.trim().split('\n');
  const child = lines[1];
  if (!child) return undefined;
  let total = 0;
  for (const m of child.matchAll(/(\d+)m([\d.]+)s/g)) total += Number(m[1]) * 60 + Number(m[2]);
  return total;
}
