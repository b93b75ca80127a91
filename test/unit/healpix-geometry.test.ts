import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ang2pix,
  angularDistanceDeg,
  boundaries,
  HealpixArgumentError,
  neighbours,
  npix,
  pix2ang,
  queryDisc,
  queryDiscRanges,
  rangesPixelCount,
} from '../../astro/healpix/index.js';
import { healpyUnavailableReason, makeRng, RefDir } from './ref/healpix-python.js';

const RAD2DEG = 180 / Math.PI;
const noHealpy = healpyUnavailableReason() !== '';

/** Pixel of `order` at face corner (ix, iy) in {0, n-1}^2. */
function faceCornerPixels(order: number): number[] {
  const n = 2 ** order;
  const out = new Set<number>();
  for (let face = 0; face < 12; face++) {
    for (const ix of [0, n - 1]) {
      for (const iy of [0, n - 1]) {
        // nested index of (ix, iy): interleave bits (ix even, iy odd)
        let p = 0;
        for (let b = 0; b < order; b++) p += (((ix >> b) & 1) + 2 * ((iy >> b) & 1)) * 4 ** b;
        out.add(face * 4 ** order + p);
      }
    }
  }
  return [...out];
}

describe('HEALPix geometry (self-consistency)', () => {
  it('neighbours are symmetric and adjacent', () => {
    const rng = makeRng(41);
    for (const order of [1, 4, 9, 16, 24]) {
      const radius = 2.5 * Math.sqrt((4 * Math.PI) / npix(order)) * RAD2DEG; // 2.5 mean pixel sizes
      const problems: string[] = [];
      for (let i = 0; i < 300; i++) {
        const pix = Math.floor(rng() * npix(order));
        const c = pix2ang(order, pix);
        for (const nb of neighbours(order, pix)) {
          if (nb < 0) continue;
          if (!neighbours(order, nb).includes(pix)) problems.push(`${String(nb)} does not list ${String(pix)}`);
          const d = pix2ang(order, nb);
          if (angularDistanceDeg(c.ra, c.dec, d.ra, d.dec) >= radius) problems.push(`${String(nb)} far from ${String(pix)}`);
        }
      }
      expect(problems, `order ${String(order)}`).toEqual([]);
    }
  });

  it('queryDisc ranges are sorted, disjoint and contain the centre pixel', () => {
    const rng = makeRng(8);
    for (let i = 0; i < 100; i++) {
      const order = 2 + Math.floor(rng() * 9);
      const ra = rng() * 360;
      const dec = Math.asin(2 * rng() - 1) * RAD2DEG;
      const r = 10 ** (-2 + 2.5 * rng());
      const ranges = queryDiscRanges(order, ra, dec, r, { inclusive: true });
      for (let k = 0; k < ranges.length; k++) {
        const [a, b] = ranges[k] as [number, number];
        expect(b).toBeGreaterThan(a);
        if (k > 0) expect(a).toBeGreaterThan((ranges[k - 1] as [number, number])[1]);
      }
      const list = queryDisc(order, ra, dec, r, { inclusive: true });
      expect(list.length).toBe(rangesPixelCount(ranges));
      expect(list).toContain(ang2pix(order, ra, dec));
      // every exclusive pixel has its centre inside the disc, and is in the inclusive set
      const inclusiveSet = new Set(list);
      let outside = 0;
      for (const p of queryDisc(order, ra, dec, r)) {
        const c = pix2ang(order, p);
        if (angularDistanceDeg(ra, dec, c.ra, c.dec) > r * (1 + 1e-9) || !inclusiveSet.has(p)) outside++;
      }
      expect(outside).toBe(0);
    }
    expect(queryDiscRanges(3, 0, 0, 180)).toEqual([[0, npix(3)]]);
    expect(() => queryDisc(3, 0, 0, 1, { inclusive: true, fact: 3 })).toThrow(HealpixArgumentError);
    expect(() => queryDisc(3, 0, 0, -1)).toThrow(/radiusDeg/);
    const ac = new AbortController();
    ac.abort(new Error('cancelled'));
    expect(() => queryDisc(3, 0, 0, 1, { signal: ac.signal })).toThrow('cancelled');
  });

  it('boundaries surround the pixel: points just inside each boundary point belong to the pixel', () => {
    const rng = makeRng(4);
    const toVec = (p: { ra: number; dec: number }): [number, number, number] => {
      const a = p.ra / RAD2DEG;
      const d = p.dec / RAD2DEG;
      return [Math.cos(d) * Math.cos(a), Math.cos(d) * Math.sin(a), Math.sin(d)];
    };
    const outside: string[] = [];
    for (let i = 0; i < 500; i++) {
      const order = Math.floor(rng() * 25);
      const pix = Math.floor(rng() * npix(order));
      const c = toVec(pix2ang(order, pix));
      const pts = boundaries(order, pix, 3);
      expect(pts).toHaveLength(12);
      for (const p of pts) {
        const b = toVec(p);
        const v = [0.9 * b[0] + 0.1 * c[0], 0.9 * b[1] + 0.1 * c[1], 0.9 * b[2] + 0.1 * c[2]] as const;
        const ra = Math.atan2(v[1], v[0]) * RAD2DEG;
        const dec = Math.atan2(v[2], Math.hypot(v[0], v[1])) * RAD2DEG;
        if (ang2pix(order, ra, dec) !== pix) outside.push(`order ${String(order)} pix ${String(pix)} near (${String(p.ra)}, ${String(p.dec)})`);
      }
    }
    expect(outside).toEqual([]);
    expect(() => boundaries(3, 0, 0)).toThrow(RangeError);
  });
});

