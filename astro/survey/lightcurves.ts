/**
 * Synthetic ForcedSource light curves (Rubin-like) written as a HATS catalog
 * partitioned by the object's position, plus a truth table of variability.
 *
 * Cadence: yearly observing seasons (6-8 months, centred on the time the
 * field's RA transits at midnight), nights drawn at random inside them, 1-3
 * visits per night in different bands ~30 min apart, 60-300 visits per object
 * over the survey. Variables: sinusoids, RR Lyrae-like sawtooth (fast rise,
 * slow decline, 0.3-0.9 d), eclipsing binaries (two eclipses per period,
 * 0.5-10 d); the rest are constant. Noise: sky-limited single-visit depths per
 * band, source Poisson term and a 0.5 % floor. Every random number comes from
 * a generator seeded by (seed, objectId), so the output depends only on the
 * seed and the options.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import {
  openHatsCatalog,
  readParquetSql,
  sqlIdent,
  sqlString,
  withDuck,
  writeHatsCatalog,
  type HatsCatalog,
} from '../hats/index.js';

export type ForcedSourceBand = 'u' | 'g' | 'r' | 'i' | 'z' | 'y';
export const FORCED_SOURCE_BANDS: readonly ForcedSourceBand[] = ['u', 'g', 'r', 'i', 'z', 'y'];
export type VariabilityType = 'nonvariable' | 'sinusoidal' | 'rrlyrae' | 'eclipsing';

export type LightCurveRegion =
  | { raMin: number; raMax: number; decMin: number; decMax: number }
  | { ra: number; dec: number; radiusDeg: number };

export interface GenerateForcedSourcesOptions {
  /** How many objects to simulate (placed uniformly in `region`), or an Object HATS catalog to take objectId/ra/dec (and r_mag if present) from. */
  objects: number | { objectCatalog: string };
  /** Sky area for generated objects. @default cone of 1 deg around (62, -37) */
  region?: LightCurveRegion;
  /** 32-bit integer seed. */
  seed: number;
  /** Bands observed. @default ['u','g','r','i','z','y'] */
  bands?: readonly ForcedSourceBand[];
  /** Visits per object, drawn uniformly in [min, max]. @default [60, 300] */
  epochs?: readonly [number, number];
  /** Survey length in years. @default 5 */
  years?: number;
  /** Fraction of objects that vary. @default 0.1 */
  varFraction?: number;
  /** First night of the survey (MJD). @default 60800 */
  startMjd?: number;
  /** @default 200_000 */
  maxRowsPerPartition?: number;
  /** Catalog name. @default 'forced_source' */
  name?: string;
  signal?: AbortSignal;
  /** Called as objects are simulated: (objects done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface TruthRow {
  objectId: bigint;
  type: VariabilityType;
  /** Days; null for non-variables. */
  period: number | null;
  /** Magnitudes: semi-amplitude (sinusoidal), peak-to-peak (rrlyrae), primary eclipse depth (eclipsing); 0 otherwise. */
  amplitude: number;
  /** Detectability proxy: amplitude in flux / median flux error * sqrt(visits / 2). */
  snr: number;
  /** Visits simulated. */
  nObs: number;
}

export interface CompiledForcedSourceOptions {
  seed: number;
  bands: ForcedSourceBand[];
  epochs: [number, number];
  years: number;
  varFraction: number;
  startMjd: number;
  maxRowsPerPartition: number;
  name: string;
  region: LightCurveRegion;
}

