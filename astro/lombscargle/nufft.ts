import { InvalidOptionError } from './errors.js';
import { fftBitReversedInPlace, nextPowerOfTwo } from './fft.js';

/**
 * Type-1 non-uniform FFT in 1-D with the "exponential of semicircle" kernel
 * (Barnett, Magland & af Klinteberg 2019, the FINUFFT kernel):
 *
 *   F_m = sum_j c_j exp(2*pi*i*k*u_j),  k = m - floor(M/2),  m = 0..M-1
 *
 * for real positions u_j (in cycles: only u mod 1 matters) and complex c_j.
 * Each c_j is spread onto a regular grid of n >= 1.5 M points (a power of two)
 * with a kernel of `width` points, the grid is transformed by one FFT and each
 * mode is divided by the kernel's Fourier transform. Error ~ tolerance * sum|c_j|.
 * The low upsampling (FINUFFT allows 1.25) halves the FFT against the usual 2
 * at the price of a wider kernel, a good trade when N (points) << M (modes).
 */
export interface Nufft1Plan {
  readonly modes: number;
  readonly gridSize: number;
  readonly width: number;
  readonly beta: number;
  /** 1 / kernel Fourier transform at k = m - floor(M/2). */
  readonly correction: Float64Array;
  readonly tolerance: number;
}

const planCache = new Map<string, Nufft1Plan>();
const MAX_CACHED_PLANS = 32;

