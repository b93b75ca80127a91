import { describe, expect, it } from 'vitest';
import {
  addStamp,
  compileDetectOptions,
  detectSources,
  estimateBackground,
  ImagingOptionError,
  makeSyntheticImage,
  MaskBit,
  renderPsf,
  SeededRandom,
  SourceFlag,
  type PsfModel,
} from '../../astro/imaging/index.js';

function starField(psf: PsfModel, seed: number): { img: ReturnType<typeof makeSyntheticImage>['image']; truth: Array<{ x: number; y: number; flux: number }> } {
  const w = 512;
  const s = makeSyntheticImage({ width: w, height: w, seed, nStars: 0, nGalaxies: 0, withLsbGalaxy: false, badColumns: 0, skyGradient: [20, 10], skyCurvature: 5 });
  const rng = new SeededRandom(seed + 100);
  const truth: Array<{ x: number; y: number; flux: number }> = [];
  // A 5x5 grid with random sub-pixel offsets; fluxes 5e4..3e5 ADU (S/N ~ 300..1500).
  for (let j = 0; j < 5; j++) {
    for (let i = 0; i < 5; i++) {
      const t = { x: 50 + i * 100 + rng.range(-0.5, 0.5), y: 50 + j * 100 + rng.range(-0.5, 0.5), flux: rng.range(5e4, 3e5) };
      truth.push(t);
      const st = renderPsf(psf, t.x, t.y, t.flux);
      // Noise of the added light: Gaussian approximation of Poisson with gain 1.
      for (let k = 0; k < st.data.length; k++) st.data[k] = st.data[k]! + Math.sqrt(Math.max(0, st.data[k]!)) * rng.normal();
      addStamp(s.image.data, w, w, st);
      const vs = renderPsf(psf, t.x, t.y, t.flux);
      addStamp(s.image.variance, w, w, vs);
    }
  }
  return { img: s.image, truth };
}

describe('compileDetectOptions', () => {
  it('fills defaults and rejects bad values', () => {
    expect(compileDetectOptions()).toMatchObject({ thresholdSigma: 5, psfFwhm: 3, minArea: 5, apertureRadii: [3, 6, 9], windowed: true });
    expect(compileDetectOptions({ psf: { kind: 'moffat', fwhm: 4, beta: 3 } }).psfFwhm).toBe(4);
    expect(() => compileDetectOptions({ thresholdSigma: 0 })).toThrow(ImagingOptionError);
    expect(() => compileDetectOptions({ apertureRadii: [] })).toThrow(ImagingOptionError);
    expect(() => compileDetectOptions({ minArea: 0.5 })).toThrow(ImagingOptionError);
  });
});

describe('detectSources', () => {
  for (const psf of [{ kind: 'gaussian', fwhm: 3.2 }, { kind: 'moffat', fwhm: 3.5, beta: 3.5 }] as PsfModel[]) {
    it(`recovers bright ${psf.kind} stars: centroids within 0.05 px, fluxes within errors`, () => {
      const { img, truth } = starField(psf, psf.kind === 'gaussian' ? 21 : 22);
      const bg = estimateBackground(img);
      const det = detectSources(img, bg, { psf, apertureRadii: [4, 15] });
      let pullsOk = 0;
      for (const t of truth) {
        const m = det.sources.find((s) => Math.hypot(s.x - t.x, s.y - t.y) < 1.5);
        expect(m, `star at ${t.x.toFixed(2)},${t.y.toFixed(2)}`).toBeDefined();
        expect(Math.hypot(m!.x - t.x, m!.y - t.y)).toBeLessThan(0.05);
        expect(m!.flags & SourceFlag.WINDOW_FAILED).toBe(0);
        const pull = (m!.psfFlux - t.flux) / m!.psfFluxErr;
        expect(Math.abs(pull)).toBeLessThan(5);
        if (Math.abs(pull) < 3) pullsOk++;
        // The 15-px aperture holds all but the far wings (< 0.1% for these PSFs): within its errors.
        expect(m!.apertureFluxErr[1]!).toBeGreaterThan(0);
        expect(Math.abs(m!.apertureFlux[1]! - t.flux)).toBeLessThan(4 * m!.apertureFluxErr[1]! + 0.002 * t.flux);
      }
      expect(pullsOk).toBeGreaterThanOrEqual(23);
      // Nothing spurious at 5σ on a clean field.
      expect(det.sources.length).toBeLessThanOrEqual(truth.length + 2);
    });
  }

  it('flags edge, saturated and masked sources and gives ra/dec through a WCS', () => {
    const w = 256;
    const s = makeSyntheticImage({ width: w, height: w, seed: 4, nStars: 0, nGalaxies: 0, withLsbGalaxy: false, badColumns: 0 });
    const psf: PsfModel = { kind: 'gaussian', fwhm: 3 };
    addStamp(s.image.data, w, w, renderPsf(psf, 1.2, 120.3, 1e5)); // on the edge
    addStamp(s.image.data, w, w, renderPsf(psf, 128.4, 128.6, 2e6)); // saturated core
    addStamp(s.image.data, w, w, renderPsf(psf, 60.2, 200.1, 1e5)); // with a bad pixel
    for (let i = 0; i < w * w; i++) {
      if (s.image.data[i]! > 60000) {
        s.image.data[i] = 60000;
        s.image.mask[i] = s.image.mask[i]! | MaskBit.SAT;
      }
    }
    s.image.mask[200 * w + 62] = MaskBit.BAD;
    const bg = estimateBackground(s.image);
    const wcs = { pixelToSky: (x: number, y: number): [number, number] => [10 + x / 1000, -5 + y / 1000], skyToPixel: (ra: number, dec: number): [number, number] => [(ra - 10) * 1000, (dec + 5) * 1000] };
    const det = detectSources(s.image, bg, { psf, wcs });
    const near = (x: number, y: number) => det.sources.find((d) => Math.hypot(d.x - x, d.y - y) < 3);
    expect(near(1.2, 120.3)!.flags & SourceFlag.EDGE).toBeTruthy();
    expect(near(128.4, 128.6)!.flags & SourceFlag.SATURATED).toBeTruthy();
    const masked = near(60.2, 200.1)!;
    expect(masked.flags & SourceFlag.MASKED).toBeTruthy();
    expect(masked.ra!).toBeCloseTo(10 + masked.x / 1000, 9);
    expect(masked.dec!).toBeCloseTo(-5 + masked.y / 1000, 9);
    expect(det.segmentation[Math.round(masked.y) * w + Math.round(masked.x)]).toBe(masked.id);
  });
});
