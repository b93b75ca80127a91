/**
 * Lomb-Scargle batch benchmark: 1,000 survey-like light curves x 200 epochs x 10,000
 * frequencies, our exact and fast kernels against astropy's method="cython" and
 * method="fast" (Debian's /usr/bin/python3, astropy 5.2) in the same invocation,
 * plus scaling over 1, 2 and 4 worker_threads slots.
 *
 * Run (from the repository root):
 *   npx tsc -p tsconfig.json && node dist/bench/periodogram.js
 * or, when other rooms' files do not compile yet, compile just this benchmark:
 *   npx tsc --outDir /tmp/periodogram-build --rootDir . --module NodeNext --moduleResolution NodeNext \
 *     --target ES2022 --strict --noUncheckedIndexedAccess --skipLibCheck --types node bench/periodogram.ts
 *   echo '{"type":"module"}' > /tmp/periodogram-build/package.json
 *   node /tmp/periodogram-build/bench/periodogram.js
 * Options (environment): PERIODOGRAM_CURVES (default 1000), PERIODOGRAM_ASTROPY_EXACT_CURVES
 * (default 100: astropy cython is timed on that many and scaled), PERIODOGRAM_SKIP_POOL=1,
 * PERIODOGRAM_SKIP_ASTROPY=1.
 *
 * Output: one JSON object per line (`"bench":"periodogram"`), then a human summary.
 * Timings are single-threaded (main thread) unless the row says "slots".
 * Accuracy: max |P_fast - P_exact| over every frequency of every curve (standard
 * normalization), ours on all curves, astropy's fast vs its cython on the curves
 * cython was run on; our exact vs astropy cython as max relative error.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
  lombScargle,
  lombScargleBatch,
  SeededRandom,
  simulateSurveyLightCurve,
  type BatchSummary,
  type FrequencyGrid,
  type LightCurve,
  type PeriodogramMethod,
} from '../astro/lombscargle/index.js';

const N_CURVES = Number(process.env.PERIODOGRAM_CURVES ?? 1000);
const N_EPOCHS = 200;
const GRID: FrequencyGrid = { fmin: 1e-4, df: 2e-4, n: 10_000 };
const ASTROPY_EXACT_CURVES = Math.min(N_CURVES, Number(process.env.PERIODOGRAM_ASTROPY_EXACT_CURVES ?? 100));
const PYTHON = '/usr/bin/python3';
const TARGET_EXACT_S = 17;
const TARGET_FAST_S = 8.5;
const TARGET_FAST_ERR = 1e-3;

interface WorkerRequest {
  method: PeriodogramMethod;
  t: Float64Array;
  y: Float64Array;
  dy: Float64Array;
  first: number;
  count: number;
}

/** Light curves i in [first, first+count) of the flat arrays. */
function sliceCurves(t: Float64Array, y: Float64Array, dy: Float64Array, first: number, count: number): LightCurve[] {
  const out: LightCurve[] = [];
  for (let i = first; i < first + count; i++) {
    const a = i * N_EPOCHS;
    const b = a + N_EPOCHS;
    out.push({ t: t.subarray(a, b), y: y.subarray(a, b), dy: dy.subarray(a, b) });
  }
  return out;
}

function emit(row: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench: 'periodogram', ...row }));
}

function simulate(): { t: Float64Array; y: Float64Array; dy: Float64Array; periods: Float64Array } {
  const rng = new SeededRandom(20250101);
  const t = new Float64Array(N_CURVES * N_EPOCHS);
  const y = new Float64Array(N_CURVES * N_EPOCHS);
  const dy = new Float64Array(N_CURVES * N_EPOCHS);
  const periods = new Float64Array(N_CURVES);
  for (let i = 0; i < N_CURVES; i++) {
    const period = Math.exp(rng.uniform(Math.log(0.6), Math.log(300)));
    periods[i] = period;
    // half the curves periodic (S/N 5..30), half noise; MJD-like times
    const snr = i % 2 === 0 ? rng.uniform(5, 30) : 0;
    const lc = simulateSurveyLightCurve(rng, {
      nEpochs: N_EPOCHS,
      seasons: 3,
      t0: 60000,
      period,
      amplitude: snr / Math.sqrt(N_EPOCHS / 2),
      mean: 21,
      sigma: 0.05,
      harmonic: i % 4 === 0 ? 0.3 : 0,
    });
    t.set(lc.t, i * N_EPOCHS);
    y.set(lc.y, i * N_EPOCHS);
    dy.set(lc.dy, i * N_EPOCHS);
  }
  return { t, y, dy, periods };
}

