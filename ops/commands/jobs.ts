/**
 * Commands about existing jobs: status, watch, cancel, results, logs.
 */
import type { Command } from 'commander';
import type { JobInfo, ResultsReply } from '../../protocol/index.js';
import { parseIntOption } from '../config.js';
import { CliUsageError, exitCodeForState, NotFoundError } from '../errors.js';
import { formatAge, formatBytes, formatCount, formatDuration, renderKeyValues, renderTable } from '../format.js';
import { displayPath } from './submit.js';
import { configOf, finalLine, isTerminal, note, out, outJson, watchJob, withClient, type Runtime } from './runtime.js';

function jobInfoPairs(info: JobInfo): [string, string | number | undefined][] {
  const secs = (Date.parse(info.closedAt ?? info.updatedAt) - Date.parse(info.createdAt)) / 1000;
  return [
    ['job', info.jobId],
    ['kind', info.kind],
    ['name', info.name],
    ['owner', `${info.user} (group ${info.group})`],
    ['state', info.state],
    ['tasks', `${formatCount(info.done)}/${formatCount(info.total)} done, ${formatCount(info.failed)} failed, ${formatCount(info.released)} released${info.hasReduce ? ' (incl. reduce)' : ''}`],
    ['created', `${info.createdAt} (${formatAge(info.createdAt)} ago)`],
    [info.closedAt ? 'closed' : 'updated', `${info.closedAt ?? info.updatedAt}${Number.isFinite(secs) ? ` (after ${formatDuration(secs)})` : ''}`],
    ['output', info.output],
    ['usage', `${info.usage.cpuSeconds.toFixed(1)} cpu-s, ${info.usage.wallSeconds.toFixed(1)} wall-s${info.usage.gpuSeconds > 0 ? `, ${info.usage.gpuSeconds.toFixed(1)} gpu-s` : ''}`],
    ...(info.error ? ([['error', info.error]] as [string, string][]) : []),
  ];
}

