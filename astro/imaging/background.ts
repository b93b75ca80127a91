/**
 * Sky background estimation.
 *
 * - `mesh`: the SExtractor/sep/photutils Background2D recipe: per-box σ-clipped mode, a median
 *   filter over boxes, bicubic-spline interpolation to full resolution, and the same for σ.
 * - `lsb`: a low-surface-brightness-preserving sky. Sources are masked iteratively (a
 *   PSF-matched detection grown with source size, plus a heavily smoothed residual that
 *   picks up extended faint emission), and the sky is a low-order 2-D polynomial fitted to
 *   σ-clipped box levels of the unmasked pixels. Box-scale meshes follow any emission
 *   bigger than a few boxes; a polynomial cannot, which is why faint galaxies survive.
 */
import { convolveSeparableFast, convolveSeparable, connectedComponents, gaussianKernel1d, medianFilterMesh } from './filters.js';
import { ImageShapeError, ImagingOptionError, InsufficientDataError, throwIfAborted } from './errors.js';
import { boxStatistics, MeshScratch, medianOf } from './mesh-stats.js';
import { naturalSplineSecondDerivatives, splineWeights } from './spline.js';
import { DEFAULT_BAD_MASK, type Image, type KernelRunOptions } from './types.js';

export type BackgroundMode = 'mesh' | 'lsb';

/** Options of the LSB-preserving mode. */
export interface LsbBackgroundOptions {
  /** Mask-and-refit iterations. @default 3 */
  iterations?: number;
  /** Detection threshold, in σ of the PSF-filtered noise, for the compact-source mask. @default 3 */
  detectSigma?: number;
  /** PSF FWHM in pixels for the detection filter. @default 3 */
  psfFwhm?: number;
  /** Mask radius = growFactor · isophotal radius + growMinPx. @default 2 */
  growFactor?: number;
  /** @default 2 */
  growMinPx?: number;
  /** Bin size (pixels) of the low-surface-brightness map. @default 8 */
  lowSurfaceBin?: number;
  /** Gaussian σ (in bins) smoothing the binned residual. @default 4 */
  lowSurfaceSmooth?: number;
  /** Threshold on the smoothed residual, in its own robust σ. @default 2.5 */
  lowSurfaceSigma?: number;
  /** Dilation of the extended-emission mask, in bins. @default 8 */
  lowSurfaceGrow?: number;
  /** Degree of the 2-D polynomial sky model. @default 2 */
  polynomialDegree?: number;
  /** Box size (pixels) of the masked sky statistics the polynomial is fitted to. @default 32 */
  statBox?: number;
}

export interface BackgroundOptions extends KernelRunOptions {
  /** @default 'mesh' */
  mode?: BackgroundMode;
  /** Box size in pixels, one number or [width, height]. @default 64 */
  boxSize?: number | readonly [number, number];
  /** Median filter size in boxes, one number or [x, y]. @default 3 */
  filterSize?: number | readonly [number, number];
  /** Mask bits of `img.mask` whose pixels are left out. @default BAD|SAT|NO_DATA|CR */
  maskBits?: number;
  /** Extra pixels to leave out (non-zero = ignore), e.g. a known-source mask. */
  ignore?: Uint8Array;
  lsb?: LsbBackgroundOptions;
  /** Reuse these arrays (width·height) for the results instead of allocating: saves the page faults of two fresh full-size arrays per call. */
  output?: BackgroundOutputBuffers;
}

export interface BackgroundOutputBuffers {
  background?: Float32Array;
  rms?: Float32Array;
}

export interface CompiledBackgroundOptions {
  mode: BackgroundMode;
  boxWidth: number;
  boxHeight: number;
  filterX: number;
  filterY: number;
  maskBits: number;
  lsb: Required<LsbBackgroundOptions>;
}

export interface BackgroundResult {
  mode: BackgroundMode;
  /** Sky per pixel (ADU). */
  background: Float32Array;
  /** Sky noise σ per pixel (ADU). */
  rms: Float32Array;
  /** LSB mode: the estimator's final source/extended-emission mask (1 = masked), for inspection. */
  mask?: Uint8Array;
  /** Number of boxes along x and y. */
  meshWidth: number;
  meshHeight: number;
  boxWidth: number;
  boxHeight: number;
  /** Filtered box levels and σ (meshWidth·meshHeight, row-major). */
  meshBack: Float64Array;
  meshRms: Float64Array;
  /** Median of the box levels and of the box σ. */
  globalBack: number;
  globalRms: number;
  /** LSB mode: polynomial coefficients of the sky model (terms x^i y^j, i+j ≤ degree, in normalised coordinates). */
  skyCoefficients?: Float64Array;
}

