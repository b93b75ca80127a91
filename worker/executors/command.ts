/**
 * `command`: a user command per partition (or per input file, or N indexed
 * runs), sandboxed (see ../sandbox.ts). The command sees:
 *   UBATCH_INPUT        the partition's file(s), colon-separated
 *   UBATCH_OUTPUT_DIR   where to write outputs (a private directory per attempt)
 *   UBATCH_TASK_INDEX, UBATCH_TASK_ID, UBATCH_JOB_ID, UBATCH_NORDER, UBATCH_NPIX
 * stdout and stderr are kept as artifacts (object store ub-artifacts, name
 * logs/<jobId>/<taskId>/<attempt>/{stdout,stderr}).
 * params: { command: string (run by sh -c) | string[] (argv), env?: {K: V} }
 * resources: walltime_s, memory_mb, cpu_s (default walltime_s × cores),
 *   processes (default 256), output_mb (default 10240): each violation fails
 *   the task (not retried) with the limit named, e.g. "memory limit 256 MiB exceeded".
 * The inputs are the only user files visible (read-only); the output and
 * scratch directories the only writable ones (see ../sandbox.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, TaskCancelledError, TaskFailedError, TaskTimeoutError } from '../errors.js';
import { fileRecord, listFilesRecursive } from '../files.js';
import { diskFullError, fullFilesystem, isDiskFull, runSandboxed, SANDBOX_DEFAULTS, type SandboxLimit } from '../sandbox.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';

const MAX_LOG_ARTIFACT = 1024 * 1024;

/** error codes of the sandbox's limits */
const LIMIT_CODES: Record<Exclude<SandboxLimit, 'cancelled' | 'walltime'>, string> = {
  memory: 'memory_exceeded',
  cpu: 'cpu_exceeded',
  processes: 'process_limit',
  output: 'output_limit',
};

export function commandArgv(params: unknown): string[] {
  const p = (params ?? {}) as { command?: unknown };
  if (typeof p.command === 'string' && p.command.trim() !== '') return ['sh', '-c', p.command];
  if (Array.isArray(p.command) && p.command.length > 0 && p.command.every((x) => typeof x === 'string')) return p.command as string[];
  throw new InputError('params.command must be a non-empty string (run by sh -c) or an argv array of strings', 'invalid_spec', '/params/command');
}

export const commandExecutor: Executor = {
  kind: 'command',
  inProcess: false,
  async map(ctx: ExecContext): Promise<ExecResult> {
    const argv = commandArgv(ctx.spec.params);
    const envParam = ((ctx.spec.params ?? {}) as { env?: Record<string, unknown> }).env ?? {};
    const part = ctx.task.partition;
    const inputs = part ? await Promise.all(part.files.map((f) => fileRecord(f).catch((err) => { throw new InputError(`input not found: ${f}`, 'input_not_found', f, { cause: err }); }))) : [];
    const stdoutPath = join(ctx.scratchDir, '..', `${ctx.task.taskId}.a${ctx.attempt}.stdout`);
    const stderrPath = join(ctx.scratchDir, '..', `${ctx.task.taskId}.a${ctx.attempt}.stderr`);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(envParam)) if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) env[k] = String(v);
    Object.assign(env, {
      UBATCH_INPUT: part?.files.join(':') ?? '',
      UBATCH_OUTPUT_DIR: ctx.outDir,
      UBATCH_TASK_INDEX: String(ctx.task.index),
      UBATCH_TASK_ID: ctx.task.taskId,
      UBATCH_JOB_ID: ctx.task.jobId,
      UBATCH_NORDER: String(part?.order ?? ''),
      UBATCH_NPIX: String(part?.pixel ?? ''),
    });
    const r = ctx.spec.resources ?? {};
    const walltimeS = r.walltime_s ?? 3600;
    const memoryMb = r.memory_mb ?? 2048;
    const cpuS = r.cpu_s ?? walltimeS * Math.max(1, Math.ceil(r.cores ?? 1));
    const res = await runSandboxed({
      argv,
      cwd: ctx.scratchDir,
      outputDir: ctx.outDir,
      readOnlyPaths: part?.files ?? [],
      env,
      walltimeS,
      memoryMb,
      cpuSeconds: cpuS,
      maxProcesses: r.processes ?? SANDBOX_DEFAULTS.maxProcesses,
      maxOutputBytes: r.output_mb !== undefined ? r.output_mb * 1024 * 1024 : SANDBOX_DEFAULTS.maxOutputBytes,
      stdoutPath,
      stderrPath,
      signal: ctx.signal,
      onTick: () => ctx.progress(),
    });
    const where = `command of task ${ctx.task.index}`;
    if (res.launchError) throw new TaskFailedError(`the sandbox could not start: ${res.launchError.message}`, 'sandbox_unavailable', true, where, { cause: res.launchError });
    const logs: Record<string, string> = {};
    for (const [name, p] of [['stdout', stdoutPath], ['stderr', stderrPath]] as const) {
      const size = (await stat(p).catch(() => undefined))?.size ?? 0;
      const buf = size > 0 ? await readFile(p) : Buffer.alloc(0);
      logs[name] = await ctx.putArtifact(`logs/${ctx.task.jobId}/${ctx.task.taskId}/${ctx.attempt}/${name}`, buf.subarray(Math.max(0, buf.length - MAX_LOG_ARTIFACT)));
    }
    const tail = async () => (await readFile(stderrPath, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
    if (res.killedFor === 'cancelled') throw new TaskCancelledError('cancelled');
    if (res.killedFor === 'walltime') throw new TaskTimeoutError(walltimeS, where);
    // a limit of the user's own job: a retry would hit it again
    if (res.killedFor) throw new TaskFailedError(`${res.limitMessage ?? `${res.killedFor} limit exceeded`}; the command was stopped`, LIMIT_CODES[res.killedFor], false, where);
    if (res.exitCode !== 0 || res.logError) {
      // ENOSPC: the command's own writes (its stderr says so, or the output filesystem is full now) or our log files
      const errTail = await tail();
      const full = await fullFilesystem([ctx.outDir, ctx.scratchDir]);
      if (full || isDiskFull(res.logError) || (res.exitCode !== 0 && isDiskFull(errTail))) throw await diskFullError(res.logError ?? errTail, [ctx.outDir, ctx.scratchDir], where);
      if (res.logError) throw new TaskFailedError(`cannot keep the command's logs: ${res.logError.message}`, 'executor_error', true, where, { cause: res.logError });
      const how = res.signal ? `was killed by ${res.signal}` : `exited with code ${res.exitCode}`;
      throw new TaskFailedError(`command ${how}; stderr tail: ${errTail || '(empty)'}`, 'command_failed', false, where);
    }
    const outputs = await Promise.all((await listFilesRecursive(ctx.outDir)).map((f) => fileRecord(f)));
    return {
      inputs,
      outputs,
      summary: { exitCode: res.exitCode, logs },
      usage: { cpuSeconds: res.cpuSeconds, wallSeconds: res.wallSeconds, peakRssBytes: res.peakRssBytes },
      sandbox: { network: res.network, filesystem: res.filesystem, limits: res.limits },
    };
  },
};
