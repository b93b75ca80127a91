/**
 * Source injection (stars with a Gaussian/Moffat PSF, Sérsic galaxies at catalog sky
 * positions) and injection–recovery tests (inject → background → detect → match).
 *
 * Zero point: counts = 10^(-0.4 (mag − ZP)), with ZP taken, in this order, from the
 * `zeroPoint` option, or the header: MAGZERO (ZP itself), FLUXMAG0 (counts of a mag-0
 * source: ZP = 2.5 log10 FLUXMAG0), PHOTCALIB (nJy per count, AB: ZP = 31.4 − 2.5 log10 PHOTCALIB).
 */
import { estimateBackground, type BackgroundOptions } from './background.js';
import { detectSources, type DetectOptions, type DetectedSource } from './detect.js';
import { ImagingOptionError, ZeroPointError, throwIfAborted } from './errors.js';
import { convolveStampGaussian, renderPsf, renderSersic, type ModelStamp, type PsfModel } from './profiles.js';
import { SeededRandom } from './rng.js';
import { MaskBit, type Image, type KernelRunOptions, type NumericHeader, type PixelSkyTransform } from './types.js';

export interface InjectedStar {
  kind: 'star';
  ra: number;
  dec: number;
  mag: number;
  id?: string | number;
}

export interface InjectedGalaxy {
  kind: 'sersic';
  ra: number;
  dec: number;
  mag: number;
  n: number;
  /** Half-light semi-major axis (arcsec). */
  rEffArcsec: number;
  axisRatio: number;
  /** Position angle of the major axis, degrees east of north. */
  positionAngleDeg: number;
  id?: string | number;
}

export type InjectionSource = InjectedStar | InjectedGalaxy;

export type ZeroPointSource = 'option' | 'MAGZERO' | 'FLUXMAG0' | 'PHOTCALIB';

/** Photometric zero point (mag of one count) from a header; see the module comment for the keys. */
export function zeroPointFromHeader(header: NumericHeader, path?: string): { zeroPoint: number; source: ZeroPointSource } {
  const magzero = header.getNumber('MAGZERO');
  if (magzero !== undefined && Number.isFinite(magzero)) return { zeroPoint: magzero, source: 'MAGZERO' };
  const fluxmag0 = header.getNumber('FLUXMAG0');
  if (fluxmag0 !== undefined && fluxmag0 > 0) return { zeroPoint: 2.5 * Math.log10(fluxmag0), source: 'FLUXMAG0' };
  const photcalib = header.getNumber('PHOTCALIB');
  if (photcalib !== undefined && photcalib > 0) return { zeroPoint: 31.4 - 2.5 * Math.log10(photcalib), source: 'PHOTCALIB' };
  throw new ZeroPointError('no photometric zero point: header has none of MAGZERO, FLUXMAG0, PHOTCALIB and no zeroPoint option was given', path !== undefined ? { path } : {});
}

export interface InjectOptions extends KernelRunOptions {
  /** PSF of the image (stars are drawn with it; galaxies are convolved with a Gaussian of its FWHM). */
  psf: PsfModel;
  /** Zero point (mag of 1 count); overrides the header. */
  zeroPoint?: number;
  /** Header to read the zero point (and GAIN) from. */
  header?: NumericHeader;
  /** e-/ADU for the variance update and Poisson noise. @default header GAIN, else 1 */
  gain?: number;
  /** Add Poisson noise to the injected counts. @default false */
  poisson?: boolean;
  /** Seed of the Poisson noise. @default 1 */
  seed?: number;
  /** Modify `img` instead of a copy. @default false */
  inPlace?: boolean;
  /** Set INJECTED where the injected model exceeds this (ADU). @default 0.1 × median √variance, or any positive value without variance */
  maskThreshold?: number;
}

export interface InjectedRecord {
  index: number;
  id?: string | number;
  kind: InjectionSource['kind'];
  ra: number;
  dec: number;
  mag: number;
  /** Pixel position (0-based) from the WCS. */
  x: number;
  y: number;
  /** Catalog counts (ADU). */
  flux: number;
  /** Model counts that landed on the image (less than flux near edges). */
  addedFlux: number;
  onImage: boolean;
}

