/**
 * Lomb-Scargle API contract: degenerate inputs, options, abort and progress,
 * batch summaries, peaks, FAP properties, multiband bookkeeping. No python needed.
 */
import { describe, expect, it } from 'vitest';
import {
  autoFrequencyGrid,
  compileLombScargleOptions,
  falseAlarmProbability,
  findPeaks,
  InsufficientDataError,
  InvalidOptionError,
  InvalidUncertaintyError,
  LightCurveShapeError,
  lombScargle,
  lombScargleBatch,
  LombScargleError,
  multibandLombScargle,
  NonFiniteInputError,
  PeriodogramAbortedError,
  POOLED_CHI2_COMBINATION,
  SeededRandom,
  simulateSurveyLightCurve,
  ZeroBaselineError,
  type FrequencyGrid,
  type LightCurve,
  type Normalization,
  type PeriodogramMethod,
} from '../../astro/lombscargle/index.js';
import { logGamma } from '../../astro/lombscargle/statistics.js';

const METHODS: PeriodogramMethod[] = ['exact', 'fast'];
const NORMALIZATIONS: Normalization[] = ['standard', 'model', 'log', 'psd'];
const f64 = (xs: number[]): Float64Array => Float64Array.from(xs);

function periodic(seed: number, nEpochs = 120, period = 2.7): LightCurve & { dy: Float64Array } {
  return simulateSurveyLightCurve(new SeededRandom(seed), { nEpochs, period, amplitude: 1, seasons: 2 });
}

