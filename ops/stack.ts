/**
 * The embedded local stack: nats-server (JetStream store in `<dir>/nats`,
 * kept across restarts), the coordinator and N workers, each a child process
 * running this package's CLI (`node dist/ops/cli.js coordinator|worker`), so a
 * laptop runs exactly what a cluster runs. Used by `ubatch up`, `ubatch demo`
 * and the integration tests.
 *
 * Authentication is on by default: on first start `<dir>/auth/` gets an auth
 * config (ops/auth.ts: bcrypt users with per-role permissions) and creds for
 * the coordinator, one worker principal shared by the stack's workers, an
 * operator, and the users asked for (the OS user by default); nats-server
 * includes it, and each daemon connects with its own creds. `auth: false`
 * (`--no-auth`) runs an open server. With `tls: true` the server requires TLS
 * with a certificate from a private CA made in `<dir>/tls/` (openssl).
 *
 * Readiness is awaited on real signals: the server's own probes, the API
 * answering a request, each worker's heartbeat in KV ub-workers. Stopping
 * drains in order: workers (SIGTERM → they finish or hand back their tasks),
 * then the coordinator, then the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile, rename } from 'node:fs/promises';
import { cpus, hostname } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { apiSubject, Buckets, decode, encode, UbatchClient, Verb } from '../protocol/index.js';
import { StackStartError } from './errors.js';
import { findNatsServer, freePorts, NatsServer } from './nats-server.js';
import { STACK_FILE_NAME, defaultUserName, type StackFile } from './config.js';
import { authPaths, connectOptionsFor, credsPathFor, ensurePrincipals, existingTls, initTls, readCredentialsSync, type Role, type TlsFiles } from './auth.js';

/** Principal names the embedded stack gives its own daemons and its operator. */
export const STACK_PRINCIPALS = { coordinator: 'coordinator', worker: 'worker', operator: 'operator' } as const;
const RESERVED = new Set<string>(Object.values(STACK_PRINCIPALS));
/** bcrypt cost of the embedded stack's principals (see LocalStackOptions.authCost) */
export const STACK_BCRYPT_COST = 6;

