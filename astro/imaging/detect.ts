/**
 * Source detection and photometry: PSF-matched filter, threshold in σ of the filtered noise,
 * 8-connected components above a minimum area (no deblending), then per source isophotal and
 * windowed centroids, circular-aperture fluxes with errors, a PSF-weighted flux and flags.
 */
import { connectedComponents, convolveSeparableFast, gaussianKernel1d } from './filters.js';
import { ImageShapeError, ImagingOptionError, throwIfAborted } from './errors.js';
import { FWHM_PER_SIGMA, renderPsf, type PsfModel } from './profiles.js';
import { DEFAULT_BAD_MASK, MaskBit, type Image, type KernelRunOptions, type PixelSkyTransform } from './types.js';

/** Bits of {@link DetectedSource.flags}. */
export const SourceFlag = {
  /** The segment touches the image border or an aperture/PSF fit area leaves the image. */
  EDGE: 1 << 0,
  /** A pixel of the segment is saturated (SAT mask bit or ≥ `saturation`). */
  SATURATED: 1 << 1,
  /** Pixels inside the largest aperture are masked (left out of the sums). */
  MASKED: 1 << 2,
  /** The windowed centroid did not converge; x/y fall back to the isophotal centroid. */
  WINDOW_FAILED: 1 << 3,
} as const;

export interface DetectOptions extends KernelRunOptions {
  /** Detection threshold in σ of the matched-filtered noise. @default 5 */
  thresholdSigma?: number;
  /** FWHM (pixels) of the Gaussian matched filter, the window of the windowed centroid and the default PSF model. @default 3 */
  psfFwhm?: number;
  /** PSF model for the PSF-weighted flux. @default Gaussian of psfFwhm */
  psf?: PsfModel;
  /** Minimum number of pixels above threshold. @default 5 */
  minArea?: number;
  /** Aperture radii (pixels). @default [3, 6, 9] */
  apertureRadii?: readonly number[];
  /** Gives ra/dec for each source when present. */
  wcs?: PixelSkyTransform;
  /** Pixels at or above this value (ADU, background included) count as saturated. */
  saturation?: number;
  /** e-/ADU: adds the source Poisson term to errors when the image has no variance plane. */
  gain?: number;
  /** Mask bits whose pixels are left out of detection and sums. @default BAD|SAT|NO_DATA|CR */
  maskBits?: number;
  /** Windowed centroid refinement. @default true */
  windowed?: boolean;
}

export interface DetectedSource {
  id: number;
  /** Best centroid (windowed when it converged), 0-based pixels. */
  x: number;
  y: number;
  /** Isophotal first-moment centroid. */
  xIso: number;
  yIso: number;
  ra?: number;
  dec?: number;
  npix: number;
  /** Highest background-subtracted pixel in the segment (ADU). */
  peak: number;
  /** Sum of background-subtracted pixels in the segment. */
  isoFlux: number;
  apertureRadii: number[];
  apertureFlux: number[];
  apertureFluxErr: number[];
  psfFlux: number;
  psfFluxErr: number;
  /** Semi-axes (pixels) and angle (degrees from +x) from the isophotal second moments. */
  a: number;
  b: number;
  thetaDeg: number;
  flags: number;
}

export interface DetectionResult {
  sources: DetectedSource[];
  /** Segment id per pixel (0 = none). */
  segmentation: Int32Array;
  /** σ of the filtered noise per unit pixel σ (Σ k1² of the separable kernel). */
  filterNoiseFactor: number;
}

export interface BackgroundLike {
  background: Float32Array;
  rms: Float32Array;
}

export interface CompiledDetectOptions {
  thresholdSigma: number;
  psfFwhm: number;
  psf: PsfModel;
  minArea: number;
  apertureRadii: number[];
  maskBits: number;
  windowed: boolean;
  saturation: number | undefined;
  gain: number | undefined;
}

export function compileDetectOptions(opts: DetectOptions = {}): CompiledDetectOptions {
  const thresholdSigma = opts.thresholdSigma ?? 5;
  if (!(thresholdSigma > 0)) throw new ImagingOptionError('thresholdSigma', thresholdSigma, 'must be > 0');
  const psfFwhm = opts.psfFwhm ?? opts.psf?.fwhm ?? 3;
  if (!(psfFwhm > 0)) throw new ImagingOptionError('psfFwhm', psfFwhm, 'must be > 0 pixels');
  const minArea = opts.minArea ?? 5;
  if (!Number.isInteger(minArea) || minArea < 1) throw new ImagingOptionError('minArea', minArea, 'must be a positive integer');
  const apertureRadii = [...(opts.apertureRadii ?? [3, 6, 9])];
  if (apertureRadii.length === 0 || apertureRadii.some((r) => !(r > 0))) throw new ImagingOptionError('apertureRadii', apertureRadii, 'need at least one radius > 0');
  if (opts.gain !== undefined && !(opts.gain > 0)) throw new ImagingOptionError('gain', opts.gain, 'must be > 0');
  return {
    thresholdSigma,
    psfFwhm,
    psf: opts.psf ?? { kind: 'gaussian', fwhm: psfFwhm },
    minArea,
    apertureRadii,
    maskBits: opts.maskBits ?? DEFAULT_BAD_MASK,
    windowed: opts.windowed ?? true,
    saturation: opts.saturation,
    gain: opts.gain,
  };
}

