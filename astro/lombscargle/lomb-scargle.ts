import { exactProjection } from './exact.js';
import { fastProjection } from './fast.js';
import { validateFrequencyGrid } from './frequency-grid.js';
import { compileLombScargleOptions, type CompiledLombScargleOptions } from './options.js';
import { normalizePower } from './power.js';
import { prepareLightCurve, type PreparedLightCurve } from './prepare.js';
import type { FrequencyGrid, LightCurve, LombScargleOptions } from './types.js';

/**
 * Projected power (weighted-variance units, before normalization) of a
 * prepared light curve, by the method the options name.
 */
export function projectionOfPrepared(
  prep: PreparedLightCurve,
  grid: FrequencyGrid,
  o: CompiledLombScargleOptions,
): Float64Array {
  if (o.method === 'exact') {
    return exactProjection(prep, grid, { fitMean: o.fitMean, signal: o.signal, onProgress: o.onProgress, label: o.label });
  }
  const p = fastProjection(prep, grid, { fitMean: o.fitMean, tolerance: o.fastTolerance, signal: o.signal, label: o.label });
  o.onProgress?.(grid.n, grid.n);
  return p;
}

/** Normalized power of an already prepared light curve (used by the batch driver). */
export function periodogramOfPrepared(
  prep: PreparedLightCurve,
  grid: FrequencyGrid,
  o: CompiledLombScargleOptions,
): Float64Array {
  return normalizePower(projectionOfPrepared(prep, grid, o), o.normalization, prep.yy, prep.sumInvVar);
}

export function prepareFor(lc: LightCurve, o: CompiledLombScargleOptions): PreparedLightCurve {
  const prep = prepareLightCurve(lc, {
    nanPolicy: o.nanPolicy,
    center: o.fitMean || o.centerData,
    label: o.label,
  });
  o.onDropped?.(prep.nDropped);
  return prep;
}

/**
 * Generalized (floating-mean) Lomb-Scargle periodogram, astropy's `LombScargle`
 * definition (nterms = 1): power at f_k = grid.fmin + k*grid.df (cycles per unit
 * of t). Rows with a non-finite t, y or dy are dropped (count via `onDropped`).
 * Throws InsufficientDataError with fewer than 3 usable rows,
 * InvalidUncertaintyError for dy <= 0; a constant y gives power 0 everywhere.
 */
export function lombScargle(lc: LightCurve, grid: FrequencyGrid, opts: LombScargleOptions = {}): Float64Array {
  const o = compileLombScargleOptions(opts);
  validateFrequencyGrid(grid);
  return periodogramOfPrepared(prepareFor(lc, o), grid, o);
}
