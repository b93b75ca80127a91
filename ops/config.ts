/**
 * CLI configuration: global options → compiled settings (server URL, user,
 * log level), and the `.ubatch/stack.json` file `ubatch up` writes so that
 * other commands in the same directory find the embedded stack.
 *
 * Server precedence: --server, then $UBATCH_SERVER, then a live
 * `.ubatch/stack.json` in the current directory, then nats://127.0.0.1:4222.
 * User precedence: --user, then $UBATCH_USER, then the user named in the
 * credentials (--creds / $UBATCH_CREDS), then the OS user name sanitised to
 * [A-Za-z0-9_-].
 * Credentials (NATS user/password, ops/auth.ts creds files): --creds, then
 * $UBATCH_CREDS, then --as-operator (the stack's operator), then the stack's
 * `<authdir>/creds/<user>.json` when the server is the stack's and its stack.json
 * names an auth folder; none otherwise (a server without auth).
 * TLS CA: --tls-ca, then $UBATCH_TLS_CA, then the stack's CA (stack.json `tls.ca`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { isSafeToken } from '../protocol/index.js';
import { readCredentialsSync, type Credentials } from './auth.js';
import { CliUsageError } from './errors.js';
import { LOG_LEVELS, type LogLevel } from './log.js';

export const DEFAULT_SERVER = 'nats://127.0.0.1:4222';
export const DEFAULT_STACK_DIR = '.ubatch';
export const STACK_FILE_NAME = 'stack.json';

/** Global options as commander parses them (all optional). */
export interface GlobalOptions {
  /** NATS URL(s), comma-separated */
  server?: string;
  /** the user requests are made as */
  user?: string;
  /** pino level for this process @default $UBATCH_LOG_LEVEL, else 'warn' for commands and 'info' for daemons */
  logLevel?: string;
  /** a creds file (`{ user, password, role }`, written by `ubatch auth`) */
  creds?: string;
  /** connect as the local stack's operator (its `<authdir>/creds/<operator>.json`) */
  asOperator?: boolean;
  /** a CA certificate (PEM) to verify the server's TLS certificate with */
  tlsCa?: string;
}

export interface CliConfig {
  server: string;
  serverSource: 'flag' | 'env' | 'stack' | 'default';
  user: string;
  userSource: 'flag' | 'env' | 'os';
  logLevel: LogLevel;
  /** the stack file that supplied the server, when it did */
  stackFile?: string;
  /** NATS credentials, when the connection authenticates */
  creds?: Credentials & { file: string };
  credsSource?: 'flag' | 'env' | 'operator' | 'stack';
  /** CA file for TLS, when the connection uses TLS */
  tlsCa?: string;
}

/** What `ubatch up` records in `<dir>/stack.json`. */
export interface StackFile {
  url: string;
  /** pid of the `ubatch up` process */
  pid: number;
  dir: string;
  startedAt: string;
  outputRoot: string;
  server: { pid?: number; storeDir: string; monitorUrl?: string; log: string };
  coordinator: { pid?: number; metricsUrl?: string; log: string };
  workers: { pid?: number; metricsUrl?: string; log: string }[];
  /** the auth folder (auth.conf, creds/<name>.json) when the stack runs with auth on */
  auth?: { dir: string; operator: string };
  /** the CA certificate clients verify the server with, when the stack runs with TLS */
  tls?: { ca: string };
}

/** Any string → a NATS-safe user token ([A-Za-z0-9_-], at most 64), or 'anonymous'. */
export function sanitizeUserName(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 64);
  return s === '' ? 'anonymous' : s;
}

/** The OS user name as a NATS-safe token (the user commands act as by default). */
export function defaultUserName(): string {
  return sanitizeUserName(osUserName());
}