const LSB_DEFAULTS: Required<LsbBackgroundOptions> = {
  iterations: 3,
  detectSigma: 3,
  psfFwhm: 3,
  growFactor: 2,
  growMinPx: 2,
  lowSurfaceBin: 8,
  lowSurfaceSmooth: 4,
  lowSurfaceSigma: 2.5,
  lowSurfaceGrow: 8,
  polynomialDegree: 2,
  statBox: 32,
};

function pair(v: number | readonly [number, number] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0], v[1]];
}

/** Fills defaults, checks ranges; pure, so it can be unit-tested. */
export function compileBackgroundOptions(opts: BackgroundOptions = {}): CompiledBackgroundOptions {
  const mode = opts.mode ?? 'mesh';
  if (mode !== 'mesh' && mode !== 'lsb') throw new ImagingOptionError('mode', mode, "must be 'mesh' or 'lsb'");
  const [bw, bh] = pair(opts.boxSize, 64);
  for (const [name, v] of [['boxSize', bw], ['boxSize', bh]] as const) {
    if (!Number.isInteger(v) || v < 4) throw new ImagingOptionError(name, opts.boxSize, 'box size must be an integer >= 4');
  }
  const [fx, fy] = pair(opts.filterSize, 3);
  for (const v of [fx, fy]) {
    if (!Number.isInteger(v) || v < 1 || v % 2 === 0) throw new ImagingOptionError('filterSize', opts.filterSize, 'filter size must be an odd integer >= 1');
  }
  const lsb = { ...LSB_DEFAULTS, ...(opts.lsb ?? {}) };
  if (!Number.isInteger(lsb.iterations) || lsb.iterations < 1 || lsb.iterations > 20) throw new ImagingOptionError('lsb.iterations', lsb.iterations, 'must be an integer in 1..20');
  if (!Number.isInteger(lsb.polynomialDegree) || lsb.polynomialDegree < 0 || lsb.polynomialDegree > 6) throw new ImagingOptionError('lsb.polynomialDegree', lsb.polynomialDegree, 'must be an integer in 0..6');
  if (!Number.isInteger(lsb.lowSurfaceBin) || lsb.lowSurfaceBin < 1) throw new ImagingOptionError('lsb.lowSurfaceBin', lsb.lowSurfaceBin, 'must be a positive integer');
  if (!Number.isInteger(lsb.statBox) || lsb.statBox < 4) throw new ImagingOptionError('lsb.statBox', lsb.statBox, 'must be an integer >= 4');
  for (const key of ['detectSigma', 'psfFwhm', 'lowSurfaceSmooth', 'lowSurfaceSigma'] as const) {
    if (!(lsb[key] > 0)) throw new ImagingOptionError(`lsb.${key}`, lsb[key], 'must be > 0');
  }
  if (!(lsb.growFactor >= 0) || !(lsb.growMinPx >= 0) || !(lsb.lowSurfaceGrow >= 0)) throw new ImagingOptionError('lsb.grow*', lsb.growFactor, 'grow parameters must be >= 0');
  return { mode, boxWidth: bw, boxHeight: bh, filterX: fx, filterY: fy, maskBits: opts.maskBits ?? DEFAULT_BAD_MASK, lsb };
}

function checkImage(img: Image): void {
  const { width: w, height: h } = img;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new ImageShapeError('image must have positive integer width and height', w, h);
  if (img.data.length !== w * h) throw new ImageShapeError(`data has ${img.data.length} pixels`, w, h);
  if (img.mask !== undefined && img.mask.length !== w * h) throw new ImageShapeError(`mask has ${img.mask.length} pixels`, w, h);
  if (img.variance !== undefined && img.variance.length !== w * h) throw new ImageShapeError(`variance has ${img.variance.length} pixels`, w, h);
}

/** Builds the ignore map (1 = unusable) from mask bits and an extra mask; undefined when nothing is ignored. */
function buildIgnore(img: Image, maskBits: number, extra: Uint8Array | undefined): Uint8Array | undefined {
  const n = img.width * img.height;
  if (extra !== undefined && extra.length !== n) throw new ImageShapeError(`ignore mask has ${extra.length} pixels`, img.width, img.height);
  if ((img.mask === undefined || maskBits === 0) && extra === undefined) return undefined;
  const ignore = new Uint8Array(n);
  let any = false;
  if (img.mask !== undefined && maskBits !== 0) {
    const m = img.mask;
    for (let i = 0; i < n; i++) {
      if ((m[i]! & maskBits) !== 0) {
        ignore[i] = 1;
        any = true;
      }
    }
  }
  if (extra !== undefined) {
    for (let i = 0; i < n; i++) {
      if (extra[i] !== 0) {
        ignore[i] = 1;
        any = true;
      }
    }
  }
  return any ? ignore : undefined;
}

