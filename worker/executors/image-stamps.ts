/**
 * `image.stamps`: postage stamps of the task's targets from every image
 * (epoch) covering them. The planner groups targets by sky-map patch, so one
 * task holds all epochs of each of its objects and the multi-epoch stack needs
 * no reduce step: it is a second pass over the stamps this task just wrote.
 * Writes under the task's output directory (<output>/task-<index>/ once committed):
 *   stamps/<id>/<image stem>.fits   primary (RA, DEC, OBJID, CENTERX/Y, PARTIAL, VISIT...)
 *                                   + IMAGE, MASK, VARIANCE with the stamp's WCS
 *   stamps/<id>/<image stem>.png    asinh-stretched preview (params.png)
 *   stamps.parquet                  one row per stamp: id, image, visit, detector, band, mjd,
 *                                   x, y (parent pixels, 0-based), edge flag, coverage, paths
 *   stacks/<id>-<band>.fits/.png    (params.stack) per object and band: MEDIAN, COUNT and the
 *                                   MJD-ordered CUBE of the epochs
 *   stacks.parquet                  (params.stack) one row per stack
 * The cutting, writing and stacking run on a worker thread (./image-thread.ts);
 * this side hashes files and writes the two Parquet tables.
 * params: see stampsParams in protocol/image-params.ts.
 */
import { join } from 'node:path';
import { fileRecord } from '../files.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';
import { fileRecordsOf, finalPathOf, stampsParams, stampsUnit, toTaskError, writeRowsParquet, type ColumnType } from './image-common.js';
import { runImageJob } from './image-thread.js';
import { hashInputsInBackground } from './inputs.js';

export const STAMP_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [
  ['id', 'VARCHAR'],
  ['ra', 'DOUBLE'],
  ['dec', 'DOUBLE'],
  ['image', 'VARCHAR'],
  ['hdu', 'INTEGER'],
  ['visit', 'BIGINT'],
  ['detector', 'INTEGER'],
  ['band', 'VARCHAR'],
  ['mjd', 'DOUBLE'],
  ['x', 'DOUBLE'],
  ['y', 'DOUBLE'],
  ['x0', 'INTEGER'],
  ['y0', 'INTEGER'],
  ['center_x', 'DOUBLE'],
  ['center_y', 'DOUBLE'],
  ['size', 'INTEGER'],
  ['edge', 'BOOLEAN'],
  ['coverage', 'DOUBLE'],
  ['resampled', 'BOOLEAN'],
  ['fits', 'VARCHAR'],
  ['png', 'VARCHAR'],
];

export const STACK_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [
  ['id', 'VARCHAR'],
  ['band', 'VARCHAR'],
  ['n_epochs', 'INTEGER'],
  ['mjd_min', 'DOUBLE'],
  ['mjd_max', 'DOUBLE'],
  ['fits', 'VARCHAR'],
  ['png', 'VARCHAR'],
];

async function runStamps(ctx: ExecContext): Promise<ExecResult> {
  const p = stampsParams(ctx.spec.params);
  const unit = stampsUnit(ctx.task.unit, ctx.task.taskId);
  const hashing = hashInputsInBackground(unit.images.map((r) => r.path));
  const finalOf = finalPathOf(ctx);
  ctx.progress();
  // cutting, FITS/PNG writing and stacking on a pool thread (./image-thread.ts)
  const r = await runImageJob({ kind: 'stamps', unit, params: p, outDir: ctx.outDir }, ctx.signal);
  ctx.progress();
  const rows = r.rows.map(({ fitsRel, pngRel, ...row }) => ({ ...row, fits: finalOf(fitsRel), png: pngRel ? finalOf(pngRel) : null }));
  const catalog = join(ctx.outDir, 'stamps.parquet');
  await writeRowsParquet(catalog, STAMP_COLUMNS, rows, ctx.scratchDir);
  const records = [await fileRecord(catalog, rows.length)];
  if (p.stack) {
    const stackRows = r.stackRows.map(({ fitsRel, pngRel, ...row }) => ({ ...row, fits: finalOf(fitsRel), png: pngRel ? finalOf(pngRel) : null }));
    const stacks = join(ctx.outDir, 'stacks.parquet');
    await writeRowsParquet(stacks, STACK_COLUMNS, stackRows, ctx.scratchDir);
    records.push(await fileRecord(stacks, stackRows.length));
  }
  const covered = new Set(rows.map((x) => x.id));
  const missing = unit.targets.filter((t) => !covered.has(t.id)).map((t) => t.id);
  const all = [...(await fileRecordsOf(r.written.map((f) => join(ctx.outDir, f)))), ...records];
  return {
    inputs: await hashing,
    outputs: all,
    rows: rows.length,
    summary: { tract: unit.tract, patch: unit.patch, images: unit.images.length, targets: unit.targets.length, stamps: rows.length, stacks: r.stackRows.length, ...(missing.length > 0 ? { missing: missing.slice(0, 50), missingCount: missing.length } : {}) },
  };
}

export const imageStampsExecutor: Executor = {
  kind: 'image.stamps',
  inProcess: true,
  async map(ctx) {
    try {
      return await runStamps(ctx);
    } catch (err) {
      throw toTaskError(err, `stamps task ${ctx.task.index}`, ctx.signal);
    }
  },
};
