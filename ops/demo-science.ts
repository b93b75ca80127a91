/**
 * The science steps of `ubatch demo`: a `periodogram` job over a synthetic
 * ForcedSource catalog (best periods against the generator's truth) and a
 * `crossmatch` job of a small Object catalog against a Gaia-like catalog with
 * a margin cache (match counts against the generator's truth ids). Both jobs
 * run at once on the mesh; about 30-60 s on 2 cores.
 */
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { survey } from '../astro/index.js';
import type { JobInfo, JobSpec, UbatchClient } from '../protocol/index.js';

export interface ScienceDemoContext {
  client: UbatchClient;
  /** where inputs are generated and outputs written */
  dir: string;
  log: (line: string) => void;
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await inst.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
}

const sq = (s: string) => `'${s.replaceAll("'", "''")}'`;
const leaves = (dir: string) => `read_parquet(${sq(`${dir}/dataset/**/*.parquet`)}, hive_partitioning = false)`;

async function runJob(client: UbatchClient, spec: JobSpec, log: (line: string) => void): Promise<JobInfo> {
  const sub = await client.submit(spec);
  log(`  submitted ${spec.kind} job ${sub.jobId} (${sub.tasks} tasks)`);
  const info = await client.wait(sub.jobId, { timeoutMs: 600_000 });
  const secs = info.closedAt && info.createdAt ? ` in ${((Date.parse(info.closedAt) - Date.parse(info.createdAt)) / 1000).toFixed(1)} s` : '';
  log(`  ${spec.kind} job ${sub.jobId}: ${info.state}${secs}${info.error ? ` (${info.error})` : ''}`);
  if (info.state !== 'succeeded') throw new Error(`${spec.kind} demo job ${sub.jobId} ended ${info.state}: ${info.error ?? 'no error recorded'}`);
  return info;
}

export async function scienceDemoSteps(ctx: ScienceDemoContext): Promise<void> {
  const { client, dir, log } = ctx;
  log('science: generating a ForcedSource catalog (500 objects, g/r/i, 2 years) and an Object + Gaia-like catalog pair');
  const forced = join(dir, 'forced_source');
  const gen = await survey.generateForcedSources(forced, { objects: 500, seed: 2026, bands: ['g', 'r', 'i'], years: 2, epochs: [80, 160], varFraction: 0.3, maxRowsPerPartition: 15_000 });
  const objects = join(dir, 'xm_object');
  const gaia = join(dir, 'xm_gaia');
  await survey.generateObjectCatalog(objects, { rows: 30_000, seed: 2026, maxRowsPerPartition: 5000, region: { raMin: 50, raMax: 53, decMin: -30, decMax: -27 } });
  await survey.generateGaiaLike(gaia, { objectCatalog: objects, seed: 2027, maxRowsPerPartition: 5000 });

  const periods = join(dir, 'periodogram');
  const matches = join(dir, 'crossmatch');
  const periodogramSpec: JobSpec = {
    kind: 'periodogram',
    name: 'demo periodograms',
    input: { catalog: forced },
    params: { freq: { min: 0.02, max: 3, samples_per_peak: 4 }, method: 'fast', top_n: 3, multiband: true, min_obs: 10 },
    output: { path: periods },
    resources: { cores: 1, memory_mb: 1024, walltime_s: 600 },
  };
  const crossmatchSpec: JobSpec = {
    kind: 'crossmatch',
    name: 'demo object x gaia',
    input: { left: objects, right: gaia },
    params: { radius_arcsec: 1, k: 1, left_columns: ['r_mag'], right_columns: ['phot_g_mean_mag', 'truth_objectId'] },
    output: { path: matches },
    resources: { cores: 1, memory_mb: 1024, walltime_s: 600 },
  };
  log('science: running a periodogram job and a crossmatch job on the mesh');
  await Promise.all([runJob(client, periodogramSpec, log), runJob(client, crossmatchSpec, log)]);

  // periodograms: pooled multiband best period vs the generator's truth
  const rows = await query(
    `SELECT p.objectId, t.type, t.period AS truth, p.best_period AS found, p.power, t.snr FROM ${leaves(periods)} p ` +
      `JOIN read_parquet(${sq(gen.truthPath)}) t USING (objectId) WHERE p.band = 'multiband' AND t.period IS NOT NULL ORDER BY t.snr DESC`,
  );
  const ok = (r: Record<string, unknown>) => {
    const truth = r.truth as number;
    const found = r.found as number;
    const near = (p: number) => Math.abs(found - p) / p < 0.01;
    return near(truth) || (r.type === 'eclipsing' && near(truth / 2));
  };
  const inGrid = rows.filter((r) => (r.truth as number) > 1 / 3 && (r.snr as number) > 30);
  log(`science: periodograms of ${gen.truth.length} objects; ${inGrid.filter(ok).length} of ${inGrid.length} high-S/N variables with P > 0.33 d recovered (eclipsing binaries may show P/2)`);
  log('  objectId             type        truth P (d)  found P (d)  power');
  for (const r of inGrid.slice(0, 6)) {
    log(`  ${String(r.objectId).padEnd(20)} ${String(r.type).padEnd(11)} ${(r.truth as number).toFixed(4).padStart(11)}  ${(r.found as number).toFixed(4).padStart(11)}  ${(r.power as number).toFixed(3)}${ok(r) ? '' : '  (missed)'}`);
  }

  // cross-match: pairs, and how many point back to the object the Gaia row was made from
  const [m] = await query(
    `SELECT count(*)::INTEGER AS pairs, count(DISTINCT left_objectId)::INTEGER AS matched, ` +
      `sum(CASE WHEN right_truth_objectId = left_objectId THEN 1 ELSE 0 END)::INTEGER AS true_pairs, ` +
      `median(separation_arcsec) AS median_sep FROM ${leaves(matches)}`,
  );
  const [g] = await query(`SELECT count(*)::INTEGER AS n, count(truth_objectId)::INTEGER AS with_truth FROM read_parquet(${sq(`${gaia}/dataset/**/*.parquet`)}, hive_partitioning = false)`);
  log(
    `science: cross-match of 30,000 objects x ${g?.n ?? '?'} Gaia-like sources within 1": ${m?.pairs ?? 0} pairs, ` +
      `${m?.true_pairs ?? 0} of them the true counterpart (${g?.with_truth ?? '?'} sources have one), median separation ${Number(m?.median_sep ?? 0).toFixed(3)}"`,
  );
}
