/**
 * Mesh overhead of the science kinds (issue 4): `periodogram` and `crossmatch`
 * end to end on the embedded stack (nats-server + coordinator + 1 worker
 * process with 1 slot, `node dist/...`) against the bare kernel on the same
 * data in the same run, and against `ubatch run` (ops/local-run.ts: the same
 * executors in this process, no NATS) to separate the cost of the mesh from
 * the executor's own I/O. Runs alternate, medians are compared.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/science-mesh.js [--repeats 3] [--objects 1000] [--left 100000] [--right-objects 1250000]
 *
 * periodogram: `--objects` light curves x ~200 epochs (one band), 10,000 frequencies, fast method, top 3 peaks.
 *   bare kernel = lombScargleBatch over the light curves already in memory (one thread).
 * crossmatch: a `--left`-row Object catalog (the first rows of the right's Object catalog) against a
 *   Gaia-like catalog made from a `--right-objects`-row Object catalog (~0.87 Gaia rows per object),
 *   nearest within 1". bare kernel = SkyIndex build + crossmatch over the positions already in memory.
 * The mesh figure is client-side: submit until the job is closed and its HATS metadata written.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { crossmatch, hats, lombscargle, survey } from '../astro/index.js';
import { runLocally } from '../ops/local-run.js';
import { startLocalStack } from '../ops/stack.js';
import type { JobSpec, UbatchClient } from '../protocol/index.js';
import { closeIdleThreads } from '../worker/executors/thread-pool.js';

const { values: args } = parseArgs({
  options: {
    repeats: { type: 'string', default: '3' },
    objects: { type: 'string', default: '1000' },
    left: { type: 'string', default: '100000' },
    'right-objects': { type: 'string', default: '1250000' },
    only: { type: 'string' },
  },
});
const REPEATS = Number(args.repeats);
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
const files = (cat: hats.HatsCatalog) => `[${cat.partitions.flatMap((p) => p.files).map((f) => `'${f}'`).join(', ')}]`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const emit = (o: Record<string, unknown>) => console.log(JSON.stringify(o));

async function timeMesh(client: UbatchClient, spec: JobSpec): Promise<{ wall: number; tasks: number; rows: number }> {
  const t0 = performance.now();
  const sub = await client.submit(spec);
  const info = await client.wait(sub.jobId, { timeoutMs: 1_800_000 });
  const wall = (performance.now() - t0) / 1000;
  if (info.state !== 'succeeded') throw new Error(`${spec.kind} job ${sub.jobId} ended ${info.state}: ${info.error}`);
  const res = await client.results(sub.jobId);
  return { wall, tasks: sub.tasks, rows: res.files.reduce((s, f) => s + (f.rows ?? 0), 0) };
}

async function timeLocal(spec: JobSpec, out: string): Promise<{ wall: number; rows: number }> {
  const t0 = performance.now();
  const r = await runLocally({ ...spec, output: { path: out } }, { parallel: 1 });
  const wall = (performance.now() - t0) / 1000;
  if (r.state !== 'succeeded') throw new Error(`local ${spec.kind} ended ${r.state}: ${r.error}`);
  await rm(out, { recursive: true, force: true });
  return { wall, rows: r.rows };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-bench-science-'));
  const stack = await startLocalStack({ dir: join(dir, 'stack'), workers: 1, slots: 1, logLevel: 'warn' });
  const summary: string[] = [];
  try {
    const client = await stack.client('bench');
    emit({ event: 'start', cpus: cpus().length, node: process.version, loadavg: loadavg(), repeats: REPEATS });

    if (args.only === undefined || args.only === 'periodogram') {
      // ---------------- periodogram
      const fs = join(dir, 'forced');
      const tg = performance.now();
      const gen = await survey.generateForcedSources(fs, { objects: OBJECTS, seed: 4, bands: ['r'], years: 3, epochs: [180, 220], varFraction: 0.3, maxRowsPerPartition: 50_000 });
      emit({ event: 'generated', what: 'forced_source', objects: OBJECTS, partitions: gen.catalog.partitions.length, seconds: (performance.now() - tg) / 1000 });
      const freq = { min: 0.01, max: 5, n: 10_000 };
      const grid = { fmin: freq.min, df: (freq.max - freq.min) / (freq.n - 1), n: freq.n };
      const spec: JobSpec = { kind: 'periodogram', input: { catalog: fs }, params: { freq, method: 'fast', top_n: 3, min_obs: 10 }, output: { path: '' }, resources: { cores: 1 } };
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
      const kernel: number[] = [];
      const mesh: number[] = [];
      const local: number[] = [];
      for (let rep = 0; rep < REPEATS; rep++) {
        const t0 = performance.now();
        const out = lombscargle.lombScargleBatch(lcs, grid, { method: 'fast', topN: 3 });
        kernel.push((performance.now() - t0) / 1000);
        const m = await timeMesh(client, { ...spec, output: { path: join(dir, `periods-${rep}`) } });
        mesh.push(m.wall);
        const l = await timeLocal(spec, join(dir, `periods-local-${rep}`));
        local.push(l.wall);
        emit({ event: 'run', kind: 'periodogram', rep, kernel_s: kernel.at(-1), mesh_s: m.wall, local_s: l.wall, tasks: m.tasks, curves: out.length, rows_out: m.rows, loadavg: loadavg()[0] });
        await rm(join(dir, `periods-${rep}`), { recursive: true, force: true });
      }
      const k = median(kernel);
      const mm = median(mesh);
      const ll = median(local);
      emit({ event: 'result', kind: 'periodogram', curves: lcs.length, epochs, frequencies: freq.n, kernel_s: k, local_s: ll, mesh_s: mm, overhead_vs_kernel: mm / k - 1, overhead_vs_local: mm / ll - 1 });
      summary.push(`periodogram ${lcs.length} curves x ${epochs.toFixed(0)} epochs x ${freq.n} freqs: kernel ${k.toFixed(2)} s, ubatch run ${ll.toFixed(2)} s, mesh ${mm.toFixed(2)} s -> mesh overhead ${(100 * (mm / k - 1)).toFixed(1)} % vs kernel, ${(100 * (mm / ll - 1)).toFixed(1)} % vs ubatch run`);
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
      const kernel: number[] = [];
      const mesh: number[] = [];
      const local: number[] = [];
      for (let rep = 0; rep < REPEATS; rep++) {
        const t0 = performance.now();
        const pairs = crossmatch.crossmatch(lp, rp, { radiusArcsec: 1 });
        kernel.push((performance.now() - t0) / 1000);
        const m = await timeMesh(client, { ...spec, output: { path: join(dir, `xm-${rep}`) } });
        mesh.push(m.wall);
        const l = await timeLocal(spec, join(dir, `xm-local-${rep}`));
        local.push(l.wall);
        if (m.rows !== pairs.left.length) throw new Error(`mesh found ${m.rows} pairs, the kernel ${pairs.left.length}`);
        emit({ event: 'run', kind: 'crossmatch', rep, kernel_s: kernel.at(-1), mesh_s: m.wall, local_s: l.wall, tasks: m.tasks, pairs: pairs.left.length, loadavg: loadavg()[0] });
        await rm(join(dir, `xm-${rep}`), { recursive: true, force: true });
      }
      const k = median(kernel);
      const mm = median(mesh);
      const ll = median(local);
      emit({ event: 'result', kind: 'crossmatch', left: lp.ra.length, right: rp.ra.length, kernel_s: k, local_s: ll, mesh_s: mm, overhead_vs_kernel: mm / k - 1, overhead_vs_local: mm / ll - 1 });
      summary.push(`crossmatch ${lp.ra.length} x ${rp.ra.length} within 1": kernel ${k.toFixed(2)} s, ubatch run ${ll.toFixed(2)} s, mesh ${mm.toFixed(2)} s -> mesh overhead ${(100 * (mm / k - 1)).toFixed(1)} % vs kernel, ${(100 * (mm / ll - 1)).toFixed(1)} % vs ubatch run`);
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
