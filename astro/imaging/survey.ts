/**
 * Synthetic image survey: calexp-like multi-extension FITS files (primary metadata + IMAGE
 * float32, MASK int32, VARIANCE float32, TAN-SIP WCS in every extension) for visits ×
 * detectors × bands, with stars (Moffat PSF), Sérsic galaxies, one large faint LSB galaxy,
 * a curved sky gradient, noise and mask bits; plus truth files (true sky and true LSB
 * galaxy per image), a truth catalog and an image index (JSON). Deterministic per seed.
 *
 * Layout under outDir:
 *   calexp/visit<V>-det<D>-<band>.fits      the images
 *   truth/visit<V>-det<D>-<band>-truth.fits SKY and LSB extensions (float32, ADU)
 *   truth-catalog.json                       stars and galaxies with ra/dec and per-band mags
 *   images.json                              one entry per image (paths, visit, detector, band, MJD, footprint...)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FitsHeader, writeFits, type FitsCard } from '../fits/index.js';
import { TanSipWcs } from '../wcs/index.js';
import { ImagingIoError, ImagingOptionError, throwIfAborted } from './errors.js';
import { SeededRandom } from './rng.js';
import { makeSyntheticImage, magToCounts, type SyntheticGalaxy, type SyntheticStar } from './synthetic.js';
import type { KernelRunOptions } from './types.js';

export interface ImageSurveyOptions extends KernelRunOptions {
  /** @default 2 */
  visits?: number;
  /** @default 1 */
  detectors?: number;
  /** @default ['r'] */
  bands?: readonly string[];
  /** @default 2048 */
  width?: number;
  /** @default 2048 */
  height?: number;
  /** @default 0.2 */
  pixelScaleArcsec?: number;
  /** Field centre (deg). @default { ra: 62, dec: -37 } */
  center?: { ra: number; dec: number };
  /** @default 1 */
  seed?: number;
  /** @default true */
  withLsbGalaxy?: boolean;
  /** LSB galaxy half-light radius (pixels). @default 0.15 × min(width, height) (300 px at 2048) */
  lsbRadiusPx?: number;
  /** LSB galaxy central surface brightness in units of the pixel noise. @default 0.3 */
  lsbCentralSigma?: number;
  /** Stars per detector area. @default width·height/4000 */
  starsPerDetector?: number;
  /** Galaxies per detector area. @default width·height/8000 */
  galaxiesPerDetector?: number;
  /** Dither between visits (pixels, uniform ±). @default 50 */
  ditherPx?: number;
  /** SIP quadratic coefficient (A_2_0 = B_0_2); gives ~k·r² pixels of distortion. @default 2e-8 */
  sipCoefficient?: number;
  /** Write the truth images (SKY, LSB). @default true */
  writeTruthImages?: boolean;
}

export interface SurveyImageEntry {
  path: string;
  truthPath?: string;
  visit: number;
  detector: number;
  band: string;
  mjd: number;
  exptime: number;
  zeroPoint: number;
  gain: number;
  psfFwhmPx: number;
  psfBeta: number;
  skyNoise: number;
  width: number;
  height: number;
  /** Corners [ra, dec] (deg) in astropy calc_footprint order. */
  footprint: [number, number][];
}

export interface TruthSource {
  id: number;
  kind: 'star' | 'galaxy' | 'lsb';
  ra: number;
  dec: number;
  /** AB-like magnitude per band. */
  mags: Record<string, number>;
  n?: number;
  rEffArcsec?: number;
  axisRatio?: number;
  /** Degrees east of north. */
  positionAngleDeg?: number;
}

export interface ImageSurveyResult {
  outDir: string;
  images: SurveyImageEntry[];
  truth: TruthSource[];
  indexPath: string;
  truthCatalogPath: string;
}

const BAND_ZP: Record<string, number> = { u: 26.5, g: 28.3, r: 28.1, i: 27.8, z: 27.4, y: 26.6 };
const BAND_SKY: Record<string, number> = { u: 400, g: 700, r: 1000, i: 1300, z: 1600, y: 1800 };
const BAND_COLOR: Record<string, number> = { u: 1.2, g: 0.5, r: 0, i: -0.2, z: -0.3, y: -0.35 };