describe('degenerate input', () => {
  const grid: FrequencyGrid = { fmin: 0.01, df: 0.01, n: 50 };

  for (const method of METHODS) {
    it(`${method}: fewer than 3 usable points is an InsufficientDataError naming the dropped rows`, () => {
      const lc = { t: f64([1, 2, 3, 4]), y: f64([1, NaN, 2, 3]), dy: f64([1, 1, NaN, 1]) };
      let err: unknown;
      try {
        lombScargle(lc, grid, { method, label: 'obj-17' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InsufficientDataError);
      const e = err as InsufficientDataError;
      expect(e.name).toBe('InsufficientDataError');
      expect(e.nUsable).toBe(2);
      expect(e.nDropped).toBe(2);
      expect(e.message).toMatch(/2 usable point\(s\) \(2 dropped.*obj-17/);
      expect(() => lombScargle({ t: f64([1, 2]), y: f64([1, 2]) }, grid, { method })).toThrow(InsufficientDataError);
    });

    it(`${method}: zero, negative or infinite dy is an InvalidUncertaintyError with the index`, () => {
      for (const bad of [0, -1, Infinity]) {
        const lc = { t: f64([1, 2, 3, 4, 5]), y: f64([1, 3, 2, 5, 4]), dy: f64([1, 1, 1, bad, 1]) };
        expect(() => lombScargle(lc, grid, { method })).toThrow(InvalidUncertaintyError);
        try {
          lombScargle(lc, grid, { method });
        } catch (e) {
          expect((e as InvalidUncertaintyError).index).toBe(3);
          expect((e as InvalidUncertaintyError).message).toContain(`dy[3] = ${bad}`);
        }
      }
    });

    it(`${method}: non-finite rows are dropped and counted, giving the clean periodogram`, () => {
      const clean = periodic(1, 60);
      const t = Array.from(clean.t);
      const y = Array.from(clean.y);
      const dy = Array.from(clean.dy);
      t.splice(10, 0, NaN);
      y.splice(10, 0, 1);
      dy.splice(10, 0, 1);
      t.splice(20, 0, 5);
      y.splice(20, 0, Infinity);
      dy.splice(20, 0, 1);
      t.splice(30, 0, 5);
      y.splice(30, 0, 2);
      dy.splice(30, 0, NaN);
      const dirty = { t: f64(t), y: f64(y), dy: f64(dy) };
      const g = autoFrequencyGrid(clean.t);
      const dropped: number[] = [];
      const p = lombScargle(dirty, g, { method, onDropped: (n) => dropped.push(n) });
      expect(dropped).toEqual([3]);
      expect(Array.from(p)).toEqual(Array.from(lombScargle(clean, g, { method })));
      expect(() => lombScargle(dirty, g, { method, nanPolicy: 'raise' })).toThrow(NonFiniteInputError);
      expect(() => lombScargle(dirty, g, { method, nanPolicy: 'raise' })).toThrow(/t\[10\] is not finite/);
    });

    it(`${method}: constant y gives power 0 (never NaN) in every normalization`, () => {
      const lc = { t: f64([0, 1.3, 2.1, 5, 7.7, 9]), y: f64([4, 4, 4, 4, 4, 4]) };
      for (const normalization of NORMALIZATIONS) {
        const p = lombScargle(lc, grid, { method, normalization });
        expect(Array.from(p).every((v) => v === 0)).toBe(true);
      }
      const [s] = lombScargleBatch([lc], grid, { method });
      expect(s?.bestPower).toBe(0);
      expect(s?.fap).toBe(1);
    });

    it(`${method}: f = 0, three points and equal times give finite output`, () => {
      const lc = periodic(2, 40);
      const p0 = lombScargle(lc, { fmin: 0, df: 0.05, n: 20 }, { method });
      expect(p0[0]).toBe(0);
      expect(p0.every(Number.isFinite)).toBe(true);
      const three = lombScargle({ t: f64([0, 1, 2.5]), y: f64([1, 2, 0]) }, grid, { method });
      expect(three.every((v) => Number.isFinite(v) && v >= 0 && v <= 1)).toBe(true);
      const sameT = lombScargle({ t: f64([3, 3, 3, 3]), y: f64([1, 2, 0, 1]) }, grid, { method });
      expect(Array.from(sameT).every((v) => v === 0)).toBe(true);
    });
  }

  it('rejects arrays of different lengths, bad grids and unknown options', () => {
    expect(() => lombScargle({ t: f64([1, 2, 3]), y: f64([1, 2]) }, grid)).toThrow(LightCurveShapeError);
    const lc = periodic(3, 30);
    expect(() => lombScargle(lc, { fmin: -1, df: 0.1, n: 10 })).toThrow(/grid.fmin/);
    expect(() => lombScargle(lc, { fmin: 0, df: 0, n: 10 })).toThrow(/grid.df/);
    expect(() => lombScargle(lc, { fmin: 0, df: 0.1, n: 0 })).toThrow(/grid.n/);
    expect(() => lombScargle(lc, grid, { method: 'nfft' as PeriodogramMethod })).toThrow(InvalidOptionError);
    expect(() => lombScargle(lc, grid, { normalization: 'max' as Normalization })).toThrow(/expected one of standard/);
    expect(() => lombScargle(lc, grid, { fastTolerance: 0.5 })).toThrow(/fastTolerance/);
  });

  it('autoFrequencyGrid rejects a zero baseline and bad factors', () => {
    expect(() => autoFrequencyGrid([5, 5, 5])).toThrow(ZeroBaselineError);
    expect(() => autoFrequencyGrid([])).toThrow(InvalidOptionError);
    expect(() => autoFrequencyGrid([0, 1], { samplesPerPeak: 0 })).toThrow(/samplesPerPeak/);
    expect(() => autoFrequencyGrid([0, 1], { minimumFrequency: 10, maximumFrequency: 1 })).toThrow(/grid.n/);
    // NaN times are ignored, like the rows a periodogram drops
    expect(autoFrequencyGrid([0, NaN, 10, 3])).toEqual(autoFrequencyGrid([0, 10, 3]));
  });
});

describe('options, abort and progress', () => {
  it('compileLombScargleOptions fills the documented defaults', () => {
    const o = compileLombScargleOptions();
    expect(o).toMatchObject({ method: 'exact', normalization: 'standard', fitMean: true, centerData: true, nanPolicy: 'drop', fastTolerance: 1e-7 });
  });

  for (const method of METHODS) {
    it(`${method}: an aborted signal throws PeriodogramAbortedError (retryable), before or during the run`, () => {
      const lc = periodic(4, 200);
      const grid: FrequencyGrid = { fmin: 0.001, df: 0.001, n: 5000 };
      const ac = new AbortController();
      ac.abort(new Error('shutdown'));
      let err: unknown;
      try {
        lombScargle(lc, grid, { method, signal: ac.signal });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PeriodogramAbortedError);
      expect((err as PeriodogramAbortedError).retryable).toBe(true);
      expect((err as PeriodogramAbortedError).cause).toBeInstanceOf(Error);

      const ac2 = new AbortController();
      const lcs = [lc, lc, lc];
      expect(() =>
        lombScargleBatch(lcs, grid, { method, signal: ac2.signal, onProgress: (done) => done === 1 && ac2.abort() }),
      ).toThrow(PeriodogramAbortedError);
    });
  }

  it('exact: abort between chunks of frequencies, progress rises to the total', () => {
    const lc = periodic(5, 100);
    const grid: FrequencyGrid = { fmin: 0.001, df: 0.001, n: 2000 };
    const seen: number[] = [];
    lombScargle(lc, grid, { onProgress: (done, total) => { expect(total).toBe(2000); seen.push(done); } });
    expect(seen.length).toBeGreaterThan(2);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe(2000);
    const ac = new AbortController();
    expect(() => lombScargle(lc, grid, { signal: ac.signal, onProgress: (done) => done >= 512 && ac.abort() })).toThrow(
      /aborted after 512 of 2000/,
    );
  });
});

describe('lombScargleBatch', () => {
  it('summarises each curve: best peak, Baluev FAP, distinct top-N peaks, counts', () => {
    const lcs = [periodic(10, 150, 3.3), periodic(11, 90, 17), simulateSurveyLightCurve(new SeededRandom(12), { nEpochs: 80 })];
    const withNaN = { t: f64([...lcs[0]!.t, NaN]), y: f64([...lcs[0]!.y, 1]), dy: f64([...lcs[0]!.dy!, 1]) };
    const progress: number[] = [];
    const out = lombScargleBatch([...lcs, withNaN], (lc) => autoFrequencyGrid(lc.t), { topN: 4, onProgress: (d) => progress.push(d) });
    expect(progress).toEqual([1, 2, 3, 4]);
    expect(out.map((s) => s.index)).toEqual([0, 1, 2, 3]);
    for (const s of out) {
      expect(s.bestPeriod).toBeCloseTo(1 / s.bestFrequency, 12);
      expect(s.peaks[0]?.frequency).toBe(s.bestFrequency);
      expect(s.peaks[0]?.power).toBe(s.bestPower);
      expect(s.peaks.length).toBeLessThanOrEqual(4);
      for (let i = 1; i < s.peaks.length; i++) {
        expect(s.peaks[i]!.power).toBeLessThanOrEqual(s.peaks[i - 1]!.power);
        expect(Math.abs(s.peaks[i]!.frequency - s.peaks[0]!.frequency)).toBeGreaterThan(0);
      }
      expect(s.fap).toBeGreaterThanOrEqual(0);
      expect(s.fap).toBeLessThanOrEqual(1);
    }
    // strong signals are significant, noise is not
    expect(Math.abs(out[0]!.bestPeriod - 3.3) / 3.3).toBeLessThan(0.01);
    expect(out[0]!.fap).toBeLessThan(1e-6);
    expect(out[2]!.fap).toBeGreaterThan(1e-3);
    expect(out[3]).toMatchObject({ nObs: 150, nDropped: 1, bestFrequency: out[0]!.bestFrequency });
    // the FAP is astropy's with fmax = top of the grid
    const g = autoFrequencyGrid(lcs[0]!.t);
    expect(out[0]!.fap).toBe(
      falseAlarmProbability(out[0]!.bestPower, g.fmin + g.df * (g.n - 1), lcs[0]!.t, lcs[0]!.y, lcs[0]!.dy),
    );
  });

  it('fails on a bad curve by default, or skips and reports it with skipInvalid', () => {
    const good = periodic(20, 50);
    const bad = { t: f64([1, 2]), y: f64([1, 2]) };
    const grid: FrequencyGrid = { fmin: 0.01, df: 0.01, n: 100 };
    expect(() => lombScargleBatch([good, bad], grid, { labels: ['a', 'b'] })).toThrow(/light curve b/);
    const skipped: [number, LombScargleError][] = [];
    const out = lombScargleBatch([good, bad, good], grid, { skipInvalid: true, onSkipped: (i, e) => skipped.push([i, e]) });
    expect(out.map((s) => s.index)).toEqual([0, 2]);
    expect(skipped.map(([i]) => i)).toEqual([1]);
    expect(skipped[0]?.[1]).toBeInstanceOf(InsufficientDataError);
  });
});

describe('findPeaks', () => {
  const grid: FrequencyGrid = { fmin: 1, df: 0.5, n: 12 };
  const p = f64([0.1, 0.5, 0.2, 0.3, 0.3, 0.1, 0.9, 0.8, 0.85, 0.2, 0.1, 0.4]);

  it('returns local maxima highest first, one per flat top, edges included', () => {
    const peaks = findPeaks(p, grid, 10);
    expect(peaks.map((x) => x.power)).toEqual([0.9, 0.85, 0.5, 0.4, 0.3]);
    expect(peaks[0]).toEqual({ frequency: 4, period: 0.25, power: 0.9 });
    expect(peaks[4]?.frequency).toBe(2.5);
  });

  it('drops maxima closer than minSeparation to a higher one', () => {
    // 0.85 (2 steps from 0.9) and the flat 0.3 (2 steps from 0.5) fall within 1.01 = 2.02 steps
    expect(findPeaks(p, grid, 10, 1.01).map((x) => x.power)).toEqual([0.9, 0.5, 0.4]);
    expect(findPeaks(p, grid, 10, 0.99).map((x) => x.power)).toEqual([0.9, 0.85, 0.5, 0.4, 0.3]);
    expect(findPeaks(p, grid, 2)).toHaveLength(2);
    expect(findPeaks(p, grid, 0)).toEqual([]);
  });
});

describe('falseAlarmProbability', () => {
  const lc = periodic(30, 100);

  it('decreases with power, lies in [0, 1] and handles edge powers without NaN', () => {
    for (const normalization of NORMALIZATIONS) {
      let last = 1;
      for (const z of [0, 0.01, 0.05, 0.1, 0.3, 0.6, 0.99]) {
        const power = normalization === 'standard' ? z : normalization === 'psd' ? 50 * z : 3 * z;
        const fap = falseAlarmProbability(power, 5, lc.t, lc.y, lc.dy, { normalization });
        expect(fap).toBeGreaterThanOrEqual(0);
        expect(fap).toBeLessThanOrEqual(last + 1e-15);
        last = fap;
      }
    }
    expect(falseAlarmProbability(1 + 1e-15, 5, lc.t, lc.y, lc.dy)).toBe(0);
    expect(falseAlarmProbability(-1e-17, 5, lc.t, lc.y, lc.dy)).toBe(1);
  });

  it('orders single <= baluev <= davies and naive is a probability', () => {
    const args = [0.2, 5, lc.t, lc.y, lc.dy] as const;
    const single = falseAlarmProbability(...args, { method: 'single' });
    const baluev = falseAlarmProbability(...args, { method: 'baluev' });
    const davies = falseAlarmProbability(...args, { method: 'davies' });
    const naive = falseAlarmProbability(...args, { method: 'naive' });
    expect(single).toBeLessThanOrEqual(baluev);
    expect(baluev).toBeLessThanOrEqual(davies);
    expect(naive).toBeGreaterThan(0);
    expect(naive).toBeLessThan(1);
  });

  it('rejects inconsistent input', () => {
    expect(() => falseAlarmProbability(0.1, 5, [1, 2, 3, 4], [1, 2, 3])).toThrow(/lengths differ/);
    expect(() => falseAlarmProbability(0.1, 5, [1, 2, 3], [1, 2, 3])).toThrow(/at least 4/);
    expect(() => falseAlarmProbability(0.1, 0, lc.t, lc.y)).toThrow(/fmax/);
  });

  it('logGamma matches known values', () => {
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13);
    expect(logGamma(5)).toBeCloseTo(Math.log(24), 13);
    expect(logGamma(1)).toBeCloseTo(0, 14);
    // Stirling with two correction terms at x = 1000
    const x = 1000;
    const stirling = (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * x) - 1 / (360 * x ** 3);
    expect(Math.abs(logGamma(x) - stirling) / stirling).toBeLessThan(1e-14);
  });
});

describe('multibandLombScargle bookkeeping', () => {
  it('accepts a record or an array, reports per-band counts and bounds the combined power', () => {
    const g = periodic(40, 60, 5.5);
    const r = periodic(41, 90, 5.5);
    const grid: FrequencyGrid = { fmin: 0.005, df: 0.002, n: 400 };
    const a = multibandLombScargle({ g, r }, grid);
    const b = multibandLombScargle([{ ...g, band: 'g' }, { ...r, band: 'r' }], grid);
    expect(a.combination).toBe(POOLED_CHI2_COMBINATION);
    expect(Array.from(a.combined)).toEqual(Array.from(b.combined));
    expect(a.bands.map((x) => [x.band, x.nObs])).toEqual([['g', 60], ['r', 90]]);
    for (const v of a.combined) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    // chi2-weighted mean of the per-band standard powers
    const [pg, pr] = a.bands;
    for (let k = 0; k < grid.n; k += 37) {
      const expected = (pg!.chi2Reference * pg!.power[k]! + pr!.chi2Reference * pr!.power[k]!) / (pg!.chi2Reference + pr!.chi2Reference);
      expect(a.combined[k]).toBeCloseTo(expected, 12);
    }
    expect(() => multibandLombScargle({}, grid)).toThrow(/at least one band/);
    expect(() => multibandLombScargle({ g, u: { t: f64([1]), y: f64([1]) } }, grid)).toThrow(/band u/);
  });
});
