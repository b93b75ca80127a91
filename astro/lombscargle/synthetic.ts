import type { LightCurve } from './types.js';

/** Small deterministic PRNG (mulberry32) so tests and benchmarks are reproducible. */
export class SeededRandom {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

export interface SurveyLightCurveOptions {
  /** Number of epochs. */
  nEpochs: number;
  /** Observing seasons, one per year. @default 3 */
  seasons?: number;
  /** Length of a season in days. @default 180 */
  seasonLength?: number;
  /** Start time (e.g. an MJD). @default 0 */
  t0?: number;
  /** Period of the sinusoidal signal in days; omit for pure noise. */
  period?: number;
  /** Semi-amplitude of the signal. @default 0 */
  amplitude?: number;
  /** Typical 1-sigma noise; each point's dy is drawn in [0.5, 1.5] * sigma. @default 1 */
  sigma?: number;
  /** Mean level. @default 0 */
  mean?: number;
  /** Add a second harmonic of this relative amplitude (non-sinusoidal shapes). @default 0 */
  harmonic?: number;
}

/**
 * A survey-like light curve: nightly visits (one visit per night, time of night
 * jittered by +-0.1 d, so the 1-day alias is present) inside yearly seasons,
 * heteroscedastic Gaussian noise, optional sinusoidal signal.
 */
export function simulateSurveyLightCurve(rng: SeededRandom, opts: SurveyLightCurveOptions): LightCurve & { dy: Float64Array } {
  const seasons = opts.seasons ?? 3;
  const seasonLength = opts.seasonLength ?? 180;
  const t0 = opts.t0 ?? 0;
  const sigma = opts.sigma ?? 1;
  const amplitude = opts.amplitude ?? 0;
  const harmonic = opts.harmonic ?? 0;
  const n = opts.nEpochs;
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const season = Math.floor(rng.next() * seasons);
    const night = Math.floor(rng.next() * seasonLength);
    t[i] = t0 + 365.25 * season + night + rng.uniform(-0.1, 0.1);
  }
  t.sort();
  const y = new Float64Array(n);
  const dy = new Float64Array(n);
  const phase0 = rng.uniform(0, 2 * Math.PI);
  for (let i = 0; i < n; i++) {
    const d = sigma * rng.uniform(0.5, 1.5);
    dy[i] = d;
    let signal = 0;
    if (opts.period !== undefined) {
      const ph = (2 * Math.PI * ((t[i] as number) - t0)) / opts.period + phase0;
      signal = amplitude * (Math.sin(ph) + harmonic * Math.sin(2 * ph + 0.7));
    }
    y[i] = (opts.mean ?? 0) + signal + d * rng.normal();
  }
  return { t, y, dy };
}
