/** RingsSkyMap: tract coverage of the whole sky, patch lookups vs patchBBox, groupByPatch. */
import { describe, expect, it } from 'vitest';
import { RingsSkyMap, SkyMapError, polygonIntersectsBox, type ImageIndexRow } from '../../astro/images/index.js';
import { TanSipWcs } from '../../astro/wcs/index.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Uniform random points on the sphere, plus awkward ones (poles, RA 0/360, ring edges). */
function skyPoints(n: number, sm: RingsSkyMap): [number, number][] {
  const r = lcg(99);
  const pts: [number, number][] = [];
  for (let i = 0; i < n; i++) pts.push([r() * 360, (Math.asin(2 * r() - 1) * 180) / Math.PI]);
  pts.push([0, 90], [123, -90], [0, 0], [359.999999, 0], [0, -89.9], [180, 89.9]);
  const rs = sm.ringSizeDeg;
  for (let k = 0; k < 40; k++) pts.push([r() * 360, -90 + rs * (Math.floor(r() * sm.config.numRings) + 0.5)]);
  return pts;
}

function inBox(x: number, y: number, b: { x0: number; y0: number; width: number; height: number }): boolean {
  return x >= b.x0 - 0.5 && x < b.x0 + b.width - 0.5 && y >= b.y0 - 0.5 && y < b.y0 + b.height - 0.5;
}

function raIn(ra: number, lo: number, hi: number): boolean {
  const w = (((hi - lo) % 360) + 360) % 360 || 360;
  const d = (((ra - lo) % 360) + 360) % 360;
  return d <= w + 1e-9;
}

