import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { readFits } from '../../astro/fits/index.js';
import { TanSipWcs } from '../../astro/wcs/index.js';
import {
  addStamp,
  cutStamp,
  cutStamps,
  groupStampsByObject,
  makeSyntheticImage,
  MaskBit,
  renderPsf,
  SeededRandom,
  stackStamps,
  writeStampFits,
  writeStampPng,
  type StampSourceImage,
} from '../../astro/imaging/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'imaging-stamps-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const w = 300;
const h = 260;
function source(seed: number, mjd: number, dx = 0): StampSourceImage {
  const s = makeSyntheticImage({ width: w, height: h, seed, nStars: 20, nGalaxies: 5, withLsbGalaxy: false });
  const a = { order: 2, coeffs: new Float64Array(9) };
  a.coeffs[6] = 4e-7;
  a.coeffs[4] = -2e-7;
  const b = { order: 2, coeffs: new Float64Array(9) };
  b.coeffs[2] = 3e-7;
  const scale = 0.2 / 3600;
  const th = 0.3 * (Math.PI / 180);
  const wcs = new TanSipWcs({ crpix: [150.5 + dx, 130.5], crval: [150, 2.2], cd: [[-scale * Math.cos(th), scale * Math.sin(th)], [scale * Math.sin(th), scale * Math.cos(th)]], a, b });
  return { id: `img${seed}`, image: s.image, wcs, mjd, band: 'r' };
}