export interface LocalStackOptions {
  /** state directory: nats/ (JetStream store), output/, logs/, stack.json @default '.ubatch' */
  dir?: string;
  /** worker processes @default 2 */
  workers?: number;
  /** task slots per worker @default max(1, floor(CPU cores / workers)) */
  slots?: number;
  /** NATS client port @default a free port */
  port?: number;
  /** the coordinator's /metrics port; worker i gets port + i @default free ports */
  metricsPort?: number;
  /** the CLI the children run @default dist/ops/cli.js of this package */
  cliPath?: string;
  /** children's log level @default 'info' */
  logLevel?: string;
  /** write `<dir>/stack.json` (what `ubatch up` does) so commands run in the parent directory find the stack @default false */
  writeStackFile?: boolean;
  /** how long to wait for each component to become ready @default 60000 ms */
  readyTimeoutMs?: number;
  /** extra arguments for `ubatch coordinator` / `ubatch worker` (e.g. ['--ack-wait-ms', '2000']) */
  coordinatorArgs?: string[];
  workerArgs?: string[];
  /** authentication on nats-server, with creds in `<dir>/auth/` (made on first start) @default true */
  auth?: boolean;
  /** users (role user) to make sure have creds @default [the OS user name] */
  users?: string[];
  /**
   * bcrypt cost for new principals. The passwords are 192-bit random strings, so the cost buys no
   * resistance to guessing; a low one keeps each connect cheap (cost 11 is ~0.1 s of server CPU per
   * connection idle, ~0.5 s on a loaded 2-core machine; cost 6 a few ms). @default 6
   */
  authCost?: number;
  /** TLS on the client port, with a private CA and server certificate in `<dir>/tls/` (made on first start) @default false */
  tls?: boolean;
  /** extra host names / IPs for a newly made server certificate (localhost and 127.0.0.1 are always in) */
  tlsHosts?: string[];
  /** called when a child exits without being asked to */
  onUnexpectedExit?: (child: StackChild, code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface StackChild {
  name: string;
  process: ChildProcess;
  pid: number | undefined;
  /** log file (JSON lines) */
  log: string;
  metricsUrl: string;
  /** worker id (workers only) */
  id?: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface LocalStack {
  url: string;
  dir: string;
  outputRoot: string;
  server: NatsServer;
  coordinator: StackChild;
  workers: StackChild[];
  /** `<dir>/stack.json` when written */
  stackFile?: string;
  /** the auth folder when auth is on */
  authDir?: string;
  /** the TLS files when TLS is on (clients verify with `tls.ca`) */
  tls?: TlsFiles;
  /** a new connection to the stack's server as the coordinator principal (closed by stop()) */
  connect(): Promise<NatsConnection>;
  /** a new connection as one principal (its creds from the auth folder; any connection when auth is off) */
  connectAs(principal: string): Promise<NatsConnection>;
  /** an API client acting as `user`; with auth on, a user without creds gets them (and the server reloads) */
  client(user: string): Promise<UbatchClient>;
  /** the creds file of a principal (auth on only) */
  credsFor(principal: string): string;
  /** adds principals that are missing (auth on) and reloads the server when any was added */
  ensureUsers(names: string[], role?: Role): Promise<string[]>;
  /** the last lines of a child's log */
  logTail(child: StackChild, lines?: number): string;
  /** drain workers, stop the coordinator, stop the server; idempotent */
  stop(): Promise<void>;
  /** resolves once stop() has finished */
  stopped: Promise<void>;
}

/** dist/ops/cli.js of this package, whether this module runs from dist/ or from sources (tests). */
export function defaultCliPath(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? resolve(dirname(here), '..', 'dist', 'ops', 'cli.js') : join(dirname(here), 'cli.js');
}

const WORKER_STOP_GRACE_MS = 45_000;
const COORDINATOR_STOP_GRACE_MS = 20_000;

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function readTail(file: string, lines: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').filter((l) => l !== '').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function stopChild(c: StackChild, graceMs: number): Promise<void> {
  const p = c.process;
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }, graceMs);
  try {
    await c.exited;
  } finally {
    clearTimeout(t);
  }
}

function findOnPath(name: string): string | undefined {
  for (const d of [...(process.env['PATH'] ?? '').split(':'), '/usr/bin', '/bin']) {
    if (d !== '' && existsSync(join(d, name))) return join(d, name);
  }
  return undefined;
}

const shq = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * A tiny launcher running nats-server in a session of its own (setsid), so a
 * Ctrl-C in the terminal reaches only the stack's parent, which then stops
 * workers, coordinator and server in that order (the workers' drain needs the
 * server). Undefined where setsid or nats-server cannot be found: then a
 * terminal Ctrl-C stops the server at once, and the drain gives up early.
 */
async function sessionLauncher(dir: string): Promise<string | undefined> {
  const real = findNatsServer();
  const setsid = findOnPath('setsid');
  if (!real || !setsid) return undefined;
  const p = join(dir, 'nats-server-session.sh');
  await writeFile(p, `#!/bin/sh\n# written by ubatch (ops/stack.ts): nats-server outside the terminal's process group\nexec ${shq(setsid)} ${shq(real)} "$@"\n`, { mode: 0o755 });
  return p;
}

function safeHost(): string {
  return hostname().replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 24) || 'host';
}

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const dir = resolve(opts.dir ?? '.ubatch');
  const nWorkers = opts.workers ?? 2;
  if (!Number.isInteger(nWorkers) || nWorkers < 0 || nWorkers > 256) throw new RangeError(`workers must be an integer from 0 to 256, got ${nWorkers}`);
  const slots = opts.slots ?? Math.max(1, Math.floor(cpus().length / Math.max(1, nWorkers)));
  const cliPath = opts.cliPath ?? defaultCliPath();
  if (!existsSync(cliPath)) throw new StackStartError(`the ubatch CLI is not built: ${cliPath} is missing (run npx tsc -p tsconfig.json)`, 'stack');
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const logLevel = opts.logLevel ?? 'info';
  const logsDir = join(dir, 'logs');
  const outputRoot = join(dir, 'output');
  await mkdir(logsDir, { recursive: true });
  await mkdir(outputRoot, { recursive: true });

  const authOn = opts.auth !== false;
  const authDir = authOn ? join(dir, 'auth') : undefined;
  const storeDir = join(dir, 'nats');
  let configText = '';
  if (authDir) {
    const users = [...new Set(opts.users ?? [defaultUserName()])].filter((u) => !RESERVED.has(u));
    await ensurePrincipals(
      authDir,
      [
        { name: STACK_PRINCIPALS.coordinator, role: 'coordinator' },
        { name: STACK_PRINCIPALS.worker, role: 'worker' },
        { name: STACK_PRINCIPALS.operator, role: 'operator' },
        ...users.map((name) => ({ name, role: 'user' as const })),
      ],
      { cost: opts.authCost ?? STACK_BCRYPT_COST },
    );
    // nats-server 2.9.10 joins even an absolute include path to the config file's folder (<storeDir>)
    configText = `include ${JSON.stringify(relative(storeDir, authPaths(authDir).confPath))}\n`;
  }
  let tls: TlsFiles | undefined;
  if (opts.tls) {
    const tlsDir = join(dir, 'tls');
    tls = existingTls(tlsDir) ?? (await initTls(tlsDir, { hosts: opts.tlsHosts ?? [] }));
  }
  const security = (principal: string | undefined) => ({
    ...(authDir && principal ? connectOptionsFor(readCredentialsSync(credsPathFor(authDir, principal))) : {}),
    ...(tls ? { tls: { caFile: tls.ca } } : {}),
  });

  const metricsPorts = opts.metricsPort !== undefined ? Array.from({ length: nWorkers + 1 }, (_, i) => opts.metricsPort! + i) : await freePorts(nWorkers + 1);
  const launcher = await sessionLauncher(logsDir);
  const server = await NatsServer.start({
    storeDir,
    logFile: join(logsDir, 'nats-server.log'),
    readyTimeoutMs,
    configText,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key, ca: tls.ca } } : {}),
    ...(launcher ? { bin: launcher } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
  });
  const url = server.url;
  const connections: NatsConnection[] = [];
  const children: StackChild[] = [];
  let stopping = false;

  const connAs = async (principal: string | undefined) => {
    const nc = await connect({ servers: url, name: `ubatch-stack${principal ? `-${principal}` : ''}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...security(principal) });
    connections.push(nc);
    return nc;
  };
  // the stack's own checks (API readiness, worker heartbeats) run with the coordinator's rights
  const conn = () => connAs(authDir ? STACK_PRINCIPALS.coordinator : undefined);
  const logFile = join(logsDir, 'nats-server.log');
  const reloads = () => (readFileSafe(logFile).match(/Reloaded server configuration/g) ?? []).length;
  /** SIGHUP and wait for the server to say it reloaded, plus a moment: 2.9.10 disables JetStream briefly on an auth reload */
  const reloadServer = async () => {
    const before = reloads();
    server.kill('SIGHUP');
    const deadline = Date.now() + 15_000;
    while (reloads() <= before) {
      if (Date.now() > deadline) throw new StackStartError(`nats-server did not reload its configuration within 15 s; log: ${logFile}`, 'nats-server', server.logTail(20));
      await delay(50);
    }
    await delay(500);
  };
  let userLock: Promise<unknown> = Promise.resolve();
  const ensureUsers = (names: string[], role: Role = 'user'): Promise<string[]> => {
    if (!authDir) return Promise.resolve([]);
    const run = userLock.then(async () => {
      const { added } = await ensurePrincipals(authDir, names.map((name) => ({ name, role })));
      if (added.length > 0) await reloadServer();
      return added;
    });
    userLock = run.catch(() => undefined);
    return run;
  };

  const spawnChild = (name: string, args: string[], metricsPort: number, id?: string): StackChild => {
    const log = join(logsDir, `${name}.log`);
    const fd = openSync(log, 'a');
    let p: ChildProcess;
    try {
      const principal = name === 'coordinator' ? STACK_PRINCIPALS.coordinator : STACK_PRINCIPALS.worker;
      const sec = [...(authDir ? ['--creds', credsPathFor(authDir, principal)] : []), ...(tls ? ['--tls-ca', tls.ca] : [])];
      // the daemons' identity is their creds: the caller's user, creds and CA settings must not leak into them
      const env: NodeJS.ProcessEnv = { ...process.env, UBATCH_SERVER: url };
      delete env['UBATCH_USER'];
      delete env['UBATCH_CREDS'];
      delete env['UBATCH_TLS_CA'];
      // workers map big typed arrays (FITS planes): transparent huge pages cut the page faults that
      // dominate a 64 MiB read (glibc >= 2.35; ignored by older glibc; bench/results/fits.md)
      if (name !== 'coordinator') env['GLIBC_TUNABLES'] ??= 'glibc.malloc.hugetlb=1';
      p = spawn(process.execPath, [cliPath, ...args, '--server', url, ...sec, '--log-level', logLevel, '--metrics-port', String(metricsPort), '--parent-pid', String(process.pid)], {
        stdio: ['ignore', fd, fd],
        env,
        // own process group: a terminal's Ctrl-C goes to us only, and we stop children in order
        // (they watch our pid and drain by themselves should we die)
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      p.once('exit', (code, signal) => res({ code, signal }));
      p.once('error', () => res({ code: null, signal: null }));
    });
    const child: StackChild = { name, process: p, pid: p.pid, log, metricsUrl: `http://127.0.0.1:${metricsPort}`, exited, ...(id ? { id } : {}) };
    void exited.then(({ code, signal }) => {
      if (!stopping) opts.onUnexpectedExit?.(child, code, signal);
    });
    children.push(child);
    return child;
  };

  const failIfExited = (c: StackChild) => {
    const p = c.process;
    if (p.exitCode !== null || p.signalCode !== null) {
      throw new StackStartError(`${c.name} exited during start-up (code ${String(p.exitCode)}, signal ${String(p.signalCode)}); log: ${c.log}`, c.name, readTail(c.log, 20));
    }
  };

  const stopAll = async () => {
    stopping = true;
    const errors: unknown[] = [];
    // without a server nothing can drain: do not wait the full grace for it
    const serverUp = server.isRunning;
    const workers = children.filter((c) => c.name.startsWith('worker'));
    await Promise.all(workers.map((w) => stopChild(w, serverUp ? WORKER_STOP_GRACE_MS : 3000).catch((e: unknown) => errors.push(e))));
    const coord = children.find((c) => c.name === 'coordinator');
    if (coord) await stopChild(coord, serverUp ? COORDINATOR_STOP_GRACE_MS : 3000).catch((e: unknown) => errors.push(e));
    await Promise.all(connections.map((c) => c.close().catch((e: unknown) => errors.push(e))));
    await server.stop().catch((e: unknown) => errors.push(e));
    if (opts.writeStackFile) await rm(join(dir, STACK_FILE_NAME), { force: true }).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, `stopping the local stack: ${errors.length} step(s) failed`);
  };

  try {
    const nc = await conn();
    const coordinator = spawnChild('coordinator', ['coordinator', '--output-root', outputRoot, ...(authDir ? ['--operators', STACK_PRINCIPALS.operator] : []), ...(opts.coordinatorArgs ?? [])], metricsPorts[0]!);
    await waitApiReady(nc, coordinator, readyTimeoutMs, failIfExited);

    const host = safeHost();
    const workers: StackChild[] = [];
    for (let i = 1; i <= nWorkers; i++) {
      const id = `${host}-w${i}`;
      workers.push(spawnChild(`worker-${i}`, ['worker', '--slots', String(slots), '--id', id, ...(opts.workerArgs ?? [])], metricsPorts[i]!, id));
    }
    await waitWorkersReady(nc, workers, readyTimeoutMs, failIfExited);

    let stackFile: string | undefined;
    if (opts.writeStackFile) {
      stackFile = join(dir, STACK_FILE_NAME);
      const doc: StackFile = {
        url,
        pid: process.pid,
        dir,
        startedAt: new Date().toISOString(),
        outputRoot,
        server: { ...(server.pid !== undefined ? { pid: server.pid } : {}), storeDir: server.storeDir, ...(server.monitorUrl ? { monitorUrl: server.monitorUrl } : {}), log: join(logsDir, 'nats-server.log') },
        coordinator: { ...(coordinator.pid !== undefined ? { pid: coordinator.pid } : {}), metricsUrl: coordinator.metricsUrl, log: coordinator.log },
        workers: workers.map((w) => ({ ...(w.pid !== undefined ? { pid: w.pid } : {}), metricsUrl: w.metricsUrl, log: w.log })),
        ...(authDir ? { auth: { dir: authDir, operator: STACK_PRINCIPALS.operator } } : {}),
        ...(tls ? { tls: { ca: tls.ca } } : {}),
      };
      // write-then-rename: a reader never sees half a file
      await writeFile(`${stackFile}.tmp`, `${JSON.stringify(doc, null, 2)}\n`);
      await rename(`${stackFile}.tmp`, stackFile);
    }

    let stopPromise: Promise<void> | undefined;
    let resolveStopped!: () => void;
    const stopped = new Promise<void>((r) => (resolveStopped = r));
    return {
      url,
      dir,
      outputRoot,
      server,
      coordinator,
      workers,
      ...(stackFile ? { stackFile } : {}),
      ...(authDir ? { authDir } : {}),
      ...(tls ? { tls } : {}),
      connect: conn,
      connectAs: (principal: string) => connAs(authDir ? principal : undefined),
      client: async (user: string) => {
        // a principal that exists keeps its role (client('operator') acts as the operator)
        if (authDir && !existsSync(credsPathFor(authDir, user))) await ensureUsers([user]);
        return new UbatchClient(await connAs(authDir ? user : undefined), { user, timeoutMs: 30_000 });
      },
      credsFor: (principal: string) => {
        if (!authDir) throw new Error('the stack runs without auth: there are no creds');
        return credsPathFor(authDir, principal);
      },
      ensureUsers,
      logTail: (c, lines = 40) => readTail(c.log, lines),
      stop() {
        stopPromise ??= stopAll().finally(() => resolveStopped());
        return stopPromise;
      },
      stopped,
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

/** Until the ubatch API answers a request (the coordinator holds the lease and serves). */
async function waitApiReady(nc: NatsConnection, c: StackChild, timeoutMs: number, failIfExited: (c: StackChild) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const subject = apiSubject(Verb.jobsList, 'ubatch-stack');
  for (;;) {
    failIfExited(c);
    try {
      const m = await nc.request(subject, encode({ limit: 1 }), { timeout: 1000 });
      const r = decode(m.data) as { ok?: unknown };
      if (r && typeof r === 'object' && 'ok' in r) return;
    } catch {
      // no responders yet (the coordinator is still starting): try again shortly
    }
    if (Date.now() > deadline) throw new StackStartError(`the coordinator did not answer API requests within ${timeoutMs} ms; log: ${c.log}`, c.name, readTail(c.log, 20));
    await delay(100);
  }
}

/** Until every worker's heartbeat (KV ub-workers, key = worker id) says it is running. */
async function waitWorkersReady(nc: NatsConnection, workers: StackChild[], timeoutMs: number, failIfExited: (c: StackChild) => void): Promise<void> {
  if (workers.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  const since = Date.now() - 1000;
  const kv = await new Kvm(nc).open(Buckets.workers);
  const pending = new Set(workers);
  for (;;) {
    for (const w of pending) {
      failIfExited(w);
      const e = await kv.get(w.id!).catch(() => null);
      if (e && e.operation === 'PUT') {
        const hb = decode(e.value) as { state?: unknown; ts?: unknown; pid?: unknown };
        if (hb.state === 'running' && typeof hb.ts === 'number' && hb.ts >= since && hb.pid === w.pid) pending.delete(w);
      }
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      const w = [...pending][0]!;
      throw new StackStartError(`${w.name} did not report ready within ${timeoutMs} ms; log: ${w.log}`, w.name, readTail(w.log, 20));
    }
    await delay(100);
  }
}