/** Fills defaults and rejects impossible values. Pure. */
export function compileForcedSourceOptions(opts: GenerateForcedSourcesOptions): CompiledForcedSourceOptions {
  if (!Number.isInteger(opts.seed) || opts.seed < -(2 ** 31) || opts.seed >= 2 ** 32) {
    throw new RangeError(`seed must be a 32-bit integer, got ${opts.seed}`);
  }
  const bands = [...(opts.bands ?? FORCED_SOURCE_BANDS)];
  if (bands.length === 0 || bands.some((b) => !FORCED_SOURCE_BANDS.includes(b))) {
    throw new RangeError(`bands must be a non-empty subset of ${FORCED_SOURCE_BANDS.join(',')}, got ${bands.join(',')}`);
  }
  const [lo, hi] = opts.epochs ?? [60, 300];
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi < lo) {
    throw new RangeError(`epochs must be integers [min, max] with 1 <= min <= max, got [${lo}, ${hi}]`);
  }
  const years = opts.years ?? 5;
  if (!Number.isFinite(years) || years <= 0 || years > 50) throw new RangeError(`years must be in (0, 50], got ${years}`);
  // a season has at most ~240 nights with up to 3 visits; refuse cadences that cannot fit
  if (hi > Math.ceil(years) * 240 * 3) throw new RangeError(`${hi} visits do not fit in ${years} years of seasons`);
  const varFraction = opts.varFraction ?? 0.1;
  if (!(varFraction >= 0 && varFraction <= 1)) throw new RangeError(`varFraction must be in [0, 1], got ${varFraction}`);
  if (typeof opts.objects === 'number' && (!Number.isSafeInteger(opts.objects) || opts.objects < 0)) {
    throw new RangeError(`objects must be a non-negative integer, got ${opts.objects}`);
  }
  return {
    seed: opts.seed >>> 0,
    bands,
    epochs: [lo, hi],
    years,
    varFraction,
    startMjd: opts.startMjd ?? 60800,
    maxRowsPerPartition: opts.maxRowsPerPartition ?? 200_000,
    name: opts.name ?? 'forced_source',
    region: opts.region ?? { ra: 62, dec: -37, radiusDeg: 1 },
  };
}

// ---------- deterministic random numbers ----------

/** splitmix32-style mixer. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A small PRNG (mulberry32) seeded from (seed, key, stream). */
export class SeededRandom {
  private s: number;
  private spare: number | undefined;
  constructor(seed: number, key: bigint | number, stream = 0) {
    const k = BigInt.asUintN(64, BigInt(key));
    const lo = Number(k & 0xffffffffn);
    const hi = Number(k >> 32n);
    this.s = mix(mix(mix(seed ^ Math.imul(stream + 1, 0x9e3779b9)) ^ lo) ^ hi);
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  }
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }
  int(a: number, b: number): number {
    return a + Math.floor(this.next() * (b - a + 1));
  }
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.next()));
    const phi = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(phi);
    return r * Math.cos(phi);
  }
}

// ---------- photometry model ----------

/** Single-visit 5-sigma depths (AB), LSST-like. */
const VISIT_DEPTH: Record<ForcedSourceBand, number> = { u: 23.9, g: 25.0, r: 24.7, i: 24.0, z: 23.3, y: 22.1 };
/** Share of visits per band (LSST-like). */
const BAND_WEIGHT: Record<ForcedSourceBand, number> = { u: 0.07, g: 0.1, r: 0.22, i: 0.22, z: 0.2, y: 0.19 };
/** Typical star colours relative to r (mag). */
const BAND_OFFSET: Record<ForcedSourceBand, number> = { u: 1.6, g: 0.5, r: 0, i: -0.15, z: -0.25, y: -0.3 };

/** AB magnitude to flux in nJy. */
export function magToNJy(mag: number): number {
  return 10 ** ((31.4 - mag) / 2.5);
}

/** Per-visit flux error (nJy): sky noise at the 5-sigma depth, source Poisson term, 0.5 % floor. */
export function fluxErrorNJy(fluxNJy: number, band: ForcedSourceBand): number {
  const sky = magToNJy(VISIT_DEPTH[band]) / 5;
  const source = (Math.max(fluxNJy, 0) * sky) / 25; // equals the sky variance at 25 sigma
  const floor = 0.005 * Math.max(fluxNJy, 0);
  return Math.sqrt(sky * sky + source + floor * floor);
}

interface Variability {
  type: VariabilityType;
  period: number | null;
  amplitude: number;
  phase: number;
  /** Secondary eclipse depth and eclipse half-width (phase units) for binaries. */
  depth2: number;
  width: number;
}

function drawVariability(rand: SeededRandom, varFraction: number): Variability {
  const base = { phase: rand.next(), depth2: 0, width: 0 };
  if (rand.next() >= varFraction) return { ...base, type: 'nonvariable', period: null, amplitude: 0 };
  const kind = rand.next();
  if (kind < 1 / 3) {
    return { ...base, type: 'sinusoidal', period: 10 ** rand.uniform(-1, 2), amplitude: rand.uniform(0.05, 0.5) };
  }
  if (kind < 2 / 3) return { ...base, type: 'rrlyrae', period: rand.uniform(0.3, 0.9), amplitude: rand.uniform(0.3, 1.0) };
  const amplitude = rand.uniform(0.2, 1.0);
  return {
    ...base,
    type: 'eclipsing',
    period: 10 ** rand.uniform(Math.log10(0.5), 1),
    amplitude,
    depth2: amplitude * rand.uniform(0.1, 0.6),
    width: rand.uniform(0.03, 0.1),
  };
}