export interface InjectionResult {
  image: Image & { mask: Int32Array };
  injected: InjectedRecord[];
  zeroPoint: number;
  zeroPointSource: ZeroPointSource;
  gain: number;
}

/** Pixel-frame orientation of a sky position angle and the local pixel scale, from the WCS. */
function localGeometry(wcs: PixelSkyTransform, ra: number, dec: number, x: number, y: number): { scaleArcsec: number; northX: number; northY: number; eastX: number; eastY: number } {
  const eps = 1 / 3600; // 1 arcsec
  const [nx, ny] = wcs.skyToPixel(ra, dec + eps);
  const [ex, ey] = wcs.skyToPixel(ra + eps / Math.cos((dec * Math.PI) / 180), dec);
  const northX = nx - x;
  const northY = ny - y;
  const eastX = ex - x;
  const eastY = ey - y;
  const pixPerArcsec = Math.sqrt(Math.abs(northX * eastY - northY * eastX));
  return { scaleArcsec: 1 / pixPerArcsec, northX, northY, eastX, eastY };
}

/** Renders the model of one source at pixel (x, y) with `flux` counts, unclipped. */
function renderSource(src: InjectionSource, wcs: PixelSkyTransform, x: number, y: number, flux: number, psf: PsfModel): ModelStamp {
  if (src.kind === 'star') return renderPsf(psf, x, y, flux);
  if (!(src.rEffArcsec > 0)) throw new ImagingOptionError('rEffArcsec', src.rEffArcsec, 'must be > 0');
  const g = localGeometry(wcs, src.ra, src.dec, x, y);
  const pa = (src.positionAngleDeg * Math.PI) / 180;
  const dx = Math.cos(pa) * g.northX + Math.sin(pa) * g.eastX;
  const dy = Math.cos(pa) * g.northY + Math.sin(pa) * g.eastY;
  const thetaDeg = (Math.atan2(dy, dx) * 180) / Math.PI;
  const shape = { n: src.n, rEffPx: src.rEffArcsec / g.scaleArcsec, axisRatio: src.axisRatio, thetaDeg };
  return convolveStampGaussian(renderSersic(shape, x, y, flux, undefined, 0.995, 2000), psf.fwhm);
}

/**
 * Injects sources into (a copy of) `img`: adds the models, optionally Poisson noise, adds
 * model/gain to the variance plane (when there is one) and sets the INJECTED mask bit.
 * @throws ZeroPointError when no zero point is available
 */