/** Gauss-Legendre nodes and weights on [-1, 1] (Newton on P_q). */
function gaussLegendre(q: number): { x: Float64Array; w: Float64Array } {
  const x = new Float64Array(q);
  const w = new Float64Array(q);
  for (let i = 0; i < q; i++) {
    let z = Math.cos((Math.PI * (i + 0.75)) / (q + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      let p0 = 1;
      let p1 = 0;
      for (let j = 1; j <= q; j++) {
        const p2 = p1;
        p1 = p0;
        p0 = ((2 * j - 1) * z * p1 - (j - 1) * p2) / j;
      }
      dp = (q * (z * p0 - p1)) / (z * z - 1);
      const dz = p0 / dp;
      z -= dz;
      if (Math.abs(dz) < 1e-16) break;
    }
    x[i] = z;
    w[i] = 2 / ((1 - z * z) * dp * dp);
  }
  return { x, w };
}

/** Kernel psi(z) = exp(beta * (sqrt(1 - (2z/width)^2) - 1)) on |z| <= width/2 (grid units). */
function kernelValue(z: number, halfWidthInv: number, beta: number): number {
  const r = z * halfWidthInv;
  const s = 1 - r * r;
  return s > 0 ? Math.exp(beta * (Math.sqrt(s) - 1)) : 0;
}

/** Smallest grid upsampling factor used; the actual one is gridSize / modes, in [1.5, 3). */
export const NUFFT_MIN_UPSAMPLING = 1.5;

/**
 * Plan a type-1 NUFFT for `modes` output frequencies to relative accuracy
 * `tolerance` (1e-12 .. 1e-2). Kernel width and shape follow FINUFFT's rules
 * for the actual upsampling factor sigma = gridSize / modes.
 */
export function planNufft1(modes: number, tolerance: number): Nufft1Plan {
  if (!(Number.isInteger(modes) && modes >= 1)) throw new InvalidOptionError('nufft modes', modes, 'must be an integer >= 1');
  if (!(tolerance >= 1e-12 && tolerance <= 1e-2)) throw new InvalidOptionError('nufft tolerance', tolerance, 'must lie in [1e-12, 1e-2]');
  const key = `${modes}:${tolerance}`;
  const cached = planCache.get(key);
  if (cached !== undefined) return cached;

  let gridSize = nextPowerOfTwo(Math.max(Math.ceil(NUFFT_MIN_UPSAMPLING * modes), 16));
  const sigma = gridSize / modes;
  const width = Math.min(16, Math.max(2, Math.ceil(-Math.log(tolerance) / (Math.PI * Math.sqrt(1 - 1 / sigma)))));
  if (gridSize < 2 * width) gridSize = nextPowerOfTwo(2 * width);
  const beta = 0.97 * Math.PI * width * (1 - 1 / (2 * sigma));

  // kernel transform: psiHat(k) = 2 * int_0^{w/2} psi(z) cos(2 pi k z / n) dz
  const q = Math.ceil(2 + 2 * width);
  const gl = gaussLegendre(2 * q);
  const half = width / 2;
  const halfWidthInv = 1 / half;
  const nodes: number[] = [];
  const weights: number[] = [];
  for (let i = 0; i < gl.x.length; i++) {
    const xi = gl.x[i] as number;
    if (xi <= 0) continue; // the integrand is even: use the positive half of a symmetric rule
    nodes.push(xi * half);
    weights.push(2 * (gl.w[i] as number) * half * kernelValue(xi * half, halfWidthInv, beta));
  }
  const correction = new Float64Array(modes);
  const kLo = Math.floor(modes / 2);
  for (let m = 0; m < modes; m++) {
    const k = m - kLo;
    let s = 0;
    for (let i = 0; i < nodes.length; i++) {
      s += (weights[i] as number) * Math.cos((2 * Math.PI * k * (nodes[i] as number)) / gridSize);
    }
    correction[m] = 1 / s;
  }
  const plan: Nufft1Plan = { modes, gridSize, width, beta, correction, tolerance };
  if (planCache.size >= MAX_CACHED_PLANS) {
    const oldest = planCache.keys().next();
    if (oldest.done !== true) planCache.delete(oldest.value);
  }
  planCache.set(key, plan);
  return plan;
}

/** Scratch grids for one transform; reuse across calls of the same plan to avoid allocation. */
export interface Nufft1Workspace {
  re: Float64Array;
  im: Float64Array;
}

export function nufft1Workspace(plan: Nufft1Plan): Nufft1Workspace {
  return { re: new Float64Array(plan.gridSize), im: new Float64Array(plan.gridSize) };
}

/**
 * Execute a planned type-1 NUFFT. Writes M modes into outRe/outIm.
 * `u` are positions in cycles (any real; wrapped mod 1).
 */
export function nufft1(
  plan: Nufft1Plan,
  u: Float64Array,
  cRe: Float64Array,
  cIm: Float64Array,
  outRe: Float64Array,
  outIm: Float64Array,
  work: Nufft1Workspace = nufft1Workspace(plan),
): void {
  const { gridSize: n, width, beta, modes, correction } = plan;
  const gRe = work.re;
  const gIm = work.im;
  if (gRe.length !== n || gIm.length !== n) throw new InvalidOptionError('nufft workspace', gRe.length, `must have ${n} points`);
  gRe.fill(0);
  gIm.fill(0);
  const halfWidth = width / 2;
  const halfWidthInv = 1 / halfWidth;
  for (let j = 0; j < u.length; j++) {
    const uj = u[j] as number;
    const g = (uj - Math.floor(uj)) * n;
    const l0 = Math.ceil(g - halfWidth);
    const cr = cRe[j] as number;
    const ci = cIm[j] as number;
    let idx = l0 % n;
    if (idx < 0) idx += n;
    for (let q = 0; q < width; q++) {
      const psi = kernelValue(l0 + q - g, halfWidthInv, beta);
      gRe[idx] = (gRe[idx] as number) + cr * psi;
      gIm[idx] = (gIm[idx] as number) + ci * psi;
      idx++;
      if (idx === n) idx = 0;
    }
  }
  // outputs stay in bit-reversed order: only M of the n are read, through the table
  const rev = fftBitReversedInPlace(gRe, gIm, 1).bitReversed;
  const kLo = Math.floor(modes / 2);
  for (let m = 0; m < modes; m++) {
    let k = m - kLo;
    if (k < 0) k += n;
    const idx = rev[k] as number;
    const corr = correction[m] as number;
    outRe[m] = (gRe[idx] as number) * corr;
    outIm[m] = (gIm[idx] as number) * corr;
  }
}
