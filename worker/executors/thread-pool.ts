/**
 * A small worker_threads pool for trusted CPU kernels (periodograms, the
 * image kinds' pixel work: ./image-thread.ts), so a
 * long computation never blocks the daemon's event loop: heartbeats,
 * in-progress acks and results keep flowing while the threads work.
 *
 * Threads are shared by every task of the process, per entry file: a task
 * borrows up to `threads` of them (spawning new ones when none is idle),
 * feeds them its jobs one at a time, and gives them back when done. Idle
 * threads are unref'd (they never keep the process alive) and end after
 * `idleMs`. Aborting a run terminates the threads it holds (a kernel in the
 * middle of a job cannot be interrupted otherwise) and rejects.
 *
 * A thread cannot load a .ts file (tests run the sources under vitest), so the
 * entry is resolved by {@link resolveThreadEntry}: the sibling .js when it
 * exists (running from dist/), else the compiled file under
 * <repo>/dist/worker/executors/ (present after `make build`); when neither
 * exists the caller runs its kernel in-process instead (see runJobs).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

/** What a thread entry posts back for one job. */
export type ThreadReply<R> = { id: number; ok: true; result: R } | { id: number; ok: false; error: ThreadErrorInfo };

/** An error as a thread reports it: its class name and message, and a code and `where` when it has them. */
export interface ThreadErrorInfo {
  name: string;
  message: string;
  code?: string;
  where?: string;
}

/** What the pool posts to a thread for one job. */
export interface ThreadRequest<J> {
  id: number;
  job: J;
}

/** An error thrown inside a thread, rebuilt on this side with its name and message. */
export class ThreadJobError extends Error {
  override name = 'ThreadJobError';
  constructor(
    message: string,
    readonly remoteName: string,
    readonly code?: string,
    readonly where?: string,
  ) {
    super(message);
  }
}

/**
 * The message loop of a thread entry: runs `compute` on each job posted by the
 * pool (one at a time; it may be async) and posts back its result, or the
 * error it threw as {name, message, code, where}. `describe` may turn an error
 * into that shape itself (to classify it the way the executor would).
 */
export function serveThreadJobs<J, R>(
  port: { on(ev: 'message', fn: (msg: ThreadRequest<J>) => void): unknown; postMessage(msg: unknown, transfer?: ArrayBuffer[]): void },
  compute: (job: J) => R | Promise<R>,
  opts: { describe?: (err: unknown) => ThreadErrorInfo; transfer?: (result: R) => ArrayBuffer[] } = {},
): void {
  port.on('message', (msg: ThreadRequest<J>) => {
    void (async () => {
      let reply: ThreadReply<R>;
      let transfer: ArrayBuffer[] = [];
      try {
        const result = await compute(msg.job);
        reply = { id: msg.id, ok: true, result };
        transfer = opts.transfer?.(result) ?? [];
      } catch (err) {
        reply = { id: msg.id, ok: false, error: opts.describe ? opts.describe(err) : errorInfo(err) };
      }
      port.postMessage(reply, transfer);
    })();
  });
}

/** {name, message, code, where} of any thrown value (code/where only when they are strings). */
export function errorInfo(err: unknown): ThreadErrorInfo {
  const e = err instanceof Error ? err : new Error(String(err));
  const r = e as unknown as Record<string, unknown>;
  return {
    name: e.name,
    message: e.message,
    ...(typeof r.code === 'string' ? { code: r.code } : {}),
    ...(typeof r.where === 'string' ? { where: r.where } : {}),
  };
}

export class ThreadAbortedError extends Error {
  override name = 'ThreadAbortedError';
  constructor(options?: { cause?: unknown }) {
    super('thread pool run aborted', options);
  }
}

/**
 * Path of the compiled thread entry for `fileName` (e.g. 'periodogram-thread'),
 * next to `selfUrl` (the calling module's import.meta.url) when that is a .js
 * build, else under <repo>/dist/worker/executors/; undefined when none exists.
 */
export function resolveThreadEntry(selfUrl: string, fileName: string): string | undefined {
  const here = dirname(fileURLToPath(selfUrl));
  const sibling = join(here, `${fileName}.js`);
  if (existsSync(sibling)) return sibling;
  // sources under <repo>/worker/executors/ → <repo>/dist/worker/executors/
  const built = resolve(here, '..', '..', 'dist', 'worker', 'executors', `${fileName}.js`);
  if (existsSync(built)) return built;
  return undefined;
}

interface PooledThread {
  worker: Worker;
  idleTimer?: NodeJS.Timeout;
  dead: boolean;
}

/** Key set in a pool thread's workerData; entry files serve jobs only when it is there. */
export const POOL_THREAD_MARK = 'ubatchPoolThread';

/** True inside a thread started by this pool. */
export function isPoolThread(workerData: unknown): boolean {
  return typeof workerData === 'object' && workerData !== null && (workerData as Record<string, unknown>)[POOL_THREAD_MARK] === true;
}

const idle = new Map<string, PooledThread[]>();
const DEFAULT_IDLE_MS = 15_000;

