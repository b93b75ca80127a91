/**
 * nats-server launcher for the embedded stack (`ubatch up`) and for every
 * integration / fault test: a real server on a free port with a temp store,
 * readiness awaited on real signals (client port answers INFO, monitor /healthz
 * or $JS.API.INFO answers), never fixed sleeps.
 *
 * Child servers never outlive us: a process 'exit' hook SIGKILLs them, and a tiny
 * `sh` watchdog per server kills it when our process disappears without running
 * exit hooks (SIGKILL, a test runner tearing down a fork).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, fstatSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';

// ---------------------------------------------------------------------------
// Errors (kept here: ops/errors.ts belongs to the CLI/stack owner)

/** No nats-server executable could be found (env, PATH, /usr/sbin, /usr/bin). */
export class NatsServerNotFoundError extends Error {
  override name = 'NatsServerNotFoundError';
  readonly searched: string[];
  constructor(searched: string[], options?: { cause?: unknown }) {
    super(
      `nats-server executable not found; set UBATCH_NATS_SERVER or install it. Looked in: ${searched.join(', ')}`,
      options,
    );
    this.searched = searched;
  }
}

/** The server did not become ready (exited, bad config, timeout). Carries the log tail. */
export class NatsServerStartError extends Error {
  override name = 'NatsServerStartError';
  readonly configPath: string;
  readonly url: string;
  readonly logTail: string;
  readonly exitCode: number | null | undefined;
  constructor(
    message: string,
    info: { configPath: string; url: string; logTail: string; exitCode?: number | null },
    options?: { cause?: unknown },
  ) {
    const tail = info.logTail.trim() === '' ? '(server log is empty)' : info.logTail;
    super(`${message} [server ${info.url}, config ${info.configPath}]\n--- last server log lines ---\n${tail}`, options);
    this.configPath = info.configPath;
    this.url = info.url;
    this.logTail = info.logTail;
    this.exitCode = info.exitCode;
  }
}

/** Options that cannot work together or values out of range. */
export class NatsServerOptionsError extends Error {
  override name = 'NatsServerOptionsError';
  readonly option: string;
  readonly value: unknown;
  constructor(option: string, value: unknown, reason: string, options?: { cause?: unknown }) {
    super(`invalid nats-server option ${option}=${JSON.stringify(value)}: ${reason}`, options);
    this.option = option;
    this.value = value;
  }
}

/** `nats-server --version` could not be run or parsed, or a server version is unsupported. */
export class NatsServerVersionError extends Error {
  override name = 'NatsServerVersionError';
  readonly version: string | undefined;
  readonly bin: string | undefined;
  constructor(message: string, info: { version?: string; bin?: string }, options?: { cause?: unknown }) {
    super(message, options);
    this.version = info.version;
    this.bin = info.bin;
  }
}

// ---------------------------------------------------------------------------
// Options

export interface NatsServerOptions {
  /** JetStream store and config-file folder. @default a fresh mkdtemp under os.tmpdir(), removed by cleanup() */
  storeDir?: string;
  /** Client port. @default a free port */
  port?: number;
  /** Listen host for client, monitor and cluster ports. @default '127.0.0.1' */
  host?: string;
  /** HTTP monitor port; 0 disables monitoring (readiness then uses a client connection). @default a free port */
  monitorPort?: number;
  /** Extra nats-server config appended verbatim (authorization / accounts blocks ...). */
  configText?: string;
  /** JetStream `max_mem`, e.g. '256MB'. @default server decides (75% of RAM) */
  jetstreamMaxMemory?: string;
  /** JetStream `max_file`, e.g. '10GB'. @default server decides (75% of free disk) */
  jetstreamMaxFile?: string;
  /** Unique server name (JetStream requires unique names in a cluster). @default 'ub-<random>' */
  serverName?: string;
  /** Cluster block; routes are 'host:port' or 'nats-route://host:port'. */
  cluster?: { name: string; port: number; routes: string[] };
  /** Server writes its log to this file instead of stderr; logTail() reads it. */
  logFile?: string;
  /** Server `debug: true`. @default false */
  debug?: boolean;
  /** Client TLS (paths to PEM files). */
  tls?: { cert: string; key: string; ca?: string };
  /** `max_payload`, bytes or a size string. @default '8MB' */
  maxPayload?: string | number;
  /** How long start()/restart() wait for readiness, in ms. @default 30000 */
  readyTimeoutMs?: number;
  /** nats-server executable. @default findNatsServer() */
  bin?: string;
  /** Connection options for readiness checks when the monitor is disabled (credentials, TLS). */
  readyConnectOptions?: Partial<NodeConnectionOptions>;
  /** Spawn a watchdog that SIGKILLs the server if this process dies abruptly. @default true */
  watchdog?: boolean;
}

