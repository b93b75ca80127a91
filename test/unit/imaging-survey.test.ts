import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFits } from '../../astro/fits/index.js';
import { TanSipWcs } from '../../astro/wcs/index.js';
import {
  cutStampsFromFiles,
  generateImageSurvey,
  ImagingOptionError,
  MaskBit,
  StampImageCache,
  type ImageSurveyResult,
} from '../../astro/imaging/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'imaging-survey-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const opts = { visits: 2, detectors: 2, bands: ['g', 'r'], width: 192, height: 160, seed: 42, lsbRadiusPx: 30, center: { ra: 62, dec: -37 } };

describe('generateImageSurvey', () => {
  let a: ImageSurveyResult;
  beforeAll(async () => {
    a = await generateImageSurvey(join(tmp, 'a'), opts);
  });

  it('writes calexp-like FITS with metadata, planes and a TAN-SIP WCS', async () => {
    expect(a.images.length).toBe(8);
    const e = a.images.find((i) => i.visit === 1 && i.detector === 0 && i.band === 'r')!;
    const hdus = await readFits(e.path);
    expect(hdus.map((h) => h.name ?? '')).toEqual(['', 'IMAGE', 'MASK', 'VARIANCE']);
    const p = hdus[0]!.header;
    expect(p.getNumber('VISIT')).toBe(1);
    expect(p.getNumber('DETECTOR')).toBe(0);
    expect(p.getString('FILTER')).toBe('r');
    expect(p.getNumber('MJD-OBS')).toBeCloseTo(e.mjd, 9);
    for (const k of ['EXPTIME', 'MAGZERO', 'GAIN']) expect(p.has(k)).toBe(true);
    expect(hdus[1]!.data).toBeInstanceOf(Float32Array);
    expect(hdus[2]!.data).toBeInstanceOf(Int32Array);
    expect(hdus[3]!.data).toBeInstanceOf(Float32Array);
    expect(hdus[1]!.shape).toEqual([192, 160]);
    expect(hdus[1]!.header.getString('CTYPE1')).toBe('RA---TAN-SIP');
    const wcs = TanSipWcs.fromHeader(hdus[1]!.header);
    const corner = wcs.pixelToSky(0, 0);
    expect(corner[0]).toBeCloseTo(e.footprint[0]![0], 9);
    const mask = hdus[2]!.data as Int32Array;
    expect(mask.some((m) => (m & MaskBit.EDGE) !== 0)).toBe(true);
    expect(mask.some((m) => (m & MaskBit.BAD) !== 0)).toBe(true);
    // Pixel noise around the documented ~32 ADU in r.
    expect(e.skyNoise).toBeGreaterThan(28);
    expect(e.skyNoise).toBeLessThan(36);
  });

  it('writes the true sky and LSB galaxy, a truth catalog and an index', async () => {
    const e = a.images.find((i) => i.detector === 0)!;
    const truth = await readFits(e.truthPath!);
    expect(truth.map((h) => h.name ?? '')).toEqual(['', 'SKY', 'LSB']);
    const sky = truth[1]!.data as Float32Array;
    const lsb = truth[2]!.data as Float32Array;
    expect(Math.min(...sky)).toBeGreaterThan(300);
    expect(Math.max(...lsb)).toBeGreaterThan(0);
    const cat = JSON.parse(readFileSync(a.truthCatalogPath, 'utf8')) as { sources: Array<{ kind: string; mags: Record<string, number> }> };
    expect(cat.sources.filter((s) => s.kind === 'lsb').length).toBe(1);
    expect(cat.sources.filter((s) => s.kind === 'star').length).toBeGreaterThan(10);
    expect(Object.keys(cat.sources[0]!.mags).sort()).toEqual(['g', 'r']);
    const index = JSON.parse(readFileSync(a.indexPath, 'utf8')) as { images: unknown[] };
    expect(index.images.length).toBe(8);
  });

  it('is deterministic per seed', async () => {
    const b = await generateImageSurvey(join(tmp, 'b'), opts);
    const same = a.images.find((i) => i.visit === 0 && i.detector === 1 && i.band === 'r')!;
    const other = b.images.find((i) => i.visit === 0 && i.detector === 1 && i.band === 'r')!;
    const [ha, hb] = await Promise.all([readFits(same.path, { hdus: ['IMAGE'] }), readFits(other.path, { hdus: ['IMAGE'] })]);
    expect(Buffer.from((ha[0]!.data as Float32Array).buffer).equals(Buffer.from((hb[0]!.data as Float32Array).buffer))).toBe(true);
    expect(readFileSync(b.truthCatalogPath, 'utf8')).toBe(readFileSync(a.truthCatalogPath, 'utf8'));
    const c = await generateImageSurvey(join(tmp, 'c'), { ...opts, seed: 43, visits: 1 });
    const hc = await readFits(c.images.find((i) => i.detector === 1 && i.band === 'r')!.path, { hdus: ['IMAGE'] });
    expect(Buffer.from((hc[0]!.data as Float32Array).buffer).equals(Buffer.from((ha[0]!.data as Float32Array).buffer))).toBe(false);
  });

  it('rejects bad options', async () => {
    await expect(generateImageSurvey(join(tmp, 'x'), { visits: 0 })).rejects.toThrow(ImagingOptionError);
  });

  it('cuts stamps from the files, whole-image and section paths alike', async () => {
    const files = a.images.map((i) => ({ path: i.path }));
    const truth = JSON.parse(readFileSync(a.truthCatalogPath, 'utf8')) as { sources: Array<{ id: number; ra: number; dec: number }> };
    const req = truth.sources.slice(0, 60).map((s) => ({ id: s.id, ra: s.ra, dec: s.dec }));
    const whole = await cutStampsFromFiles(files, req, 24, { wholeImageThreshold: 1, cache: new StampImageCache() });
    const sections = await cutStampsFromFiles(files, req, 24, { wholeImageThreshold: 1e9 });
    expect(whole.length).toBeGreaterThan(10);
    expect(sections.length).toBe(whole.length);
    for (let k = 0; k < whole.length; k++) {
      const s = whole[k]!;
      const t = sections[k]!;
      expect(t.requestId).toBe(s.requestId);
      expect([t.x0, t.y0, t.partial]).toEqual([s.x0, s.y0, s.partial]);
      expect(Array.from(t.mask)).toEqual(Array.from(s.mask));
      expect(Array.from(t.data).map((v) => (Number.isNaN(v) ? -1 : v))).toEqual(Array.from(s.data).map((v) => (Number.isNaN(v) ? -1 : v)));
      const [x, y] = s.wcs.skyToPixel(s.ra, s.dec);
      expect(Math.abs(x - s.centerX)).toBeLessThan(0.01);
      expect(Math.abs(y - s.centerY)).toBeLessThan(0.01);
      const [x2, y2] = t.wcs.skyToPixel(t.ra, t.dec);
      expect(Math.abs(x2 - t.centerX)).toBeLessThan(0.01);
      expect(Math.abs(y2 - t.centerY)).toBeLessThan(0.01);
      expect(s.mjd).toBeGreaterThan(59999);
      expect(s.band === 'g' || s.band === 'r').toBe(true);
    }
    expect(whole.some((s) => s.partial)).toBe(true);
  });
});