type Cone = [order: number, ra: number, dec: number, radius: number, inclusive: number, fact: number];

describe.skipIf(noHealpy)('HEALPix geometry against healpy', () => {
  let dir: RefDir;
  const nbOrders: number[] = [];
  const nbPix: number[] = [];
  const bdReq: number[] = [];
  const cones: Cone[] = [];

  beforeAll(() => {
    dir = new RefDir();
    const rng = makeRng(17);
    // neighbours: random pixels plus every face-corner pixel
    for (const order of [0, 1, 2, 3, 5, 10, 18, 24]) {
      for (const p of faceCornerPixels(order)) {
        nbOrders.push(order);
        nbPix.push(p);
      }
      for (let i = 0; i < 500; i++) {
        nbOrders.push(order);
        nbPix.push(Math.floor(rng() * npix(order)));
      }
    }
    dir.writeF64('nb_order.f64', nbOrders);
    dir.writeI64('nb_pix.i64', nbPix);

    // boundaries: first/last pixels of faces 0, 4, 8, 11 and random ones, steps 1..5
    for (let order = 0; order <= 24; order++) {
      for (const p of [0, 4 ** order - 1, 8 * 4 ** order, npix(order) - 1]) bdReq.push(order, p, 1);
      for (let i = 0; i < 40; i++) bdReq.push(order, Math.floor(rng() * npix(order)), 1 + Math.floor(rng() * 5));
    }
    dir.writeF64('bd_req.f64', bdReq);

    // cones: each in both modes; large radii go to lower orders to keep the exchanged data small
    const maxPixels = 60_000;
    const addCone = (order: number, ra: number, dec: number, radius: number): void => {
      let o = order;
      while (o > 2 && (npix(o) * (1 - Math.cos(radius / RAD2DEG))) / 2 > maxPixels) o--;
      cones.push([o, ra, dec, radius, 0, 4]);
      const fact = [1, 2, 4, 4, 8][Math.floor(rng() * 5)] as number;
      cones.push([o, ra, dec, radius, 1, fact]);
    };
    for (let i = 0; i < 200; i++) {
      const order = 2 + Math.floor(rng() * 11);
      const radius = 10 ** (-3 + Math.log10(30000) * rng()); // 0.001 .. 30 deg, log-uniform
      addCone(order, rng() * 360, Math.asin(2 * rng() - 1) * RAD2DEG, radius);
    }
    // poles, near-poles, across ra = 0
    for (const dec of [90, -90, 89.99, -89.95, 88]) {
      for (const radius of [0.001, 0.05, 1, 5, 30]) addCone(2 + Math.floor(rng() * 11), rng() * 360, dec, radius);
    }
    for (const ra of [0, 359.999, 0.0004, 360, -0.5]) {
      for (const radius of [0.002, 0.3, 2, 12]) addCone(2 + Math.floor(rng() * 11), ra, rng() * 120 - 60, radius);
    }
    addCone(12, 0, 0, 0.001);
    addCone(12, 45, 41.8103, 0.01);
    dir.writeF64('qd_cones.f64', cones.flat());

    dir.run('neighbours,boundaries,query_disc');
  });
  afterAll(() => dir.remove());

  it('neighbours identical to healpy.get_all_neighbours, including the -1 face corners', () => {
    const ref = dir.readI64('nb_out.i64');
    expect(ref.length).toBe(8 * nbPix.length);
    let minusOnes = 0;
    const bad: string[] = [];
    for (let i = 0; i < nbPix.length; i++) {
      const mine = neighbours(nbOrders[i] as number, nbPix[i] as number);
      const theirs = Array.from(ref.subarray(8 * i, 8 * i + 8), Number);
      if (mine.some((v, k) => v !== theirs[k])) {
        bad.push(`order ${String(nbOrders[i])} pix ${String(nbPix[i])}: [${mine.join()}] vs healpy [${theirs.join()}]`);
      }
      minusOnes += mine.filter((v) => v === -1).length;
    }
    expect(bad.slice(0, 10), `${String(bad.length)} of ${String(nbPix.length)} differ`).toEqual([]);
    // 8 face corners lack a neighbour at every order >= 1 (4 at the N and 4 at the S vertices)
    expect(minusOnes).toBeGreaterThanOrEqual(8 * 7);
  });

  it('boundaries equal healpy.boundaries to 1e-10 deg', () => {
    const xyz = dir.readF64('bd_xyz.f64');
    let k = 0;
    let worst = 0;
    for (let r = 0; r < bdReq.length; r += 3) {
      const pts = boundaries(bdReq[r] as number, bdReq[r + 1] as number, bdReq[r + 2] as number);
      for (const p of pts) {
        const x = xyz[k++] as number;
        const y = xyz[k++] as number;
        const z = xyz[k++] as number;
        const ra = Math.atan2(y, x) * RAD2DEG;
        const dec = Math.atan2(z, Math.hypot(x, y)) * RAD2DEG;
        worst = Math.max(worst, angularDistanceDeg(p.ra, p.dec, ra, dec));
      }
    }
    expect(k).toBe(xyz.length);
    expect(worst).toBeLessThanOrEqual(1e-10);
  });

  it('queryDisc sets identical to healpy.query_disc (inclusive false and true) on 494 cones (247 per mode)', () => {
    expect(cones.length).toBeGreaterThanOrEqual(400);
    const counts = dir.readI64('qd_counts.i64');
    const all = dir.readI64('qd_pix.i64');
    let off = 0;
    let total = 0;
    let empty = 0;
    const bad: string[] = [];
    cones.forEach(([order, ra, dec, radius, inclusive, fact], i) => {
      const cnt = Number(counts[i]);
      const theirs = all.subarray(off, off + cnt);
      off += cnt;
      const mine = queryDisc(order, ra, dec, radius, { inclusive: inclusive === 1, fact });
      const label = `cone ${String(i)}: order ${String(order)} (${String(ra)}, ${String(dec)}) r=${String(radius)} inclusive=${String(inclusive)} fact=${String(fact)}`;
      if (mine.length !== cnt) bad.push(`${label}: ${String(mine.length)} pixels vs healpy ${String(cnt)}`);
      else if (mine.some((p, k) => p !== Number(theirs[k]))) bad.push(`${label}: different pixels`);
      total += cnt;
      if (cnt === 0) empty++;
    });
    expect(off).toBe(all.length);
    expect(bad).toEqual([]);
    expect(total).toBeGreaterThan(100_000);
    console.info(`[healpix] queryDisc vs healpy: ${String(cones.length)} cones, ${String(total)} pixels, ${String(empty)} empty results, all identical`);
  });
});
