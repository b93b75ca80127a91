import { InvalidOptionError } from './errors.js';

/**
 * In-place complex FFT (power-of-two sizes) on split real/imaginary arrays:
 * decimation in frequency, two radix-2 stages fused per pass (radix-2^2) so
 * each element is loaded and stored half as often. Plans (bit-reversal
 * permutation, per-stage twiddles) are cached per size, so a batch of
 * periodograms on one grid pays for them once.
 */
export interface FftPlan {
  readonly size: number;
  /** bitReversed[k] = k with its log2(size) bits reversed. */
  readonly bitReversed: Uint32Array;
  /** Per-stage twiddles: index h + j (j < h) holds angle pi*j/h, for h = 1, 2, 4, ... size/2. */
  readonly cos: Float64Array;
  readonly sin: Float64Array;
}

const planCache = new Map<number, FftPlan>();
const MAX_CACHED_PLANS = 16;

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
}

/** Smallest power of two >= n. */
export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function fftPlan(size: number): FftPlan {
  const cached = planCache.get(size);
  if (cached !== undefined) return cached;
  if (!isPowerOfTwo(size) || size > 2 ** 30) {
    throw new InvalidOptionError('fft size', size, 'must be a power of two <= 2^30');
  }
  const bits = Math.round(Math.log2(size));
  const bitReversed = new Uint32Array(size);
  for (let i = 0; i < size; i++) {
    let r = 0;
    for (let b = 0, x = i; b < bits; b++, x >>>= 1) r = (r << 1) | (x & 1);
    bitReversed[i] = r;
  }
  const cos = new Float64Array(Math.max(size, 1));
  const sin = new Float64Array(Math.max(size, 1));
  for (let h = 1; h < size; h <<= 1) {
    for (let j = 0; j < h; j++) {
      // exact values at the quarter turn keep small transforms exact
      const quarter = 2 * j === h;
      cos[h + j] = quarter ? 0 : Math.cos((Math.PI * j) / h);
      sin[h + j] = quarter ? 1 : Math.sin((Math.PI * j) / h);
    }
  }
  const plan: FftPlan = { size, bitReversed, cos, sin };
  if (planCache.size >= MAX_CACHED_PLANS) {
    const oldest = planCache.keys().next();
    if (oldest.done !== true) planCache.delete(oldest.value);
  }
  planCache.set(size, plan);
  return plan;
}

/**
 * X_k = sum_j x_j exp(sign * 2*pi*i*j*k/n), in place, unnormalized, but the
 * output left in bit-reversed order: X_k is at index plan.bitReversed[k].
 * Cheaper than {@link fftInPlace} when only some outputs are read.
 */
export function fftBitReversedInPlace(re: Float64Array, im: Float64Array, sign: 1 | -1 = -1): FftPlan {
  const n = re.length;
  if (im.length !== n) throw new InvalidOptionError('fft im.length', im.length, `must equal re.length ${n}`);
  const plan = fftPlan(n);
  if (n <= 1) return plan;
  const tc = plan.cos;
  const ts = plan.sin;
  let h = n >>> 1;
  // fused pairs of decimation-in-frequency stages: half-sizes h = 2q, then q
  for (; h >= 2; h >>>= 2) {
    const q = h >>> 1;
    const len = h << 1;
    for (let b = 0; b < n; b += len) {
      for (let j = 0; j < q; j++) {
        const i0 = b + j;
        const i1 = i0 + q;
        const i2 = i0 + h;
        const i3 = i2 + q;
        const x0r = re[i0] as number, x0i = im[i0] as number;
        const x1r = re[i1] as number, x1i = im[i1] as number;
        const x2r = re[i2] as number, x2i = im[i2] as number;
        const x3r = re[i3] as number, x3i = im[i3] as number;
        // stage h: (i0, i2) with twiddle (h, j), (i1, i3) with (h, j + q)
        const wAr = tc[h + j] as number, wAi = sign * (ts[h + j] as number);
        const wBr = tc[h + j + q] as number, wBi = sign * (ts[h + j + q] as number);
        const a0r = x0r + x2r, a0i = x0i + x2i;
        let dr = x0r - x2r, di = x0i - x2i;
        const a2r = dr * wAr - di * wAi, a2i = dr * wAi + di * wAr;
        const a1r = x1r + x3r, a1i = x1i + x3i;
        dr = x1r - x3r;
        di = x1i - x3i;
        const a3r = dr * wBr - di * wBi, a3i = dr * wBi + di * wBr;
        // stage q: (i0, i1) and (i2, i3), both with twiddle (q, j)
        const wCr = tc[q + j] as number, wCi = sign * (ts[q + j] as number);
        re[i0] = a0r + a1r;
        im[i0] = a0i + a1i;
        dr = a0r - a1r;
        di = a0i - a1i;
        re[i1] = dr * wCr - di * wCi;
        im[i1] = dr * wCi + di * wCr;
        re[i2] = a2r + a3r;
        im[i2] = a2i + a3i;
        dr = a2r - a3r;
        di = a2i - a3i;
        re[i3] = dr * wCr - di * wCi;
        im[i3] = dr * wCi + di * wCr;
      }
    }
  }
  if (h === 1) {
    // odd number of stages: a last radix-2 stage without twiddles
    for (let i = 0; i < n; i += 2) {
      const ar = re[i] as number, ai = im[i] as number;
      const br = re[i + 1] as number, bi = im[i + 1] as number;
      re[i] = ar + br;
      im[i] = ai + bi;
      re[i + 1] = ar - br;
      im[i + 1] = ai - bi;
    }
  }
  return plan;
}

/**
 * X_k = sum_j x_j exp(sign * 2*pi*i*j*k/n), in place, unnormalized, natural order.
 * sign = -1 is the usual forward transform, +1 the (unscaled) inverse.
 */
export function fftInPlace(re: Float64Array, im: Float64Array, sign: 1 | -1 = -1): void {
  const plan = fftBitReversedInPlace(re, im, sign);
  const rev = plan.bitReversed;
  const n = re.length;
  for (let i = 0; i < n; i++) {
    const j = rev[i] as number;
    if (j > i) {
      const tr = re[i] as number;
      re[i] = re[j] as number;
      re[j] = tr;
      const ti = im[i] as number;
      im[i] = im[j] as number;
      im[j] = ti;
    }
  }
}