export function registerJobCommands(program: Command, rt: Runtime): void {
  program
    .command('status')
    .description("one job's state, or a table of your jobs")
    .argument('[jobId]', 'job id (omit for the list)')
    .option('--all', 'every job you may see (operators: every user\'s)')
    .option('--shared', "also the jobs your groups' members shared with the group (share_with_group in their spec)")
    .option('--limit <n>', 'most jobs listed', '50')
    .option('--state <state>', 'only jobs in this state')
    .option('--json', 'print one JSON document')
    .action(async (jobId: string | undefined, flags: { all?: boolean; shared?: boolean; limit: string; state?: string; json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const limit = parseIntOption(flags.limit, '--limit', 1, 10_000);
      await withClient(cfg, async (client) => {
        if (jobId) {
          const info = await client.get(jobId);
          if (flags.json) return outJson(rt, info);
          out(rt, renderKeyValues(jobInfoPairs(info)));
          for (const f of info.failures.slice(0, 5)) out(rt, `  failed task ${f.index} (attempt ${f.attempt}) ${f.error.code}: ${f.error.message}`);
          if (info.failures.length > 5) out(rt, `  ... ${info.failures.length - 5} more (ubatch results ${info.jobId})`);
          return;
        }
        const jobs = await client.list({ limit: flags.all ? 10_000 : limit, ...(flags.all ? { all: true } : {}), ...(flags.shared ? { shared: true } : {}), ...(flags.state ? { state: flags.state } : {}) });
        const withUser = flags.all === true || flags.shared === true;
        if (flags.json) return outJson(rt, jobs);
        if (jobs.length === 0) return out(rt, `no jobs for user ${cfg.user}`);
        const now = Date.now();
        out(
          rt,
          renderTable(
            ['job', 'kind', 'name', ...(withUser ? ['user'] : []), 'state', 'done/total', 'failed', 'age'],
            jobs.map((j) => [j.jobId, j.kind, (j.name ?? '').slice(0, 32), ...(withUser ? [j.user] : []), j.state, `${j.done}/${j.total}`, j.failed, formatAge(j.createdAt, now)]),
            { alignRight: withUser ? [5, 6, 7] : [4, 5, 6] },
          ),
        );
      });
    });

  program
    .command('watch')
    .description("follow a job's progress until it ends; the exit code reflects the final state")
    .argument('<jobId>')
    .option('--json', 'print the final job as one JSON document')
    .action(async (jobId: string, flags: { json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      await withClient(cfg, async (client) => {
        const info = await watchJob(rt, client, jobId, { silent: flags.json === true });
        if (flags.json) outJson(rt, info);
        else out(rt, finalLine(info));
        rt.exitCode = exitCodeForState(info.state);
      });
    });

  program
    .command('cancel')
    .description('cancel a job: queued tasks are dropped, running ones are stopped')
    .argument('<jobId>')
    .option('--json', 'print the job as one JSON document')
    .action(async (jobId: string, flags: { json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      await withClient(cfg, async (client) => {
        const before = await client.get(jobId);
        const info = await client.cancel(jobId);
        if (flags.json) return outJson(rt, info);
        out(rt, isTerminal(before) ? `job ${jobId} had already ended (${before.state}); nothing to cancel` : `job ${jobId} ${info.state}: ${info.done}/${info.total} tasks had finished`);
      });
    });

  program
    .command('results')
    .description("a job's output files (sizes, rows, checksums), failures and command summaries")
    .argument('<jobId>')
    .option('--limit <n>', 'most files and summaries listed', '50')
    .option('--json', 'print one JSON document')
    .action(async (jobId: string, flags: { limit: string; json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      const limit = parseIntOption(flags.limit, '--limit', 1, 1_000_000);
      await withClient(cfg, async (client) => {
        const r = await client.results(jobId);
        if (flags.json) return outJson(rt, r);
        printResults(rt, r, limit);
      });
    });

  program
    .command('logs')
    .description("a command job's stdout/stderr (kept in the object store ub-artifacts, read by the service for you) and the job's failures")
    .argument('<jobId>')
    .argument('[task]', 'only this task (its index, or r for the reduce); same as --task')
    .option('--task <n>', 'only this task (its index, or r for the reduce)')
    .option('--attempt <n>', 'only this attempt')
    .option('--stream <name>', 'stdout or stderr (default both)')
    .option('--max-bytes <n>', `most bytes of log text in the reply (the end of each log is kept), up to ${768 * 1024}`, String(256 * 1024))
    .option('--json', 'print one JSON document')
    .action(async (jobId: string, taskArg: string | undefined, flags: { task?: string; attempt?: string; stream?: string; maxBytes: string; json?: boolean }, cmd: Command) => {
      const cfg = configOf(rt, cmd);
      if (flags.stream !== undefined && flags.stream !== 'stdout' && flags.stream !== 'stderr') throw new CliUsageError(`--stream must be stdout or stderr, got ${JSON.stringify(flags.stream)}`, '--stream');
      if (taskArg !== undefined && flags.task !== undefined && taskArg !== flags.task) throw new CliUsageError(`task ${taskArg} and --task ${flags.task} disagree`, '--task');
      const task = taskArg ?? flags.task;
      if (task !== undefined && !/^(\d+|r)$/.test(task)) throw new CliUsageError(`the task must be a task index or r (the reduce), got ${JSON.stringify(task)}`, '--task');
      const attempt = flags.attempt !== undefined ? parseIntOption(flags.attempt, '--attempt', 1, 1000) : undefined;
      const maxBytes = parseIntOption(flags.maxBytes, '--max-bytes', 0, 768 * 1024);
      await withClient(cfg, async (client) => {
        // not_found (exit 4) for someone else's or an unknown job: the service checks the owner
        const r = await client.logs(jobId, { ...(task !== undefined ? { task } : {}), ...(attempt !== undefined ? { attempt } : {}), ...(flags.stream ? { stream: flags.stream as 'stdout' | 'stderr' } : {}), maxBytes });
        if (task !== undefined && r.logs.length === 0 && r.failures.length === 0) {
          throw new NotFoundError(`no logs or failures for task ${task} of job ${jobId}`, `${jobId}.${task}`);
        }
        if (flags.json) return outJson(rt, r);
        if (r.logs.length === 0) out(rt, `no command logs for job ${jobId} (${r.kind}${r.kind === 'command' ? '' : ': only command jobs keep logs'})`);
        for (const e of r.logs) {
          out(rt, `==> task ${e.index} attempt ${e.attempt} ${e.stream} (${formatBytes(e.bytes)}${e.truncated ? `, last ${formatBytes(Buffer.byteLength(e.text))} shown` : ''}) <==`);
          if (e.text) out(rt, e.text);
        }
        if (r.note) note(rt, `ubatch: ${r.note}`);
        if (r.failures.length > 0) {
          out(rt, `==> failures (${r.failures.length}) <==`);
          for (const f of r.failures) out(rt, `task ${f.index} attempt ${f.attempt} ${f.error.code}${f.error.where ? ` [${f.error.where}]` : ''}: ${f.error.message}`);
        }
      });
    });
}

interface CommandSummary {
  exitCode?: unknown;
  logs?: Record<string, unknown>;
}

export function printResults(rt: Runtime, r: ResultsReply, limit: number): void {
  const bytes = r.files.reduce((s, f) => s + f.bytes, 0);
  const rows = r.files.reduce((s, f) => s + (f.rows ?? 0), 0);
  out(rt, renderKeyValues([
    ['job', r.jobId],
    ['state', r.state],
    ['output', r.output],
    ['files', `${formatCount(r.files.length)} (${formatBytes(bytes)}${rows > 0 ? `, ${formatCount(rows)} rows` : ''})`],
  ]));
  if (r.files.length > 0) {
    const shown = r.files.slice(0, limit);
    out(rt, renderTable(['file', 'size', 'rows', 'sha256'], shown.map((f) => [displayPath(f.path, r.output), formatBytes(f.bytes), f.rows !== undefined ? formatCount(f.rows) : '-', f.sha256.slice(0, 12)]), { alignRight: [1, 2] }));
    if (r.files.length > shown.length) out(rt, `... and ${r.files.length - shown.length} more files (--limit, or --json for all)`);
  }
  if (r.failures.length > 0) {
    out(rt, `failures (${r.failures.length}):`);
    out(rt, renderTable(['task', 'attempt', 'code', 'message'], r.failures.slice(0, limit).map((f) => [f.index === -1 ? 'reduce' : f.index, f.attempt, f.error.code, f.error.message.slice(0, 200)])));
  }
  const cmds = r.summaries.filter((s) => s.summary && typeof s.summary === 'object' && 'exitCode' in (s.summary as object));
  if (cmds.length > 0) {
    out(rt, `command summaries (${cmds.length}):`);
    out(
      rt,
      renderTable(
        ['task', 'exit', 'logs'],
        cmds.slice(0, limit).map((s) => {
          const sm = s.summary as CommandSummary;
          return [s.taskId.slice(r.jobId.length + 1), String(sm.exitCode), Object.keys(sm.logs ?? {}).join(', ')];
        }),
      ),
    );
    out(rt, `(read them with: ubatch logs ${r.jobId} --task N)`);
  }
}
