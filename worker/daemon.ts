/**
 * The worker daemon: advertises capabilities and slots, picks for each free
 * slot the best-ranked tenant with released work in one of its capabilities
 * (ranking published by the coordinator in ub-shares), pulls from that
 * tenant's durable consumer, runs the executor off the event loop, and
 * commits outcomes + charges before acking.
 *
 * Lifecycle: `WorkerDaemon.create()` connects and prepares; `run()` resolves
 * after a clean drain; `close()` is idempotent. SIGTERM → drain: stop pulling,
 * let running tasks finish for drainTimeoutMs, hand back the rest (nak).
 */
import { hostname as osHostname } from 'node:os';
import { mkdir, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { jetstream, type Consumer, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  attemptDir,
  backoffMs,
  committedPath,
  decode,
  encode,
  ensureTopologyRetrying,
  isValid,
  jobHasReduce,
  JobSpec,
  KvKey,
  Streams,
  Task,
  taskConsumerName,
  type Charge,
  type FileRecord,
  type RankingDoc,
  type RankingEntry,
  type TaskOutcome,
  type Topology,
  type TopologyOptions,
  type Usage,
} from '../protocol/index.js';
import { hats } from '../astro/index.js';
import { LedgerWriter } from '../ledger/index.js';
import { CpuSlicer } from './accounting.js';
import { OutcomeBatcher, type AckAction } from './batcher.js';
import { buildInfo } from './build-info.js';
import { asTaskError, TaskCancelledError, TaskFailedError, TaskTimeoutError } from './errors.js';
import { diskFullError, isDiskFull } from './sandbox.js';
import { executors } from './executors/index.js';
import { fileRecord, listFilesRecursive } from './files.js';
import { noopWorkerMetrics, type WorkerMetrics } from './metrics.js';
import { pickTenant } from './pick.js';
import { backoffFor, compileWorkerOptions, type CompiledWorkerOptions, type WorkerOptions } from './options.js';
import { noopLog, type ExecResult, type Log } from './types.js';

const HOST = osHostname();
const hostname = () => HOST;

/** extra deliveries allowed for attempts lost to infrastructure faults */
export const LOST_DELIVERY_SLACK = 5;

type State = 'created' | 'running' | 'draining' | 'stopped';

interface Running {
  msg: JsMsg;
  task: Task;
  abort: AbortController;
  startedAt: number;
}

export interface WorkerDeps {
  nc: NatsConnection;
  log?: Log;
  metrics?: WorkerMetrics;
  topology?: TopologyOptions;
}

export class WorkerDaemon {
  readonly opts: CompiledWorkerOptions;
  private state: State = 'created';
  private readonly js: JetStreamClient;
  private topo!: Topology;
  private batcher!: OutcomeBatcher;
  private readonly log: Log;
  private readonly metrics: WorkerMetrics;
  private readonly running = new Map<string, Running>();
  private reserved = 0;
  private activeFetches = 0;
  private ranking: RankingEntry[] = [];
  private readonly cooldown = new Map<RankingEntry, number>();
  private readonly capabilitySet: ReadonlySet<string>;
  private readonly consumers = new Map<string, Promise<Consumer>>();
  private readonly specs = new Map<string, Promise<JobSpec | undefined>>();
  private readonly cancelled = new Set<string>();
  private readonly cpu = new CpuSlicer();
  private wake: (() => void) | undefined;
  private readonly stops: (() => unknown)[] = [];
  private runPromise: Promise<void> | undefined;
  private closed = false;
  private executions = 0;
  /** every slot-holding start/finish, for cap checks in tests: [ms, tenant, +1|-1] */
  readonly slotLog: [number, string, number][] = [];
  recordSlots = false;

  private constructor(private readonly deps: WorkerDeps, opts: WorkerOptions) {
    this.opts = compileWorkerOptions(opts);
    this.capabilitySet = new Set(this.opts.capabilities);
    this.js = jetstream(deps.nc);
    this.log = deps.log ?? noopLog;
    this.metrics = deps.metrics ?? noopWorkerMetrics;
  }

  static async create(deps: WorkerDeps, opts: WorkerOptions = {}): Promise<WorkerDaemon> {
    const w = new WorkerDaemon(deps, opts);
    w.topo = await ensureTopologyRetrying(deps.nc, deps.topology, {
      onRetry: (err, attempt) => w.log.warn({ err, attempt }, 'streams and buckets not ready yet (will retry)'),
    });
    const ledger = new LedgerWriter(w.js, { observeLatency: (s) => w.metrics.ledgerAppend(s) });
    w.batcher = new OutcomeBatcher(w.js, ledger, w.log, {
      maxBatch: w.opts.maxBatch,
      lingerMs: w.opts.batchLingerMs,
    });
    await mkdir(w.opts.scratchRoot, { recursive: true });
    // The kernels' shared DuckDB (reads for crossmatch, periodogram, images) runs each query on the
    // thread that asks for it: a task holds one core per slot, and concurrent tasks still read in
    // parallel. With DuckDB's default (a scheduler thread per core) an idle scheduler thread calls
    // malloc_trim 0.5 s after the last query, handing the freed heap pages of the process back to the
    // kernel, and the next task faulted them in again: ≈ 0.3 s on a 1 s crossmatch (bench/RESULTS.md).
    await hats.setSharedDuckThreads(1);
    return w;
  }

  get id(): string {
    return this.opts.id;
  }
  get busy(): number {
    return this.running.size;
  }

  /** start pulling; resolves once drained and stopped */
  run(): Promise<void> {
    if (this.runPromise) return this.runPromise;
    this.state = 'running';
    this.log.info({ worker: this.id, capabilities: this.opts.capabilities, slots: this.opts.slots }, 'worker started');
    void this.heartbeat();
    const hb = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs);
    const tick = setInterval(() => this.cpu.tick(), 100);
    this.stops.push(() => clearInterval(hb), () => clearInterval(tick));
    void this.watchRanking(this.topo.shares);
    void this.watchCancels(this.topo.jobs);
    this.runPromise = this.pullLoop();
    return this.runPromise;
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.topo.workers.put(
        this.id,
        encode({
          id: this.id,
          host: hostname(),
          pid: process.pid,
          capabilities: this.opts.capabilities,
          slots: this.opts.slots,
          busy: this.running.size,
          state: this.state,
          ts: Date.now(),
        }),
      );
    } catch (err) {
      this.metrics.swallowed('heartbeat');
      this.log.warn({ err }, 'heartbeat failed (will retry)');
    }
  }

  private watchRanking(kv: KV): Promise<void> {
    return this.keepWatching(kv, KvKey.ranking, 'ranking', (e) => {
      try {
        const doc = decode(e.value) as RankingDoc;
        this.ranking = Array.isArray(doc.entries) ? doc.entries : [];
      } catch (err) {
        this.metrics.swallowed('ranking-decode');
        this.log.warn({ err }, 'ignoring an undecodable ranking');
      }
      this.cooldown.clear();
      this.poke();
    });
  }

  private watchCancels(kv: KV): Promise<void> {
    return this.keepWatching(kv, 'cancel.>', 'cancel', (e) => {
      const jobId = e.key.slice('cancel.'.length);
      this.cancelled.add(jobId);
      for (const r of this.running.values()) if (r.task.jobId === jobId) r.abort.abort();
    });
  }

  /**
   * Follow a KV key for as long as the worker runs. Opening the watch can fail
   * while a cluster is still electing the bucket's stream leader (or the
   * server is away), and a watch can end; without the ranking a worker would
   * never pull, so both are retried with backoff instead of giving up.
   */
  private async keepWatching(kv: KV, key: string, what: string, onPut: (e: KvEntry) => void): Promise<void> {
    // failures since the watch last opened: the pause before the next try doubles with each (0.4 s to 5 s)
    let failures = 0;
    while (this.state === 'running') {
      try {
        const it = await kv.watch({ key });
        let stopped = false;
        this.stops.push(() => ((stopped = true), it.stop()));
        if (failures > 0) this.log.info({ failures }, `${what} watch (re)opened`);
        failures = 0;
        for await (const e of it) if (e.operation === 'PUT') onPut(e);
        if (stopped) return;
        if (this.state === 'running') this.log.warn({}, `${what} watch ended; reopening`);
      } catch (err) {
        if (this.state !== 'running') return;
        this.metrics.swallowed(`${what}-watch`);
        this.log.warn({ err, failures }, `${what} watch failed; retrying`);
      }
      await new Promise((r) => setTimeout(r, backoffMs(++failures, 400, 5_000)));
    }
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private pick(): RankingEntry | undefined {
    return pickTenant(this.ranking, this.capabilitySet, this.cooldown, Date.now());
  }

  private consumerFor(e: RankingEntry): Promise<Consumer> {
    const name = taskConsumerName(e.capability, e.group, e.user);
    let c = this.consumers.get(name);
    if (!c) {
      c = this.js.consumers.get(Streams.tasks, name);
      this.consumers.set(name, c);
      c.catch(() => this.consumers.delete(name));
    }
    return c;
  }

  private async pullLoop(): Promise<void> {
    while (this.state === 'running') {
      const free = this.opts.slots - this.running.size - this.reserved;
      if (free <= 0 || this.activeFetches >= 2) {
        await this.sleep(1000);
        continue;
      }
      const e = this.pick();
      if (!e) {
        await this.sleep(1000);
        continue;
      }
      const n = Math.min(free, this.opts.fetchBatch, Math.max(1, e.backlog));
      this.reserved += n;
      this.activeFetches++;
      const done = this.fetchInto(e, n).finally(() => {
        this.activeFetches--;
        this.poke();
      });
      // a full batch returns at once; a partial one waits for its expiry, so let a second fetch run meanwhile
      await Promise.race([done, new Promise((r) => setTimeout(r, 20))]);
    }
  }

  private async fetchInto(e: RankingEntry, n: number): Promise<void> {
    let got = 0;
    try {
      const consumer = await this.consumerFor(e);
      const msgs = await consumer.fetch({ max_messages: n, expires: 1000 });
      for await (const m of msgs) {
        got++;
        this.reserved--;
        if (this.state !== 'running') {
          m.nak();
          continue;
        }
        void this.runTask(m);
      }
    } catch (err) {
      this.metrics.swallowed('fetch');
      this.log.warn({ err, tenant: e.tenant, capability: e.capability }, 'fetch failed');
    } finally {
      this.reserved -= n - got;
      if (got === 0) this.cooldown.set(e, Date.now() + 1000);
    }
  }

  private specFor(jobId: string): Promise<JobSpec | undefined> {
    let p = this.specs.get(jobId);
    if (!p) {
      p = this.topo.jobs.get(KvKey.spec(jobId)).then((e) => {
        if (!e || e.operation !== 'PUT') return undefined;
        const v = decode(e.value);
        return isValid(JobSpec, v) ? v : undefined;
      });
      this.specs.set(jobId, p);
      if (this.specs.size > 10_000) this.specs.delete(this.specs.keys().next().value!);
      p.catch(() => this.specs.delete(jobId));
    }
    return p;
  }

  private async runTask(m: JsMsg): Promise<void> {
    let task: Task;
    try {
      const v = decode(m.data, m.subject);
      if (!isValid(Task, v)) throw new Error('does not match the Task schema');
      task = v;
    } catch (err) {
      // not ours to run and nothing to charge: drop it loudly
      this.metrics.swallowed('bad-task');
      this.log.error({ err, subject: m.subject, seq: m.seq }, 'terminating an undecodable task message');
      m.term();
      return;
    }
    const attempt = m.info.deliveryCount;
    const abort = new AbortController();
    const r: Running = { msg: m, task, abort, startedAt: Date.now() };
    this.running.set(task.taskId + '/' + attempt, r);
    if (this.recordSlots) this.slotLog.push([Date.now(), `${task.group}.${task.user}`, 1]);
    this.metrics.slots(this.running.size, this.opts.slots);
    try {
      await this.execute(m, task, attempt, abort);
    } catch (err) {
      this.metrics.swallowed('run-task');
      this.log.error({ err, taskId: task.taskId }, 'unexpected error while running a task; handing it back');
      m.nak(5000);
    } finally {
      this.running.delete(task.taskId + '/' + attempt);
      if (this.recordSlots) this.slotLog.push([Date.now(), `${task.group}.${task.user}`, -1]);
      this.metrics.slots(this.running.size, this.opts.slots);
      this.poke();
    }
  }

  private async execute(m: JsMsg, task: Task, attempt: number, abort: AbortController): Promise<void> {
    const base = { msg: m, jobId: task.jobId, group: task.group, user: task.user, actor: this.id };
    if (this.cancelled.has(task.jobId) || (await this.isCancelled(task.jobId))) {
      // a cancelled job's task: acked without running, nothing to charge
      this.batcher.add({ ...base, action: { type: 'ack' } });
      this.metrics.taskFinished(task.kind, 'cancelled', 0);
      return;
    }
    const spec = await this.specFor(task.jobId);
    const startedAt = new Date();
    const finalFailure = (code: string, message: string, where?: string) => {
      const outcome = this.outcome(task, attempt, 'failed', zeroUsage(), { error: { code, message, retryable: false, ...(where ? { where } : {}) } });
      this.batcher.add({ ...base, outcome, action: { type: 'term' } });
      this.metrics.taskFinished(task.kind, 'dead', 0);
    };
    if (!spec) return finalFailure('job_not_found', `job ${task.jobId} has no stored spec`);
    const maxAttempts = spec.resources?.max_attempts ?? 3;
    // deliveries also repeat for reasons that are not the task's fault (a worker or the server died,
    // a commit could not reach the server): those get a few extra deliveries before the task is dead-lettered
    const maxDeliveries = maxAttempts + LOST_DELIVERY_SLACK;
    if (attempt > maxDeliveries) return finalFailure('max_attempts', `task was delivered ${attempt} times (max_attempts ${maxAttempts}, plus ${LOST_DELIVERY_SLACK} for lost deliveries); the earlier attempts were lost (worker died, timed out or could not commit)`);
    const exec = executors.get(task.kind);
    if (!exec) return finalFailure('unknown_kind', `this worker has no executor for kind ${task.kind}`);

    const outDir = attemptDir(spec.output?.path ?? join(this.opts.scratchRoot, 'out', task.jobId), task.taskId, attempt);
    const scratchDir = join(this.opts.scratchRoot, `${task.taskId}.a${attempt}`, 'scratch');
    const keepAlive = setInterval(() => m.working(), this.opts.keepAliveMs);
    let lastWorking = Date.now();
    const progress = () => {
      const now = Date.now();
      if (now - lastWorking > this.opts.keepAliveMs / 2) {
        lastWorking = now;
        m.working();
      }
    };
    const walltime = spec.resources?.walltime_s ?? 3600;
    const wallTimer = setTimeout(() => abort.abort(new TaskTimeoutError(walltime)), walltime * 1000);
    const id = `${task.taskId}/${attempt}`;
    if (exec.inProcess) this.cpu.start(id);
    const t0 = performance.now();
    let usage: Usage;
    try {
      if (exec.needsDirs !== false) {
        await mkdir(outDir, { recursive: true });
        await mkdir(scratchDir, { recursive: true });
      }
      const ctx = {
        task,
        spec,
        attempt,
        outDir,
        scratchDir,
        signal: abort.signal,
        progress,
        log: this.log.child?.({ taskId: task.taskId, attempt }) ?? this.log,
        workerId: this.id,
        putArtifact: async (name: string, data: Uint8Array) => {
          await this.topo.artifacts.putBlob({ name }, data);
          return name;
        },
      };
      const res = task.stage === 'reduce' ? await exec.reduce!(ctx, partialsOf(task)) : await exec.map(ctx);
      usage = this.usage(exec.inProcess, id, t0, res.usage);
      const hasReduce = jobHasReduce(spec);
      const outputRel = res.outputs.map((o) => relative(outDir, o.path));
      const outputs: FileRecord[] = res.outputs.map((o, i) => ({ ...o, path: committedPath(spec, hasReduce, task, outputRel[i]!) }));
      const outcome = this.outcome(task, attempt, 'ok', usage, {
        ...(exec.needsDirs !== false ? { outputTmp: outDir } : {}),
        outputs,
        outputRel,
        ...(res.rows !== undefined ? { rows: res.rows } : {}),
        ...(res.summary !== undefined ? { summary: res.summary } : {}),
      });
      const charge = this.charge(task, spec, attempt, 'ok', usage, startedAt, res.inputs, outputs, res.sandbox);
      this.batcher.add({ ...base, outcome, charge, action: { type: 'ack' } });
      this.metrics.taskFinished(task.kind, 'ok', usage.wallSeconds);
    } catch (err0) {
      const err = abort.signal.aborted && abort.signal.reason instanceof TaskTimeoutError ? abort.signal.reason : err0;
      usage = this.usage(exec.inProcess, id, t0);
      if (exec.needsDirs !== false) await rm(outDir, { recursive: true, force: true }).catch(() => undefined);
      if (err instanceof TaskCancelledError || (abort.signal.aborted && this.cancelled.has(task.jobId))) {
        const charge = this.charge(task, spec, attempt, 'cancelled', usage, startedAt, [], []);
        this.batcher.add({ ...base, charge, action: { type: 'ack' } });
        this.metrics.taskFinished(task.kind, 'cancelled', usage.wallSeconds);
        return;
      }
      if (this.state !== 'running' && abort.signal.aborted) {
        // drained: hand the task back, charge what this attempt used
        const charge = this.charge(task, spec, attempt, 'retried', usage, startedAt, [], []);
        this.batcher.add({ ...base, charge, action: { type: 'nak', delayMs: 0 } });
        return;
      }
      // a full disk is named as such (with the place), whichever executor met it; see diskFullError for retries
      const te = asTaskError(isDiskFull(err) && !(err instanceof TaskFailedError && err.code === 'disk_full') ? await diskFullError(err, [outDir, scratchDir]) : err);
      const last = !te.retryable || attempt >= maxAttempts;
      const action: AckAction = last ? { type: 'term' } : { type: 'nak', delayMs: backoffFor(attempt, this.opts.backoffMs) };
      const charge = this.charge(task, spec, attempt, last ? 'failed' : 'retried', usage, startedAt, [], []);
      const outcome = last ? this.outcome(task, attempt, 'failed', usage, { error: te }) : undefined;
      this.batcher.add({ ...base, charge, ...(outcome ? { outcome } : {}), action });
      this.metrics.taskFinished(task.kind, last ? 'failed' : 'retried', usage.wallSeconds);
      this.log.warn({ taskId: task.taskId, attempt, code: te.code, error: te.message, final: last }, 'task attempt failed');
    } finally {
      clearInterval(keepAlive);
      clearTimeout(wallTimer);
      if (exec.needsDirs !== false) await rm(join(this.opts.scratchRoot, `${task.taskId}.a${attempt}`), { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async isCancelled(jobId: string): Promise<boolean> {
    // the watch covers cancels while we run; this covers cancels made before we started
    if (this.specs.has(jobId)) return false;
    const e = await this.topo.jobs.get(KvKey.cancel(jobId)).catch(() => null);
    if (e && e.operation === 'PUT') {
      this.cancelled.add(jobId);
      return true;
    }
    return false;
  }

  private usage(inProcess: boolean, id: string, t0: number, measured?: Partial<Usage>): Usage {
    const wallSeconds = (performance.now() - t0) / 1000;
    const sliced = inProcess ? this.cpu.stop(id) : { cpuSeconds: 0, peakRssBytes: 0 };
    return {
      cpuSeconds: measured?.cpuSeconds ?? sliced.cpuSeconds,
      wallSeconds: measured?.wallSeconds ?? wallSeconds,
      gpuSeconds: measured?.gpuSeconds ?? 0,
      peakRssBytes: measured?.peakRssBytes ?? sliced.peakRssBytes,
      bytesRead: measured?.bytesRead ?? 0,
      bytesWritten: measured?.bytesWritten ?? 0,
    };
  }

  private outcome(task: Task, attempt: number, status: TaskOutcome['status'], usage: Usage, extra: Partial<TaskOutcome>): TaskOutcome {
    return { taskId: task.taskId, index: task.index, stage: task.stage, attempt, status, workerId: this.id, usage, ...extra };
  }

  private charge(task: Task, spec: JobSpec, attempt: number, outcome: Charge['outcome'], usage: Usage, startedAt: Date, inputs: FileRecord[], outputs: FileRecord[], sandbox?: ExecResult['sandbox']): Charge {
    const bi = buildInfo();
    const withIo: Usage = {
      ...usage,
      allocatedCores: spec.resources?.cores ?? 1,
      bytesRead: usage.bytesRead || inputs.reduce((s, f) => s + f.bytes, 0),
      bytesWritten: usage.bytesWritten || outputs.reduce((s, f) => s + f.bytes, 0),
    };
    return {
      taskId: task.taskId,
      jobId: task.jobId,
      attempt,
      execution: `${this.id}.${++this.executions}`,
      outcome,
      usage: withIo,
      provenance: {
        inputs,
        outputs,
        code: { ubatchVersion: bi.version, gitCommit: bi.gitCommit, kind: task.kind },
        params: task.stage === 'reduce' ? { reduce: (spec.params as Record<string, unknown> | undefined)?.reduce } : paramsForProvenance(spec),
        worker: { id: this.id, host: hostname(), pid: process.pid },
        startedAt: startedAt.toISOString(),
        endedAt: new Date().toISOString(),
        ...(sandbox ? { sandbox } : {}),
      },
    };
  }

  /** stop pulling, let running tasks finish (up to drainTimeoutMs), hand back the rest, commit, stop */
  async drain(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'draining';
    this.log.info({ running: this.running.size }, 'draining');
    this.poke();
    const deadline = Date.now() + this.opts.drainTimeoutMs;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const r of this.running.values()) r.abort.abort();
    while (this.running.size > 0) await new Promise((r) => setTimeout(r, 20));
    // a batch that cannot be committed is retried a little longer, then its tasks are handed back
    await this.batcher.drain(Math.max(deadline, Date.now()) + 15_000);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const errors: unknown[] = [];
    await this.drain().catch((e) => errors.push(e));
    this.state = 'stopped';
    this.poke();
    for (const s of this.stops) {
      try {
        s();
      } catch (e) {
        errors.push(e);
      }
    }
    await this.topo.workers.delete(this.id).catch((e) => errors.push(e));
    await this.runPromise?.catch((e) => errors.push(e));
    await rm(this.opts.scratchRoot, { recursive: true, force: true }).catch((e) => errors.push(e));
    for (const e of errors) this.log.warn({ err: e }, 'error during worker close');
    this.log.info({ worker: this.id }, 'worker stopped');
  }
}

function zeroUsage(): Usage {
  return { cpuSeconds: 0, wallSeconds: 0, gpuSeconds: 0, peakRssBytes: 0, bytesRead: 0, bytesWritten: 0 };
}

function partialsOf(task: Task): string[] {
  const u = task.unit as { partials?: unknown } | undefined;
  return Array.isArray(u?.partials) ? u.partials.filter((x): x is string => typeof x === 'string') : [];
}

function paramsForProvenance(spec: JobSpec): unknown {
  const s = JSON.stringify(spec.params ?? {});
  return s.length <= 4096 ? spec.params ?? {} : { truncated: true, bytes: s.length };
}

export { listFilesRecursive, fileRecord };