function compile(opts: ImageSurveyOptions): Required<Omit<ImageSurveyOptions, 'signal' | 'onProgress' | 'lsbRadiusPx' | 'starsPerDetector' | 'galaxiesPerDetector'>> & {
  lsbRadiusPx: number;
  starsPerDetector: number;
  galaxiesPerDetector: number;
} {
  const width = opts.width ?? 2048;
  const height = opts.height ?? 2048;
  const o = {
    visits: opts.visits ?? 2,
    detectors: opts.detectors ?? 1,
    bands: opts.bands ?? ['r'],
    width,
    height,
    pixelScaleArcsec: opts.pixelScaleArcsec ?? 0.2,
    center: opts.center ?? { ra: 62, dec: -37 },
    seed: opts.seed ?? 1,
    withLsbGalaxy: opts.withLsbGalaxy ?? true,
    lsbRadiusPx: opts.lsbRadiusPx ?? 0.15 * Math.min(width, height),
    lsbCentralSigma: opts.lsbCentralSigma ?? 0.3,
    starsPerDetector: opts.starsPerDetector ?? Math.round((width * height) / 4000),
    galaxiesPerDetector: opts.galaxiesPerDetector ?? Math.round((width * height) / 8000),
    ditherPx: opts.ditherPx ?? 50,
    sipCoefficient: opts.sipCoefficient ?? 2e-8,
    writeTruthImages: opts.writeTruthImages ?? true,
  };
  for (const k of ['visits', 'detectors', 'width', 'height'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new ImagingOptionError(k, o[k], 'must be a positive integer');
  }
  if (o.width < 64 || o.height < 64) throw new ImagingOptionError('width/height', [o.width, o.height], 'must be >= 64');
  if (o.bands.length === 0) throw new ImagingOptionError('bands', o.bands, 'need at least one band');
  if (!(o.pixelScaleArcsec > 0)) throw new ImagingOptionError('pixelScaleArcsec', o.pixelScaleArcsec, 'must be > 0');
  return o;
}

/** Generates the survey; see the module comment for the layout. */
export async function generateImageSurvey(outDir: string, opts: ImageSurveyOptions = {}): Promise<ImageSurveyResult> {
  const o = compile(opts);
  const rng = new SeededRandom(o.seed);
  const scaleDeg = o.pixelScaleArcsec / 3600;
  const gap = 60;
  const cols = Math.ceil(Math.sqrt(o.detectors));
  const rows = Math.ceil(o.detectors / cols);
  // Focal plane: detector d's pixel (0,0) sits at (fx, fy) pixels from the boresight.
  const detOrigin = (d: number): [number, number] => {
    const c = d % cols;
    const r = Math.floor(d / cols);
    return [(c - cols / 2) * (o.width + gap) + gap / 2, (r - rows / 2) * (o.height + gap) + gap / 2];
  };
  const cosDec = Math.cos((o.center.dec * Math.PI) / 180);
  const fieldHalfX = (cols * (o.width + gap)) / 2 + 2 * o.ditherPx + 40;
  const fieldHalfY = (rows * (o.height + gap)) / 2 + 2 * o.ditherPx + 40;
  const baseWcs = new TanSipWcs({ crpix: [1, 1], crval: [o.center.ra, o.center.dec], cd: [[-scaleDeg, 0], [0, scaleDeg]] });

  // Truth catalog in the sky, drawn once over the whole field.
  const truth: TruthSource[] = [];
  const area = (4 * fieldHalfX * fieldHalfY) / (o.width * o.height);
  const nStars = Math.round(o.starsPerDetector * area);
  const nGal = Math.round(o.galaxiesPerDetector * area);
  for (let i = 0; i < nStars; i++) {
    const [ra, dec] = baseWcs.pixelToSky(rng.range(-fieldHalfX, fieldHalfX), rng.range(-fieldHalfY, fieldHalfY));
    const a = 10 ** (0.3 * 16);
    const b = 10 ** (0.3 * 23.5);
    const r = Math.log10(a + rng.uniform() * (b - a)) / 0.3;
    const color = rng.range(-0.3, 1.2);
    const mags: Record<string, number> = {};
    for (const band of o.bands) mags[band] = r + color * ((BAND_COLOR[band] ?? 0) + 0.3) - 0.3 * color;
    truth.push({ id: truth.length + 1, kind: 'star', ra, dec, mags });
  }
  for (let i = 0; i < nGal; i++) {
    const [ra, dec] = baseWcs.pixelToSky(rng.range(-fieldHalfX, fieldHalfX), rng.range(-fieldHalfY, fieldHalfY));
    const r = rng.range(18, 24.5);
    const mags: Record<string, number> = {};
    for (const band of o.bands) mags[band] = r + (BAND_COLOR[band] ?? 0) * 0.8;
    const n = rng.uniform() < 0.6 ? rng.range(0.8, 1.5) : rng.range(2.5, 4);
    truth.push({
      id: truth.length + 1,
      kind: 'galaxy',
      ra,
      dec,
      mags,
      n,
      rEffArcsec: rng.range(1.5, 6) * 10 ** (-0.1 * (r - 18)) * o.pixelScaleArcsec,
      axisRatio: rng.range(0.3, 1),
      positionAngleDeg: rng.range(0, 180),
    });
  }
  // The LSB galaxy sits at the centre of detector 0 of the undithered pointing.
  let lsb: TruthSource | undefined;
  if (o.withLsbGalaxy) {
    const [fx, fy] = detOrigin(0);
    const [ra, dec] = baseWcs.pixelToSky(fx + (o.width - 1) / 2, fy + (o.height - 1) / 2);
    lsb = { id: truth.length + 1, kind: 'lsb', ra, dec, mags: {}, n: 1, rEffArcsec: o.lsbRadiusPx * o.pixelScaleArcsec, axisRatio: 0.8, positionAngleDeg: 30 };
    truth.push(lsb);
  }

  await mkdir(join(outDir, 'calexp'), { recursive: true });
  if (o.writeTruthImages) await mkdir(join(outDir, 'truth'), { recursive: true });
  const images: SurveyImageEntry[] = [];
  const total = o.visits * o.detectors * o.bands.length;
  let done = 0;
  for (let v = 0; v < o.visits; v++) {
    const dither: [number, number] = [rng.range(-o.ditherPx, o.ditherPx), rng.range(-o.ditherPx, o.ditherPx)];
    const rotDeg = rng.range(-0.5, 0.5);
    const mjdBase = 60000 + v * 1.013 + rng.range(0, 0.2);
    const [bra, bdec] = baseWcs.pixelToSky(dither[0], dither[1]);
    for (let bi = 0; bi < o.bands.length; bi++) {
      const band = o.bands[bi]!;
      const fwhm = rng.range(3.2, 4.6);
      const beta = 3.5;
      const mjd = mjdBase + bi * 0.01;
      for (let d = 0; d < o.detectors; d++) {
        throwIfAborted(opts.signal, 'image survey');
        const seed = (o.seed * 1_000_003 + v * 10_007 + bi * 101 + d) >>> 0;
        const irng = new SeededRandom(seed);
        const [fx, fy] = detOrigin(d);
        const th = (rotDeg * Math.PI) / 180;
        const cd: [[number, number], [number, number]] = [
          [-scaleDeg * Math.cos(th), scaleDeg * Math.sin(th)],
          [scaleDeg * Math.sin(th), scaleDeg * Math.cos(th)],
        ];
        // Boresight at detector pixel (-fx, -fy), 1-based CRPIX.
        const k = o.sipCoefficient;
        const sip = { order: 2, coeffs: new Float64Array(9) };
        sip.coeffs[2 * 3 + 0] = k;
        const sipB = { order: 2, coeffs: new Float64Array(9) };
        sipB.coeffs[0 * 3 + 2] = k;
        const wcs = new TanSipWcs({ crpix: [-fx + 1, -fy + 1], crval: [bra, bdec], cd, a: sip, b: sipB, extra: [{ key: 'RADESYS', value: 'ICRS' }] });
        const zp = (BAND_ZP[band] ?? 28) + irng.range(-0.05, 0.05);
        const skyLevel = (BAND_SKY[band] ?? 1000) * irng.range(0.9, 1.1);
        const margin = 30;
        const stars: SyntheticStar[] = [];
        const galaxies: SyntheticGalaxy[] = [];
        for (const t of truth) {
          if (t.kind === 'lsb') continue;
          const [x, y] = wcs.skyToPixel(t.ra, t.dec);
          if (!(x > -margin && y > -margin && x < o.width + margin && y < o.height + margin)) continue;
          const mag = t.mags[band]!;
          const flux = magToCounts(mag, zp);
          if (t.kind === 'star') stars.push({ x, y, mag, flux });
          else {
            // PA east of north → angle from +x: north is +y, east is −x for this CD.
            const thetaDeg = 90 + (t.positionAngleDeg ?? 0) + rotDeg;
            galaxies.push({ x, y, mag, flux, n: t.n ?? 1, rEffPx: (t.rEffArcsec ?? 1) / o.pixelScaleArcsec, axisRatio: t.axisRatio ?? 1, thetaDeg });
          }
        }
        const synth = {
          width: o.width,
          height: o.height,
          seed,
          skyLevel,
          skyGradient: [irng.range(-60, 60), irng.range(-60, 60)] as [number, number],
          skyCurvature: irng.range(5, 25),
          gain: 1,
          readNoise: 5,
          zeroPoint: zp,
          psf: { kind: 'moffat' as const, fwhm, beta },
          starList: stars,
          galaxyList: galaxies,
          withLsbGalaxy: false,
          badColumns: 1,
        };
        let lsbOpt = {};
        if (lsb !== undefined) {
          const [lx, ly] = wcs.skyToPixel(lsb.ra, lsb.dec);
          if (lx > -3 * o.lsbRadiusPx && ly > -3 * o.lsbRadiusPx && lx < o.width + 3 * o.lsbRadiusPx && ly < o.height + 3 * o.lsbRadiusPx) {
            lsbOpt = { withLsbGalaxy: true, lsbGalaxy: { x: lx, y: ly, n: 1, rEffPx: o.lsbRadiusPx, axisRatio: 0.8, thetaDeg: 90 + 30 + rotDeg, centralSigma: o.lsbCentralSigma } };
          }
        }
        const img = makeSyntheticImage({ ...synth, ...lsbOpt });
        if (lsb !== undefined && img.lsbGalaxy !== undefined) lsb.mags[band] = img.lsbGalaxy.mag;
        const name = `visit${String(v).padStart(4, '0')}-det${String(d).padStart(3, '0')}-${band}`;
        const path = join(outDir, 'calexp', `${name}.fits`);
        const primary: FitsCard[] = [
          { key: 'VISIT', value: v },
          { key: 'DETECTOR', value: d },
          { key: 'FILTER', value: band },
          { key: 'BAND', value: band },
          { key: 'MJD-OBS', value: mjd, comment: 'exposure start (MJD, TAI)' },
          { key: 'EXPTIME', value: 30, comment: 's' },
          { key: 'MAGZERO', value: zp, comment: 'mag of 1 ADU: m = MAGZERO - 2.5 log10(counts)' },
          { key: 'GAIN', value: 1, comment: 'e-/ADU' },
          { key: 'SATURATE', value: 60000 },
          { key: 'PSFFWHM', value: fwhm, comment: 'Moffat FWHM (pixels)' },
          { key: 'PSFBETA', value: beta },
          { key: 'SKYNOISE', value: img.skyNoise, comment: 'sky pixel noise (ADU)' },
          { key: 'ORIGIN', value: 'ubatch synthetic survey' },
        ];
        const wcsCards = wcs.toCards();
        const ext = (extname: string): FitsHeader => new FitsHeader([...wcsCards, { key: 'MJD-OBS', value: mjd }, { key: 'BAND', value: band }, { key: 'EXTTYPE', value: extname }]);
        const maskCards = ext('MASK');
        const bits: Array<[string, number]> = [['BAD', 0], ['SAT', 1], ['INTRP', 2], ['CR', 3], ['EDGE', 4], ['DETECTED', 5], ['DETECTED_NEGATIVE', 6], ['SUSPECT', 7], ['NO_DATA', 8], ['INJECTED', 9]];
        for (const [bn, bit] of bits) maskCards.set(`MP_${bn}`, bit);
        const shape = [o.width, o.height];
        try {
          await writeFits(path, [
            { header: new FitsHeader(primary), data: null },
            { header: ext('IMAGE'), data: img.image.data, shape, bitpix: -32, name: 'IMAGE' },
            { header: maskCards, data: img.image.mask, shape, bitpix: 32, name: 'MASK' },
            { header: ext('VARIANCE'), data: img.image.variance, shape, bitpix: -32, name: 'VARIANCE' },
          ]);
        } catch (e) {
          throw new ImagingIoError('cannot write survey image', path, undefined, { cause: e });
        }
        const entry: SurveyImageEntry = {
          path,
          visit: v,
          detector: d,
          band,
          mjd,
          exptime: 30,
          zeroPoint: zp,
          gain: 1,
          psfFwhmPx: fwhm,
          psfBeta: beta,
          skyNoise: img.skyNoise,
          width: o.width,
          height: o.height,
          footprint: wcs.footprint(o.width, o.height),
        };
        if (o.writeTruthImages) {
          const truthPath = join(outDir, 'truth', `${name}-truth.fits`);
          try {
            await writeFits(truthPath, [
              { header: new FitsHeader([...primary]), data: null },
              { header: new FitsHeader(wcsCards), data: img.trueSky, shape, bitpix: -32, name: 'SKY' },
              { header: new FitsHeader(wcsCards), data: img.trueLsb, shape, bitpix: -32, name: 'LSB' },
            ]);
          } catch (e) {
            throw new ImagingIoError('cannot write truth image', truthPath, undefined, { cause: e });
          }
          entry.truthPath = truthPath;
        }
        images.push(entry);
        opts.onProgress?.(++done, total);
      }
    }
  }
  const indexPath = join(outDir, 'images.json');
  const truthCatalogPath = join(outDir, 'truth-catalog.json');
  await writeFile(indexPath, JSON.stringify({ images }, null, 1));
  await writeFile(truthCatalogPath, JSON.stringify({ zeroPointConvention: 'mag = MAGZERO - 2.5 log10(ADU)', sources: truth }));
  return { outDir, images, truth, indexPath, truthCatalogPath };
}
