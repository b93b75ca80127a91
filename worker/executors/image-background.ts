/**
 * `image.background`: sky background of one image per task (astro/imaging
 * estimateBackground, mode mesh or lsb), written as
 *   <stem>.calexp.fits      the background-subtracted image: primary + IMAGE (sky
 *                           removed) + MASK + VARIANCE, headers (WCS, metadata) kept,
 *                           BGMODE/BGBOX/BGFILT/BGLEVEL/BGRMS added
 *   <stem>.background.fits  (params.write_model) BACKGROUND and RMS planes with the WCS
 *   <stem>.bgmask.fits      (params.write_mask) the estimator's mask (1 = left out):
 *                           lsb: the source + extended-emission mask; mesh: the mask bits used
 *   background.parquet      one summary row (global level and noise, mesh size, paths)
 * under the task's output directory (<output>/task-<index>/ once committed).
 * The pixel work (read, estimate, subtract, write FITS) runs on a worker thread
 * (./image-thread.ts); this side hashes inputs/outputs and writes the Parquet row.
 * params: see backgroundParams in protocol/image-params.ts.
 */
import { join } from 'node:path';
import { fileRecord } from '../files.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';
import { backgroundParams, finalPathOf, singleImageUnit, toTaskError, writeRowsParquet, type ColumnType } from './image-common.js';
import { runImageJob } from './image-thread.js';
import { hashInputsInBackground } from './inputs.js';

export const BACKGROUND_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [
  ['image', 'VARCHAR'],
  ['hdu', 'INTEGER'],
  ['visit', 'BIGINT'],
  ['detector', 'INTEGER'],
  ['band', 'VARCHAR'],
  ['mjd', 'DOUBLE'],
  ['width', 'INTEGER'],
  ['height', 'INTEGER'],
  ['mode', 'VARCHAR'],
  ['box', 'INTEGER'],
  ['filter', 'INTEGER'],
  ['global_back', 'DOUBLE'],
  ['global_rms', 'DOUBLE'],
  ['mesh_width', 'INTEGER'],
  ['mesh_height', 'INTEGER'],
  ['calexp', 'VARCHAR'],
  ['model', 'VARCHAR'],
  ['bgmask', 'VARCHAR'],
];

async function runBackground(ctx: ExecContext): Promise<ExecResult> {
  const p = backgroundParams(ctx.spec.params);
  const { image: ref } = singleImageUnit(ctx.task.unit, ctx.task.taskId);
  const hashing = hashInputsInBackground([ref.path]);
  ctx.progress();
  // read, estimate, subtract and write the FITS outputs on a pool thread (./image-thread.ts)
  const bg = await runImageJob({ kind: 'background', ref, params: p, outDir: ctx.outDir, jobId: ctx.task.jobId }, ctx.signal);
  ctx.progress();
  const finalOf = finalPathOf(ctx);
  const written = [bg.calexpRel, bg.modelRel, bg.maskRel].filter((r): r is string => r !== null).map((r) => join(ctx.outDir, r));
  const row = {
    image: ref.path,
    hdu: ref.hdu,
    visit: ref.visit,
    detector: ref.detector,
    band: ref.band,
    mjd: ref.mjd,
    width: bg.width,
    height: bg.height,
    mode: p.mode,
    box: p.box,
    filter: p.filter,
    global_back: bg.globalBack,
    global_rms: bg.globalRms,
    mesh_width: bg.meshWidth,
    mesh_height: bg.meshHeight,
    calexp: finalOf(bg.calexpRel),
    model: bg.modelRel ? finalOf(bg.modelRel) : null,
    bgmask: bg.maskRel ? finalOf(bg.maskRel) : null,
  };
  const table = join(ctx.outDir, 'background.parquet');
  await writeRowsParquet(table, BACKGROUND_COLUMNS, [row], ctx.scratchDir);
  const outputs = await Promise.all([...written.map((f) => fileRecord(f)), fileRecord(table, 1)]);
  ctx.progress();
  return { inputs: await hashing, outputs, rows: 1, summary: row };
}

export const imageBackgroundExecutor: Executor = {
  kind: 'image.background',
  inProcess: true,
  async map(ctx) {
    try {
      return await runBackground(ctx);
    } catch (err) {
      throw toTaskError(err, `image of task ${ctx.task.index}`, ctx.signal);
    }
  },
};
