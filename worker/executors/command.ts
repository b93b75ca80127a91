/**
 * `command`: a user command per partition (or per input file, or N indexed
 * runs), sandboxed (see ../sandbox.ts). The command sees:
 *   UBATCH_INPUT        the partition's file(s), colon-separated
 *   UBATCH_OUTPUT_DIR   where to write outputs (a private directory per attempt)
 *   UBATCH_TASK_INDEX, UBATCH_TASK_ID, UBATCH_JOB_ID, UBATCH_NORDER, UBATCH_NPIX
 * stdout and stderr are kept as artifacts (object store ub-artifacts, name
 * logs/<jobId>/<taskId>/<attempt>/{stdout,stderr}).
 * params: { command: string (run by sh -c) | string[] (argv), env?: {K: V} }
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, TaskCancelledError, TaskFailedError, TaskTimeoutError } from '../errors.js';
import { fileRecord, listFilesRecursive } from '../files.js';
import { runSandboxed } from '../sandbox.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';

const MAX_LOG_ARTIFACT = 1024 * 1024;

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
    const res = await runSandboxed({
      argv,
      cwd: ctx.scratchDir,
      env,
      walltimeS: ctx.spec.resources?.walltime_s ?? 3600,
      memoryMb: ctx.spec.resources?.memory_mb ?? 2048,
      stdoutPath,
      stderrPath,
      signal: ctx.signal,
      onTick: () => ctx.progress(),
    });
    const logs: Record<string, string> = {};
    for (const [name, p] of [['stdout', stdoutPath], ['stderr', stderrPath]] as const) {
      const size = (await stat(p).catch(() => undefined))?.size ?? 0;
      const buf = size > 0 ? await readFile(p) : Buffer.alloc(0);
      logs[name] = await ctx.putArtifact(`logs/${ctx.task.jobId}/${ctx.task.taskId}/${ctx.attempt}/${name}`, buf.subarray(Math.max(0, buf.length - MAX_LOG_ARTIFACT)));
    }
    const tail = async () => (await readFile(stderrPath, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
    if (res.killedFor === 'cancelled') throw new TaskCancelledError('cancelled');
    if (res.killedFor === 'walltime') throw new TaskTimeoutError(ctx.spec.resources?.walltime_s ?? 3600, `command of task ${ctx.task.index}`);
    if (res.killedFor === 'memory') throw new TaskFailedError(`command exceeded its memory limit of ${ctx.spec.resources?.memory_mb ?? 2048} MB (peak ${(res.peakRssBytes / 2 ** 20).toFixed(0)} MB)`, 'memory_exceeded', false, `command of task ${ctx.task.index}`);
    if (res.exitCode !== 0) {
      const how = res.signal ? `was killed by ${res.signal}` : `exited with code ${res.exitCode}`;
      throw new TaskFailedError(`command ${how}; stderr tail: ${await tail() || '(empty)'}`, 'command_failed', false, `command of task ${ctx.task.index}`);
    }
    const outputs = await Promise.all((await listFilesRecursive(ctx.outDir)).map((f) => fileRecord(f)));
    return {
      inputs,
      outputs,
      summary: { exitCode: res.exitCode, logs },
      usage: { cpuSeconds: res.cpuSeconds, wallSeconds: res.wallSeconds, peakRssBytes: res.peakRssBytes },
      sandbox: { network: res.network },
    };
  },
};
