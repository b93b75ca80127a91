/**
 * HEALPix kernel benchmark: ang2pixMany (1e6 points, order 10) and queryDisc
 * against healpy in the same run, plus a bit-identity check of the batch.
 *
 * Run (from the repo root):
 *   npx tsc -p tsconfig.json && node dist/bench/healpix.js
 * or, if other rooms do not compile yet:
 *   npx tsc --outDir /tmp/healpix-build --rootDir . --module NodeNext --moduleResolution NodeNext \
 *     --target ES2022 --strict --noUncheckedIndexedAccess --skipLibCheck --types node bench/healpix.ts
 *   node /tmp/healpix-build/bench/healpix.js [--points 1000000] [--order 10] [--repeats 7]
 *
 * Needs Debian's /usr/bin/python3 with healpy for the side-by-side numbers
 * (skipped with a message otherwise). Output: one JSON object per line, then a summary.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ang2pix, ang2pixMany, pix2ang, queryDiscRanges, rangesPixelCount } from '../astro/healpix/index.js';

const PYTHON = '/usr/bin/python3';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const points = arg('points', 1_000_000);
const order = arg('order', 10);
const repeats = arg('repeats', 7);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/**
 * Per-call seconds of fn (best and median of `repeats` samples). Each sample runs fn
 * enough times to last >= 50 ms, after warm-up runs, so short calls are timed with
 * optimised code and without timer granularity.
 */
function time(fn: () => void): { best: number; median: number } {
  let inner = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < inner; k++) fn();
    if (Number(process.hrtime.bigint() - t0) / 1e9 >= 0.05) break;
    inner *= 2;
  }
  const t: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < inner; k++) fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e9 / inner);
  }
  return { best: Math.min(...t), median: median(t) };
}

function emit(obj: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench: 'healpix', ...obj }));
}

const r = rng(12345);
const ra = new Float64Array(points);
const dec = new Float64Array(points);
for (let i = 0; i < points; i++) {
  ra[i] = r() * 360;
  dec[i] = (Math.asin(2 * r() - 1) * 180) / Math.PI;
}

const cones: [number, number, number, number][] = [
  // order, ra, dec, radius deg
  [10, 120, 30, 0.05],
  [10, 200, -45, 1],
  [12, 10, 60, 2],
  [8, 300, 5, 10],
];

// ---- ours
let out: Float64Array = new Float64Array(points);
const tMany = time(() => {
  out = ang2pixMany(order, ra, dec, { out });
});
const tScalar = time(() => {
  for (let i = 0; i < points; i++) out[i] = ang2pix(order, ra[i] as number, dec[i] as number);
});
const npixOrder = 12 * 4 ** order;
const tPix2ang = time(() => {
  let s = 0;
  for (let i = 0; i < points; i++) s += pix2ang(order, i % npixOrder).ra;
  if (s < 0) throw new Error('unreachable');
});
const coneTimes = cones.map(([o, a, d, rad]) => {
  let n = 0;
  const t = time(() => {
    n = rangesPixelCount(queryDiscRanges(o, a, d, rad));
  });
  const ti = time(() => {
    queryDiscRanges(o, a, d, rad, { inclusive: true });
  });
  return { order: o, ra: a, dec: d, radius: rad, pixels: n, exclusive: t, inclusive: ti };
});
out = ang2pixMany(order, ra, dec, { out });

// ---- healpy, same machine, same data
const PY = String.raw`
import sys, os, timeit, importlib.util, types
import numpy as np
spec = importlib.util.find_spec('healpy')
pkg = types.ModuleType('healpy'); pkg.__path__ = list(spec.submodule_search_locations); sys.modules['healpy'] = pkg
import healpy.pixelfunc as hp
from healpy._query_disc import query_disc
import json
d, order, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ra = np.fromfile(os.path.join(d, 'ra.f64')); dec = np.fromfile(os.path.join(d, 'dec.f64'))
ns = 2 ** order

def per_call(fn):
    """best and median per-call seconds; each sample lasts >= 50 ms (like the JS side)."""
    number, _ = timeit.Timer(fn).autorange()
    number = max(1, number // 4) if number > 4 else number
    while True:
        if timeit.timeit(fn, number=number) >= 0.05:
            break
        number *= 2
    t = sorted(x / number for x in timeit.repeat(fn, number=number, repeat=repeats))
    return [t[0], t[len(t) // 2]]

f = lambda: hp.ang2pix(ns, ra, dec, nest=True, lonlat=True)
f().astype(np.float64).tofile(os.path.join(d, 'pix.f64'))
t = per_call(f)
pix = np.arange(len(ra)) % (12 * ns * ns)
tp = per_call(lambda: hp.pix2ang(ns, pix, nest=True, lonlat=True))
cones = json.loads(sys.argv[4])
ct = []
for o, a, dd, r in cones:
    v = hp.ang2vec(a, dd, lonlat=True)
    te = per_call(lambda: query_disc(2 ** o, v, np.radians(r), nest=True))
    ti = per_call(lambda: query_disc(2 ** o, v, np.radians(r), inclusive=True, nest=True))
    ct.append(te + ti)
print(json.dumps({'ang2pix': t, 'pix2ang': tp, 'cones': ct}))
`;

