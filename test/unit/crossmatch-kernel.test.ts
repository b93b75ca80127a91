import { describe, expect, it } from 'vitest';
import {
  CrossmatchAbortedError,
  CrossmatchInputError,
  CrossmatchOptionError,
  SkyIndex,
  coneSearch,
  compileCrossmatchOptions,
  crossmatch,
  separationArcsec,
  type MatchPairs,
  type SkyPoints,
} from '../../astro/crossmatch/index.js';
import { mulberry32 as rng } from '../../astro/random.js';

/** mulberry32: small deterministic generator for test catalogs. */

function points(n: number, gen: (i: number) => [number, number]): SkyPoints {
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  for (let i = 0; i < n; i++) [ra[i], dec[i]] = gen(i);
  return { ra, dec };
}

/** Independent reference: haversine separation in arcsec. */
function haversineArcsec(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const d2r = Math.PI / 180;
  const sdLat = Math.sin(((dec2 - dec1) * d2r) / 2);
  const sdLon = Math.sin(((ra2 - ra1) * d2r) / 2);
  const h = sdLat * sdLat + Math.cos(dec1 * d2r) * Math.cos(dec2 * d2r) * sdLon * sdLon;
  return 2 * Math.asin(Math.min(1, Math.sqrt(h))) * (180 / Math.PI) * 3600;
}

interface RefPair {
  left: number;
  right: number;
  sep: number;
  rank: number;
}

/** O(n*m) reference: every pair within (min, max], ranked by (sep, right row). */
function bruteForce(
  left: SkyPoints,
  right: SkyPoints,
  opts: { radiusArcsec: number; k?: number; mode?: 'nearest' | 'all'; minRadiusArcsec?: number },
): RefPair[] {
  const out: RefPair[] = [];
  for (let i = 0; i < left.ra.length; i++) {
    const cands: Array<{ j: number; sep: number }> = [];
    for (let j = 0; j < right.ra.length; j++) {
      const sep = haversineArcsec(left.ra[i]!, left.dec[i]!, right.ra[j]!, right.dec[j]!);
      if (sep <= opts.radiusArcsec && sep > (opts.minRadiusArcsec ?? 0) - (opts.minRadiusArcsec ? 0 : 1)) {
        if (opts.minRadiusArcsec !== undefined && opts.minRadiusArcsec > 0 && sep <= opts.minRadiusArcsec) continue;
        cands.push({ j, sep });
      }
    }
    cands.sort((a, b) => a.sep - b.sep || a.j - b.j);
    const take = (opts.mode ?? 'nearest') === 'all' ? cands.length : Math.min(cands.length, opts.k ?? 1);
    for (let c = 0; c < take; c++) out.push({ left: i, right: cands[c]!.j, sep: cands[c]!.sep, rank: c + 1 });
  }
  return out;
}

function expectSamePairs(actual: MatchPairs, expected: RefPair[]): void {
  const got = Array.from(actual.left, (l, p) => `${l}:${actual.right[p]}:${actual.rank[p]}`);
  const want = expected.map((e) => `${e.left}:${e.right}:${e.rank}`);
  expect(got).toEqual(want);
  for (let p = 0; p < expected.length; p++) {
    const e = expected[p]!;
    // haversine vs Vincenty: both accurate to ~1e-10 arcsec at these scales
    expect(Math.abs(actual.sepArcsec[p]! - e.sep)).toBeLessThanOrEqual(1e-7 + 1e-10 * e.sep);
  }
}

const wrapRa = (ra: number): number => ((ra % 360) + 360) % 360;

