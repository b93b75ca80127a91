/**
 * Per-box sky statistics in the SExtractor/sep manner: a 2σ-clipped mean and σ give the
 * histogram range (±5σ, up to 4096 levels), then σ-clipping at ±3σ around the median is
 * iterated to convergence on the histogram. The iterations use prefix sums of the
 * histogram, so each one costs O(log levels) instead of O(levels).
 */

/** Histogram constants from SExtractor (back.h): QUANTIF_NSIGMA, QUANTIF_NMAXLEVELS, QUANTIF_AMIN. */
const QUANTIF_NSIGMA = 5;
const QUANTIF_NMAXLEVELS = 4096;
const QUANTIF_AMIN = 4;
const LEVEL_STEP = (Math.sqrt(2 / Math.PI) * QUANTIF_NSIGMA) / QUANTIF_AMIN;
/** A box with fewer usable pixels than this fraction is "bad" and filled from neighbours. */
export const MIN_GOOD_FRACTION = 0.5;

/** Reusable buffers for {@link boxStatistics}; one per thread of work, never shared concurrently. */
export class MeshScratch {
  readonly histogram = new Int32Array(QUANTIF_NMAXLEVELS);
  readonly cumCount = new Float64Array(QUANTIF_NMAXLEVELS + 1);
  readonly cumFirst = new Float64Array(QUANTIF_NMAXLEVELS + 1);
  readonly cumSecond = new Float64Array(QUANTIF_NMAXLEVELS + 1);
}

export interface BoxStatistics {
  /** Sky level: the mode estimate 2.5·median − 1.5·mean, or the median when the clipped distribution is skewed. */
  level: number;
  /** σ of the clipped distribution. */
  sigma: number;
  /** Usable pixels in the box. */
  nGood: number;
  /** False when the box had too few usable pixels. */
  ok: boolean;
}

/**
 * Statistics of the box [x0, x0+bw) × [y0, y0+bh) of `data` (row stride `width`).
 * Pixels that are NaN, or whose `mask` has any of `maskBits` set, are skipped.
 */
