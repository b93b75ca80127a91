/**
 * Mesh overhead of the science kinds (issue 4): `periodogram` and `crossmatch`
 * end to end on the embedded stack (nats-server + coordinator + 1 worker
 * process with 1 slot, `node dist/...`) against the bare kernel on the same
 * data in the same run, and against `ubatch run` (ops/local-run.ts: the same
 * executors in this process, no NATS) to separate the cost of the mesh from
 * the executor's own I/O. Runs alternate, medians are compared.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/science-mesh.js [--repeats 3] [--warmup 2] [--objects 1000] [--left 100000] [--right-objects 1250000]
 *
 * periodogram: `--objects` light curves x ~200 epochs (one band), 10,000 frequencies, fast method, top 3 peaks.
 *   bare kernel = lombScargleBatch over the light curves already in memory (one thread).
 * crossmatch: a `--left`-row Object catalog (the first rows of the right's Object catalog) against a
 *   Gaia-like catalog made from a `--right-objects`-row Object catalog (~0.87 Gaia rows per object),
 *   nearest within 1". bare kernel = SkyIndex build + crossmatch over the positions already in memory.
 * Baseline (b), the kernel plus reading the same Parquet in the bench process, is run through DuckDB's default
 * threads and through 1 thread (as the worker reads) in every repeat; the faster is that repeat's (b).
 * The mesh figure is client-side: submit until the job is closed and its HATS metadata written.
 * Before each timed step the bench pauses, and before a mesh job it also collects its own garbage
 * (`settle`): the baselines leave hundreds of MB of arrays behind, and a major GC of the bench process
 * during the mesh job competed with the worker for the 2 cores (the same crossmatch job took
 * 0.84-0.96 s on a stack with an idle client and 1.25-1.64 s inside the bench before this).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { crossmatch, hats, lombscargle, survey, tables } from '../astro/index.js';
import { runLocally } from '../ops/local-run.js';
import { readLedger } from '../ledger/index.js';
import { startLocalStack, type LocalStack } from '../ops/stack.js';
import type { JobSpec, UbatchClient } from '../protocol/index.js';
import { closeIdleThreads } from '../worker/executors/thread-pool.js';

const { values: args } = parseArgs({
  options: {
    repeats: { type: 'string', default: '3' },
    /** first runs of each kind left out of the medians (first job on a fresh worker: thread start, JIT, input hash cache) */
    warmup: { type: 'string', default: '2' },
    objects: { type: 'string', default: '1000' },
    left: { type: 'string', default: '100000' },
    'right-objects': { type: 'string', default: '1250000' },
    only: { type: 'string' },
    /** periodogram method: fast | exact */
    method: { type: 'string', default: 'fast' },
    /** comma-separated worker slot counts for the periodogram scaling mode (e.g. 1,2,4); runs only that */
    slots: { type: 'string' },
  },
});
// a full GC on demand without --expose-gc on the command line
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
/**
 * Let the machine go quiet before a timed step. Before a mesh job (`gc: true`) the bench process also collects its
 * garbage, so that it does not run a major GC on the cores the worker is using; the in-process steps keep their warm
 * heap (a forced GC right before them shrank V8's heap and made them slower, by ≈ 0.3 s for the crossmatch baseline).
 */
async function settle(o: { gc?: boolean } = {}): Promise<void> {
  if (o.gc) collect();
  await new Promise((r) => setTimeout(r, 300));
}
const METHOD = args.method === 'exact' ? 'exact' : 'fast';
const REPEATS = Number(args.repeats);
const WARMUP = Number(args.warmup);
const OBJECTS = Number(args.objects);
const LEFT = Number(args.left);
const RIGHT_OBJECTS = Number(args['right-objects']);

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    c.closeSync();
    inst.closeSync();
  }
}
/**
 * Baseline (b) is measured twice per repeat: through the process's shared DuckDB (DuckDB's default, a thread per core:
 * what a user's script gets) and through a DuckDB with 1 thread (what the worker's kernels read with, worker/daemon.ts);
 * the faster of the two is the repeat's baseline, so the mesh is compared against the best a script here can do.
 */
