/**
 * catalog.sql overhead (issue 2): the same colour–magnitude query over the
 * same HATS partitions, run directly in DuckDB (one query over all leaf files,
 * 2 threads) and through ubatch (2 worker processes x 1 slot, DuckDB 1 thread
 * each, map per partition + reduce), alternated, medians compared.
 *
 *   make build && node dist/bench/catalog-sql.js [--rows 2000000] [--repeats 3]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { hats, survey } from '../astro/index.js';
import { startLocalStack } from '../ops/stack.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '2000000' }, repeats: { type: 'string', default: '3' }, 'rows-per-partition': { type: 'string', default: '100000' } } });
const MAP = 'SELECT floor((g_mag - r_mag) / 0.1) * 0.1 AS gr, floor(r_mag / 0.5) * 0.5 AS r, count(*) AS n FROM partition WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL';
const REDUCE = 'SELECT gr, r, sum(n) AS n FROM partials GROUP BY ALL ORDER BY ALL';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function direct(files: string[], out: string): Promise<number> {
  const t0 = performance.now();
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await inst.connect();
  const list = files.map((f) => `'${f}'`).join(',');
  await c.run(`COPY (SELECT floor((g_mag - r_mag) / 0.1) * 0.1 AS gr, floor(r_mag / 0.5) * 0.5 AS r, count(*) AS n FROM read_parquet([${list}]) WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL ORDER BY ALL) TO '${out}' (FORMAT parquet)`);
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
      const ts: number[] = [];
      const td: number[] = [];
      for (let i = 0; i < Number(values.repeats); i++) {
        td.push(await direct(files, join(dir, `direct-${i}.parquet`)));
        const t0 = performance.now();
        const sub = await c.submit({ kind: 'catalog.sql', input: { catalog: catDir }, params: { map: MAP, reduce: REDUCE }, output: { path: join(dir, `ubatch-${i}.parquet`) } });
        const info = await c.wait(sub.jobId, { timeoutMs: 600_000 });
        if (info.state !== 'succeeded') throw new Error(`job ${sub.jobId} ${info.state}: ${info.error}`);
        ts.push((performance.now() - t0) / 1000);
      }
      const r = { bench: 'catalog.sql-overhead', rows: Number(values.rows), partitions: cat.partitions.length, direct_s: +median(td).toFixed(3), ubatch_s: +median(ts).toFixed(3), overhead: +(median(ts) / median(td) - 1).toFixed(3), direct_runs: td.map((x) => +x.toFixed(3)), ubatch_runs: ts.map((x) => +x.toFixed(3)) };
      console.log(JSON.stringify(r));
      console.error(`direct DuckDB (2 threads): ${r.direct_s} s; ubatch (2 workers x 1 slot, map+reduce, ledger, provenance): ${r.ubatch_s} s; overhead ${(r.overhead * 100).toFixed(1)}%`);
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