describe('cutStamp', () => {
  const src = source(1, 60000);
  const rng = new SeededRandom(7);
  const positions = Array.from({ length: 40 }, () => src.wcs.pixelToSky(rng.range(20, w - 20), rng.range(20, h - 20)));

  it('maps the requested position through the stamp WCS to its fractional centre within 0.01 px', () => {
    for (const size of [32, 33]) {
      for (const [ra, dec] of positions) {
        const s = cutStamp(src, ra, dec, size)!;
        const [sx, sy] = s.wcs.skyToPixel(ra, dec);
        expect(Math.abs(sx - s.centerX)).toBeLessThan(0.01);
        expect(Math.abs(sy - s.centerY)).toBeLessThan(0.01);
        expect(Math.abs(s.centerX - (size - 1) / 2)).toBeLessThanOrEqual(0.5);
        expect(Math.abs(s.centerY - (size - 1) / 2)).toBeLessThanOrEqual(0.5);
        // Integer-aligned copy of the parent pixels.
        expect(s.data[3 * size + 5]).toBe(src.image.data[(s.y0 + 3) * w + s.x0 + 5]);
        expect(s.variance![7]).toBe(src.image.variance![s.y0 * w + s.x0 + 7]);
        expect(s.partial).toBe(false);
      }
    }
  });

  it("with resample 'sinc' puts the position on the stamp centre and shifts the light there", () => {
    const img = { width: 128, height: 128, data: new Float32Array(128 * 128) };
    const x = 60.37;
    const y = 70.81;
    addStamp(img.data, 128, 128, renderPsf({ kind: 'gaussian', fwhm: 4 }, x, y, 1e4));
    const wcs = new TanSipWcs({ crpix: [64, 64], crval: [10, 10], cd: [[-5e-5, 0], [0, 5e-5]] });
    const [ra, dec] = wcs.pixelToSky(x, y);
    const s = cutStamp({ id: 'g', image: img, wcs }, ra, dec, 25, { resample: 'sinc' })!;
    expect(s.resampled).toBe(true);
    expect(s.centerX).toBe(12);
    const [sx, sy] = s.wcs.skyToPixel(ra, dec);
    expect(Math.abs(sx - 12)).toBeLessThan(0.01);
    expect(Math.abs(sy - 12)).toBeLessThan(0.01);
    let m = 0;
    let mx = 0;
    let my = 0;
    for (let j = 0; j < 25; j++) for (let i = 0; i < 25; i++) {
      const v = s.data[j * 25 + i]!;
      m += v;
      mx += v * i;
      my += v * j;
    }
    // Lanczos-3 interpolation of a barely sampled profile is good to a few hundredths of a pixel.
    expect(Math.abs(mx / m - 12)).toBeLessThan(0.03);
    expect(Math.abs(my / m - 12)).toBeLessThan(0.03);
    expect(Math.abs(m - 1e4) / 1e4).toBeLessThan(0.002);
  });

  it('pads and flags stamps that cross the image edge, and skips those fully outside', () => {
    const [ra, dec] = src.wcs.pixelToSky(3.2, h - 5.6);
    const s = cutStamp(src, ra, dec, 32)!;
    expect(s.partial).toBe(true);
    expect(s.coverage).toBeGreaterThan(0.1);
    expect(s.coverage).toBeLessThan(0.5);
    // Stamp pixel (0, 31) is outside the parent: NaN and NO_DATA; the centre has data.
    expect(Number.isNaN(s.data[31 * 32])).toBe(true);
    expect(s.mask[31 * 32]! & MaskBit.NO_DATA).toBeTruthy();
    const c = Math.round(s.centerY) * 32 + Math.round(s.centerX);
    expect(s.mask[c]! & MaskBit.NO_DATA).toBe(0);
    expect(Number.isFinite(s.data[c]!)).toBe(true);
    const [sx, sy] = s.wcs.skyToPixel(ra, dec);
    expect(Math.abs(sx - s.centerX)).toBeLessThan(0.01);
    expect(Math.abs(sy - s.centerY)).toBeLessThan(0.01);
    const zero = cutStamp(src, ra, dec, 32, { fill: 'zero' })!;
    expect(zero.data[31 * 32]).toBe(0);
    const [ro, dO] = src.wcs.pixelToSky(-200, -200);
    expect(cutStamp(src, ro, dO, 32)).toBeUndefined();
  });

  it('writes a PNG preview that sharp decodes', async () => {
    const [ra, dec] = positions[0]!;
    const s = cutStamp(src, ra, dec, 32)!;
    const p = join(tmp, 's.png');
    await writeStampPng(p, s, { scale: 2 });
    const meta = await sharp(p).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBe(64);
    expect(meta.height).toBe(64);
    const raw = await sharp(p).raw().toBuffer();
    expect(Math.max(...raw)).toBeGreaterThan(Math.min(...raw));
  });

  it('writes a FITS cutout with IMAGE, MASK and VARIANCE and the stamp WCS', async () => {
    const [ra, dec] = positions[1]!;
    const s = cutStamp(src, ra, dec, 31)!;
    s.requestId = 'obj-1';
    const p = join(tmp, 's.fits');
    await writeStampFits(p, s);
    const hdus = await readFits(p);
    expect(hdus.map((x) => x.name ?? '')).toEqual(['', 'IMAGE', 'MASK', 'VARIANCE']);
    expect(hdus[0]!.header.getString('OBJID')).toBe('obj-1');
    expect(hdus[0]!.header.getNumber('MJD-OBS')).toBe(60000);
    expect(hdus[1]!.shape).toEqual([31, 31]);
    expect(Array.from(hdus[1]!.data as Float32Array)).toEqual(Array.from(s.data));
    expect(Array.from(hdus[2]!.data as Int32Array)).toEqual(Array.from(s.mask));
    const wcs = TanSipWcs.fromHeader(hdus[1]!.header);
    const [x, y] = wcs.skyToPixel(ra, dec);
    expect(Math.abs(x - s.centerX)).toBeLessThan(0.01);
    expect(Math.abs(y - s.centerY)).toBeLessThan(0.01);
  });

  it('cuts every covering image and stacks epochs per object in MJD order with a median', () => {
    const epochs = [source(3, 60002.5, 2), source(2, 60001.5, -3), source(4, 60003.5, 5)];
    const req = positions.slice(0, 5).map(([ra, dec], k) => ({ id: k, ra, dec }));
    const stamps = cutStamps(epochs, req, 21);
    expect(stamps.length).toBe(15);
    const groups = groupStampsByObject(stamps);
    expect(groups.size).toBe(5);
    const st = stackStamps(groups.get(2)!);
    expect(st.mjds).toEqual([60001.5, 60002.5, 60003.5]);
    expect(st.cube.length).toBe(3 * 21 * 21);
    const i = 10 * 21 + 10;
    const vals = st.stamps.map((s) => s.data[i]!).sort((a, b) => a - b);
    expect(st.median[i]).toBe(vals[1]);
    expect(st.count[i]).toBe(3);
    expect(Array.from(st.cube.subarray(21 * 21, 2 * 21 * 21))).toEqual(Array.from(st.stamps[1]!.data));
  });
});
