/**
 * The periodogram kernel as run by the `periodogram` executor: one job is a
 * handful of objects, each with its light curve per band; for every band with
 * enough points it runs astro's lombScargleBatch, and with `multiband` the
 * pooled multiband periodogram of all the object's bands. Pure computation.
 *
 * Loaded as a worker_threads entry by thread-pool.ts (compiled .js only); the
 * executor also imports computePeriodogramJob directly for its in-process
 * fallback. The message loop starts only in a pool thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lombscargle } from '../../astro/index.js';
import { isPoolThread, type ThreadReply, type ThreadRequest } from './thread-pool.js';

/** How the frequency grid of a light curve is chosen. */
export type FreqSpec =
  | { type: 'grid'; fmin: number; df: number; n: number }
  /** astropy's autofrequency rule on the light curve's own times, with optional overrides */
  | { type: 'auto'; samplesPerPeak?: number; nyquistFactor?: number; minimumFrequency?: number; maximumFrequency?: number };

export interface PeriodogramSettings {
  freq: FreqSpec;
  method: lombscargle.PeriodogramMethod;
  normalization: lombscargle.Normalization;
  topN: number;
  multiband: boolean;
  /** bands with fewer usable points are left out */
  minObs: number;
  /** keep each row's full periodogram (float32) in BandResult.powers */
  savePowers?: boolean;
}

export interface BandLightCurve {
  band: string;
  t: Float64Array;
  y: Float64Array;
  dy: Float64Array;
}

export interface PeriodogramJob {
  settings: PeriodogramSettings;
  /** per object, its bands */
  objects: BandLightCurve[][];
}

/** The band name of the multiband (all bands pooled) row. */
export const MULTIBAND_ROW = 'multiband';

export interface BandResult {
  band: string;
  nObs: number;
  bestFrequency: number;
  bestPeriod: number;
  power: number;
  /** Baluev false alarm probability; null for the multiband row (no analytic FAP for it) */
  fap: number | null;
  peakPeriods: number[];
  peakPowers: number[];
  /** with settings.savePowers: the whole periodogram as float32, on the grid f_k = fmin + k df */
  powers?: Float32Array;
  grid?: { fmin: number; df: number; n: number };
}

export interface ObjectResult {
  rows: BandResult[];
  /** bands left out: too few points, or rejected by the kernel (zero baseline, bad uncertainties) */
  skipped: { band: string; reason: string }[];
}

/** The grid a light curve with times `t` gets under `freq`. */
export function gridFor(freq: FreqSpec, t: ArrayLike<number>): lombscargle.FrequencyGrid {
  if (freq.type === 'grid') return { fmin: freq.fmin, df: freq.df, n: freq.n };
  const o: lombscargle.AutoFrequencyOptions = {};
  if (freq.samplesPerPeak !== undefined) o.samplesPerPeak = freq.samplesPerPeak;
  if (freq.nyquistFactor !== undefined) o.nyquistFactor = freq.nyquistFactor;
  if (freq.minimumFrequency !== undefined) o.minimumFrequency = freq.minimumFrequency;
  if (freq.maximumFrequency !== undefined) o.maximumFrequency = freq.maximumFrequency;
  return lombscargle.autoFrequencyGrid(t, o);
}

function finiteCount(lc: BandLightCurve): number {
  let n = 0;
  for (let i = 0; i < lc.t.length; i++) if (Number.isFinite(lc.t[i]!) && Number.isFinite(lc.y[i]!) && Number.isFinite(lc.dy[i]!)) n++;
  return n;
}

