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
 * params: see stampsParams in ./image-common.ts.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fits, imaging, wcs as wcsNs } from '../../astro/index.js';
import { committedPath } from '../../protocol/index.js';
import { fileRecord } from '../files.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';
import { imageStem, safeName, stampsParams, stampsUnit, toTaskError, writeRowsParquet, yieldToLoop, type ColumnType, type ImageRef } from './image-common.js';

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

interface StampRow extends Record<string, unknown> {
  id: string;
  band: string | null;
  mjd: number | null;
  fitsRel: string;
}

async function runStamps(ctx: ExecContext): Promise<ExecResult> {
  const p = stampsParams(ctx.spec.params);
  const unit = stampsUnit(ctx.task.unit, ctx.task.taskId);
  const hashing = Promise.all(unit.images.map((r) => fileRecord(r.path)));
  hashing.catch(() => undefined);
  const finalOf = (rel: string) => (ctx.spec.output?.path ? committedPath(ctx.spec, false, ctx.task, rel) : join(ctx.outDir, rel));

  // image stems name the stamp files: make them unique within the task
  const stems = new Map<string, ImageRef>();
  const stemOf = new Map<string, string>();
  for (const ref of unit.images) {
    let s = imageStem(ref);
    for (let k = 2; stems.has(s); k++) s = `${imageStem(ref)}-${k}`;
    stems.set(s, ref);
    stemOf.set(`${ref.path}#${ref.hdu}`, s);
  }
  const parentWcs = new Map<string, wcsNs.TanSipWcs>();
  for (const [s, ref] of stems) {
    const headers = await fits.readFitsHeaders(ref.path).catch((err: unknown) => {
      throw new imaging.ImagingIoError('cannot read FITS headers', ref.path, undefined, { cause: err });
    });
    const h = headers[ref.hdu];
    if (!h) throw new imaging.ImagingIoError(`no HDU ${ref.hdu}`, ref.path);
    parentWcs.set(s, wcsNs.TanSipWcs.fromHeader(h));
  }
  const files: imaging.StampFile[] = [...stems].map(([s, ref]) => ({ path: ref.path, id: s, image: ref.hdu }));
  const byId = new Map(unit.targets.map((t) => [t.id, t]));
  const rows: StampRow[] = [];
  const outputs: string[] = [];
  let n = 0;
  for await (const st of imaging.streamStampsFromFiles(files, unit.targets, p.size, { resample: p.resample, signal: ctx.signal, onProgress: () => ctx.progress() })) {
    const id = String(st.requestId ?? '');
    const t = byId.get(id);
    const stem = st.imageId;
    const ref = stems.get(stem);
    if (!t || !ref) continue;
    const dir = `stamps/${safeName(id)}`;
    const fitsRel = `${dir}/${stem}.fits`;
    await mkdir(join(ctx.outDir, dir), { recursive: true });
    const extra: fits.FitsCard[] = [{ key: 'PARENT', value: ref.path.slice(-68), comment: 'parent image (tail of path)' }, { key: 'PARENTHD', value: ref.hdu }];
    if (ref.visit !== null) extra.push({ key: 'VISIT', value: ref.visit });
    if (ref.detector !== null) extra.push({ key: 'DETECTOR', value: ref.detector });
    if (st.band === undefined && ref.band !== null) extra.push({ key: 'BAND', value: ref.band });
    await imaging.writeStampFits(join(ctx.outDir, fitsRel), st, extra);
    outputs.push(join(ctx.outDir, fitsRel));
    let pngRel: string | null = null;
    if (p.png) {
      pngRel = `${dir}/${stem}.png`;
      await imaging.writeStampPng(join(ctx.outDir, pngRel), st, p.stretch);
      outputs.push(join(ctx.outDir, pngRel));
    }
    const [x, y] = parentWcs.get(stem)!.skyToPixel(t.ra, t.dec);
    rows.push({
      id,
      ra: t.ra,
      dec: t.dec,
      image: ref.path,
      hdu: ref.hdu,
      visit: ref.visit,
      detector: ref.detector,
      band: st.band ?? ref.band,
      mjd: st.mjd ?? ref.mjd,
      x,
      y,
      x0: st.x0,
      y0: st.y0,
      center_x: st.centerX,
      center_y: st.centerY,
      size: st.size,
      edge: st.partial,
      coverage: st.coverage,
      resampled: st.resampled,
      fits: finalOf(fitsRel),
      png: pngRel ? finalOf(pngRel) : null,
      fitsRel,
    });
    if (++n % 16 === 0) {
      ctx.progress();
      await yieldToLoop();
    }
  }
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : (a.mjd ?? Infinity) - (b.mjd ?? Infinity)));
  const catalog = join(ctx.outDir, 'stamps.parquet');
  await writeRowsParquet(catalog, STAMP_COLUMNS, rows, ctx.scratchDir);
  const records = [await fileRecord(catalog, rows.length)];

  const stackRows: Record<string, unknown>[] = [];
  if (p.stack) {
    // second pass over this task's own stamps: one object and band at a time, so memory stays at one stack
    await mkdir(join(ctx.outDir, 'stacks'), { recursive: true });
    const groups = new Map<string, StampRow[]>();
    for (const r of rows) {
      const k = `${r.id}\u0000${r.band ?? ''}`;
      const g = groups.get(k);
      if (g) g.push(r);
      else groups.set(k, [r]);
    }
    for (const g of groups.values()) {
      ctx.signal.throwIfAborted();
      const first = g[0]!;
      const stamps: imaging.Stamp[] = [];
      for (const r of g) stamps.push(await readStamp(join(ctx.outDir, r.fitsRel)));
      const stack = imaging.stackStamps(stamps);
      const base = `stacks/${safeName(first.id)}-${safeName(first.band ?? 'none')}`;
      const wcsCards = stack.stamps[0]!.wcs.toCards();
      const shape = [stack.size, stack.size];
      const mjds = stack.mjds.filter((m): m is number => m !== undefined);
      const primary: fits.FitsCard[] = [
        { key: 'OBJID', value: first.id },
        { key: 'RA', value: stamps[0]!.ra },
        { key: 'DEC', value: stamps[0]!.dec },
        { key: 'NEPOCH', value: stack.stamps.length, comment: 'epochs stacked' },
        { key: 'RESAMPLD', value: p.resample === 'sinc', comment: 'epochs Lanczos-3 shifted onto the centre' },
      ];
      if (first.band !== null) primary.push({ key: 'BAND', value: first.band });
      if (mjds.length > 0) primary.push({ key: 'MJDMIN', value: Math.min(...mjds) }, { key: 'MJDMAX', value: Math.max(...mjds) });
      await fits.writeFits(join(ctx.outDir, `${base}.fits`), [
        { header: primary, data: null },
        { header: wcsCards, data: stack.median, shape, bitpix: -32, name: 'MEDIAN' },
        { header: wcsCards, data: Int32Array.from(stack.count), shape, bitpix: 32, name: 'COUNT' },
        { header: [...wcsCards, { key: 'COMMENT', value: 'plane k = epoch k in MJD order' }], data: stack.cube, shape: [stack.size, stack.size, stack.stamps.length], bitpix: -32, name: 'CUBE' },
      ]);
      outputs.push(join(ctx.outDir, `${base}.fits`));
      let pngRel: string | null = null;
      if (p.png) {
        pngRel = `${base}.png`;
        await imaging.writeStampPng(join(ctx.outDir, pngRel), { data: stack.median, size: stack.size }, p.stretch);
        outputs.push(join(ctx.outDir, pngRel));
      }
      stackRows.push({
        id: first.id,
        band: first.band,
        n_epochs: stack.stamps.length,
        mjd_min: mjds.length > 0 ? Math.min(...mjds) : null,
        mjd_max: mjds.length > 0 ? Math.max(...mjds) : null,
        fits: finalOf(`${base}.fits`),
        png: pngRel ? finalOf(pngRel) : null,
      });
      ctx.progress();
      await yieldToLoop();
    }
    const stacks = join(ctx.outDir, 'stacks.parquet');
    await writeRowsParquet(stacks, STACK_COLUMNS, stackRows, ctx.scratchDir);
    records.push(await fileRecord(stacks, stackRows.length));
  }
  const covered = new Set(rows.map((r) => r.id));
  const missing = unit.targets.filter((t) => !covered.has(t.id)).map((t) => t.id);
  const all = [...(await Promise.all(outputs.map((f) => fileRecord(f)))), ...records];
  return {
    inputs: await hashing,
    outputs: all,
    rows: rows.length,
    summary: { tract: unit.tract, patch: unit.patch, images: unit.images.length, targets: unit.targets.length, stamps: rows.length, stacks: stackRows.length, ...(missing.length > 0 ? { missing: missing.slice(0, 50), missingCount: missing.length } : {}) },
  };
}

