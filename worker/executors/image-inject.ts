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
 * The task result's summary carries the bins too.
 * params: see injectParams in ./image-common.ts.
 */
import { existsSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fits, hats, imaging } from '../../astro/index.js';
import { fileRecord } from '../files.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';
import { copyCards, firstLine, ImageParamError, imageStem, injectParams, magBinEdges, readCalexp, singleImageUnit, toTaskError, writeRowsParquet, yieldToLoop, type Calexp, type ColumnType, type InjectParams } from './image-common.js';

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

/** 32-bit FNV-1a: a seed per image that does not depend on task numbering. */
function hashSeed(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function psfOf(p: InjectParams, cx: Calexp, path: string): imaging.PsfModel {
  if (p.psf) return p.psf;
  const fwhm = cx.numeric.getNumber('PSFFWHM');
  if (fwhm === undefined || !(fwhm > 0)) throw new ImageParamError('no_psf', `params.psf is required: ${path} has no PSFFWHM header`, '/params/psf');
  const beta = cx.numeric.getNumber('PSFBETA');
  return beta !== undefined && beta > 1 ? { kind: 'moffat', fwhm, beta } : { kind: 'gaussian', fwhm };
}

/** Random stars spread over the image, kept apart so injected sources do not blend with each other. */
function randomStars(p: Extract<InjectParams['sources'], { n: number }>, cx: Calexp, psf: imaging.PsfModel, seed: number): imaging.InjectionSource[] {
  const rng = new imaging.SeededRandom(seed);
  const { width: w, height: h } = cx.image;
  const margin = Math.min(Math.max(2 * psf.fwhm, 8), Math.min(w, h) / 4);
  const sep = p.minSeparationPx >= 0 ? p.minSeparationPx : 4 * psf.fwhm;
  const placed: [number, number][] = [];
  const out: imaging.InjectionSource[] = [];
  for (let i = 0; i < p.n; i++) {
    let x = 0;
    let y = 0;
    for (let tries = 0; tries < 30; tries++) {
      x = rng.range(margin, w - 1 - margin);
      y = rng.range(margin, h - 1 - margin);
      if (placed.every(([a, b]) => (a - x) ** 2 + (b - y) ** 2 >= sep * sep)) break;
    }
    placed.push([x, y]);
    const [ra, dec] = cx.wcs.pixelToSky(x, y);
    out.push({ kind: 'star', ra, dec, mag: rng.range(p.magMin, p.magMax), id: i });
  }
  return out;
}

/** Catalog sources (ra, dec, mag [, id, kind, n, r_eff_arcsec, axis_ratio, pa_deg]) that fall on or near the image. */
async function catalogSources(path: string, cx: Calexp): Promise<imaging.InjectionSource[]> {
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
  const { width: w, height: h } = cx.image;
  const out: imaging.InjectionSource[] = [];
  rows.forEach((r0, i) => {
    const r = Object.fromEntries(Object.entries(r0).map(([k, v]) => [k.toLowerCase(), typeof v === 'bigint' ? Number(v) : v]));
    const ra = r['ra'];
    const dec = r['dec'];
    const mag = r['mag'];
    if (typeof ra !== 'number' || typeof dec !== 'number' || typeof mag !== 'number') throw new ImageParamError('invalid_input', `injection catalog ${path} row ${i} needs numeric ra, dec and mag`, where);
    const [x, y] = cx.wcs.skyToPixel(ra, dec);
    if (!(x > -50 && y > -50 && x < w + 50 && y < h + 50)) return;
    const id = r['id'] === undefined || r['id'] === null ? i : String(r['id']);
    if (r['kind'] === 'sersic' || r['kind'] === 'galaxy') {
      const num = (k: string, d: number) => (typeof r[k] === 'number' ? (r[k] as number) : d);
      out.push({ kind: 'sersic', ra, dec, mag, id, n: num('n', 1), rEffArcsec: num('r_eff_arcsec', 1), axisRatio: num('axis_ratio', 1), positionAngleDeg: num('pa_deg', 0) });
    } else out.push({ kind: 'star', ra, dec, mag, id });
  });
  return out;
}

function nearest(sources: readonly imaging.DetectedSource[], x: number, y: number, r: number): imaging.DetectedSource | undefined {
  let best: imaging.DetectedSource | undefined;
  let bd = r * r;
  for (const s of sources) {
    const d = (s.x - x) ** 2 + (s.y - y) ** 2;
    if (d <= bd) {
      bd = d;
      best = s;
    }
  }
  return best;
}

const median = (v: number[]): number => {
  if (v.length === 0) return Number.NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : 0.5 * (s[m - 1]! + s[m]!);
};

async function runInject(ctx: ExecContext): Promise<ExecResult> {
  const p = injectParams(ctx.spec.params);
  const { image: ref } = singleImageUnit(ctx.task.unit, ctx.task.taskId);
  const hashing = Promise.all([fileRecord(ref.path), ...('catalog' in p.sources ? [fileRecord(p.sources.catalog)] : [])]);
  hashing.catch(() => undefined);
  const cx = await readCalexp(ref, ctx.signal);
  const psf = psfOf(p, cx, ref.path);
  const { zeroPoint } = imaging.zeroPointFromHeader(cx.numeric, ref.path);
  const seed = hashSeed(`${p.seed}:${basename(ref.path)}:${ref.hdu}`);
  const sources = 'catalog' in p.sources ? await catalogSources(p.sources.catalog, cx) : randomStars(p.sources, cx, psf, seed);
  ctx.progress();
  const detOpts: imaging.DetectOptions = { psfFwhm: psf.fwhm, psf, thresholdSigma: p.thresholdSigma, signal: ctx.signal };
  const bg0 = imaging.estimateBackground(cx.image, { signal: ctx.signal, onProgress: () => ctx.progress() });
  await yieldToLoop();
  const det0 = imaging.detectSources(cx.image, bg0, detOpts);
  await yieldToLoop();
  const inj = imaging.injectSources(cx.image, cx.wcs, sources, { psf, zeroPoint, header: cx.numeric, poisson: p.poisson, seed, signal: ctx.signal, onProgress: () => ctx.progress() });
  await yieldToLoop();
  const bg1 = imaging.estimateBackground(inj.image, { signal: ctx.signal, onProgress: () => ctx.progress() });
  await yieldToLoop();
  const det1 = imaging.detectSources(inj.image, bg1, { ...detOpts, wcs: cx.wcs, ...(cx.image.variance ? {} : { gain: inj.gain }) });
  await yieldToLoop();

  const injectedRows: Record<string, unknown>[] = [];
  const matchedDet = new Map<number, number>();
  for (const rec of inj.injected) {
    const m = rec.onImage ? nearest(det1.sources, rec.x, rec.y, p.matchRadiusPx) : undefined;
    const pre = m !== undefined && nearest(det0.sources, m.x, m.y, p.matchRadiusPx) !== undefined;
    const ok = m !== undefined && !pre;
    const last = m ? m.apertureFlux.length - 1 : -1;
    const useAp = rec.kind === 'sersic';
    if (ok) matchedDet.set(m.id, rec.index);
    injectedRows.push({
      index: rec.index,
      id: rec.id === undefined ? null : String(rec.id),
      kind: rec.kind,
      ra: rec.ra,
      dec: rec.dec,
      mag: rec.mag,
      x: rec.x,
      y: rec.y,
      flux: rec.flux,
      added_flux: rec.addedFlux,
      on_image: rec.onImage,
      recovered: ok,
      preexisting: pre,
      measured_flux: ok ? (useAp ? m.apertureFlux[last]! : m.psfFlux) : null,
      measured_flux_err: ok ? (useAp ? m.apertureFluxErr[last]! : m.psfFluxErr) : null,
      dx: ok ? m.x - rec.x : null,
      dy: ok ? m.y - rec.y : null,
    });
  }
  const onImage = injectedRows.filter((r) => r['on_image'] === true);
  const mags = onImage.map((r) => r['mag'] as number);
  const edges = magBinEdges(p.magBins, mags.length ? Math.min(...mags) : 18, mags.length ? Math.max(...mags) : 24);
  const bins: Record<string, unknown>[] = [];
  for (let b = 0; b + 1 < edges.length; b++) {
    const lo = edges[b]!;
    const hi = edges[b + 1]!;
    const inBin = onImage.filter((r) => (r['mag'] as number) >= lo && (r['mag'] as number) < hi);
    const rec = inBin.filter((r) => r['recovered'] === true);
    const ratios = rec.map((r) => (r['measured_flux'] as number) / (r['flux'] as number));
    const pulls = rec.filter((r) => (r['measured_flux_err'] as number) > 0).map((r) => ((r['measured_flux'] as number) - (r['flux'] as number)) / (r['measured_flux_err'] as number));
    const mp = median(pulls);
    bins.push({
      image: ref.path,
      visit: ref.visit,
      detector: ref.detector,
      band: ref.band,
      mag_min: lo,
      mag_max: hi,
      n_injected: inBin.length,
      n_recovered: rec.length,
      completeness: inBin.length > 0 ? rec.length / inBin.length : null,
      median_flux_ratio: median(ratios),
      pull_sigma: 1.4826 * median(pulls.map((x) => Math.abs(x - mp))),
    });
  }
  const detRows = det1.sources.map((s) => ({
    id: s.id,
    x: s.x,
    y: s.y,
    ra: s.ra ?? null,
    dec: s.dec ?? null,
    npix: s.npix,
    peak: s.peak,
    iso_flux: s.isoFlux,
    psf_flux: s.psfFlux,
    psf_flux_err: s.psfFluxErr,
    ap_flux_max: s.apertureFlux.at(-1) ?? null,
    ap_flux_max_err: s.apertureFluxErr.at(-1) ?? null,
    a: s.a,
    b: s.b,
    theta_deg: s.thetaDeg,
    flags: s.flags,
    injected_index: matchedDet.get(s.id) ?? null,
  }));

  const files: { path: string; rows?: number }[] = [];
  const put = async (rel: string, cols: ReadonlyArray<readonly [string, ColumnType]>, rows: Record<string, unknown>[]) => {
    const f = join(ctx.outDir, rel);
    await writeRowsParquet(f, cols, rows, ctx.scratchDir);
    files.push({ path: f, rows: rows.length });
  };
  await put('injected.parquet', INJECTED_COLUMNS, injectedRows);
  await put('detections.parquet', DETECTION_COLUMNS, detRows);
  await put('recovery.parquet', RECOVERY_COLUMNS, bins);
  if (p.writeImages) {
    const shape = [inj.image.width, inj.image.height];
    const cards: fits.FitsCard[] = [
      { key: 'INJN', value: onImage.length, comment: 'sources injected on the image' },
      { key: 'INJZP', value: zeroPoint, comment: 'zero point used (mag of 1 ADU)' },
      { key: 'INJPSF', value: psf.kind },
      { key: 'INJFWHM', value: psf.fwhm, comment: 'PSF FWHM (pixels)' },
      { key: 'HISTORY', value: `ubatch image.inject job ${ctx.task.jobId}`.slice(0, 70) },
    ];
    const f = join(ctx.outDir, `${imageStem(ref)}.injected.fits`);
    const hdus: fits.WriteHdu[] = [
      { header: [...copyCards(cx.primary), ...cards], data: null },
      { header: copyCards(cx.imageHeader), data: inj.image.data, shape, bitpix: -32, name: 'IMAGE' },
      { header: copyCards(cx.maskHeader), data: inj.image.mask, shape, bitpix: 32, name: 'MASK' },
    ];
    if (inj.image.variance) hdus.push({ header: copyCards(cx.varianceHeader), data: inj.image.variance, shape, bitpix: -32, name: 'VARIANCE' });
    await fits.writeFits(f, hdus);
    files.push({ path: f });
  }
  const outputs = await Promise.all(files.map((f) => fileRecord(f.path, f.rows)));
  const nRec = onImage.filter((r) => r['recovered'] === true).length;
  ctx.progress();
  return {
    inputs: await hashing,
    outputs,
    rows: injectedRows.length,
    summary: {
      image: ref.path,
      visit: ref.visit,
      detector: ref.detector,
      band: ref.band,
      zeroPoint,
      psf,
      injected: onImage.length,
      recovered: nRec,
      detections: detRows.length,
      bins: bins.filter((b) => (b['n_injected'] as number) > 0).map((b) => ({ magMin: b['mag_min'], magMax: b['mag_max'], nInjected: b['n_injected'], nRecovered: b['n_recovered'], completeness: b['completeness'], medianFluxRatio: Number.isFinite(b['median_flux_ratio'] as number) ? b['median_flux_ratio'] : null })),
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