interface MeshMaps {
  nx: number;
  ny: number;
  back: Float64Array;
  sigma: Float64Array;
  nGood: Float64Array;
  ok: Uint8Array;
}

/** Box statistics over the whole image; boxes at the right/top edges may be partial. */
function computeMeshMaps(
  data: Float32Array,
  mask: Int32Array | undefined,
  maskBits: number,
  w: number,
  h: number,
  bw: number,
  bh: number,
  minGoodFraction: number | undefined,
  run: KernelRunOptions,
  stage: string,
): MeshMaps {
  const nx = Math.ceil(w / bw);
  const ny = Math.ceil(h / bh);
  const back = new Float64Array(nx * ny);
  const sigma = new Float64Array(nx * ny);
  const nGood = new Float64Array(nx * ny);
  const ok = new Uint8Array(nx * ny);
  const scratch = new MeshScratch();
  for (let j = 0; j < ny; j++) {
    throwIfAborted(run.signal, stage);
    const y0 = j * bh;
    const hh = Math.min(bh, h - y0);
    for (let i = 0; i < nx; i++) {
      const x0 = i * bw;
      const ww = Math.min(bw, w - x0);
      const s = boxStatistics(data, mask, maskBits, w, x0, y0, ww, hh, scratch, minGoodFraction);
      const k = j * nx + i;
      back[k] = s.level;
      sigma[k] = s.sigma;
      nGood[k] = s.nGood;
      ok[k] = s.ok ? 1 : 0;
    }
    run.onProgress?.(j + 1, ny);
  }
  return { nx, ny, back, sigma, nGood, ok };
}

/** Replaces bad boxes by the mean of the nearest good ones (sep's rule). Returns false when no box is good. */
function fillBadMeshes(maps: MeshMaps): boolean {
  const { nx, ny, ok } = maps;
  const good: number[] = [];
  for (let k = 0; k < nx * ny; k++) if (ok[k] === 1) good.push(k);
  if (good.length === 0) return false;
  if (good.length === nx * ny) return true;
  const back = Float64Array.from(maps.back);
  const sigma = Float64Array.from(maps.sigma);
  for (let k = 0; k < nx * ny; k++) {
    if (ok[k] === 1) continue;
    const x = k % nx;
    const y = (k - x) / nx;
    let best = Infinity;
    let sb = 0;
    let ss = 0;
    let n = 0;
    for (const g of good) {
      const gx = g % nx;
      const gy = (g - gx) / nx;
      const d2 = (gx - x) * (gx - x) + (gy - y) * (gy - y);
      if (d2 < best) {
        best = d2;
        sb = maps.back[g]!;
        ss = maps.sigma[g]!;
        n = 1;
      } else if (d2 === best) {
        sb += maps.back[g]!;
        ss += maps.sigma[g]!;
        n++;
      }
    }
    back[k] = sb / n;
    sigma[k] = ss / n;
  }
  maps.back.set(back);
  maps.sigma.set(sigma);
  return true;
}

/**
 * Natural bicubic spline through a mesh map (knots at box centres) evaluated at every pixel.
 * Outside the outermost box centres the end cubic is extrapolated, as in sep.
 */
