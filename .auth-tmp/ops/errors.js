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
};
/** A command-line mistake the user can fix (exit 2). */
export class CliUsageError extends Error {
    option;
    name = 'CliUsageError';
    constructor(message, option, options) {
        super(message, options);
        this.option = option;
    }
}
/** A spec file that cannot be read, parsed or validated; `line`/`col` are 1-based when known (exit 2). */
export class SpecFileError extends CliUsageError {
    file;
    line;
    col;
    where;
    name = 'SpecFileError';
    constructor(message, file, line, col, 
    /** JSON pointer of the offending field, when the error is about a field */
    where, options) {
        super(`${file}${line !== undefined ? `:${line}${col !== undefined ? `:${col}` : ''}` : ''}: ${message}`, undefined, options);
        this.file = file;
        this.line = line;
        this.col = col;
        this.where = where;
    }
}
/** The NATS server at `url` refused or did not answer the connection (exit 3). */
export class ServiceUnreachableError extends Error {
    url;
    name = 'ServiceUnreachableError';
    constructor(message, url, options) {
        super(message, options);
        this.url = url;
    }
}
/** Something the user named does not exist: a job, an output path, a log (exit 4). */
export class NotFoundError extends Error {
    what;
    name = 'NotFoundError';
    constructor(message, what, options) {
        super(message, options);
        this.what = what;
    }
}
/** A job reached a final state other than `succeeded` (exit 1). */
export class JobNotSucceededError extends Error {
    jobId;
    state;
    name = 'JobNotSucceededError';
    constructor(jobId, state, detail) {
        super(`job ${jobId} ended ${state}${detail ? `: ${detail}` : ''}`);
        this.jobId = jobId;
        this.state = state;
    }
}
/** The embedded stack could not start (a child died or never became ready); carries the log tail. */
export class StackStartError extends Error {
    component;
    logTail;
    name = 'StackStartError';
    constructor(message, component, logTail = '', options) {
        super(logTail.trim() ? `${message}\n--- last ${component} log lines ---\n${logTail.trimEnd()}` : message, options);
        this.component = component;
        this.logTail = logTail;
    }
}
const USAGE_CODES = new Set([
    ApiCode.BadRequest,
    ApiCode.BadEncoding,
    ApiCode.TooLarge,
    ApiCode.InvalidSpec,
    ApiCode.UnknownKind,
    ApiCode.InputNotFound,
    ApiCode.InvalidInput,
]);
/** Exit code of an API error code (`invalid_spec` → 2, `not_found` → 4, ...). */
export function exitCodeForApiCode(code) {
    if (USAGE_CODES.has(code))
        return ExitCode.usage;
    if (code === ApiCode.NotFound)
        return ExitCode.notFound;
    if (code === ApiCode.OverQuota || code === ApiCode.Forbidden)
        return ExitCode.forbidden;
    if (code === ApiCode.Unavailable)
        return ExitCode.unavailable;
    return ExitCode.failed;
}
/** Exit code for job final states: only `succeeded` is success. */
export function exitCodeForState(state) {
    return state === 'succeeded' ? ExitCode.ok : ExitCode.failed;
}
/** The exit code for any error the CLI may meet. */
export function exitCodeFor(err) {
    if (err instanceof CliUsageError)
        return ExitCode.usage;
    if (err instanceof ServiceUnreachableError)
        return ExitCode.unavailable;
    if (err instanceof NotFoundError)
        return ExitCode.notFound;
    if (err instanceof JobNotSucceededError)
        return ExitCode.failed;
    if (err instanceof UbatchApiError)
        return exitCodeForApiCode(err.code);
    const c = err?.code;
    // commander's own errors (unknown option, missing argument ...); help and version are not errors
    if (typeof c === 'string' && c.startsWith('commander.')) {
        return c === 'commander.helpDisplayed' || c === 'commander.version' || c === 'commander.help' ? ExitCode.ok : ExitCode.usage;
    }
    return ExitCode.failed;
}
