/**
 * In-memory synthetic calexp-like images with known truth (sky, faint LSB galaxy, sources),
 * used by the survey generator, the tests and the benchmarks.
 */
import { ImagingOptionError } from './errors.js';
import { addStamp, convolveStampGaussian, renderPsf, renderSersic, sersicB, sersicIe, type PsfModel, type SersicShape } from './profiles.js';
import { SeededRandom } from './rng.js';
import { MaskBit, type Image, type KernelRunOptions } from './types.js';
import { throwIfAborted } from './errors.js';

export interface SyntheticStar {
  x: number;
  y: number;
  /** Total counts (ADU). */
  flux: number;
  mag: number;
}

export interface SyntheticGalaxy extends SersicShape {
  x: number;
  y: number;
  flux: number;
  mag: number;
}

export interface SyntheticImageOptions extends KernelRunOptions {
  width?: number;
  height?: number;
  seed?: number;
  /** Sky at the image centre (ADU). @default 1000 */
  skyLevel?: number;
  /** Sky change across the whole image along x and y (ADU). @default [40, -25] */
  skyGradient?: readonly [number, number];
  /** Quadratic term: sky change at the corners relative to a plane (ADU). @default 15 */
  skyCurvature?: number;
  /** e-/ADU. @default 1 */
  gain?: number;
  /** Read noise (ADU). @default 5 — with sky 1000 ADU and gain 1 the pixel noise is ~32 ADU. */
  readNoise?: number;
  /** Magnitude of 1 ADU total (counts = 10^(-0.4 (mag - zeroPoint))). @default 28 */
  zeroPoint?: number;
  psf?: PsfModel;
  nStars?: number;
  /** Star magnitude range. @default [16, 23] */
  starMagRange?: readonly [number, number];
  nGalaxies?: number;
  galaxyMagRange?: readonly [number, number];
  /** Use these stars (pixel positions, fluxes) instead of random ones. */
  starList?: readonly SyntheticStar[];
  /** Use these galaxies instead of random ones. */
  galaxyList?: readonly SyntheticGalaxy[];
  /** Put a large faint Sérsic galaxy in the image. @default true */
  withLsbGalaxy?: boolean;
  /** LSB galaxy shape and place (pixels); defaults: n=1, r_e = 0.15·min(w,h), centred, q=0.8. */
  lsbGalaxy?: Partial<SersicShape> & { x?: number; y?: number; centralSigma?: number; flux?: number };
  /** Saturation level (ADU): brighter pixels are clipped and flagged SAT. @default 60000 */
  saturation?: number;
  /** Number of bad columns. @default 1 */
  badColumns?: number;
  /** EDGE mask border width (pixels). @default 4 */
  edgeWidth?: number;
  /** Add noise (off for noise-free truth checks). @default true */
  noise?: boolean;
}

export interface SyntheticImage {
  image: Image & { mask: Int32Array; variance: Float32Array };
  trueSky: Float32Array;
  /** The LSB galaxy alone (noise-free, ADU); all zeros when there is none. */
  trueLsb: Float32Array;
  lsbGalaxy?: SyntheticGalaxy;
  stars: SyntheticStar[];
  galaxies: SyntheticGalaxy[];
  zeroPoint: number;
  gain: number;
  psf: PsfModel;
  /** Pixel noise σ of the sky alone (ADU). */
  skyNoise: number;
}

/** Sky model: level + plane + a bowl that rises `curvature` at the corners. */
export function syntheticSky(w: number, h: number, level: number, gradient: readonly [number, number], curvature: number): Float32Array {
  const sky = new Float32Array(w * h);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  for (let y = 0; y < h; y++) {
    const v = (y - cy) / (h - 1);
    for (let x = 0; x < w; x++) {
      const u = (x - cx) / (w - 1);
      sky[y * w + x] = level + gradient[0] * u + gradient[1] * v + curvature * 2 * (u * u + v * v);
    }
  }
  return sky;
}

export function magToCounts(mag: number, zeroPoint: number): number {
  return 10 ** (-0.4 * (mag - zeroPoint));
}

