// Metrics (ops/metrics.ts) and logging (ops/log.ts): both are the daemons' observability surface.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MetricsLabelError,
  TASK_DURATION_BUCKETS_S,
  createMetrics,
  startMetricsServer,
  type MetricsServer,
} from '../../ops/metrics.js';
import { LogLevelError, createLogger, noopLog, resolveLogLevel, type Log } from '../../ops/log.js';

interface Reply {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** Value of the sample `name` whose label set equals `labels` (order-free), from Prometheus text. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map((x): [string, string] => [x[1] ?? '', x[2] ?? ''])
      .sort(([a], [b]) => a.localeCompare(b));
    if (JSON.stringify(got) === JSON.stringify(want)) return Number(m[3]);
  }
  return undefined;
}

function request(url: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitForFile(file: string, needle: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // not created yet
    }
    if (text.includes(needle) || Date.now() > deadline) return text;
    await delay(50);
  }
}

const servers: MetricsServer[] = [];
const tmpDirs: string[] = [];
afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.close()));
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('createMetrics', () => {
  it('gives each daemon its own registry with the ubatch metrics and process metrics', async () => {
    const a = createMetrics('worker', { host: 'w01' });
    const b = createMetrics('worker', { host: 'w02' }); // a second one must not clash
    a.countTask('periodogram', 'ok');
    a.countTask('periodogram', 'ok');
    a.tasksTotal.inc({ kind: 'crossmatch', outcome: 'retried' });
    a.taskDuration.observe({ kind: 'periodogram' }, 0.42);
    a.queueDepth.set({ tenant: 'desc/alice', capability: 'cpu' }, 7);
    a.ledgerAppendLatency.observe(0.003);
    a.jobsTotal.inc({ kind: 'catalog.sql', state: 'succeeded' });
    a.slotsBusy.set(3);
    a.slotsTotal.set(8);
    a.apiRequests.inc({ verb: 'jobs.submit', code: '200' });
    a.swallowedErrors.inc({ where: 'heartbeat' });

    const text = await a.registry.metrics();
    const w = { daemon: 'worker', host: 'w01' };
    expect(sample(text, 'ubatch_tasks_total', { ...w, kind: 'periodogram', outcome: 'ok' })).toBe(2);
    expect(sample(text, 'ubatch_tasks_total', { ...w, kind: 'crossmatch', outcome: 'retried' })).toBe(1);
    expect(sample(text, 'ubatch_task_duration_seconds_count', { ...w, kind: 'periodogram' })).toBe(1);
    expect(sample(text, 'ubatch_task_duration_seconds_sum', { ...w, kind: 'periodogram' })).toBeCloseTo(0.42);
    expect(sample(text, 'ubatch_queue_depth', { ...w, tenant: 'desc/alice', capability: 'cpu' })).toBe(7);
    expect(sample(text, 'ubatch_ledger_append_latency_seconds_count', w)).toBe(1);
    expect(sample(text, 'ubatch_jobs_total', { ...w, kind: 'catalog.sql', state: 'succeeded' })).toBe(1);
    expect(sample(text, 'ubatch_slots_busy', w)).toBe(3);
    expect(sample(text, 'ubatch_slots_total', w)).toBe(8);
    expect(sample(text, 'ubatch_api_requests_total', { ...w, verb: 'jobs.submit', code: '200' })).toBe(1);
    expect(sample(text, 'ubatch_swallowed_errors_total', { ...w, where: 'heartbeat' })).toBe(1);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    const textB = await b.registry.metrics();
    expect(sample(textB, 'ubatch_slots_total', { daemon: 'worker', host: 'w02' })).toBe(0);
    expect(sample(textB, 'ubatch_tasks_total', { daemon: 'worker', host: 'w02', kind: 'periodogram', outcome: 'ok' })).toBeUndefined();
  });

  it('histogram buckets span 1 ms to 1 h', async () => {
    const m = createMetrics('coordinator');
    expect(TASK_DURATION_BUCKETS_S[0]).toBe(0.001);
    expect(TASK_DURATION_BUCKETS_S.at(-1)).toBe(3600);
    m.taskDuration.observe({ kind: 'command' }, 1800);
    const text = await m.registry.metrics();
    const l = { kind: 'command', daemon: 'coordinator' };
    expect(sample(text, 'ubatch_task_duration_seconds_bucket', { ...l, le: '0.001' })).toBe(0);
    expect(sample(text, 'ubatch_task_duration_seconds_bucket', { ...l, le: '1200' })).toBe(0);
    expect(sample(text, 'ubatch_task_duration_seconds_bucket', { ...l, le: '3600' })).toBe(1);
    expect(sample(text, 'ubatch_task_duration_seconds_bucket', { ...l, le: '+Inf' })).toBe(1);
  });

  it('rejects bad labels and unknown task outcomes', () => {
    expect(() => createMetrics('worker', { 'bad-name': 'x' })).toThrow(MetricsLabelError);
    expect(() => createMetrics('worker', { kind: 'x' })).toThrow(/clashes/);
    const m = createMetrics('worker');
    // @ts-expect-error 'exploded' is not a TaskOutcome
    expect(() => m.countTask('command', 'exploded')).toThrow(/unknown task outcome/);
  });
});

