/**
 * Errors of the CLI and the embedded stack, and the one place that maps any
 * error to a process exit code (documented in `ubatch --help`).
 */
import { ApiCode, UbatchApiError } from '../protocol/index.js';

/** Process exit codes of the `ubatch` CLI. */
export const ExitCode = {
  ok: 0,
  /** the job failed, finished partially or was cancelled; or a runtime error */
  failed: 1,
  /** bad command line, unreadable or invalid spec */
  usage: 2,
  /** NATS or the ubatch service cannot be reached */
  unavailable: 3,
  /** no such job, output or log */
  notFound: 4,
  /** over quota or not allowed */
  forbidden: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A command-line mistake the user can fix (exit 2). */
export class CliUsageError extends Error {
  override name = 'CliUsageError';
  constructor(message: string, readonly option?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A spec file that cannot be read, parsed or validated; `line`/`col` are 1-based when known (exit 2). */
export class SpecFileError extends CliUsageError {
  override name = 'SpecFileError';
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly col?: number,
    /** JSON pointer of the offending field, when the error is about a field */
    readonly where?: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}${line !== undefined ? `:${line}${col !== undefined ? `:${col}` : ''}` : ''}: ${message}`, undefined, options);
  }
}

/** The NATS server at `url` refused or did not answer the connection (exit 3). */
export class ServiceUnreachableError extends Error {
  override name = 'ServiceUnreachableError';
  constructor(message: string, readonly url: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Something the user named does not exist: a job, an output path, a log (exit 4). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor(message: string, readonly what: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A job reached a final state other than `succeeded` (exit 1). */
export class JobNotSucceededError extends Error {
  override name = 'JobNotSucceededError';
  constructor(readonly jobId: string, readonly state: string, detail?: string) {
    super(`job ${jobId} ended ${state}${detail ? `: ${detail}` : ''}`);
  }
}

/** The embedded stack could not start (a child died or never became ready); carries the log tail. */
export class StackStartError extends Error {
  override name = 'StackStartError';
  constructor(message: string, readonly component: string, readonly logTail = '', options?: { cause?: unknown }) {
    super(logTail.trim() ? `${message}\n--- last ${component} log lines ---\n${logTail.trimEnd()}` : message, options);
  }
}

const USAGE_CODES: ReadonlySet<string> = new Set([
  ApiCode.BadRequest,
  ApiCode.BadEncoding,
  ApiCode.TooLarge,
  ApiCode.InvalidSpec,
  ApiCode.UnknownKind,
  ApiCode.InputNotFound,
  ApiCode.InvalidInput,
]);

/** Exit code of an API error code (`invalid_spec` → 2, `not_found` → 4, ...). */
export function exitCodeForApiCode(code: string): ExitCode {
  if (USAGE_CODES.has(code)) return ExitCode.usage;
  if (code === ApiCode.NotFound) return ExitCode.notFound;
  if (code === ApiCode.OverQuota || code === ApiCode.Forbidden) return ExitCode.forbidden;
  if (code === ApiCode.Unavailable) return ExitCode.unavailable;
  return ExitCode.failed;
}

/** Exit code for job final states: only `succeeded` is success. */
export function exitCodeForState(state: string): ExitCode {
  return state === 'succeeded' ? ExitCode.ok : ExitCode.failed;
}

/** The exit code for any error the CLI may meet. */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof CliUsageError) return ExitCode.usage;
  if (err instanceof ServiceUnreachableError) return ExitCode.unavailable;
  if (err instanceof NotFoundError) return ExitCode.notFound;
  if (err instanceof JobNotSucceededError) return ExitCode.failed;
  if (err instanceof UbatchApiError) return exitCodeForApiCode(err.code);
  const c = (err as { code?: unknown } | null)?.code;
  // commander's own errors (unknown option, missing argument ...); help and version are not errors
  if (typeof c === 'string' && c.startsWith('commander.')) {
    return c === 'commander.helpDisplayed' || c === 'commander.version' || c === 'commander.help' ? ExitCode.ok : ExitCode.usage;
  }
  return ExitCode.failed;
}
