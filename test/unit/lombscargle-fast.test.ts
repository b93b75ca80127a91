/**
 * The fast (NUFFT) periodogram against the exact one — one conformance suite
 * run against both implementations — plus the FFT and NUFFT building blocks
 * against direct sums.
 */
import { describe, expect, it } from 'vitest';
import {
  autoFrequencyGrid,
  fftInPlace,
  lombScargle,
  lombScargleBatch,
  SeededRandom,
  simulateSurveyLightCurve,
  type FrequencyGrid,
  type LightCurve,
  type PeriodogramMethod,
} from '../../astro/lombscargle/index.js';
import { nufft1, planNufft1 } from '../../astro/lombscargle/nufft.js';

describe('fftInPlace', () => {
  it('matches a direct DFT for sizes 1..2048, both signs', () => {
    const rng = new SeededRandom(1);
    for (const n of [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 2048]) {
      const re = new Float64Array(n).map(() => rng.normal());
      const im = new Float64Array(n).map(() => rng.normal());
      for (const sign of [-1, 1] as const) {
        const r = re.slice();
        const i = im.slice();
        fftInPlace(r, i, sign);
        let maxErr = 0;
        let scale = 0;
        for (let k = 0; k < n; k++) {
          let sr = 0;
          let si = 0;
          for (let j = 0; j < n; j++) {
            const a = (sign * 2 * Math.PI * ((j * k) % n)) / n;
            sr += (re[j] as number) * Math.cos(a) - (im[j] as number) * Math.sin(a);
            si += (re[j] as number) * Math.sin(a) + (im[j] as number) * Math.cos(a);
          }
          maxErr = Math.max(maxErr, Math.abs(sr - (r[k] as number)), Math.abs(si - (i[k] as number)));
          scale = Math.max(scale, Math.hypot(sr, si));
        }
        expect(maxErr / Math.max(scale, 1), `n=${n} sign=${sign}`).toBeLessThan(1e-12);
      }
    }
  });

  it('rejects sizes that are not powers of two', () => {
    expect(() => fftInPlace(new Float64Array(12), new Float64Array(12))).toThrow(/power of two/);
  });
});

describe('nufft1', () => {
  it('reaches the requested tolerance against direct sums', () => {
    const rng = new SeededRandom(2);
    for (const [modes, tol] of [[100, 1e-3], [1000, 1e-6], [777, 1e-9], [4096, 1e-7]] as const) {
      const plan = planNufft1(modes, tol);
      const nPts = 300;
      const u = new Float64Array(nPts).map(() => rng.uniform(-3, 5));
      const cRe = new Float64Array(nPts).map(() => rng.normal());
      const cIm = new Float64Array(nPts).map(() => rng.normal());
      const outRe = new Float64Array(modes);
      const outIm = new Float64Array(modes);
      nufft1(plan, u, cRe, cIm, outRe, outIm);
      let sumAbs = 0;
      for (let j = 0; j < nPts; j++) sumAbs += Math.hypot(cRe[j] as number, cIm[j] as number);
      let maxErr = 0;
      const kLo = Math.floor(modes / 2);
      for (let m = 0; m < modes; m += 7) {
        const k = m - kLo;
        let sr = 0;
        let si = 0;
        for (let j = 0; j < nPts; j++) {
          const a = 2 * Math.PI * k * (u[j] as number);
          const c = Math.cos(a);
          const s = Math.sin(a);
          sr += (cRe[j] as number) * c - (cIm[j] as number) * s;
          si += (cRe[j] as number) * s + (cIm[j] as number) * c;
        }
        maxErr = Math.max(maxErr, Math.hypot(sr - (outRe[m] as number), si - (outIm[m] as number)));
      }
      expect(maxErr / sumAbs, `modes=${modes} tol=${tol} width=${plan.width}`).toBeLessThan(tol);
    }
  });
});

/** Survey-like periodic light curves with amplitude S/N > 5 (S/N = A sqrt(N/2) / median dy). */
function periodicSample(count: number, seed: number): { lc: LightCurve; period: number; snr: number }[] {
  const rng = new SeededRandom(seed);
  const out: { lc: LightCurve; period: number; snr: number }[] = [];
  for (let i = 0; i < count; i++) {
    const nEpochs = 40 + Math.floor(rng.next() * 260);
    const period = Math.exp(rng.uniform(Math.log(0.3), Math.log(200)));
    const snr = rng.uniform(5.5, 40);
    const amplitude = snr / Math.sqrt(nEpochs / 2);
    const lc = simulateSurveyLightCurve(rng, {
      nEpochs,
      seasons: 1 + Math.floor(rng.next() * 4),
      t0: i % 2 === 0 ? 60000 : 0,
      period,
      amplitude,
      sigma: 1,
      mean: 20,
      harmonic: i % 3 === 0 ? 0.4 : 0,
    });
    out.push({ lc, period, snr });
  }
  return out;
}

