/**
 * catalog.sql overhead (issue 2): the same colour–magnitude question over the
 * same HATS partitions, answered by ONE DuckDB query over all leaf files
 * (2 threads) and by a ubatch job (2 worker processes x 1 slot, DuckDB 1
 * thread each; map + reduce, partitions batched by the planner), alternated,
 * medians compared. Also reported: the same map-per-partition + reduce in two
 * bare DuckDBs, and (--per-partition) the ubatch job with one task per
 * partition (params.partitions_per_task: 1, the behaviour before batching).
 *
 *   make build && node dist/bench/catalog-sql.js [--query heavy|light] [--rows 4000000] [--rows-per-partition 500000] [--repeats 3] [--data DIR] [--per-partition] [--rows-per-task N] [--no-decomposition] [--warmups 1] [--variant JSON ...]
 *
 * --no-decomposition skips the bare-DuckDB map-per-partition side (slow at 32M rows; it is not the target's baseline).
 * Also reported: CPU seconds of one direct query (the bench process) and of the whole stack over one job (nats-server,
 * coordinator, workers, from /proc; 10 ms ticks): load moves this far less than wall time.
 * --warmups N runs N warm-up jobs before the measured ones (default 1).
 * --variant '{"rows_per_task":8000000}' (repeatable) also runs the job with these extra params in every repeat, alternated
 *   with the others, reported as `variants` (e.g. to compare batch sizes side by side in one run); a `resources` key
 *   goes to the spec's resources (e.g. '{"resources":{"cores":2}}').
 * --data DIR keeps the generated catalog in DIR (reused when it is already there: generating 40M rows takes minutes).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { hats, survey } from '../astro/index.js';
import { startLocalStack } from '../ops/stack.js';
import { readLedger } from '../ledger/index.js';

// light: a colour-magnitude histogram (reads 2 columns)
const QUERIES = {
  light: {
    select: 'floor((g_mag - r_mag) / 0.1) * 0.1 AS gr, floor(r_mag / 0.5) * 0.5 AS r, count(*) AS n',
    where: 'g_mag IS NOT NULL AND r_mag IS NOT NULL',
    reduce: 'SELECT gr, r, sum(n) AS n FROM partials GROUP BY ALL ORDER BY ALL',
  },
  // heavy: per-bin colour means, spreads and error ranges (reads 9 columns, many groups). Every map column is used by the
  // reduce and every aggregate is exactly decomposable, so one query and map + reduce do the same work and give the same answer
  // (an earlier version used exact quantiles the reduce never read: DuckDB pruned them from the one-query plan only).
  heavy: {
    select: 'floor((g_mag - r_mag) / 0.05) * 0.05 AS gr, floor(r_mag / 0.25) * 0.25 AS r, extendedness AS ext, count(*) AS n, sum(u_mag - g_mag) AS s_ug, sum((u_mag - g_mag) ^ 2) AS ss_ug, sum(i_mag - z_mag) AS s_iz, sum((i_mag - z_mag) ^ 2) AS ss_iz, sum(z_mag - y_mag) AS s_zy, sum((z_mag - y_mag) ^ 2) AS ss_zy, min(r_magErr) AS min_err, max(r_magErr) AS max_err, sum(r_magErr) AS s_err',
    where: 'g_mag IS NOT NULL AND r_mag IS NOT NULL AND u_mag IS NOT NULL AND y_mag IS NOT NULL',
    reduce: 'SELECT gr, r, ext, sum(n) AS n, sum(s_ug) / sum(n) AS mean_ug, sqrt(greatest(sum(ss_ug) / sum(n) - (sum(s_ug) / sum(n)) ^ 2, 0)) AS sd_ug, sum(s_iz) / sum(n) AS mean_iz, sqrt(greatest(sum(ss_iz) / sum(n) - (sum(s_iz) / sum(n)) ^ 2, 0)) AS sd_iz, sum(s_zy) / sum(n) AS mean_zy, sqrt(greatest(sum(ss_zy) / sum(n) - (sum(s_zy) / sum(n)) ^ 2, 0)) AS sd_zy, min(min_err) AS min_err, max(max_err) AS max_err, sum(s_err) / sum(n) AS mean_err FROM partials GROUP BY ALL ORDER BY ALL',
  },
} as const;
const { values } = parseArgs({ options: { rows: { type: 'string', default: '4000000' }, repeats: { type: 'string', default: '3' }, 'rows-per-partition': { type: 'string', default: '500000' }, query: { type: 'string', default: 'heavy' }, data: { type: 'string' }, 'per-partition': { type: 'boolean', default: false }, 'rows-per-task': { type: 'string' }, 'no-decomposition': { type: 'boolean', default: false }, warmups: { type: 'string', default: '1' }, variant: { type: 'string', multiple: true } } });
const VARIANTS = (values.variant ?? []).map((v) => JSON.parse(v) as Record<string, unknown>);
const Q = QUERIES[values.query as keyof typeof QUERIES];
if (!Q) throw new Error(`--query must be one of ${Object.keys(QUERIES).join(', ')}`);
const MAP = `SELECT ${Q.select} FROM partition WHERE ${Q.where} GROUP BY ALL`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let directCpu = 0;
async function direct(files: string[], out: string): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await inst.connect();
  const list = files.map((f) => `'${f}'`).join(',');
  // the user's whole question in one query: the map over all rows, then the reduce
  await c.run(`COPY (WITH partials AS (SELECT ${Q.select} FROM read_parquet([${list}]) WHERE ${Q.where} GROUP BY ALL) ${Q.reduce}) TO '${out}' (FORMAT parquet)`);
  c.closeSync();
  inst.closeSync();
  const cu = process.cpuUsage(c0);
  directCpu = (cu.user + cu.system) / 1e6;
  return (performance.now() - t0) / 1000;
}

/** the same decomposition ubatch runs (map per partition on 2 single-threaded DuckDBs, then the reduce), without the bus */
async function directPerPartition(files: string[], dir: string): Promise<number> {
  const t0 = performance.now();
  const queue = files.map((f, i) => ({ f, out: join(dir, `p-${i}.parquet`) }));
  const partials = queue.map((q) => q.out);
  const runner = async () => {
    for (let q = queue.shift(); q; q = queue.shift()) {
      const inst = await DuckDBInstance.create(':memory:', { threads: '1' });
      const c = await inst.connect();
      await c.run(`CREATE VIEW "partition" AS SELECT * FROM read_parquet(['${q.f}'])`);
      await c.run(`COPY (${MAP}) TO '${q.out}' (FORMAT parquet, COMPRESSION zstd)`);
      c.closeSync();
      inst.closeSync();
    }
  };
  await Promise.all([runner(), runner()]);
  const inst = await DuckDBInstance.create(':memory:', { threads: '1' });
  const c = await inst.connect();
  await c.run(`CREATE VIEW partials AS SELECT * FROM read_parquet([${partials.map((p) => `'${p}'`).join(',')}])`);
  await c.run(`COPY (${Q.reduce}) TO '${join(dir, 'reduced.parquet')}' (FORMAT parquet)`);
  c.closeSync();
  inst.closeSync();
  return (performance.now() - t0) / 1000;
}