export function interpolateMesh(
  mesh: Float64Array,
  nx: number,
  ny: number,
  bw: number,
  bh: number,
  w: number,
  h: number,
  out: Float32Array = new Float32Array(w * h),
  run: KernelRunOptions = {},
): Float32Array {
  const d2y = new Float64Array(nx * ny);
  const work = new Float64Array(Math.max(nx, ny));
  for (let i = 0; i < nx; i++) naturalSplineSecondDerivatives(mesh, i, nx, ny, d2y, i, nx, work);
  const py = new Float64Array(h);
  for (let y = 0; y < h; y++) py[y] = (y + 0.5) / bh - 0.5;
  const yw = splineWeights(py, ny);
  const node = new Float64Array(nx);
  const dnode = new Float64Array(nx);
  for (let y = 0; y < h; y++) {
    if ((y & 255) === 0) throwIfAborted(run.signal, 'background interpolation');
    if (ny === 1) {
      for (let i = 0; i < nx; i++) node[i] = mesh[i]!;
    } else {
      const l = yw.lo[y]!;
      const a = yw.wA[y]!;
      const b = yw.wB[y]!;
      const c = yw.wC[y]!;
      const d = yw.wD[y]!;
      const r0 = l * nx;
      const r1 = r0 + nx;
      for (let i = 0; i < nx; i++) node[i] = a * mesh[r0 + i]! + b * mesh[r1 + i]! + c * d2y[r0 + i]! + d * d2y[r1 + i]!;
    }
    const row = y * w;
    if (nx === 1) {
      out.fill(node[0]!, row, row + w);
      continue;
    }
    naturalSplineSecondDerivatives(node, 0, 1, nx, dnode, 0, 1, work);
    evaluateSplineRow(out, row, w, bw, nx, node, dnode);
  }
  return out;
}

/**
 * One image row of the x-spline. Within each knot interval the spline is a cubic in x, so it
 * is evaluated by forward differences (three additions per pixel) instead of per-pixel weights.
 */
function evaluateSplineRow(out: Float32Array, row: number, w: number, bw: number, nx: number, node: Float64Array, dnode: Float64Array): void {
  const h = 1 / bw;
  let x = 0;
  while (x < w) {
    // Interval of pixel x: knot positions p = (x + 0.5)/bw - 0.5, lo clamped to [0, nx-2].
    const p = (x + 0.5) * h - 0.5;
    let lo = Math.floor(p);
    if (lo < 0) lo = 0;
    if (lo > nx - 2) lo = nx - 2;
    // Last pixel of this interval: the one before the first with floor(p) > lo (or the row end).
    let xEnd: number;
    if (lo === nx - 2) xEnd = w;
    else xEnd = Math.min(w, Math.ceil((lo + 1.5) * bw - 0.5));
    if (xEnd <= x) xEnd = x + 1;
    // On this interval the spline is c0 + c1 b + c2 b² + c3 b³ in b = p − lo.
    const v0 = node[lo]!;
    const d0 = dnode[lo]!;
    const d1 = dnode[lo + 1]!;
    const c1 = node[lo + 1]! - v0 - 2 * d0 - d1;
    const c2 = 3 * d0;
    const c3 = d1 - d0;
    const b0 = p - lo;
    const p0 = v0 + b0 * (c1 + b0 * (c2 + b0 * c3));
    const b1 = b0 + h;
    const p1 = v0 + b1 * (c1 + b1 * (c2 + b1 * c3));
    const b2 = b0 + 2 * h;
    const p2 = v0 + b2 * (c1 + b2 * (c2 + b2 * c3));
    const b3 = b0 + 3 * h;
    const p3 = v0 + b3 * (c1 + b3 * (c2 + b3 * c3));
    let val = p0;
    let d1s = p1 - p0;
    let d2s = p2 - 2 * p1 + p0;
    const d3s = p3 - 3 * p2 + 3 * p1 - p0;
    for (let i = row + x, end = row + xEnd; i < end; i++) {
      out[i] = val;
      val += d1s;
      d1s += d2s;
      d2s += d3s;
    }
    x = xEnd;
  }
}

/** Mesh background of `data`, with the filtered maps and full-resolution images. */
function meshBackground(
  data: Float32Array,
  mask: Int32Array | undefined,
  maskBits: number,
  w: number,
  h: number,
  o: CompiledBackgroundOptions,
  run: KernelRunOptions,
  stage: string,
  output: BackgroundOutputBuffers | undefined,
): { maps: MeshMaps; background: Float32Array; rms: Float32Array } {
  const maps = computeMeshMaps(data, mask, maskBits, w, h, o.boxWidth, o.boxHeight, undefined, run, stage);
  if (!fillBadMeshes(maps)) {
    let usable = 0;
    for (let k = 0; k < maps.nGood.length; k++) usable += maps.nGood[k]!;
    throw new InsufficientDataError(`no box of ${o.boxWidth}x${o.boxHeight} pixels has enough usable pixels for a sky estimate`, usable);
  }
  if (o.filterX > 1 || o.filterY > 1) {
    maps.back = medianFilterMesh(maps.back, maps.nx, maps.ny, o.filterX, o.filterY);
    maps.sigma = medianFilterMesh(maps.sigma, maps.nx, maps.ny, o.filterX, o.filterY);
  }
  const background = interpolateMesh(maps.back, maps.nx, maps.ny, o.boxWidth, o.boxHeight, w, h, output?.background, run);
  const rms = interpolateMesh(maps.sigma, maps.nx, maps.ny, o.boxWidth, o.boxHeight, w, h, output?.rms, run);
  return { maps, background, rms };
}