export function boxStatistics(
  data: Float32Array,
  mask: Int32Array | undefined,
  maskBits: number,
  width: number,
  x0: number,
  y0: number,
  bw: number,
  bh: number,
  scratch: MeshScratch,
  minGoodFraction = MIN_GOOD_FRACTION,
): BoxStatistics {
  // Pass 1: mean and σ of usable pixels.
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  const ignore = maskBits === 0 ? undefined : mask;
  for (let y = y0; y < y0 + bh; y++) {
    const row = y * width;
    if (ignore === undefined) {
      for (let i = row + x0, end = row + x0 + bw; i < end; i++) {
        const v = data[i]!;
        if (v === v) {
          n++;
          sum += v;
          sumSq += v * v;
        }
      }
    } else {
      for (let i = row + x0, end = row + x0 + bw; i < end; i++) {
        const v = data[i]!;
        if (v === v && (ignore[i]! & maskBits) === 0) {
          n++;
          sum += v;
          sumSq += v * v;
        }
      }
    }
  }
  if (n === 0 || n < bw * bh * minGoodFraction) return { level: Number.NaN, sigma: Number.NaN, nGood: n, ok: false };
  let mean = sum / n;
  let sigma = Math.sqrt(Math.max(0, sumSq / n - mean * mean));

  // Pass 2: the same within mean ± 2σ, as SExtractor does before building the histogram.
  const lcut = mean - 2 * sigma;
  const hcut = mean + 2 * sigma;
  let n2 = 0;
  sum = 0;
  sumSq = 0;
  for (let y = y0; y < y0 + bh; y++) {
    const row = y * width;
    for (let i = row + x0, end = row + x0 + bw; i < end; i++) {
      const v = data[i]!;
      if (v >= lcut && v <= hcut && (ignore === undefined || (ignore[i]! & maskBits) === 0)) {
        n2++;
        sum += v;
        sumSq += v * v;
      }
    }
  }
  if (n2 > 0) {
    mean = sum / n2;
    sigma = Math.sqrt(Math.max(0, sumSq / n2 - mean * mean));
  }
  if (!(sigma > 0)) return { level: mean, sigma: 0, nGood: n, ok: true };

  // Pass 3: histogram over mean ± 5σ; bin i is centred on qzero + i·qscale.
  const nLevels = Math.min(QUANTIF_NMAXLEVELS, Math.floor(LEVEL_STEP * n + 1));
  const qscale = (2 * QUANTIF_NSIGMA * sigma) / nLevels;
  const qzero = mean - QUANTIF_NSIGMA * sigma;
  const hist = scratch.histogram;
  hist.fill(0, 0, nLevels);
  const inv = 1 / qscale;
  const cste = 0.499999 - qzero * inv;
  for (let y = y0; y < y0 + bh; y++) {
    const row = y * width;
    for (let i = row + x0, end = row + x0 + bw; i < end; i++) {
      const bin = Math.floor(data[i]! * inv + cste);
      if (bin >= 0 && bin < nLevels && (ignore === undefined || (ignore[i]! & maskBits) === 0)) hist[bin]!++;
    }
  }
  const c0 = scratch.cumCount;
  const c1 = scratch.cumFirst;
  const c2 = scratch.cumSecond;
  c0[0] = 0;
  c1[0] = 0;
  c2[0] = 0;
  for (let i = 0; i < nLevels; i++) {
    const h = hist[i]!;
    c0[i + 1] = c0[i]! + h;
    c1[i + 1] = c1[i]! + h * i;
    c2[i + 1] = c2[i]! + h * i * i;
  }

  // Iterated ±3σ clipping around the median on the inclusive bin range [lo, hi], as backguess does.
  const last = nLevels - 1;
  let lo = 0;
  let hi = last;
  let sig = 10 * last;
  let sig1 = 1;
  let mea = 0;
  let med = 0;
  for (let iter = 0; iter < 100 && sig >= 0.1 && Math.abs(sig / sig1 - 1) > 1e-4; iter++) {
    sig1 = sig;
    const count = c0[hi + 1]! - c0[lo]!;
    if (count <= 0) break;
    mea = (c1[hi + 1]! - c1[lo]!) / count;
    const var_ = (c2[hi + 1]! - c2[lo]!) / count - mea * mea;
    sig = var_ > 0 ? Math.sqrt(var_) : 0;
    med = histogramMedian(c0, hist, lo, hi + 1, count);
    const l = med - 3 * sig;
    const h = med + 3 * sig;
    lo = l > 0 ? Math.round(l) : 0;
    hi = h < last ? Math.round(h) : last;
    if (hi < lo) hi = lo;
  }
  let levelBins: number;
  if (sig > 0) levelBins = Math.abs((mea - med) / sig) < 0.3 ? 2.5 * med - 1.5 * mea : med;
  else levelBins = mea;
  return { level: qzero + levelBins * qscale, sigma: sig * qscale, nGood: n, ok: true };
}

/** Median in bin units of hist[lo, hi), treating each bin as uniform over [i-0.5, i+0.5). */
function histogramMedian(c0: Float64Array, hist: Int32Array, lo: number, hi: number, count: number): number {
  const target = c0[lo]! + count / 2;
  // Smallest k in [lo, hi) with c0[k+1] >= target.
  let a = lo;
  let b = hi - 1;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (c0[m + 1]! >= target) b = m;
    else a = m + 1;
  }
  const h = hist[a]!;
  return h > 0 ? a - 0.5 + (target - c0[a]!) / h : a;
}

/** Median of the finite values of an array (copies; for small arrays such as mesh maps). */
export function medianOf(values: ArrayLike<number>): number {
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) finite.push(v);
  }
  if (finite.length === 0) return Number.NaN;
  finite.sort((p, q) => p - q);
  const m = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[m]! : 0.5 * (finite[m - 1]! + finite[m]!);
}