/** Options with every default filled in; produced by {@link compileNatsServerOptions}. */
export interface CompiledNatsServerOptions {
  storeDir: string;
  ownsStoreDir: boolean;
  port: number;
  host: string;
  /** 0 = disabled */
  monitorPort: number;
  configText: string;
  jetstreamMaxMemory: string | undefined;
  jetstreamMaxFile: string | undefined;
  serverName: string;
  cluster: { name: string; port: number; routes: string[] } | undefined;
  logFile: string | undefined;
  debug: boolean;
  tls: { cert: string; key: string; ca?: string } | undefined;
  maxPayload: string | number;
  readyTimeoutMs: number;
  bin: string;
  readyConnectOptions: Partial<NodeConnectionOptions>;
  watchdog: boolean;
  /** true when the client port was picked by us (so a bind race may retry with another) */
  autoPort: boolean;
}

const SIZE_RE = /^\d+(\.\d+)?\s*([KMGT]i?B?|B)?$/i;

function checkPort(option: string, value: number | undefined, allowZero: boolean): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 65535) {
    throw new NatsServerOptionsError(option, value, `must be an integer in ${allowZero ? 0 : 1}..65535`);
  }
}

function checkSize(option: string, value: string | number | undefined): void {
  if (value === undefined) return;
  if (typeof value === 'number' ? !(Number.isInteger(value) && value > 0) : !SIZE_RE.test(value.trim())) {
    throw new NatsServerOptionsError(option, value, "must be a positive byte count or a size like '256MB'");
  }
}

/** Normalises a route to 'nats-route://host:port'. */
export function normaliseRoute(route: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(route) ? route : `nats-route://${route}`;
}

/**
 * Validates options that need no I/O (ports, sizes, conflicts). Throws
 * {@link NatsServerOptionsError}. Pure: used by compileNatsServerOptions and unit tests.
 */
export function validateNatsServerOptions(opts: NatsServerOptions): void {
  checkPort('port', opts.port, false);
  checkPort('monitorPort', opts.monitorPort, true);
  checkSize('jetstreamMaxMemory', opts.jetstreamMaxMemory);
  checkSize('jetstreamMaxFile', opts.jetstreamMaxFile);
  checkSize('maxPayload', opts.maxPayload);
  if (opts.readyTimeoutMs !== undefined && !(opts.readyTimeoutMs > 0)) {
    throw new NatsServerOptionsError('readyTimeoutMs', opts.readyTimeoutMs, 'must be > 0');
  }
  if (opts.serverName !== undefined && !/^[A-Za-z0-9_.-]+$/.test(opts.serverName)) {
    throw new NatsServerOptionsError('serverName', opts.serverName, 'use letters, digits, _ . - only');
  }
  if (opts.cluster) {
    checkPort('cluster.port', opts.cluster.port, false);
    if (opts.cluster.name.trim() === '') throw new NatsServerOptionsError('cluster.name', opts.cluster.name, 'must not be empty');
  }
  const used = new Map<number, string>();
  for (const [name, p] of [
    ['port', opts.port],
    ['monitorPort', opts.monitorPort],
    ['cluster.port', opts.cluster?.port],
  ] as const) {
    if (p === undefined || p === 0) continue;
    const other = used.get(p);
    if (other !== undefined) throw new NatsServerOptionsError(name, p, `same port as ${other}`);
    used.set(p, name);
  }
}