let duck1: Promise<DuckDBInstance> | undefined;
async function withDuck1<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  duck1 ??= DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await (await duck1).connect();
  try {
    return await fn(conn);
  } finally {
    conn.closeSync();
  }
}
async function baselineB<T>(t: Series, read: (withConn: typeof withDuck1) => Promise<T>): Promise<T> {
  let out: T | undefined;
  const runs: [number, number][] = [];
  for (const via of [hats.withDuck, withDuck1]) {
    await settle();
    const cb = process.cpuUsage();
    const tb = performance.now();
    out = await read(via);
    runs.push([(performance.now() - tb) / 1000, cpuSince(cb)]);
  }
  const best = runs[0]![0] <= runs[1]![0] ? runs[0]! : runs[1]!;
  t.withRead.push(best[0]);
  t.withReadCpu.push(best[1]);
  t.withReadDefault.push(runs[0]![0]);
  t.withReadOne.push(runs[1]![0]);
  return out!;
}
const files = (cat: hats.HatsCatalog) => `[${cat.partitions.flatMap((p) => p.files).map((f) => `'${f}'`).join(', ')}]`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const emit = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

/** CPU seconds of this process (all its threads) since `from`. */
const cpuSince = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
};

/**
 * CPU seconds the worker charged to a job's tasks (ledger task.charged: the worker process's CPU, sliced per task), and
 * the job's timeline in ms after the client sent the submit: each task's start and end, the close (ledger times, ms).
 */
async function chargedCpu(stack: LocalStack, jobId: string, sentAt: number): Promise<{ cpu: number; timeline: Record<string, unknown> }> {
  const nc = await stack.connect();
  let cpu = 0;
  const tasks: [number, number][] = [];
  let closed: number | undefined;
  for (const rec of await readLedger(nc)) {
    if (rec.entry.kind === 'task.charged') {
      for (const ch of rec.entry.charges) {
        if (ch.jobId !== jobId) continue;
        cpu += ch.usage.cpuSeconds;
        tasks.push([Date.parse(ch.provenance.startedAt) - sentAt, Date.parse(ch.provenance.endedAt) - sentAt]);
      }
    } else if (rec.entry.kind === 'job.closed' && rec.entry.jobId === jobId) closed = Date.parse(rec.entry.ts) - sentAt;
  }
  await nc.close();
  return { cpu, timeline: { tasks_ms: tasks, ...(closed !== undefined ? { closed_ms: closed } : {}) } };
}

async function timeMesh(stack: LocalStack, client: UbatchClient, spec: JobSpec): Promise<{ wall: number; cpu: number; tasks: number; rows: number; timeline: Record<string, unknown> }> {
  const t0 = performance.now();
  const sentAt = Date.now();
  const sub = await client.submit(spec);
  const replyMs = Date.now() - sentAt;
  const info = await client.wait(sub.jobId, { timeoutMs: 1_800_000 });
  const wall = (performance.now() - t0) / 1000;
  const doneMs = Date.now() - sentAt;
  if (info.state !== 'succeeded') throw new Error(`${spec.kind} job ${sub.jobId} ended ${info.state}: ${info.error}`);
  const res = await client.results(sub.jobId);
  const { cpu, timeline } = await chargedCpu(stack, sub.jobId, sentAt);
  return { wall, cpu, tasks: sub.tasks, rows: res.files.reduce((s, f) => s + (f.rows ?? 0), 0), timeline: { submit_reply_ms: replyMs, ...timeline, client_done_ms: doneMs } };
}

async function timeLocal(spec: JobSpec, out: string): Promise<{ wall: number; cpu: number; rows: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await runLocally({ ...spec, output: { path: out } }, { parallel: 1 });
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSince(c0);
  if (r.state !== 'succeeded') throw new Error(`local ${spec.kind} ended ${r.state}: ${r.error}`);
  await rm(out, { recursive: true, force: true });
  return { wall, cpu, rows: r.rows };
}

