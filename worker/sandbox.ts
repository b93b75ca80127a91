/**
 * Runs a user command in a sandbox.
 *
 * Isolation (best available, recorded in provenance):
 *  - bubblewrap (`bwrap`) when it works on the host: a read-only tree of the
 *    system directories (/usr, /etc, /opt and the /bin, /lib symlinks), the
 *    task's input files bound read-only at their own paths, and only the
 *    attempt's output directory and private scratch directory writable; a
 *    private /tmp (size-limited tmpfs), fresh /dev and /proc; new network, pid
 *    and IPC namespaces, a new session, all capabilities dropped, no new
 *    privileges; it dies with the worker. Everything else on the host (other
 *    users' outputs, the worker's credentials, the repository) is invisible.
 *    Operators can add read-only paths (a shared software tree) with the
 *    worker's environment variable UBATCH_SANDBOX_READ_PATHS (colon-separated).
 *  - otherwise `unshare -n` (network only; the filesystem is the host's), or
 *    nothing where even that is refused.
 *
 * Limits (each violation stops the whole process tree and is reported as
 * `killedFor`, with the figure in `limitMessage`):
 *  - wall time: a timer;
 *  - memory: a memory cgroup (`memory.max` / `memory.limit_in_bytes`; the
 *    kernel OOM-kills inside it) where the cgroup tree is writable, else the
 *    tree's resident memory is sampled every 200 ms and the tree killed above it;
 *  - processes (and threads): a pids cgroup (`pids.max`; the first refused fork
 *    stops the task) else sampled;
 *  - cpu seconds: RLIMIT_CPU per process (kernel-enforced, SIGXCPU) plus the
 *    tree's total (cpuacct cgroup, else /proc sampling);
 *  - output size: RLIMIT_FSIZE bounds every single file at the limit, and the
 *    total bytes under the output dir, the scratch dir and the captured
 *    stdout/stderr are summed every 400 ms and once more after exit; above the
 *    limit the tree is killed and nothing is committed. Between two samples a
 *    fast writer can overshoot by what it writes in 400 ms; the size-limited
 *    tmpfs alternative would bound it exactly but keeps outputs in RAM (charged
 *    to the memory limit) and needs a copy out, so it is used only for /tmp.
 * Cgroups are created under the worker's own cgroup (v1 controllers, or v2
 * where the controllers can be enabled for a child) and removed afterwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, writeFileSync, type WriteStream } from 'node:fs';
import { lstat, readFile, readdir, statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { TaskFailedError } from './errors.js';

export interface SandboxOptions {
  argv: string[];
  /** the private scratch directory: cwd, HOME and TMPDIR of the command */
  cwd: string;
  env: Record<string, string>;
  walltimeS: number;
  memoryMb: number;
  /** total cpu seconds of the process tree @default walltimeS × 2 */
  cpuSeconds?: number;
  /** processes and threads of the command @default 256 */
  maxProcesses?: number;
  /** bytes the command may leave under outputDir + cwd + its stdout/stderr, and the largest single file @default 10 GiB */
  maxOutputBytes?: number;
  /** the attempt's output directory (writable; counted against maxOutputBytes) */
  outputDir?: string;
  /** files or directories the command may read (the task's inputs) */
  readOnlyPaths?: string[];
  stdoutPath: string;
  stderrPath: string;
  signal?: AbortSignal;
  onTick?: () => void;
  /** use bubblewrap when it works @default true */
  useBubblewrap?: boolean;
  /** use cgroups for memory, pids and cpu when the tree is writable @default true */
  useCgroups?: boolean;
}

export type SandboxLimit = 'walltime' | 'memory' | 'cpu' | 'processes' | 'output' | 'cancelled';

