/**
 * Light profiles rendered into pixel stamps: Gaussian and Moffat PSFs, Sérsic galaxies.
 * Every stamp integrates the profile over pixels (exact erf for the Gaussian, sub-pixel
 * sampling that gets finer towards the centre for the others) and is normalised so that
 * the unclipped stamp sums to the requested flux: a truncated wing's flux is returned to
 * the stamp rather than lost.
 */
import { erf, gammaP, logGamma } from './rng.js';
import { ImagingOptionError } from './errors.js';

export type PsfModel = { kind: 'gaussian'; fwhm: number } | { kind: 'moffat'; fwhm: number; beta: number };

/** Sérsic profile in pixel units. `thetaDeg`: major axis angle from +x towards +y. */
export interface SersicShape {
  n: number;
  rEffPx: number;
  /** Minor/major axis ratio in (0, 1]. */
  axisRatio: number;
  thetaDeg: number;
}

/** A rendered model: `data[(y - y0) * width + (x - x0)]` holds counts for image pixel (x, y). */
export interface ModelStamp {
  x0: number;
  y0: number;
  width: number;
  height: number;
  data: Float64Array;
  /** Flux the model carries in total (clipped or not). */
  flux: number;
}

/** Integer pixel rectangle [x0, x1) × [y0, y1). */
export interface PixelRect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export const FWHM_PER_SIGMA = 2 * Math.sqrt(2 * Math.LN2);

/** Sérsic b_n (Ciotti & Bertin 1999 asymptotic series), so that r_e encloses half the light. */
export function sersicB(n: number): number {
  return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n * n) + 131 / (1148175 * n ** 3) - 2194697 / (30690717750 * n ** 4);
}

/** Fraction of a Sérsic profile's light inside elliptical radius r. */
export function sersicEnclosed(n: number, rEff: number, r: number): number {
  return gammaP(2 * n, sersicB(n) * (r / rEff) ** (1 / n));
}

/** Surface brightness at r_e, per pixel, for a Sérsic of total flux `flux`. */
export function sersicIe(flux: number, s: SersicShape): number {
  const b = sersicB(s.n);
  const logNorm = Math.log(2 * Math.PI * s.axisRatio * s.rEffPx * s.rEffPx * s.n) + b - 2 * s.n * Math.log(b) + logGamma(2 * s.n);
  return flux / Math.exp(logNorm);
}

/** Moffat α from FWHM and β. */
export function moffatAlpha(fwhm: number, beta: number): number {
  return fwhm / (2 * Math.sqrt(2 ** (1 / beta) - 1));
}

function checkPsf(psf: PsfModel): void {
  if (!(psf.fwhm > 0)) throw new ImagingOptionError('psf.fwhm', psf.fwhm, 'must be > 0 pixels');
  if (psf.kind === 'moffat' && !(psf.beta > 1)) throw new ImagingOptionError('psf.beta', psf.beta, 'Moffat β must be > 1');
}

/** Radius (pixels) enclosing `frac` of a PSF's light. */
export function psfRadius(psf: PsfModel, frac = 0.999): number {
  checkPsf(psf);
  if (psf.kind === 'gaussian') {
    const sigma = psf.fwhm / FWHM_PER_SIGMA;
    return sigma * Math.sqrt(-2 * Math.log(1 - frac));
  }
  const a = moffatAlpha(psf.fwhm, psf.beta);
  return a * Math.sqrt((1 - frac) ** (1 / (1 - psf.beta)) - 1);
}

function intersect(x0: number, y0: number, x1: number, y1: number, clip: PixelRect | undefined): PixelRect {
  if (clip === undefined) return { x0, y0, x1, y1 };
  return { x0: Math.max(x0, clip.x0), y0: Math.max(y0, clip.y0), x1: Math.min(x1, clip.x1), y1: Math.min(y1, clip.y1) };
}

function emptyStamp(flux: number): ModelStamp {
  return { x0: 0, y0: 0, width: 0, height: 0, data: new Float64Array(0), flux };
}

/** Sub-samples per pixel axis at distance d (pixels) from the centre, relative to a core scale. */
function oversampling(d: number, core: number): number {
  const t = d / Math.max(core, 0.5);
  if (t < 1) return 15;
  if (t < 3) return 7;
  if (t < 8) return 3;
  return 1;
}

/**
 * Renders a sampled profile `f(dx, dy)` (unnormalised surface brightness) over the square of
 * radius `radius` around (xc, yc); normalises the unclipped sum to `flux` when the square is
 * small enough to sum, else by `analyticTotal` (the profile's integral inside the radius).
 */