/** Everything the executor computes for one object. */
export function computeObject(bands: readonly BandLightCurve[], s: PeriodogramSettings): ObjectResult {
  const rows: BandResult[] = [];
  const skipped: ObjectResult['skipped'] = [];
  const used: BandLightCurve[] = [];
  const opts: lombscargle.LombScargleBatchOptions = { method: s.method, normalization: s.normalization, topN: s.topN };
  for (const lc of bands) {
    const n = finiteCount(lc);
    if (n < s.minObs) {
      skipped.push({ band: lc.band, reason: `${n} usable points < min_obs ${s.minObs}` });
      continue;
    }
    let reason: string | undefined;
    let saved: { powers: Float32Array; grid: { fmin: number; df: number; n: number } } | undefined;
    const [sum] = lombscargle.lombScargleBatch([lc], (c) => gridFor(s.freq, c.t), {
      ...opts,
      ...(s.savePowers ? { onPower: (_i: number, power: Float64Array, g: lombscargle.FrequencyGrid) => (saved = { powers: Float32Array.from(power), grid: { fmin: g.fmin, df: g.df, n: g.n } }) } : {}),
      labels: [`band ${lc.band}`],
      skipInvalid: true,
      onSkipped: (_i, err) => {
        reason = err.message;
      },
    });
    if (!sum) {
      skipped.push({ band: lc.band, reason: reason ?? 'rejected by the periodogram' });
      continue;
    }
    used.push(lc);
    rows.push({
      band: lc.band,
      nObs: sum.nObs,
      bestFrequency: sum.bestFrequency,
      bestPeriod: sum.bestPeriod,
      power: sum.bestPower,
      fap: sum.fap,
      peakPeriods: sum.peaks.map((p) => p.period),
      peakPowers: sum.peaks.map((p) => p.power),
      ...(saved ?? {}),
    });
  }
  if (s.multiband && used.length > 0) {
    try {
      rows.push(multibandRow(used, s));
    } catch (err) {
      if (!(err instanceof lombscargle.LombScargleError)) throw err;
      skipped.push({ band: MULTIBAND_ROW, reason: err.message });
    }
  }
  return { rows, skipped };
}

/** Concatenated times of all bands (the multiband grid and peak width use the object's whole baseline). */
export function allTimes(bands: readonly BandLightCurve[]): Float64Array {
  const t = new Float64Array(bands.reduce((s, b) => s + b.t.length, 0));
  let o = 0;
  for (const b of bands) {
    t.set(b.t, o);
    o += b.t.length;
  }
  return t;
}

function multibandRow(bands: readonly BandLightCurve[], s: PeriodogramSettings): BandResult {
  const t = allTimes(bands);
  const grid = gridFor(s.freq, t);
  const mb = lombscargle.multibandLombScargle(bands, grid, { method: s.method, normalization: s.normalization });
  const power = mb.combined;
  let best = 0;
  for (let k = 1; k < power.length; k++) if (power[k]! > power[best]!) best = k;
  let tMin = Infinity;
  let tMax = -Infinity;
  for (const x of t) {
    if (!Number.isFinite(x)) continue;
    if (x < tMin) tMin = x;
    if (x > tMax) tMax = x;
  }
  const separation = tMax > tMin ? 1 / (tMax - tMin) : 0;
  const peaks = lombscargle.findPeaks(power, grid, s.topN, separation);
  const bestFrequency = grid.fmin + grid.df * best;
  return {
    band: MULTIBAND_ROW,
    nObs: mb.bands.reduce((a, b) => a + b.nObs, 0),
    bestFrequency,
    bestPeriod: 1 / bestFrequency,
    power: power[best]!,
    fap: null,
    peakPeriods: peaks.map((p) => p.period),
    peakPowers: peaks.map((p) => p.power),
    ...(s.savePowers ? { powers: Float32Array.from(power), grid: { fmin: grid.fmin, df: grid.df, n: grid.n } } : {}),
  };
}

/** Buffers of a job's results, moved (not copied) back from the thread: the saved periodograms. */
export function periodogramResultBuffers(results: readonly ObjectResult[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const r of results) for (const row of r.rows) if (row.powers) out.push(row.powers.buffer as ArrayBuffer);
  return out;
}

/** One pool job: every object in turn. */
export function computePeriodogramJob(job: PeriodogramJob): ObjectResult[] {
  return job.objects.map((bands) => computeObject(bands, job.settings));
}

/** Buffers of a job, moved (not copied) to the thread. */
export function periodogramJobBuffers(job: PeriodogramJob): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const o of job.objects) for (const b of o) out.push(b.t.buffer as ArrayBuffer, b.y.buffer as ArrayBuffer, b.dy.buffer as ArrayBuffer);
  return out;
}

if (parentPort && isPoolThread(workerData)) {
  const port = parentPort;
  port.on('message', (msg: ThreadRequest<PeriodogramJob>) => {
    let reply: ThreadReply<ObjectResult[]>;
    let transfer: ArrayBuffer[] = [];
    try {
      const result = computePeriodogramJob(msg.job);
      transfer = periodogramResultBuffers(result);
      reply = { id: msg.id, ok: true, result };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      reply = { id: msg.id, ok: false, error: { name: e.name, message: e.message } };
    }
    port.postMessage(reply, transfer);
  });
}