/** Fills defaults (free ports, temp store dir, executable) after validating. */
export async function compileNatsServerOptions(opts: NatsServerOptions = {}): Promise<CompiledNatsServerOptions> {
  validateNatsServerOptions(opts);
  const bin = opts.bin ?? findNatsServer();
  if (bin === undefined) throw new NatsServerNotFoundError(natsServerSearchPath());
  if (opts.bin !== undefined && !isExecutableFile(opts.bin)) throw new NatsServerNotFoundError([`options.bin=${opts.bin}`]);
  const host = opts.host ?? '127.0.0.1';
  const needPorts = (opts.port === undefined ? 1 : 0) + (opts.monitorPort === undefined ? 1 : 0);
  const ports = needPorts > 0 ? await freePorts(needPorts, host) : [];
  const port = opts.port ?? ports.shift() ?? 0;
  const monitorPort = opts.monitorPort ?? ports.shift() ?? 0;
  const ownsStoreDir = opts.storeDir === undefined;
  const storeDir = opts.storeDir !== undefined ? path.resolve(opts.storeDir) : await mkdtemp(path.join(os.tmpdir(), 'ubatch-nats-'));
  return {
    storeDir,
    ownsStoreDir,
    port,
    host,
    monitorPort,
    configText: opts.configText ?? '',
    jetstreamMaxMemory: opts.jetstreamMaxMemory,
    jetstreamMaxFile: opts.jetstreamMaxFile,
    serverName: opts.serverName ?? `ub-${randomBytes(4).toString('hex')}`,
    cluster: opts.cluster,
    logFile: opts.logFile,
    debug: opts.debug ?? false,
    tls: opts.tls,
    maxPayload: opts.maxPayload ?? '8MB',
    readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
    bin,
    readyConnectOptions: opts.readyConnectOptions ?? {},
    watchdog: opts.watchdog ?? true,
    autoPort: opts.port === undefined,
  };
}

const q = (s: string): string => JSON.stringify(s);

/** Renders the nats-server config file text. Pure. */
export function renderNatsServerConfig(o: CompiledNatsServerOptions): string {
  const lines: string[] = ['# generated by ubatch ops/nats-server.ts', `server_name: ${q(o.serverName)}`, `listen: ${q(`${o.host}:${o.port}`)}`];
  if (o.monitorPort !== 0) lines.push(`http: ${q(`${o.host}:${o.monitorPort}`)}`);
  lines.push(`max_payload: ${typeof o.maxPayload === 'number' ? String(o.maxPayload) : o.maxPayload.trim()}`);
  if (o.debug) lines.push('debug: true');
  if (o.logFile !== undefined) lines.push(`log_file: ${q(path.resolve(o.logFile))}`);
  lines.push('jetstream {', `  store_dir: ${q(o.storeDir)}`);
  if (o.jetstreamMaxMemory !== undefined) lines.push(`  max_mem: ${o.jetstreamMaxMemory.trim()}`);
  if (o.jetstreamMaxFile !== undefined) lines.push(`  max_file: ${o.jetstreamMaxFile.trim()}`);
  lines.push('}');
  if (o.cluster) {
    lines.push(
      'cluster {',
      `  name: ${q(o.cluster.name)}`,
      `  listen: ${q(`${o.host}:${o.cluster.port}`)}`,
      `  routes: [${o.cluster.routes.map((r) => q(normaliseRoute(r))).join(', ')}]`,
      '}',
    );
  }
  if (o.tls) {
    lines.push('tls {', `  cert_file: ${q(o.tls.cert)}`, `  key_file: ${q(o.tls.key)}`);
    if (o.tls.ca !== undefined) lines.push(`  ca_file: ${q(o.tls.ca)}`);
    lines.push('}');
  }
  if (o.configText.trim() !== '') lines.push('# --- configText ---', o.configText);
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// Finding the executable, versions, features

function natsServerSearchPath(): string[] {
  const out: string[] = [];
  const env = process.env['UBATCH_NATS_SERVER'];
  if (env !== undefined && env !== '') out.push(`$UBATCH_NATS_SERVER=${env}`);
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '') out.push(path.join(dir, 'nats-server'));
  }
  out.push('/usr/sbin/nats-server', '/usr/bin/nats-server');
  return out;
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `UBATCH_NATS_SERVER`, then PATH, then /usr/sbin/nats-server, /usr/bin/nats-server. */
export function findNatsServer(): string | undefined {
  const env = process.env['UBATCH_NATS_SERVER'];
  if (env !== undefined && env !== '') return isExecutableFile(env) ? path.resolve(env) : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'nats-server');
    if (isExecutableFile(candidate)) return candidate;
  }
  for (const candidate of ['/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Extracts 'X.Y.Z[-pre]' from `nats-server: v2.9.10` or a bare version. */
export function parseNatsServerVersion(text: string): string | undefined {
  const m = /v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)/.exec(text);
  return m?.[1];
}

/** Runs `nats-server --version` and returns e.g. '2.9.10'. */
export async function natsServerVersion(bin?: string): Promise<string> {
  const exe = bin ?? findNatsServer();
  if (exe === undefined) throw new NatsServerNotFoundError(natsServerSearchPath());
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(exe, ['--version'], { timeout: 10_000 }, (err, out, errOut) => {
      if (err) reject(new NatsServerVersionError(`could not run ${exe} --version: ${err.message}`, { bin: exe }, { cause: err }));
      else resolve(`${out}${errOut}`);
    });
  });
  const version = parseNatsServerVersion(stdout);
  if (version === undefined) {
    throw new NatsServerVersionError(`could not parse the output of ${exe} --version: ${JSON.stringify(stdout.trim())}`, { bin: exe });
  }
  return version;
}

