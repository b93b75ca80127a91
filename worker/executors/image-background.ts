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
 * params: see backgroundParams in ./image-common.ts.
 */
import { join } from 'node:path';
import { fits, imaging } from '../../astro/index.js';
import { committedPath } from '../../protocol/index.js';
import { fileRecord } from '../files.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';
import { backgroundParams, copyCards, imageStem, readCalexp, singleImageUnit, toTaskError, writeRowsParquet, yieldToLoop, type ColumnType } from './image-common.js';

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
  const hashing = fileRecord(ref.path);
  hashing.catch(() => undefined);
  const cx = await readCalexp(ref, ctx.signal);
  ctx.progress();
  await yieldToLoop();
  const { width: w, height: h } = cx.image;
  const bg = imaging.estimateBackground(cx.image, {
    mode: p.mode,
    boxSize: p.box,
    filterSize: p.filter,
    signal: ctx.signal,
    onProgress: () => ctx.progress(),
  });
  await yieldToLoop();
  const sub = new Float32Array(w * h);
  for (let i = 0; i < sub.length; i++) sub[i] = cx.image.data[i]! - bg.background[i]!;

  const stem = imageStem(ref);
  const finalOf = (rel: string) => (ctx.spec.output?.path ? committedPath(ctx.spec, false, ctx.task, rel) : join(ctx.outDir, rel));
  const shape = [w, h];
  const bgCards: fits.FitsCard[] = [
    { key: 'BGMODE', value: p.mode, comment: 'ubatch image.background estimator' },
    { key: 'BGBOX', value: p.box, comment: 'background box size (pixels)' },
    { key: 'BGFILT', value: p.filter, comment: 'median filter size (boxes)' },
    { key: 'BGLEVEL', value: bg.globalBack, comment: 'median sky level subtracted (ADU)' },
    { key: 'BGRMS', value: bg.globalRms, comment: 'median sky noise (ADU)' },
    { key: 'BGSRC', value: ref.path.slice(-68), comment: 'input image (tail of path)' },
    { key: 'HISTORY', value: `ubatch image.background mode=${p.mode} box=${p.box} filter=${p.filter}` },
    { key: 'HISTORY', value: `ubatch job ${ctx.task.jobId}`.slice(0, 70) },
  ];
  const wcsOnly = cx.wcs.toCards();
  const calexpRel = `${stem}.calexp.fits`;
  const hdus: fits.WriteHdu[] = [
    { header: [...copyCards(cx.primary), ...bgCards], data: null },
    { header: [...copyCards(cx.imageHeader), ...bgCards.slice(0, 5)], data: sub, shape, bitpix: -32, name: 'IMAGE' },
  ];
  if (cx.image.mask) hdus.push({ header: copyCards(cx.maskHeader), data: cx.image.mask, shape, bitpix: 32, name: 'MASK' });
  if (cx.image.variance) hdus.push({ header: copyCards(cx.varianceHeader), data: cx.image.variance, shape, bitpix: -32, name: 'VARIANCE' });
  const written: string[] = [join(ctx.outDir, calexpRel)];
  await fits.writeFits(written[0]!, hdus);
  let modelRel: string | null = null;
  if (p.writeModel) {
    modelRel = `${stem}.background.fits`;
    written.push(join(ctx.outDir, modelRel));
    await fits.writeFits(written.at(-1)!, [
      { header: [...copyCards(cx.primary), ...bgCards], data: null },
      { header: [...wcsOnly, { key: 'BUNIT', value: 'ADU' }], data: bg.background, shape, bitpix: -32, name: 'BACKGROUND' },
      { header: [...wcsOnly, { key: 'BUNIT', value: 'ADU' }], data: bg.rms, shape, bitpix: -32, name: 'RMS' },
    ]);
  }
  let maskRel: string | null = null;
  if (p.writeMask) {
    maskRel = `${stem}.bgmask.fits`;
    let m = bg.mask;
    if (!m) {
      // mesh mode has no source mask of its own: the pixels its mask bits left out
      m = new Uint8Array(w * h);
      const bits = imaging.DEFAULT_BAD_MASK;
      const im = cx.image.mask;
      for (let i = 0; i < m.length; i++) if ((im !== undefined && (im[i]! & bits) !== 0) || !Number.isFinite(cx.image.data[i]!)) m[i] = 1;
    }
    written.push(join(ctx.outDir, maskRel));
    await fits.writeFits(written.at(-1)!, [
      { header: [...copyCards(cx.primary), ...bgCards], data: null },
      { header: [...wcsOnly, { key: 'COMMENT', value: '1 = pixel left out of the sky estimate' }], data: m, shape, bitpix: 8, name: 'BGMASK' },
    ]);
  }
  const row = {
    image: ref.path,
    hdu: ref.hdu,
    visit: ref.visit,
    detector: ref.detector,
    band: ref.band,
    mjd: ref.mjd,
    width: w,
    height: h,
    mode: p.mode,
    box: p.box,
    filter: p.filter,
    global_back: bg.globalBack,
    global_rms: bg.globalRms,
    mesh_width: bg.meshWidth,
    mesh_height: bg.meshHeight,
    calexp: finalOf(calexpRel),
    model: modelRel ? finalOf(modelRel) : null,
    bgmask: maskRel ? finalOf(maskRel) : null,
  };
  const table = join(ctx.outDir, 'background.parquet');
  await writeRowsParquet(table, BACKGROUND_COLUMNS, [row], ctx.scratchDir);
  const outputs = await Promise.all([...written.map((f) => fileRecord(f)), fileRecord(table, 1)]);
  ctx.progress();
  return { inputs: [await hashing], outputs, rows: 1, summary: row };
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