const PYTHON_SCRIPT = `
import json, sys, time
import numpy as np
from astropy.timeseries import LombScargle
d = sys.argv[1]
cfg = json.load(open(d + '/cfg.json'))
n, m, ne = cfg['curves'], cfg['exactCurves'], cfg['epochs']
t = np.fromfile(d + '/t.f64', dtype='<f8').reshape(n, ne)
y = np.fromfile(d + '/y.f64', dtype='<f8').reshape(n, ne)
dy = np.fromfile(d + '/dy.f64', dtype='<f8').reshape(n, ne)
freq = cfg['fmin'] + cfg['df'] * np.arange(cfg['nf'])
t0 = time.perf_counter(); c0 = time.process_time()
fast = [LombScargle(t[i], y[i], dy[i]).power(freq, method='fast', assume_regular_frequency=True) for i in range(n)]
t_fast = time.perf_counter() - t0; c_fast = time.process_time() - c0
t0 = time.perf_counter(); c0 = time.process_time()
exact = [LombScargle(t[i], y[i], dy[i]).power(freq, method='cython') for i in range(m)]
t_exact = time.perf_counter() - t0; c_exact = time.process_time() - c0
np.concatenate(exact).astype('<f8').tofile(d + '/cython.f64')
err = max(float(np.max(np.abs(fast[i] - exact[i]))) for i in range(m))
same = sum(int(np.argmax(fast[i]) == np.argmax(exact[i])) for i in range(m))
json.dump({'fastSeconds': t_fast, 'exactSeconds': t_exact, 'fastCpuSeconds': c_fast, 'exactCpuSeconds': c_exact, 'fastMaxErr': err, 'fastSameBest': same,
           'fastBest': [int(np.argmax(p)) for p in fast]}, open(d + '/astropy.json', 'w'))
`;

interface AstropyResult {
  fastSeconds: number;
  exactSeconds: number;
  fastCpuSeconds: number;
  exactCpuSeconds: number;
  fastMaxErr: number;
  fastSameBest: number;
  fastBest: number[];
}

function runAstropy(dir: string, t: Float64Array, y: Float64Array, dy: Float64Array): AstropyResult | undefined {
  if (process.env.PERIODOGRAM_SKIP_ASTROPY === '1' || !existsSync(PYTHON)) return undefined;
  const write = (name: string, a: Float64Array): void => writeFileSync(join(dir, name), Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  write('t.f64', t);
  write('y.f64', y);
  write('dy.f64', dy);
  writeFileSync(
    join(dir, 'cfg.json'),
    JSON.stringify({ curves: N_CURVES, exactCurves: ASTROPY_EXACT_CURVES, epochs: N_EPOCHS, fmin: GRID.fmin, df: GRID.df, nf: GRID.n }),
  );
  writeFileSync(join(dir, 'ref.py'), PYTHON_SCRIPT);
  const r = spawnSync(PYTHON, [join(dir, 'ref.py'), dir], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) {
    console.error(`astropy reference failed (status ${r.status}): ${r.stderr}`);
    return undefined;
  }
  return JSON.parse(readFileSync(join(dir, 'astropy.json'), 'utf8')) as AstropyResult;
}

function readF64(path: string): Float64Array {
  const buf = readFileSync(path);
  const out = new Float64Array(buf.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(i * 8);
  return out;
}

function argmax(p: Float64Array): number {
  let best = 0;
  for (let k = 1; k < p.length; k++) if ((p[k] as number) > (p[best] as number)) best = k;
  return best;
}

/** A small worker_threads pool: curves are handed out in chunks as slots free up. */
async function runPool(
  slots: number,
  method: PeriodogramMethod,
  t: Float64Array,
  y: Float64Array,
  dy: Float64Array,
): Promise<{ seconds: number; cpuSeconds: number; startupSeconds: number; best: Float64Array }> {
  const c0 = process.cpuUsage();
  const start = performance.now();
  const workers = Array.from({ length: slots }, () => new Worker(new URL(import.meta.url)));
  await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
    w.once('online', () => resolve());
    w.once('error', reject);
  })));
  const startupSeconds = (performance.now() - start) / 1000;
  const best = new Float64Array(N_CURVES);
  const chunk = 25;
  let next = 0;
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          const send = (): void => {
            if (next >= N_CURVES) {
              w.postMessage(null);
              resolve();
              return;
            }
            const first = next;
            const count = Math.min(chunk, N_CURVES - first);
            next += count;
            // each slot gets only its chunk's rows
            const a = first * N_EPOCHS;
            const b = (first + count) * N_EPOCHS;
            const req: WorkerRequest = { method, t: t.slice(a, b), y: y.slice(a, b), dy: dy.slice(a, b), first: 0, count };
            w.once('message', (msg: { bestFrequencies: number[] }) => {
              msg.bestFrequencies.forEach((f, i) => (best[first + i] = f));
              send();
            });
            w.postMessage(req);
          };
          w.once('error', reject);
          send();
        }),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  // process CPU time covers every thread of the process, workers included
  const c = process.cpuUsage(c0);
  await Promise.all(workers.map((w) => w.terminate()));
  return { seconds, cpuSeconds: (c.user + c.system) / 1e6, startupSeconds, best };
}