interface ParsedVersion {
  nums: [number, number, number];
  pre: string | undefined;
}

function parseVersionParts(version: string): ParsedVersion {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?/.exec(version.trim());
  if (!m) throw new NatsServerVersionError(`not a version: ${JSON.stringify(version)}`, { version });
  return { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] };
}

/** Semver-style comparison of 'X.Y.Z[-pre]'; a pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersionParts(a);
  const pb = parseVersionParts(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa.nums[i] ?? 0) - (pb.nums[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (pa.pre === pb.pre) return 0;
  if (pa.pre === undefined) return 1;
  if (pb.pre === undefined) return -1;
  return pa.pre < pb.pre ? -1 : 1;
}

/** True when `version` >= `min` (e.g. isAtLeast(info.version, '2.10.0')). */
export function isAtLeast(version: string, min: string): boolean {
  return compareVersions(version, min) >= 0;
}

/** Server behaviours the design must know about (see DESIGN.md "Known limits of nats-server 2.9.10"). */
export interface ServerFeatures {
  version: string;
  /** KV CAS / per-subject expected-sequence atomic on replicated streams (fixed in 2.9.21). */
  atomicReplicatedCas: boolean;
  /** Several filter subjects per consumer (2.10). */
  multiFilterConsumers: boolean;
  /** Consumer 'create' action refuses to update an existing consumer (2.10). */
  consumerCreateAction: boolean;
  /** `term(reason)` honoured instead of redelivering (2.10). */
  termWithReason: boolean;
  /** Stream / consumer metadata (2.10). */
  metadata: boolean;
  /** JetStream `sync_interval` / `sync always` (2.10). */
  syncInterval: boolean;
  /** Per-message TTL (2.11). */
  perMessageTtl: boolean;
  /** Consumer priority groups: pinned client, overflow (2.11). */
  priorityGroups: boolean;
  /** Atomic batch publish (2.12). */
  atomicBatchPublish: boolean;
}

export const SUPPORTED_SERVER_MIN = '2.9.0';

export function serverFeatures(version: string): ServerFeatures {
  const at = (v: string): boolean => isAtLeast(version, v);
  return {
    version,
    atomicReplicatedCas: at('2.9.21'),
    multiFilterConsumers: at('2.10.0'),
    consumerCreateAction: at('2.10.0'),
    termWithReason: at('2.10.0'),
    metadata: at('2.10.0'),
    syncInterval: at('2.10.0'),
    perMessageTtl: at('2.11.0'),
    priorityGroups: at('2.11.0'),
    atomicBatchPublish: at('2.12.0'),
  };
}

/**
 * Reads the connected server's version: throws {@link NatsServerVersionError} below
 * 2.9.0 or when unknown; otherwise returns its feature flags (>= 2.10 is accepted:
 * callers decide whether to use the newer features; they must not rely on them).
 */
export async function assertSupportedServer(nc: NatsConnection): Promise<ServerFeatures> {
  const version = nc.info?.version;
  if (version === undefined) {
    throw new NatsServerVersionError(`connected to ${nc.getServer()} but the server sent no version`, {});
  }
  if (!isAtLeast(version, SUPPORTED_SERVER_MIN)) {
    throw new NatsServerVersionError(
      `nats-server ${version} at ${nc.getServer()} is too old: ubatch needs >= ${SUPPORTED_SERVER_MIN}`,
      { version },
    );
  }
  return serverFeatures(version);
}

// ---------------------------------------------------------------------------
// Ports

/** Opens `count` listeners at once (so the ports are distinct), reads their ports, closes them. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, host, () => resolve());
      });
    }
    return servers.map((s) => {
      const a = s.address();
      if (a === null || typeof a === 'string') throw new Error('listener has no TCP address');
      return a.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const [p] = await freePorts(1);
  if (p === undefined) throw new Error('could not pick a free port');
  return p;
}

// ---------------------------------------------------------------------------
// Child-process bookkeeping: nothing outlives us

/** live server processes -> the temp store dir we created for them (removed at exit), if any */
const liveChildren = new Map<ChildProcess, string | undefined>();
let exitHookInstalled = false;