/** Renders a synthetic image; deterministic per seed. */
export function makeSyntheticImage(opts: SyntheticImageOptions = {}): SyntheticImage {
  const w = opts.width ?? 1024;
  const h = opts.height ?? 1024;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 16 || h < 16) throw new ImagingOptionError('width/height', [w, h], 'must be integers >= 16');
  const rng = new SeededRandom(opts.seed ?? 1);
  const gain = opts.gain ?? 1;
  const readNoise = opts.readNoise ?? 5;
  const zp = opts.zeroPoint ?? 28;
  const psf: PsfModel = opts.psf ?? { kind: 'moffat', fwhm: 3.5, beta: 3.5 };
  const skyLevel = opts.skyLevel ?? 1000;
  const trueSky = syntheticSky(w, h, skyLevel, opts.skyGradient ?? [40, -25], opts.skyCurvature ?? 15);
  const skyNoise = Math.sqrt(skyLevel / gain + readNoise * readNoise);
  const model = new Float32Array(w * h); // sources only
  const clip = { x0: 0, y0: 0, x1: w, y1: h };

  const stars: SyntheticStar[] = [];
  const nStars = opts.starList !== undefined ? 0 : (opts.nStars ?? Math.round((w * h) / 4000));
  for (const s of opts.starList ?? []) {
    stars.push({ ...s });
    addStamp(model, w, h, renderPsf(psf, s.x, s.y, s.flux, clip));
  }
  const [sm0, sm1] = opts.starMagRange ?? [16, 23];
  for (let i = 0; i < nStars; i++) {
    // Number counts rising towards faint magnitudes (log N ∝ 0.3 m).
    const u = rng.uniform();
    const a = 10 ** (0.3 * sm0);
    const b = 10 ** (0.3 * sm1);
    const mag = Math.log10(a + u * (b - a)) / 0.3;
    const s: SyntheticStar = { x: rng.range(-5, w + 5), y: rng.range(-5, h + 5), mag, flux: magToCounts(mag, zp) };
    stars.push(s);
    addStamp(model, w, h, renderPsf(psf, s.x, s.y, s.flux, clip));
    if ((i & 255) === 0) throwIfAborted(opts.signal, 'synthetic image');
  }
  const galaxies: SyntheticGalaxy[] = [];
  const nGal = opts.galaxyList !== undefined ? 0 : (opts.nGalaxies ?? Math.round((w * h) / 8000));
  for (const g of opts.galaxyList ?? []) {
    galaxies.push({ ...g });
    const st = renderSersic(g, g.x, g.y, g.flux, undefined, 0.99, Math.min(200, Math.max(20, 15 * g.rEffPx)));
    addStamp(model, w, h, convolveStampGaussian(st, psf.fwhm, clip));
  }
  const [gm0, gm1] = opts.galaxyMagRange ?? [18, 24];
  for (let i = 0; i < nGal; i++) {
    const mag = rng.range(gm0, gm1);
    const n = rng.uniform() < 0.6 ? rng.range(0.8, 1.5) : rng.range(2.5, 4);
    const g: SyntheticGalaxy = {
      x: rng.range(0, w),
      y: rng.range(0, h),
      mag,
      flux: magToCounts(mag, zp),
      n,
      rEffPx: rng.range(1.5, 6) * 10 ** (-0.1 * (mag - gm0)),
      axisRatio: rng.range(0.3, 1),
      thetaDeg: rng.range(0, 180),
    };
    galaxies.push(g);
    const st = renderSersic(g, g.x, g.y, g.flux, undefined, 0.99, Math.min(200, Math.max(20, 15 * g.rEffPx)));
    addStamp(model, w, h, convolveStampGaussian(st, psf.fwhm, clip));
    if ((i & 255) === 0) throwIfAborted(opts.signal, 'synthetic image');
  }
  const trueLsb = new Float32Array(w * h);
  let lsbGalaxy: SyntheticGalaxy | undefined;
  if (opts.withLsbGalaxy ?? true) {
    const l = opts.lsbGalaxy ?? {};
    const shape: SersicShape = { n: l.n ?? 1, rEffPx: l.rEffPx ?? 0.15 * Math.min(w, h), axisRatio: l.axisRatio ?? 0.8, thetaDeg: l.thetaDeg ?? 30 };
    // Central surface brightness as a fraction of the pixel noise: I0 = Ie·e^{b}.
    const central = (l.centralSigma ?? 0.3) * skyNoise;
    const flux = l.flux ?? central / (Math.exp(sersicB(shape.n)) * sersicIe(1, shape));
    const x = l.x ?? (w - 1) / 2;
    const y = l.y ?? (h - 1) / 2;
    lsbGalaxy = { ...shape, x, y, flux, mag: zp - 2.5 * Math.log10(flux) };
    addStamp(trueLsb, w, h, renderSersic(shape, x, y, flux, clip, 0.999, 4 * Math.max(w, h)));
    for (let i = 0; i < w * h; i++) model[i] = model[i]! + trueLsb[i]!;
  }

  const data = new Float32Array(w * h);
  const variance = new Float32Array(w * h);
  const mask = new Int32Array(w * h);
  const saturation = opts.saturation ?? 60000;
  const noise = opts.noise ?? true;
  for (let i = 0; i < w * h; i++) {
    const expected = trueSky[i]! + model[i]!;
    const varI = Math.max(0, expected) / gain + readNoise * readNoise;
    variance[i] = varI;
    let v = expected + (noise ? Math.sqrt(varI) * rng.normal() : 0);
    if (v >= saturation) {
      v = saturation;
      mask[i] = mask[i]! | MaskBit.SAT;
    }
    data[i] = v;
  }
  const nBad = opts.badColumns ?? 1;
  for (let c = 0; c < nBad; c++) {
    const x = Math.floor(rng.range(0.1 * w, 0.9 * w));
    for (let y = 0; y < h; y++) {
      mask[y * w + x] = mask[y * w + x]! | MaskBit.BAD;
      data[y * w + x] = 0.2 * data[y * w + x]!; // a dead column: reads low
    }
  }
  const e = opts.edgeWidth ?? 4;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (x < e || y < e || x >= w - e || y >= h - e) mask[y * w + x] = mask[y * w + x]! | MaskBit.EDGE;
    }
  }
  const result: SyntheticImage = { image: { width: w, height: h, data, mask, variance }, trueSky, trueLsb, stars, galaxies, zeroPoint: zp, gain, psf, skyNoise };
  if (lsbGalaxy !== undefined) result.lsbGalaxy = lsbGalaxy;
  return result;
}