describe('startMetricsServer', () => {
  it('serves /metrics in Prometheus text format and /healthz over HTTP', async () => {
    const m = createMetrics('coordinator', { instance: 'c1' });
    m.apiRequests.inc({ verb: 'jobs.get', code: '404' });
    const srv = await startMetricsServer(m.registry, { port: 0 });
    servers.push(srv);
    expect(srv.port).toBeGreaterThan(0);

    const res = await request(`${srv.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const name of [
      'ubatch_tasks_total',
      'ubatch_task_duration_seconds',
      'ubatch_queue_depth',
      'ubatch_ledger_append_latency_seconds',
      'ubatch_jobs_total',
      'ubatch_slots_busy',
      'ubatch_slots_total',
      'ubatch_api_requests_total',
      'ubatch_swallowed_errors_total',
      'process_resident_memory_bytes',
    ]) {
      expect(res.body).toContain(`# TYPE ${name} `);
    }
    expect(sample(res.body, 'ubatch_api_requests_total', { verb: 'jobs.get', code: '404', daemon: 'coordinator', instance: 'c1' })).toBe(1);

    const health = await request(`${srv.url}/healthz`);
    expect(health).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await request(`${srv.url}/nope`)).status).toBe(404);
    expect((await request(`${srv.url}/metrics`, 'POST')).status).toBe(405);

    await srv.close();
    await srv.close(); // idempotent
    await expect(request(`${srv.url}/healthz`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('reports an unhealthy daemon as 503 and a taken port as a clear error', async () => {
    const m = createMetrics('worker');
    let healthy = true;
    const srv = await startMetricsServer(m.registry, {
      health: () => {
        if (!healthy) throw new Error('nats connection lost');
        return true;
      },
    });
    servers.push(srv);
    expect((await request(`${srv.url}/healthz`)).status).toBe(200);
    healthy = false;
    const bad = await request(`${srv.url}/healthz`);
    expect(bad.status).toBe(503);
    expect(bad.body).toContain('nats connection lost');
    await expect(startMetricsServer(m.registry, { port: srv.port })).rejects.toThrow(/could not listen on 127\.0\.0\.1:\d+/);
  });
});

describe('logging', () => {
  it('resolves the level: option, then UBATCH_LOG_LEVEL, then info', () => {
    expect(resolveLogLevel(undefined, {})).toBe('info');
    expect(resolveLogLevel(undefined, { UBATCH_LOG_LEVEL: 'DEBUG' })).toBe('debug');
    expect(resolveLogLevel('warn', { UBATCH_LOG_LEVEL: 'debug' })).toBe('warn');
    expect(() => resolveLogLevel(undefined, { UBATCH_LOG_LEVEL: 'loud' })).toThrow(LogLevelError);
    expect(() => resolveLogLevel('loud')).toThrow(/UBATCH|options\.level/);
  });

  it('writes JSON lines with the logger name, honouring the level', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-log-'));
    tmpDirs.push(dir);
    const file = path.join(dir, 'sub', 'daemon.log');
    const log = createLogger('worker', { pretty: false, level: 'info', destination: file });
    log.debug('hidden');
    log.info({ taskId: 't-1' }, 'task started');
    log.warn('slow heartbeat');
    log.flush();
    const text = await waitForFile(file, 'slow heartbeat');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ name: 'worker', level: 30, taskId: 't-1', msg: 'task started' });
    expect(lines[1]).toMatchObject({ name: 'worker', level: 40, msg: 'slow heartbeat' });
  });

  it('honours UBATCH_LOG_LEVEL when no level option is given', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-log-'));
    tmpDirs.push(dir);
    const file = path.join(dir, 'env.log');
    const before = process.env['UBATCH_LOG_LEVEL'];
    process.env['UBATCH_LOG_LEVEL'] = 'error';
    try {
      const log = createLogger('coordinator', { pretty: false, destination: file });
      expect(log.level).toBe('error');
      log.warn('not written');
      log.error('written');
      log.flush();
      const text = await waitForFile(file, 'written');
      expect(text).toContain('"msg":"written"');
      expect(text).not.toContain('not written');
    } finally {
      if (before === undefined) delete process.env['UBATCH_LOG_LEVEL'];
      else process.env['UBATCH_LOG_LEVEL'] = before;
    }
  });

  it('pretty output is human-readable, not JSON', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ops-log-'));
    tmpDirs.push(dir);
    const file = path.join(dir, 'pretty.log');
    const log = createLogger('cli', { pretty: true, level: 'info', destination: file });
    log.info({ jobId: 'j-9' }, 'job submitted');
    const text = await waitForFile(file, 'job submitted');
    expect(text).toContain('INFO');
    expect(text).toContain('(cli)');
    expect(text).toContain('job submitted');
    expect(text).toContain('jobId: "j-9"');
    expect(text.trimStart().startsWith('{')).toBe(false);
  });

  it('noopLog and a pino logger both satisfy the Log interface', () => {
    const sink: Log[] = [noopLog, createLogger('x', { pretty: false, level: 'silent' })];
    for (const l of sink) {
      expect(() => {
        l.info('m');
        l.warn({ a: 1 }, 'm');
        l.error({ err: new Error('e') });
        l.debug('d');
      }).not.toThrow();
    }
    expect(Object.isFrozen(noopLog)).toBe(true);
  });
});
