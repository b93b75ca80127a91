/**
 * HATS benchmark: the synthetic Object catalog generator (1,000,000 rows by
 * default) written as a HATS catalog, opening it, and cone planning; side by
 * side in the same run with two references:
 *   - the same generator SELECT written by DuckDB as ONE Parquet file (no
 *     _healpix_29, no partitioning): the floor for "generate + write";
 *   - healpy.ang2pix(2**29, ..., nest=True, lonlat=True) on the same 1e6
 *     positions (Debian's /usr/bin/python3), against our order-29 index as a
 *     DuckDB scalar function: the cost of the _healpix_29 column.
 *
 * Run (from the repository root):
 *   npx tsc -p tsconfig.json && node dist/bench/hats.js
 * or, when other rooms' files do not compile yet, compile just this benchmark:
 *   npx tsc --outDir /tmp/hats-build --rootDir . --module NodeNext --moduleResolution NodeNext \
 *     --target ES2022 --strict --noUncheckedIndexedAccess --skipLibCheck --types node bench/hats.ts
 *   ln -sfn "$PWD/node_modules" /tmp/hats-build/node_modules && node /tmp/hats-build/bench/hats.js
 * Options (env): HATS_ROWS (1000000), HATS_MAX_ROWS (100000), HATS_REPEAT (3), HATS_PYTHON (/usr/bin/python3).
 * Output: one JSON line per measurement, then a human summary. Reports the load
 * average too: on a shared 2-core machine the figures move with it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHatsCatalog, partitionsInCone, readParquetSql, registerHealpix29, withDuck } from '../astro/hats/index.js';
import { compileObjectCatalogOptions, generateObjectCatalog, objectCatalogSql } from '../astro/survey/index.js';

const rows = Number(process.env.HATS_ROWS ?? 1_000_000);
const maxRows = Number(process.env.HATS_MAX_ROWS ?? 100_000);
const repeat = Number(process.env.HATS_REPEAT ?? 3);
const python = process.env.HATS_PYTHON ?? '/usr/bin/python3';

interface Measure {
  what: string;
  ms: number[];
  cpuMs?: number[];
}
const results: Measure[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function emit(what: string, ms: number[], extra: Record<string, unknown> = {}, cpuMs?: number[]): void {
  results.push(cpuMs ? { what, ms, cpuMs } : { what, ms });
  const cpu = cpuMs ? { median_cpu_ms: Math.round(median(cpuMs)), runs_cpu_ms: cpuMs.map(Math.round) } : {};
  console.log(JSON.stringify({ bench: 'hats', what, rows, median_ms: Math.round(median(ms)), runs_ms: ms.map(Math.round), ...cpu, load: loadavg()[0], ...extra }));
}

/** Wall and process CPU time (user + system, all DuckDB threads included) of `fn`. */
async function timed(fn: () => Promise<unknown>): Promise<{ ms: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t = performance.now();
  await fn();
  const ms = performance.now() - t;
  const c = process.cpuUsage(c0);
  return { ms, cpuMs: (c.user + c.system) / 1000 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hats-bench-'));
  try {
    // 1. generate + write as HATS (ours)
    const gen: number[] = [];
    const genCpu: number[] = [];
    let partitions = 0;
    for (let i = 0; i < repeat; i++) {
      const out = join(dir, `obj${i}`);
      const r = await timed(async () => {
        const cat = await generateObjectCatalog(out, { rows, seed: 42, maxRowsPerPartition: maxRows });
        partitions = cat.partitions.length;
        if (cat.totalRows !== rows) throw new Error(`generated ${cat.totalRows} rows, wanted ${rows}`);
      });
      gen.push(r.ms);
      genCpu.push(r.cpuMs);
      if (i > 0) rmSync(out, { recursive: true });
    }
    emit('generateObjectCatalog (HATS, zstd)', gen, { partitions, max_rows_per_partition: maxRows }, genCpu);

    // 2. reference: same SELECT straight to one Parquet file
    const sql = objectCatalogSql(compileObjectCatalogOptions({ rows, seed: 42 }));
    const flat: number[] = [];
    const flatCpu: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const r = await timed(() => withDuck((c) => c.run(`COPY (${sql}) TO '${join(dir, 'flat.parquet')}' (FORMAT parquet, COMPRESSION zstd)`)));
      flat.push(r.ms);
      flatCpu.push(r.cpuMs);
    }
    emit('reference: DuckDB COPY of the same SELECT to one Parquet file', flat, {}, flatCpu);

    // 3. _healpix_29: our DuckDB scalar function vs healpy on the same positions
    const radec = join(dir, 'radec.parquet');
    await withDuck((c) => c.run(`COPY (SELECT ra, dec FROM ${readParquetSql([join(dir, 'flat.parquet')])}) TO '${radec}' (FORMAT parquet)`));
    const ours: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t = performance.now();
      await withDuck(async (c) => {
        registerHealpix29(c);
        await c.runAndReadAll(`SELECT sum(hats_healpix29(ra, dec) % 1000) FROM '${radec}'`);
      });
      ours.push(performance.now() - t);
    }
    emit('_healpix_29 via hats_healpix29() in DuckDB (1 row = 1 ang2pixBig)', ours);
    if (existsSync(python)) {
      const bin = join(dir, 'radec.bin');
      await withDuck((c) => c.run(`COPY (SELECT ra, dec FROM '${radec}') TO '${join(dir, 'radec.csv')}' (HEADER false)`));
      const code = [
        'import sys, time, numpy as np, healpy as hp',
        'a = np.loadtxt(sys.argv[1], delimiter=",")',
        'ts = []',
        `for _ in range(${repeat}):`,
        '    t = time.perf_counter(); p = hp.ang2pix(2**29, a[:,0], a[:,1], nest=True, lonlat=True); ts.append((time.perf_counter() - t) * 1000)',
        'print(" ".join(str(x) for x in ts))',
      ].join('\n');
      const r = spawnSync(python, ['-c', code, join(dir, 'radec.csv'), bin], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
      if (r.status === 0) emit('reference: healpy.ang2pix(2**29) on the same positions (numpy arrays in memory)', r.stdout.trim().split(' ').map(Number));
      else console.error(`healpy reference skipped: ${r.stderr.trim().split('\n').at(-1)}`);
    }

    // 4. open + cone planning on the generated catalog
    const open: number[] = [];
    let cat = await openHatsCatalog(join(dir, 'obj0'));
    for (let i = 0; i < repeat; i++) {
      const t = performance.now();
      cat = await openHatsCatalog(join(dir, 'obj0'));
      open.push(performance.now() - t);
    }
    emit('openHatsCatalog (row counts from _metadata)', open, { partitions: cat.partitions.length });
    const cone: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t = performance.now();
      for (let k = 0; k < 1000; k++) partitionsInCone(cat, (k * 37) % 360, ((k * 13) % 170) - 85, 1 + (k % 10));
      cone.push(performance.now() - t);
    }
    emit('partitionsInCone x1000 cones (r = 1..10 deg)', cone);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const by = (w: string) => median(results.find((r) => r.what.startsWith(w))?.ms ?? [NaN]);
  console.log(`\nHATS benchmark, ${rows.toLocaleString()} rows, ${cpus().length} CPUs, load ${loadavg()[0]?.toFixed(1)}`);
  for (const r of results) {
    const cpu = r.cpuMs ? `  (CPU ${median(r.cpuMs).toFixed(0)} ms)` : '';
    console.log(`  ${r.what.padEnd(78)} ${median(r.ms).toFixed(0).padStart(7)} ms${cpu}`);
  }
  const cpuBy = (w: string) => median(results.find((r) => r.what.startsWith(w))?.cpuMs ?? [NaN]);
  console.log(`  ratio generate-as-HATS / plain COPY (wall):     ${(by('generateObjectCatalog') / by('reference: DuckDB COPY')).toFixed(2)}`);
  console.log(`  ratio generate-as-HATS / plain COPY (CPU):      ${(cpuBy('generateObjectCatalog') / cpuBy('reference: DuckDB COPY')).toFixed(2)}`);
  console.log(`  ratio hats_healpix29 / healpy ang2pix(2**29):   ${(by('_healpix_29') / by('reference: healpy')).toFixed(2)}`);
}

await main();
