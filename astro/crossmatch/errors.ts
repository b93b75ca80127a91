/**
 * Failure modes of the cross-match kernels. Every class sets `name`, accepts
 * `cause`, and carries the value or path it concerns so a caller (an executor)
 * can tell a bad request (retry cannot help) from an I/O failure (it may).
 */

/** An option is out of range or conflicts with another one (retry cannot help). */
export class CrossmatchOptionError extends Error {
  override readonly name = 'CrossmatchOptionError';
  readonly retryable = false;
  constructor(
    readonly option: string,
    readonly value: unknown,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`invalid cross-match option ${option}=${formatValue(value)}: ${reason}`, options);
  }
}

/** Input coordinates are malformed (length mismatch, NaN, |dec| > 90). */
export class CrossmatchInputError extends Error {
  override readonly name = 'CrossmatchInputError';
  readonly retryable = false;
  constructor(
    /** Which input: 'left', 'right', 'points', a file path, ... */
    readonly input: string,
    /** Row index that failed, when one row is to blame. */
    readonly row: number | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`bad cross-match input ${input}${row === undefined ? '' : ` row ${row}`}: ${reason}`, options);
  }
}

/** Reading a partition (or its margin) failed; retrying may help if the storage was flaky. */
export class CrossmatchReadError extends Error {
  override readonly name = 'CrossmatchReadError';
  readonly retryable = true;
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot read ${path}: ${reason}`, options);
  }
}

/** A catalog's layout does not allow an exact partition-aware match (e.g. margin thinner than the radius). */
export class CrossmatchCatalogError extends Error {
  override readonly name = 'CrossmatchCatalogError';
  readonly retryable = false;
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`catalog ${path}: ${reason}`, options);
  }
}

/** Raised when the caller's AbortSignal fires between chunks. */
export class CrossmatchAbortedError extends Error {
  override readonly name = 'CrossmatchAbortedError';
  readonly retryable = false;
  constructor(
    readonly stage: string,
    options?: { cause?: unknown },
  ) {
    super(`cross-match aborted during ${stage}`, options);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined, stage: string): void {
  if (signal?.aborted === true) throw new CrossmatchAbortedError(stage, { cause: signal.reason });
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
