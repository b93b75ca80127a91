/**
 * Errors raised by the HATS reader/writer. One class per failure mode; every
 * error carries the path it concerns so a task failure can say where it broke.
 */

export interface HatsErrorOptions {
  cause?: unknown;
}

/** Base class: anything wrong with a HATS catalog on disk. */
export class HatsError extends Error {
  override name = 'HatsError';
  /** File or directory the failure concerns. */
  readonly path: string;
  constructor(message: string, path: string, options: HatsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.path = path;
  }
}

/** The catalog directory (or a file it must hold) does not exist or is not a directory. */
export class HatsNotFoundError extends HatsError {
  override name = 'HatsNotFoundError';
}

/** Neither `hats.properties`, `properties` nor `collection.properties` is present. */
export class HatsMissingPropertiesError extends HatsError {
  override name = 'HatsMissingPropertiesError';
}

/** A properties file exists but has a line or value we cannot use. */
export class HatsPropertiesError extends HatsError {
  override name = 'HatsPropertiesError';
  /** 1-based line number, when the problem is on one line. */
  readonly line?: number;
  constructor(message: string, path: string, line?: number, options: HatsErrorOptions = {}) {
    super(message, path, options);
    if (line !== undefined) this.line = line;
  }
}

/** `partition_info.csv` is malformed (header, non-integer, pixel out of range, duplicate). */
export class HatsPartitionInfoError extends HatsError {
  override name = 'HatsPartitionInfoError';
  readonly line?: number;
  constructor(message: string, path: string, line?: number, options: HatsErrorOptions = {}) {
    super(message, path, options);
    if (line !== undefined) this.line = line;
  }
}

/** A partition is listed but its leaf file (or directory of files) is absent. */
export class HatsLeafMissingError extends HatsError {
  override name = 'HatsLeafMissingError';
  readonly order: number;
  readonly pixel: number;
  constructor(message: string, path: string, order: number, pixel: number, options: HatsErrorOptions = {}) {
    super(message, path, options);
    this.order = order;
    this.pixel = pixel;
  }
}

/** A Parquet file (leaf, `_metadata`, `_common_metadata`) could not be decoded. */
export class HatsParquetError extends HatsError {
  override name = 'HatsParquetError';
}

/** A collection points at a primary table / margin that is not there or not readable. */
export class HatsCollectionError extends HatsError {
  override name = 'HatsCollectionError';
}

/** Writing a catalog failed (bad source, bad columns, bad options, I/O). */
export class HatsWriteError extends HatsError {
  override name = 'HatsWriteError';
}

/** The operation was aborted through its AbortSignal. */
export class HatsAbortError extends HatsError {
  override name = 'HatsAbortError';
}

/** Throw HatsAbortError when `signal` is aborted; call between chunks of work. */
export function throwIfAborted(signal: AbortSignal | undefined, path: string): void {
  if (signal?.aborted) {
    throw new HatsAbortError(`HATS operation on ${path} aborted`, path, { cause: signal.reason });
  }
}