describe('crossmatch kernel vs brute force', () => {
  const r = rng(42);
  // full sky, radius large enough for several neighbours
  const skyL = points(1000, () => [360 * r(), (Math.asin(2 * r() - 1) * 180) / Math.PI]);
  const skyR = points(3000, () => [360 * r(), (Math.asin(2 * r() - 1) * 180) / Math.PI]);
  // clusters at both poles: dec in [89.99, 90] and [-90, -89.99], some rows exactly at the pole
  const pole = (n: number): SkyPoints =>
    points(n, (i) => {
      const north = i % 2 === 0;
      if (i % 97 === 0) return [360 * r(), north ? 90 : -90];
      const d = 89.99 + 0.01 * r();
      return [360 * r(), north ? d : -d];
    });
  const poleL = pole(500);
  const poleR = pole(1500);
  // straddling RA = 0/360 at several declinations, with near-duplicates across the seam
  const seam = (n: number): SkyPoints =>
    points(n, () => {
      const dec = [0, 45, -70, 85][Math.floor(r() * 4)]! + (r() - 0.5) * 0.02;
      return [wrapRa((r() - 0.5) * 0.04), dec];
    });
  const seamL = seam(600);
  const seamR = seam(2000);
  // right catalog with exact duplicate positions: ties must go to the lower right row
  const dupR = points(600, (i) => (i < 300 ? [10 + (i % 50) * 1e-4, 20] : [10 + ((i - 300) % 50) * 1e-4, 20]));
  const dupL = points(200, () => [10 + r() * 0.005, 20 + (r() - 0.5) * 1e-4]);

  const cases: Array<[string, SkyPoints, SkyPoints, number]> = [
    ['full sky', skyL, skyR, 3 * 3600],
    ['poles', poleL, poleR, 4],
    ['RA seam', seamL, seamR, 8],
    ['duplicates', dupL, dupR, 1],
  ];

  for (const [name, left, right, radius] of cases) {
    it(`${name}: nearest`, () => {
      const got = crossmatch(left, right, { radiusArcsec: radius });
      const want = bruteForce(left, right, { radiusArcsec: radius });
      expect(want.length).toBeGreaterThan(left.ra.length / 10);
      expectSamePairs(got, want);
    });
    it(`${name}: k=3`, () => {
      const got = crossmatch(left, right, { radiusArcsec: radius, k: 3 });
      const want = bruteForce(left, right, { radiusArcsec: radius, k: 3 });
      expect(want.some((p) => p.rank === 3)).toBe(true);
      expectSamePairs(got, want);
    });
    it(`${name}: all pairs`, () => {
      const got = crossmatch(left, right, { radiusArcsec: radius, mode: 'all' });
      const want = bruteForce(left, right, { radiusArcsec: radius, mode: 'all' });
      expect(want.length).toBeGreaterThan(left.ra.length);
      expectSamePairs(got, want);
    });
    it(`${name}: k=2 with a minimum radius`, () => {
      const got = crossmatch(left, right, { radiusArcsec: radius, k: 2, minRadiusArcsec: radius / 3 });
      const want = bruteForce(left, right, { radiusArcsec: radius, k: 2, minRadiusArcsec: radius / 3 });
      expectSamePairs(got, want);
    });
  }

  it('kdtree and morton layouts give identical results (conformance)', () => {
    for (const [, left, right, radius] of cases) {
      for (const leafSize of [1, 5, 64]) {
        const kd = SkyIndex.build(right, { method: 'kdtree', leafSize });
        const mo = SkyIndex.build(right, { method: 'morton', leafSize });
        const a = crossmatch(left, right, { radiusArcsec: radius, k: 4, rightIndex: kd });
        const b = crossmatch(left, right, { radiusArcsec: radius, k: 4, rightIndex: mo });
        expect(Array.from(a.right)).toEqual(Array.from(b.right));
        expect(Array.from(a.left)).toEqual(Array.from(b.left));
      }
    }
  });

  it('SkyIndex.queryRadius and nearest agree with brute force', () => {
    const idx = SkyIndex.build(poleR);
    for (let q = 0; q < 50; q++) {
      const ra = poleL.ra[q]!;
      const dec = poleL.dec[q]!;
      const want = [];
      for (let j = 0; j < poleR.ra.length; j++) {
        if (haversineArcsec(ra, dec, poleR.ra[j]!, poleR.dec[j]!) <= 4) want.push(j);
      }
      expect(idx.queryRadius(ra, dec, 4)).toEqual(want);
      const near = idx.nearest(ra, dec, 5, 4);
      expect(near.map((n) => n.index)).toEqual(
        want
          .map((j) => ({ j, s: haversineArcsec(ra, dec, poleR.ra[j]!, poleR.dec[j]!) }))
          .sort((a, b) => a.s - b.s || a.j - b.j)
          .slice(0, 5)
          .map((x) => x.j),
      );
    }
  });

  it('coneSearch matches brute force (across the RA seam and at a pole)', () => {
    for (const [pts, ra, dec, radius] of [
      [seamR, 359.995, 45, 30],
      [seamR, 0.001, 0.0, 40],
      [poleR, 123, 90, 20],
      [poleR, 0, -89.995, 10],
    ] as Array<[SkyPoints, number, number, number]>) {
      const want: number[] = [];
      for (let j = 0; j < pts.ra.length; j++) {
        if (haversineArcsec(ra, dec, pts.ra[j]!, pts.dec[j]!) <= radius) want.push(j);
      }
      expect(want.length).toBeGreaterThan(0);
      expect(Array.from(coneSearch(pts, ra, dec, radius))).toEqual(want);
    }
  });
});

