/**
 * Dispatch benchmark (issue 2): a job of N no-op tasks through 2 worker
 * processes on the embedded stack (nats-server, coordinator and workers as
 * child processes), end to end with ledger entries; then submit-to-start
 * latency on an idle system.
 *
 *   make build && node dist/bench/dispatch.js [--tasks 100000] [--latency-jobs 200] [--slots 64] [--with-quotas]
 *
 * --with-quotas: the user gets a group membership, shares, a cpu-hours quota and a
 * concurrency cap first (large enough not to bind), so every release is checked
 * against them — fair share (ranking) is always on.
 *
 * Prints one JSON line per figure and a summary.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readLedger, summarizeLedger } from '../ledger/index.js';
import { startLocalStack } from '../ops/stack.js';

const { values } = parseArgs({ options: { tasks: { type: 'string', default: '100000' }, 'latency-jobs': { type: 'string', default: '200' }, slots: { type: 'string', default: '64' }, workers: { type: 'string', default: '2' }, 'with-quotas': { type: 'boolean', default: false } } });
const N = Number(values.tasks);
const L = Number(values['latency-jobs']);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-bench-dispatch-'));
  const stack = await startLocalStack({ dir, workers: Number(values.workers), slots: Number(values.slots), logLevel: 'warn', writeStackFile: false, coordinatorArgs: ['--operators', 'ops'] });
  try {
    const c = await stack.client('bench');
    if (values['with-quotas']) {
      const ops = await stack.client('ops');
      await ops.sharesSet('survey', 10);
      await ops.sharesSet('survey', 1, 'bench');
      await ops.quotaSet('user', 'bench', { cpu_hours: 1e6, max_concurrent: 50_000 });
      await ops.quotaSet('group', 'survey', { cpu_hours: 1e7, max_concurrent: 100_000 });
    }
    // warm-up: consumers, specs, JIT
    await c.wait((await c.submit({ kind: 'noop', params: { tasks: 2000 } })).jobId, { timeoutMs: 120_000 });

    const t0 = performance.now();
    const sub = await c.submit({ kind: 'noop', name: 'dispatch-bench', params: { tasks: N } });
    const info = await c.wait(sub.jobId, { timeoutMs: 900_000 });
    const seconds = (performance.now() - t0) / 1000;
    const nc = await stack.connect();
    const ledger = summarizeLedger(await readLedger(nc));
    const charged = ledger.byJob.get(sub.jobId)?.attempts ?? 0;
    const thr = { bench: 'dispatch', withQuotas: values['with-quotas'], tasks: N, state: info.state, seconds: +seconds.toFixed(3), tasksPerSecond: Math.round(N / seconds), charges: charged, duplicateCharges: ledger.duplicateCharges.length };
    console.log(JSON.stringify(thr));

    // submit-to-start latency on an idle system: one 1-task job at a time
    const sentAt: number[] = [];
    const jobs: string[] = [];
    for (let i = 0; i < L; i++) {
      const sent = Date.now();
      const s = await c.submit({ kind: 'noop', params: { tasks: 1 } });
      await c.wait(s.jobId, { timeoutMs: 30_000 });
      sentAt.push(sent);
      jobs.push(s.jobId);
    }
    const started = new Map<string, number>();
    for (const r of await readLedger(nc)) if (r.entry.kind === 'task.charged') for (const ch of r.entry.charges) started.set(ch.jobId, Date.parse(ch.provenance.startedAt));
    const ms = jobs.map((j, i) => (started.get(j) ?? NaN) - sentAt[i]!).filter((x) => Number.isFinite(x));
    const latency = { bench: 'submit-to-start', jobs: ms.length, p50_ms: pct(ms, 50), p90_ms: pct(ms, 90), p99_ms: pct(ms, 99), max_ms: Math.max(...ms) };
    console.log(JSON.stringify(latency));
    console.error(`\n${N} no-op tasks: ${thr.seconds} s = ${thr.tasksPerSecond} tasks/s (${info.state}, ${charged} charges, ${thr.duplicateCharges} duplicates)\nsubmit-to-start over ${ms.length} idle submissions: p50 ${latency.p50_ms} ms, p99 ${latency.p99_ms} ms (ms resolution: worker start time from the ledger)`);
  } finally {
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