/** A stamp FITS (as writeStampFits wrote it) back as a Stamp, for the stacking pass. */
async function readStamp(path: string): Promise<imaging.Stamp> {
  const hdus = await fits.readFits(path, { hdus: [0, 1, 2] });
  const [p, im, mk] = hdus;
  if (!p || !im || !mk || !(im.data instanceof Float32Array)) throw new imaging.ImagingIoError('stamp file lacks IMAGE/MASK', path);
  const h = p.header;
  const size = im.shape[0]!;
  const mask = mk.data instanceof Int32Array ? mk.data : Int32Array.from((mk.data ?? []) as ArrayLike<number>);
  const s: imaging.Stamp = {
    imageId: h.getString('IMAGEID') ?? path,
    ra: h.getNumber('RA') ?? Number.NaN,
    dec: h.getNumber('DEC') ?? Number.NaN,
    size,
    x0: h.getNumber('STAMPX0') ?? 0,
    y0: h.getNumber('STAMPY0') ?? 0,
    data: im.data,
    mask,
    wcs: wcsNs.TanSipWcs.fromHeader(im.header),
    centerX: h.getNumber('CENTERX') ?? (size - 1) / 2,
    centerY: h.getNumber('CENTERY') ?? (size - 1) / 2,
    partial: h.getBoolean('PARTIAL') ?? false,
    coverage: h.getNumber('COVERAGE') ?? 1,
    resampled: h.getBoolean('RESAMPLD') ?? false,
  };
  const mjd = h.getNumber('MJD-OBS');
  if (mjd !== undefined) s.mjd = mjd;
  const band = h.getString('BAND');
  if (band !== undefined) s.band = band.trim();
  const id = h.getString('OBJID');
  if (id !== undefined) s.requestId = id;
  return s;
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
