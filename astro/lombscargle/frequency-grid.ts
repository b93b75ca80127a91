import { InvalidOptionError, ZeroBaselineError } from './errors.js';
import type { FrequencyGrid } from './types.js';

export interface AutoFrequencyOptions {
  /** Grid points across a typical peak of width 1/baseline. @default 5 */
  samplesPerPeak?: number;
  /** Multiple of the average Nyquist frequency N/(2*baseline) used as maximum. @default 5 */
  nyquistFactor?: number;
  /** @default 0.5 * df */
  minimumFrequency?: number;
  /** @default nyquistFactor * 0.5 * N / baseline */
  maximumFrequency?: number;
}

/** Python's round(): half to even, as numpy.round does for the grid size. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * astropy's `LombScargle.autofrequency()` rule, exactly:
 * df = 1/baseline/samplesPerPeak, fmin = 0.5*df, fmax = nyquistFactor * N/(2*baseline),
 * n = 1 + round((fmax - fmin)/df). `t` may contain NaN (ignored, like the rows
 * a periodogram drops).
 */
export function autoFrequencyGrid(t: ArrayLike<number>, opts: AutoFrequencyOptions = {}): FrequencyGrid {
  const samplesPerPeak = opts.samplesPerPeak ?? 5;
  const nyquistFactor = opts.nyquistFactor ?? 5;
  if (!(samplesPerPeak > 0 && Number.isFinite(samplesPerPeak))) {
    throw new InvalidOptionError('samplesPerPeak', samplesPerPeak, 'must be finite and > 0');
  }
  if (!(nyquistFactor > 0 && Number.isFinite(nyquistFactor))) {
    throw new InvalidOptionError('nyquistFactor', nyquistFactor, 'must be finite and > 0');
  }
  let tMin = Infinity;
  let tMax = -Infinity;
  let nSamples = 0;
  for (let i = 0; i < t.length; i++) {
    const ti = t[i] as number;
    if (!Number.isFinite(ti)) continue;
    nSamples++;
    if (ti < tMin) tMin = ti;
    if (ti > tMax) tMax = ti;
  }
  if (nSamples === 0) throw new InvalidOptionError('t', `[${t.length} values]`, 'has no finite time');
  const baseline = tMax - tMin;
  if (!(baseline > 0)) throw new ZeroBaselineError(tMin);

  const df = 1.0 / baseline / samplesPerPeak;
  const fmin = opts.minimumFrequency ?? 0.5 * df;
  const fmax = opts.maximumFrequency ?? nyquistFactor * (0.5 * nSamples / baseline);
  const n = 1 + roundHalfEven((fmax - fmin) / df);
  return validateFrequencyGrid({ fmin, df, n });
}

/** Reject grids no periodogram can use: negative fmin, non-positive df, n < 1. */
export function validateFrequencyGrid(grid: FrequencyGrid): FrequencyGrid {
  if (!(grid.fmin >= 0 && Number.isFinite(grid.fmin))) {
    throw new InvalidOptionError('grid.fmin', grid.fmin, 'must be finite and >= 0');
  }
  if (!(grid.df > 0 && Number.isFinite(grid.df))) {
    throw new InvalidOptionError('grid.df', grid.df, 'must be finite and > 0');
  }
  if (!(Number.isInteger(grid.n) && grid.n >= 1)) {
    throw new InvalidOptionError('grid.n', grid.n, 'must be an integer >= 1 (check minimum/maximum frequency)');
  }
  return grid;
}

/** The frequencies of a grid, f_k = fmin + df*k (the same expression as numpy's fmin + df*arange(n)). */
export function gridFrequencies(grid: FrequencyGrid): Float64Array {
  const f = new Float64Array(grid.n);
  for (let k = 0; k < grid.n; k++) f[k] = grid.fmin + grid.df * k;
  return f;
}

/** Highest frequency of the grid, as astropy's autofrequency(return_freq_limits=True). */
export function gridMaxFrequency(grid: FrequencyGrid): number {
  return grid.fmin + grid.df * (grid.n - 1);
}
