/** TanSipWcs behaviour that needs no reference: cards round trip, cutouts, errors. */
import { describe, expect, it } from 'vitest';
import { FitsHeader } from '../../astro/fits/index.js';
import { TanSipWcs, WcsHeaderError, WcsUnsupportedError } from '../../astro/wcs/index.js';

const S = 0.2 / 3600;

function sipWcs(): TanSipWcs {
  const n = 4;
  const a = new Float64Array(n * n);
  const b = new Float64Array(n * n);
  a[2 * n + 0] = 3e-6; // A_2_0
  a[1 * n + 1] = -1e-6; // A_1_1
  b[0 * n + 2] = 2e-6; // B_0_2
  b[3 * n + 0] = 1e-10; // B_3_0
  return new TanSipWcs({ crpix: [1000.5, 2000.5], crval: [210.5, -12.25], cd: [[-S * 0.8, S * 0.6], [S * 0.6, S * 0.8]], a: { order: 3, coeffs: a }, b: { order: 3, coeffs: b } });
}

describe('TanSipWcs', () => {
  it('maps CRPIX to CRVAL and inverts itself', () => {
    const w = sipWcs();
    const [ra, dec] = w.pixelToSky(999.5, 1999.5);
    expect(ra).toBeCloseTo(210.5, 12);
    expect(dec).toBeCloseTo(-12.25, 12);
    for (const [x, y] of [[0, 0], [2047, 4095], [-100, 5000], [1500.25, 10.75]] as const) {
      const [r, d] = w.pixelToSky(x, y);
      const [x2, y2] = w.skyToPixel(r, d);
      expect(Math.hypot(x2 - x, y2 - y)).toBeLessThan(1e-8);
    }
  });

  it('writes cards that read back to the same transform', () => {
    const w = sipWcs();
    const cards = w.toCards();
    expect(cards.find((c) => c.key === 'CTYPE1')?.value).toBe('RA---TAN-SIP');
    expect(cards.find((c) => c.key === 'A_2_0')?.value).toBe(3e-6);
    const back = TanSipWcs.fromHeader(new FitsHeader(cards));
    for (const [x, y] of [[0, 0], [500, 3000]] as const) expect(back.pixelToSky(x, y)).toEqual(w.pixelToSky(x, y));
  });

  it('shifted() gives the WCS of a cutout', () => {
    const w = sipWcs();
    const cut = w.shifted(300, 700);
    for (const [x, y] of [[0, 0], [10.5, 20.25], [99, 99]] as const) {
      const [a, b] = cut.pixelToSky(x, y);
      const [c, d] = w.pixelToSky(x + 300, y + 700);
      expect(a).toBeCloseTo(c, 12);
      expect(b).toBeCloseTo(d, 12);
    }
  });

  it('reports pixel scale and footprint', () => {
    const w = sipWcs();
    expect(w.pixelScaleArcsec()).toBeCloseTo(0.2, 12);
    const fp = w.footprint(2048, 4096);
    expect(fp).toHaveLength(4);
    expect(fp[0]).toEqual(w.pixelToSky(0, 0));
    expect(fp[2]).toEqual(w.pixelToSky(2047, 4095));
    const edges = w.footprint(2048, 4096, { edges: true });
    expect(edges[0]).toEqual(w.pixelToSky(-0.5, -0.5));
  });

  it('returns NaN for points on the far side of the sky', () => {
    const w = sipWcs();
    const [x, y] = w.skyToPixel(30.5, 12.25);
    expect(Number.isNaN(x) && Number.isNaN(y)).toBe(true);
  });

  it('rejects headers it cannot honour, naming the keyword', () => {
    const base = [
      { key: 'CTYPE1', value: 'RA---TAN' },
      { key: 'CTYPE2', value: 'DEC--TAN' },
      { key: 'CRVAL1', value: 1 },
      { key: 'CRVAL2', value: 2 },
      { key: 'CRPIX1', value: 1 },
      { key: 'CRPIX2', value: 1 },
      { key: 'CD1_1', value: -S },
      { key: 'CD2_2', value: S },
    ];
    expect(() => TanSipWcs.fromHeader(base.map((c) => (c.key === 'CTYPE1' ? { ...c, value: 'RA---SIN' } : c)))).toThrow(WcsUnsupportedError);
    expect(() => TanSipWcs.fromHeader(base.map((c) => (c.key === 'CTYPE1' ? { ...c, value: 'RA---TPV' } : c)))).toThrow(/TPV|TAN/);
    expect(() => TanSipWcs.fromHeader(base.filter((c) => c.key !== 'CRVAL2'))).toThrow(/CRVAL2/);
    expect(() => TanSipWcs.fromHeader(base.map((c) => (c.key.startsWith('CTYPE') ? { ...c, value: `${String(c.value)}-SIP` } : c)))).toThrow(WcsHeaderError);
    expect(() => TanSipWcs.fromHeader(base.map((c) => (c.key === 'CD2_2' ? { ...c, value: 0 } : c)))).toThrow(/singular/);
  });

  it('handles latitude-first axes (DEC on axis 1)', () => {
    const normal = TanSipWcs.fromHeader([
      { key: 'CTYPE1', value: 'RA---TAN' }, { key: 'CTYPE2', value: 'DEC--TAN' },
      { key: 'CRVAL1', value: 40 }, { key: 'CRVAL2', value: 20 }, { key: 'CRPIX1', value: 10 }, { key: 'CRPIX2', value: 20 },
      { key: 'CD1_1', value: -S }, { key: 'CD1_2', value: 0 }, { key: 'CD2_1', value: 0 }, { key: 'CD2_2', value: S },
    ]);
    const swapped = TanSipWcs.fromHeader([
      { key: 'CTYPE1', value: 'DEC--TAN' }, { key: 'CTYPE2', value: 'RA---TAN' },
      { key: 'CRVAL1', value: 20 }, { key: 'CRVAL2', value: 40 }, { key: 'CRPIX1', value: 10 }, { key: 'CRPIX2', value: 20 },
      { key: 'CD1_1', value: 0 }, { key: 'CD1_2', value: S }, { key: 'CD2_1', value: -S }, { key: 'CD2_2', value: 0 },
    ]);
    const [a, b] = normal.pixelToSky(100, 7);
    const [c, d] = swapped.pixelToSky(100, 7);
    expect(c).toBeCloseTo(a, 12);
    expect(d).toBeCloseTo(b, 12);
  });
});