function spawnThread(entry: string): PooledThread {
  // workerData marks the thread as a pool thread, so an entry module imported elsewhere stays inert
  const worker = new Worker(entry, { workerData: { [POOL_THREAD_MARK]: true } });
  const t: PooledThread = { worker, dead: false };
  worker.on('exit', () => {
    t.dead = true;
    const list = idle.get(entry);
    if (list) idle.set(entry, list.filter((x) => x !== t));
  });
  // an error with no job waiting (rare): the thread is gone, the exit handler drops it
  worker.on('error', () => undefined);
  return t;
}

function borrow(entry: string): PooledThread {
  const list = idle.get(entry) ?? [];
  while (list.length > 0) {
    const t = list.pop()!;
    if (t.idleTimer) clearTimeout(t.idleTimer);
    if (!t.dead) {
      t.worker.ref();
      return t;
    }
  }
  return spawnThread(entry);
}

function giveBack(entry: string, t: PooledThread, idleMs: number): void {
  if (t.dead) return;
  t.worker.unref();
  t.idleTimer = setTimeout(() => void t.worker.terminate(), idleMs);
  t.idleTimer.unref();
  const list = idle.get(entry) ?? [];
  list.push(t);
  idle.set(entry, list);
}

/** Terminates every idle pooled thread (tests, clean shutdown). */
export async function closeIdleThreads(): Promise<void> {
  const all = [...idle.values()].flat();
  idle.clear();
  await Promise.all(all.map((t) => t.worker.terminate().catch(() => undefined)));
}

export interface RunJobsOptions<J, R> {
  /** Threads to use at most (the task's cores). @default 1 */
  threads?: number;
  signal?: AbortSignal;
  /** Called after each job with (jobs done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Buffers to move (not copy) into the thread with the job. */
  transfer?: (job: J) => ArrayBuffer[];
  /** Same computation in this thread, used when no compiled thread entry exists (may be async). */
  inProcess: (job: J) => R | Promise<R>;
  /** @default 15000 */
  idleMs?: number;
}

export interface RunJobsResult<R> {
  results: R[];
  /** 'threads' or 'in-process' (no compiled entry: the event loop was yielded to between jobs) */
  mode: 'threads' | 'in-process';
  threads: number;
}

/**
 * Runs `jobs` on up to `threads` pooled threads of `entry` (results in job
 * order). Without an entry, runs them here one at a time, yielding to the
 * event loop between jobs (`await setImmediate`) so timers and acks still run
 * between jobs: keep jobs small in that mode.
 */
export async function runJobs<J, R>(entry: string | undefined, jobs: readonly J[], opts: RunJobsOptions<J, R>): Promise<RunJobsResult<R>> {
  const total = jobs.length;
  const results = new Array<R>(total);
  const threads = Math.max(1, Math.min(Math.round(opts.threads ?? 1), total || 1));
  if (entry === undefined) {
    for (let i = 0; i < total; i++) {
      if (opts.signal?.aborted) throw new ThreadAbortedError({ cause: opts.signal.reason });
      results[i] = await opts.inProcess(jobs[i]!);
      opts.onProgress?.(i + 1, total);
      await yieldToLoop();
    }
    return { results, mode: 'in-process', threads: 0 };
  }
  const idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
  let next = 0;
  let done = 0;
  let failed = false;
  const held = new Set<PooledThread>();
  const lane = async (): Promise<void> => {
    const t = borrow(entry);
    held.add(t);
    let healthy = true;
    try {
      for (;;) {
        if (failed) return;
        if (opts.signal?.aborted) throw new ThreadAbortedError({ cause: opts.signal.reason });
        const i = next++;
        if (i >= total) return;
        const job = jobs[i]!;
        try {
          results[i] = await runOne<J, R>(t.worker, { id: i, job }, opts.transfer?.(job) ?? [], opts.signal);
        } catch (err) {
          // a job that threw inside the kernel leaves the thread usable; anything else does not
          if (!(err instanceof ThreadJobError)) healthy = false;
          throw err;
        }
        done++;
        opts.onProgress?.(done, total);
      }
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      held.delete(t);
      if (healthy && !t.dead) giveBack(entry, t, idleMs);
      else void t.worker.terminate();
    }
  };
  const lanes = Array.from({ length: threads }, lane);
  const settled = await Promise.allSettled(lanes);
  const firstError = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (firstError) throw firstError.reason;
  return { results, mode: 'threads', threads };
}

function runOne<J, R>(worker: Worker, req: ThreadRequest<J>, transfer: ArrayBuffer[], signal: AbortSignal | undefined): Promise<R> {
  return new Promise<R>((resolvePromise, reject) => {
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      signal?.removeEventListener('abort', onAbort);
    };
    const onMessage = (msg: unknown) => {
      const m = msg as ThreadReply<R>;
      if (typeof m !== 'object' || m === null || m.id !== req.id) return;
      cleanup();
      if (m.ok) resolvePromise(m.result);
      else reject(new ThreadJobError(m.error.message, m.error.name, m.error.code, m.error.where));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(signal?.aborted ? new ThreadAbortedError({ cause: signal.reason }) : new Error(`pool thread exited with code ${code} during a job`));
    };
    const onAbort = () => {
      cleanup();
      // the kernel cannot be interrupted mid-job: end the thread
      void worker.terminate();
      reject(new ThreadAbortedError({ cause: signal?.reason }));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.postMessage(req, transfer);
  });
}
