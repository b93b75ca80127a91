/**
 * catalog.sql overhead (issue 2): the same colour–magnitude query over the
 * same HATS partitions, run directly in DuckDB (one query over all leaf files,
 * 2 threads) and through ubatch (2 worker processes x 1 slot, DuckDB 1 thread
 * each, map per partition + reduce), alternated, medians compared.
 *
 *   make build && node dist/bench/catalog-sql.js [--query heavy|light] [--rows 4000000] [--rows-per-partition 500000] [--repeats 3]
 *
 * The direct run answers the same question in one DuckDB query (map as a CTE + reduce).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { hats, survey } from '../astro/index.js';
import { startLocalStack } from '../ops/stack.js';
import { readLedger } from '../ledger/index.js';

// light: a colour-magnitude histogram (reads 2 columns); heavy: per-bin colour statistics with exact quantiles (reads 8)
const QUERIES = {
  light: {
    select: 'floor((g_mag - r_mag) / 0.1) * 0.1 AS gr, floor(r_mag / 0.5) * 0.5 AS r, count(*) AS n',
    where: 'g_mag IS NOT NULL AND r_mag IS NOT NULL',
    reduce: 'SELECT gr, r, sum(n) AS n FROM partials GROUP BY ALL ORDER BY ALL',
  },
  heavy: {
    select: "floor((g_mag - r_mag) / 0.05) * 0.05 AS gr, floor(r_mag / 0.25) * 0.25 AS r, extendedness AS ext, count(*) AS n, sum(u_mag - g_mag) AS s_ug, sum(i_mag - z_mag) AS s_iz, quantile_cont(r_magErr, 0.5) AS med_err, quantile_cont(z_mag - y_mag, [0.1, 0.9]) AS q_zy",
    where: 'g_mag IS NOT NULL AND r_mag IS NOT NULL AND u_mag IS NOT NULL AND y_mag IS NOT NULL',
    reduce: 'SELECT gr, r, ext, sum(n) AS n, sum(s_ug) / sum(n) AS mean_ug, sum(s_iz) / sum(n) AS mean_iz FROM partials GROUP BY ALL ORDER BY ALL',
  },
} as const;
const { values } = parseArgs({ options: { rows: { type: 'string', default: '4000000' }, repeats: { type: 'string', default: '3' }, 'rows-per-partition': { type: 'string', default: '500000' }, query: { type: 'string', default: 'heavy' } } });
const Q = QUERIES[values.query as keyof typeof QUERIES];
if (!Q) throw new Error(`--query must be one of ${Object.keys(QUERIES).join(', ')}`);
const MAP = `SELECT ${Q.select} FROM partition WHERE ${Q.where} GROUP BY ALL`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function direct(files: string[], out: string): Promise<number> {
  const t0 = performance.now();
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await inst.connect();
  const list = files.map((f) => `'${f}'`).join(',');
  // the user's whole question in one query: the map over all rows, then the reduce
  await c.run(`COPY (WITH partials AS (SELECT ${Q.select} FROM read_parquet([${list}]) WHERE ${Q.where} GROUP BY ALL) ${Q.reduce}) TO '${out}' (FORMAT parquet)`);
  c.closeSync();
  inst.closeSync();
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

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ubatch-bench-sql-'));
  try {
    const catDir = join(dir, 'object');
    const tg = performance.now();
    await survey.generateObjectCatalog(catDir, { rows: Number(values.rows), seed: 1, maxRowsPerPartition: Number(values['rows-per-partition']) });
    const cat = await hats.openHatsCatalog(catDir);
    const files = cat.partitions.flatMap((p) => p.files);
    console.error(`catalog: ${values.rows} rows, ${cat.partitions.length} partitions (generated in ${((performance.now() - tg) / 1000).toFixed(1)} s)`);
    const stack = await startLocalStack({ dir: join(dir, 'stack'), workers: 2, slots: 1, logLevel: 'warn', writeStackFile: false });
    try {
      const c = await stack.client('bench');
      // warm-up: long-lived workers have DuckDB loaded and the inputs' checksums cached, as in production
      const warm = await c.submit({ kind: 'catalog.sql', input: { catalog: catDir }, params: { map: MAP, reduce: Q.reduce }, output: { path: join(dir, 'warm.parquet') } });
      await c.wait(warm.jobId, { timeoutMs: 600_000 });
      await direct(files, join(dir, 'warm-direct.parquet'));
      const ts: number[] = [];
      const td: number[] = [];
      const tp: number[] = [];
      for (let i = 0; i < Number(values.repeats); i++) {
        // alternate the order so neither side always runs first
        td.push(await direct(files, join(dir, `direct-${i}.parquet`)));
        const pd = join(dir, `pp-${i}`);
        await import('node:fs/promises').then((f) => f.mkdir(pd, { recursive: true }));
        tp.push(await directPerPartition(files, pd));
        const t0 = performance.now();
        const sub = await c.submit({ kind: 'catalog.sql', input: { catalog: catDir }, params: { map: MAP, reduce: Q.reduce }, output: { path: join(dir, `ubatch-${i}.parquet`) } });
        const info = await c.wait(sub.jobId, { timeoutMs: 600_000 });
        if (info.state !== 'succeeded') throw new Error(`job ${sub.jobId} ${info.state}: ${info.error}`);
        ts.push((performance.now() - t0) / 1000);
      }
      const nc = await stack.connect();
      const walls: number[] = [];
      const gaps: number[] = [];
      for (const rec of await readLedger(nc)) if (rec.entry.kind === 'task.charged') for (const ch of rec.entry.charges) { walls.push(ch.usage.wallSeconds); gaps.push((Date.parse(ch.provenance.endedAt) - Date.parse(ch.provenance.startedAt)) / 1000); }
      console.error(`task wall seconds: median ${median(walls).toFixed(3)}, max ${Math.max(...walls).toFixed(3)} over ${walls.length} tasks`);
      const r = { bench: 'catalog.sql-overhead', query: values.query, rows: Number(values.rows), partitions: cat.partitions.length, direct_s: +median(td).toFixed(3), direct_per_partition_s: +median(tp).toFixed(3), ubatch_s: +median(ts).toFixed(3), overhead_vs_same_decomposition: +(median(ts) / median(tp) - 1).toFixed(3), overhead_vs_single_query: +(median(ts) / median(td) - 1).toFixed(3), direct_per_partition_runs: tp.map((x) => +x.toFixed(3)), direct_runs: td.map((x) => +x.toFixed(3)), ubatch_runs: ts.map((x) => +x.toFixed(3)) };
      console.log(JSON.stringify(r));
      console.error(`one DuckDB query (2 threads): ${r.direct_s} s; same map-per-partition + reduce in 2 bare DuckDBs: ${r.direct_per_partition_s} s; ubatch (2 workers x 1 slot, ledger, provenance, commit): ${r.ubatch_s} s; overhead vs the same decomposition ${(r.overhead_vs_same_decomposition * 100).toFixed(1)}%, vs one query ${(r.overhead_vs_single_query * 100).toFixed(1)}%`);
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