function killAllChildrenSync(): void {
  for (const [child, ownedDir] of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // process already gone: nothing to kill at exit time
    }
    if (ownedDir !== undefined) {
      try {
        rmSync(ownedDir, { recursive: true, force: true, maxRetries: 2 });
      } catch {
        // best effort at exit: the dying server may still hold files; it lives under os.tmpdir()
      }
    }
  }
  liveChildren.clear();
}

function track(child: ChildProcess, ownedDir: string | undefined): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', killAllChildrenSync);
  }
  liveChildren.set(child, ownedDir);
  child.once('exit', () => liveChildren.delete(child));
}

/**
 * `sh` loop: while both the parent ($1) and the server ($2) live, sleep; then SIGKILL
 * the server and, when the parent died first and $3 is set, remove the temp store $3.
 */
const WATCHDOG_SCRIPT = [
  'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done',
  'if kill -0 "$2" 2>/dev/null; then kill -9 "$2" 2>/dev/null; if [ -n "$3" ]; then sleep 0.2; rm -rf -- "$3"; fi; fi',
  'exit 0',
].join('; ');

/**
 * Spawns the watchdog: SIGKILLs `targetPid` once `parentPid` (default: this process)
 * is gone; exits by itself when the target goes first. Exported for tests.
 */
export function spawnWatchdog(targetPid: number, parentPid: number = process.pid, removeDir = ''): ChildProcess | undefined {
  try {
    const wd = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'ubatch-nats-watchdog', String(parentPid), String(targetPid), removeDir], {
      stdio: 'ignore',
      detached: true,
    });
    wd.on('error', () => {
      // a missing /bin/sh only loses the abrupt-death safety net; the exit hook remains
    });
    wd.unref();
    return wd;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Readiness probes

/** Connects to the client port and waits for the server's INFO line. */
function probeClientPort(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) done(buf.startsWith('INFO '));
    });
    sock.on('close', () => done(false));
  });
}

interface HttpResult {
  status: number;
  body: string;
}

function httpGet(url: string, timeoutMs: number): Promise<HttpResult | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function probeHealthz(monitorUrl: string, jsEnabledOnly: boolean, timeoutMs: number): Promise<boolean> {
  const res = await httpGet(`${monitorUrl}/healthz${jsEnabledOnly ? '?js-enabled-only=true' : ''}`, timeoutMs);
  if (res === undefined || res.status !== 200) return false;
  return parseJsonObject(res.body)?.['status'] === 'ok';
}

/** $JS.API.INFO over a client connection: true when JetStream answers without error. */
async function probeJetStreamApi(url: string, connectOpts: Partial<NodeConnectionOptions>, timeoutMs: number): Promise<boolean> {
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ ...connectOpts, servers: url, timeout: timeoutMs, reconnect: false, name: 'ubatch-readiness' });
    const msg = await nc.request('$JS.API.INFO', undefined, { timeout: timeoutMs });
    const info = parseJsonObject(new TextDecoder().decode(msg.data));
    return info !== undefined && info['error'] === undefined;
  } catch {
    return false;
  } finally {
    await nc?.close().catch(() => undefined);
  }
}

/** /jsz meta-cluster view of one server: the leader it knows (empty = none). */
async function metaLeaderOf(monitorUrl: string, timeoutMs: number): Promise<string | undefined> {
  const res = await httpGet(`${monitorUrl}/jsz`, timeoutMs);
  if (res === undefined || res.status !== 200) return undefined;
  const meta = parseJsonObject(res.body)?.['meta_cluster'];
  if (typeof meta !== 'object' || meta === null) return undefined;
  const leader = (meta as Record<string, unknown>)['leader'];
  return typeof leader === 'string' && leader !== '' ? leader : undefined;
}

/** Polls `check` with a short growing interval until true or the deadline passes. */
async function pollUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  abortIf?: () => Error | undefined,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let interval = 20;
  for (;;) {
    const stop = abortIf?.();
    if (stop) throw stop;
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await delay(Math.min(interval, Math.max(1, deadline - Date.now())));
    interval = Math.min(interval * 1.5, 250);
  }
}

// ---------------------------------------------------------------------------
// NatsServer

const LOG_RING_LINES = 400;
const LOG_FILE_TAIL_BYTES = 64 * 1024;

