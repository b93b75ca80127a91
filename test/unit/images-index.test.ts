/**
 * Image collection: indexing a temp set of FITS files, Parquet round trip,
 * selection, and HEALPix coverage against healpy.query_polygon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFits, type FitsCard } from '../../astro/fits/index.js';
import { TanSipWcs } from '../../astro/wcs/index.js';
import { ang2pix, boundaries, pix2ang } from '../../astro/healpix/index.js';
import {
  indexImagesWithFailures,
  indexImages,
  isoToMjd,
  readImageIndex,
  selectImages,
  writeImageIndex,
  ImagesAbortError,
  type ImageIndexRow,
} from '../../astro/images/index.js';
import { pythonHas, runRef } from './ref/fits-python.js';

const haveHealpy = pythonHas('healpy', 'numpy');
if (!haveHealpy) console.warn('images-index (healpy comparison): skipped: /usr/bin/python3 with healpy is not available');

const S = 0.2 / 3600;

function wcsAt(ra: number, dec: number, w: number, h: number, rotDeg = 0, scale = S): TanSipWcs {
  const t = (rotDeg * Math.PI) / 180;
  return new TanSipWcs({
    crpix: [w / 2 + 0.5, h / 2 + 0.5],
    crval: [ra, dec],
    cd: [[-scale * Math.cos(t), scale * Math.sin(t)], [scale * Math.sin(t), scale * Math.cos(t)]],
    extra: [{ key: 'RADESYS', value: 'ICRS' }],
  });
}

interface Spec {
  file: string;
  ra: number;
  dec: number;
  w: number;
  h: number;
  band: string;
  visit: number;
  detector: number;
  time: FitsCard;
  mef?: boolean;
  rot?: number;
  scale?: number;
}

const specs: Spec[] = [
  { file: 'v1/d0.fits', ra: 150.0, dec: 2.0, w: 400, h: 300, band: 'r', visit: 1001, detector: 0, time: { key: 'MJD-OBS', value: 60000.1 } },
  { file: 'v1/d1.fits', ra: 150.03, dec: 2.0, w: 400, h: 300, band: 'r', visit: 1001, detector: 1, time: { key: 'MJD-OBS', value: 60000.1 } },
  { file: 'v2/calexp-d0.fits', ra: 150.01, dec: 2.01, w: 400, h: 300, band: 'g', visit: 1002, detector: 0, time: { key: 'DATE-OBS', value: '2023-02-25T12:00:00' }, mef: true, rot: 30 },
  { file: 'v3/deep/polar.fits', ra: 10, dec: 89.9, w: 500, h: 500, band: 'i', visit: 2001, detector: 5, time: { key: 'MJD-OBS', value: 60100.5 }, rot: 45 },
  { file: 'v3/wrap.fits', ra: 359.99, dec: -30, w: 600, h: 600, band: 'z', visit: 2002, detector: 7, time: { key: 'MJD-OBS', value: 60200 }, scale: 2 / 3600 },
  { file: 'v3/wide.fits', ra: 45, dec: 45, w: 1000, h: 800, band: 'y', visit: 2003, detector: 9, time: { key: 'MJD-OBS', value: 60300 }, scale: 5 / 3600, rot: -20 },
];

describe('indexImages / writeImageIndex / selectImages', () => {
  let dir = '';
  let rows: ImageIndexRow[] = [];
  let failures: { path: string; reason: string }[] = [];
  const wcsOf = new Map<string, TanSipWcs>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'images-index-'));
    for (const s of specs) {
      const wcs = wcsAt(s.ra, s.dec, s.w, s.h, s.rot ?? 0, s.scale ?? S);
      mkdirSync(join(dir, s.file, '..'), { recursive: true });
      const meta: FitsCard[] = [{ key: 'FILTER', value: s.band }, { key: 'VISIT', value: s.visit }, { key: 'DETECTOR', value: s.detector }, s.time];
      const img = new Float32Array(s.w * s.h).fill(1);
      const path = join(dir, s.file);
      wcsOf.set(path, wcs);
      if (s.mef === true) {
        await writeFits(path, [
          { data: null, header: meta },
          { name: 'IMAGE', data: img, shape: [s.w, s.h], header: wcs.toCards() },
          { name: 'MASK', data: new Int32Array(s.w * s.h), shape: [s.w, s.h], header: wcs.toCards() },
          { name: 'VARIANCE', data: img, shape: [s.w, s.h], header: wcs.toCards() },
        ]);
      } else {
        await writeFits(path, [{ data: img, shape: [s.w, s.h], header: [...meta, ...wcs.toCards()] }]);
      }
    }
    writeFileSync(join(dir, 'v1', 'broken.fits'), 'this is not FITS at all');
    await writeFits(join(dir, 'v1', 'nowcs.fits'), [{ data: new Float32Array(4), shape: [2, 2] }]);
    writeFileSync(join(dir, 'v1', 'notes.txt'), 'ignored');
    const r = await indexImagesWithFailures(dir);
    rows = r.rows;
    failures = r.failures;
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('finds every image (one row per MEF science HDU) and reports bad files with a reason', () => {
    expect(rows.length).toBe(specs.length);
    expect(failures.map((f) => f.path.split('/').slice(-2).join('/')).sort()).toEqual(['v1/broken.fits', 'v1/nowcs.fits']);
    expect(failures.find((f) => f.path.endsWith('broken.fits'))?.reason).toMatch(/not a FITS file/);
    expect(failures.find((f) => f.path.endsWith('nowcs.fits'))?.reason).toMatch(/WCS/);
  });

  it('records metadata, size, centre and corners', () => {
    for (const s of specs) {
      const path = join(dir, s.file);
      const row = rows.find((r) => r.path === path);
      expect(row, s.file).toBeDefined();
      if (row === undefined) continue;
      expect(row.band).toBe(s.band);
      expect(row.visit).toBe(s.visit);
      expect(row.detector).toBe(s.detector);
      expect([row.width, row.height]).toEqual([s.w, s.h]);
      expect(row.hdu).toBe(s.mef === true ? 1 : 0);
      expect(row.extname).toBe(s.mef === true ? 'IMAGE' : null);
      const mjd = s.time.key === 'MJD-OBS' ? (s.time.value as number) : isoToMjd(s.time.value as string);
      expect(row.mjd).toBeCloseTo(mjd as number, 9);
      const wcs = wcsOf.get(path) as TanSipWcs;
      const [ra, dec] = wcs.pixelToSky((s.w - 1) / 2, (s.h - 1) / 2);
      expect(row.ra).toBeCloseTo(ra, 9);
      expect(row.dec).toBeCloseTo(dec, 9);
      expect(row.cornerRa.length).toBe(4);
      const [c0ra, c0dec] = wcs.pixelToSky(-0.5, -0.5);
      expect(row.cornerRa[0]).toBeCloseTo(c0ra, 9);
      expect(row.cornerDec[0]).toBeCloseTo(c0dec, 9);
      expect(row.pixelScaleArcsec).toBeCloseTo((s.scale ?? S) * 3600, 9);
    }
    expect(isoToMjd('2023-02-25T12:00:00')).toBeCloseTo(60000.5, 9);
  });

  it('HEALPix order-8 coverage contains every sampled image point and only pixels that touch the image', () => {
    for (const row of rows) {
      const wcs = wcsOf.get(row.path) as TanSipWcs;
      const set = new Set(row.healpix);
      expect(row.healpixOrder).toBe(8);
      for (let i = 0; i <= 40; i++) for (let j = 0; j <= 40; j++) {
        const [ra, dec] = wcs.pixelToSky(-0.5 + (row.width * i) / 40, -0.5 + (row.height * j) / 40);
        expect(set.has(ang2pix(8, ra, dec)), `${row.path} sample ${i},${j}`).toBe(true);
      }
      for (const p of row.healpix) {
        // the pixel has a boundary point or its centre inside the image, or holds an image sample
        const pts = [...boundaries(8, p, 8), pix2ang(8, p)];
        const inside = pts.some((b) => {
          const [x, y] = wcs.skyToPixel(b.ra, b.dec);
          return x >= -0.5 && x <= row.width - 0.5 && y >= -0.5 && y <= row.height - 0.5;
        });
        let holds = false;
        for (let i = 0; i <= 20 && !holds && !inside; i++) for (let j = 0; j <= 20 && !holds; j++) {
          const [ra, dec] = wcs.pixelToSky(-0.5 + (row.width * i) / 20, -0.5 + (row.height * j) / 20);
          holds = ang2pix(8, ra, dec) === p;
        }
        expect(inside || holds, `${row.path} pixel ${p}`).toBe(true);
      }
    }
  });

  it.skipIf(!haveHealpy)('HEALPix coverage lies between healpy query_polygon strict and inclusive', () => {
    const ref = JSON.parse(runRef('fits_healpy_ref.py', [], JSON.stringify(rows.map((r) => ({ order: 8, ra: r.cornerRa, dec: r.cornerDec }))))) as { inclusive: number[]; strict: number[] }[];
    rows.forEach((row, k) => {
      const r = ref[k] as { inclusive: number[]; strict: number[] };
      const ours = new Set(row.healpix);
      for (const p of r.strict) expect(ours.has(p), `${row.path}: healpy strict pixel ${p}`).toBe(true);
      const inc = new Set(r.inclusive);
      for (const p of row.healpix) expect(inc.has(p), `${row.path}: pixel ${p} not in healpy inclusive`).toBe(true);
    });
  });

  it('round-trips through Parquet', async () => {
    const pq = join(dir, 'index.parquet');
    await writeImageIndex(rows, pq);
    const back = await readImageIndex(pq);
    expect(back).toEqual(rows);
    const empty = join(dir, 'empty.parquet');
    await writeImageIndex([], empty);
    expect(await readImageIndex(empty)).toEqual([]);
  });

  it('selects by band, visit range, time and cone', () => {
    const name = (rs: ImageIndexRow[]): string[] => rs.map((r) => r.path.slice(dir.length + 1)).sort();
    expect(name(selectImages(rows, { bands: ['r'] }))).toEqual(['v1/d0.fits', 'v1/d1.fits']);
    expect(name(selectImages(rows, { visits: [1002, 2002] }))).toEqual(['v2/calexp-d0.fits', 'v3/deep/polar.fits', 'v3/wrap.fits']);
    expect(name(selectImages(rows, { mjd: [60000, 60001], bands: ['g', 'r'] }))).toEqual(['v1/d0.fits', 'v1/d1.fits', 'v2/calexp-d0.fits']);
    // d0 spans 400 px * 0.2" = 80": its edge is 40" east/west of the centre
    const d0 = rows.find((r) => r.path.endsWith('v1/d0.fits')) as ImageIndexRow;
    expect(name(selectImages(rows, { cone: { ra: d0.ra, dec: d0.dec, radiusDeg: 1 / 3600 } }))).toEqual(['v1/d0.fits']);
    const westOfD0 = d0.ra - 50 / 3600 / Math.cos((d0.dec * Math.PI) / 180);
    expect(name(selectImages(rows, { cone: { ra: westOfD0, dec: d0.dec, radiusDeg: 9 / 3600 } }))).toEqual([]);
    expect(name(selectImages(rows, { cone: { ra: westOfD0, dec: d0.dec, radiusDeg: 11 / 3600 } }))).toEqual(['v1/d0.fits']);
    // across RA = 0 and around the pole
    expect(name(selectImages(rows, { cone: { ra: 0.05, dec: -30, radiusDeg: 0.1 } }))).toEqual(['v3/wrap.fits']);
    // the polar image sits 0.1 deg from the pole; this cone centre is 0.2 deg from it, across the pole
    expect(name(selectImages(rows, { cone: { ra: 190, dec: 89.9, radiusDeg: 0.21 } }))).toEqual(['v3/deep/polar.fits']);
    expect(name(selectImages(rows, { cone: { ra: 190, dec: 89.9, radiusDeg: 0.15 } }))).toEqual([]);
  });

  it('indexes an explicit file list and honours "all" HDUs and abort', async () => {
    const mef = join(dir, 'v2/calexp-d0.fits');
    const all = await indexImages([mef], { hdus: 'all' });
    expect(all.map((r) => r.extname)).toEqual(['IMAGE', 'MASK', 'VARIANCE']);
    const seen: string[] = [];
    await indexImages([join(dir, 'v1/broken.fits')], { onFailure: (f) => seen.push(f.reason) });
    expect(seen.length).toBe(1);
    const ac = new AbortController();
    ac.abort();
    await expect(indexImages(dir, { signal: ac.signal })).rejects.toBeInstanceOf(ImagesAbortError);
  });
});
