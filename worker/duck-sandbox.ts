/**
 * Sandboxed DuckDB instances for user SQL, with the fixed cost moved off the
 * task's critical path.
 *
 * Each attempt still gets its own in-memory instance whose file access is
 * limited to the attempt's inputs and its private output directory
 * (enable_external_access=false + allowed_directories, then the configuration
 * locked), so a query cannot read /etc/passwd or another user's outputs, and
 * nothing a query leaves behind reaches the next attempt. What changes:
 *  - creating an instance (≈ 25–70 ms of CPU) happens ahead of time: a warm,
 *    still unlocked spare per thread count is created in the background when
 *    a task has finished, and handed to the next task, which only adds its
 *    directories and locks it;
 *  - closing one (≈ 15–30 ms of synchronous work on the event loop) happens
 *    shortly after the task's result is committed, or while a later query runs,
 *    not between tasks when the worker commits one and fetches the next.
 * Both used to happen during the next task's query; with every core running a
 * map (one task per slot) that CPU came off a map on the job's critical path,
 * while after a task the worker's core is often idle (its job's other tasks
 * are still running).
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tables } from '../astro/index.js';

interface Warm {
  inst: DuckDBInstance;
  conn: DuckDBConnection;
}

export interface DuckSandbox {
  conn: DuckDBConnection;
  /**
   * Run the trusted set-up (views over the inputs), then restrict file access to the given directories and lock
   * the configuration, in one round trip to DuckDB's thread (each call costs a thread hand-off, a few ms under load).
   * A failing set-up stops there (nothing is locked, and no user SQL may run).
   */
  lock(setup?: string): Promise<void>;
  /** give the instance back: it is closed off the critical path */
  release(): void;
}

/** warm spares by thread count */
const spares = new Map<number, Promise<Warm>>();
const closing: Warm[] = [];
let closeTimer: NodeJS.Timeout | undefined;
let idleTimer: NodeJS.Timeout | undefined;
/** released instances are closed this long after release (the worker commits the task's result first) */
const RELEASED_CLOSE_MS = 150;
/** a spare nobody took for this long is closed (an idle worker holds no DuckDB) */
const SPARE_IDLE_MS = 60_000;

async function create(threads: number): Promise<Warm> {
  const inst = await DuckDBInstance.create(':memory:', { threads: String(threads) });
  return { inst, conn: await inst.connect() };
}

function closeNow(w: Warm): void {
  try {
    w.conn.closeSync();
  } catch {
    /* already closed */
  }
  try {
    w.inst.closeSync();
  } catch {
    /* already closed */
  }
}

/**
 * Released instances are closed RELEASED_CLOSE_MS after a task or query ends
 * (the worker has committed its result by then), or while a later query runs
 * (`whileQueryRuns`: once it has run for 100 ms the event loop is idle,
 * waiting for DuckDB's threads) — not in the gap between tasks when the worker
 * commits one and fetches the next, nor inside a short query (a small reduce).
 */
function scheduleClose(delayMs = RELEASED_CLOSE_MS): void {
  if (closing.length === 0) return;
  if (closeTimer) clearTimeout(closeTimer);
  closeTimer = setTimeout(() => {
    closeTimer = undefined;
    for (const w of closing.splice(0)) closeNow(w);
  }, delayMs);
  closeTimer.unref?.();
}

/** Call right after starting a query, and the returned function when it has finished: earlier instances are closed while it runs. */
export function whileQueryRuns(): () => void {
  if (closing.length === 0) return () => undefined;
  // not inside a short query: the timer below closes them once this one has run 100 ms, or scheduleClose after it
  if (closeTimer) clearTimeout(closeTimer);
  closeTimer = undefined;
  let timer: NodeJS.Timeout | undefined = setTimeout(function closeOne() {
    const w = closing.shift();
    if (w) closeNow(w);
    timer = closing.length > 0 ? setTimeout(closeOne, 0) : undefined;
  }, 100);
  return () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    scheduleClose();
  };
}

function armIdle(): void {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    for (const [t, p] of spares) {
      spares.delete(t);
      void p.then((w) => closing.push(w), () => undefined).then(() => scheduleClose());
    }
  }, SPARE_IDLE_MS);
  idleTimer.unref?.();
}

function prepareSpare(threads: number): void {
  if (spares.has(threads)) return;
  const p = create(threads);
  p.catch(() => spares.delete(threads));
  spares.set(threads, p);
  armIdle();
}

/**
 * An in-memory DuckDB for one attempt. Run the trusted set-up (views over the
 * inputs) on `conn`, then `lock()` before any user SQL; `release()` when done.
 * `opts.warm` (default true) keeps a spare ready for the next attempt.
 */
export async function openSandboxedDuck(readDirs: readonly string[], writeDirs: readonly string[], threads: number, opts: { warm?: boolean } = {}): Promise<DuckSandbox> {
  const t = Math.max(1, Math.round(threads));
  const spare = spares.get(t);
  spares.delete(t);
  let w: Warm;
  try {
    w = spare ? await spare : await create(t);
  } catch {
    w = await create(t);
  }
  let released = false;
  return {
    conn: w.conn,
    lock: async (setup?: string) => {
      const dirs = [...new Set([...readDirs, ...writeDirs].map((d) => (d.endsWith('/') ? d : d + '/')))];
      const lockSql = `SET allowed_directories = [${dirs.map(tables.sqlString).join(', ')}]; SET enable_external_access = false; SET lock_configuration = true`;
      await w.conn.run(setup ? `${setup.trim().replace(/;+\s*$/, '')}; ${lockSql}` : lockSql);
    },
    release: () => {
      if (released) return;
      released = true;
      closing.push(w);
      if (opts.warm !== false) prepareSpare(t);
      // after the worker has committed the task (a few ms), unless a query comes first (whileQueryRuns)
      scheduleClose();
    },
  };
}

/** Close every spare and pending instance now (worker shutdown, tests). */
export async function closeDuckSandboxes(): Promise<void> {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
  if (closeTimer) clearTimeout(closeTimer);
  closeTimer = undefined;
  const pending = [...spares.values()];
  spares.clear();
  for (const p of pending) closing.push(...(await p.then((w) => [w], () => [])));
  for (const w of closing.splice(0)) closeNow(w);
}