describe('crossmatch edge cases', () => {
  it('empty inputs give no pairs', () => {
    const empty: SkyPoints = { ra: new Float64Array(0), dec: new Float64Array(0) };
    const one: SkyPoints = { ra: Float64Array.of(1), dec: Float64Array.of(2) };
    expect(crossmatch(empty, one, { radiusArcsec: 1 }).left.length).toBe(0);
    expect(crossmatch(one, empty, { radiusArcsec: 1 }).left.length).toBe(0);
    expect(SkyIndex.build(empty).nearest(0, 0, 3, 10)).toEqual([]);
  });

  it('separation is exact for antipodes and tiny angles', () => {
    expect(separationArcsec(0, 0, 180, 0)).toBeCloseTo(648000, 6);
    expect(separationArcsec(10, 90, 200, 90)).toBeLessThan(1e-10);
    // 1 micro-arcsecond along the equator
    expect(separationArcsec(0, 0, 1e-6 / 3600, 0)).toBeCloseTo(1e-6, 15);
    expect(separationArcsec(359.9999, 0, 0.0001, 0)).toBeCloseTo(0.72, 9);
  });

  it('a pair exactly at the radius is included (separation <= radius)', () => {
    const left: SkyPoints = { ra: Float64Array.of(0), dec: Float64Array.of(0) };
    const right: SkyPoints = { ra: Float64Array.of(0), dec: Float64Array.of(1) };
    const sep = separationArcsec(0, 0, 0, 1);
    expect(crossmatch(left, right, { radiusArcsec: sep }).left.length).toBe(1);
    expect(crossmatch(left, right, { radiusArcsec: sep * (1 - 1e-12) }).left.length).toBe(0);
  });

  it('compileCrossmatchOptions fills defaults and rejects conflicts', () => {
    expect(compileCrossmatchOptions({ radiusArcsec: 2 })).toEqual({ radiusArcsec: 2, k: 1, mode: 'nearest', minRadiusArcsec: 0 });
    expect(() => compileCrossmatchOptions({ radiusArcsec: 0 })).toThrow(CrossmatchOptionError);
    expect(() => compileCrossmatchOptions({ radiusArcsec: Number.NaN })).toThrow(/radiusArcsec/);
    expect(() => compileCrossmatchOptions({ radiusArcsec: 1, k: 0 })).toThrow(/k=0/);
    expect(() => compileCrossmatchOptions({ radiusArcsec: 1, k: 2.5 })).toThrow(CrossmatchOptionError);
    expect(() => compileCrossmatchOptions({ radiusArcsec: 1, k: 3, mode: 'all' })).toThrow(/conflicts/);
    expect(() => compileCrossmatchOptions({ radiusArcsec: 1, minRadiusArcsec: 1 })).toThrow(/smaller/);
  });

  it('rejects malformed coordinates with the row', () => {
    const good: SkyPoints = { ra: Float64Array.of(0, 1), dec: Float64Array.of(0, 1) };
    const bad: SkyPoints = { ra: Float64Array.of(0, 1), dec: Float64Array.of(0, 91) };
    expect(() => crossmatch(bad, good, { radiusArcsec: 1 })).toThrow(CrossmatchInputError);
    expect(() => crossmatch(good, bad, { radiusArcsec: 1 })).toThrow(/row 1/);
    expect(() => crossmatch({ ra: Float64Array.of(0), dec: new Float64Array(0) }, good, { radiusArcsec: 1 })).toThrow(
      CrossmatchInputError,
    );
  });

  it('honours AbortSignal and reports progress', () => {
    const r = rng(7);
    const pts = points(20000, () => [r() * 10, r() * 10]);
    const seen: Array<[number, number]> = [];
    crossmatch(pts, pts, { radiusArcsec: 1, onProgress: (d, t) => seen.push([d, t]) });
    expect(seen.at(-1)).toEqual([20000, 20000]);
    expect(seen.length).toBeGreaterThan(1);
    const ac = new AbortController();
    ac.abort();
    expect(() => crossmatch(pts, pts, { radiusArcsec: 1, signal: ac.signal })).toThrow(CrossmatchAbortedError);
  });
});
