import { PeriodogramAbortedError } from './errors.js';
import { projectedPower } from './power.js';
import type { PreparedLightCurve } from './prepare.js';
import type { FrequencyGrid, ProgressCallback } from './types.js';

/**
 * Frequencies between two direct evaluations of sin/cos. In between, each
 * point's phasor is advanced by a rotation of 2*pi*df*t; 256 rotations add at
 * most ~1e-13 of drift while making the Math.sin/cos cost ~5% of the kernel.
 */
export const EXACT_RESEED_INTERVAL = 256;

export interface ExactKernelOptions {
  fitMean: boolean;
  signal?: AbortSignal | undefined;
  onProgress?: ProgressCallback | undefined;
  label?: string | undefined;
}

/**
 * Direct O(N*M) generalized Lomb-Scargle: projected power (units of the weighted
 * variance, i.e. before normalization) at f_k = fmin + k*df.
 *
 * Per frequency one pass over the points accumulates the weighted sums
 * C, S, CC, CS, YC, YS (SS = W - CC), with cos/sin of 2*pi*f_k*t_i obtained by
 * rotating the previous frequency's phasor instead of calling Math.sin/cos.
 * Two frequencies are done per pass so each point's data are loaded once for both.
 */
export function exactProjection(prep: PreparedLightCurve, grid: FrequencyGrid, opts: ExactKernelOptions): Float64Array {
  const { t, w, wy, n } = prep;
  const { fmin, df, n: m } = grid;
  const fitMean = opts.fitMean;
  const out = new Float64Array(m);
  // Times relative to the first one (exact by Sterbenz for MJD-like t): the power
  // does not depend on the origin, and phases ~1e5 rad smaller lose ~100x less
  // to rounding than astropy's 2*pi*f*t on raw MJDs.
  const tRef = prep.tMin;
  // interleaved so one pass streams through two arrays: [w, w*y', cos(step), sin(step)] and [cos, sin]
  const data = new Float64Array(4 * n);
  const phasor = new Float64Array(2 * n);
  let wSum = 0;
  for (let i = 0; i < n; i++) {
    const step = 2 * Math.PI * df * ((t[i] as number) - tRef);
    data[4 * i] = w[i] as number;
    data[4 * i + 1] = wy[i] as number;
    data[4 * i + 2] = Math.cos(step);
    data[4 * i + 3] = Math.sin(step);
    wSum += w[i] as number;
  }
  const n2 = 2 * n;

  for (let k0 = 0; k0 < m; k0 += EXACT_RESEED_INTERVAL) {
    if (opts.signal?.aborted) throw new PeriodogramAbortedError(k0, m, { lightCurve: opts.label, cause: opts.signal.reason });
    const k1 = Math.min(m, k0 + EXACT_RESEED_INTERVAL);
    // re-seed from the direct phases, (2*pi*f) * (t - tRef)
    const omega = 2 * Math.PI * (fmin + df * k0);
    for (let i = 0; i < n; i++) {
      const a = omega * ((t[i] as number) - tRef);
      phasor[2 * i] = Math.cos(a);
      phasor[2 * i + 1] = Math.sin(a);
    }
    let k = k0;
    for (; k + 1 < k1; k += 2) {
      let c0 = 0, s0 = 0, cc0 = 0, cs0 = 0, yc0 = 0, ys0 = 0;
      let c1 = 0, s1 = 0, cc1 = 0, cs1 = 0, yc1 = 0, ys1 = 0;
      for (let i = 0, j = 0; i < n2; i += 2, j += 4) {
        const ca = phasor[i] as number;
        const sa = phasor[i + 1] as number;
        const wi = data[j] as number;
        const wyi = data[j + 1] as number;
        const cd = data[j + 2] as number;
        const sd = data[j + 3] as number;
        const wc = wi * ca;
        c0 += wc;
        s0 += wi * sa;
        cc0 += wc * ca;
        cs0 += wc * sa;
        yc0 += wyi * ca;
        ys0 += wyi * sa;
        const cb = ca * cd - sa * sd;
        const sb = sa * cd + ca * sd;
        const wcb = wi * cb;
        c1 += wcb;
        s1 += wi * sb;
        cc1 += wcb * cb;
        cs1 += wcb * sb;
        yc1 += wyi * cb;
        ys1 += wyi * sb;
        phasor[i] = cb * cd - sb * sd;
        phasor[i + 1] = sb * cd + cb * sd;
      }
      out[k] = fitMean
        ? projectedPower(cc0 - c0 * c0, wSum - cc0 - s0 * s0, cs0 - c0 * s0, yc0, ys0)
        : projectedPower(cc0, wSum - cc0, cs0, yc0, ys0);
      out[k + 1] = fitMean
        ? projectedPower(cc1 - c1 * c1, wSum - cc1 - s1 * s1, cs1 - c1 * s1, yc1, ys1)
        : projectedPower(cc1, wSum - cc1, cs1, yc1, ys1);
    }
    if (k < k1) {
      let c0 = 0, s0 = 0, cc0 = 0, cs0 = 0, yc0 = 0, ys0 = 0;
      for (let i = 0, j = 0; i < n2; i += 2, j += 4) {
        const ca = phasor[i] as number;
        const sa = phasor[i + 1] as number;
        const wi = data[j] as number;
        const wyi = data[j + 1] as number;
        const wc = wi * ca;
        c0 += wc;
        s0 += wi * sa;
        cc0 += wc * ca;
        cs0 += wc * sa;
        yc0 += wyi * ca;
        ys0 += wyi * sa;
      }
      out[k] = fitMean
        ? projectedPower(cc0 - c0 * c0, wSum - cc0 - s0 * s0, cs0 - c0 * s0, yc0, ys0)
        : projectedPower(cc0, wSum - cc0, cs0, yc0, ys0);
    }
    opts.onProgress?.(k1, m);
  }
  return out;
}

/**
 * Projected power at selected grid indices by direct sums (Math.sin/cos per
 * point), written into `out`. The fast method uses it where its sums are
 * ill-conditioned.
 */
export function exactProjectionAtIndices(
  prep: PreparedLightCurve,
  grid: FrequencyGrid,
  indices: readonly number[],
  fitMean: boolean,
  out: Float64Array,
): void {
  const { t, w, wy, n } = prep;
  const tRef = prep.tMin;
  let wSum = 0;
  for (let i = 0; i < n; i++) wSum += w[i] as number;
  for (const k of indices) {
    const omega = 2 * Math.PI * (grid.fmin + grid.df * k);
    let c0 = 0, s0 = 0, cc0 = 0, cs0 = 0, yc0 = 0, ys0 = 0;
    for (let i = 0; i < n; i++) {
      const a = omega * ((t[i] as number) - tRef);
      const ca = Math.cos(a);
      const sa = Math.sin(a);
      const wi = w[i] as number;
      const wyi = wy[i] as number;
      const wc = wi * ca;
      c0 += wc;
      s0 += wi * sa;
      cc0 += wc * ca;
      cs0 += wc * sa;
      yc0 += wyi * ca;
      ys0 += wyi * sa;
    }
    out[k] = fitMean
      ? projectedPower(cc0 - c0 * c0, wSum - cc0 - s0 * s0, cs0 - c0 * s0, yc0, ys0)
      : projectedPower(cc0, wSum - cc0, cs0, yc0, ys0);
  }
}
