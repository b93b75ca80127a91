/**
 * A Gaia-like external catalog built from an Object catalog, for cross-match
 * tests: a fraction of the objects get a counterpart at Gaia's epoch (2016.0)
 * moved back along a proper motion from the survey epoch (2025.0) and blurred
 * by the position error; extra Gaia-only sources sit among them. Written as a
 * HATS catalog with a margin cache, with `truth_objectId` naming the object
 * each source was made from (null for Gaia-only sources).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeMarginCache } from '../crossmatch/index.js';
import { ang2pix } from '../healpix/index.js';
import { openHatsCatalog, writeHatsCatalog, type HatsCatalog } from '../hats/index.js';
import { SeededRandom, readObjectPositions, writeStagingParquet } from './lightcurves.js';

export interface GenerateGaiaLikeOptions {
  /** Object HATS catalog (objectId, ra, dec; r_mag used for G when present). */
  objectCatalog: string;
  /** Fraction of objects that get a Gaia counterpart. @default 0.7 */
  matchFraction?: number;
  /** Fraction of the Gaia rows with no object counterpart. @default 0.2 */
  unmatchedFraction?: number;
  /** 1-sigma position error per axis at the Gaia epoch (mas). @default 20 */
  positionErrorMas?: number;
  /** Proper-motion dispersion per axis (mas/yr); 2 % of sources get 10x. @default 8 */
  pmSigmaMasYr?: number;
  /** Epoch of the Gaia positions (Julian years). @default 2016.0 */
  gaiaEpoch?: number;
  /** Epoch of the object positions. @default 2025.0 */
  objectEpoch?: number;
  /** 32-bit integer seed. */
  seed: number;
  /** Margin cache threshold (arcsec). @default 10 */
  marginThresholdArcsec?: number;
  /** @default 100_000 */
  maxRowsPerPartition?: number;
  /** @default 'gaia_like' */
  name?: string;
  signal?: AbortSignal;
}

export interface CompiledGaiaLikeOptions {
  matchFraction: number;
  unmatchedFraction: number;
  positionErrorMas: number;
  pmSigmaMasYr: number;
  gaiaEpoch: number;
  objectEpoch: number;
  seed: number;
  marginThresholdArcsec: number;
  maxRowsPerPartition: number;
  name: string;
}