/**
 * Estimates the sky background and its σ.
 * @throws ImageShapeError, ImagingOptionError, InsufficientDataError, ImagingAbortedError
 */
export function estimateBackground(img: Image, opts: BackgroundOptions = {}): BackgroundResult {
  checkImage(img);
  const o = compileBackgroundOptions(opts);
  const n = img.width * img.height;
  for (const [name, buf] of [['output.background', opts.output?.background], ['output.rms', opts.output?.rms]] as const) {
    if (buf !== undefined && buf.length !== n) throw new ImageShapeError(`${name} has ${buf.length} pixels`, img.width, img.height);
  }
  const run: KernelRunOptions = {};
  if (opts.signal !== undefined) run.signal = opts.signal;
  if (o.mode === 'mesh') {
    if (opts.onProgress !== undefined) run.onProgress = opts.onProgress;
    // The image mask is read in place; an extra ignore map is merged into a private copy.
    let mask = o.maskBits === 0 ? undefined : img.mask;
    let bits = o.maskBits;
    if (opts.ignore !== undefined) {
      const ig = buildIgnore(img, o.maskBits, opts.ignore);
      mask = ig === undefined ? undefined : Int32Array.from(ig);
      bits = 1;
    }
    const { maps, background, rms } = meshBackground(img.data, mask, bits, img.width, img.height, o, run, 'mesh background', opts.output);
    return {
      mode: 'mesh',
      background,
      rms,
      meshWidth: maps.nx,
      meshHeight: maps.ny,
      boxWidth: o.boxWidth,
      boxHeight: o.boxHeight,
      meshBack: maps.back,
      meshRms: maps.sigma,
      globalBack: medianOf(maps.back),
      globalRms: medianOf(maps.sigma),
    };
  }
  return lsbBackground(img, buildIgnore(img, o.maskBits, opts.ignore), o, opts);
}

// ---------------------------------------------------------------------------------------
// LSB-preserving mode

/** Monomial exponents (i, j) of a 2-D polynomial of total degree ≤ d. */
function polynomialTerms(degree: number): Array<[number, number]> {
  const terms: Array<[number, number]> = [];
  for (let total = 0; total <= degree; total++) for (let j = 0; j <= total; j++) terms.push([total - j, j]);
  return terms;
}

/** Solves the symmetric system A x = b (n×n, row-major) by Gaussian elimination with partial pivoting. */
function solveLinear(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]!) > Math.abs(m[p * n + c]!)) p = r;
    if (p !== c) {
      for (let k = 0; k < n; k++) {
        const t = m[c * n + k]!;
        m[c * n + k] = m[p * n + k]!;
        m[p * n + k] = t;
      }
      const t = x[c]!;
      x[c] = x[p]!;
      x[p] = t;
    }
    const piv = m[c * n + c]!;
    if (Math.abs(piv) < 1e-300) continue;
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c]! / piv;
      if (f === 0) continue;
      for (let k = c; k < n; k++) m[r * n + k] = m[r * n + k]! - f * m[c * n + k]!;
      x[r] = x[r]! - f * x[c]!;
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    let s = x[c]!;
    for (let k = c + 1; k < n; k++) s -= m[c * n + k]! * x[k]!;
    const piv = m[c * n + c]!;
    x[c] = Math.abs(piv) < 1e-300 ? 0 : s / piv;
  }
  return x;
}

/**
 * Weighted least-squares polynomial through the good boxes (centres in normalised coordinates
 * u, v ∈ [-1, 1]), with iterated 3σ rejection of outlying boxes (MAD-based σ).
 */