export function injectSources(img: Image, wcs: PixelSkyTransform, sources: readonly InjectionSource[], opts: InjectOptions): InjectionResult {
  const { width: w, height: h } = img;
  let zeroPoint: number;
  let zeroPointSource: ZeroPointSource;
  if (opts.zeroPoint !== undefined) {
    zeroPoint = opts.zeroPoint;
    zeroPointSource = 'option';
  } else if (opts.header !== undefined) {
    ({ zeroPoint, source: zeroPointSource } = zeroPointFromHeader(opts.header));
  } else {
    throw new ZeroPointError('injectSources needs a zeroPoint option or a header with MAGZERO, FLUXMAG0 or PHOTCALIB');
  }
  const gain = opts.gain ?? opts.header?.getNumber('GAIN') ?? 1;
  if (!(gain > 0)) throw new ImagingOptionError('gain', gain, 'must be > 0');
  const inPlace = opts.inPlace ?? false;
  const data = inPlace ? img.data : Float32Array.from(img.data);
  const mask = img.mask !== undefined ? (inPlace ? img.mask : Int32Array.from(img.mask)) : new Int32Array(w * h);
  const variance = img.variance !== undefined ? (inPlace ? img.variance : Float32Array.from(img.variance)) : undefined;
  let maskThreshold = opts.maskThreshold;
  if (maskThreshold === undefined) {
    if (variance !== undefined) {
      const sample: number[] = [];
      const step = Math.max(1, Math.floor(variance.length / 10000));
      for (let i = 0; i < variance.length; i += step) sample.push(variance[i]!);
      sample.sort((a, b) => a - b);
      maskThreshold = 0.1 * Math.sqrt(Math.max(0, sample[sample.length >> 1] ?? 0));
    } else maskThreshold = 0;
  }
  const rng = new SeededRandom(opts.seed ?? 1);
  const injected: InjectedRecord[] = [];
  for (let s = 0; s < sources.length; s++) {
    if ((s & 15) === 0) {
      throwIfAborted(opts.signal, 'source injection');
      opts.onProgress?.(s, sources.length);
    }
    const src = sources[s]!;
    const [x, y] = wcs.skyToPixel(src.ra, src.dec);
    const flux = 10 ** (-0.4 * (src.mag - zeroPoint));
    const rec: InjectedRecord = { index: s, kind: src.kind, ra: src.ra, dec: src.dec, mag: src.mag, x, y, flux, addedFlux: 0, onImage: false };
    if (src.id !== undefined) rec.id = src.id;
    injected.push(rec);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const stamp = renderSource(src, wcs, x, y, flux, opts.psf);
    const xa = Math.max(0, stamp.x0);
    const ya = Math.max(0, stamp.y0);
    const xb = Math.min(w, stamp.x0 + stamp.width);
    const yb = Math.min(h, stamp.y0 + stamp.height);
    let added = 0;
    for (let yy = ya; yy < yb; yy++) {
      for (let xx = xa; xx < xb; xx++) {
        const m = stamp.data[(yy - stamp.y0) * stamp.width + (xx - stamp.x0)]!;
        if (m === 0) continue;
        const p = yy * w + xx;
        const counts = opts.poisson === true && m > 0 ? rng.poisson(m * gain) / gain : m;
        data[p] = data[p]! + counts;
        added += m;
        if (variance !== undefined && m > 0) variance[p] = variance[p]! + m / gain;
        if (m > maskThreshold) mask[p] = mask[p]! | MaskBit.INJECTED;
      }
    }
    rec.addedFlux = added;
    rec.onImage = x >= -0.5 && y >= -0.5 && x <= w - 0.5 && y <= h - 0.5;
  }
  opts.onProgress?.(sources.length, sources.length);
  const image: Image & { mask: Int32Array } = { width: w, height: h, data, mask };
  if (variance !== undefined) image.variance = variance;
  return { image, injected, zeroPoint, zeroPointSource, gain };
}

// ---------------------------------------------------------------------------------------

export interface RecoveryImage {
  image: Image;
  wcs: PixelSkyTransform;
  header?: NumericHeader;
  zeroPoint?: number;
  gain?: number;
}

export interface InjectionRecoveryOptions extends KernelRunOptions {
  psf: PsfModel;
  /** Magnitude bin edges. @default 16..26 by 0.5 */
  magBins?: readonly number[];
  /** Match radius (pixels). @default 2 */
  matchRadiusPx?: number;
  detect?: Omit<DetectOptions, 'signal' | 'onProgress' | 'wcs'>;
  background?: Omit<BackgroundOptions, 'signal' | 'onProgress'>;
  poisson?: boolean;
  seed?: number;
}

export interface RecoveryMatch {
  imageIndex: number;
  sourceIndex: number;
  mag: number;
  kind: InjectionSource['kind'];
  recovered: boolean;
  /** Catalog counts. */
  flux: number;
  /** PSF flux (stars) or largest-aperture flux (galaxies) of the match; NaN when not recovered. */
  measuredFlux: number;
  measuredFluxErr: number;
  dx: number;
  dy: number;
}

export interface RecoveryBin {
  magMin: number;
  magMax: number;
  nInjected: number;
  nRecovered: number;
  completeness: number;
  /** Median of measured / injected flux among recovered sources. */
  medianFluxRatio: number;
  /** Robust σ (1.4826 MAD) of (measured − injected) / error among recovered sources: ~1 when errors are right. */
  pullSigma: number;
}

export interface InjectionRecoveryResult {
  bins: RecoveryBin[];
  matches: RecoveryMatch[];
}

