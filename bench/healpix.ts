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
import { tmpdir } from 'node:os';
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

/** Times fn `repeats` times after one warm-up; returns seconds (best and median). */
function time(fn: () => void): { best: number; median: number } {
  fn();
  const t: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
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
const tPix2ang = time(() => {
  let s = 0;
  for (let i = 0; i < points; i++) s += pix2ang(order, out[i] as number).ra;
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
f = lambda: hp.ang2pix(ns, ra, dec, nest=True, lonlat=True)
f()
t = timeit.repeat(f, number=1, repeat=repeats)
f().astype(np.float64).tofile(os.path.join(d, 'pix.f64'))
fp = lambda: hp.pix2ang(ns, f(), nest=True, lonlat=True)
tp = timeit.repeat(lambda: hp.pix2ang(ns, np.arange(len(ra)) % (12 * ns * ns), nest=True, lonlat=True), number=1, repeat=repeats)
cones = json.loads(sys.argv[4])
ct = []
for o, a, dd, r in cones:
    v = hp.ang2vec(a, dd, lonlat=True)
    te = timeit.repeat(lambda: query_disc(2 ** o, v, np.radians(r), nest=True), number=1, repeat=repeats)
    ti = timeit.repeat(lambda: query_disc(2 ** o, v, np.radians(r), inclusive=True, nest=True), number=1, repeat=repeats)
    ct.append([min(te), sorted(te)[len(te) // 2], min(ti), sorted(ti)[len(ti) // 2]])
print(json.dumps({'ang2pix': [min(t), sorted(t)[len(t) // 2]], 'pix2ang': [min(tp), sorted(tp)[len(tp) // 2]], 'cones': ct}))
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

console.log('\n--- summary (median of %d runs; ratio > 1 means ours is faster) ---', repeats);
console.log(`ang2pixMany order ${String(order)}, ${String(points)} pts: ours ${(tMany.median * 1e3).toFixed(1)} ms` +
  (py ? `, healpy ${(py.ang2pix[1] * 1e3).toFixed(1)} ms, healpy/ours = ${(py.ang2pix[1] / tMany.median).toFixed(2)}` : ''));
console.log(`ang2pix scalar loop: ${(tScalar.median * 1e3).toFixed(1)} ms; pix2ang scalar loop: ${(tPix2ang.median * 1e3).toFixed(1)} ms` +
  (py ? ` (healpy vectorised pix2ang ${(py.pix2ang[1] * 1e3).toFixed(1)} ms)` : ''));
coneTimes.forEach((c, k) => {
  const p = py?.cones[k];
  console.log(`queryDisc order ${String(c.order)} r=${String(c.radius)} deg (${String(c.pixels)} px): ours ${(c.exclusive.median * 1e3).toFixed(2)} / inclusive ${(c.inclusive.median * 1e3).toFixed(2)} ms` +
    (p ? `; healpy ${(p[1] * 1e3).toFixed(2)} / ${(p[3] * 1e3).toFixed(2)} ms` : ''));
});
