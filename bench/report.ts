/**
 * Benchmark: accounting reports and the ledger export over a synthetic ledger.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/report.js [--entries 1000000] [--export-entries 1000000]
 *
 * or, when other files keep the full build from compiling:
 *
 *   npx tsc --outDir /tmp/reports-build --rootDir . --module NodeNext --moduleResolution NodeNext \
 *     --target ES2022 --strict --noUncheckedIndexedAccess --skipLibCheck --types node bench/report.ts
 *   node --max-old-space-size=8192 /tmp/reports-build/bench/report.js
 *
 * The ledger: 40 groups, 400 users, jobs of 50 tasks; ~96% task.charged entries
 * of 1-3 charges (retries and failures included), job.accepted / job.closed
 * per job, and quota/share changes. Measured: buildReport (whole ledger, one
 * group, one week), against summarizeLedger (ledger/views.ts, the existing
 * fold) over the same records as the reference; CSV and HTML rendering; and the
 * Parquet export (with NDJSON alone beside it). Target: buildReport over
 * 1,000,000 entries in <= 10 s. Prints one JSON line per measurement, then a summary.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { exportLedger } from '../ledger/export.js';
import { reportToHtml } from '../ledger/report-html.js';
import { buildReport, reportToCsv } from '../ledger/reports.js';
import type { LedgerRecord } from '../ledger/replay.js';
import { summarizeLedger } from '../ledger/views.js';
import type { Charge, LedgerEntry, Provenance } from '../protocol/index.js';
import { mulberry32 as prng } from '../astro/random.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

/** mulberry32: a small seeded PRNG so every run benchmarks the same ledger */

const DAY = 86_400_000;
const T0 = Date.UTC(2025, 0, 1);

function syntheticLedger(entries: number, seed = 1): LedgerRecord[] {
  const rand = prng(seed);
  const groups = Array.from({ length: 40 }, (_, i) => `g${i}`);
  const users = Array.from({ length: 400 }, (_, i) => ({ user: `u${i}`, group: groups[i % 40] ?? 'g0' }));
  // provenance objects are shared between charges: the folds never read them, and 2M distinct copies would only measure the allocator
  const provs: Provenance[] = Array.from({ length: 16 }, (_, i) => ({
    inputs: [{ path: `/data/dp1/part-${i}.parquet`, bytes: 1e8, sha256: 'ab'.repeat(32) }],
    outputs: [{ path: `/out/x/part-${i}.parquet`, bytes: 1e6, sha256: 'cd'.repeat(32) }],
    code: { ubatchVersion: '0.1.0', gitCommit: '0123456789abcdef', kind: i % 2 ? 'catalog.sql' : 'command' },
    params: { sql: 'select * from input where mag < 24' },
    worker: { id: `w${i}`, host: `node${i}`, pid: 1000 + i },
    startedAt: new Date(T0).toISOString(),
    endedAt: new Date(T0 + 60_000).toISOString(),
  }));
  const out: LedgerRecord[] = new Array<LedgerRecord>();
  const span = 90 * DAY;
  let seq = 0;
  const push = (time: number, entry: LedgerEntry) => out.push({ seq: ++seq, time, subject: `ub.ledger.${entry.kind}.${entry.group}.${entry.user}`, entry });
  for (const g of groups) push(T0, { kind: 'share.set', ts: '', actor: 'ops', group: g, user: 'ops', scope: 'group', share: 1 + Math.floor(rand() * 100) });
  for (const u of users.slice(0, 100)) push(T0, { kind: 'quota.set', ts: '', actor: 'ops', group: u.group, user: u.user, scope: 'user', limits: { cpu_hours: 1e4, max_concurrent: 100 } });
  let job = 0;
  while (out.length < entries) {
    const u = users[Math.floor(rand() * users.length)] ?? users[0]!;
    const jobId = `j${(job++).toString(36)}`;
    const start = T0 + Math.floor((out.length / entries) * span);
    const ts = new Date(start).toISOString();
    push(start, { kind: 'job.accepted', ts, actor: u.user, group: u.group, user: u.user, jobId, jobKind: 'catalog.sql', name: `job ${job}`, tasks: 50, spec: { kind: 'catalog.sql' } });
    let task = 0;
    for (let k = 0; k < 24 && out.length < entries; k++) {
      const n = 1 + ((k + job) % 3);
      const charges: Charge[] = [];
      for (let c = 0; c < n; c++) {
        const r = rand();
        const attempt = r < 0.05 ? 2 : 1;
        const outcome: Charge['outcome'] = r < 0.02 ? 'failed' : r < 0.05 ? 'ok' : r < 0.06 ? 'retried' : 'ok';
        const wall = 10 + rand() * 600;
        charges.push({
          taskId: `${jobId}.${task++}`,
          jobId,
          attempt,
          execution: `w${task % 16}.${task}`,
          outcome,
          usage: { cpuSeconds: wall * 0.8, wallSeconds: wall, gpuSeconds: r > 0.97 ? wall : 0, peakRssBytes: 5e8, bytesRead: 1e8, bytesWritten: 1e6, allocatedCores: 1 + (task % 4) },
          provenance: provs[task % provs.length] ?? provs[0]!,
        });
      }
      push(start + k * 1000, { kind: 'task.charged', ts, actor: 'w1', group: u.group, user: u.user, charges });
    }
    if (out.length < entries) push(start + 30_000, { kind: 'job.closed', ts, actor: 'coordinator', group: u.group, user: u.user, jobId, state: 'succeeded', done: task, failed: 0, outputs: [] });
  }
  return out;
}