const dir = mkdtempSync(join(tmpdir(), 'healpix-bench-'));
let py: { ang2pix: [number, number]; pix2ang: [number, number]; cones: [number, number, number, number][] } | undefined;
try {
  writeFileSync(join(dir, 'ra.f64'), new Uint8Array(ra.buffer));
  writeFileSync(join(dir, 'dec.f64'), new Uint8Array(dec.buffer));
  const res = spawnSync(PYTHON, ['-c', PY, dir, String(order), String(repeats), JSON.stringify(cones)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (res.status === 0) {
    py = JSON.parse(res.stdout) as typeof py;
    const ref = new Float64Array(readFileSync(join(dir, 'pix.f64')).buffer.slice(0));
    let diff = 0;
    for (let i = 0; i < points; i++) if (ref[i] !== out[i]) diff++;
    emit({ check: 'ang2pixMany-vs-healpy', order, points, mismatches: diff });
  } else {
    console.warn(`healpy side skipped: ${res.error?.message ?? res.stderr.trim().split('\n').pop() ?? ''}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const mps = (s: number): number => points / s / 1e6;
emit({ what: 'machine', node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model, loadavg_1m_end: loadavg()[0] });
emit({ what: 'ang2pixMany', order, points, best_s: tMany.best, median_s: tMany.median, mpts_per_s: mps(tMany.median),
  healpy_best_s: py?.ang2pix[0], healpy_median_s: py?.ang2pix[1],
  ratio_healpy_over_ours: py ? py.ang2pix[1] / tMany.median : undefined });
emit({ what: 'ang2pix-scalar-loop', order, points, best_s: tScalar.best, median_s: tScalar.median, mpts_per_s: mps(tScalar.median) });
emit({ what: 'pix2ang-scalar-loop', order, points, best_s: tPix2ang.best, median_s: tPix2ang.median,
  healpy_median_s: py?.pix2ang[1], ratio_healpy_over_ours: py ? py.pix2ang[1] / tPix2ang.median : undefined });
coneTimes.forEach((c, k) => {
  const p = py?.cones[k];
  emit({ what: 'queryDisc', order: c.order, radius_deg: c.radius, pixels: c.pixels,
    exclusive_median_s: c.exclusive.median, inclusive_median_s: c.inclusive.median,
    healpy_exclusive_median_s: p?.[1], healpy_inclusive_median_s: p?.[3],
    ratio_exclusive: p ? p[1] / c.exclusive.median : undefined, ratio_inclusive: p ? p[3] / c.inclusive.median : undefined });
});

console.log('\n--- summary (median of %d samples; ratio > 1 means ours is faster; 1-min load average %s) ---', repeats, (loadavg()[0] ?? 0).toFixed(1));
console.log(`ang2pixMany order ${String(order)}, ${String(points)} pts: ours ${(tMany.median * 1e3).toFixed(1)} ms` +
  (py ? `, healpy ${(py.ang2pix[1] * 1e3).toFixed(1)} ms, healpy/ours = ${(py.ang2pix[1] / tMany.median).toFixed(2)}` : ''));
console.log(`ang2pix scalar loop: ${(tScalar.median * 1e3).toFixed(1)} ms; pix2ang scalar loop: ${(tPix2ang.median * 1e3).toFixed(1)} ms` +
  (py ? ` (healpy vectorised pix2ang ${(py.pix2ang[1] * 1e3).toFixed(1)} ms)` : ''));
coneTimes.forEach((c, k) => {
  const p = py?.cones[k];
  console.log(`queryDisc order ${String(c.order)} r=${String(c.radius)} deg (${String(c.pixels)} px): ours ${(c.exclusive.median * 1e3).toFixed(2)} / inclusive ${(c.inclusive.median * 1e3).toFixed(2)} ms` +
    (p ? `; healpy ${(p[1] * 1e3).toFixed(2)} / ${(p[3] * 1e3).toFixed(2)} ms` : ''));
});
