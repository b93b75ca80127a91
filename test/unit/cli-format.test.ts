// Output helpers (ops/format.ts) and the prom-client adapters (ops/daemon-metrics.ts).
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress, formatAge, formatBytes, formatCount, formatDuration, jsonDocument, renderKeyValues, renderTable, toJsonSafe } from '../../ops/format.js';
import { coordinatorMetricsFrom, workerMetricsFrom } from '../../ops/daemon-metrics.js';
import { createMetrics } from '../../ops/metrics.js';

/** true when the Prometheus text has a sample `name` with (at least) these labels and this value, in any label order */
function hasSample(text: string, name: string, labels: Record<string, string>, value: number): boolean {
  return text.split('\n').some((line) => {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name || Number(m[3]) !== value) return false;
    return Object.entries(labels).every(([k, v]) => m[2]!.split(',').includes(`${k}="${v}"`));
  });
}

function sink() {
  const s = new PassThrough() as PassThrough & { isTTY?: boolean };
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  return { s, text: () => text };
}

describe('formatting', () => {
  it('formats sizes, durations, ages and counts', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(5 * 2 ** 30)).toBe('5.00 GiB');
    expect(formatBytes(150 * 2 ** 20)).toBe('150 MiB');
    expect(formatDuration(0.25)).toBe('250 ms');
    expect(formatDuration(12.34)).toBe('12.3 s');
    expect(formatDuration(245)).toBe('4m05s');
    expect(formatDuration(7380)).toBe('2h03m');
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe('3d04h');
    const now = Date.parse('2026-01-02T00:00:00Z');
    expect(formatAge('2026-01-01T23:59:30Z', now)).toBe('30s');
    expect(formatAge('2026-01-01T22:00:00Z', now)).toBe('2h');
    expect(formatAge(undefined, now)).toBe('-');
    expect(formatCount(1234567)).toBe('1,234,567');
  });

  it('renders a table with every cell and right-aligned numbers', () => {
    const t = renderTable(['job', 'done'], [['j1', 5], ['j22', null]], { alignRight: [1] });
    expect(t).toContain('j1');
    expect(t).toContain('j22');
    expect(t).toMatch(/│\s+5 │/);
    expect(t).toMatch(/│\s+- │/);
    expect(renderKeyValues([['a', 1], ['long key', 'x']])).toBe('a:        1\nlong key: x');
  });

  it('makes Maps, bigints and Dates JSON-safe and prints exactly one document', () => {
    const v = toJsonSafe({ m: new Map([['k', { n: 10n }]]), big: 2n ** 70n, d: new Date(0), u: undefined, inf: Infinity, s: new Set([1]) });
    expect(v).toEqual({ m: { k: { n: 10 } }, big: '1180591620717411303424', d: '1970-01-01T00:00:00.000Z', inf: null, s: [1] });
    const doc = jsonDocument([{ a: 1 }]);
    expect(JSON.parse(doc)).toEqual([{ a: 1 }]);
    expect(doc.endsWith('\n')).toBe(true);
  });
});

describe('progress', () => {
  it('off a TTY: plain lines, one per state change, throttled in between, last state flushed on stop', () => {
    const { s, text } = sink();
    const p = createProgress({ label: 'j1', stream: s, tty: false, plainEveryMs: 60_000 });
    p.update({ done: 0, failed: 0, total: 10, state: 'queued' });
    p.update({ done: 0, failed: 0, total: 10, state: 'running' });
    for (let i = 1; i <= 9; i++) p.update({ done: i, failed: 0, total: 10, state: 'running' });
    p.update({ done: 9, failed: 1, total: 10, state: 'partial' });
    p.stop();
    expect(text().trim().split('\n')).toEqual(['j1: 0/10 done, 0 failed (queued)', 'j1: 0/10 done, 0 failed (running)', 'j1: 9/10 done, 1 failed (partial)']);
  });

  it('on a TTY: a bar; silent prints nothing', () => {
    const { s, text } = sink();
    s.isTTY = true;
    const p = createProgress({ label: 'job', stream: s, tty: true });
    p.update({ done: 3, failed: 1, total: 8, state: 'running' });
    p.stop();
    expect(text()).toMatch(/job \[.*\] 50% \| 4\/8 \| failed 1 \| running/);
    const q = sink();
    const silent = createProgress({ label: 'x', stream: q.s, silent: true });
    silent.update({ done: 1, failed: 0, total: 1 });
    silent.stop();
    expect(q.text()).toBe('');
  });
});

describe('daemon metrics adapters', () => {
  it('feed the worker and coordinator interfaces into prom-client', async () => {
    const wm = createMetrics('worker');
    const w = workerMetricsFrom(wm);
    w.taskFinished('catalog.sql', 'ok', 1.5);
    w.taskFinished('catalog.sql', 'dead', 0);
    w.slots(2, 4);
    w.ledgerAppend(0.002);
    w.swallowed('fetch');
    const wt = await wm.registry.metrics();
    expect(hasSample(wt, 'ubatch_tasks_total', { kind: 'catalog.sql', outcome: 'ok', daemon: 'worker' }, 1)).toBe(true);
    expect(hasSample(wt, 'ubatch_tasks_total', { kind: 'catalog.sql', outcome: 'dead', daemon: 'worker' }, 1)).toBe(true);
    expect(hasSample(wt, 'ubatch_task_duration_seconds_count', { kind: 'catalog.sql', daemon: 'worker' }, 1)).toBe(true);
    expect(hasSample(wt, 'ubatch_slots_busy', { daemon: 'worker' }, 2)).toBe(true);
    expect(hasSample(wt, 'ubatch_slots_total', { daemon: 'worker' }, 4)).toBe(true);
    expect(hasSample(wt, 'ubatch_swallowed_errors_total', { where: 'fetch', daemon: 'worker' }, 1)).toBe(true);

    const cm = createMetrics('coordinator');
    const c = coordinatorMetricsFrom(cm);
    c.job('noop', 'succeeded');
    c.api('jobs.submit', 'ok');
    c.queueDepth('desc.alice', 'cpu', 7);
    c.ledgerAppend(0.01);
    const ct = await cm.registry.metrics();
    expect(hasSample(ct, 'ubatch_jobs_total', { kind: 'noop', state: 'succeeded', daemon: 'coordinator' }, 1)).toBe(true);
    expect(hasSample(ct, 'ubatch_api_requests_total', { verb: 'jobs.submit', code: 'ok', daemon: 'coordinator' }, 1)).toBe(true);
    expect(hasSample(ct, 'ubatch_queue_depth', { tenant: 'desc.alice', capability: 'cpu', daemon: 'coordinator' }, 7)).toBe(true);
    expect(hasSample(ct, 'ubatch_ledger_append_latency_seconds_count', { daemon: 'coordinator' }, 1)).toBe(true);
  });
});
