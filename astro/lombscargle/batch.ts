import { LombScargleError, PeriodogramAbortedError } from './errors.js';
import { gridMaxFrequency, validateFrequencyGrid } from './frequency-grid.js';
import { compileLombScargleOptions } from './options.js';
import { findPeaks } from './peaks.js';
import { periodogramOfPrepared, prepareFor } from './lomb-scargle.js';
import { falseAlarmProbability } from './statistics.js';
import type { FrequencyGrid, LightCurve, LombScargleOptions, PeriodogramSummary, ProgressCallback } from './types.js';

export interface BatchSummary extends PeriodogramSummary {
  /** Position of the light curve in the input batch. */
  index: number;
}

export interface LombScargleBatchOptions extends Omit<LombScargleOptions, 'onProgress' | 'onDropped' | 'label'> {
  /** Distinct peaks kept per light curve. @default 5 */
  topN?: number;
  /**
   * Minimum frequency distance between two reported peaks; by default one
   * peak width, 1/baseline of that light curve. 0 keeps every local maximum.
   */
  peakSeparation?: number;
  /**
   * When true, a light curve whose input is unusable (too few points, bad dy,
   * ...) is left out of the result and reported to `onSkipped`, instead of
   * failing the whole batch. @default false
   */
  skipInvalid?: boolean;
  onSkipped?: (index: number, error: LombScargleError) => void;
  /** Labels for error messages, by index; default `#<index>`. */
  labels?: readonly string[];
  /** Reports light curves done out of lcs.length. */
  onProgress?: ProgressCallback;
  /** Receives each light curve's full periodogram (on its grid) before it is summarized; keep it to save it. */
  onPower?: (index: number, power: Float64Array, grid: FrequencyGrid) => void;
}

/**
 * Periodograms of many light curves, keeping for each only a summary: best
 * frequency/period/power, its Baluev false alarm probability (fmax = highest
 * grid frequency, as astropy) and the top-N distinct peaks. `grid` is one grid
 * for all, or a function giving each light curve its own (e.g. autoFrequencyGrid).
 * The AbortSignal is checked between light curves and inside each one.
 */
export function lombScargleBatch(
  lcs: readonly LightCurve[],
  grid: FrequencyGrid | ((lc: LightCurve, index: number) => FrequencyGrid),
  opts: LombScargleBatchOptions = {},
): BatchSummary[] {
  const base = compileLombScargleOptions({ ...opts, onProgress: undefined, onDropped: undefined, label: undefined });
  const topN = opts.topN ?? 5;
  const out: BatchSummary[] = [];
  for (let index = 0; index < lcs.length; index++) {
    if (base.signal?.aborted) throw new PeriodogramAbortedError(index, lcs.length, { cause: base.signal.reason });
    const lc = lcs[index] as LightCurve;
    const label = opts.labels?.[index] ?? `#${index}`;
    const o = { ...base, label };
    try {
      const g = validateFrequencyGrid(typeof grid === 'function' ? grid(lc, index) : grid);
      const prep = prepareFor(lc, o);
      const power = periodogramOfPrepared(prep, g, o);
      opts.onPower?.(index, power, g);
      let best = 0;
      for (let k = 1; k < power.length; k++) if ((power[k] as number) > (power[best] as number)) best = k;
      const bestPower = power[best] as number;
      const bestFrequency = g.fmin + g.df * best;
      const fmax = gridMaxFrequency(g);
      const fap =
        fmax > 0 && prep.n >= 4
          ? falseAlarmProbability(bestPower, fmax, prep.t, prep.y, prep.dy, { normalization: o.normalization })
          : 1;
      const separation = opts.peakSeparation ?? 1 / (prep.tMax - prep.tMin);
      out.push({
        index,
        bestFrequency,
        bestPeriod: 1 / bestFrequency,
        bestPower,
        fap,
        peaks: findPeaks(power, g, topN, Number.isFinite(separation) ? separation : 0),
        nObs: prep.n,
        nDropped: prep.nDropped,
      });
    } catch (err) {
      if (opts.skipInvalid === true && err instanceof LombScargleError && !(err instanceof PeriodogramAbortedError)) {
        opts.onSkipped?.(index, err);
      } else {
        throw err;
      }
    }
    opts.onProgress?.(index + 1, lcs.length);
  }
  return out;
}
