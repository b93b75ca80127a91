/**
 * `ubatch submit` (to the mesh) and `ubatch run` (the same spec, in this
 * process, on local files).
 */
import { dirname, relative } from 'node:path';
import type { Command } from 'commander';
import { UbatchApiError, type JobInfo } from '../../protocol/index.js';
import { parseIntOption } from '../config.js';
import { exitCodeForApiCode, exitCodeForState, ExitCode } from '../errors.js';
import { createProgress, formatBytes, formatCount, formatDuration, renderKeyValues, renderTable } from '../format.js';
import type { LocalRunResult } from '../local-run.js';
import { createLogger } from '../log.js';
import { loadSpecFile, type LoadedSpec } from '../spec-file.js';
import { configOf, finalLine, note, onShutdownSignals, out, outJson, watchJob, withClient, type Runtime } from './runtime.js';

const collect = (v: string, prev: string[]) => [...prev, v];

interface SpecFlags {
  set: string[];
  group?: string;
  json?: boolean;
  quiet?: boolean;
}

/** An API error about the spec, re-pointed at the spec file's line and column when it is a usage error. */
export function explainSpecError(err: unknown, loaded: LoadedSpec): unknown {
  if (err instanceof UbatchApiError && exitCodeForApiCode(err.code) === ExitCode.usage && err.where?.startsWith('/spec')) return loaded.explain(err);
  return err;
}

function printJobInfo(rt: Runtime, info: JobInfo): void {
  out(rt, finalLine(info));
  for (const f of info.failures.slice(0, 5)) out(rt, `  task ${f.index} (attempt ${f.attempt}) ${f.error.code}: ${f.error.message}`);
  if (info.failures.length > 5) out(rt, `  ... and ${info.failures.length - 5} more failures (ubatch results ${info.jobId})`);
  if (info.output) out(rt, `output: ${info.output}`);
}