function fitPolynomialSky(maps: MeshMaps, bw: number, bh: number, w: number, h: number, degree: number): Float64Array {
  const terms = polynomialTerms(degree);
  const nt = terms.length;
  const { nx, ny } = maps;
  const use = Uint8Array.from(maps.ok);
  let coef: Float64Array = new Float64Array(nt);
  const basis = new Float64Array(nt);
  const su = 2 / Math.max(1, w - 1);
  const sv = 2 / Math.max(1, h - 1);
  const fill = (k: number): void => {
    const i = k % nx;
    const j = (k - i) / nx;
    const cx = Math.min(i * bw + bw / 2, (i * bw + w) / 2) - 0.5; // centre of a possibly partial box
    const cy = Math.min(j * bh + bh / 2, (j * bh + h) / 2) - 0.5;
    const u = cx * su - 1;
    const v = cy * sv - 1;
    for (let t = 0; t < nt; t++) {
      const [pi, pj] = terms[t]!;
      basis[t] = u ** pi * v ** pj;
    }
  };
  for (let iter = 0; iter < 5; iter++) {
    const ata = new Float64Array(nt * nt);
    const atb = new Float64Array(nt);
    let n = 0;
    for (let k = 0; k < nx * ny; k++) {
      if (use[k] !== 1) continue;
      n++;
      fill(k);
      const wt = maps.nGood[k]!;
      const val = maps.back[k]!;
      for (let r = 0; r < nt; r++) {
        const br = basis[r]! * wt;
        atb[r] = atb[r]! + br * val;
        for (let c = 0; c < nt; c++) ata[r * nt + c] = ata[r * nt + c]! + br * basis[c]!;
      }
    }
    if (n < nt) break;
    coef = solveLinear(ata, atb, nt);
    // Reject boxes more than 3σ (MAD) from the fit.
    const resid: number[] = [];
    const rk: number[] = [];
    for (let k = 0; k < nx * ny; k++) {
      if (maps.ok[k] !== 1) continue;
      fill(k);
      let model = 0;
      for (let t = 0; t < nt; t++) model += coef[t]! * basis[t]!;
      resid.push(maps.back[k]! - model);
      rk.push(k);
    }
    const med = medianOf(resid);
    const mad = 1.4826 * medianOf(resid.map((r) => Math.abs(r - med)));
    if (!(mad > 0)) break;
    let changed = 0;
    for (let q = 0; q < rk.length; q++) {
      const keep = Math.abs(resid[q]! - med) <= 3 * mad ? 1 : 0;
      const k = rk[q]!;
      if (use[k] !== keep) changed++;
      use[k] = keep;
    }
    if (changed === 0) break;
  }
  return coef;
}

/** Evaluates the polynomial sky at every pixel. */
function evaluatePolynomial(coef: Float64Array, degree: number, w: number, h: number, out: Float32Array): void {
  const terms = polynomialTerms(degree);
  const su = 2 / Math.max(1, w - 1);
  const sv = 2 / Math.max(1, h - 1);
  const cu = new Float64Array(degree + 1); // coefficients of u^i for the current row
  for (let y = 0; y < h; y++) {
    const v = y * sv - 1;
    cu.fill(0);
    for (let t = 0; t < terms.length; t++) {
      const [pi, pj] = terms[t]!;
      cu[pi] = cu[pi]! + coef[t]! * v ** pj;
    }
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const u = x * su - 1;
      let s = cu[degree]!;
      for (let i = degree - 1; i >= 0; i--) s = s * u + cu[i]!;
      out[row + x] = s;
    }
  }
}

/** Masks compact sources: PSF-matched detection on the residual, grown disks per component. */
function maskCompactSources(
  resid: Float32Array,
  ignore: Uint8Array | undefined,
  w: number,
  h: number,
  sigmaPix: number,
  l: Required<LsbBackgroundOptions>,
  mask: Uint8Array,
): void {
  const k = gaussianKernel1d(l.psfFwhm / 2.3548, 3);
  let k2 = 0;
  for (let i = 0; i < k.length; i++) k2 += k[i]! * k[i]!;
  const filtered = convolveSeparableFast(resid, w, h, k);
  const thresh = l.detectSigma * sigmaPix * k2; // σ of the 2-D filtered white noise = σ·Σk1²
  const above = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) if (filtered[i]! > thresh && (ignore === undefined || ignore[i] === 0)) above[i] = 1;
  const comps = connectedComponents(above, w, h, 3);
  for (let c = 0; c < comps.count; c++) {
    const a = comps.offsets[c]!;
    const b = comps.offsets[c + 1]!;
    let sx = 0;
    let sy = 0;
    for (let q = a; q < b; q++) {
      const p = comps.pixels[q]!;
      sx += p % w;
      sy += Math.floor(p / w);
    }
    const n = b - a;
    const cx = sx / n;
    const cy = sy / n;
    let rmax2 = 0;
    for (let q = a; q < b; q++) {
      const p = comps.pixels[q]!;
      const dx = (p % w) - cx;
      const dy = Math.floor(p / w) - cy;
      const d2 = dx * dx + dy * dy;
      if (d2 > rmax2) rmax2 = d2;
    }
    const rIso = Math.sqrt(n / Math.PI);
    const radius = Math.max(l.growFactor * rIso, Math.sqrt(rmax2)) + l.growMinPx;
    paintDisk(mask, w, h, cx, cy, radius);
  }
}

