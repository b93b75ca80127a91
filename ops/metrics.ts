/**
 * Prometheus metrics for the coordinator and worker daemons. Each daemon gets its
 * own prom-client Registry (never the global one), so tests and an embedded stack
 * can hold many side by side.
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Daemon = 'coordinator' | 'worker';
export type TaskOutcome = 'ok' | 'failed' | 'retried' | 'dead' | 'cancelled';
export const TASK_OUTCOMES: readonly TaskOutcome[] = ['ok', 'failed', 'retried', 'dead', 'cancelled'];

/** Task durations: 1 ms .. 1 h. */
export const TASK_DURATION_BUCKETS_S: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600,
];
/** Ledger appends (a JetStream publish + ack): 0.5 ms .. 10 s. */
export const LEDGER_APPEND_BUCKETS_S: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export const METRIC_PREFIX = 'ubatch_';

/** Invalid label name or value given to createMetrics. */
export class MetricsLabelError extends Error {
  override name = 'MetricsLabelError';
  readonly label: string;
  constructor(label: string, reason: string, options?: { cause?: unknown }) {
    super(`invalid metrics label ${JSON.stringify(label)}: ${reason}`, options);
    this.label = label;
  }
}

/** The metrics server could not listen. */
export class MetricsServerError extends Error {
  override name = 'MetricsServerError';
  readonly host: string;
  readonly port: number;
  constructor(message: string, info: { host: string; port: number }, options?: { cause?: unknown }) {
    super(message, options);
    this.host = info.host;
    this.port = info.port;
  }
}

export interface DaemonMetrics {
  readonly daemon: Daemon;
  readonly registry: Registry;
  /** ubatch_tasks_total{kind, outcome: ok|failed|retried|dead|cancelled} */
  readonly tasksTotal: Counter<'kind' | 'outcome'>;
  /** ubatch_task_duration_seconds{kind} */
  readonly taskDuration: Histogram<'kind'>;
  /** ubatch_queue_depth{tenant, capability}: tasks waiting in UB_TASKS */
  readonly queueDepth: Gauge<'tenant' | 'capability'>;
  /** ubatch_ledger_append_latency_seconds */
  readonly ledgerAppendLatency: Histogram<never>;
  /** ubatch_jobs_total{kind, state} */
  readonly jobsTotal: Counter<'kind' | 'state'>;
  /** ubatch_slots_busy */
  readonly slotsBusy: Gauge<never>;
  /** ubatch_slots_total */
  readonly slotsTotal: Gauge<never>;
  /** ubatch_api_requests_total{verb, code} */
  readonly apiRequests: Counter<'verb' | 'code'>;
  /** ubatch_swallowed_errors_total{where}: errors deliberately not propagated */
  readonly swallowedErrors: Counter<'where'>;
  /** Counts a task outcome with a checked outcome value. */
  countTask(kind: string, outcome: TaskOutcome): void;
}

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const RESERVED_LABELS = new Set(['kind', 'outcome', 'tenant', 'capability', 'state', 'verb', 'code', 'where', 'le', 'quantile']);

/**
 * A fresh Registry with default process metrics and the ubatch metrics. `labels` are
 * added to every series (with `daemon`), e.g. { host: 'w01', instance: 'w01-1' }.
 */