export function compileGaiaLikeOptions(opts: GenerateGaiaLikeOptions): CompiledGaiaLikeOptions {
  const frac = (name: string, v: number, hi: number) => {
    if (!(v >= 0 && v <= hi)) throw new RangeError(`${name} must be in [0, ${hi}], got ${v}`);
    return v;
  };
  if (!Number.isInteger(opts.seed) || opts.seed < -(2 ** 31) || opts.seed >= 2 ** 32) {
    throw new RangeError(`seed must be a 32-bit integer, got ${opts.seed}`);
  }
  const positive = (name: string, v: number) => {
    if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a finite number >= 0, got ${v}`);
    return v;
  };
  const thr = opts.marginThresholdArcsec ?? 10;
  if (!(thr > 0)) throw new RangeError(`marginThresholdArcsec must be > 0, got ${thr}`);
  return {
    matchFraction: frac('matchFraction', opts.matchFraction ?? 0.7, 1),
    unmatchedFraction: frac('unmatchedFraction', opts.unmatchedFraction ?? 0.2, 0.99),
    positionErrorMas: positive('positionErrorMas', opts.positionErrorMas ?? 20),
    pmSigmaMasYr: positive('pmSigmaMasYr', opts.pmSigmaMasYr ?? 8),
    gaiaEpoch: opts.gaiaEpoch ?? 2016.0,
    objectEpoch: opts.objectEpoch ?? 2025.0,
    seed: opts.seed >>> 0,
    marginThresholdArcsec: thr,
    maxRowsPerPartition: opts.maxRowsPerPartition ?? 100_000,
    name: opts.name ?? 'gaia_like',
  };
}

const MAS_PER_DEG = 3.6e6;

/** Moves a position by (dx east, dy north) in mas on the tangent plane. */
function offsetPosition(ra: number, dec: number, eastMas: number, northMas: number): [number, number] {
  const d2r = Math.PI / 180;
  const x = eastMas / MAS_PER_DEG;
  const y = northMas / MAS_PER_DEG;
  // gnomonic inverse about (ra, dec): exact on the sphere, fine at the poles
  const a0 = ra * d2r;
  const d0 = dec * d2r;
  const xi = x * d2r;
  const eta = y * d2r;
  const den = Math.cos(d0) - eta * Math.sin(d0);
  const a = a0 + Math.atan2(xi, den);
  const d = Math.atan2(Math.sin(d0) + eta * Math.cos(d0), Math.hypot(xi, den));
  return [((((a / d2r) % 360) + 360) % 360), d / d2r];
}

/**
 * Writes the Gaia-like catalog (source_id, ra, dec, pmra, pmdec,
 * phot_g_mean_mag, ref_epoch, truth_objectId) at `outDir` and its margin cache
 * at `outDir + '_margin'`; returns the catalog opened with its margin.
 */
export async function generateGaiaLike(outDir: string, opts: GenerateGaiaLikeOptions): Promise<HatsCatalog> {
  const o = compileGaiaLikeOptions(opts);
  const root = resolve(outDir);
  const objects = await readObjectPositions(opts.objectCatalog);
  const dt = o.gaiaEpoch - o.objectEpoch; // negative: Gaia saw them earlier
  const stageDir = await mkdtemp(join(tmpdir(), 'ubatch-gaia-'));
  try {
    const staged = join(stageDir, 'gaia.parquet');
    const perPixel = new Map<number, number>();
    const sourceId = (ra: number, dec: number): bigint => {
      // Gaia convention: HEALPix level-12 nested index * 2^35 + a running number
      const hp = ang2pix(12, ra, dec);
      const k = perPixel.get(hp) ?? 0;
      perPixel.set(hp, k + 1);
      return (BigInt(hp) << 35n) + BigInt(k);
    };
    await writeStagingParquet(
      staged,
      [
        ['source_id', 'BIGINT'],
        ['ra', 'DOUBLE'],
        ['dec', 'DOUBLE'],
        ['pmra', 'DOUBLE'],
        ['pmdec', 'DOUBLE'],
        ['phot_g_mean_mag', 'DOUBLE'],
        ['ref_epoch', 'DOUBLE'],
        ['truth_objectId', 'BIGINT'],
      ],
      (append) => {
        const motion = (rand: SeededRandom): [number, number] => {
          const scale = rand.next() < 0.02 ? 10 : 1;
          return [rand.normal() * o.pmSigmaMasYr * scale, rand.normal() * o.pmSigmaMasYr * scale];
        };
        let matched = 0;
        for (let n = 0; n < objects.length; n++) {
          if (n % 1024 === 0 && opts.signal?.aborted) throw new Error(`generateGaiaLike aborted at object ${n}`, { cause: opts.signal.reason });
          const obj = objects[n]!;
          const rand = new SeededRandom(o.seed, obj.objectId, 3);
          if (rand.next() >= o.matchFraction) continue;
          matched++;
          const [pmra, pmdec] = motion(rand);
          const east = pmra * dt + rand.normal() * o.positionErrorMas;
          const north = pmdec * dt + rand.normal() * o.positionErrorMas;
          const [ra, dec] = offsetPosition(obj.ra, obj.dec, east, north);
          const g = (obj.rMag ?? rand.uniform(14, 20.5)) + 0.2 + 0.05 * rand.normal();
          append([sourceId(ra, dec), ra, dec, pmra, pmdec, g, o.gaiaEpoch, obj.objectId]);
        }
        // Gaia-only sources: near random objects (same footprint), 5-60 arcsec away
        const extra = o.unmatchedFraction > 0 ? Math.round((matched * o.unmatchedFraction) / (1 - o.unmatchedFraction)) : 0;
        const rand = new SeededRandom(o.seed, 0, 4);
        for (let i = 0; i < extra && objects.length > 0; i++) {
          const host = objects[Math.floor(rand.next() * objects.length)]!;
          const r = rand.uniform(5, 60) * 1000;
          const phi = 2 * Math.PI * rand.next();
          const [ra, dec] = offsetPosition(host.ra, host.dec, r * Math.cos(phi), r * Math.sin(phi));
          const [pmra, pmdec] = motion(rand);
          append([sourceId(ra, dec), ra, dec, pmra, pmdec, rand.uniform(14, 20.7), o.gaiaEpoch, null]);
        }
      },
    );
    const writeOpts: Parameters<typeof writeHatsCatalog>[2] = {
      name: o.name,
      raColumn: 'ra',
      decColumn: 'dec',
      maxRowsPerPartition: o.maxRowsPerPartition,
      extraProperties: { default_index: 'source_id', ubatch_generator_seed: String(o.seed) },
    };
    if (opts.signal) writeOpts.signal = opts.signal;
    const primary = await writeHatsCatalog(staged, root, writeOpts);
    const marginOpts: Parameters<typeof writeMarginCache>[1] = {
      thresholdArcsec: o.marginThresholdArcsec,
      outDir: `${root}_margin`,
      name: `${o.name}_margin`,
    };
    if (opts.signal) marginOpts.signal = opts.signal;
    await writeMarginCache(primary, marginOpts);
    return await openHatsCatalog(root);
  } finally {
    await rm(stageDir, { recursive: true, force: true });
  }
}