function paintDisk(mask: Uint8Array, w: number, h: number, cx: number, cy: number, radius: number): void {
  const r2 = radius * radius;
  const y0 = Math.max(0, Math.floor(cy - radius));
  const y1 = Math.min(h - 1, Math.ceil(cy + radius));
  for (let y = y0; y <= y1; y++) {
    const dy = y - cy;
    const half = r2 - dy * dy;
    if (half < 0) continue;
    const dx = Math.sqrt(half);
    const x0 = Math.max(0, Math.ceil(cx - dx));
    const x1 = Math.min(w - 1, Math.floor(cx + dx));
    if (x1 >= x0) mask.fill(1, y * w + x0, y * w + x1 + 1);
  }
}

/**
 * Masks extended faint emission: the residual (with compact sources masked) is averaged in
 * b×b bins, smoothed with a wide Gaussian (normalised convolution), and bins above
 * lowSurfaceSigma × (robust σ from the lower half of the distribution) are masked and grown.
 */
function maskExtendedEmission(resid: Float32Array, exclude: Uint8Array, w: number, h: number, l: Required<LsbBackgroundOptions>, mask: Uint8Array): void {
  const b = l.lowSurfaceBin;
  const bx = Math.ceil(w / b);
  const by = Math.ceil(h / b);
  const sum = new Float64Array(bx * by);
  const cnt = new Float32Array(bx * by);
  for (let y = 0; y < h; y++) {
    const jb = ((y / b) | 0) * bx;
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (exclude[row + x] !== 0) continue;
      const v = resid[row + x]!;
      if (v !== v) continue;
      const k = jb + ((x / b) | 0);
      sum[k] = sum[k]! + v;
      cnt[k] = cnt[k]! + 1;
    }
  }
  const mean = new Float32Array(bx * by);
  for (let k = 0; k < bx * by; k++) mean[k] = cnt[k]! > 0 ? sum[k]! / cnt[k]! : Number.NaN;
  const smooth = convolveSeparable(mean, bx, by, gaussianKernel1d(l.lowSurfaceSmooth, 3), cnt);
  const vals: number[] = [];
  for (let k = 0; k < bx * by; k++) if (Number.isFinite(smooth[k]!)) vals.push(smooth[k]!);
  if (vals.length < 16) return;
  vals.sort((p, q) => p - q);
  const med = vals[vals.length >> 1]!;
  const p16 = vals[Math.floor(vals.length * 0.1587)]!;
  const sig = med - p16;
  if (!(sig > 0)) return;
  const thresh = med + l.lowSurfaceSigma * sig;
  const hot = new Uint8Array(bx * by);
  for (let k = 0; k < bx * by; k++) if (smooth[k]! > thresh) hot[k] = 1;
  // Keep blobs bigger than one smoothing footprint: smaller ones are noise peaks.
  const minArea = Math.max(1, Math.round(Math.PI * l.lowSurfaceSmooth * l.lowSurfaceSmooth));
  const comps = connectedComponents(hot, bx, by, minArea);
  const keep = new Uint8Array(bx * by);
  for (let q = 0; q < comps.pixels.length; q++) keep[comps.pixels[q]!] = 1;
  const grown = dilateSquare(keep, bx, by, Math.round(l.lowSurfaceGrow));
  for (let y = 0; y < h; y++) {
    const jb = ((y / b) | 0) * bx;
    const row = y * w;
    for (let x = 0; x < w; x++) if (grown[jb + ((x / b) | 0)] !== 0) mask[row + x] = 1;
  }
}

/** Binary dilation with a (2r+1)² square, separable. */
function dilateSquare(src: Uint8Array, w: number, h: number, r: number): Uint8Array {
  if (r <= 0) return src;
  const tmp = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (src[y * w + x] === 0) continue;
      tmp.fill(1, y * w + Math.max(0, x - r), y * w + Math.min(w - 1, x + r) + 1);
    }
  }
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (tmp[y * w + x] === 0) continue;
      for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++) out[yy * w + x] = 1;
    }
  }
  return out;
}