interface Series {
  kernel: number[];
  kernelCpu: number[];
  /** baseline (b): kernel plus reading the same Parquet in this process (the faster of the two DuckDB set-ups, per repeat) */
  withRead: number[];
  withReadCpu: number[];
  /** (b) through DuckDB's default threads, and through 1 thread */
  withReadDefault: number[];
  withReadOne: number[];
  mesh: number[];
  meshCpu: number[];
  local: number[];
  localCpu: number[];
}
const series = (): Series => ({ kernel: [], kernelCpu: [], withRead: [], withReadCpu: [], withReadDefault: [], withReadOne: [], mesh: [], meshCpu: [], local: [], localCpu: [] });
function verdict(kind: string, what: string, s: Series): { line: string; json: Record<string, number> } {
  const m = (xs: number[]) => median(xs);
  const j = {
    kernel_s: m(s.kernel), local_s: m(s.local), mesh_s: m(s.mesh),
    kernel_cpu_s: m(s.kernelCpu), local_cpu_s: m(s.localCpu), mesh_cpu_s: m(s.meshCpu),
    overhead_wall_vs_kernel: m(s.mesh) / m(s.kernel) - 1, overhead_wall_vs_local: m(s.mesh) / m(s.local) - 1,
    overhead_cpu_vs_kernel: m(s.meshCpu) / m(s.kernelCpu) - 1,
    kernel_with_read_s: m(s.withRead), kernel_with_read_cpu_s: m(s.withReadCpu),
    kernel_with_read_default_threads_s: m(s.withReadDefault), kernel_with_read_one_thread_s: m(s.withReadOne),
    overhead_wall_vs_kernel_with_read: m(s.mesh) / m(s.withRead) - 1,
    overhead_cpu_vs_kernel_with_read: m(s.meshCpu) / m(s.withReadCpu) - 1,
    // medians of the per-repeat ratios (each mesh run against the baselines of the same repeat)
    paired_cpu_vs_kernel: m(s.meshCpu.map((x, i) => x / s.kernelCpu[i]! - 1)),
    paired_cpu_vs_kernel_with_read: m(s.meshCpu.map((x, i) => x / s.withReadCpu[i]! - 1)),
    paired_wall_vs_kernel_with_read: m(s.mesh.map((x, i) => x / s.withRead[i]! - 1)),
  };
  const pc = (x: number) => `${(100 * x).toFixed(1)} %`;
  return {
    json: j,
    line: `${kind} ${what}: wall kernel ${j.kernel_s.toFixed(2)} s / ubatch run ${j.local_s.toFixed(2)} s / mesh ${j.mesh_s.toFixed(2)} s; ` +
      `CPU kernel ${j.kernel_cpu_s.toFixed(2)} s / ubatch run ${j.local_cpu_s.toFixed(2)} s / mesh worker ${j.mesh_cpu_s.toFixed(2)} s -> ` +
      `mesh overhead ${pc(j.overhead_wall_vs_kernel)} wall and ${pc(j.overhead_cpu_vs_kernel)} CPU vs (a) kernel on data in memory; ` +
      `${pc(j.overhead_wall_vs_kernel_with_read)} wall and ${pc(j.overhead_cpu_vs_kernel_with_read)} CPU vs (b) kernel + reading the Parquet (${j.kernel_with_read_s.toFixed(2)} s / ${j.kernel_with_read_cpu_s.toFixed(2)} s CPU); ${pc(j.overhead_wall_vs_local)} wall vs ubatch run; ` +
      `paired per repeat (median): CPU ${pc(j.paired_cpu_vs_kernel)} vs (a), ${pc(j.paired_cpu_vs_kernel_with_read)} vs (b), wall ${pc(j.paired_wall_vs_kernel_with_read)} vs (b); medians of ${s.mesh.length} repeats after ${WARMUP} warm-up`,
  };
}

/**
 * --slots 1,2,4: the periodogram job (same data and spec as above, resources.cores 1 per task)
 * on one worker process with N slots, N tasks at a time; a fresh stack per N. The machine's core
 * count bounds the speed-up (4 slots on 2 cores cannot exceed 2x).
 */