/** wall ms, and this process's CPU ms (user + system, all threads: DuckDB's included) — on a shared, loaded machine the CPU figure is the steadier one */
function time<T>(fn: () => T): { value: T; ms: number; cpuMs: number } {
  const c = process.cpuUsage();
  const t = performance.now();
  const value = fn();
  const d = process.cpuUsage(c);
  return { value, ms: performance.now() - t, cpuMs: Math.round((d.user + d.system) / 1000) };
}
async function timeAsync<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number }> {
  const c = process.cpuUsage();
  const t = performance.now();
  const value = await fn();
  const d = process.cpuUsage(c);
  return { value, ms: performance.now() - t, cpuMs: Math.round((d.user + d.system) / 1000) };
}
function line(o: Record<string, unknown>): void {
  console.log(JSON.stringify(o));
}

async function main(): Promise<void> {
  const entries = arg('entries', 1_000_000);
  const exportEntries = arg('export-entries', entries);
  const gen = time(() => syntheticLedger(entries));
  const records = gen.value;
  const charges = records.reduce((n, r) => n + (r.entry.kind === 'task.charged' ? r.entry.charges.length : 0), 0);
  line({ bench: 'report', what: 'generate', entries: records.length, charges, ms: Math.round(gen.ms) });

  // warm-up on a slice so the JIT state is comparable for both folds
  buildReport(records.slice(0, 50_000));
  summarizeLedger(records.slice(0, 50_000));

  const ref = time(() => summarizeLedger(records));
  line({ bench: 'report', what: 'summarizeLedger (reference)', entries: records.length, ms: Math.round(ref.ms), cpuMs: ref.cpuMs });
  const all = time(() => buildReport(records, { now: T0 + 91 * DAY, capacityCores: 2000 }));
  const r = all.value;
  line({ bench: 'report', what: 'buildReport all', entries: records.length, ms: Math.round(all.ms), cpuMs: all.cpuMs, entriesPerSec: Math.round(records.length / (all.ms / 1000)), ratioToReference: +(all.ms / ref.ms).toFixed(2), tenants: r.tenants.length, buckets: r.timeline.length, checksEqual: r.checks.equal });
  const wallDiff = Math.abs(r.totals.wallHours * 3600 - ref.value.total.wallSeconds) / ref.value.total.wallSeconds;
  line({ bench: 'report', what: 'cross-check with summarizeLedger', wallSecondsRelDiff: wallDiff, attempts: [r.totals.attempts, ref.value.charges] });
  const grp = time(() => buildReport(records, { group: 'g7', now: T0 + 91 * DAY }));
  line({ bench: 'report', what: 'buildReport one group', entries: records.length, ms: Math.round(grp.ms), cpuMs: grp.cpuMs, tenants: grp.value.tenants.length });
  const week = time(() => buildReport(records, { from: T0 + 30 * DAY, to: T0 + 37 * DAY }));
  line({ bench: 'report', what: 'buildReport one week', entries: records.length, ms: Math.round(week.ms), cpuMs: week.cpuMs, buckets: week.value.timeline.length });
  const csv = time(() => reportToCsv(r));
  const html = time(() => reportToHtml(r));
  line({ bench: 'report', what: 'render', csvMs: +csv.ms.toFixed(1), csvBytes: csv.value.length, htmlMs: +html.ms.toFixed(1), htmlBytes: html.value.length });

  const dir = await mkdtemp(join(tmpdir(), 'bench-report-'));
  try {
    const subset = exportEntries >= records.length ? records : records.slice(0, exportEntries);
    const nd = await timeAsync(() => exportLedger(subset, join(dir, 'ledger.ndjson'), { format: 'ndjson' }));
    line({ bench: 'report', what: 'export ndjson', entries: subset.length, rows: nd.value.rows, ms: Math.round(nd.ms), cpuMs: nd.cpuMs, bytes: nd.value.bytes });
    await rm(join(dir, 'ledger.ndjson'));
    const pq = await timeAsync(() => exportLedger(subset, join(dir, 'ledger.parquet'), { format: 'parquet' }));
    line({ bench: 'report', what: 'export parquet', entries: subset.length, rows: pq.value.rows, ms: Math.round(pq.ms), cpuMs: pq.cpuMs, bytes: pq.value.bytes, rowsPerSec: Math.round(pq.value.rows / (pq.ms / 1000)), ratioToNdjson: +(pq.ms / nd.ms).toFixed(2) });
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const [check] = (await conn.runAndReadAll(`SELECT count(*)::BIGINT AS n, sum(wall_seconds) AS wall FROM read_parquet('${join(dir, 'ledger.parquet')}')`)).getRowObjectsJS();
    conn.closeSync();
    db.closeSync();
    const wallRef = summarizeLedger(subset).total.wallSeconds;
    line({ bench: 'report', what: 'parquet read back', rows: Number(check?.['n']), wallSecondsRelDiff: Math.abs(Number(check?.['wall']) - wallRef) / wallRef });

    console.log('');
    console.log(`synthetic ledger: ${records.length.toLocaleString('en-US')} entries, ${charges.toLocaleString('en-US')} charges (generated in ${(gen.ms / 1000).toFixed(1)} s)`);
    const s = (x: { ms: number; cpuMs: number }) => `${(x.ms / 1000).toFixed(2)} s wall / ${(x.cpuMs / 1000).toFixed(2)} s cpu`;
    console.log(`machine load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cpus`);
    console.log(`buildReport (all):        ${s(all)}  (${(all.ms / ref.ms).toFixed(2)}x summarizeLedger's ${s(ref)})  target <= 10 s: ${all.ms <= 10_000 ? 'met' : 'NOT met'}`);
    console.log(`buildReport (one group):  ${s(grp)};  one week: ${s(week)}`);
    console.log(`sum of charges = sum of task usage: ${r.checks.equal}; wall-seconds vs summarizeLedger rel. diff ${wallDiff.toExponential(1)}`);
    console.log(`render: csv ${csv.ms.toFixed(0)} ms, html ${html.ms.toFixed(0)} ms (${(html.value.length / 1024).toFixed(0)} KiB)`);
    console.log(`export: ndjson ${s(nd)}, parquet ${s(pq)} for ${pq.value.rows.toLocaleString('en-US')} rows (${(pq.value.bytes / 1048576).toFixed(1)} MiB)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