function renderSampled(
  f: (dx: number, dy: number) => number,
  xc: number,
  yc: number,
  flux: number,
  radius: number,
  core: number,
  clip: PixelRect | undefined,
  analyticTotal: number,
): ModelStamp {
  const fx0 = Math.floor(xc - radius);
  const fy0 = Math.floor(yc - radius);
  const fx1 = Math.ceil(xc + radius) + 1;
  const fy1 = Math.ceil(yc + radius) + 1;
  const r = intersect(fx0, fy0, fx1, fy1, clip);
  const r2 = (radius + 0.71) * (radius + 0.71);
  const pixelValue = (x: number, y: number): number => {
    const dx = x - xc;
    const dy = y - yc;
    const d2 = dx * dx + dy * dy;
    if (d2 > r2) return 0;
    const s = oversampling(Math.sqrt(d2), core);
    if (s === 1) return f(dx, dy);
    let sum = 0;
    const step = 1 / s;
    const start = -0.5 + step / 2;
    for (let j = 0; j < s; j++) {
      const sy = dy + start + j * step;
      for (let i = 0; i < s; i++) sum += f(dx + start + i * step, sy);
    }
    return sum / (s * s);
  };
  const fullArea = (fx1 - fx0) * (fy1 - fy0);
  let norm: number;
  if (fullArea <= 4_000_000) {
    let total = 0;
    for (let y = fy0; y < fy1; y++) for (let x = fx0; x < fx1; x++) total += pixelValue(x, y);
    norm = total > 0 ? flux / total : 0;
  } else {
    norm = analyticTotal > 0 ? flux / analyticTotal : 0;
  }
  if (r.x1 <= r.x0 || r.y1 <= r.y0) return emptyStamp(flux);
  const width = r.x1 - r.x0;
  const height = r.y1 - r.y0;
  const data = new Float64Array(width * height);
  for (let y = r.y0; y < r.y1; y++) for (let x = r.x0; x < r.x1; x++) data[(y - r.y0) * width + (x - r.x0)] = pixelValue(x, y) * norm;
  return { x0: r.x0, y0: r.y0, width, height, data, flux };
}

/** Point source of total `flux` counts centred at pixel (xc, yc). */
export function renderPsf(psf: PsfModel, xc: number, yc: number, flux: number, clip?: PixelRect, enclosed = 0.999): ModelStamp {
  checkPsf(psf);
  if (psf.kind === 'gaussian') {
    const sigma = psf.fwhm / FWHM_PER_SIGMA;
    const radius = Math.max(sigma * 5, psfRadius(psf, enclosed));
    const fx0 = Math.floor(xc - radius);
    const fy0 = Math.floor(yc - radius);
    const fx1 = Math.ceil(xc + radius) + 1;
    const fy1 = Math.ceil(yc + radius) + 1;
    const r = intersect(fx0, fy0, fx1, fy1, clip);
    if (r.x1 <= r.x0 || r.y1 <= r.y0) return emptyStamp(flux);
    const k = 1 / (Math.SQRT2 * sigma);
    const profile1d = (a: number, b: number, c: number): Float64Array => {
      const out = new Float64Array(b - a);
      for (let i = a; i < b; i++) out[i - a] = 0.5 * (erf((i + 0.5 - c) * k) - erf((i - 0.5 - c) * k));
      return out;
    };
    // Normalise over the full (unclipped) square so truncation loses no flux.
    const exFull = profile1d(fx0, fx1, xc);
    const eyFull = profile1d(fy0, fy1, yc);
    let sx = 0;
    let sy = 0;
    for (const v of exFull) sx += v;
    for (const v of eyFull) sy += v;
    const norm = flux / (sx * sy);
    const width = r.x1 - r.x0;
    const height = r.y1 - r.y0;
    const data = new Float64Array(width * height);
    for (let y = r.y0; y < r.y1; y++) {
      const vy = eyFull[y - fy0]! * norm;
      for (let x = r.x0; x < r.x1; x++) data[(y - r.y0) * width + (x - r.x0)] = vy * exFull[x - fx0]!;
    }
    return { x0: r.x0, y0: r.y0, width, height, data, flux };
  }
  const alpha = moffatAlpha(psf.fwhm, psf.beta);
  const beta = psf.beta;
  const radius = Math.min(psfRadius(psf, enclosed), 200 * psf.fwhm);
  const ia2 = 1 / (alpha * alpha);
  const amp = (beta - 1) / (Math.PI * alpha * alpha);
  const f = (dx: number, dy: number): number => amp * (1 + (dx * dx + dy * dy) * ia2) ** -beta;
  const analytic = 1 - (1 + radius * radius * ia2) ** (1 - beta);
  return renderSampled(f, xc, yc, flux, radius, psf.fwhm / 2, clip, analytic);
}

