import { describe, expect, it } from 'vitest';
import { FitsHeader } from '../../astro/fits/index.js';
import { TanSipWcs } from '../../astro/wcs/index.js';
import {
  detectSources,
  estimateBackground,
  injectionRecovery,
  injectSources,
  makeSyntheticImage,
  MaskBit,
  ZeroPointError,
  zeroPointFromHeader,
  type InjectionSource,
  type PsfModel,
} from '../../astro/imaging/index.js';

const scale = 0.2 / 3600;
function wcsFor(w: number, h: number): TanSipWcs {
  const a = { order: 2, coeffs: new Float64Array(9) };
  a.coeffs[6] = 3e-7;
  const b = { order: 2, coeffs: new Float64Array(9) };
  b.coeffs[2] = -2e-7;
  return new TanSipWcs({ crpix: [w / 2 + 0.5, h / 2 + 0.5], crval: [62, -37], cd: [[-scale, 0], [0, scale]], a, b });
}

describe('zero points', () => {
  it('reads MAGZERO, FLUXMAG0 and PHOTCALIB consistently', () => {
    expect(zeroPointFromHeader(new FitsHeader([{ key: 'MAGZERO', value: 27.5 }]))).toEqual({ zeroPoint: 27.5, source: 'MAGZERO' });
    const f = zeroPointFromHeader(new FitsHeader([{ key: 'FLUXMAG0', value: 10 ** (0.4 * 27.5) }]));
    expect(f.source).toBe('FLUXMAG0');
    expect(f.zeroPoint).toBeCloseTo(27.5, 10);
    // PHOTCALIB nJy/ADU: an AB mag-31.4 source is 1 nJy.
    const p = zeroPointFromHeader(new FitsHeader([{ key: 'PHOTCALIB', value: 10 ** (-0.4 * (27.5 - 31.4)) }]));
    expect(p.source).toBe('PHOTCALIB');
    expect(p.zeroPoint).toBeCloseTo(27.5, 10);
    expect(() => zeroPointFromHeader(new FitsHeader([]))).toThrow(ZeroPointError);
  });
});

