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
 * For image.stamps one job is the task's whole patch: every stamp, preview
 * and multi-epoch stack is cut and written here (cutting from cached planes,
 * Lanczos shifts and stacking kept the loop busy for seconds at a time).
 *
 * Errors are classified in the thread the way the executor would
 * (toTaskError: InputError / TaskCancelledError / retryable) and rebuilt on
 * the executor's side by {@link runImageJob}. Without a compiled entry
 * (sources run under vitest with no dist/), the same functions run in-process.
 */
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { fits, imaging, wcs as wcsNs } from '../../astro/index.js';
import { InputError, TaskCancelledError } from '../errors.js';
import { copyCards, ImageParamError, imageStem, magBinEdges, readCalexp, safeName, toTaskError, type BackgroundParams, type Calexp, type ImageRef, type InjectParams, type StampsParams, type StampsUnit } from './image-common.js';
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

export type ImageJob = BackgroundJob | InjectJob | StampsJob;
type ImageOutcome = BackgroundOutcome | InjectOutcome | StampsOutcome;

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
    const m = rec.onImage ? imaging.nearestSource(det1.sources, rec.x, rec.y, p.matchRadiusPx) : undefined;
    const pre = m !== undefined && imaging.nearestSource(det0.sources, m.x, m.y, p.matchRadiusPx) !== undefined;
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
// image.stamps

export interface StampsJob {
  kind: 'stamps';
  unit: StampsUnit;
  params: StampsParams;
  outDir: string;
}

/** One stamp row; `fits`/`png` are filled by the executor from fitsRel/pngRel (committed paths). */
export interface StampRowOut extends Record<string, unknown> {
  id: string;
  band: string | null;
  mjd: number | null;
  fitsRel: string;
  pngRel: string | null;
}

export interface StackRowOut extends Record<string, unknown> {
  id: string;
  band: string | null;
  fitsRel: string;
  pngRel: string | null;
}

export interface StampsOutcome {
  /** sorted by id, then MJD */
  rows: StampRowOut[];
  stackRows: StackRowOut[];
  /** every file written (stamps, previews, stacks), relative to outDir, in writing order */
  written: string[];
}

export async function computeStamps(job: StampsJob, signal?: AbortSignal): Promise<StampsOutcome> {
  const { unit, params: p, outDir } = job;
  // image stems name the stamp files: make them unique within the task
  const stems = new Map<string, ImageRef>();
  for (const ref of unit.images) {
    let s = imageStem(ref);
    for (let k = 2; stems.has(s); k++) s = `${imageStem(ref)}-${k}`;
    stems.set(s, ref);
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
  const rows: StampRowOut[] = [];
  const written: string[] = [];
  const madeDirs = new Set<string>();
  for await (const st of imaging.streamStampsFromFiles(files, unit.targets, p.size, { resample: p.resample, ...(signal ? { signal } : {}) })) {
    const id = String(st.requestId ?? '');
    const t = byId.get(id);
    const stem = st.imageId;
    const ref = stems.get(stem);
    if (!t || !ref) continue;
    const dir = `stamps/${safeName(id)}`;
    const fitsRel = `${dir}/${stem}.fits`;
    if (!madeDirs.has(dir)) {
      await mkdir(join(outDir, dir), { recursive: true });
      madeDirs.add(dir);
    }
    const extra: fits.FitsCard[] = [{ key: 'PARENT', value: ref.path.slice(-68), comment: 'parent image (tail of path)' }, { key: 'PARENTHD', value: ref.hdu }];
    if (ref.visit !== null) extra.push({ key: 'VISIT', value: ref.visit });
    if (ref.detector !== null) extra.push({ key: 'DETECTOR', value: ref.detector });
    if (st.band === undefined && ref.band !== null) extra.push({ key: 'BAND', value: ref.band });
    await imaging.writeStampFits(join(outDir, fitsRel), st, extra);
    written.push(fitsRel);
    let pngRel: string | null = null;
    if (p.png) {
      pngRel = `${dir}/${stem}.png`;
      await imaging.writeStampPng(join(outDir, pngRel), st, p.stretch);
      written.push(pngRel);
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
      fitsRel,
      pngRel,
    });
  }
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : (a.mjd ?? Infinity) - (b.mjd ?? Infinity)));

  const stackRows: StackRowOut[] = [];
  if (p.stack) {
    // second pass over this task's own stamps: one object and band at a time, so memory stays at one stack
    await mkdir(join(outDir, 'stacks'), { recursive: true });
    const groups = new Map<string, StampRowOut[]>();
    for (const r of rows) {
      const k = `${r.id}\u0000${r.band ?? ''}`;
      const g = groups.get(k);
      if (g) g.push(r);
      else groups.set(k, [r]);
    }
    for (const g of groups.values()) {
      signal?.throwIfAborted();
      const first = g[0]!;
      const stamps: imaging.Stamp[] = [];
      for (const r of g) stamps.push(await readStamp(join(outDir, r.fitsRel)));
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
      await fits.writeFits(join(outDir, `${base}.fits`), [
        { header: primary, data: null },
        { header: wcsCards, data: stack.median, shape, bitpix: -32, name: 'MEDIAN' },
        { header: wcsCards, data: Int32Array.from(stack.count), shape, bitpix: 32, name: 'COUNT' },
        { header: [...wcsCards, { key: 'COMMENT', value: 'plane k = epoch k in MJD order' }], data: stack.cube, shape: [stack.size, stack.size, stack.stamps.length], bitpix: -32, name: 'CUBE' },
      ]);
      written.push(`${base}.fits`);
      let pngRel: string | null = null;
      if (p.png) {
        pngRel = `${base}.png`;
        await imaging.writeStampPng(join(outDir, pngRel), { data: stack.median, size: stack.size }, p.stretch);
        written.push(pngRel);
      }
      stackRows.push({
        id: first.id,
        band: first.band,
        n_epochs: stack.stamps.length,
        mjd_min: mjds.length > 0 ? Math.min(...mjds) : null,
        mjd_max: mjds.length > 0 ? Math.max(...mjds) : null,
        fitsRel: `${base}.fits`,
        pngRel,
      });
    }
  }
  return { rows, stackRows, written };
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

// ---------------------------------------------------------------------------------------
// running a job: on a pool thread, or here when no compiled entry exists

/** One image job, whichever kind (`signal`: only in-process; a thread is stopped by ending it). */
export function computeImageJob(job: ImageJob, signal?: AbortSignal): Promise<ImageOutcome> {
  return job.kind === 'background' ? computeBackground(job, signal) : job.kind === 'inject' ? computeInject(job, signal) : computeStamps(job, signal);
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
export async function runImageJob(job: StampsJob, signal: AbortSignal): Promise<StampsOutcome>;
export async function runImageJob(job: ImageJob, signal: AbortSignal): Promise<ImageOutcome> {
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

if (parentPort && isPoolThread(workerData)) serveThreadJobs<ImageJob, ImageOutcome>(parentPort, (j) => computeImageJob(j), { describe: describeImageError });
