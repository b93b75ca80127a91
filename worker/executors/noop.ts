/**
 * `noop`: a diagnostic kind for operators, benchmarks and fault tests.
 * params: { tasks: N, sleep_ms?: number, busy_ms?: number, fail_indexes?: number[], fail_retryable?: boolean, progress_every_ms?: number,
 *   reduce_sleep_ms?: number } — with reduce_sleep_ms the job gets a reduce stage that sleeps that long (fault tests: a coordinator killed mid-reduce)
 */
import { TaskFailedError, TaskCancelledError } from '../errors.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';

interface NoopParams {
  sleep_ms?: number;
  busy_ms?: number;
  fail_indexes?: number[];
  fail_retryable?: boolean;
  reduce_sleep_ms?: number;
}

export const noopExecutor: Executor = {
  kind: 'noop',
  inProcess: true,
  needsDirs: false,
  async map(ctx: ExecContext): Promise<ExecResult> {
    const p = (ctx.spec.params ?? {}) as NoopParams;
    if (p.fail_indexes?.includes(ctx.task.index)) {
      throw new TaskFailedError(`noop task ${ctx.task.index} fails on purpose (params.fail_indexes)`, 'deliberate_failure', p.fail_retryable ?? true, `task ${ctx.task.index}`);
    }
    if (p.busy_ms) {
      const end = performance.now() + p.busy_ms;
      while (performance.now() < end) {
        /* burn CPU on purpose */
      }
    }
    if (p.sleep_ms) await sleep(p.sleep_ms, ctx);
    return { inputs: [], outputs: [] };
  },
  async reduce(ctx: ExecContext): Promise<ExecResult> {
    const p = (ctx.spec.params ?? {}) as NoopParams;
    if (p.reduce_sleep_ms) await sleep(p.reduce_sleep_ms, ctx);
    return { inputs: [], outputs: [] };
  },
};

async function sleep(ms: number, ctx: ExecContext): Promise<void> {
  const step = 1000;
  let left = ms;
  while (left > 0) {
    if (ctx.signal.aborted) throw new TaskCancelledError('cancelled');
    const d = Math.min(step, left);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, d);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
    left -= d;
    ctx.progress();
  }
  if (ctx.signal.aborted) throw new TaskCancelledError('cancelled');
}