export function registerSubmitCommands(program: Command, rt: Runtime): void {
  program
    .command('submit')
    .description('submit a job spec (YAML or JSON) to the mesh')
    .argument('<spec>', 'job spec file (.yaml, .yml or .json)')
    .option('--wait', 'follow the job to its end (like ubatch watch); the exit code reflects the final state')
    .option('--dry-run', 'plan only: show the partitions and the cost estimate, submit nothing')
    .option('--group <group>', 'accounting group (overrides the spec)')
    .option('--set <key=value>', 'edit the spec: dotted key, YAML value (repeatable)', collect, [])
    .option('--json', 'print one JSON document')
    .option('-q, --quiet', 'no progress output')
    .addHelpText('after', '\nRelative input and output paths in the spec are resolved against the spec file\'s directory.\nExamples:\n  ubatch submit job.yaml --wait\n  ubatch submit job.yaml --dry-run --set select.cone.radius_deg=1')
    .action(async (file: string, flags: SpecFlags & { wait?: boolean; dryRun?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const loaded = await loadSpecFile(file, { set: flags.set, ...(flags.group !== undefined ? { group: flags.group } : {}), cwd: rt.cwd });
      await withClient(
        cfg,
        async (client) => {
          if (flags.dryRun) {
            const plan = await client.dryRun(loaded.spec).catch((err: unknown) => {
              throw explainSpecError(err, loaded);
            });
            if (flags.json) return outJson(rt, plan);
            out(rt, renderKeyValues([['kind', loaded.spec.kind], ['tasks', formatCount(plan.tasks)], ['estimate', `${plan.estimate.coreHours.toFixed(4)} core-hours (${plan.estimate.basis})`], ...dryRunExtras(plan)]));
            if (plan.partitions.length > 0) {
              const shown = plan.partitions.slice(0, 20);
              out(rt, renderTable(['order', 'pixel', 'rows'], shown.map((p) => [p.order, p.pixel, p.rows !== undefined ? formatCount(p.rows) : '-']), { alignRight: [0, 1, 2] }));
              if (plan.partitions.length > shown.length) out(rt, `... and ${plan.partitions.length - shown.length} more partitions`);
            }
            return;
          }
          const sub = await client.submit(loaded.spec).catch((err: unknown) => {
            throw explainSpecError(err, loaded);
          });
          if (!flags.wait) {
            if (flags.json) return outJson(rt, sub);
            out(rt, `${sub.duplicate ? 'already submitted (same idempotency_key): ' : 'submitted '}job ${sub.jobId}: ${formatCount(sub.tasks)} tasks, ${sub.state}`);
            note(rt, `follow it with: ubatch watch ${sub.jobId}`);
            return;
          }
          if (!flags.json) out(rt, `submitted job ${sub.jobId}: ${formatCount(sub.tasks)} tasks`);
          const info = await watchJob(rt, client, sub.jobId, { silent: flags.json === true || flags.quiet === true });
          if (flags.json) outJson(rt, { ...sub, final: info });
          else printJobInfo(rt, info);
          rt.exitCode = exitCodeForState(info.state);
        },
        60_000,
      );
    });

  program
    .command('run')
    .description('run a job spec here, on local files, without NATS (same planner, executors and output layout as the mesh)')
    .argument('<spec>', 'job spec file (.yaml, .yml or .json)')
    .option('-o, --output <path>', 'output path (overrides output.path in the spec)')
    .option('-p, --parallel <n>', 'tasks run at once', '1')
    .option('--group <group>', 'accounting group (overrides the spec)')
    .option('--set <key=value>', 'edit the spec: dotted key, YAML value (repeatable)', collect, [])
    .option('--json', 'print one JSON document')
    .option('-q, --quiet', 'no progress output')
    .action(async (file: string, flags: SpecFlags & { output?: string; parallel: string }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const parallel = parseIntOption(flags.parallel, '--parallel', 1, 1024);
      const loaded = await loadSpecFile(file, { set: flags.set, ...(flags.group !== undefined ? { group: flags.group } : {}), cwd: rt.cwd });
      const log = createLogger('ubatch-run', { level: cfg.logLevel, pretty: false, destination: 2 });
      const progress = createProgress({ label: loaded.spec.name ?? loaded.spec.kind, stream: rt.io.err, silent: flags.json === true || flags.quiet === true });
      const ac = new AbortController();
      const removeSignals = onShutdownSignals(() => {
        progress.note('stopping: cancelling the running tasks (Ctrl-C again to exit at once)');
        ac.abort();
      });
      let res: LocalRunResult;
      try {
        // loaded on demand: the planner and executors bring DuckDB
        const { runLocally } = await import('../local-run.js');
        res = await runLocally(loaded.spec, {
          parallel,
          user: cfg.user,
          signal: ac.signal,
          log,
          ...(flags.output !== undefined ? { output: flags.output } : {}),
          onProgress: (p) => progress.update(p),
        }).catch((err: unknown) => {
          throw err instanceof UbatchApiError && exitCodeForApiCode(err.code) === ExitCode.usage ? loaded.explain(err) : err;
        });
      } finally {
        progress.stop();
        removeSignals();
      }
      rt.exitCode = exitCodeForState(res.state);
      if (flags.json) return outJson(rt, res);
      printLocalResult(rt, res);
    });
}

interface QuotaViewLike {
  limits?: Record<string, number>;
  used?: Record<string, number>;
}

/** The coordinator's quote beyond the estimate (credit, schedule), when it sends one: read defensively. */
export function dryRunExtras(plan: object): [string, string][] {
  const p = plan as { group?: unknown; credit?: { user?: QuotaViewLike; group?: QuotaViewLike; maxConcurrent?: unknown; wouldBeRejected?: unknown }; schedule?: { workerSlots?: unknown; queuedAhead?: unknown; estimatedStart?: unknown; estimatedFinish?: unknown; note?: unknown } };
  const pairs: [string, string][] = [];
  if (typeof p.group === 'string') pairs.push(['group', p.group]);
  const quota = (name: string, v: QuotaViewLike | undefined) => {
    const limit = v?.limits?.['cpu_hours'];
    const used = v?.used?.['cpu_hours'];
    return `${name} ${typeof used === 'number' ? used.toFixed(3) : '?'} cpu-hours used${typeof limit === 'number' ? ` of ${limit}` : ' (no limit)'}`;
  };
  if (p.credit) {
    pairs.push(['quota', `${quota('user', p.credit.user)}; ${quota('group', p.credit.group)}${typeof p.credit.maxConcurrent === 'number' ? `; at most ${p.credit.maxConcurrent} tasks at once` : ''}`]);
    if (typeof p.credit.wouldBeRejected === 'string') pairs.push(['WOULD BE REJECTED', p.credit.wouldBeRejected]);
  }
  const sc = p.schedule;
  if (sc) {
    const parts = [`${String(sc.workerSlots ?? '?')} worker slots`, `${String(sc.queuedAhead ?? '?')} tasks queued ahead`];
    if (typeof sc.estimatedStart === 'string') parts.push(`start ~${sc.estimatedStart}`);
    if (typeof sc.estimatedFinish === 'string') parts.push(`finish ~${sc.estimatedFinish}`);
    if (typeof sc.note === 'string') parts.push(sc.note);
    pairs.push(['schedule', parts.join(', ')]);
  }
  return pairs;
}

/** A path shown relative to the job's output (its parent for a single .parquet output). */
export function displayPath(path: string, output: string | undefined): string {
  if (!output) return path;
  const base = output.endsWith('.parquet') ? dirname(output) : output;
  const rel = relative(base, path);
  return rel === '' || rel.startsWith('..') ? path : rel;
}

function printLocalResult(rt: Runtime, r: LocalRunResult): void {
  out(rt, `local job ${r.jobId} ${r.state}: ${formatCount(r.done)}/${formatCount(r.total)} tasks done, ${formatCount(r.failed)} failed in ${formatDuration(r.wallSeconds)}${r.error ? ` (${r.error})` : ''}`);
  if (r.output) out(rt, `output: ${r.output}`);
  const bytes = r.files.reduce((s, f) => s + f.bytes, 0);
  out(rt, `${formatCount(r.files.length)} files, ${formatBytes(bytes)}, ${formatCount(r.rows)} rows`);
  const shown = r.files.slice(-10);
  if (shown.length > 0) {
    out(rt, renderTable(['file', 'size', 'rows'], shown.map((f) => [displayPath(f.path, r.output), formatBytes(f.bytes), f.rows !== undefined ? formatCount(f.rows) : '-']), { alignRight: [1, 2] }));
    if (r.files.length > shown.length) out(rt, `(last ${shown.length} of ${r.files.length} files shown)`);
  }
  for (const f of r.failures.slice(0, 10)) out(rt, `  failed: task ${f.index} (attempt ${f.attempt}) ${f.error.code}: ${f.error.message}`);
}
