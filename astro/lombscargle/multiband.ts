import { InvalidOptionError } from './errors.js';
import { validateFrequencyGrid } from './frequency-grid.js';
import { compileLombScargleOptions } from './options.js';
import { normalizePower } from './power.js';
import { prepareFor, projectionOfPrepared } from './lomb-scargle.js';
import type { FrequencyGrid, LightCurve, LombScargleOptions } from './types.js';

/** Name of the combined periodogram's definition (see {@link multibandLombScargle}). */
export const POOLED_CHI2_COMBINATION = 'pooled-chi2-independent-bands' as const;

export interface BandPeriodogram {
  band: string;
  /** This band's periodogram in the requested normalization. */
  power: Float64Array;
  /** chi2 of the constant (weighted-mean) model of this band: its weight in the combination. */
  chi2Reference: number;
  nObs: number;
  nDropped: number;
}

export interface MultibandPeriodogram {
  bands: BandPeriodogram[];
  /** Combined 'standard'-normalized power, definition {@link POOLED_CHI2_COMBINATION}. */
  combined: Float64Array;
  combination: typeof POOLED_CHI2_COMBINATION;
}

/**
 * One generalized Lomb-Scargle periodogram per band plus a combined one.
 *
 * Combined definition ("pooled chi2, independent bands"): every band gets its
 * own offset, amplitude and phase at the common frequency f, and
 *
 *   P(f) = 1 - sum_b chi2_b(f) / sum_b chi2_0,b = sum_b chi2_0,b P_b(f) / sum_b chi2_0,b
 *
 * where P_b is band b's 'standard' power and chi2_0,b = sum (y - ybar_w)^2 / dy^2
 * its chi2 about the weighted mean: the chi2-weighted mean of the per-band
 * standard powers. It equals the 'standard' power of astropy's
 * LombScargleMultiband (astropy >= 5.3) with nterms_base = 0, nterms_band = 1,
 * not its default 'flexible' model with a shared base term, and it is always
 * 'standard'-normalized whatever `normalization` the per-band powers use.
 * Bands without dy use unit uncertainties, so their weight is their raw sum of
 * squares: give dy for every band, or none, when the bands' units differ.
 */
export function multibandLombScargle(
  bands: Readonly<Record<string, LightCurve>> | ReadonlyArray<LightCurve & { band: string }>,
  grid: FrequencyGrid,
  opts: LombScargleOptions = {},
): MultibandPeriodogram {
  validateFrequencyGrid(grid);
  const list: Array<[string, LightCurve]> = Array.isArray(bands)
    ? (bands as ReadonlyArray<LightCurve & { band: string }>).map((b) => [b.band, b])
    : Object.entries(bands as Readonly<Record<string, LightCurve>>);
  if (list.length === 0) throw new InvalidOptionError('bands', '[]', 'at least one band is required');
  const base = compileLombScargleOptions(opts);
  const m = grid.n;
  const numerator = new Float64Array(m);
  let denominator = 0;
  const out: BandPeriodogram[] = [];
  for (const [band, lc] of list) {
    const o = { ...base, label: base.label === undefined ? `band ${band}` : `${base.label} band ${band}` };
    const prep = prepareFor(lc, o);
    const projection = projectionOfPrepared(prep, grid, o);
    // chi2_0,b * P_b = sumInvVar * projection, and chi2_0,b = sumInvVar * yy
    for (let k = 0; k < m; k++) numerator[k] = (numerator[k] as number) + prep.sumInvVar * (projection[k] as number);
    const chi2Reference = prep.sumInvVar * prep.yy;
    denominator += chi2Reference;
    const power = normalizePower(projection, o.normalization, prep.yy, prep.sumInvVar);
    out.push({ band, power, chi2Reference, nObs: prep.n, nDropped: prep.nDropped });
  }
  const combined = new Float64Array(m);
  if (denominator > 0) {
    for (let k = 0; k < m; k++) combined[k] = Math.min((numerator[k] as number) / denominator, 1);
  }
  return { bands: out, combined, combination: POOLED_CHI2_COMBINATION };
}