describe('fast method conforms to the exact method', () => {
  const sample = periodicSample(300, 42);

  it('finds the same best period for >= 99% of 300 survey light curves and power error <= 1e-3', () => {
    let same = 0;
    let maxErr = 0;
    let worstAt = '';
    for (const [i, { lc }] of sample.entries()) {
      const grid = autoFrequencyGrid(lc.t);
      const exact = lombScargle(lc, grid, { method: 'exact' });
      const fast = lombScargle(lc, grid, { method: 'fast' });
      let bestE = 0;
      let bestF = 0;
      for (let k = 0; k < grid.n; k++) {
        if ((exact[k] as number) > (exact[bestE] as number)) bestE = k;
        if ((fast[k] as number) > (fast[bestF] as number)) bestF = k;
        const e = Math.abs((fast[k] as number) - (exact[k] as number));
        if (e > maxErr) {
          maxErr = e;
          worstAt = `curve ${i} N=${lc.t.length} k=${k}`;
        }
      }
      if (bestE === bestF) same++;
    }
    console.log(`[lombscargle] fast vs exact: same best period ${same}/${sample.length}, max |dP| = ${maxErr.toExponential(2)} (${worstAt})`);
    expect(same / sample.length).toBeGreaterThanOrEqual(0.99);
    expect(maxErr).toBeLessThanOrEqual(1e-3);
  });

  it('recovers the injected period (or an alias) for most curves', () => {
    // a sanity check of the simulation, not of the kernels: the 1-day alias is legitimate
    const summaries = lombScargleBatch(
      sample.map((s) => s.lc),
      (lc) => autoFrequencyGrid(lc.t),
      { method: 'fast', topN: 3 },
    );
    let found = 0;
    summaries.forEach((s, i) => {
      const { period, lc } = sample[i] as { period: number; lc: LightCurve };
      const base = (lc.t[lc.t.length - 1] as number) - (lc.t[0] as number);
      const f = 1 / period;
      const tolF = 2 / base;
      const hit = [f, Math.abs(1 - f), 1 + f, Math.abs(2 - f)].some((a) => Math.abs(s.bestFrequency - a) < tolF);
      if (hit) found++;
    });
    expect(found / summaries.length).toBeGreaterThan(0.9);
  });

  for (const method of ['exact', 'fast'] as PeriodogramMethod[]) {
    it(`${method}: power is invariant to a time shift and to scaling y`, () => {
      const { lc } = sample[5] as { lc: LightCurve };
      const grid: FrequencyGrid = { fmin: 0.002, df: 0.0011, n: 3000 };
      const p0 = lombScargle(lc, grid, { method });
      const shifted = { t: lc.t.map((x) => x + 12345.678), y: lc.y.map((v) => 3 * v - 7), dy: (lc.dy as Float64Array).map((d) => 3 * d) };
      const p1 = lombScargle(shifted, grid, { method });
      let maxErr = 0;
      for (let k = 0; k < grid.n; k++) maxErr = Math.max(maxErr, Math.abs((p0[k] as number) - (p1[k] as number)));
      expect(maxErr).toBeLessThan(method === 'exact' ? 1e-9 : 1e-5);
    });

    it(`${method}: supports every normalization, fitMean false and a pure-noise curve`, () => {
      const rng = new SeededRandom(3);
      const lc = simulateSurveyLightCurve(rng, { nEpochs: 150 });
      const grid = autoFrequencyGrid(lc.t);
      const std = lombScargle(lc, grid, { method });
      for (const v of std) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      const model = lombScargle(lc, grid, { method, normalization: 'model' });
      const log = lombScargle(lc, grid, { method, normalization: 'log' });
      for (let k = 0; k < grid.n; k += 97) {
        const p = std[k] as number;
        expect(model[k]).toBeCloseTo(p / (1 - p), 10);
        expect(log[k]).toBeCloseTo(-Math.log(1 - p), 10);
      }
      const noMean = lombScargle(lc, grid, { method, fitMean: false });
      expect(noMean.every(Number.isFinite)).toBe(true);
    });
  }

  it('fast agrees with exact on grids with a large fmin and odd sizes', () => {
    const rng = new SeededRandom(11);
    for (const grid of [
      { fmin: 3.7, df: 0.0005, n: 4001 },
      { fmin: 0, df: 0.01, n: 7 },
      { fmin: 0.05, df: 0.002, n: 1 },
    ] as FrequencyGrid[]) {
      const lc = simulateSurveyLightCurve(rng, { nEpochs: 120, period: 0.27, amplitude: 1 });
      const exact = lombScargle(lc, grid, { method: 'exact' });
      const fast = lombScargle(lc, grid, { method: 'fast' });
      for (let k = 0; k < grid.n; k++) expect(Math.abs((fast[k] as number) - (exact[k] as number))).toBeLessThan(1e-5);
    }
  });
});