function lsbBackground(img: Image, ignore: Uint8Array | undefined, o: CompiledBackgroundOptions, opts: BackgroundOptions): BackgroundResult {
  const { width: w, height: h, data } = img;
  const l = o.lsb;
  const n = w * h;
  const quiet: KernelRunOptions = {};
  if (opts.signal !== undefined) quiet.signal = opts.signal;
  const totalSteps = l.iterations + 2;
  let step = 0;
  const progress = (): void => opts.onProgress?.(++step, totalSteps);

  // Initial sky: polynomial through the unmasked box levels (the mode estimator already
  // discounts compact sources; box rejection discounts most of an extended one).
  const ignoreMask = ignore === undefined ? undefined : Int32Array.from(ignore);
  let maps = computeMeshMaps(data, ignoreMask, 1, w, h, l.statBox, l.statBox, 0.3, quiet, 'lsb background');
  if (!maps.ok.some((v) => v === 1)) throw new InsufficientDataError('no sky box has enough usable pixels', 0);
  let coef: Float64Array = fitPolynomialSky(maps, l.statBox, l.statBox, w, h, l.polynomialDegree);
  const sky = opts.output?.background ?? new Float32Array(n);
  evaluatePolynomial(coef, l.polynomialDegree, w, h, sky);
  progress();

  const resid = new Float32Array(n);
  let mask = new Uint8Array(n);
  const exclude = new Uint8Array(n);
  const excludeMask = new Int32Array(n);
  for (let iter = 0; iter < l.iterations; iter++) {
    throwIfAborted(opts.signal, 'lsb background');
    for (let i = 0; i < n; i++) {
      const v = data[i]! - sky[i]!;
      resid[i] = v === v && (ignore === undefined || ignore[i] === 0) ? v : 0;
    }
    const sigmaPix = medianOf(maps.sigma.filter((_, k) => maps.ok[k] === 1));
    mask = new Uint8Array(n);
    maskCompactSources(resid, ignore, w, h, sigmaPix, l, mask);
    exclude.set(mask);
    if (ignore !== undefined) for (let i = 0; i < n; i++) if (ignore[i] !== 0) exclude[i] = 1;
    maskExtendedEmission(resid, exclude, w, h, l, mask);
    for (let i = 0; i < n; i++) excludeMask[i] = mask[i]! | (ignore === undefined ? 0 : ignore[i]!);
    maps = computeMeshMaps(data, excludeMask, 1, w, h, l.statBox, l.statBox, 0.3, quiet, 'lsb background');
    if (!maps.ok.some((v) => v === 1)) throw new InsufficientDataError('the source mask leaves no sky box with enough usable pixels', 0);
    coef = fitPolynomialSky(maps, l.statBox, l.statBox, w, h, l.polynomialDegree);
    evaluatePolynomial(coef, l.polynomialDegree, w, h, sky);
    progress();
  }

  // Noise map: box σ of the residual with the final mask, filtered and interpolated.
  for (let i = 0; i < n; i++) resid[i] = data[i]! - sky[i]!;
  const rmsMaps = computeMeshMaps(resid, excludeMask, 1, w, h, o.boxWidth, o.boxHeight, 0.3, quiet, 'lsb background rms');
  if (!fillBadMeshes(rmsMaps)) throw new InsufficientDataError('no box left for the noise map', 0);
  const meshRms = o.filterX > 1 || o.filterY > 1 ? medianFilterMesh(rmsMaps.sigma, rmsMaps.nx, rmsMaps.ny, o.filterX, o.filterY) : rmsMaps.sigma;
  const rms = interpolateMesh(meshRms, rmsMaps.nx, rmsMaps.ny, o.boxWidth, o.boxHeight, w, h, opts.output?.rms, quiet);
  // Box levels of the sky model itself, for callers that want a mesh view.
  const meshBack = new Float64Array(rmsMaps.nx * rmsMaps.ny);
  for (let j = 0; j < rmsMaps.ny; j++) {
    for (let i = 0; i < rmsMaps.nx; i++) {
      const x = Math.min(w - 1, Math.floor(i * o.boxWidth + o.boxWidth / 2));
      const y = Math.min(h - 1, Math.floor(j * o.boxHeight + o.boxHeight / 2));
      meshBack[j * rmsMaps.nx + i] = sky[y * w + x]!;
    }
  }
  progress();
  return {
    mode: 'lsb',
    background: sky,
    rms,
    mask,
    meshWidth: rmsMaps.nx,
    meshHeight: rmsMaps.ny,
    boxWidth: o.boxWidth,
    boxHeight: o.boxHeight,
    meshBack,
    meshRms,
    globalBack: medianOf(meshBack),
    globalRms: medianOf(meshRms),
    skyCoefficients: coef,
  };
}
