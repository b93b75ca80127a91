import type { Normalization } from './types.js';

/**
 * Below this det/trace^2 the 2x2 normal matrix of the (centred) cosine and sine
 * columns is treated as rank one: the sampled sine and cosine are (nearly)
 * collinear, e.g. at f = 0 or at an exact alias of the sampling comb. The
 * projection is then taken on the single remaining direction instead of
 * dividing 0 by 0. Regular data never come near it.
 */
const RANK_ONE_THRESHOLD = 1e-12;

/**
 * Below this trace (weighted variance of the cosine plus that of the sine, with
 * weights summing to 1) both columns are constant up to rounding, e.g. at f = 0
 * or when all times are equal.
 */
const RANK_ZERO_TRACE = 1e-14;

/**
 * Weighted least-squares power of one sinusoid (tau-free generalized Lomb-Scargle):
 * the squared norm of the projection of y on span{cos, sin}, from the weighted
 * sums with weights normalized to 1.
 * cc, ss, cs: (centred) Gram entries; yc, ys: data correlations.
 */
export function projectedPower(cc: number, ss: number, cs: number, yc: number, ys: number): number {
  const det = cc * ss - cs * cs;
  const tr = cc + ss;
  if (det > RANK_ONE_THRESHOLD * tr * tr) {
    const p = (ss * yc * yc + cc * ys * ys - 2 * cs * yc * ys) / det;
    return p > 0 ? p : 0;
  }
  // rank one: the projection on the one column direction left; rank zero (both
  // columns constant to rounding, weights summing to 1): nothing to fit
  return tr > RANK_ZERO_TRACE ? (yc * yc + ys * ys) / tr : 0;
}

/**
 * Turn projected powers (in units of the weighted variance) into astropy's
 * normalizations, in place. `yy` is sum(w y'^2), `sumInvVar` sum(1/dy^2).
 * A constant light curve (yy = 0) has no variance to explain: its power is 0
 * for every normalization instead of 0/0.
 */
export function normalizePower(
  p: Float64Array,
  normalization: Normalization,
  yy: number,
  sumInvVar: number,
): Float64Array {
  const m = p.length;
  if (!(yy > 0)) {
    p.fill(0);
    return p;
  }
  switch (normalization) {
    case 'standard':
      for (let k = 0; k < m; k++) p[k] = Math.min((p[k] as number) / yy, 1);
      break;
    case 'model':
      for (let k = 0; k < m; k++) {
        const r = Math.min((p[k] as number) / yy, 1);
        p[k] = r / (1 - r);
      }
      break;
    case 'log':
      for (let k = 0; k < m; k++) {
        const r = Math.min((p[k] as number) / yy, 1);
        p[k] = -Math.log1p(-r);
      }
      break;
    case 'psd': {
      const scale = 0.5 * sumInvVar;
      for (let k = 0; k < m; k++) p[k] = (p[k] as number) * scale;
      break;
    }
  }
  return p;
}