/** Detects sources in `img` above the background `bg` and measures them. */
export function detectSources(img: Image, bg: BackgroundLike, opts: DetectOptions = {}): DetectionResult {
  const o = compileDetectOptions(opts);
  const { width: w, height: h, data } = img;
  const n = w * h;
  if (data.length !== n) throw new ImageShapeError(`data has ${data.length} pixels`, w, h);
  if (bg.background.length !== n || bg.rms.length !== n) throw new ImageShapeError('background/rms maps do not match the image', w, h);
  const mask = img.mask;
  const bad = new Uint8Array(n);
  const resid = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = data[i]! - bg.background[i]!;
    if (v !== v || (mask !== undefined && (mask[i]! & o.maskBits) !== 0)) bad[i] = 1;
    else resid[i] = v;
  }
  throwIfAborted(opts.signal, 'detection filter');
  const k = gaussianKernel1d(o.psfFwhm / FWHM_PER_SIGMA, 4);
  let k2 = 0;
  for (let i = 0; i < k.length; i++) k2 += k[i]! * k[i]!;
  const filtered = convolveSeparableFast(resid, w, h, k);
  const above = new Uint8Array(n);
  const t = o.thresholdSigma * k2;
  for (let i = 0; i < n; i++) if (bad[i] === 0 && filtered[i]! > t * bg.rms[i]!) above[i] = 1;
  const comps = connectedComponents(above, w, h, o.minArea, true);
  const segmentation = new Int32Array(n);
  const sources: DetectedSource[] = [];
  const psfRender = o.psf;
  const sigmaW = o.psfFwhm / FWHM_PER_SIGMA;
  const maxR = Math.max(...o.apertureRadii);
  for (let c = 0; c < comps.count; c++) {
    if ((c & 63) === 0) {
      throwIfAborted(opts.signal, 'source measurement');
      opts.onProgress?.(c, comps.count);
    }
    const a0 = comps.offsets[c]!;
    const a1 = comps.offsets[c + 1]!;
    const id = sources.length + 1;
    let sum = 0;
    let sx = 0;
    let sy = 0;
    let peak = -Infinity;
    let flags = 0;
    let x0 = w;
    let y0 = h;
    let x1 = -1;
    let y1 = -1;
    for (let q = a0; q < a1; q++) {
      const p = comps.pixels[q]!;
      segmentation[p] = id;
      const px = p % w;
      const py = (p - px) / w;
      const v = resid[p]!;
      if (v > peak) peak = v;
      if (v > 0) {
        sum += v;
        sx += v * px;
        sy += v * py;
      }
      if (px < x0) x0 = px;
      if (px > x1) x1 = px;
      if (py < y0) y0 = py;
      if (py > y1) y1 = py;
      if (mask !== undefined && (mask[p]! & MaskBit.SAT) !== 0) flags |= SourceFlag.SATURATED;
      if (o.saturation !== undefined && data[p]! >= o.saturation) flags |= SourceFlag.SATURATED;
    }
    if (!(sum > 0)) continue;
    // Saturated neighbours are masked out of detection, so look one pixel around the segment too.
    if (mask !== undefined && (flags & SourceFlag.SATURATED) === 0) {
      for (let yy = Math.max(0, y0 - 1); yy <= Math.min(h - 1, y1 + 1) && (flags & SourceFlag.SATURATED) === 0; yy++) {
        for (let xx = Math.max(0, x0 - 1); xx <= Math.min(w - 1, x1 + 1); xx++) {
          if ((mask[yy * w + xx]! & MaskBit.SAT) !== 0) {
            flags |= SourceFlag.SATURATED;
            break;
          }
        }
      }
    }
    if (x0 === 0 || y0 === 0 || x1 === w - 1 || y1 === h - 1) flags |= SourceFlag.EDGE;
    const xIso = sx / sum;
    const yIso = sy / sum;
    let mxx = 0;
    let myy = 0;
    let mxy = 0;
    for (let q = a0; q < a1; q++) {
      const p = comps.pixels[q]!;
      const v = resid[p]!;
      if (v <= 0) continue;
      const dx = (p % w) - xIso;
      const dy = Math.floor(p / w) - yIso;
      mxx += v * dx * dx;
      myy += v * dy * dy;
      mxy += v * dx * dy;
    }
    mxx /= sum;
    myy /= sum;
    mxy /= sum;
    const tr = 0.5 * (mxx + myy);
    const det = Math.sqrt(Math.max(0, 0.25 * (mxx - myy) ** 2 + mxy * mxy));
    const aAxis = Math.sqrt(Math.max(0, tr + det));
    const bAxis = Math.sqrt(Math.max(0, tr - det));
    const thetaDeg = (0.5 * Math.atan2(2 * mxy, mxx - myy) * 180) / Math.PI;

    let x = xIso;
    let y = yIso;
    if (o.windowed) {
      const win = windowedCentroid(resid, bad, w, h, xIso, yIso, sigmaW);
      if (win === undefined) flags |= SourceFlag.WINDOW_FAILED;
      else {
        x = win[0];
        y = win[1];
      }
    }
    const apertureFlux: number[] = [];
    const apertureFluxErr: number[] = [];
    for (const r of o.apertureRadii) {
      const ap = apertureSum(resid, bad, img.variance, bg.rms, w, h, x, y, r, o.gain);
      apertureFlux.push(ap.flux);
      apertureFluxErr.push(Math.sqrt(ap.variance));
      if (ap.truncated) flags |= SourceFlag.EDGE;
      if (r === maxR && ap.masked) flags |= SourceFlag.MASKED;
    }
    const pf = psfFlux(resid, bad, img.variance, bg.rms, w, h, x, y, psfRender, o.gain);
    if (pf.truncated) flags |= SourceFlag.EDGE;
    const src: DetectedSource = {
      id,
      x,
      y,
      xIso,
      yIso,
      npix: a1 - a0,
      peak,
      isoFlux: sum,
      apertureRadii: [...o.apertureRadii],
      apertureFlux,
      apertureFluxErr,
      psfFlux: pf.flux,
      psfFluxErr: pf.err,
      a: aAxis,
      b: bAxis,
      thetaDeg,
      flags,
    };
    if (opts.wcs !== undefined) {
      const [ra, dec] = opts.wcs.pixelToSky(x, y);
      src.ra = ra;
      src.dec = dec;
    }
    sources.push(src);
  }
  opts.onProgress?.(comps.count, comps.count);
  return { sources, segmentation, filterNoiseFactor: k2 };
}

