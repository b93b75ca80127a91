import { InvalidOptionError } from './errors.js';
import type { Normalization } from './types.js';

/** False alarm probability approximations, as in astropy's `_statistics.py` (all cheap, closed form). */
export type FapMethod = 'baluev' | 'davies' | 'naive' | 'single';

export interface FalseAlarmOptions {
  /** Normalization the power was computed with. @default 'standard' */
  normalization?: Normalization;
  /** @default 'baluev' */
  method?: FapMethod;
}

const LANCZOS_G = 7;
const LANCZOS_COEF = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Gamma(x) for x > 0 (Lanczos, g = 7; relative error ~1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) {
    // reflection: Gamma(x) Gamma(1-x) = pi / sin(pi x)
    return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  }
  const z = x - 1;
  let a = LANCZOS_COEF[0] as number;
  const tt = z + LANCZOS_G + 0.5;
  for (let i = 1; i < LANCZOS_G + 2; i++) a += (LANCZOS_COEF[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(tt) - tt + Math.log(a);
}

/** astropy `_gamma(N)` = sqrt(2/N) * Gamma(N/2) / Gamma((N-1)/2). */
function gammaFactor(n: number): number {
  return Math.sqrt(2 / n) * Math.exp(logGamma(n / 2) - logGamma((n - 1) / 2));
}

/** Weighted variance of t with weights 1/dy^2 (plain variance without dy); two-pass for stability. */
function weightedVariance(t: ArrayLike<number>, dy: ArrayLike<number> | undefined): number {
  let sw = 0;
  let st = 0;
  for (let i = 0; i < t.length; i++) {
    const wi = dy === undefined ? 1 : 1 / ((dy[i] as number) * (dy[i] as number));
    sw += wi;
    st += wi * (t[i] as number);
  }
  const mean = st / sw;
  let sv = 0;
  for (let i = 0; i < t.length; i++) {
    const wi = dy === undefined ? 1 : 1 / ((dy[i] as number) * (dy[i] as number));
    const d = (t[i] as number) - mean;
    sv += wi * d * d;
  }
  return sv / sw;
}

/** Single-frequency false alarm probability (Baluev 2008, Table 1), dH = 1, dK = 3. */
export function fapSingle(z: number, n: number, normalization: Normalization): number {
  const nk = n - 3;
  switch (normalization) {
    case 'psd':
      return Math.exp(-z);
    case 'standard':
      return Math.pow(1 - Math.min(z, 1), 0.5 * nk);
    case 'model':
      return Math.pow(1 + z, -0.5 * nk);
    case 'log':
      return Math.exp(-0.5 * nk * z);
  }
}

/** tau factor of the Davies bound (Baluev 2008, Table 1). */
function tauDavies(z: number, fmax: number, t: ArrayLike<number>, dy: ArrayLike<number> | undefined, normalization: Normalization): number {
  const n = t.length;
  const nh = n - 1;
  const nk = n - 3;
  const teff = Math.sqrt(4 * Math.PI * weightedVariance(t, dy));
  const w = fmax * teff;
  switch (normalization) {
    case 'psd':
      return w * Math.exp(-z) * Math.sqrt(z);
    case 'standard':
      return gammaFactor(nh) * w * Math.pow(1 - Math.min(z, 1), 0.5 * (nk - 1)) * Math.sqrt(0.5 * nh * z);
    case 'model':
      return gammaFactor(nk) * w * Math.pow(1 + z, -0.5 * nk) * Math.sqrt(0.5 * nk * z);
    case 'log':
      return gammaFactor(nk) * w * Math.exp(-0.5 * z * (nk - 0.5)) * Math.sqrt(nk * Math.sinh(0.5 * z));
  }
}

/**
 * False alarm probability of a periodogram maximum `power` under the null
 * hypothesis of Gaussian noise, exactly as astropy's
 * `LombScargle.false_alarm_probability(power, method)` (default 'baluev':
 * the alias-free approximation, eq. 6 of Baluev 2008). `fmax` is the highest
 * frequency searched (astropy: fmin + df*(n-1) of the grid). `y` is accepted for
 * symmetry with astropy; none of these methods depends on it.
 * Powers slightly outside their domain from rounding (< 0, or > 1 for
 * 'standard') are clamped so the result is never NaN.
 */
export function falseAlarmProbability(
  power: number,
  fmax: number,
  t: ArrayLike<number>,
  y: ArrayLike<number>,
  dy?: ArrayLike<number>,
  opts: FalseAlarmOptions = {},
): number {
  const normalization = opts.normalization ?? 'standard';
  const method = opts.method ?? 'baluev';
  if (y.length !== t.length || (dy !== undefined && dy.length !== t.length)) {
    throw new InvalidOptionError('t/y/dy', `${t.length}/${y.length}/${dy?.length ?? '-'}`, 'lengths differ');
  }
  if (t.length < 4) {
    throw new InvalidOptionError('t.length', t.length, 'a false alarm probability needs at least 4 points');
  }
  if (!(fmax > 0)) throw new InvalidOptionError('fmax', fmax, 'must be > 0');
  const z = Math.max(power, 0);
  const n = t.length;
  switch (method) {
    case 'single':
      return fapSingle(z, n, normalization);
    case 'naive': {
      let tMin = Infinity;
      let tMax = -Infinity;
      for (let i = 0; i < n; i++) {
        const ti = t[i] as number;
        if (ti < tMin) tMin = ti;
        if (ti > tMax) tMax = ti;
      }
      const nEff = fmax * (tMax - tMin);
      return -Math.expm1(nEff * Math.log1p(-fapSingle(z, n, normalization)));
    }
    case 'davies':
      return fapSingle(z, n, normalization) + tauDavies(z, fmax, t, dy, normalization);
    case 'baluev': {
      const fapS = fapSingle(z, n, normalization);
      const tau = tauDavies(z, fmax, t, dy, normalization);
      return -Math.expm1(-tau) + fapS * Math.exp(-tau);
    }
    default:
      throw new InvalidOptionError('method', method, "expected 'baluev', 'davies', 'naive' or 'single'");
  }
}