describe('injectSources', () => {
  const w = 384;
  const base = makeSyntheticImage({ width: w, height: w, seed: 9, nStars: 0, nGalaxies: 0, withLsbGalaxy: false, badColumns: 0, noise: false });
  const wcs = wcsFor(w, w);
  const at = (x: number, y: number): [number, number] => wcs.pixelToSky(x, y);
  const sources: InjectionSource[] = [
    { kind: 'star', ra: at(80.3, 90.7)[0], dec: at(80.3, 90.7)[1], mag: 20, id: 'g' },
    { kind: 'star', ra: at(300.1, 80.4)[0], dec: at(300.1, 80.4)[1], mag: 19.5, id: 'm' },
    { kind: 'sersic', ra: at(100.5, 280.2)[0], dec: at(100.5, 280.2)[1], mag: 19, n: 1, rEffArcsec: 2, axisRatio: 0.5, positionAngleDeg: 40, id: 'exp' },
    { kind: 'sersic', ra: at(290.2, 290.9)[0], dec: at(290.2, 290.9)[1], mag: 19, n: 4, rEffArcsec: 1, axisRatio: 0.8, positionAngleDeg: 10, id: 'dev' },
  ];

  for (const psf of [{ kind: 'gaussian', fwhm: 3 }, { kind: 'moffat', fwhm: 3.5, beta: 3 }] as PsfModel[]) {
    it(`adds exactly the catalog counts (${psf.kind} PSF), updates variance and sets INJECTED`, () => {
      const header = new FitsHeader([{ key: 'MAGZERO', value: 28 }, { key: 'GAIN', value: 2 }]);
      for (const src of sources) {
        const r = injectSources(base.image, wcs, [src], { psf, header });
        expect(r.zeroPointSource).toBe('MAGZERO');
        expect(r.gain).toBe(2);
        const rec = r.injected[0]!;
        const expected = 10 ** (-0.4 * (src.mag - 28));
        expect(rec.flux).toBeCloseTo(expected, 6);
        let added = 0;
        let addedVar = 0;
        for (let i = 0; i < w * w; i++) {
          added += r.image.data[i]! - base.image.data[i]!;
          addedVar += r.image.variance![i]! - base.image.variance[i]!;
        }
        expect(Math.abs(added - expected) / expected).toBeLessThan(0.005);
        expect(Math.abs(addedVar - expected / 2) / (expected / 2)).toBeLessThan(0.005);
        const c = Math.round(rec.y) * w + Math.round(rec.x);
        expect(r.image.mask[c]! & MaskBit.INJECTED).toBeTruthy();
        expect(r.image.mask[5 * w + 200]! & MaskBit.INJECTED).toBe(0);
        // The input is untouched unless inPlace.
        expect(base.image.mask[c]! & MaskBit.INJECTED).toBe(0);
      }
    });
  }

  it('refuses to guess a zero point', () => {
    expect(() => injectSources(base.image, wcs, sources, { psf: { kind: 'gaussian', fwhm: 3 } })).toThrow(ZeroPointError);
  });

  it('is deterministic with seeded Poisson noise and recovers the flux within errors', () => {
    const noisy = makeSyntheticImage({ width: w, height: w, seed: 10, nStars: 0, nGalaxies: 0, withLsbGalaxy: false, badColumns: 0 });
    const psf: PsfModel = { kind: 'moffat', fwhm: 3.5, beta: 3 };
    const stars: InjectionSource[] = [];
    for (let j = 0; j < 4; j++) for (let i = 0; i < 4; i++) {
      const [ra, dec] = wcs.pixelToSky(50 + i * 95 + 0.3 * j, 50 + j * 95 + 0.2 * i);
      stars.push({ kind: 'star', ra, dec, mag: 17.5 + 0.2 * i });
    }
    const a = injectSources(noisy.image, wcs, stars, { psf, zeroPoint: 28, poisson: true, seed: 5 });
    const b = injectSources(noisy.image, wcs, stars, { psf, zeroPoint: 28, poisson: true, seed: 5 });
    expect(Buffer.from(a.image.data.buffer).equals(Buffer.from(b.image.data.buffer))).toBe(true);
    const det = detectSources(a.image, estimateBackground(a.image), { psf, gain: 1 });
    let within3 = 0;
    for (const rec of a.injected) {
      const m = det.sources.find((s) => Math.hypot(s.x - rec.x, s.y - rec.y) < 1);
      expect(m).toBeDefined();
      const pull = (m!.psfFlux - rec.flux) / m!.psfFluxErr;
      expect(Math.abs(pull)).toBeLessThan(5);
      if (Math.abs(pull) < 3) within3++;
    }
    expect(within3).toBeGreaterThanOrEqual(15);
  });
});

describe('injectionRecovery', () => {
  it('gives full completeness for bright stars, falling at the faint end, with unbiased fluxes', () => {
    const w = 512;
    const psf: PsfModel = { kind: 'moffat', fwhm: 3.5, beta: 3.5 };
    const images = [1].map((seed) => {
      const s = makeSyntheticImage({ width: w, height: w, seed, withLsbGalaxy: false, nStars: 30, nGalaxies: 15, psf });
      return { image: s.image, wcs: wcsFor(w, w), zeroPoint: s.zeroPoint, gain: 1 };
    });
    const sources: InjectionSource[] = [];
    for (let k = 0; k < 120; k++) {
      const x = 20 + (k % 12) * 40 + 7.3;
      const y = 20 + Math.floor(k / 12) * 47 + 3.1;
      const [ra, dec] = wcsFor(w, w).pixelToSky(x, y);
      sources.push({ kind: 'star', ra, dec, mag: 16 + (k % 8) * 1 });
    }
    // Mag 20 is S/N ~ 9 in these images (zero point 28, 32 ADU noise), mag 22 ~ 1.5.
    const res = injectionRecovery(images, sources, { psf, magBins: [16, 18, 20, 21, 22, 24], poisson: true });
    const [b16, b18, b20, , b22] = res.bins;
    expect(b16!.nInjected).toBeGreaterThan(25);
    expect(b16!.completeness).toBeGreaterThan(0.9);
    expect(b18!.completeness).toBeGreaterThan(0.9);
    expect(b20!.completeness).toBeGreaterThan(0.6);
    expect(b22!.completeness).toBeLessThan(0.3);
    expect(Math.abs(b16!.medianFluxRatio - 1)).toBeLessThan(0.02);
    expect(Math.abs(b18!.medianFluxRatio - 1)).toBeLessThan(0.03);
    expect(b16!.pullSigma).toBeGreaterThan(0.5);
    expect(b16!.pullSigma).toBeLessThan(2);
    expect(res.matches.length).toBe(res.bins.reduce((s, b) => s + b.nInjected, 0));
  });
});