/** CPU seconds (user + system) a process has used so far, from /proc (0 when it is gone) */
function procCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

const load = () => loadavg().map((x) => +x.toFixed(2));

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-bench-sql-'));
  try {
    const catDir = values.data ? join(values.data, `object-${values.rows}-${values['rows-per-partition']}`) : join(dir, 'object');
    const tg = performance.now();
    if (!existsSync(join(catDir, 'partition_info.csv'))) {
      await survey.generateObjectCatalog(catDir, { rows: Number(values.rows), seed: 1, maxRowsPerPartition: Number(values['rows-per-partition']) });
    }
    const cat = await hats.openHatsCatalog(catDir);
    const files = cat.partitions.flatMap((p) => p.files);
    console.error(`catalog ${catDir}: ${values.rows} rows, ${cat.partitions.length} partitions (ready in ${((performance.now() - tg) / 1000).toFixed(1)} s)`);
    const stack = await startLocalStack({ dir: join(dir, 'stack'), workers: 2, slots: 1, logLevel: 'warn', writeStackFile: false });
    try {
      const c = await stack.client('bench');
      let lastJob = { jobId: '', sentAt: 0, submittedAt: 0, doneAt: 0, label: '' };
      const measured: (typeof lastJob)[] = [];
      // CPU of the whole stack (nats-server, coordinator, workers) over a job: a figure the machine's load moves far less than wall time
      const stackPids = () => [stack.server.pid, stack.coordinator.pid, ...stack.workers.map((w) => w.pid)];
      const stackCpu = (): number => stackPids().reduce<number>((a, pid) => a + procCpuSeconds(pid), 0);
      let jobCpu = 0;
      let jobCpuBy: number[] = [];
      const cpuBy: number[][] = [];
      const job = async (out: string, extra: Record<string, unknown> = {}, label = '') => {
        const cpu0 = stackCpu();
        const by0 = stackPids().map(procCpuSeconds);
        const t0 = performance.now();
        const sentAt = Date.now();
        const { resources, ...params } = extra as { resources?: Record<string, unknown> };
        const sub = await c.submit({ kind: 'catalog.sql', input: { catalog: catDir }, params: { map: MAP, reduce: Q.reduce, ...(values['rows-per-task'] ? { rows_per_task: Number(values['rows-per-task']) } : {}), ...params }, output: { path: out }, ...(resources ? { resources } : {}) });
        const submittedAt = Date.now();
        const info = await c.wait(sub.jobId, { timeoutMs: 1_800_000 });
        if (info.state !== 'succeeded') throw new Error(`job ${sub.jobId} ${info.state}: ${info.error}`);
        jobCpu = stackCpu() - cpu0;
        jobCpuBy = stackPids().map((pid, k) => procCpuSeconds(pid) - by0[k]!);
        const j = { jobId: sub.jobId, sentAt, submittedAt, doneAt: Date.now(), label };
        if (!extra.partitions_per_task && !label) lastJob = j;
        if (!extra.partitions_per_task && !out.includes('warm')) measured.push(j);
        return { s: (performance.now() - t0) / 1000, tasks: sub.tasks };
      };
      // warm-up: long-lived workers have DuckDB loaded and the inputs' checksums cached, as in production
      let warm = await job(join(dir, 'warm.parquet'));
      for (let w = 1; w < Number(values.warmups); w++) warm = await job(join(dir, `warm-${w}.parquet`));
      if (values['per-partition']) await job(join(dir, 'warm-pp.parquet'), { partitions_per_task: 1 });
      await direct(files, join(dir, 'warm-direct.parquet'));
      const ts: number[] = [];
      const td: number[] = [];
      const tp: number[] = [];
      const tu1: number[] = [];
      const tv: number[][] = VARIANTS.map(() => []);
      const cpuDirect: number[] = [];
      const cpuUbatch: number[] = [];
      for (const [k, v] of VARIANTS.entries()) await job(join(dir, `warm-v${k}.parquet`), v, `variant ${k}`);
      const loads: number[][] = [];
      for (let i = 0; i < Number(values.repeats); i++) {
        loads.push(load());
        // alternate the order so neither side always runs first
        const runJob = async () => {
          ts.push((await job(join(dir, `ubatch-${i}.parquet`))).s);
          cpuUbatch.push(jobCpu);
          cpuBy.push(jobCpuBy);
        };
        const runVariants = async () => {
          for (const [k, v] of VARIANTS.entries()) tv[k]!.push((await job(join(dir, `ubatch-v${k}-${i}.parquet`), v, `variant ${k}`)).s);
        };
        if (i % 2 === 1) await runVariants();
        if (i % 2 === 1) await runJob();
        td.push(await direct(files, join(dir, `direct-${i}.parquet`)));
        cpuDirect.push(directCpu);
        if (i % 2 === 0) await runJob();
        if (i % 2 === 0) await runVariants();
        if (!values['no-decomposition']) {
          const pd = join(dir, `pp-${i}`);
          await mkdir(pd, { recursive: true });
          tp.push(await directPerPartition(files, pd));
        }
        if (values['per-partition']) tu1.push((await job(join(dir, `ubatch-pp-${i}.parquet`), { partitions_per_task: 1 })).s);
      }
      loads.push(load());
      // the same answer both ways: bins and counts exactly, the first float column to 1e-9
      const keys = values.query === 'heavy' ? 'gr, r, ext, n' : 'gr, r, n';
      const chk = await DuckDBInstance.create(':memory:', { threads: '1' });
      const cc = await chk.connect();
      const a = `read_parquet('${join(dir, 'ubatch-0.parquet')}')`;
      const b = `read_parquet('${join(dir, 'direct-0.parquet')}')`;
      const sameKeys = `(SELECT count(*) FROM (SELECT ${keys} FROM ${a} EXCEPT SELECT ${keys} FROM ${b})) + (SELECT count(*) FROM (SELECT ${keys} FROM ${b} EXCEPT SELECT ${keys} FROM ${a}))`;
      const sameFloats = values.query === 'heavy' ? ` + (SELECT count(*) FROM ${a} x JOIN ${b} y USING (gr, r, ext) WHERE abs(x.mean_ug - y.mean_ug) > 1e-9 OR abs(x.sd_zy - y.sd_zy) > 1e-6)` : '';
      const diff = (await cc.runAndReadAll(`SELECT ${sameKeys}${sameFloats}`)).getRows()[0]?.[0];
      cc.closeSync();
      chk.closeSync();
      const resultsMatch = Number(diff) === 0;
      if (!resultsMatch) console.error(`WARNING: ubatch and the direct query disagree on ${diff} rows`);
      const nc = await stack.connect();
      const walls: number[] = [];
      const ledger = await readLedger(nc);
      for (const rec of ledger) if (rec.entry.kind === 'task.charged') for (const ch of rec.entry.charges) walls.push(ch.usage.wallSeconds);
      console.error(`task wall seconds: median ${median(walls).toFixed(3)}, max ${Math.max(...walls).toFixed(3)} over ${walls.length} tasks`);
      // timeline of each measured batched job (ms after the client sent the submit; ledger times have ms resolution)
      const timelineOf = (j: typeof lastJob) => {
        const at = (iso: string) => Date.parse(iso) - j.sentAt;
        const charges = ledger.flatMap((rec) => (rec.entry.kind === 'task.charged' ? rec.entry.charges : [])).filter((ch) => ch.jobId === j.jobId && ch.outcome === 'ok');
        const maps = charges.filter((ch) => !ch.taskId.endsWith('.r'));
        const red = charges.find((ch) => ch.taskId.endsWith('.r'));
        const closed = ledger.find((rec) => rec.entry.kind === 'job.closed' && rec.entry.jobId === j.jobId);
        return {
          submit_reply_ms: j.submittedAt - j.sentAt,
          maps_start_ms: maps.map((ch) => at(ch.provenance.startedAt)),
          maps_end_ms: maps.map((ch) => at(ch.provenance.endedAt)),
          maps_worker: maps.map((ch) => ch.provenance.worker.id.slice(-6)),
          maps_cpu_s: maps.map((ch) => +ch.usage.cpuSeconds.toFixed(3)),
          ...(red ? { reduce_ms: [at(red.provenance.startedAt), at(red.provenance.endedAt)], reduce_worker: red.provenance.worker.id.slice(-6) } : {}),
          ...(closed ? { closed_ms: at(closed.entry.ts) } : {}),
          client_done_ms: j.doneAt - j.sentAt,
        };
      };
      const timeline = timelineOf(lastJob);
      for (const j of measured) console.error(`timeline${j.label ? ` (${j.label})` : ''}: ${JSON.stringify(timelineOf(j))}`);
      console.error(`timeline of the last job: ${JSON.stringify(timeline)}`);
      const r3 = (x: number) => +x.toFixed(3);
      const r = {
        bench: 'catalog.sql-overhead',
        date: new Date().toISOString(),
        query: values.query,
        rows: Number(values.rows),
        partitions: cat.partitions.length,
        map_tasks: warm.tasks - 1,
        results_match: resultsMatch,
        direct_s: r3(median(td)),
        ubatch_s: r3(median(ts)),
        overhead_vs_single_query: r3(median(ts) / median(td) - 1),
        // the median of each repeat's own ratio (the job against the direct query run next to it): steadier when the machine drifts
        paired_overhead_vs_single_query: r3(median(ts.map((x, i) => x / td[i]! - 1))),
        ...(tp.length ? { direct_per_partition_s: r3(median(tp)), overhead_vs_same_decomposition: r3(median(ts) / median(tp) - 1) } : {}),
        ...(tu1.length ? { ubatch_one_task_per_partition_s: r3(median(tu1)) } : {}),
        direct_cpu_s: r3(median(cpuDirect)),
        ubatch_stack_cpu_s: r3(median(cpuUbatch)),
        cpu_overhead: r3(median(cpuUbatch) / median(cpuDirect) - 1),
        // per process, medians: nats-server, coordinator, worker 1, worker 2, ...
        ubatch_cpu_by_process_s: (cpuBy[0] ?? []).map((_, k) => r3(median(cpuBy.map((x) => x[k]!)))),
        direct_runs: td.map(r3),
        ubatch_runs: ts.map(r3),
        ...(tp.length ? { direct_per_partition_runs: tp.map(r3) } : {}),
        ...(tu1.length ? { ubatch_one_task_per_partition_runs: tu1.map(r3) } : {}),
        ...(VARIANTS.length ? { variants: VARIANTS.map((v, k) => ({ params: v, ubatch_s: r3(median(tv[k]!)), overhead_vs_single_query: r3(median(tv[k]!) / median(td) - 1), runs: tv[k]!.map(r3) })) } : {}),
        loadavg: loads,
        timeline,
      };
      console.log(JSON.stringify(r));
      console.error(`one DuckDB query (2 threads): ${r.direct_s} s; ubatch (${r.map_tasks} map tasks on 2 workers x 1 slot, ledger, provenance, commit): ${r.ubatch_s} s; overhead vs one query ${(r.overhead_vs_single_query * 100).toFixed(1)}% (paired per repeat ${(r.paired_overhead_vs_single_query * 100).toFixed(1)}%)`);
    } finally {
      await stack.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
