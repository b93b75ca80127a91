/**
 * Task failures say whether a retry can help: retryable → nak(delay), not → term().
 */
export class TaskFailedError extends Error {
  override name = 'TaskFailedError';
  constructor(
    message: string,
    readonly code: string,
    readonly retryable: boolean,
    readonly where?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bad user input (SQL error, missing file, not Parquet): retrying cannot help. */
export class InputError extends TaskFailedError {
  override name = 'InputError';
  constructor(message: string, code: string, where?: string, options?: { cause?: unknown }) {
    super(message, code, false, where, options);
  }
}

export class TaskTimeoutError extends TaskFailedError {
  override name = 'TaskTimeoutError';
  constructor(seconds: number, where?: string) {
    super(`task exceeded its wall-time limit of ${seconds} s`, 'walltime_exceeded', false, where);
  }
}

export class TaskCancelledError extends Error {
  override name = 'TaskCancelledError';
}

export function asTaskError(err: unknown): { code: string; message: string; retryable: boolean; where?: string } {
  if (err instanceof TaskFailedError) return { code: err.code, message: err.message, retryable: err.retryable, ...(err.where ? { where: err.where } : {}) };
  const e = err as Error;
  return { code: 'executor_error', message: e?.message ?? String(err), retryable: true };
}