/**
 * SExtractor-style windowed centroid: iterate x ← x + 2 Σ w I (x_i − x) / Σ w I with a Gaussian
 * window of σ = FWHM/2.355, within 4σ. Returns undefined when it fails to converge or wanders off.
 */
export function windowedCentroid(
  resid: Float32Array,
  bad: Uint8Array,
  w: number,
  h: number,
  x0: number,
  y0: number,
  sigma: number,
): [number, number] | undefined {
  const rmax = 4 * sigma;
  const inv2s2 = 1 / (2 * sigma * sigma);
  let x = x0;
  let y = y0;
  for (let iter = 0; iter < 30; iter++) {
    let sw = 0;
    let sdx = 0;
    let sdy = 0;
    const ya = Math.max(0, Math.floor(y - rmax));
    const yb = Math.min(h - 1, Math.ceil(y + rmax));
    const xa = Math.max(0, Math.floor(x - rmax));
    const xb = Math.min(w - 1, Math.ceil(x + rmax));
    for (let yy = ya; yy <= yb; yy++) {
      const dy = yy - y;
      for (let xx = xa; xx <= xb; xx++) {
        const p = yy * w + xx;
        if (bad[p] !== 0) continue;
        const dx = xx - x;
        const r2 = dx * dx + dy * dy;
        if (r2 > rmax * rmax) continue;
        const wi = Math.exp(-r2 * inv2s2) * resid[p]!;
        sw += wi;
        sdx += wi * dx;
        sdy += wi * dy;
      }
    }
    if (!(sw > 0)) return undefined;
    const ddx = (2 * sdx) / sw;
    const ddy = (2 * sdy) / sw;
    x += ddx;
    y += ddy;
    if (Math.hypot(x - x0, y - y0) > 2 * sigma + 2) return undefined;
    if (ddx * ddx + ddy * ddy < 1e-10) return [x, y];
  }
  return [x, y];
}