export function createMetrics(daemon: Daemon, labels: Record<string, string> = {}): DaemonMetrics {
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME_RE.test(name) || name.startsWith('__')) throw new MetricsLabelError(name, 'label names are [a-zA-Z_][a-zA-Z0-9_]* and may not start with __');
    if (name === 'daemon' || RESERVED_LABELS.has(name)) throw new MetricsLabelError(name, 'clashes with a label ubatch sets itself');
    if (typeof value !== 'string') throw new MetricsLabelError(name, 'value must be a string');
  }
  const registry = new Registry();
  registry.setDefaultLabels({ daemon, ...labels });
  // unprefixed process_* / nodejs_* names, so stock dashboards work
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const tasksTotal = new Counter({
    name: `${METRIC_PREFIX}tasks_total`,
    help: 'Task attempts finished, by job kind and outcome (ok|failed|retried|dead|cancelled)',
    labelNames: ['kind', 'outcome'] as const,
    registers,
  });
  const taskDuration = new Histogram({
    name: `${METRIC_PREFIX}task_duration_seconds`,
    help: 'Wall time of one task attempt, by job kind',
    labelNames: ['kind'] as const,
    buckets: [...TASK_DURATION_BUCKETS_S],
    registers,
  });
  const queueDepth = new Gauge({
    name: `${METRIC_PREFIX}queue_depth`,
    help: 'Tasks waiting in UB_TASKS, by tenant and capability',
    labelNames: ['tenant', 'capability'] as const,
    registers,
  });
  const ledgerAppendLatency = new Histogram({
    name: `${METRIC_PREFIX}ledger_append_latency_seconds`,
    help: 'Time from ledger publish to JetStream ack',
    buckets: [...LEDGER_APPEND_BUCKETS_S],
    registers,
  });
  const jobsTotal = new Counter({
    name: `${METRIC_PREFIX}jobs_total`,
    help: 'Job state transitions, by job kind and state entered',
    labelNames: ['kind', 'state'] as const,
    registers,
  });
  const slotsBusy = new Gauge({ name: `${METRIC_PREFIX}slots_busy`, help: 'Executor slots running a task', registers });
  const slotsTotal = new Gauge({ name: `${METRIC_PREFIX}slots_total`, help: 'Executor slots configured', registers });
  const apiRequests = new Counter({
    name: `${METRIC_PREFIX}api_requests_total`,
    help: 'API requests served, by verb and reply code',
    labelNames: ['verb', 'code'] as const,
    registers,
  });
  const swallowedErrors = new Counter({
    name: `${METRIC_PREFIX}swallowed_errors_total`,
    help: 'Errors caught and deliberately not propagated (each also logged at warn), by code location',
    labelNames: ['where'] as const,
    registers,
  });

  return {
    daemon,
    registry,
    tasksTotal,
    taskDuration,
    queueDepth,
    ledgerAppendLatency,
    jobsTotal,
    slotsBusy,
    slotsTotal,
    apiRequests,
    swallowedErrors,
    countTask(kind: string, outcome: TaskOutcome): void {
      if (!TASK_OUTCOMES.includes(outcome)) throw new MetricsLabelError('outcome', `unknown task outcome ${JSON.stringify(outcome)}`);
      tasksTotal.inc({ kind, outcome });
    },
  };
}

export interface MetricsServerOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  port?: number;
  /** Listen address. @default '127.0.0.1' */
  host?: string;
  /** Extra liveness check for /healthz (false or a throw = 503). @default always healthy */
  health?: () => boolean | Promise<boolean>;
}

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics (Prometheus text format) and GET /healthz on node:http. */
export async function startMetricsServer(registry: Registry, opts: MetricsServerOptions = {}): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1';
  const wantPort = opts.port ?? 0;
  if (!Number.isInteger(wantPort) || wantPort < 0 || wantPort > 65535) {
    throw new MetricsServerError(`invalid metrics port ${wantPort}: use 0..65535`, { host, port: wantPort });
  }
  const health = opts.health;

  const server = http.createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    if (pathname === '/metrics') {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'Content-Type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`metrics collection failed: ${String(err)}\n`);
        },
      );
      return;
    }
    if (pathname === '/healthz') {
      Promise.resolve()
        .then(() => (health ? health() : true))
        .then(
          (ok) => {
            res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8' }).end(ok ? 'ok\n' : 'unhealthy\n');
          },
          (err: unknown) => {
            res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`unhealthy: ${String(err)}\n`);
          },
        );
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: try /metrics or /healthz\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new MetricsServerError(`metrics server could not listen on ${host}:${wantPort}: ${err.message}`, { host, port: wantPort }, { cause: err })));
    server.listen(wantPort, host, () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new MetricsServerError('metrics server has no TCP address', { host, port: wantPort });
  const port = addr.port;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // scrapers keep connections alive; do not let them hold shutdown
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
