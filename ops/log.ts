/**
 * Logging for daemons and the CLI (pino). Kernels and executors must not depend on
 * pino: they take the tiny {@link Log} interface, with {@link noopLog} as default;
 * a pino logger satisfies it as is.
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

/** A log call: a message, or a structured object plus an optional message. */
export interface LogMethod {
  (msg: string): void;
  (obj: object, msg?: string): void;
}

/** The logging surface kernels, executors and library code accept. */
export interface Log {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}

const noop: LogMethod = () => undefined;

/** Swallows everything; the default where no logger is injected. */
export const noopLog: Log = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Invalid level in options or UBATCH_LOG_LEVEL. */
export class LogLevelError extends Error {
  override name = 'LogLevelError';
  readonly level: string;
  readonly source: string;
  constructor(level: string, source: string, options?: { cause?: unknown }) {
    super(`unknown log level ${JSON.stringify(level)} from ${source}; use one of ${LOG_LEVELS.join(', ')}`, options);
    this.level = level;
    this.source = source;
  }
}

function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export interface CreateLoggerOptions {
  /** Level; wins over UBATCH_LOG_LEVEL. @default process.env.UBATCH_LOG_LEVEL ?? 'info' */
  level?: string;
  /** Human-readable output via pino-pretty (a worker-thread transport). @default process.stdout.isTTY */
  pretty?: boolean;
  /** File path or file descriptor. @default 1 (stdout) */
  destination?: string | number;
}

/** Resolves the effective level: explicit option, then UBATCH_LOG_LEVEL, then 'info'. Throws {@link LogLevelError}. */
export function resolveLogLevel(level?: string, env: NodeJS.ProcessEnv = process.env): LogLevel {
  if (level !== undefined) {
    const l = level.trim().toLowerCase();
    if (!isLogLevel(l)) throw new LogLevelError(level, 'options.level');
    return l;
  }
  const fromEnv = env['UBATCH_LOG_LEVEL'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const l = fromEnv.trim().toLowerCase();
    if (!isLogLevel(l)) throw new LogLevelError(fromEnv, 'UBATCH_LOG_LEVEL');
    return l;
  }
  return 'info';
}

/**
 * A pino logger named `name`: JSON lines by default, pino-pretty when `pretty`.
 * Writes to stdout unless `destination` (path or fd) is given.
 */
export function createLogger(name: string, opts: CreateLoggerOptions = {}): Logger {
  const level = resolveLogLevel(opts.level);
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  const destination = opts.destination ?? 1;
  if (pretty) {
    return pino({
      name,
      level,
      transport: {
        target: 'pino-pretty',
        options: { destination, colorize: destination === 1 ? process.stdout.isTTY === true : destination === 2 ? process.stderr.isTTY === true : false, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ name, level }, pino.destination({ dest: destination, mkdir: typeof destination === 'string' }));
}