/** The detected source closest to (x, y) within r pixels, or undefined. */
export function nearestSource(sources: readonly DetectedSource[], x: number, y: number, r: number): DetectedSource | undefined {
  let best: DetectedSource | undefined;
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

function median(v: number[]): number {
  if (v.length === 0) return Number.NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : 0.5 * (s[m - 1]! + s[m]!);
}

/**
 * Injects `sources` into every image, re-runs background + detection, and matches. A source
 * counts as recovered when a detection lies within matchRadiusPx of it and that detection
 * does not also match a detection of the original image (a pre-existing source).
 */
export function injectionRecovery(images: readonly RecoveryImage[], sources: readonly InjectionSource[], opts: InjectionRecoveryOptions): InjectionRecoveryResult {
  const edges = [...(opts.magBins ?? Array.from({ length: 21 }, (_, i) => 16 + 0.5 * i))];
  if (edges.length < 2) throw new ImagingOptionError('magBins', edges, 'need at least two bin edges');
  const radius = opts.matchRadiusPx ?? 2;
  const matches: RecoveryMatch[] = [];
  for (let k = 0; k < images.length; k++) {
    throwIfAborted(opts.signal, 'injection recovery');
    const ri = images[k]!;
    const bg0 = estimateBackground(ri.image, opts.background ?? {});
    const det0 = detectSources(ri.image, bg0, { psfFwhm: opts.psf.fwhm, psf: opts.psf, ...(opts.detect ?? {}) });
    const injOpts: InjectOptions = { psf: opts.psf, poisson: opts.poisson ?? false, seed: (opts.seed ?? 1) + k };
    if (ri.zeroPoint !== undefined) injOpts.zeroPoint = ri.zeroPoint;
    if (ri.header !== undefined) injOpts.header = ri.header;
    if (ri.gain !== undefined) injOpts.gain = ri.gain;
    const inj = injectSources(ri.image, ri.wcs, sources, injOpts);
    const bg1 = estimateBackground(inj.image, opts.background ?? {});
    const detOpts: DetectOptions = { psfFwhm: opts.psf.fwhm, psf: opts.psf, ...(opts.detect ?? {}) };
    if (inj.gain !== undefined) detOpts.gain = inj.gain;
    const det1 = detectSources(inj.image, bg1, detOpts);
    for (const rec of inj.injected) {
      if (!rec.onImage) continue;
      const m = nearestSource(det1.sources, rec.x, rec.y, radius);
      const preexisting = m !== undefined && nearestSource(det0.sources, m.x, m.y, radius) !== undefined;
      const recovered = m !== undefined && !preexisting;
      const useAp = rec.kind === 'sersic';
      const last = m === undefined ? -1 : m.apertureFlux.length - 1;
      matches.push({
        imageIndex: k,
        sourceIndex: rec.index,
        mag: rec.mag,
        kind: rec.kind,
        recovered,
        flux: rec.flux,
        measuredFlux: recovered ? (useAp ? m.apertureFlux[last]! : m.psfFlux) : Number.NaN,
        measuredFluxErr: recovered ? (useAp ? m.apertureFluxErr[last]! : m.psfFluxErr) : Number.NaN,
        dx: recovered ? m.x - rec.x : Number.NaN,
        dy: recovered ? m.y - rec.y : Number.NaN,
      });
    }
    opts.onProgress?.(k + 1, images.length);
  }
  const bins: RecoveryBin[] = [];
  for (let b = 0; b + 1 < edges.length; b++) {
    const lo = edges[b]!;
    const hi = edges[b + 1]!;
    const inBin = matches.filter((m) => m.mag >= lo && m.mag < hi);
    const rec = inBin.filter((m) => m.recovered);
    const ratios = rec.map((m) => m.measuredFlux / m.flux);
    const pulls = rec.filter((m) => m.measuredFluxErr > 0).map((m) => (m.measuredFlux - m.flux) / m.measuredFluxErr);
    const medPull = median(pulls);
    bins.push({
      magMin: lo,
      magMax: hi,
      nInjected: inBin.length,
      nRecovered: rec.length,
      completeness: inBin.length > 0 ? rec.length / inBin.length : Number.NaN,
      medianFluxRatio: median(ratios),
      pullSigma: 1.4826 * median(pulls.map((p) => Math.abs(p - medPull))),
    });
  }
  return { bins, matches };
}