function osUserName(): string {
  try {
    return userInfo().username;
  } catch {
    // no passwd entry (containers with a random uid): fall back to the usual variables
    return process.env['USER'] ?? process.env['LOGNAME'] ?? 'anonymous';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Reads `<dir>/stack.json`; undefined when absent, unreadable, or when the
 * `ubatch up` that wrote it is no longer running (a stale file after a crash).
 */
export function readStackFile(dir: string = join(process.cwd(), DEFAULT_STACK_DIR)): StackFile | undefined {
  const file = join(resolve(dir), STACK_FILE_NAME);
  if (!existsSync(file)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  const s = v as Partial<StackFile> | null;
  if (!s || typeof s.url !== 'string' || typeof s.pid !== 'number') return undefined;
  if (!isAlive(s.pid)) return undefined;
  return s as StackFile;
}

function parseLogLevel(level: string, source: string): LogLevel {
  const l = level.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(l)) throw new CliUsageError(`unknown log level ${JSON.stringify(level)} from ${source}; use one of ${LOG_LEVELS.join(', ')}`, '--log-level');
  return l as LogLevel;
}

export interface ResolveConfigContext {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  osUser?: string;
  /** level when neither --log-level nor $UBATCH_LOG_LEVEL says @default 'warn' */
  defaultLogLevel?: LogLevel;
  /** stack file reader (tests) */
  readStack?: (dir: string) => StackFile | undefined;
}

/** Global options → CliConfig. Pure apart from reading the stack file; throws CliUsageError. */
export function resolveCliConfig(o: GlobalOptions, ctx: ResolveConfigContext = {}): CliConfig {
  const env = ctx.env ?? process.env;
  const cwd = ctx.cwd ?? process.cwd();
  let server: string;
  let serverSource: CliConfig['serverSource'];
  let stackFile: string | undefined;
  const stackDir = join(cwd, DEFAULT_STACK_DIR);
  let stackRead = false;
  let stackDoc: StackFile | undefined;
  const stackOf = () => {
    if (!stackRead) {
      stackRead = true;
      stackDoc = (ctx.readStack ?? readStackFile)(stackDir);
    }
    return stackDoc;
  };
  if (o.server !== undefined && o.server.trim() !== '') {
    server = o.server.trim();
    serverSource = 'flag';
  } else if (env['UBATCH_SERVER'] !== undefined && env['UBATCH_SERVER'].trim() !== '') {
    server = env['UBATCH_SERVER'].trim();
    serverSource = 'env';
  } else {
    const stack = stackOf();
    if (stack) {
      server = stack.url;
      serverSource = 'stack';
      stackFile = join(stackDir, STACK_FILE_NAME);
    } else {
      server = DEFAULT_SERVER;
      serverSource = 'default';
    }
  }
  for (const u of server.split(',')) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s/]+$|^[^\s:/]+:\d+$/.test(u.trim())) throw new CliUsageError(`invalid server URL ${JSON.stringify(u)}; expected nats://host:port`, '--server');
  }

  // the local stack's files apply only when we talk to the local stack
  const stackForServer = (): StackFile | undefined => {
    if (serverSource === 'stack') return stackOf();
    if (serverSource === 'default') return undefined;
    const st = stackOf();
    return st && st.url === server ? st : undefined;
  };

  let credsFile: string | undefined;
  let credsSource: CliConfig['credsSource'];
  if (o.creds !== undefined && o.creds.trim() !== '') {
    credsFile = resolve(cwd, o.creds.trim());
    credsSource = 'flag';
  } else if (env['UBATCH_CREDS'] !== undefined && env['UBATCH_CREDS'].trim() !== '') {
    credsFile = resolve(cwd, env['UBATCH_CREDS'].trim());
    credsSource = 'env';
  } else if (o.asOperator) {
    const st = stackForServer() ?? stackOf();
    if (!st?.auth) throw new CliUsageError(`--as-operator needs a running local stack with auth (${join(stackDir, STACK_FILE_NAME)} naming an auth folder); elsewhere pass the operator's creds file with --creds`, '--as-operator');
    credsFile = join(st.auth.dir, 'creds', `${st.auth.operator}.json`);
    credsSource = 'operator';
  }
  let creds: CliConfig['creds'];
  if (credsFile !== undefined) {
    if (!existsSync(credsFile)) {
      throw new CliUsageError(`the credentials file ${credsFile} (from ${credsSource === 'flag' ? '--creds' : credsSource === 'env' ? 'UBATCH_CREDS' : '--as-operator'}) does not exist`, credsSource === 'env' ? 'UBATCH_CREDS' : '--creds');
    }
    creds = { ...readCredentialsSync(credsFile), file: credsFile };
  }

  let user: string;
  let userSource: CliConfig['userSource'];
  if (creds && o.user === undefined && (credsSource === 'flag' || credsSource === 'operator' || env['UBATCH_USER'] === undefined || env['UBATCH_USER'] === '')) {
    // the credentials say who we are (the server pins the API subject to that name)
    user = creds.user;
    userSource = credsSource === 'env' ? 'env' : 'flag';
  } else if (o.user !== undefined) {
    if (!isSafeToken(o.user)) throw new CliUsageError(`invalid user name ${JSON.stringify(o.user)}: use letters, digits, _ and - (at most 64)`, '--user');
    user = o.user;
    userSource = 'flag';
  } else if (env['UBATCH_USER'] !== undefined && env['UBATCH_USER'] !== '') {
    if (!isSafeToken(env['UBATCH_USER'])) throw new CliUsageError(`invalid user name in UBATCH_USER: ${JSON.stringify(env['UBATCH_USER'])}`, 'UBATCH_USER');
    user = env['UBATCH_USER'];
    userSource = 'env';
  } else {
    user = sanitizeUserName(ctx.osUser ?? osUserName());
    userSource = 'os';
  }

  if (creds && user !== creds.user) {
    throw new CliUsageError(
      `the credentials in ${creds.file} are for ${creds.user}, but the user is ${user} (from ${userSource === 'flag' ? '--user' : userSource === 'env' ? 'UBATCH_USER' : 'the OS user name'}): the server only lets ${creds.user} act as ${creds.user}; drop --user / UBATCH_USER or use ${user}'s creds file`,
      '--creds',
    );
  }
  if (!creds) {
    const st = stackForServer();
    if (st?.auth) {
      const file = join(st.auth.dir, 'creds', `${user}.json`);
      if (!existsSync(file)) {
        throw new CliUsageError(
          `the local stack runs with authentication and has no credentials for user ${user} (${file} is missing); add them with: ubatch auth add-user ${user} --dir ${st.auth.dir}   (or use --creds <file>, or --as-operator for operator commands)`,
          '--creds',
        );
      }
      creds = { ...readCredentialsSync(file), file };
      credsSource = 'stack';
    }
  }

  let tlsCa: string | undefined;
  if (o.tlsCa !== undefined && o.tlsCa.trim() !== '') tlsCa = resolve(cwd, o.tlsCa.trim());
  else if (env['UBATCH_TLS_CA'] !== undefined && env['UBATCH_TLS_CA'].trim() !== '') tlsCa = resolve(cwd, env['UBATCH_TLS_CA'].trim());
  else tlsCa = stackForServer()?.tls?.ca;
  if (tlsCa !== undefined && !existsSync(tlsCa)) throw new CliUsageError(`the TLS CA file ${tlsCa} does not exist`, '--tls-ca');

  const logLevel =
    o.logLevel !== undefined
      ? parseLogLevel(o.logLevel, '--log-level')
      : env['UBATCH_LOG_LEVEL'] !== undefined && env['UBATCH_LOG_LEVEL'].trim() !== ''
        ? parseLogLevel(env['UBATCH_LOG_LEVEL'], 'UBATCH_LOG_LEVEL')
        : (ctx.defaultLogLevel ?? 'warn');

  return {
    server,
    serverSource,
    user,
    userSource,
    logLevel,
    ...(stackFile ? { stackFile } : {}),
    ...(creds ? { creds, credsSource: credsSource! } : {}),
    ...(tlsCa !== undefined ? { tlsCa } : {}),
  };
}

/** Parses an integer option in [min, max] or throws a CliUsageError naming the option. */
export function parseIntOption(value: string, option: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliUsageError(`${option} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`, option);
  }
  return n;
}

/** Parses a comma-separated list option (empty items dropped). */
export function parseListOption(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