export interface SandboxResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  killedFor?: SandboxLimit;
  /** e.g. "memory limit 256 MiB exceeded", set with killedFor (except cancelled) */
  limitMessage?: string;
  cpuSeconds: number;
  wallSeconds: number;
  peakRssBytes: number;
  /** bytes under the output dir, scratch dir and logs at the end */
  outputBytes: number;
  network: 'none (network namespace)' | 'host (unshare unavailable)';
  filesystem: 'read-only system tree (bubblewrap)' | 'host';
  /** how the limits were enforced, e.g. "cgroup v1 (pids, memory, cpuacct), rlimits" */
  limits: string;
  /** the sandbox could not be started (a missing tool): not the command's fault */
  launchError?: Error;
  /** writing the captured stdout/stderr failed (e.g. ENOSPC on the worker's scratch disk) */
  logError?: Error;
}

const MiB = 1024 * 1024;
export const SANDBOX_DEFAULTS = { maxProcesses: 256, maxOutputBytes: 10 * 1024 * MiB } as const;

let unshareWorks: boolean | undefined;
export function canUnshareNetwork(): boolean {
  if (unshareWorks === undefined) {
    const r = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore', timeout: 5000 });
    unshareWorks = r.status === 0;
  }
  return unshareWorks;
}

/** system directories visible (read-only) in the bubblewrap tree; symlinks (merged /usr) are recreated as symlinks */
const SYSTEM_PATHS = ['/usr', '/etc', '/opt', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

function systemTreeArgs(): string[] {
  const args: string[] = [];
  const extra = (process.env.UBATCH_SANDBOX_READ_PATHS ?? '').split(':').filter((p) => p.startsWith('/'));
  for (const p of [...SYSTEM_PATHS, ...extra]) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = readlinkSafe(p);
      if (target) args.push('--symlink', target, p);
    } else args.push('--ro-bind', p, p);
  }
  return args;
}