/** Sérsic galaxy of total `flux` at (xc, yc), truncated at the radius enclosing `enclosed` (capped at maxRadiusPx). */
export function renderSersic(shape: SersicShape, xc: number, yc: number, flux: number, clip?: PixelRect, enclosed = 0.995, maxRadiusPx = 3000): ModelStamp {
  const { n, rEffPx, axisRatio, thetaDeg } = shape;
  if (!(n >= 0.3 && n <= 8)) throw new ImagingOptionError('sersic.n', n, 'must be in [0.3, 8]');
  if (!(rEffPx > 0)) throw new ImagingOptionError('sersic.rEffPx', rEffPx, 'must be > 0');
  if (!(axisRatio > 0 && axisRatio <= 1)) throw new ImagingOptionError('sersic.axisRatio', axisRatio, 'must be in (0, 1]');
  const b = sersicB(n);
  // Elliptical radius enclosing `enclosed` of the light, by bisection on P(2n, b (r/re)^(1/n)).
  let lo = 0;
  let hi = rEffPx;
  while (sersicEnclosed(n, rEffPx, hi) < enclosed && hi < maxRadiusPx) hi *= 2;
  hi = Math.min(hi, maxRadiusPx);
  for (let i = 0; i < 50 && sersicEnclosed(n, rEffPx, hi) >= enclosed; i++) {
    const mid = 0.5 * (lo + hi);
    if (sersicEnclosed(n, rEffPx, mid) >= enclosed) hi = mid;
    else lo = mid;
  }
  const rMajor = hi;
  const th = (thetaDeg * Math.PI) / 180;
  const c = Math.cos(th);
  const s = Math.sin(th);
  const iq2 = 1 / (axisRatio * axisRatio);
  const ire = 1 / rEffPx;
  const invN = 1 / n;
  const ie = sersicIe(1, shape);
  const rM2 = rMajor * rMajor;
  const f = (dx: number, dy: number): number => {
    const xp = dx * c + dy * s;
    const yp = -dx * s + dy * c;
    const r2 = xp * xp + yp * yp * iq2;
    if (r2 > rM2) return 0;
    return ie * Math.exp(-b * ((Math.sqrt(r2) * ire) ** invN - 1));
  };
  return renderSampled(f, xc, yc, flux, rMajor, Math.min(rEffPx, 3) * axisRatio, clip, sersicEnclosed(n, rEffPx, rMajor));
}

/** Convolves a model stamp with a Gaussian of the given FWHM (the stamp grows by 4σ each side, then is clipped). */
export function convolveStampGaussian(stamp: ModelStamp, fwhm: number, clip?: PixelRect): ModelStamp {
  const sigma = fwhm / FWHM_PER_SIGMA;
  const r = Math.max(1, Math.ceil(4 * sigma));
  const k = new Float64Array(2 * r + 1);
  let ks = 0;
  for (let i = -r; i <= r; i++) {
    k[i + r] = Math.exp(-0.5 * (i / sigma) ** 2);
    ks += k[i + r]!;
  }
  for (let i = 0; i < k.length; i++) k[i] = k[i]! / ks;
  const w = stamp.width + 2 * r;
  const h = stamp.height + 2 * r;
  const tmp = new Float64Array(w * stamp.height);
  for (let y = 0; y < stamp.height; y++) {
    for (let x = 0; x < stamp.width; x++) {
      const v = stamp.data[y * stamp.width + x]!;
      if (v === 0) continue;
      const base = y * w + x;
      for (let j = 0; j <= 2 * r; j++) tmp[base + j] = tmp[base + j]! + v * k[j]!;
    }
  }
  const full = new Float64Array(w * h);
  for (let y = 0; y < stamp.height; y++) {
    for (let j = 0; j <= 2 * r; j++) {
      const kk = k[j]!;
      const src = y * w;
      const dst = (y + j) * w;
      for (let x = 0; x < w; x++) full[dst + x] = full[dst + x]! + kk * tmp[src + x]!;
    }
  }
  const fx0 = stamp.x0 - r;
  const fy0 = stamp.y0 - r;
  const rr = intersect(fx0, fy0, fx0 + w, fy0 + h, clip);
  if (rr.x1 <= rr.x0 || rr.y1 <= rr.y0) return emptyStamp(stamp.flux);
  const width = rr.x1 - rr.x0;
  const height = rr.y1 - rr.y0;
  const data = new Float64Array(width * height);
  for (let y = rr.y0; y < rr.y1; y++) for (let x = rr.x0; x < rr.x1; x++) data[(y - rr.y0) * width + (x - rr.x0)] = full[(y - fy0) * w + (x - fx0)]!;
  return { x0: rr.x0, y0: rr.y0, width, height, data, flux: stamp.flux };
}

/** Adds `scale`·stamp into a full image (pixels outside the image are skipped); returns the flux added. */
export function addStamp(target: Float32Array, w: number, h: number, stamp: ModelStamp, scale = 1): number {
  let added = 0;
  const x0 = Math.max(0, stamp.x0);
  const y0 = Math.max(0, stamp.y0);
  const x1 = Math.min(w, stamp.x0 + stamp.width);
  const y1 = Math.min(h, stamp.y0 + stamp.height);
  for (let y = y0; y < y1; y++) {
    const srow = (y - stamp.y0) * stamp.width - stamp.x0;
    const trow = y * w;
    for (let x = x0; x < x1; x++) {
      const v = stamp.data[srow + x]! * scale;
      target[trow + x] = target[trow + x]! + v;
      added += v;
    }
  }
  return added;
}