async function slotScaling(list: number[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-bench-slots-'));
  const lines: string[] = [];
  try {
    const fs = join(dir, 'forced');
    // smaller partitions than the overhead run, so that there are enough tasks to spread over the slots
    const gen = await survey.generateForcedSources(fs, { objects: OBJECTS, seed: 4, bands: ['r'], years: 3, epochs: [180, 220], varFraction: 0.3, maxRowsPerPartition: 20_000 });
    emit({ event: 'generated', what: 'forced_source', objects: OBJECTS, partitions: gen.catalog.partitions.length, cpus: cpus().length, loadavg: loadavg() });
    const freq = { min: 0.01, max: 5, n: 10_000 };
    let base = 0;
    for (const slots of list) {
      const stack = await startLocalStack({ dir: join(dir, `stack-${slots}`), workers: 1, slots, logLevel: 'warn' });
      try {
        const client = await stack.client('bench');
        const walls: number[] = [];
        const cpusUsed: number[] = [];
        for (let rep = 0; rep < REPEATS; rep++) {
          const m = await timeMesh(stack, client, { kind: 'periodogram', input: { catalog: fs }, params: { freq, method: METHOD, top_n: 3 }, output: { path: join(dir, `out-${slots}-${rep}`) }, resources: { cores: 1 } });
          walls.push(m.wall);
          cpusUsed.push(m.cpu);
          emit({ event: 'run', kind: 'periodogram-slots', method: METHOD, slots, rep, mesh_s: m.wall, mesh_cpu_s: m.cpu, tasks: m.tasks, loadavg: loadavg()[0] });
          await rm(join(dir, `out-${slots}-${rep}`), { recursive: true, force: true });
        }
        const w = median(walls);
        if (base === 0) base = w;
        emit({ event: 'result', kind: 'periodogram-slots', method: METHOD, slots, mesh_s: w, mesh_cpu_s: median(cpusUsed), speedup_vs_first: base / w });
        lines.push(`periodogram ${METHOD}, ${slots} slot(s): mesh ${w.toFixed(2)} s wall (median of ${REPEATS}), worker CPU ${median(cpusUsed).toFixed(2)} s, speed-up ${(base / w).toFixed(2)}x vs ${list[0]} slot(s); load ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`);
      } finally {
        await stack.stop();
      }
    }
  } finally {
    await closeIdleThreads();
    await rm(dir, { recursive: true, force: true });
  }
  console.log('\n' + lines.join('\n'));
}

async function main(): Promise<void> {
  if (args.slots !== undefined) return slotScaling(args.slots.split(',').map(Number));
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-bench-science-'));
  const stack = await startLocalStack({ dir: join(dir, 'stack'), workers: 1, slots: 1, logLevel: 'warn' });
  const summary: string[] = [];
  try {
    const client = await stack.client('bench');
    emit({ event: 'start', cpus: cpus().length, node: process.version, loadavg: loadavg(), repeats: REPEATS, warmup: WARMUP });

    if (args.only === undefined || args.only === 'periodogram') {
      // ---------------- periodogram
      const fs = join(dir, 'forced');
      const tg = performance.now();
      const gen = await survey.generateForcedSources(fs, { objects: OBJECTS, seed: 4, bands: ['r'], years: 3, epochs: [180, 220], varFraction: 0.3, maxRowsPerPartition: 50_000 });
      emit({ event: 'generated', what: 'forced_source', objects: OBJECTS, partitions: gen.catalog.partitions.length, seconds: (performance.now() - tg) / 1000 });
      const freq = { min: 0.01, max: 5, n: 10_000 };
      const grid = { fmin: freq.min, df: (freq.max - freq.min) / (freq.n - 1), n: freq.n };
      const spec: JobSpec = { kind: 'periodogram', input: { catalog: fs }, params: { freq, method: METHOD, top_n: 3, min_obs: 10 }, output: { path: '' }, resources: { cores: 1 } };
      const rows = await query(`SELECT objectId, mjd, flux, fluxErr FROM read_parquet(${files(gen.catalog)}) ORDER BY objectId, band, mjd, flux, fluxErr`);
      const byObj = new Map<string, { t: number[]; y: number[]; dy: number[] }>();
      for (const r of rows) {
        const k = String(r.objectId);
        let lc = byObj.get(k);
        if (!lc) byObj.set(k, (lc = { t: [], y: [], dy: [] }));
        lc.t.push(r.mjd as number);
        lc.y.push(r.flux as number);
        lc.dy.push(r.fluxErr as number);
      }
      const lcs = [...byObj.values()].map((l) => ({ t: Float64Array.from(l.t), y: Float64Array.from(l.y), dy: Float64Array.from(l.dy) }));
      const epochs = rows.length / lcs.length;
      const s = series();
      for (let rep = 0; rep < WARMUP + REPEATS; rep++) {
        const t = rep < WARMUP ? series() : s;
        // (b) what a user writes by hand: read the same Parquet files (DuckDB, columnar into typed arrays), group, run the kernel
        const outB = await baselineB(t, (via) => via(async (conn) => {
          const r = await tables.readColumns(conn, `SELECT CAST(objectId AS BIGINT), mjd, flux, fluxErr FROM read_parquet(${files(gen.catalog)}) ORDER BY objectId, band, mjd, flux, fluxErr`, ['i64', 'f64', 'f64', 'f64'] as const);
          const [id, t, y, dy] = r.columns;
          const curves: lombscargle.LightCurve[] = [];
          for (let i = 0; i < r.rows; ) {
            let j = i;
            while (j < r.rows && id[j] === id[i]) j++;
            curves.push({ t: t.slice(i, j), y: y.slice(i, j), dy: dy.slice(i, j) });
            i = j;
          }
          return lombscargle.lombScargleBatch(curves, grid, { method: METHOD, topN: 3 });
        }));
        await settle();
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const out = lombscargle.lombScargleBatch(lcs, grid, { method: METHOD, topN: 3 });
        if (outB.length !== out.length) throw new Error(`baseline (b) found ${outB.length} curves, (a) ${out.length}`);
        t.kernel.push((performance.now() - t0) / 1000);
        t.kernelCpu.push(cpuSince(c0));
        await settle({ gc: true });
        const m = await timeMesh(stack, client, { ...spec, output: { path: join(dir, `periods-${rep}`) } });
        t.mesh.push(m.wall);
        t.meshCpu.push(m.cpu);
        await settle();
        const l = await timeLocal(spec, join(dir, `periods-local-${rep}`));
        t.local.push(l.wall);
        t.localCpu.push(l.cpu);
        emit({ event: 'run', kind: 'periodogram', method: METHOD, rep, warmup: rep < WARMUP, kernel_s: t.kernel.at(-1), kernel_cpu_s: t.kernelCpu.at(-1), kernel_with_read_s: t.withRead.at(-1), kernel_with_read_cpu_s: t.withReadCpu.at(-1), kernel_with_read_by_threads_s: [t.withReadDefault.at(-1), t.withReadOne.at(-1)], mesh_s: m.wall, mesh_cpu_s: m.cpu, local_s: l.wall, local_cpu_s: l.cpu, tasks: m.tasks, curves: out.length, rows_out: m.rows, loadavg: loadavg()[0], timeline: m.timeline });
        await rm(join(dir, `periods-${rep}`), { recursive: true, force: true });
      }
      const v = verdict('periodogram', `${METHOD}, ${lcs.length} curves x ${epochs.toFixed(0)} epochs x ${freq.n} freqs`, s);
      emit({ event: 'result', kind: 'periodogram', curves: lcs.length, epochs, frequencies: freq.n, ...v.json });
      summary.push(v.line);
    }

    if (args.only === undefined || args.only === 'crossmatch') {
      // ---------------- crossmatch
      const region = { raMin: 30, raMax: 40, decMin: -40, decMax: -30 };
      const objectsAll = join(dir, 'objects-all');
      const left = join(dir, 'objects-left');
      const gaia = join(dir, 'gaia');
      const tg = performance.now();
      await survey.generateObjectCatalog(objectsAll, { rows: RIGHT_OBJECTS, seed: 8, region, maxRowsPerPartition: 150_000 });
      // counter-based generator: the first LEFT rows of the same seed and region are the same objects
      await survey.generateObjectCatalog(left, { rows: LEFT, seed: 8, region, maxRowsPerPartition: 20_000 });
      const g = await survey.generateGaiaLike(gaia, { objectCatalog: objectsAll, seed: 9, maxRowsPerPartition: 150_000 });
      const leftCat = await hats.openHatsCatalog(left, { margin: false });
      emit({ event: 'generated', what: 'crossmatch inputs', left_partitions: leftCat.partitions.length, right_partitions: g.partitions.length, seconds: (performance.now() - tg) / 1000 });
      const L = await query(`SELECT ra, dec FROM read_parquet(${files(leftCat)})`);
      const R = await query(`SELECT ra, dec FROM read_parquet(${files(g)})`);
      const lp = { ra: Float64Array.from(L, (r) => r.ra as number), dec: Float64Array.from(L, (r) => r.dec as number) };
      const rp = { ra: Float64Array.from(R, (r) => r.ra as number), dec: Float64Array.from(R, (r) => r.dec as number) };
      const spec: JobSpec = { kind: 'crossmatch', input: { left, right: gaia }, params: { radius_arcsec: 1, k: 1 }, output: { path: '' }, resources: { cores: 1 } };
      const s = series();
      for (let rep = 0; rep < WARMUP + REPEATS; rep++) {
        const t = rep < WARMUP ? series() : s;
        // (b) by hand: read both sides' positions from the same Parquet files (DuckDB, columnar into typed arrays), match
        const pairsB = await baselineB(t, (via) => via(async (conn) => {
          const a = await tables.readColumns(conn, `SELECT ra, dec FROM read_parquet(${files(leftCat)})`, ['f64', 'f64'] as const);
          const b = await tables.readColumns(conn, `SELECT ra, dec FROM read_parquet(${files(g)})`, ['f64', 'f64'] as const);
          return crossmatch.crossmatch({ ra: a.columns[0], dec: a.columns[1] }, { ra: b.columns[0], dec: b.columns[1] }, { radiusArcsec: 1 });
        }));
        await settle();
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const pairs = crossmatch.crossmatch(lp, rp, { radiusArcsec: 1 });
        if (pairsB.left.length !== pairs.left.length) throw new Error(`baseline (b) found ${pairsB.left.length} pairs, (a) ${pairs.left.length}`);
        t.kernel.push((performance.now() - t0) / 1000);
        t.kernelCpu.push(cpuSince(c0));
        await settle({ gc: true });
        const m = await timeMesh(stack, client, { ...spec, output: { path: join(dir, `xm-${rep}`) } });
        t.mesh.push(m.wall);
        t.meshCpu.push(m.cpu);
        await settle();
        const l = await timeLocal(spec, join(dir, `xm-local-${rep}`));
        t.local.push(l.wall);
        t.localCpu.push(l.cpu);
        if (m.rows !== pairs.left.length) throw new Error(`mesh found ${m.rows} pairs, the kernel ${pairs.left.length}`);
        emit({ event: 'run', kind: 'crossmatch', rep, warmup: rep < WARMUP, kernel_s: t.kernel.at(-1), kernel_cpu_s: t.kernelCpu.at(-1), kernel_with_read_s: t.withRead.at(-1), kernel_with_read_cpu_s: t.withReadCpu.at(-1), kernel_with_read_by_threads_s: [t.withReadDefault.at(-1), t.withReadOne.at(-1)], mesh_s: m.wall, mesh_cpu_s: m.cpu, local_s: l.wall, local_cpu_s: l.cpu, tasks: m.tasks, pairs: pairs.left.length, loadavg: loadavg()[0], timeline: m.timeline });
        await rm(join(dir, `xm-${rep}`), { recursive: true, force: true });
      }
      const v = verdict('crossmatch', `${lp.ra.length} x ${rp.ra.length} within 1"`, s);
      emit({ event: 'result', kind: 'crossmatch', left: lp.ra.length, right: rp.ra.length, ...v.json });
      summary.push(v.line);
    }
  } finally {
    await stack.stop();
    await closeIdleThreads();
    await rm(dir, { recursive: true, force: true });
  }
  console.log('\n' + summary.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