/** Magnitude offset of a variable at time `t` (days). */
export function variabilityDeltaMag(v: Pick<Variability, 'type' | 'period' | 'amplitude' | 'phase' | 'depth2' | 'width'>, t: number): number {
  if (v.type === 'nonvariable' || v.period === null) return 0;
  const x = (((t / v.period + v.phase) % 1) + 1) % 1;
  switch (v.type) {
    case 'sinusoidal':
      return v.amplitude * Math.sin(2 * Math.PI * x);
    case 'rrlyrae': {
      // fast rise over 15 % of the cycle, slow linear decline: 0 = brightest, 1 = faintest
      const faint = x < 0.15 ? 1 - x / 0.15 : (x - 0.15) / 0.85;
      return v.amplitude * (faint - 0.5);
    }
    case 'eclipsing': {
      const d1 = Math.min(x, 1 - x);
      const d2 = Math.abs(x - 0.5);
      const dip = (d: number, depth: number) => (d < v.width ? depth * (1 - (d / v.width) ** 2) : 0);
      return dip(d1, v.amplitude) + dip(d2, v.depth2);
    }
  }
}

// ---------- cadence ----------

interface Visit {
  mjd: number;
  band: ForcedSourceBand;
}

function pickBand(rand: SeededRandom, bands: readonly ForcedSourceBand[], exclude: ReadonlySet<ForcedSourceBand>): ForcedSourceBand {
  const pool = bands.filter((b) => !exclude.has(b));
  const choices = pool.length > 0 ? pool : bands;
  const total = choices.reduce((s, b) => s + BAND_WEIGHT[b], 0);
  let u = rand.next() * total;
  for (const b of choices) {
    u -= BAND_WEIGHT[b];
    if (u <= 0) return b;
  }
  return choices[choices.length - 1]!;
}

/** Survey-like visits of one field: seasons, nights, 1-3 visits per night in different bands. */
export function simulateCadence(rand: SeededRandom, ra: number, o: Pick<CompiledForcedSourceOptions, 'bands' | 'epochs' | 'years' | 'startMjd'>): Visit[] {
  const target = rand.int(o.epochs[0], o.epochs[1]);
  // a field at RA transits at midnight around the day of year when the Sun is at RA + 180
  const centreDay = ((((ra + 180) % 360) / 360) * 365.25 + 79) % 365.25; // day 79 ~ March equinox
  const seasonLength = rand.uniform(182, 243); // 6-8 months
  const nights = new Set<number>();
  const candidates: number[] = [];
  const nYears = Math.ceil(o.years);
  for (let y = 0; y < nYears; y++) {
    const centre = o.startMjd + y * 365.25 + centreDay;
    for (let d = Math.ceil(centre - seasonLength / 2); d <= centre + seasonLength / 2; d++) {
      if (d >= o.startMjd && d < o.startMjd + o.years * 365.25) candidates.push(d);
    }
  }
  const visits: Visit[] = [];
  while (visits.length < target && nights.size < candidates.length) {
    const night = candidates[Math.floor(rand.next() * candidates.length)]!;
    if (nights.has(night)) continue;
    nights.add(night);
    const n = Math.min(target - visits.length, rand.int(1, 3));
    const used = new Set<ForcedSourceBand>();
    let t = night + rand.uniform(0.05, 0.3); // evening to past midnight (UTC-ish offset)
    for (let k = 0; k < n; k++) {
      const band = pickBand(rand, o.bands, used);
      used.add(band);
      visits.push({ mjd: t, band });
      t += rand.uniform(0.015, 0.035); // 20-50 min between revisits
    }
  }
  return visits.sort((a, b) => a.mjd - b.mjd);
}

// ---------- objects ----------

interface ObjectRow {
  objectId: bigint;
  ra: number;
  dec: number;
  rMag: number | null;
}

