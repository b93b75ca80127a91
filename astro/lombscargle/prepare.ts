import {
  InsufficientDataError,
  InvalidUncertaintyError,
  LightCurveShapeError,
  NonFiniteInputError,
} from './errors.js';
import type { LightCurve, NanPolicy } from './types.js';

/**
 * A light curve reduced to what every periodogram needs: finite rows only,
 * weights normalized to sum 1, data centred on the weighted mean when asked.
 */
export interface PreparedLightCurve {
  /** Times of the kept rows. */
  t: Float64Array;
  /** Values of the kept rows, as given (not centred). */
  y: Float64Array;
  /** Uncertainties of the kept rows, or undefined when the input had none. */
  dy: Float64Array | undefined;
  /** Weights 1/dy^2 normalized to sum 1 (1/N each without dy). */
  w: Float64Array;
  /** w * y', y' = y minus its weighted mean when centred, else y. */
  wy: Float64Array;
  /** sum(w * y'^2): the weighted variance of y' (the 'standard' denominator); exactly 0 for a constant y. */
  yy: number;
  /** sum(1/dy^2) of the kept rows (N without dy): the 'psd' scale. */
  sumInvVar: number;
  /** Kept rows. */
  n: number;
  /** Rows dropped because t, y or dy was not finite. */
  nDropped: number;
  tMin: number;
  tMax: number;
}

export interface PrepareOptions {
  nanPolicy?: NanPolicy;
  /** Centre y on its weighted mean (astropy does this when fit_mean or center_data). @default true */
  center?: boolean;
  /** Smallest number of usable rows accepted. @default 3 (offset + sine + cosine) */
  minPoints?: number;
  label?: string;
}

/**
 * Validate a light curve and compute weights. Non-finite rows are dropped (and
 * counted) or rejected by `nanPolicy`; a zero, negative or infinite dy on an
 * otherwise finite row is always an error, since its weight has no meaning.
 */
export function prepareLightCurve(lc: LightCurve, opts: PrepareOptions = {}): PreparedLightCurve {
  const { t: t0, y: y0, dy: dy0 } = lc;
  const label = opts.label;
  const nIn = t0.length;
  if (y0.length !== nIn || (dy0 !== undefined && dy0.length !== nIn)) {
    throw new LightCurveShapeError(
      dy0 === undefined ? { t: nIn, y: y0.length } : { t: nIn, y: y0.length, dy: dy0.length },
      { lightCurve: label },
    );
  }
  const raise = opts.nanPolicy === 'raise';
  const keep = new Uint8Array(nIn);
  let n = 0;
  for (let i = 0; i < nIn; i++) {
    const ti = t0[i] as number;
    const yi = y0[i] as number;
    const dyi = dy0 === undefined ? 1 : (dy0[i] as number);
    // NaN dy counts as a missing measurement; an infinite one is rejected below
    const finite = Number.isFinite(ti) && Number.isFinite(yi) && !Number.isNaN(dyi);
    if (!finite) {
      if (raise) {
        const column = !Number.isFinite(ti) ? 't' : !Number.isFinite(yi) ? 'y' : 'dy';
        throw new NonFiniteInputError(i, column, { lightCurve: label });
      }
      continue;
    }
    if (!(dyi > 0 && dyi < Infinity)) throw new InvalidUncertaintyError(i, dyi, { lightCurve: label });
    keep[i] = 1;
    n++;
  }
  const nDropped = nIn - n;
  const minPoints = opts.minPoints ?? 3;
  if (n < minPoints) throw new InsufficientDataError(n, minPoints, nDropped, { lightCurve: label });

  const t = nDropped === 0 ? t0 : new Float64Array(n);
  const y = nDropped === 0 ? y0 : new Float64Array(n);
  const dy = dy0 === undefined ? undefined : nDropped === 0 ? dy0 : new Float64Array(n);
  if (nDropped > 0) {
    for (let i = 0, j = 0; i < nIn; i++) {
      if (keep[i] === 0) continue;
      t[j] = t0[i] as number;
      y[j] = y0[i] as number;
      if (dy !== undefined && dy0 !== undefined) dy[j] = dy0[i] as number;
      j++;
    }
  }

  const w = new Float64Array(n);
  let sumInvVar = 0;
  if (dy === undefined) {
    w.fill(1);
    sumInvVar = n;
  } else {
    for (let i = 0; i < n; i++) {
      const d = dy[i] as number;
      const wi = 1 / (d * d);
      w[i] = wi;
      sumInvVar += wi;
    }
  }
  let tMin = Infinity;
  let tMax = -Infinity;
  let mean = 0;
  for (let i = 0; i < n; i++) {
    const wi = (w[i] as number) / sumInvVar;
    w[i] = wi;
    mean += wi * (y[i] as number);
    const ti = t[i] as number;
    if (ti < tMin) tMin = ti;
    if (ti > tMax) tMax = ti;
  }
  if (opts.center === false) mean = 0;
  const wy = new Float64Array(n);
  let yy = 0;
  let maxAbsY = 0;
  let allEqual = true;
  for (let i = 0; i < n; i++) {
    const yi = y[i] as number;
    if (yi !== y[0]) allEqual = false;
    maxAbsY = Math.max(maxAbsY, Math.abs(yi));
    const yc = yi - mean;
    const wyi = (w[i] as number) * yc;
    wy[i] = wyi;
    yy += wyi * yc;
  }
  // A constant y leaves only the rounding of its mean: call it exactly constant
  // so every normalization gives 0 instead of amplified noise (or 0/0).
  const roundingScale = 4 * n * Number.EPSILON * maxAbsY;
  if (allEqual || yy <= roundingScale * roundingScale) {
    yy = 0;
    wy.fill(0);
  }
  return { t, y, dy, w, wy, yy, sumInvVar, n, nDropped, tMin, tMax };
}