describe('RingsSkyMap', () => {
  const sm = new RingsSkyMap(); // LSST-like defaults: 120 rings, 0.2"/px, 4000 px patches
  const pts = skyPoints(1500, sm);

  it('has caps and rings of tracts with a patch grid', () => {
    expect(sm.numTracts).toBeGreaterThan(10000);
    const south = sm.tractInfo(0);
    const north = sm.tractInfo(sm.numTracts - 1);
    expect([south.ring, south.dec, north.ring, north.dec]).toEqual([-1, -90, 120, 90]);
    const t = sm.tractInfo(sm.tractFor(30, 10));
    expect(t.numPatches[0]).toBeGreaterThan(1);
    expect(t.width).toBe(t.numPatches[0] * 4000);
    expect(sm.tractWcs(t.id).pixelScaleArcsec()).toBeCloseTo(0.2, 9);
  });

  it('puts every sky point in at least one tract, in whose pixel box and inner region it lies', () => {
    let overlapped = 0;
    for (const [ra, dec] of pts) {
      const tracts = sm.tractsFor(ra, dec);
      expect(tracts.length, `${ra},${dec}`).toBeGreaterThan(0);
      expect(new Set(tracts).size).toBe(tracts.length);
      const primary = sm.tractInfo(tracts[0] as number);
      expect(dec >= primary.decMin - 1e-9 && dec <= primary.decMax + 1e-9, `${ra},${dec} dec in tract ${primary.id}`).toBe(true);
      if (primary.ring >= 0 && primary.ring < 120) expect(raIn(ra, primary.raMin, primary.raMax), `${ra},${dec} ra in tract ${primary.id}`).toBe(true);
      for (const t of tracts) {
        const info = sm.tractInfo(t);
        const [x, y] = sm.tractWcs(t).skyToPixel(ra, dec);
        expect(inBox(x, y, { x0: 0, y0: 0, width: info.width, height: info.height }), `${ra},${dec} in tract ${t}`).toBe(true);
      }
      if (tracts.length > 1) overlapped++;
    }
    // tracts overlap: some points (near edges) belong to several
    expect(overlapped).toBeGreaterThan(0);
  });

  it('finds every tract whose box contains a point (checked against a brute-force scan near the point)', () => {
    const r = lcg(5);
    for (let k = 0; k < 30; k++) {
      const [ra, dec] = [r() * 360, (Math.asin(2 * r() - 1) * 180) / Math.PI];
      const got = new Set(sm.tractsFor(ra, dec));
      // brute force over the rings within 3 ring heights
      for (let id = 0; id < sm.numTracts; id++) {
        const core = sm.tractInfo(id);
        if (Math.abs(core.dec - dec) > 3 * sm.ringSizeDeg) continue;
        const [x, y] = sm.tractWcs(id).skyToPixel(ra, dec);
        if (inBox(x, y, { x0: 0, y0: 0, width: core.width, height: core.height })) expect(got.has(id), `${ra},${dec} tract ${id}`).toBe(true);
      }
    }
  });

  it('patch lookups agree with patchBBox', () => {
    for (const [ra, dec] of pts.slice(0, 400)) {
      for (const t of sm.tractsFor(ra, dec)) {
        const info = sm.tractInfo(t);
        const [x, y] = sm.tractWcs(t).skyToPixel(ra, dec);
        const patches = sm.patchesFor(t, ra, dec);
        expect(patches.length).toBeGreaterThan(0);
        expect(inBox(x, y, sm.patchBBox(t, patches[0] as number)), 'first patch inner box holds the point').toBe(true);
        const n = info.numPatches[0] * info.numPatches[1];
        const expected: number[] = [];
        for (let p = 0; p < n; p++) if (inBox(Math.floor(x + 0.5), Math.floor(y + 0.5), sm.patchBBox(t, p, { outer: true }))) expected.push(p);
        expect([...patches].sort((a, b) => a - b)).toEqual(expected);
        for (let p = 0; p < n; p++) {
          const inner = sm.patchBBox(t, p);
          expect(inner.width).toBe(4000);
          const [ix, iy] = sm.patchIndex(t, p);
          expect(sm.patchId(t, ix, iy)).toBe(p);
        }
      }
    }
  });

  it('groups images by the patches their footprints overlap', () => {
    const t = sm.tractFor(150, 2);
    const wcs = sm.tractWcs(t);
    const info = sm.tractInfo(t);
    const [nx] = info.numPatches;
    const row = (name: string, cx: number, cy: number, half: number): ImageIndexRow => {
      const corners = [[cx - half, cy - half], [cx - half, cy + half], [cx + half, cy + half], [cx + half, cy - half]].map(([x, y]) => wcs.pixelToSky(x as number, y as number));
      const [ra, dec] = wcs.pixelToSky(cx, cy);
      return { path: name, hdu: 0, extname: null, visit: 1, detector: 0, band: 'r', mjd: null, width: 2 * half, height: 2 * half, ra, dec, cornerRa: corners.map((c) => c[0]), cornerDec: corners.map((c) => c[1]), pixelScaleArcsec: 0.2, healpixOrder: 8, healpix: [] };
    };
    // in the middle of patch (2, 3); straddling the corner of patches (3..4, 1..2); beyond the border of patch (1,1) but inside its outer box
    const a = row('a', 2 * 4000 + 2000, 3 * 4000 + 2000, 50);
    const b = row('b', 4 * 4000, 2 * 4000, 30);
    const c = row('c', 2 * 4000 + 60, 1 * 4000 + 2000, 20);
    const groups = sm.groupByPatch([a, b, c]).filter((g) => g.tract === t);
    const of = (name: string): [number, number][] => groups.filter((g) => g.images.some((r) => r.path === name)).map((g) => g.patchIndex);
    expect(of('a')).toEqual([[2, 3]]);
    expect(of('b').sort()).toEqual([[3, 1], [3, 2], [4, 1], [4, 2]].sort());
    expect(of('c').sort()).toEqual([[1, 1], [2, 1]]);
    for (const g of groups) expect(g.patch).toBe(g.patchIndex[1] * nx + g.patchIndex[0]);
  });

  it('validates configuration and ids', () => {
    expect(() => new RingsSkyMap({ numRings: 0 })).toThrow(SkyMapError);
    expect(() => new RingsSkyMap({ pixelScaleArcsec: -1 })).toThrow(/pixelScaleArcsec/);
    expect(() => sm.tractInfo(sm.numTracts)).toThrow(SkyMapError);
    expect(() => sm.patchBBox(0, 10_000)).toThrow(/no patch/);
    const small = new RingsSkyMap({ numRings: 8, pixelScaleArcsec: 20, patchInnerPx: 500, patchBorderPx: 20 });
    for (const [ra, dec] of skyPoints(300, small)) expect(small.tractsFor(ra, dec).length).toBeGreaterThan(0);
  });

  it('polygonIntersectsBox separates and touches correctly', () => {
    expect(polygonIntersectsBox([[0, 0], [1, 0], [1, 1], [0, 1]], 0.5, 0.5, 2, 2)).toBe(true);
    expect(polygonIntersectsBox([[0, 0], [1, 0], [0, 1]], 0.6, 0.6, 2, 2)).toBe(false);
    expect(polygonIntersectsBox([[5, 5], [6, 5], [6, 6]], 0, 0, 2, 2)).toBe(false);
    expect(TanSipWcs).toBeDefined();
  });
});