/** The last `maxBytes` of a file ('' when it does not exist yet); a cut first line is dropped. */
function readFileTail(file: string, maxBytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const text = buf.toString('utf8');
    return start > 0 ? text.slice(text.indexOf('\n') + 1) : text;
  } catch {
    // no log file yet (server failed before opening it): the captured output is all there is
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
const STOP_GRACE_MS = 5_000;

interface RunningChild {
  child: ChildProcess;
  exit: Promise<number | null>;
  watchdog: ChildProcess | undefined;
  stopped: boolean;
  spawnError: Error | undefined;
}

export class NatsServer {
  readonly storeDir: string;
  readonly configPath: string;
  readonly host: string;
  readonly monitorUrl?: string;
  readonly serverName: string;
  private _port: number;
  private readonly opts: CompiledNatsServerOptions;
  private running: RunningChild | undefined;
  private readonly logLines: string[] = [];
  private partialLine = '';
  private cleaned = false;

  private constructor(opts: CompiledNatsServerOptions) {
    this.opts = opts;
    this.storeDir = opts.storeDir;
    this.configPath = path.join(opts.storeDir, 'nats-server.conf');
    this.host = opts.host;
    this._port = opts.port;
    this.serverName = opts.serverName;
    if (opts.monitorPort !== 0) this.monitorUrl = `http://${opts.host}:${opts.monitorPort}`;
  }

  /** Writes the config, spawns `nats-server -c`, resolves once clients and JetStream are ready. */
  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const maxAttempts = options.port === undefined ? 3 : 1;
    let lastErr: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const compiled = await compileNatsServerOptions(options);
      const server = new NatsServer(compiled);
      try {
        await mkdir(compiled.storeDir, { recursive: true });
        await writeFile(server.configPath, renderNatsServerConfig(compiled));
        server.spawnChild();
        await server.waitReady(compiled.readyTimeoutMs);
        return server;
      } catch (err) {
        lastErr = err;
        await server.cleanup().catch(() => undefined);
        // a freshly picked port can be taken by someone else before the server binds it
        const portRace = /address already in use/i.test(err instanceof NatsServerStartError ? err.logTail : '');
        if (!(portRace && compiled.autoPort)) throw err;
      }
    }
    throw lastErr;
  }

  get port(): number {
    return this._port;
  }

  get url(): string {
    return `nats://${this.host}:${this._port}`;
  }

  get pid(): number | undefined {
    return this.running?.child.pid;
  }

  /** true while the current server process has not exited. */
  get isRunning(): boolean {
    const c = this.running?.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  private spawnChild(): void {
    const child = spawn(this.opts.bin, ['-c', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (d: Buffer): void => this.appendLog(d.toString('utf8'));
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    let running: RunningChild | undefined;
    const exit = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', (err) => {
        if (running) running.spawnError = err;
        this.appendLog(`[ubatch] failed to spawn ${this.opts.bin}: ${err.message}\n`);
        resolve(null);
      });
    });
    const ownedDir = this.opts.ownsStoreDir ? this.storeDir : undefined;
    track(child, ownedDir);
    const watchdog = this.opts.watchdog && child.pid !== undefined ? spawnWatchdog(child.pid, process.pid, ownedDir) : undefined;
    running = { child, exit, watchdog, stopped: false, spawnError: undefined };
    void exit.then(() => {
      if (watchdog && watchdog.exitCode === null) {
        try {
          watchdog.kill('SIGKILL');
        } catch {
          // watchdog already gone; it exits on its own once the server is gone
        }
      }
    });
    this.running = running;
  }

  private appendLog(text: string): void {
    const parts = (this.partialLine + text).split('\n');
    this.partialLine = parts.pop() ?? '';
    for (const line of parts) this.logLines.push(line);
    if (this.logLines.length > LOG_RING_LINES) this.logLines.splice(0, this.logLines.length - LOG_RING_LINES);
  }

  /** The last `lines` lines of the server log (log file when configured, else captured stderr/stdout). */
  logTail(lines = 40): string {
    let all = [...this.logLines];
    if (this.partialLine !== '') all.push(this.partialLine);
    if (this.opts.logFile !== undefined) {
      const fileLines = readFileTail(this.opts.logFile, LOG_FILE_TAIL_BYTES).split('\n');
      if (fileLines.at(-1) === '') fileLines.pop();
      all = [...fileLines, ...all];
    }
    return all.slice(-lines).join('\n');
  }

  private startError(message: string, cause?: unknown): NatsServerStartError {
    return new NatsServerStartError(
      message,
      { configPath: this.configPath, url: this.url, logTail: this.logTail(30), exitCode: this.running?.child.exitCode },
      cause === undefined ? undefined : { cause },
    );
  }

  /**
   * Waits until the client port answers INFO and JetStream is ready: monitor
   * /healthz (full check standalone; js-enabled-only when clustered, since a node alone
   * cannot be healthy before quorum), or $JS.API.INFO when monitoring is disabled.
   */
  async waitReady(timeoutMs = this.opts.readyTimeoutMs): Promise<void> {
    const probeTimeout = 1_000;
    const exitedError = (): Error | undefined => {
      if (this.running === undefined) return this.startError('server is not running');
      if (this.running.spawnError) return this.startError(`could not spawn ${this.opts.bin}: ${this.running.spawnError.message}`, this.running.spawnError);
      const c = this.running.child;
      if (c.exitCode !== null || c.signalCode !== null) {
        return this.startError(`nats-server exited before it was ready (code ${String(c.exitCode)}, signal ${String(c.signalCode)})`);
      }
      return undefined;
    };
    const t0 = Date.now();
    const clientUp = await pollUntil(() => probeClientPort(this.host, this._port, probeTimeout), timeoutMs, exitedError);
    if (!clientUp) throw this.startError(`nats-server did not accept client connections within ${timeoutMs} ms`);
    const left = Math.max(1, timeoutMs - (Date.now() - t0));
    const monitorUrl = this.monitorUrl;
    const jsCheck =
      monitorUrl !== undefined
        ? () => probeHealthz(monitorUrl, this.opts.cluster !== undefined, probeTimeout)
        : this.opts.cluster !== undefined
          ? async () => true // without a monitor a lone cluster node cannot answer $JS.API.INFO before quorum
          : () => probeJetStreamApi(this.url, this.opts.readyConnectOptions, probeTimeout);
    const jsUp = await pollUntil(jsCheck, left, exitedError);
    if (!jsUp) throw this.startError(`JetStream did not become ready within ${timeoutMs} ms`);
  }

  /** Resolves with the exit code (null when killed by a signal) of the current process. */
  exited(): Promise<number | null> {
    return this.running?.exit ?? Promise.resolve(null);
  }

  /** Sends a signal to the current process, e.g. 'SIGKILL', 'SIGSTOP', 'SIGCONT'. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    const r = this.running;
    if (r === undefined || r.child.exitCode !== null || r.child.signalCode !== null) return;
    r.child.kill(signal);
    if (signal === 'SIGSTOP' || signal === 'SIGTSTP') r.stopped = true;
    if (signal === 'SIGCONT') r.stopped = false;
  }

  /** SIGTERM and wait for exit; SIGKILL after 5 s. Idempotent. */
  async stop(): Promise<void> {
    const r = this.running;
    if (r === undefined) return;
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill('SIGTERM');
      // a SIGSTOPped server only sees SIGTERM once continued
      if (r.stopped) r.child.kill('SIGCONT');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        r.exit.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
        }),
      ]);
      if (timer) clearTimeout(timer);
      if (timedOut) r.child.kill('SIGKILL');
    }
    await r.exit;
  }

  /** Stops (gracefully) if still running, starts again on the same port and store, waits ready. */
  async restart(timeoutMs = this.opts.readyTimeoutMs): Promise<void> {
    if (this.cleaned) throw this.startError('cannot restart a server after cleanup()');
    await this.stop();
    this.appendLog(`[ubatch] --- restart ${new Date().toISOString()} ---\n`);
    this.spawnChild();
    await this.waitReady(timeoutMs);
  }

  /** stop(), then remove the store dir when we created it. */
  async cleanup(): Promise<void> {
    await this.stop();
    if (this.cleaned) return;
    this.cleaned = true;
    if (this.opts.ownsStoreDir) await rm(this.storeDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cleanup();
  }
}

