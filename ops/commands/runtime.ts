/**
 * What every command shares: resolved global options, the NATS connection
 * (a failure to connect is exit 3), the API client, output helpers, job
 * watching with a progress display, and signal handling.
 */
import type { Command } from 'commander';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { connectOptionsFor } from '../auth.js';
import { ApiCode, TERMINAL_STATES, UbatchApiError, UbatchClient, type JobEvent, type JobInfo } from '../../protocol/index.js';
import { resolveCliConfig, type CliConfig, type GlobalOptions } from '../config.js';
import { ServiceUnreachableError } from '../errors.js';
import { createProgress, formatCount, formatDuration, jsonDocument, type Io } from '../format.js';
import type { LogLevel } from '../log.js';

export interface Runtime {
  io: Io;
  /** the exit code the process ends with (commands set it; errors override it) */
  exitCode: number;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function configOf(rt: Runtime, cmd: Command, defaultLogLevel: LogLevel = 'warn'): CliConfig {
  return resolveCliConfig(cmd.optsWithGlobals<GlobalOptions>(), { env: rt.env, cwd: rt.cwd, defaultLogLevel });
}

export function out(rt: Runtime, text: string): void {
  rt.io.out.write(text.endsWith('\n') ? text : `${text}\n`);
}
export function note(rt: Runtime, text: string): void {
  rt.io.err.write(text.endsWith('\n') ? text : `${text}\n`);
}
export function outJson(rt: Runtime, v: unknown): void {
  rt.io.out.write(jsonDocument(v));
}

export interface ConnectOptions {
  name?: string;
  /** keep reconnecting forever (daemons) @default false: a few tries */
  forever?: boolean;
}

/** The nats.js options that authenticate (user, password, own inbox prefix) and verify TLS, from a resolved config. */
export function securityOptions(cfg: Pick<CliConfig, 'creds' | 'tlsCa'>): Partial<NodeConnectionOptions> {
  return {
    ...(cfg.creds ? connectOptionsFor(cfg.creds) : {}),
    ...(cfg.tlsCa !== undefined ? { tls: { caFile: cfg.tlsCa } } : {}),
  };
}

/** Connects to the configured NATS server(s); ServiceUnreachableError (exit 3) when that fails. */
export async function connectNats(cfg: Pick<CliConfig, 'server' | 'serverSource' | 'creds' | 'credsSource' | 'tlsCa'>, o: ConnectOptions = {}): Promise<NatsConnection> {
  const servers = cfg.server.split(',').map((s) => s.trim());
  try {
    return await connect({
      servers,
      name: o.name ?? 'ubatch-cli',
      timeout: 5000,
      maxReconnectAttempts: o.forever ? -1 : 20,
      reconnectTimeWait: o.forever ? 250 : 1000,
      ...securityOptions(cfg),
    });
  } catch (err) {
    const msg = (err as Error)?.message ?? '';
    if (/authorization violation|authentication/i.test(msg)) {
      const why = cfg.creds
        ? `the server refused the credentials of ${cfg.creds.user} in ${cfg.creds.file}${cfg.credsSource === 'stack' ? ' (from the local stack)' : ''}: they are stale or belong to another server (an operator re-issues them with ubatch auth add-user, then reloads the server)`
        : 'the server requires authentication: pass --creds <file> (or set UBATCH_CREDS) with the creds file an operator gave you';
      throw new ServiceUnreachableError(`cannot connect to NATS at ${cfg.server}: ${why}`, cfg.server, { cause: err });
    }
    if (/certificate|self[- ]signed|tls|ssl/i.test(msg)) {
      const why = cfg.tlsCa !== undefined ? `TLS verification with the CA in ${cfg.tlsCa} failed` : 'the server requires TLS: pass the CA certificate that signed its certificate with --tls-ca <ca.pem> (or UBATCH_TLS_CA)';
      throw new ServiceUnreachableError(`cannot connect to NATS at ${cfg.server}: ${why}: ${msg}`, cfg.server, { cause: err });
    }
    const hint =
      cfg.serverSource === 'default'
        ? "start a local stack with 'ubatch up', or point at a server with --server / UBATCH_SERVER"
        : cfg.serverSource === 'stack'
          ? 'the stack recorded in .ubatch/stack.json does not answer; restart it with ubatch up'
          : 'check the URL and that the server is running';
    throw new ServiceUnreachableError(`cannot reach NATS at ${cfg.server} (from ${cfg.serverSource === 'flag' ? '--server' : cfg.serverSource === 'env' ? 'UBATCH_SERVER' : cfg.serverSource === 'stack' ? '.ubatch/stack.json' : 'the default'}): ${(err as Error).message}; ${hint}`, cfg.server, { cause: err });
  }
}

/**
 * A connection that may read UB_LEDGER directly (ledger summary/export, report for everyone):
 * under auth only operators may, so a user's connection is refused up front with the fix.
 */
export async function connectLedgerReader(cfg: CliConfig): Promise<NatsConnection> {
  const nc = await connectNats(cfg);
  if (!cfg.creds || cfg.creds.role === 'operator' || cfg.creds.role === 'coordinator') return nc;
  await nc.close().catch(() => undefined);
  throw new UbatchApiError(
    ApiCode.Forbidden,
    `reading the ledger (UB_LEDGER) needs operator credentials, and ${cfg.creds.user}'s creds (${cfg.creds.file}) are a ${cfg.creds.role}'s: ` +
      `run it with --as-operator (the local stack's operator) or --creds <operator creds file>; users see their own accounting with 'ubatch report' and their jobs' provenance with 'ubatch provenance'`,
  );
}

/** Runs `fn` with an API client, closing the connection afterwards. */
export async function withClient<T>(cfg: CliConfig, fn: (client: UbatchClient, nc: NatsConnection) => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const nc = await connectNats(cfg);
  try {
    return await fn(new UbatchClient(nc, { user: cfg.user, timeoutMs }), nc);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

export interface WatchOptions {
  label?: string;
  silent?: boolean;
  signal?: AbortSignal;
}

/** Follows a job to its final state with a progress bar (TTY) or plain lines; resolves with the final JobInfo. */
export async function watchJob(rt: Runtime, client: UbatchClient, jobId: string, o: WatchOptions = {}): Promise<JobInfo> {
  const progress = createProgress({ label: o.label ?? jobId, stream: rt.io.err, silent: o.silent ?? false });
  try {
    const info = await client.wait(jobId, {
      timeoutMs: 365 * 86_400_000,
      onEvent: (e: JobEvent | JobInfo) => progress.update({ done: e.done, failed: e.failed, total: e.total, state: e.state }),
    });
    progress.update({ done: info.done, failed: info.failed, total: info.total, state: info.state });
    return info;
  } finally {
    progress.stop();
  }
}

/** One line saying how a job ended. */
export function finalLine(info: JobInfo): string {
  const secs = info.closedAt ? (Date.parse(info.closedAt) - Date.parse(info.createdAt)) / 1000 : undefined;
  const took = secs !== undefined && Number.isFinite(secs) ? ` in ${formatDuration(secs)}` : '';
  return `job ${info.jobId} ${info.state}: ${formatCount(info.done)}/${formatCount(info.total)} tasks done, ${formatCount(info.failed)} failed${took}${info.error ? ` (${info.error})` : ''}`;
}

export function isTerminal(info: Pick<JobInfo, 'state'>): boolean {
  return TERMINAL_STATES.has(info.state);
}

/**
 * SIGINT/SIGTERM → `onStop` once (graceful); a second signal while stopping
 * exits at once with 130. Returns a function that removes the handlers.
 */
export function onShutdownSignals(onStop: (signal: string) => void, onForce?: () => void): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      onForce?.();
      process.exit(130);
    }
    stopping = true;
    onStop(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** Calls `onGone` once when process `pid` no longer exists (the stack that started us died). */
export function watchParent(pid: number, onGone: () => void, everyMs = 1000): () => void {
  const t = setInterval(() => {
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive || process.ppid !== pid) {
      clearInterval(t);
      onGone();
    }
  }, everyMs);
  t.unref();
  return () => clearInterval(t);
}