/** Fraction of the LSB galaxy's flux inside `region` (1 = in) that the background absorbed: Σ(bg − trueSky) / Σ galaxy. */
export function lsbFluxLoss(background: Float32Array, trueSky: Float32Array, trueLsb: Float32Array, region: Uint8Array): number {
  let absorbed = 0;
  let total = 0;
  for (let i = 0; i < region.length; i++) {
    if (region[i] === 0) continue;
    absorbed += background[i]! - trueSky[i]!;
    total += trueLsb[i]!;
  }
  return total > 0 ? absorbed / total : Number.NaN;
}

/** RMS of (background − trueSky) over pixels where `valid` is non-zero (all when omitted). */
export function skyRmsError(background: Float32Array, trueSky: Float32Array, valid?: Uint8Array): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < background.length; i++) {
    if (valid !== undefined && valid[i] === 0) continue;
    const d = background[i]! - trueSky[i]!;
    s += d * d;
    n++;
  }
  return Math.sqrt(s / Math.max(1, n));
}

/** Pixels where the true LSB galaxy is at least `fraction` of its peak: the region the flux-loss metric uses. */
export function lsbRegion(trueLsb: Float32Array, fraction = 0.01): Uint8Array {
  let peak = 0;
  for (let i = 0; i < trueLsb.length; i++) if (trueLsb[i]! > peak) peak = trueLsb[i]!;
  const r = new Uint8Array(trueLsb.length);
  for (let i = 0; i < trueLsb.length; i++) if (trueLsb[i]! >= fraction * peak && peak > 0) r[i] = 1;
  return r;
}
