import type { FrequencyGrid, PeriodogramPeak } from './types.js';

/**
 * The `topN` highest local maxima of a periodogram, highest first. A local
 * maximum is a point not lower than its neighbours (grid edges count when they
 * are not lower than their one neighbour); of maxima closer than `minSeparation`
 * in frequency only the highest is kept, so the fringes of one broad peak do not
 * crowd out other periods. Frequency 0 has an infinite period.
 */
export function findPeaks(
  power: Float64Array,
  grid: FrequencyGrid,
  topN: number,
  minSeparation = 0,
): PeriodogramPeak[] {
  const m = power.length;
  if (topN <= 0 || m === 0) return [];
  const candidates: number[] = [];
  for (let k = 0; k < m; k++) {
    const p = power[k] as number;
    if (Number.isNaN(p)) continue;
    const left = k > 0 ? (power[k - 1] as number) : -Infinity;
    const right = k + 1 < m ? (power[k + 1] as number) : -Infinity;
    // strict on the left so a flat top yields one maximum
    if (p > left && p >= right) candidates.push(k);
  }
  candidates.sort((a, b) => (power[b] as number) - (power[a] as number) || a - b);
  const chosen: number[] = [];
  const sepSteps = minSeparation / grid.df;
  for (const k of candidates) {
    if (chosen.length >= topN) break;
    if (sepSteps > 0 && chosen.some((c) => Math.abs(c - k) < sepSteps)) continue;
    chosen.push(k);
  }
  return chosen.map((k) => {
    const frequency = grid.fmin + grid.df * k;
    return { frequency, period: 1 / frequency, power: power[k] as number };
  });
}
