/**
 * `ubatch run`: the same JobSpec, run in this process on local files with no
 * NATS. The coordinator's planner makes the tasks, the worker's executors run
 * them, and the outputs land exactly where a mesh run puts them: each attempt
 * writes under the protocol's attemptDir, its files are then moved to the
 * protocol's committedPath (the coordinator's commit), the reduce step runs
 * over the committed partials, and a catalog.sql output without reduce gets
 * its HATS metadata, as coordinator/manager.ts close() writes it.
 */
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { hats, inLanes } from '../astro/index.js';
import { commitOutputs, planJob } from '../coordinator/index.js';
import {
  ApiCode,
  attemptDir,
  committedPath,
  JobSpec,
  UbatchApiError,
  validateOrThrow,
  workRoot,
  writesHatsCatalog,
  hatsLeavesOf,
  type FileRecord,
  type JobStateName,
  type Task,
  type TaskError,
} from '../protocol/index.js';
import { asTaskError, executors, noopLog, TaskCancelledError, TaskTimeoutError, type ExecContext, type ExecResult, type Executor, type Log } from '../worker/index.js';

export interface LocalRunOptions {
  /** output path (a HATS directory, or a .parquet file for reduced catalog.sql); overrides spec.output.path @default spec.output.path, else .ubatch/output/local/<jobId> */
  output?: string;
  /** tasks run at once @default 1 */
  parallel?: number;
  /** recorded as the task's user @default 'local' */
  user?: string;
  signal?: AbortSignal;
  log?: Log;
  /** called after every finished task */
  onProgress?: (p: LocalRunProgress) => void;
  /** per-attempt scratch directories go here @default a fresh $TMPDIR/ubatch-local-* (removed after) */
  scratchRoot?: string;
  /** retry delay for retryable failures @default 200 ms × attempt */
  retryDelayMs?: number;
}

export interface LocalRunProgress {
  total: number;
  done: number;
  failed: number;
  state: JobStateName;
}

export interface LocalTaskFailure {
  taskId: string;
  index: number;
  attempt: number;
  error: TaskError;
}

export interface LocalRunResult {
  jobId: string;
  kind: string;
  state: JobStateName;
  total: number;
  done: number;
  failed: number;
  hasReduce: boolean;
  output?: string;
  /** committed files (map outputs, then the reduce output) */
  files: FileRecord[];
  failures: LocalTaskFailure[];
  summaries: { taskId: string; summary: unknown }[];
  /** rows written by the last stage */
  rows: number;
  wallSeconds: number;
  error?: string;
}

interface AttemptOk {
  ok: true;
  attempt: number;
  outputs: FileRecord[];
  rows?: number;
  summary?: unknown;
}
interface AttemptFailed {
  ok: false;
  attempt: number;
  error: TaskError;
  cancelled?: boolean;
}

const LOCAL_USER = 'local';

