/**
 * The pixel work of the image kinds, run off the daemon's event loop on a
 * pooled worker thread (./thread-pool.ts), so heartbeats and in-progress acks
 * keep flowing while a 4k x 4k LSB background or an injection-recovery pass
 * runs for seconds to minutes (DESIGN.md "Inside a worker").
 *
 * One job is one task's image: the thread reads the calexp, runs the kernels
 * (astro/imaging) and writes the FITS outputs itself; it sends back only the
 * small things (summary numbers, catalog rows). The executor keeps what needs
 * the daemon or DuckDB: params and unit validation, provenance hashing, the
 * Parquet tables, the committed paths.
 *
 * image.stamps stays on the event loop: its per-stamp work is small and it
 * yields every 16 stamps (see image-stamps.ts).
 *
 * Errors are classified in the thread the way the executor would
 * (toTaskError: InputError / TaskCancelledError / retryable) and rebuilt on
 * the executor's side by {@link runImageJob}. Without a compiled entry
 * (sources run under vitest with no dist/), the same functions run in-process.
 */
import { basename, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { fits, imaging } from '../../astro/index.js';
import { InputError, TaskCancelledError } from '../errors.js';
import { copyCards, ImageParamError, imageStem, magBinEdges, readCalexp, toTaskError, type BackgroundParams, type Calexp, type ImageRef, type InjectParams } from './image-common.js';
import { errorInfo, isPoolThread, resolveThreadEntry, runJobs, serveThreadJobs, ThreadAbortedError, ThreadJobError, type ThreadErrorInfo } from './thread-pool.js';

// ---------------------------------------------------------------------------------------
// jobs and results

export interface BackgroundJob {
  kind: 'background';
  ref: ImageRef;
  params: BackgroundParams;
  outDir: string;
  jobId: string;
}

export interface BackgroundOutcome {
  width: number;
  height: number;
  globalBack: number;
  globalRms: number;
  meshWidth: number;
  meshHeight: number;
  /** files written, relative to outDir */
  calexpRel: string;
  modelRel: string | null;
  maskRel: string | null;
}

export interface InjectJob {
  kind: 'inject';
  ref: ImageRef;
  params: InjectParams;
  /** params.catalog's rows (read by the executor through DuckDB), keys lower-cased; absent for random stars */
  catalogRows?: Record<string, unknown>[];
  catalogPath?: string;
  outDir: string;
  jobId: string;
}

export interface InjectOutcome {
  injectedRows: Record<string, unknown>[];
  detRows: Record<string, unknown>[];
  bins: Record<string, unknown>[];
  onImage: number;
  recovered: number;
  zeroPoint: number;
  psf: imaging.PsfModel;
  /** the injected image (params.write_images), relative to outDir */
  imageRel: string | null;
}

export type ImageJob = BackgroundJob | InjectJob;

// ---------------------------------------------------------------------------------------
// image.background

export async function computeBackground(job: BackgroundJob, signal?: AbortSignal): Promise<BackgroundOutcome> {
  const { ref, params: p, outDir } = job;
  const cx = await readCalexp(ref, signal);
  const { width: w, height: h } = cx.image;
  const bg = imaging.estimateBackground(cx.image, { mode: p.mode, boxSize: p.box, filterSize: p.filter, ...(signal ? { signal } : {}) });
  const sub = new Float32Array(w * h);
  for (let i = 0; i < sub.length; i++) sub[i] = cx.image.data[i]! - bg.background[i]!;

  const stem = imageStem(ref);
  const shape = [w, h];
  const bgCards: fits.FitsCard[] = [
    { key: 'BGMODE', value: p.mode, comment: 'ubatch image.background estimator' },
    { key: 'BGBOX', value: p.box, comment: 'background box size (pixels)' },
    { key: 'BGFILT', value: p.filter, comment: 'median filter size (boxes)' },
    { key: 'BGLEVEL', value: bg.globalBack, comment: 'median sky level subtracted (ADU)' },
    { key: 'BGRMS', value: bg.globalRms, comment: 'median sky noise (ADU)' },
    { key: 'BGSRC', value: ref.path.slice(-68), comment: 'input image (tail of path)' },
    { key: 'HISTORY', value: `ubatch image.background mode=${p.mode} box=${p.box} filter=${p.filter}` },
    { key: 'HISTORY', value: `ubatch job ${job.jobId}`.slice(0, 70) },
  ];
  const wcsOnly = cx.wcs.toCards();
  const calexpRel = `${stem}.calexp.fits`;
  const hdus: fits.WriteHdu[] = [
    { header: [...copyCards(cx.primary), ...bgCards], data: null },
    { header: [...copyCards(cx.imageHeader), ...bgCards.slice(0, 5)], data: sub, shape, bitpix: -32, name: 'IMAGE' },
  ];
  if (cx.image.mask) hdus.push({ header: copyCards(cx.maskHeader), data: cx.image.mask, shape, bitpix: 32, name: 'MASK' });
  if (cx.image.variance) hdus.push({ header: copyCards(cx.varianceHeader), data: cx.image.variance, shape, bitpix: -32, name: 'VARIANCE' });
  await fits.writeFits(join(outDir, calexpRel), hdus);
  let modelRel: string | null = null;
  if (p.writeModel) {
    modelRel = `${stem}.background.fits`;
    await fits.writeFits(join(outDir, modelRel), [
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
    await fits.writeFits(join(outDir, maskRel), [
      { header: [...copyCards(cx.primary), ...bgCards], data: null },
      { header: [...wcsOnly, { key: 'COMMENT', value: '1 = pixel left out of the sky estimate' }], data: m, shape, bitpix: 8, name: 'BGMASK' },
    ]);
  }
  return { width: w, height: h, globalBack: bg.globalBack, globalRms: bg.globalRms, meshWidth: bg.meshWidth, meshHeight: bg.meshHeight, calexpRel, modelRel, maskRel };
}

// ---------------------------------------------------------------------------------------
// image.inject

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

/** Catalog rows (ra, dec, mag [, id, kind, n, r_eff_arcsec, axis_ratio, pa_deg]) that fall on or near the image. */
function catalogSources(rows: readonly Record<string, unknown>[], path: string, cx: Calexp): imaging.InjectionSource[] {
  const where = '/params/catalog';
  const { width: w, height: h } = cx.image;
  const out: imaging.InjectionSource[] = [];
  rows.forEach((r, i) => {
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

export async function computeInject(job: InjectJob, signal?: AbortSignal): Promise<InjectOutcome> {
  const { ref, params: p, outDir } = job;
  const cx = await readCalexp(ref, signal);
  const sig = signal ? { signal } : {};
  const psf = psfOf(p, cx, ref.path);
  const { zeroPoint } = imaging.zeroPointFromHeader(cx.numeric, ref.path);
  const seed = hashSeed(`${p.seed}:${basename(ref.path)}:${ref.hdu}`);
  const sources = 'catalog' in p.sources ? catalogSources(job.catalogRows ?? [], p.sources.catalog, cx) : randomStars(p.sources, cx, psf, seed);
  const detOpts: imaging.DetectOptions = { psfFwhm: psf.fwhm, psf, thresholdSigma: p.thresholdSigma, ...sig };
  const bg0 = imaging.estimateBackground(cx.image, sig);
  const det0 = imaging.detectSources(cx.image, bg0, detOpts);
  const inj = imaging.injectSources(cx.image, cx.wcs, sources, { psf, zeroPoint, header: cx.numeric, poisson: p.poisson, seed, ...sig });
  const bg1 = imaging.estimateBackground(inj.image, sig);
  const det1 = imaging.detectSources(inj.image, bg1, { ...detOpts, wcs: cx.wcs, ...(cx.image.variance ? {} : { gain: inj.gain }) });

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

  let imageRel: string | null = null;
  if (p.writeImages) {
    const shape = [inj.image.width, inj.image.height];
    const cards: fits.FitsCard[] = [
      { key: 'INJN', value: onImage.length, comment: 'sources injected on the image' },
      { key: 'INJZP', value: zeroPoint, comment: 'zero point used (mag of 1 ADU)' },
      { key: 'INJPSF', value: psf.kind },
      { key: 'INJFWHM', value: psf.fwhm, comment: 'PSF FWHM (pixels)' },
      { key: 'HISTORY', value: `ubatch image.inject job ${job.jobId}`.slice(0, 70) },
    ];
    imageRel = `${imageStem(ref)}.injected.fits`;
    const hdus: fits.WriteHdu[] = [
      { header: [...copyCards(cx.primary), ...cards], data: null },
      { header: copyCards(cx.imageHeader), data: inj.image.data, shape, bitpix: -32, name: 'IMAGE' },
      { header: copyCards(cx.maskHeader), data: inj.image.mask, shape, bitpix: 32, name: 'MASK' },
    ];
    if (inj.image.variance) hdus.push({ header: copyCards(cx.varianceHeader), data: inj.image.variance, shape, bitpix: -32, name: 'VARIANCE' });
    await fits.writeFits(join(outDir, imageRel), hdus);
  }
  const recovered = onImage.filter((r) => r['recovered'] === true).length;
  return { injectedRows, detRows, bins, onImage: onImage.length, recovered, zeroPoint, psf, imageRel };
}

// ---------------------------------------------------------------------------------------
// running a job: on a pool thread, or here when no compiled entry exists

/** One image job, whichever kind (`signal`: only in-process; a thread is stopped by ending it). */
export function computeImageJob(job: ImageJob, signal?: AbortSignal): Promise<BackgroundOutcome | InjectOutcome> {
  return job.kind === 'background' ? computeBackground(job, signal) : computeInject(job, signal);
}

const NOT_ABORTED = new AbortController().signal;

/** An error thrown in the thread, classified as the executor would (InputError code/where kept). */
export function describeImageError(err: unknown): ThreadErrorInfo {
  const te = toTaskError(err, 'image task', NOT_ABORTED);
  if (te instanceof InputError) return { name: 'InputError', message: te.message, code: te.code, ...(te.where !== undefined ? { where: te.where } : {}) };
  return errorInfo(te);
}

const threadEntry = resolveThreadEntry(import.meta.url, 'image-thread');

/** How image jobs run in this process: 'threads' (a compiled entry exists) or 'in-process'. */
export const imageJobMode: 'threads' | 'in-process' = threadEntry === undefined ? 'in-process' : 'threads';

/**
 * Runs one image job on a pool thread (in-process without a compiled entry).
 * Aborting `signal` ends the thread; errors come back as the executor's task
 * errors (InputError, TaskCancelledError) or, for anything else, a retryable Error.
 */
export async function runImageJob(job: BackgroundJob, signal: AbortSignal): Promise<BackgroundOutcome>;
export async function runImageJob(job: InjectJob, signal: AbortSignal): Promise<InjectOutcome>;
export async function runImageJob(job: ImageJob, signal: AbortSignal): Promise<BackgroundOutcome | InjectOutcome> {
  try {
    const run = await runJobs(threadEntry, [job], { threads: 1, signal, inProcess: (j) => computeImageJob(j, signal) });
    return run.results[0]!;
  } catch (err) {
    if (err instanceof ThreadJobError) {
      if (err.remoteName === 'InputError') throw new InputError(err.message, err.code ?? 'invalid_input', err.where, { cause: err });
      if (err.remoteName === 'TaskCancelledError') throw new TaskCancelledError(err.message, { cause: err });
      throw new Error(`${err.remoteName}: ${err.message}`, { cause: err });
    }
    if (err instanceof ThreadAbortedError) throw new TaskCancelledError('cancelled', { cause: err });
    throw err;
  }
}

if (parentPort && isPoolThread(workerData)) serveThreadJobs<ImageJob, BackgroundOutcome | InjectOutcome>(parentPort, (j) => computeImageJob(j), { describe: describeImageError });