async function main(): Promise<void> {
  const machine = `${cpus().length}x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
  emit({ what: 'setup', curves: N_CURVES, epochs: N_EPOCHS, frequencies: GRID.n, grid: GRID, machine });
  const { t, y, dy } = simulate();
  const lcs = sliceCurves(t, y, dy, 0, N_CURVES);
  const dir = mkdtempSync(join(tmpdir(), 'periodogram-bench-'));
  try {
    // warm up both kernels (JIT) on a few curves
    lombScargleBatch(lcs.slice(0, 5), GRID, { method: 'exact' });
    lombScargleBatch(lcs.slice(0, 5), GRID, { method: 'fast' });

    const timeBatch = (method: PeriodogramMethod): { seconds: number; cpuSeconds: number; summaries: BatchSummary[] } => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const summaries = lombScargleBatch(lcs, GRID, { method, topN: 3 });
      const seconds = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      return { seconds, cpuSeconds: (c.user + c.system) / 1e6, summaries };
    };
    const exact = timeBatch('exact');
    emit({ what: 'ours-exact', seconds: exact.seconds, cpuSeconds: exact.cpuSeconds, perCurveMs: (1000 * exact.seconds) / N_CURVES, target: TARGET_EXACT_S, loadavg: loadavg()[0] });
    const fast = timeBatch('fast');
    emit({ what: 'ours-fast', seconds: fast.seconds, cpuSeconds: fast.cpuSeconds, perCurveMs: (1000 * fast.seconds) / N_CURVES, target: TARGET_FAST_S, loadavg: loadavg()[0] });

    // accuracy of fast vs exact over every frequency of every curve (untimed pass)
    let fastMaxErr = 0;
    let sameBest = 0;
    for (const lc of lcs) {
      const pe = lombScargle(lc, GRID, { method: 'exact' });
      const pf = lombScargle(lc, GRID, { method: 'fast' });
      for (let k = 0; k < GRID.n; k++) fastMaxErr = Math.max(fastMaxErr, Math.abs((pf[k] as number) - (pe[k] as number)));
      if (argmax(pe) === argmax(pf)) sameBest++;
    }
    emit({ what: 'ours-fast-accuracy', maxAbsPowerError: fastMaxErr, sameBestPeriod: sameBest, curves: N_CURVES, target: TARGET_FAST_ERR });

    const astropy = runAstropy(dir, t, y, dy);
    let exactVsCython = NaN;
    if (astropy !== undefined) {
      const cython = readF64(join(dir, 'cython.f64'));
      for (let i = 0; i < ASTROPY_EXACT_CURVES; i++) {
        const pe = lombScargle(lcs[i] as LightCurve, GRID, { method: 'exact' });
        for (let k = 0; k < GRID.n; k++) {
          const r = cython[i * GRID.n + k] as number;
          const e = Math.abs((pe[k] as number) - r) / Math.max(Math.abs(r), 1e-6);
          if (!(e <= exactVsCython)) exactVsCython = Number.isNaN(exactVsCython) ? e : Math.max(exactVsCython, e);
        }
      }
      const cythonScaled = (astropy.exactSeconds * N_CURVES) / ASTROPY_EXACT_CURVES;
      const cythonCpuScaled = (astropy.exactCpuSeconds * N_CURVES) / ASTROPY_EXACT_CURVES;
      emit({ what: 'astropy-cython', seconds: cythonScaled, cpuSeconds: cythonCpuScaled, measuredSeconds: astropy.exactSeconds, measuredCurves: ASTROPY_EXACT_CURVES, scaledTo: N_CURVES });
      emit({ what: 'astropy-fast', seconds: astropy.fastSeconds, cpuSeconds: astropy.fastCpuSeconds, maxAbsPowerErrorVsCython: astropy.fastMaxErr, sameBestPeriod: astropy.fastSameBest, checkedCurves: ASTROPY_EXACT_CURVES });
      emit({ what: 'ours-exact-vs-astropy-cython', maxRelativeError: exactVsCython, floor: 1e-6, curves: ASTROPY_EXACT_CURVES });
      emit({
        what: 'ratios',
        exactSpeedupVsCython: cythonScaled / exact.seconds,
        fastSpeedupVsAstropyFast: astropy.fastSeconds / fast.seconds,
        fastSpeedupVsCython: cythonScaled / fast.seconds,
        cpu: {
          exactSpeedupVsCython: cythonCpuScaled / exact.cpuSeconds,
          fastSpeedupVsAstropyFast: astropy.fastCpuSeconds / fast.cpuSeconds,
        },
      });
    }

    const pool: Record<string, number> = {};
    if (process.env.PERIODOGRAM_SKIP_POOL !== '1') {
      for (const method of ['exact', 'fast'] as PeriodogramMethod[]) {
        const ref = method === 'exact' ? exact.summaries : fast.summaries;
        for (const slots of [1, 2, 4]) {
          const r = await runPool(slots, method, t, y, dy);
          const agree = ref.every((s, i) => s.bestFrequency === r.best[i]);
          pool[`${method}-${slots}`] = r.seconds;
          emit({ what: `pool-${method}`, slots, seconds: r.seconds, cpuSeconds: r.cpuSeconds, loadavg: loadavg()[0], workerStartupSeconds: r.startupSeconds, sameAsSingleThread: agree });
        }
      }
    }

    // human summary
    const lines = [
      '',
      `Lomb-Scargle batch: ${N_CURVES} curves x ${N_EPOCHS} epochs x ${GRID.n} frequencies (${machine})`,
      `  (wall seconds; process CPU seconds in brackets; load average ${loadavg()[0]?.toFixed(1)})`,
      `  ours exact   ${exact.seconds.toFixed(2)} s [cpu ${exact.cpuSeconds.toFixed(2)}]   target <= ${TARGET_EXACT_S} s   ${exact.seconds <= TARGET_EXACT_S ? 'MET' : 'NOT MET'}`,
      `  ours fast    ${fast.seconds.toFixed(2)} s [cpu ${fast.cpuSeconds.toFixed(2)}]   target <= ${TARGET_FAST_S} s   ${fast.seconds <= TARGET_FAST_S ? 'MET' : 'NOT MET'}`,
      `  fast accuracy: max |dP| ${fastMaxErr.toExponential(2)} (target <= ${TARGET_FAST_ERR}), same best period ${sameBest}/${N_CURVES}`,
    ];
    if (astropy !== undefined) {
      const cythonScaled = (astropy.exactSeconds * N_CURVES) / ASTROPY_EXACT_CURVES;
      lines.push(
        `  astropy cython ${cythonScaled.toFixed(1)} s [cpu ${((astropy.exactCpuSeconds * N_CURVES) / ASTROPY_EXACT_CURVES).toFixed(1)}] (measured ${astropy.exactSeconds.toFixed(2)} s on ${ASTROPY_EXACT_CURVES} curves, scaled)  -> ours exact is ${(cythonScaled / exact.seconds).toFixed(1)}x faster`,
        `  astropy fast   ${astropy.fastSeconds.toFixed(2)} s [cpu ${astropy.fastCpuSeconds.toFixed(2)}]  max |dP| vs cython ${astropy.fastMaxErr.toExponential(2)} (same best ${astropy.fastSameBest}/${ASTROPY_EXACT_CURVES})  -> ours fast is ${(astropy.fastSeconds / fast.seconds).toFixed(1)}x faster`,
        `  ours exact vs astropy cython: max relative error ${exactVsCython.toExponential(2)} (floor 1e-6)`,
      );
    }
    for (const [k, v] of Object.entries(pool)) lines.push(`  pool ${k} slots: ${v.toFixed(2)} s`);
    console.log(lines.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!isMainThread) {
  // pool slot: runs batches of light curves on request
  parentPort?.on('message', (msg: unknown) => {
    const req = msg as WorkerRequest | null;
    if (req === null) {
      parentPort?.close();
      return;
    }
    const lcs = sliceCurves(req.t, req.y, req.dy, req.first, req.count);
    const summaries = lombScargleBatch(lcs, GRID, { method: req.method, topN: 3 });
    parentPort?.postMessage({ first: req.first, bestFrequencies: summaries.map((s) => s.bestFrequency) });
  });
} else {
  await main();
}