// ---------------------------------------------------------------------------
// NatsCluster

export type NatsClusterOptions = Omit<NatsServerOptions, 'cluster' | 'port'> & {
  /** Cluster name. @default '<serverName prefix>-cluster' */
  clusterName?: string;
};

export class NatsCluster {
  readonly servers: NatsServer[];
  readonly name: string;
  private readonly baseDir: string;
  private readonly ownsBaseDir: boolean;
  private readonly readyTimeoutMs: number;
  private readonly readyConnectOptions: Partial<NodeConnectionOptions>;

  private constructor(servers: NatsServer[], info: { name: string; baseDir: string; ownsBaseDir: boolean; readyTimeoutMs: number; readyConnectOptions: Partial<NodeConnectionOptions> }) {
    this.servers = servers;
    this.name = info.name;
    this.baseDir = info.baseDir;
    this.ownsBaseDir = info.ownsBaseDir;
    this.readyTimeoutMs = info.readyTimeoutMs;
    this.readyConnectOptions = info.readyConnectOptions;
  }

  /** Starts `n` routed servers (stores `<storeDir>/n<i>`) and waits for a JetStream meta leader. */
  static async start(n = 3, opts: NatsClusterOptions = {}): Promise<NatsCluster> {
    if (!Number.isInteger(n) || n < 1) throw new NatsServerOptionsError('n', n, 'cluster size must be an integer >= 1');
    const { clusterName, ...serverOpts } = opts;
    validateNatsServerOptions({ ...serverOpts, monitorPort: serverOpts.monitorPort === 0 ? 0 : undefined });
    const host = opts.host ?? '127.0.0.1';
    const withMonitor = opts.monitorPort !== 0;
    const ports = await freePorts(n * (withMonitor ? 3 : 2), host);
    const prefix = opts.serverName ?? `ub-${randomBytes(3).toString('hex')}`;
    const name = clusterName ?? `${prefix}-cluster`;
    const ownsBaseDir = opts.storeDir === undefined;
    const baseDir = opts.storeDir !== undefined ? path.resolve(opts.storeDir) : await mkdtemp(path.join(os.tmpdir(), 'ubatch-nats-cluster-'));
    const port = (i: number, k: number): number => {
      const p = ports[i * (withMonitor ? 3 : 2) + k];
      if (p === undefined) throw new Error('internal: port list too short');
      return p;
    };
    const starts = Array.from({ length: n }, (_, i) =>
      NatsServer.start({
        ...serverOpts,
        storeDir: path.join(baseDir, `n${i}`),
        serverName: `${prefix}-n${i}`,
        port: port(i, 0),
        monitorPort: withMonitor ? port(i, 2) : 0,
        cluster: {
          name,
          port: port(i, 1),
          routes: Array.from({ length: n }, (_, j) => j)
            .filter((j) => j !== i)
            .map((j) => `${host}:${port(j, 1)}`),
        },
      }),
    );
    const settled = await Promise.allSettled(starts);
    const servers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const cluster = new NatsCluster(servers, {
      name,
      baseDir,
      ownsBaseDir,
      readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
      readyConnectOptions: opts.readyConnectOptions ?? {},
    });
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await cluster.cleanup().catch(() => undefined);
      throw failed.reason;
    }
    try {
      await cluster.waitJetStreamReady();
    } catch (err) {
      await cluster.cleanup().catch(() => undefined);
      throw err;
    }
    return cluster;
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /**
   * Waits until every running server agrees on one JetStream meta leader and
   * reports healthy (/jsz + /healthz), or answers $JS.API.INFO without monitoring.
   */
  async waitJetStreamReady(timeoutMs = this.readyTimeoutMs): Promise<void> {
    const running = this.servers.filter((s) => s.isRunning);
    const probeTimeout = 1_000;
    const ready = await pollUntil(async () => {
      if (running.length === 0) return false;
      const leaders: (string | undefined)[] = [];
      for (const s of running) {
        if (s.monitorUrl !== undefined) {
          leaders.push(await metaLeaderOf(s.monitorUrl, probeTimeout));
        } else {
          leaders.push((await probeJetStreamApi(s.url, this.readyConnectOptions, probeTimeout)) ? 'api' : undefined);
        }
      }
      const first = leaders[0];
      if (first === undefined || !leaders.every((l) => l === first)) return false;
      for (const s of running) {
        if (s.monitorUrl !== undefined && !(await probeHealthz(s.monitorUrl, false, probeTimeout))) return false;
      }
      return true;
    }, timeoutMs);
    if (!ready) {
      const tails = running.map((s) => `== ${s.serverName} (${s.url}) ==\n${s.logTail(10)}`).join('\n');
      throw new NatsServerStartError(
        `JetStream meta leader not agreed by ${running.length} servers of cluster ${this.name} within ${timeoutMs} ms`,
        { configPath: this.baseDir, url: this.urls.join(','), logTail: tails },
      );
    }
  }

  /** Stops every server (in parallel); runs every stop even if one fails. */
  async stop(): Promise<void> {
    const results = await Promise.allSettled(this.servers.map((s) => s.stop()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** stop(), remove the stores we created. */
  async cleanup(): Promise<void> {
    const results = await Promise.allSettled(this.servers.map((s) => s.cleanup()));
    if (this.ownsBaseDir) await rm(this.baseDir, { recursive: true, force: true });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cleanup();
  }
}
