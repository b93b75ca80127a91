/**
 * The embedded local stack: nats-server (JetStream store in `<dir>/nats`,
 * kept across restarts), the coordinator and N workers, each a child process
 * running this package's CLI (`node dist/ops/cli.js coordinator|worker`), so a
 * laptop runs exactly what a cluster runs. Used by `ubatch up`, `ubatch demo`
 * and the integration tests.
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
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { apiSubject, Buckets, decode, encode, UbatchClient, Verb } from '../protocol/index.js';
import { StackStartError } from './errors.js';
import { findNatsServer, freePorts, NatsServer } from './nats-server.js';
import { STACK_FILE_NAME, type StackFile } from './config.js';

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
  /** a new connection to the stack's server (closed by stop()) */
  connect(): Promise<NatsConnection>;
  client(user: string): Promise<UbatchClient>;
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

  const metricsPorts = opts.metricsPort !== undefined ? Array.from({ length: nWorkers + 1 }, (_, i) => opts.metricsPort! + i) : await freePorts(nWorkers + 1);
  const launcher = await sessionLauncher(logsDir);
  const server = await NatsServer.start({ storeDir: join(dir, 'nats'), logFile: join(logsDir, 'nats-server.log'), readyTimeoutMs, ...(launcher ? { bin: launcher } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) });
  const url = server.url;
  const connections: NatsConnection[] = [];
  const children: StackChild[] = [];
  let stopping = false;

  const conn = async () => {
    const nc = await connect({ servers: url, name: 'ubatch-stack', maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    connections.push(nc);
    return nc;
  };

  const spawnChild = (name: string, args: string[], metricsPort: number, id?: string): StackChild => {
    const log = join(logsDir, `${name}.log`);
    const fd = openSync(log, 'a');
    let p: ChildProcess;
    try {
      p = spawn(process.execPath, [cliPath, ...args, '--server', url, '--log-level', logLevel, '--metrics-port', String(metricsPort), '--parent-pid', String(process.pid)], {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, UBATCH_SERVER: url },
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
    const coordinator = spawnChild('coordinator', ['coordinator', '--output-root', outputRoot, ...(opts.coordinatorArgs ?? [])], metricsPorts[0]!);
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
      connect: conn,
      client: async (user: string) => new UbatchClient(await conn(), { user, timeoutMs: 30_000 }),
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