function localJobId(): string {
  return `l${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** Runs `spec` here and now; resolves with the job's final state (never rejects for task failures). */
export async function runLocally(specIn: JobSpec, o: LocalRunOptions = {}): Promise<LocalRunResult> {
  const t0 = performance.now();
  const spec = validateOrThrow(JobSpec, structuredClone(specIn), 'invalid job spec');
  spec.group ??= 'default';
  const jobId = localJobId();
  if (o.output !== undefined) spec.output = { path: resolve(o.output) };
  if (!spec.output?.path && spec.kind !== 'noop') spec.output = { path: resolve('.ubatch/output/local', jobId) };
  const exec: Executor | undefined = executors.get(spec.kind);
  const plan = await planJob(spec, { slots: Math.max(1, Math.round(o.parallel ?? 1)) });
  if (!exec) throw new UbatchApiError(ApiCode.UnknownKind, `kind ${spec.kind} has no executor in this build`, '/kind');
  const log = o.log ?? noopLog;
  const parallel = Math.max(1, Math.min(Math.round(o.parallel ?? 1), 4 * Math.max(1, cpus().length), plan.count));
  const maxAttempts = spec.resources?.max_attempts ?? 3;
  const walltimeS = spec.resources?.walltime_s ?? 3600;
  const hasReduce = plan.hasReduce;
  const total = plan.count + (hasReduce ? 1 : 0);
  const user = o.user ?? LOCAL_USER;
  const ownScratch = o.scratchRoot === undefined;
  const scratchRoot = o.scratchRoot ?? (await mkdtemp(join(tmpdir(), 'ubatch-local-')));
  const outRoot = spec.output?.path ?? join(scratchRoot, 'out');
  const artifactsRoot = join(workRoot(outRoot), 'artifacts');

  const res: LocalRunResult = { jobId, kind: spec.kind, state: 'running', total, done: 0, failed: 0, hasReduce, ...(spec.output?.path ? { output: spec.output.path } : {}), files: [], failures: [], summaries: [], rows: 0, wallSeconds: 0 };
  const progress = () => o.onProgress?.({ total, done: res.done, failed: res.failed, state: res.state });

  const taskFor = (index: number, stage: 'map' | 'reduce', unit?: { partition?: Task['partition']; unit?: unknown }): Task => ({
    taskId: stage === 'reduce' ? `${jobId}.r` : `${jobId}.${index}`,
    jobId,
    index,
    stage,
    kind: spec.kind,
    user,
    group: spec.group!,
    capability: plan.capability,
    ...(unit?.partition ? { partition: unit.partition } : {}),
    ...(unit?.unit !== undefined ? { unit: unit.unit } : {}),
  });

  const runTask = async (task: Task, partials: string[] = []): Promise<AttemptOk | AttemptFailed> => {
    for (let attempt = 1; ; attempt++) {
      const outDir = attemptDir(outRoot, task.taskId, attempt);
      const attemptScratch = join(scratchRoot, `${task.taskId}.a${attempt}`);
      const scratchDir = join(attemptScratch, 'scratch');
      const ac = new AbortController();
      const onAbort = () => ac.abort(new TaskCancelledError('cancelled'));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const wall = setTimeout(() => ac.abort(new TaskTimeoutError(walltimeS)), walltimeS * 1000);
      try {
        if (o.signal?.aborted) return { ok: false, attempt, error: { code: 'cancelled', message: 'cancelled', retryable: false }, cancelled: true };
        await mkdir(outDir, { recursive: true });
        await mkdir(scratchDir, { recursive: true });
        const ctx: ExecContext = {
          task,
          spec,
          attempt,
          outDir,
          scratchDir,
          signal: ac.signal,
          progress: () => undefined,
          log,
          workerId: 'local',
          putArtifact: async (name: string, data: Uint8Array) => {
            // the mesh keeps these in the object store; here they sit beside the outputs
            const p = join(artifactsRoot, name);
            await mkdir(dirname(p), { recursive: true });
            await writeFile(p, data);
            return p;
          },
        };
        const r: ExecResult = task.stage === 'reduce' ? await exec.reduce!(ctx, partials) : await exec.map(ctx);
        const finals = r.outputs.map((f) => ({ ...f, path: committedPath(spec, hasReduce, task, relative(outDir, f.path)) }));
        await commitOutputs(task.taskId, outDir, finals, r.outputs.map((f) => relative(outDir, f.path)));
        return { ok: true, attempt, outputs: finals, ...(r.rows !== undefined ? { rows: r.rows } : {}), ...(r.summary !== undefined ? { summary: r.summary } : {}) };
      } catch (err0) {
        await rm(outDir, { recursive: true, force: true }).catch(() => undefined);
        const reason: unknown = ac.signal.reason;
        const err = ac.signal.aborted && reason instanceof TaskTimeoutError ? reason : err0;
        if (o.signal?.aborted || (err instanceof TaskCancelledError && !(reason instanceof TaskTimeoutError))) {
          return { ok: false, attempt, error: { code: 'cancelled', message: 'cancelled', retryable: false }, cancelled: true };
        }
        const te: TaskError = asTaskError(err);
        if (!te.retryable || attempt >= maxAttempts) return { ok: false, attempt, error: te };
        log.warn({ taskId: task.taskId, attempt, code: te.code, error: te.message }, 'task attempt failed; retrying');
        await new Promise((r) => setTimeout(r, (o.retryDelayMs ?? 200) * attempt));
      } finally {
        clearTimeout(wall);
        o.signal?.removeEventListener('abort', onAbort);
        await rm(attemptScratch, { recursive: true, force: true }).catch(() => undefined);
      }
    }
  };

  const mapOk: (AttemptOk | undefined)[] = new Array(plan.count);
  let cancelled = false;
  try {
    await inLanes(plan.count, parallel, async (take) => {
      for (let i = take(); i !== undefined && !o.signal?.aborted; i = take()) {
        const task = taskFor(i, 'map', plan.units?.[i]);
        const r = await runTask(task);
        if (r.ok) {
          mapOk[i] = r;
          res.done++;
        } else if (r.cancelled) {
          cancelled = true;
        } else {
          res.failed++;
          res.failures.push({ taskId: task.taskId, index: i, attempt: r.attempt, error: r.error });
        }
        progress();
      }
    });
    if (o.signal?.aborted) cancelled = true;

    const oks = mapOk.flatMap((r, i) => (r ? [{ r, i }] : []));
    for (const { r } of oks) {
      res.files.push(...r.outputs);
      if (!hasReduce) res.rows += r.rows ?? 0;
    }
    for (const { r, i } of oks) if (r.summary !== undefined) res.summaries.push({ taskId: `${jobId}.${i}`, summary: r.summary });

    if (cancelled) {
      res.state = 'cancelled';
      res.error = 'cancelled';
    } else if (hasReduce) {
      if (oks.length === 0) {
        res.state = 'failed';
        res.error = 'every map task failed; reduce skipped';
      } else {
        res.state = 'reducing';
        progress();
        const partials = oks.flatMap(({ r }) => r.outputs.map((f) => f.path));
        const task = taskFor(-1, 'reduce', { unit: { partials } });
        const r = await runTask(task, partials);
        if (r.ok) {
          res.done++;
          res.files.push(...r.outputs);
          res.rows = r.rows ?? 0;
          if (r.summary !== undefined) res.summaries.push({ taskId: task.taskId, summary: r.summary });
          res.state = res.failed === 0 ? 'succeeded' : 'partial';
          if (res.failed > 0) res.error = `${res.failed} of ${plan.count} map tasks failed; the reduce ran over the rest`;
        } else if (r.cancelled) {
          res.state = 'cancelled';
          res.error = 'cancelled';
        } else {
          res.failed++;
          res.failures.push({ taskId: task.taskId, index: -1, attempt: r.attempt, error: r.error });
          res.state = 'failed';
          res.error = `reduce failed: ${r.error.message}`;
        }
      }
    } else {
      res.state = res.failed === 0 ? 'succeeded' : oks.length > 0 ? 'partial' : 'failed';
      if (res.failed > 0) res.error = `${res.failed} of ${plan.count} tasks failed`;
    }

    if (res.state !== 'cancelled' && writesHatsCatalog(spec.kind, hasReduce) && spec.output?.path) {
      const leaves = oks.flatMap(({ r, i }) => hatsLeavesOf(plan.units?.[i], r.outputs, r.rows));
      if (leaves.length > 0) {
        try {
          await hats.writeHatsMetadata(spec.output.path, { name: spec.name ?? jobId, raColumn: 'ra', decColumn: 'dec', partitions: leaves, extraProperties: { ubatch_job_id: jobId } });
        } catch (err) {
          log.warn({ err, output: spec.output.path }, 'could not write HATS metadata for the output');
          res.error = `${res.error ? `${res.error}; ` : ''}HATS metadata not written: ${(err as Error).message}`;
        }
      }
    }
  } finally {
    await rm(join(workRoot(outRoot), 'tmp'), { recursive: true, force: true }).catch(() => undefined);
    if (ownScratch) await rm(scratchRoot, { recursive: true, force: true }).catch(() => undefined);
  }
  res.wallSeconds = (performance.now() - t0) / 1000;
  progress();
  return res;
}