/** Fraction of pixel (px, py) inside the circle (x, y, r): exact inside/outside, 8×8 sub-sampling on the boundary. */
function pixelOverlap(px: number, py: number, x: number, y: number, r: number): number {
  const dx = Math.abs(px - x);
  const dy = Math.abs(py - y);
  const far = (dx + 0.5) ** 2 + (dy + 0.5) ** 2;
  if (far <= r * r) return 1;
  const nx = Math.max(0, dx - 0.5);
  const ny = Math.max(0, dy - 0.5);
  if (nx * nx + ny * ny >= r * r) return 0;
  const s = 8;
  let inside = 0;
  for (let j = 0; j < s; j++) {
    const yy = py - 0.5 + (j + 0.5) / s - y;
    for (let i = 0; i < s; i++) {
      const xx = px - 0.5 + (i + 0.5) / s - x;
      if (xx * xx + yy * yy <= r * r) inside++;
    }
  }
  return inside / (s * s);
}

/** Circular aperture sum of background-subtracted pixels with its variance. */
export function apertureSum(
  resid: Float32Array,
  bad: Uint8Array,
  variance: Float32Array | undefined,
  rms: Float32Array,
  w: number,
  h: number,
  x: number,
  y: number,
  r: number,
  gain?: number,
): { flux: number; variance: number; masked: boolean; truncated: boolean } {
  let flux = 0;
  let varSum = 0;
  let masked = false;
  let truncated = false;
  const ya = Math.floor(y - r - 1);
  const yb = Math.ceil(y + r + 1);
  const xa = Math.floor(x - r - 1);
  const xb = Math.ceil(x + r + 1);
  for (let yy = ya; yy <= yb; yy++) {
    for (let xx = xa; xx <= xb; xx++) {
      const f = pixelOverlap(xx, yy, x, y, r);
      if (f === 0) continue;
      if (xx < 0 || yy < 0 || xx >= w || yy >= h) {
        truncated = true;
        continue;
      }
      const p = yy * w + xx;
      if (bad[p] !== 0) {
        masked = true;
        continue;
      }
      const v = resid[p]!;
      flux += f * v;
      if (variance !== undefined) varSum += f * variance[p]!;
      else varSum += f * rms[p]! * rms[p]!;
    }
  }
  if (variance === undefined && gain !== undefined && flux > 0) varSum += flux / gain;
  return { flux, variance: varSum, masked, truncated };
}

/**
 * PSF-weighted flux at a fixed position: F = Σ P D / V_sky / Σ P² / V_sky over pixels within
 * 2·FWHM, with P the pixel-integrated PSF of unit total flux. The error propagates the full
 * variance (variance plane when present, which includes the source's own Poisson noise).
 */
export function psfFlux(
  resid: Float32Array,
  bad: Uint8Array,
  variance: Float32Array | undefined,
  rms: Float32Array,
  w: number,
  h: number,
  x: number,
  y: number,
  psf: PsfModel,
  gain?: number,
): { flux: number; err: number; truncated: boolean } {
  const radius = Math.max(2, 2 * psf.fwhm);
  const model = renderPsf(psf, x, y, 1);
  let spd = 0;
  let spp = 0;
  let sErr = 0;
  let truncated = false;
  const r2 = radius * radius;
  for (let j = 0; j < model.height; j++) {
    const yy = model.y0 + j;
    for (let i = 0; i < model.width; i++) {
      const xx = model.x0 + i;
      if ((xx - x) ** 2 + (yy - y) ** 2 > r2) continue;
      if (xx < 0 || yy < 0 || xx >= w || yy >= h) {
        truncated = true;
        continue;
      }
      const p = yy * w + xx;
      if (bad[p] !== 0) continue;
      const pv = model.data[j * model.width + i]!;
      const vs = rms[p]! * rms[p]!;
      if (!(vs > 0)) continue;
      spd += (pv * resid[p]!) / vs;
      spp += (pv * pv) / vs;
      const vFull = variance !== undefined ? variance[p]! : vs;
      sErr += ((pv / vs) * (pv / vs)) * vFull;
    }
  }
  if (!(spp > 0)) return { flux: Number.NaN, err: Number.NaN, truncated };
  const flux = spd / spp;
  let varF = sErr / (spp * spp);
  if (variance === undefined && gain !== undefined && flux > 0) {
    // Source Poisson term with sky weights: Σ (P/vs)² · F·P/gain / (Σ P²/vs)².
    let sp = 0;
    for (let j = 0; j < model.height; j++) {
      const yy = model.y0 + j;
      for (let i = 0; i < model.width; i++) {
        const xx = model.x0 + i;
        if (xx < 0 || yy < 0 || xx >= w || yy >= h || (xx - x) ** 2 + (yy - y) ** 2 > r2) continue;
        const p = yy * w + xx;
        if (bad[p] !== 0) continue;
        const pv = model.data[j * model.width + i]!;
        const vs = rms[p]! * rms[p]!;
        if (vs > 0) sp += ((pv / vs) * (pv / vs)) * ((flux * pv) / gain);
      }
    }
    varF += sp / (spp * spp);
  }
  return { flux, err: Math.sqrt(varF), truncated };
}
