/**
 * Cross-match benchmark: 100,000 x 1,000,000 sources, nearest neighbour within
 * 1 arcsec, over a region that wraps through RA = 0 (ra in [355, 5], dec in
 * [-5, 5]); right = the left positions moved by ~0.2 arcsec plus 900,000 random
 * extra sources. Compares our crossmatch (index build included) with astropy's
 * SkyCoord.match_to_catalog_sky (SkyCoord construction + KD-tree build + query,
 * timed inside Python) in the same run, and checks the match sets are identical.
 *
 * Run:
 *   npx tsc -p tsconfig.json && node dist/bench/crossmatch.js
 * or, when other people's files break the full build:
 *   npx tsc --outDir /tmp/crossmatch-build --rootDir . --module NodeNext --moduleResolution NodeNext \
 *     --target ES2022 --strict --noUncheckedIndexedAccess --skipLibCheck --types node bench/crossmatch.ts
 *   node /tmp/crossmatch-build/bench/crossmatch.js
 * Options (env): XM_LEFT (100000), XM_RIGHT (1000000), XM_REPEAT (3), XM_PYTHON (/usr/bin/python3).
 * Both sides run on one core: Node is single-threaded here, and Python gets
 * OMP/OPENBLAS/MKL threads = 1 (scipy's cKDTree query is single-threaded by default).
 * Output: one JSON line per measurement, then a human summary.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
// the kernel modules directly: no DuckDB needed, so the script also runs from a build outside the repo
import { crossmatch } from '../astro/crossmatch/crossmatch.js';
import { SkyIndex } from '../astro/crossmatch/sky-index.js';
import { mulberry32 as rng } from '../astro/random.js';

const nLeft = Number(process.env.XM_LEFT ?? 100_000);
const nRight = Number(process.env.XM_RIGHT ?? 1_000_000);
const repeat = Number(process.env.XM_REPEAT ?? 3);
const python = process.env.XM_PYTHON ?? '/usr/bin/python3';
const radius = 1;


function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-300)) * Math.cos(2 * Math.PI * r());
}

function makeData(): { lra: Float64Array; ldec: Float64Array; rra: Float64Array; rdec: Float64Array } {
  const r = rng(20251125);
  const d2r = Math.PI / 180;
  const s0 = Math.sin(-5 * d2r);
  const s1 = Math.sin(5 * d2r);
  const pos = (): [number, number] => [(355 + 10 * r()) % 360, Math.asin(s0 + r() * (s1 - s0)) / d2r];
  const lra = new Float64Array(nLeft);
  const ldec = new Float64Array(nLeft);
  for (let i = 0; i < nLeft; i++) [lra[i], ldec[i]] = pos();
  const rra = new Float64Array(nRight);
  const rdec = new Float64Array(nRight);
  // counterparts at random rows of the right catalog, the rest random
  const slots = new Int32Array(nRight);
  for (let j = 0; j < nRight; j++) slots[j] = j;
  for (let j = nRight - 1; j > 0; j--) {
    const k = Math.floor(r() * (j + 1));
    const t = slots[j]!;
    slots[j] = slots[k]!;
    slots[k] = t;
  }
  for (let j = 0; j < nRight; j++) {
    const row = slots[j]!;
    if (j < nLeft) {
      const sigma = 0.2 / 3600;
      const dec = ldec[j]! + gauss(r) * sigma;
      rra[row] = (((lra[j]! + (gauss(r) * sigma) / Math.cos(dec * d2r)) % 360) + 360) % 360;
      rdec[row] = dec;
    } else {
      [rra[row], rdec[row]] = pos();
    }
  }
  return { lra, ldec, rra, rdec };
}

function emit(obj: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench: 'crossmatch', ...obj }));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

function main(): void {
  const data = makeData();
  const left = { ra: data.lra, dec: data.ldec };
  const right = { ra: data.rra, dec: data.rdec };
  emit({ event: 'setup', nLeft, nRight, radiusArcsec: radius, node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model });

  // warm-up (JIT), then ours and astropy alternate so both see the same machine load
  const ours: number[] = [];
  const builds: number[] = [];
  let result = crossmatch(left, right, { radiusArcsec: radius });
  const runOurs = (k: number): void => {
    const t0 = performance.now();
    const index = SkyIndex.build(right);
    const t1 = performance.now();
    result = crossmatch(left, right, { radiusArcsec: radius, rightIndex: index });
    const t2 = performance.now();
    ours.push((t2 - t0) / 1000);
    builds.push((t1 - t0) / 1000);
    emit({ event: 'ours', run: k, seconds: (t2 - t0) / 1000, buildSeconds: (t1 - t0) / 1000, pairs: result.left.length });
  };

  const script = resolve(process.cwd(), 'test/unit/ref/crossmatch_astropy.py');
  const astropy: number[] = [];
  let identical: boolean | null = null;
  let mismatches = 0;
  let maxSepDiff = 0;
  const haveAstropy = existsSync(python) && existsSync(script);
  if (!haveAstropy) emit({ event: 'astropy-skipped', reason: `${python} or ${script} missing` });
  const dir = mkdtempSync(join(tmpdir(), 'xm-bench-'));
  try {
    const write = (name: string, a: Float64Array) => writeFileSync(join(dir, name), Buffer.from(a.buffer, a.byteOffset, a.byteLength));
    write('left_ra.f64', data.lra);
    write('left_dec.f64', data.ldec);
    write('right_ra.f64', data.rra);
    write('right_dec.f64', data.rdec);
    const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
    let astropyOk = haveAstropy;
    for (let k = 0; k < repeat; k++) {
      runOurs(k);
      if (!astropyOk) continue;
      const run = spawnSync(python, [script, dir], { encoding: 'utf8', env, timeout: 600_000 });
      if (run.status !== 0) {
        emit({ event: 'astropy-failed', stderr: run.stderr.slice(-2000) });
        astropyOk = false;
        continue;
      }
      const timing = JSON.parse(readFileSync(join(dir, 'timing.json'), 'utf8')) as { seconds: number; astropy: string };
      astropy.push(timing.seconds);
      emit({ event: 'astropy', run: k, seconds: timing.seconds, version: timing.astropy });
    }
    if (astropy.length > 0) {
      const idxBuf = readFileSync(join(dir, 'idx.i64'));
      const sepBuf = readFileSync(join(dir, 'sep.f64'));
      const idx = new BigInt64Array(idxBuf.buffer, idxBuf.byteOffset, nLeft);
      const sep = new Float64Array(sepBuf.buffer, sepBuf.byteOffset, nLeft);
      const ourRight = new Int32Array(nLeft).fill(-1);
      const ourSep = new Float64Array(nLeft);
      for (let p = 0; p < result.left.length; p++) {
        ourRight[result.left[p]!] = result.right[p]!;
        ourSep[result.left[p]!] = result.sepArcsec[p]!;
      }
      for (let i = 0; i < nLeft; i++) {
        const theirs = sep[i]! <= radius ? Number(idx[i]) : -1;
        if (theirs !== ourRight[i]) mismatches++;
        else if (theirs >= 0) maxSepDiff = Math.max(maxSepDiff, Math.abs(sep[i]! - ourSep[i]!));
      }
      identical = mismatches === 0;
      emit({ event: 'compare', identical, mismatches, maxSepDiffArcsec: maxSepDiff });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const oursBest = Math.min(...ours);
  const summary = {
    event: 'summary',
    oursMedianSeconds: median(ours),
    oursBestSeconds: oursBest,
    oursBuildMedianSeconds: median(builds),
    astropyMedianSeconds: astropy.length ? median(astropy) : null,
    astropyBestSeconds: astropy.length ? Math.min(...astropy) : null,
    speedupMedian: astropy.length ? median(astropy) / median(ours) : null,
    pairs: result.left.length,
    identical,
  };
  emit(summary);
  console.log(
    `\n${nLeft} x ${nRight} within ${radius}": ours ${median(ours).toFixed(3)} s median (best ${oursBest.toFixed(3)}, index build ${median(builds).toFixed(3)}), ` +
      (astropy.length
        ? `astropy ${median(astropy).toFixed(3)} s median (best ${Math.min(...astropy).toFixed(3)}) -> ${(median(astropy) / median(ours)).toFixed(2)}x; `
        : 'astropy not run; ') +
      `${result.left.length} pairs, identical match sets: ${String(identical)}`,
  );
}

main();
