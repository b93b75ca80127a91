/**
 * `image.inject`: injection–recovery on one image per task. Sources (random
 * stars, or a catalog's stars and Sérsic galaxies) are injected with the
 * image's PSF and zero point (astro/imaging injectSources), background and
 * detection run on the image before and after, and each injected source on
 * the image is matched to the nearest new detection within match_radius_px (a
 * detection that also matches one of the original image is a pre-existing
 * source, not a recovery: the rule of astro/imaging injectionRecovery).
 * Writes under the task's output directory (<output>/task-<index>/ once committed):
 *   injected.parquet    one row per injected source: position, mag, flux, recovered,
 *                       measured flux and error, offset
 *   detections.parquet  the detection catalog of the injected image (injected = matched one)
 *   recovery.parquet    completeness and flux recovery per magnitude bin
 *   <stem>.injected.fits (params.write_images) the injected image (IMAGE, MASK with
 *                       INJECTED set, VARIANCE)
 * The task result's summary carries the bins too. The pixel work runs on a
 * worker thread (./image-thread.ts); this side reads a source catalog
 * (DuckDB), hashes files and writes the Parquet tables.
 * params: see injectParams in protocol/image-params.ts.
 */
import { existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { hats } from '../../astro/index.js';
import { fileRecord } from '../files.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';
import { firstLine, ImageParamError, injectParams, singleImageUnit, toTaskError, writeRowsParquet, type ColumnType } from './image-common.js';
import { runImageJob, type InjectJob } from './image-thread.js';
import { hashInputsInBackground } from './inputs.js';

export const INJECTED_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [
  ['index', 'INTEGER'],
  ['id', 'VARCHAR'],
  ['kind', 'VARCHAR'],
  ['ra', 'DOUBLE'],
  ['dec', 'DOUBLE'],
  ['mag', 'DOUBLE'],
  ['x', 'DOUBLE'],
  ['y', 'DOUBLE'],
  ['flux', 'DOUBLE'],
  ['added_flux', 'DOUBLE'],
  ['on_image', 'BOOLEAN'],
  ['recovered', 'BOOLEAN'],
  ['preexisting', 'BOOLEAN'],
  ['measured_flux', 'DOUBLE'],
  ['measured_flux_err', 'DOUBLE'],
  ['dx', 'DOUBLE'],
  ['dy', 'DOUBLE'],
];

export const DETECTION_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [
  ['id', 'INTEGER'],
  ['x', 'DOUBLE'],
  ['y', 'DOUBLE'],
  ['ra', 'DOUBLE'],
  ['dec', 'DOUBLE'],
  ['npix', 'INTEGER'],
  ['peak', 'DOUBLE'],
  ['iso_flux', 'DOUBLE'],
  ['psf_flux', 'DOUBLE'],
  ['psf_flux_err', 'DOUBLE'],
  ['ap_flux_max', 'DOUBLE'],
  ['ap_flux_max_err', 'DOUBLE'],
  ['a', 'DOUBLE'],
  ['b', 'DOUBLE'],
  ['theta_deg', 'DOUBLE'],
  ['flags', 'INTEGER'],
  ['injected_index', 'INTEGER'],
];

export const RECOVERY_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [
  ['image', 'VARCHAR'],
  ['visit', 'BIGINT'],
  ['detector', 'INTEGER'],
  ['band', 'VARCHAR'],
  ['mag_min', 'DOUBLE'],
  ['mag_max', 'DOUBLE'],
  ['n_injected', 'INTEGER'],
  ['n_recovered', 'INTEGER'],
  ['completeness', 'DOUBLE'],
  ['median_flux_ratio', 'DOUBLE'],
  ['pull_sigma', 'DOUBLE'],
];

/** params.catalog's rows (ra, dec, mag, ...), keys lower-cased, read here through DuckDB; the thread keeps those on the image. */
async function catalogRows(path: string): Promise<Record<string, unknown>[]> {
  const where = '/params/catalog';
  if (!existsSync(path)) throw new ImageParamError('input_not_found', `injection catalog not found: ${path}`, where);
  const ext = extname(path).toLowerCase();
  const reader = ext === '.parquet' || ext === '.parq' ? `read_parquet(${hats.sqlString(path)})` : `read_csv(${hats.sqlString(path)}, header = true)`;
  let rows: Record<string, unknown>[];
  try {
    rows = await hats.withDuck(async (conn) => (await conn.runAndReadAll(`SELECT * FROM ${reader}`)).getRowObjectsJS());
  } catch (err) {
    throw new ImageParamError('invalid_input', `cannot read injection catalog ${path}: ${firstLine(err)}`, where, { cause: err });
  }
  return rows.map((r0) => Object.fromEntries(Object.entries(r0).map(([k, v]) => [k.toLowerCase(), typeof v === 'bigint' ? Number(v) : v])));
}

async function runInject(ctx: ExecContext): Promise<ExecResult> {
  const p = injectParams(ctx.spec.params);
  const { image: ref } = singleImageUnit(ctx.task.unit, ctx.task.taskId);
  const hashing = hashInputsInBackground([ref.path, ...('catalog' in p.sources ? [p.sources.catalog] : [])]);
  const job: InjectJob = { kind: 'inject', ref, params: p, outDir: ctx.outDir, jobId: ctx.task.jobId };
  if ('catalog' in p.sources) job.catalogRows = await catalogRows(p.sources.catalog);
  ctx.progress();
  // inject, background + detection before and after, matching: on a pool thread (./image-thread.ts)
  const r = await runImageJob(job, ctx.signal);
  ctx.progress();

  const files: { path: string; rows?: number }[] = [];
  const put = async (rel: string, cols: ReadonlyArray<readonly [string, ColumnType]>, rows: Record<string, unknown>[]) => {
    const f = join(ctx.outDir, rel);
    await writeRowsParquet(f, cols, rows, ctx.scratchDir);
    files.push({ path: f, rows: rows.length });
  };
  await put('injected.parquet', INJECTED_COLUMNS, r.injectedRows);
  await put('detections.parquet', DETECTION_COLUMNS, r.detRows);
  await put('recovery.parquet', RECOVERY_COLUMNS, r.bins);
  if (r.imageRel !== null) files.push({ path: join(ctx.outDir, r.imageRel) });
  const outputs = await Promise.all(files.map((f) => fileRecord(f.path, f.rows)));
  ctx.progress();
  return {
    inputs: await hashing,
    outputs,
    rows: r.injectedRows.length,
    summary: {
      image: ref.path,
      visit: ref.visit,
      detector: ref.detector,
      band: ref.band,
      zeroPoint: r.zeroPoint,
      psf: r.psf,
      injected: r.onImage,
      recovered: r.recovered,
      detections: r.detRows.length,
      bins: r.bins.filter((b) => (b['n_injected'] as number) > 0).map((b) => ({ magMin: b['mag_min'], magMax: b['mag_max'], nInjected: b['n_injected'], nRecovered: b['n_recovered'], completeness: b['completeness'], medianFluxRatio: Number.isFinite(b['median_flux_ratio'] as number) ? b['median_flux_ratio'] : null })),
    },
  };
}

export const imageInjectExecutor: Executor = {
  kind: 'image.inject',
  inProcess: true,
  async map(ctx) {
    try {
      return await runInject(ctx);
    } catch (err) {
      throw toTaskError(err, `image of task ${ctx.task.index}`, ctx.signal);
    }
  },
};