function readlinkSafe(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

let bwrapWorks: boolean | undefined;
/** whether bubblewrap can build the sandbox here (installed, and namespaces allowed) */
export function canBubblewrap(): boolean {
  if (bwrapWorks === undefined) {
    const r = spawnSync('bwrap', [...systemTreeArgs(), '--size', '1048576', '--tmpfs', '/tmp', '--dev', '/dev', '--proc', '/proc', '--remount-ro', '/', '--unshare-net', '--unshare-pid', '--unshare-ipc', '--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--', 'true'], { stdio: 'ignore', timeout: 5000 });
    bwrapWorks = r.status === 0;
  }
  return bwrapWorks;
}

// ---------------------------------------------------------------- cgroups

interface CgroupStats {
  cpuSeconds?: number;
  oomKills: number;
  pidsRefused: number;
}

const readNum = (f: string): number | undefined => {
  try {
    const n = Number(readFileSync(f, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
};
const readKey = (f: string, key: string): number => {
  try {
    const m = new RegExp(`^${key} (\\d+)`, 'm').exec(readFileSync(f, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
};

interface CgroupPlaces {
  v1: Map<string, string>; // controller -> the worker's own cgroup dir for it
  v2?: string; // the worker's own unified cgroup dir
}

let places: CgroupPlaces | undefined;
function cgroupPlaces(): CgroupPlaces {
  if (places) return places;
  places = { v1: new Map() };
  try {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean).map((l) => {
      const [, , ctl = '', path = '/'] = /^(\d+):([^:]*):(.*)$/.exec(l) ?? [];
      return { ctl: ctl.split(',').filter(Boolean), path };
    });
    for (const line of mounts) {
      const [left, right] = line.split(' - ');
      if (!left || !right) continue;
      const f = left.split(' ');
      const [fstype, , superOpts = ''] = right.split(' ');
      const root = f[3] ?? '/';
      const mnt = f[4] ?? '';
      const rel = (p: string) => (p.startsWith(root) ? p.slice(root.length) : p);
      if (fstype === 'cgroup') {
        for (const c of ['pids', 'memory', 'cpuacct']) {
          if (!superOpts.split(',').includes(c) || places.v1.has(c)) continue;
          const mine = own.find((o) => o.ctl.includes(c));
          if (mine) places.v1.set(c, join(mnt, rel(mine.path)));
        }
      } else if (fstype === 'cgroup2' && !places.v2) {
        const mine = own.find((o) => o.ctl.length === 0);
        if (mine) places.v2 = join(mnt, rel(mine.path));
      }
    }
  } catch {
    /* no /proc: no cgroups */
  }
  return places;
}

let seq = 0;
/** why the last attempt to make a cgroup failed (shown in SandboxResult.limits) */
let cgroupUnavailable: string | undefined;
const swept = new Set<string>();
/** remove empty sandbox cgroups left by workers that died (their processes died with them) */
function sweep(parent: string): void {
  if (swept.has(parent)) return;
  swept.add(parent);
  try {
    for (const d of readdirSync(parent)) {
      const m = /^ubatch-sbx-(\d+)-/.exec(d);
      if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
      try {
        rmdirSync(join(parent, d));
      } catch {
        /* still busy: leave it */
      }
    }
  } catch {
    /* unreadable */
  }
}

/** a per-run cgroup (one dir per v1 controller, or one v2 dir) holding the whole sandboxed tree */
class SandboxCgroup {
  private constructor(
    readonly version: 1 | 2,
    private readonly dirs: Map<string, string>, // controller -> created dir
  ) {}

  static create(pidsMax: number, memoryBytes: number): SandboxCgroup | undefined {
    const pl = cgroupPlaces();
    const name = `ubatch-sbx-${process.pid}-${++seq}`;
    const made = new Map<string, string>();
    const undo = () => {
      for (const d of made.values()) try { rmdirSync(d); } catch { /* best effort */ }
    };
    try {
      if (pl.v1.has('pids') && pl.v1.has('memory')) {
        for (const [c, parent] of pl.v1) {
          sweep(parent);
          const d = join(parent, name);
          mkdirSync(d);
          made.set(c, d);
        }
        writeFileSync(join(made.get('pids')!, 'pids.max'), String(pidsMax));
        const mem = made.get('memory')!;
        writeFileSync(join(mem, 'memory.limit_in_bytes'), String(memoryBytes));
        try {
          writeFileSync(join(mem, 'memory.memsw.limit_in_bytes'), String(memoryBytes));
        } catch {
          /* no swap accounting: nothing to bound */
        }
        return new SandboxCgroup(1, made);
      }
      if (pl.v2) {
        sweep(pl.v2);
        const avail = readFileSync(join(pl.v2, 'cgroup.controllers'), 'utf8');
        if (!/\bpids\b/.test(avail) || !/\bmemory\b/.test(avail)) {
          cgroupUnavailable = `cgroup v2 at ${pl.v2} does not offer pids and memory`;
          return undefined;
        }
        const enabled = readFileSync(join(pl.v2, 'cgroup.subtree_control'), 'utf8');
        // fails (EBUSY) when the worker's own cgroup holds processes and is not the root: then we fall back
        if (!/\bpids\b/.test(enabled) || !/\bmemory\b/.test(enabled)) writeFileSync(join(pl.v2, 'cgroup.subtree_control'), '+pids +memory');
        const d = join(pl.v2, name);
        mkdirSync(d);
        made.set('unified', d);
        writeFileSync(join(d, 'pids.max'), String(pidsMax));
        writeFileSync(join(d, 'memory.max'), String(memoryBytes));
        try {
          writeFileSync(join(d, 'memory.swap.max'), '0');
        } catch {
          /* no swap controller */
        }
        return new SandboxCgroup(2, made);
      }
    } catch (e) {
      cgroupUnavailable = (e as Error).message;
      undo();
      return undefined;
    }
    cgroupUnavailable = 'no pids and memory controllers in reach';
    return undefined;
  }

  get description(): string {
    return this.version === 1 ? `cgroup v1 (${[...this.dirs.keys()].join(', ')})` : 'cgroup v2 (pids, memory)';
  }

  /** cgroup.procs files the launcher writes its pid into before exec */
  procsFiles(): string[] {
    return [...this.dirs.values()].map((d) => join(d, 'cgroup.procs'));
  }

  stats(): CgroupStats {
    if (this.version === 1) {
      const cpu = this.dirs.get('cpuacct');
      const ns = cpu ? readNum(join(cpu, 'cpuacct.usage')) : undefined;
      return {
        ...(ns !== undefined ? { cpuSeconds: ns / 1e9 } : {}),
        oomKills: readKey(join(this.dirs.get('memory')!, 'memory.oom_control'), 'oom_kill'),
        pidsRefused: readKey(join(this.dirs.get('pids')!, 'pids.events'), 'max'),
      };
    }
    const d = this.dirs.get('unified')!;
    const us = readKey(join(d, 'cpu.stat'), 'usage_usec');
    return { cpuSeconds: us / 1e6, oomKills: readKey(join(d, 'memory.events'), 'oom_kill'), pidsRefused: readKey(join(d, 'pids.events'), 'max') };
  }

  pids(): number[] {
    const out = new Set<number>();
    for (const d of this.dirs.values()) {
      try {
        for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) out.add(Number(l));
      } catch {
        /* gone */
      }
    }
    return [...out];
  }

  kill(): void {
    if (this.version === 2) {
      try {
        writeFileSync(join(this.dirs.get('unified')!, 'cgroup.kill'), '1');
        return;
      } catch {
        /* kernel < 5.14: kill one by one */
      }
    }
    for (const pid of this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* exited */
      }
    }
  }

  /** kill what is left, wait for the cgroup to empty, remove it */
  async remove(): Promise<void> {
    for (let i = 0; i < 100 && this.pids().length > 0; i++) {
      this.kill();
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const d of this.dirs.values()) {
      for (let i = 0; i < 20; i++) {
        try {
          rmdirSync(d);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  }
}

// ---------------------------------------------------------------- /proc sampling

const CLK_TCK = 100;
const PAGE = 4096;

/** cpu seconds (own + waited-for children), resident bytes and threads of a process, its descendants and its process group */
async function sampleTree(root: number): Promise<{ cpu: number; rss: number; threads: number }> {
  const procs = new Map<number, { ppid: number; pgrp: number; cpu: number; rss: number; threads: number }>();
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return { cpu: 0, rss: 0, threads: 0 };
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await readFile(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after comm: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13) cstime(14) ... num_threads(17) ... rss(21)
      procs.set(Number(e), {
        ppid: Number(rest[1]),
        pgrp: Number(rest[2]),
        cpu: (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / CLK_TCK,
        rss: Number(rest[21]) * PAGE,
        threads: Number(rest[17]) || 1,
      });
    } catch {
      /* exited while we looked */
    }
  }
  const children = new Map<number, number[]>();
  for (const [pid, p] of procs) {
    const l = children.get(p.ppid);
    if (l) l.push(pid);
    else children.set(p.ppid, [pid]);
  }
  let cpu = 0;
  let rss = 0;
  let threads = 0;
  // the tree, plus members of its process group that were orphaned (re-parented to init) when their parent exited
  const stack = [root, ...[...procs].filter(([pid, p]) => p.pgrp === root && pid !== root).map(([pid]) => pid)];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const p = procs.get(pid);
    if (!p || seen.has(pid)) continue;
    seen.add(pid);
    cpu += p.cpu;
    rss += p.rss;
    threads += p.threads;
    stack.push(...(children.get(pid) ?? []));
  }
  return { cpu, rss, threads };
}

/** apparent bytes of all regular files under the given paths (symlinks not followed) */
export async function treeBytes(paths: string[], maxEntries = 200_000): Promise<number> {
  let total = 0;
  let seen = 0;
  const walk = async (p: string): Promise<void> => {
    if (++seen > maxEntries) return;
    let st;
    try {
      st = await lstat(p);
    } catch {
      return;
    }
    if (st.isFile()) total += st.size;
    else if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = await readdir(p);
      } catch {
        return;
      }
      for (const n of names) await walk(join(p, n));
    }
  };
  for (const p of paths) await walk(p);
  return total;
}

export const fmtBytes = (b: number): string => (b >= 1024 * MiB ? `${(b / 1024 / MiB).toFixed(1)} GiB` : b >= MiB ? `${+(b / MiB).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(0)} KiB` : `${b} B`);

// ---------------------------------------------------------------- full disks

/** The nearest existing directory's filesystem: free and total bytes. */
export async function diskSpace(path: string): Promise<{ path: string; freeBytes: number; totalBytes: number } | undefined> {
  let p = resolve(path);
  for (;;) {
    try {
      const s = await statfs(p);
      return { path: p, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch {
      const up = dirname(p);
      if (up === p) return undefined;
      p = up;
    }
  }
}

/** whether an error (or any error in its cause chain, or a message) says the disk is full */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return true;
    const msg = typeof e === 'string' ? e : (e as Error).message;
    if (typeof msg === 'string' && /ENOSPC|No space left on device/i.test(msg)) return true;
  }
  return false;
}

/**
 * Which of the paths sits on a (nearly) full filesystem: less than 1 MiB or
 * 0.5 % free. Returns its figures, for an error message that names the place.
 */
export async function fullFilesystem(paths: string[]): Promise<{ path: string; freeBytes: number; totalBytes: number } | undefined> {
  for (const p of paths) {
    const s = await diskSpace(p);
    if (s && (s.freeBytes < MiB || s.freeBytes < s.totalBytes * 0.005)) return { ...s, path: p };
  }
  return undefined;
}

/**
 * The task error for a full disk (ENOSPC), naming the place and its free space.
 * `paths[0]` is the attempt's output directory, the rest worker-local (scratch).
 * A full output filesystem is not retried: it is the user's output path, a
 * re-run seconds later meets the same full disk (and rewrites partial files
 * into it); the user frees space or picks another path and resubmits. A full
 * worker-local scratch disk alone is retryable: another worker may have room.
 */
export async function diskFullError(err: unknown, paths: string[], where?: string): Promise<TaskFailedError> {
  const full = await fullFilesystem(paths);
  const place = full ?? (await diskSpace(paths[0] ?? '/'));
  const at = full?.path ?? paths[0] ?? '?';
  const figures = place ? ` (${fmtBytes(place.freeBytes)} free of ${fmtBytes(place.totalBytes)})` : '';
  const first = (typeof err === 'string' ? err : (err as Error | undefined)?.message ?? '').split('\n').find((l) => /ENOSPC|No space/i.test(l))?.trim();
  const retryable = !!full && full.path !== paths[0];
  return new TaskFailedError(
    `disk full (ENOSPC) writing under ${at}${figures}${first ? `: ${first.slice(0, 300)}` : ''}; ${retryable ? 'the worker\'s scratch disk is full, another worker will retry' : 'free space there or choose another output path, then resubmit'}`,
    'disk_full',
    retryable,
    where ?? at,
    { cause: err },
  );
}

// ---------------------------------------------------------------- running

export async function runSandboxed(o: SandboxOptions): Promise<SandboxResult> {
  const useBwrap = o.useBubblewrap !== false && canBubblewrap();
  o = { ...o, cwd: resolve(o.cwd), ...(o.outputDir ? { outputDir: resolve(o.outputDir) } : {}) };
  const netIsolated = useBwrap || canUnshareNetwork();
  const maxProcs = Math.max(1, Math.floor(o.maxProcesses ?? SANDBOX_DEFAULTS.maxProcesses));
  const maxOut = Math.max(1, Math.floor(o.maxOutputBytes ?? SANDBOX_DEFAULTS.maxOutputBytes));
  const memBytes = o.memoryMb * MiB;
  const cpuLimit = o.cpuSeconds ?? o.walltimeS * 2;
  // processes the sandbox machinery itself adds to the tree: the `times` shell, plus bwrap's outer and pid-1 processes
  const overhead = useBwrap ? 3 : 1;
  const cg = o.useCgroups === false ? undefined : SandboxCgroup.create(maxProcs + overhead, memBytes);

  // `times` after the command reports user+sys of all waited-for descendants (used when no cpuacct cgroup)
  const inner = ['sh', '-c', '"$@"; rc=$?; times >&3; exit $rc', 'ubatch-sandbox', ...o.argv];
  const cpuSoft = Math.max(1, Math.ceil(cpuLimit));
  const rlimits = ['prlimit', `--fsize=${maxOut}`, '--core=0', `--cpu=${cpuSoft}:${cpuSoft + 5}`, '--'];
  let isolate: string[];
  if (useBwrap) {
    const tree = systemTreeArgs();
    const ro = (o.readOnlyPaths ?? []).filter((p) => existsSync(p)).flatMap((p) => ['--ro-bind', p, p]);
    const rw = [o.outputDir, o.cwd].filter((p): p is string => !!p).flatMap((p) => ['--bind', p, p]);
    isolate = [
      'bwrap', ...tree,
      '--size', String(Math.min(memBytes, maxOut)), '--tmpfs', '/tmp',
      ...ro, ...rw,
      '--dev', '/dev', '--proc', '/proc', '--remount-ro', '/',
      '--unshare-net', '--unshare-pid', '--unshare-ipc', '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
      '--chdir', o.cwd, '--',
    ];
  } else isolate = netIsolated ? ['unshare', '-n'] : [];
  // join the cgroup before anything of the user's runs: the launcher shell writes its pid, then execs the rest
  const join_ = cg ? ['sh', '-c', 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"', 'ubatch-cgroup', String(cg.procsFiles().length), ...cg.procsFiles()] : [];
  // prlimit sits outside bwrap (it must run before the capabilities are dropped); rlimits are inherited
  const argv = [...join_, ...rlimits, ...isolate, ...inner];

  const t0 = performance.now();
  const out = createWriteStream(o.stdoutPath);
  const err = createWriteStream(o.stderrPath);
  let logBytes = 0;
  let logError: Error | undefined;
  for (const s of [out, err]) s.on('error', (e) => (logError ??= e));
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: o.cwd,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...o.env, HOME: o.cwd, TMPDIR: o.cwd },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const sink = (to: WriteStream) => (d: Buffer) => {
    logBytes += d.length;
    if (!logError && logBytes <= maxOut) to.write(d);
  };
  child.stdout!.on('data', sink(out));
  child.stderr!.on('data', sink(err));
  let timesText = '';
  child.stdio[3]!.on('data', (d: Buffer) => (timesText += d.toString()));

  let killedFor: SandboxLimit | undefined;
  let limitMessage: string | undefined;
  let peakRss = 0;
  let lastCpu = 0;
  let outputBytes = 0;
  const killAll = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    cg?.kill();
  };
  const stop = (why: SandboxLimit, message?: string) => {
    if (!killedFor) {
      killedFor = why;
      if (message) limitMessage = message;
    }
    killAll();
  };
  const onAbort = () => stop('cancelled');
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const wallTimer = setTimeout(() => stop('walltime', `wall-time limit ${o.walltimeS} s exceeded`), o.walltimeS * 1000);
  const dirs = [o.outputDir, o.cwd].filter((p): p is string => !!p);
  const outputCheck = () => {
    if (outputBytes + logBytes > maxOut) stop('output', `output size limit ${fmtBytes(maxOut)} exceeded (outputs, scratch and logs reached ${fmtBytes(outputBytes + logBytes)})`);
  };
  const memMsg = () => `memory limit ${fmtBytes(memBytes)} exceeded (${cg ? 'stopped by the kernel in the memory cgroup' : `resident ${fmtBytes(peakRss)}`})`;
  const procMsg = `process limit ${maxProcs} reached (processes and threads of the command)`;
  const cpuMsg = (used: number) => `cpu time limit ${cpuLimit} s exceeded (used ${used.toFixed(1)} s)`;
  let sampling = false;
  let ticks = 0;
  const sampler = setInterval(() => {
    if (sampling || !child.pid || killedFor) return;
    sampling = true;
    const doDisk = ticks++ % 2 === 0;
    void (async () => {
      const t = await sampleTree(child.pid!);
      peakRss = Math.max(peakRss, t.rss);
      const st = cg?.stats();
      lastCpu = Math.max(lastCpu, st?.cpuSeconds ?? t.cpu);
      if (st && st.oomKills > 0) stop('memory', memMsg());
      else if (!cg && t.rss > memBytes) stop('memory', memMsg());
      if (st && st.pidsRefused > 0) stop('processes', procMsg);
      else if (!cg && t.threads > maxProcs + overhead) stop('processes', procMsg);
      if (lastCpu > cpuLimit) stop('cpu', cpuMsg(lastCpu));
      if (doDisk) {
        outputBytes = await treeBytes(dirs);
        outputCheck();
      } else if (logBytes > maxOut) outputCheck();
      o.onTick?.();
    })()
      .catch(() => undefined)
      .finally(() => (sampling = false));
  }, 200);

  let spawnError: Error | undefined;
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => {
    child.on('exit', (c, s) => r([c, s]));
    child.on('error', (e) => {
      spawnError = e;
      r([null, null]);
    });
  });
  const closed = new Promise<void>((r) => child.on('close', () => r()));
  const [code, sig] = await exited;
  clearTimeout(wallTimer);
  clearInterval(sampler);
  o.signal?.removeEventListener('abort', onAbort);
  // nothing of the tree may survive (daemonised children): the group, the pid namespace, the cgroup
  killAll();
  await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
  for (const s of [child.stdout, child.stderr, child.stdio[3]]) s?.destroy();
  const st = cg?.stats();
  await cg?.remove();
  await Promise.all([new Promise((r) => out.end(r)), new Promise((r) => err.end(r))]);

  // the cgroup's count and the shell's `times` (what RLIMIT_CPU sees) can differ a little: report the larger
  const cpu = Math.max(st?.cpuSeconds ?? 0, parseTimes(timesText) ?? 0) || lastCpu;
  if (!killedFor) {
    // limits the kernel enforced by itself, and a writer faster than the sampler
    if (st && st.oomKills > 0) stop('memory', memMsg());
    else if (st && st.pidsRefused > 0) stop('processes', procMsg);
    else if ((sig === 'SIGXCPU' || code === 128 + 24) && cpu >= cpuSoft * 0.5) stop('cpu', cpuMsg(Math.max(cpu, cpuSoft)));
    else if (cpu > cpuLimit * 1.02) stop('cpu', cpuMsg(cpu));
    else {
      outputBytes = await treeBytes(dirs);
      if (sig === 'SIGXFSZ' || code === 128 + 25 || outputBytes + logBytes > maxOut) {
        killedFor = 'output';
        limitMessage = `output size limit ${fmtBytes(maxOut)} exceeded (${sig === 'SIGXFSZ' || code === 128 + 25 ? 'a file reached the limit' : `outputs, scratch and logs reached ${fmtBytes(outputBytes + logBytes)}`})`;
      }
    }
  }
  return {
    exitCode: code,
    signal: sig,
    ...(killedFor ? { killedFor } : {}),
    ...(limitMessage ? { limitMessage } : {}),
    cpuSeconds: cpu,
    wallSeconds: (performance.now() - t0) / 1000,
    peakRssBytes: peakRss,
    outputBytes: outputBytes + logBytes,
    network: netIsolated ? 'none (network namespace)' : 'host (unshare unavailable)',
    filesystem: useBwrap ? 'read-only system tree (bubblewrap)' : 'host',
    ...(spawnError ? { launchError: spawnError } : {}),
    ...(logError ? { logError } : {}),
    limits: `${cg ? cg.description : `sampled every 200 ms (no cgroup: ${o.useCgroups === false ? 'disabled' : cgroupUnavailable ?? 'unavailable'})`}; rlimits cpu ${cpuSoft} s per process, file size ${fmtBytes(maxOut)}`,
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