function randomPosition(rand: SeededRandom, region: LightCurveRegion): [number, number] {
  const d2r = Math.PI / 180;
  if ('radiusDeg' in region) {
    const theta = 2 * Math.asin(Math.sqrt(rand.next()) * Math.sin((region.radiusDeg * d2r) / 2));
    const phi = 2 * Math.PI * rand.next();
    const dec0 = region.dec * d2r;
    const sinDec = Math.sin(dec0) * Math.cos(theta) + Math.cos(dec0) * Math.sin(theta) * Math.cos(phi);
    const dec = Math.asin(Math.max(-1, Math.min(1, sinDec)));
    const dra = Math.atan2(Math.sin(phi) * Math.sin(theta) * Math.cos(dec0), Math.cos(theta) - Math.sin(dec0) * sinDec);
    return [(((region.ra + dra / d2r) % 360) + 360) % 360, dec / d2r];
  }
  const width = (((region.raMax - region.raMin) % 360) + 360) % 360 || 360;
  const s0 = Math.sin(region.decMin * d2r);
  const s1 = Math.sin(region.decMax * d2r);
  return [(((region.raMin + rand.next() * width) % 360) + 360) % 360, Math.asin(s0 + rand.next() * (s1 - s0)) / d2r];
}

/** Reads objectId/ra/dec (and r_mag when present) from an Object HATS catalog. */
export async function readObjectPositions(path: string): Promise<ObjectRow[]> {
  const cat = await openHatsCatalog(path, { margin: false });
  const files = cat.partitions.flatMap((p) => p.files);
  if (files.length === 0) return [];
  return withDuck(async (conn) => {
    const cols = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${readParquetSql(files)}`)).getRows().map((r) => String(r[0]));
    const idCol = ['objectId', cat.properties.default_index ?? '', 'id'].find((c) => c !== '' && cols.includes(c));
    if (idCol === undefined) throw new RangeError(`object catalog ${cat.root} has no objectId/id column (columns: ${cols.join(', ')})`);
    const mag = cols.includes('r_mag') ? 'r_mag::DOUBLE' : 'NULL::DOUBLE';
    const r = await conn.runAndReadAll(
      `SELECT ${sqlIdent(idCol)}::BIGINT, ${sqlIdent(cat.raColumn)}::DOUBLE, ${sqlIdent(cat.decColumn)}::DOUBLE, ${mag} ` +
        `FROM ${readParquetSql(files)} ORDER BY 1`,
    );
    return r.getRows().map(([id, ra, dec, m]) => ({
      objectId: BigInt(id as bigint),
      ra: Number(ra),
      dec: Number(dec),
      rMag: typeof m === 'number' ? m : null,
    }));
  });
}

// ---------- staging ----------

export type StagingColumnType = 'BIGINT' | 'DOUBLE' | 'VARCHAR' | 'FLOAT';
export type StagingValue = bigint | number | string | null;

/**
 * Streams rows into a Parquet file through a DuckDB appender (a scratch table
 * in the shared in-memory database, dropped afterwards).
 */
export async function writeStagingParquet(
  path: string,
  columns: ReadonlyArray<readonly [string, StagingColumnType]>,
  fill: (append: (row: readonly StagingValue[]) => void) => Promise<void> | void,
): Promise<void> {
  await withDuck(async (conn: DuckDBConnection) => {
    const table = `xm_stage_${process.pid}_${++stagingCounter}`;
    await conn.run(`CREATE TABLE ${table} (${columns.map(([n, t]) => `${sqlIdent(n)} ${t}`).join(', ')})`);
    try {
      const appender = await conn.createAppender(table);
      try {
        await fill((row) => {
          columns.forEach(([, type], i) => {
            const v = row[i] ?? null;
            if (v === null) appender.appendNull();
            else if (type === 'BIGINT') appender.appendBigInt(BigInt(v));
            else if (type === 'DOUBLE') appender.appendDouble(Number(v));
            else if (type === 'FLOAT') appender.appendFloat(Number(v));
            else appender.appendVarchar(String(v));
          });
          appender.endRow();
        });
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
      await conn.run(`COPY ${table} TO ${sqlString(path)} (FORMAT parquet, COMPRESSION zstd)`);
    } finally {
      await conn.run(`DROP TABLE IF EXISTS ${table}`);
    }
  });
}

let stagingCounter = 0;

// ---------- the generator ----------

/**
 * Writes a ForcedSource HATS catalog (objectId, ra, dec, mjd, band, flux,
 * fluxErr; flux in nJy) at `outDir` and its truth table at
 * `outDir/truth.parquet` (objectId, type, period, amplitude, snr, nObs).
 */
export async function generateForcedSources(
  outDir: string,
  opts: GenerateForcedSourcesOptions,
): Promise<{ catalog: HatsCatalog; truth: TruthRow[]; truthPath: string }> {
  const o = compileForcedSourceOptions(opts);
  const root = resolve(outDir);
  let objects: ObjectRow[];
  if (typeof opts.objects === 'number') {
    objects = [];
    for (let i = 0; i < opts.objects; i++) {
      const objectId = BigInt(o.seed % 1000) * 1_000_000_000_000n + 1_000_000_000n + BigInt(i);
      const rand = new SeededRandom(o.seed, objectId, 1);
      const [ra, dec] = randomPosition(rand, o.region);
      objects.push({ objectId, ra, dec, rMag: null });
    }
  } else {
    objects = await readObjectPositions(opts.objects.objectCatalog);
  }
  const stageDir = await mkdtemp(join(tmpdir(), 'ubatch-forced-'));
  const truth: TruthRow[] = [];
  try {
    const staged = join(stageDir, 'forced.parquet');
    await writeStagingParquet(
      staged,
      [
        ['objectId', 'BIGINT'],
        ['ra', 'DOUBLE'],
        ['dec', 'DOUBLE'],
        ['mjd', 'DOUBLE'],
        ['band', 'VARCHAR'],
        ['flux', 'DOUBLE'],
        ['fluxErr', 'DOUBLE'],
      ],
      (append) => {
        for (let n = 0; n < objects.length; n++) {
          if (n % 256 === 0) {
            if (opts.signal?.aborted) throw new Error(`generateForcedSources aborted at object ${n}`, { cause: opts.signal.reason });
            opts.onProgress?.(n, objects.length);
          }
          const obj = objects[n]!;
          const rand = new SeededRandom(o.seed, obj.objectId, 2);
          // stars of 17-23.5 mag unless the Object catalog gives one
          const r0 = obj.rMag !== null && Number.isFinite(obj.rMag) ? obj.rMag : rand.uniform(17, 23.5);
          const colour = rand.normal() * 0.1;
          const v = drawVariability(rand, o.varFraction);
          const visits = simulateCadence(rand, obj.ra, o);
          const errs: number[] = [];
          for (const visit of visits) {
            const mag = r0 + BAND_OFFSET[visit.band] * (1 + colour) + variabilityDeltaMag(v, visit.mjd);
            const trueFlux = magToNJy(mag);
            const err = fluxErrorNJy(trueFlux, visit.band);
            errs.push(err);
            append([obj.objectId, obj.ra, obj.dec, visit.mjd, visit.band, trueFlux + err * rand.normal(), err]);
          }
          errs.sort((a, b) => a - b);
          const medErr = errs.length > 0 ? errs[Math.floor(errs.length / 2)]! : Infinity;
          const f0 = magToNJy(r0);
          const ampFlux = v.type === 'nonvariable' ? 0 : f0 * (10 ** (0.4 * v.amplitude) - 1);
          truth.push({
            objectId: obj.objectId,
            type: v.type,
            period: v.period,
            amplitude: v.amplitude,
            snr: (ampFlux / medErr) * Math.sqrt(visits.length / 2),
            nObs: visits.length,
          });
        }
        opts.onProgress?.(objects.length, objects.length);
      },
    );
    const writeOpts: Parameters<typeof writeHatsCatalog>[2] = {
      name: o.name,
      raColumn: 'ra',
      decColumn: 'dec',
      type: 'source',
      maxRowsPerPartition: o.maxRowsPerPartition,
      extraProperties: { ubatch_generator_seed: String(o.seed) },
    };
    if (opts.signal) writeOpts.signal = opts.signal;
    await writeHatsCatalog(staged, root, writeOpts);
    const truthPath = join(root, 'truth.parquet');
    await writeStagingParquet(
      truthPath,
      [
        ['objectId', 'BIGINT'],
        ['type', 'VARCHAR'],
        ['period', 'DOUBLE'],
        ['amplitude', 'DOUBLE'],
        ['snr', 'DOUBLE'],
        ['nObs', 'BIGINT'],
      ],
      (append) => {
        for (const t of truth) append([t.objectId, t.type, t.period, t.amplitude, t.snr, t.nObs]);
      },
    );
    const catalog = await openHatsCatalog(root, { margin: false });
    return { catalog, truth, truthPath };
  } finally {
    await rm(stageDir, { recursive: true, force: true });
  }
}
