/**
 * Synthetic Rubin-like Object catalog written as a HATS catalog.
 *
 * Rows are generated inside DuckDB by SQL over `range(rows)`; every random
 * number is a counter-based hash of (seed, row, stream), so the catalog
 * depends only on the seed and the options, not on DuckDB's thread scheduling.
 */
import { writeHatsCatalog, type HatsCatalog } from '../hats/index.js';

export type SkyRegion =
  | { raMin: number; raMax: number; decMin: number; decMax: number }
  | { ra: number; dec: number; radiusDeg: number };

export interface GenerateObjectCatalogOptions {
  rows: number;
  /**
   * Sky area to fill uniformly (area-weighted). A box may wrap RA = 0 (raMin > raMax).
   * @default the whole sky
   */
  region?: SkyRegion;
  /** 32-bit integer seed; the same seed and options give the same catalog. */
  seed: number;
  /** @default 1_000_000 (the HATS writer's default) */
  maxRowsPerPartition?: number;
  /** @default 10 */
  highestOrder?: number;
  /** Catalog name (`obs_collection`). @default 'object' */
  name?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** 5-sigma point-source depths (coadd, LSST-like), by band. */
export const OBJECT_BANDS = ['u', 'g', 'r', 'i', 'z', 'y'] as const;
const DEPTH_5SIGMA: Record<(typeof OBJECT_BANDS)[number], number> = { u: 25.6, g: 26.9, r: 26.9, i: 26.4, z: 25.7, y: 24.9 };

/** Bits of the `flags` column. */
export const OBJECT_FLAGS = { saturated: 1, edge: 2, blended: 4, badCentroid: 8 } as const;

// ---------- counter-based random numbers ----------
//
// Every random number comes from DuckDB's native hash of one BIGINT key packing
// (row, stream), xor-ed with a seed constant: no state, so the output does not
// depend on how DuckDB splits the work across threads, and it runs at native
// speed (a JS scalar function per value was ~10x slower). DuckDB's one-argument
// hash is a full-avalanche 64-bit finaliser; its multi-argument combination is
// not (neighbouring rows came out correlated), hence the packing. Each 64-bit
// hash gives one 53-bit uniform (positions) or two 26-bit uniforms (everything
// else; a Box-Muller pair of normals per hash). The hash function is fixed for
// a given DuckDB build (package-lock pins it).

/** 64-bit seed constant mixed into every key (splitmix64 of the seed). */
function seedKey(seed: number): bigint {
  let z = (BigInt(seed >>> 0) + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  z ^= z >> 31n;
  return BigInt.asIntN(64, z) >> 16n; // small enough that the xor with the row key stays a BIGINT
}

/** SQL for the 64-bit hash of stream `stream` of row `i`. */
function hashSql(seed: number, stream: number): string {
  if (!Number.isInteger(stream) || stream < 0 || stream >= 4096) throw new RangeError(`stream ${stream} not in 0..4095`);
  return `hash(xor(i * 4096 + ${stream}, ${seedKey(seed)}))`;
}

/** Uniforms in (0, 1) from a hash column: 53-bit, or the high / low 26-bit halves. */
const u53 = (h: string) => `(((${h} >> 11)::DOUBLE + 0.5) / 9007199254740992.0)`;
const uHi = (h: string) => `(((${h} >> 38)::DOUBLE + 0.5) / 67108864.0)`;
const uLo = (h: string) => `((((${h} >> 12) & 67108863)::DOUBLE + 0.5) / 67108864.0)`;

// ---------- options ----------

export interface CompiledObjectOptions {
  rows: number;
  seed: number;
  region: SkyRegion;
  maxRowsPerPartition: number;
  highestOrder: number;
  name: string;
}

/** Fill defaults, normalise the region and reject impossible values. */
export function compileObjectCatalogOptions(opts: GenerateObjectCatalogOptions): CompiledObjectOptions {
  if (!Number.isSafeInteger(opts.rows) || opts.rows < 0) throw new RangeError(`rows must be a non-negative integer, got ${opts.rows}`);
  if (!Number.isInteger(opts.seed) || opts.seed < -(2 ** 31) || opts.seed >= 2 ** 32) {
    throw new RangeError(`seed must be a 32-bit integer, got ${opts.seed}`);
  }
  const region: SkyRegion = opts.region ?? { raMin: 0, raMax: 360, decMin: -90, decMax: 90 };
  if ('radiusDeg' in region) {
    const { ra, dec, radiusDeg } = region;
    if (![ra, dec, radiusDeg].every(Number.isFinite) || dec < -90 || dec > 90 || radiusDeg <= 0 || radiusDeg > 180) {
      throw new RangeError(`bad cone region ra=${ra} dec=${dec} radiusDeg=${radiusDeg}`);
    }
  } else {
    const { raMin, raMax, decMin, decMax } = region;
    if (![raMin, raMax, decMin, decMax].every(Number.isFinite) || decMin < -90 || decMax > 90 || decMin >= decMax) {
      throw new RangeError(`bad box region ra ${raMin}..${raMax} dec ${decMin}..${decMax}`);
    }
    if (raMin === raMax) throw new RangeError(`box region has zero RA width (raMin = raMax = ${raMin})`);
  }
  return {
    rows: opts.rows,
    seed: opts.seed | 0,
    region,
    maxRowsPerPartition: opts.maxRowsPerPartition ?? 1_000_000,
    highestOrder: opts.highestOrder ?? 10,
    name: opts.name ?? 'object',
  };
}

/** RA width of a box in degrees (handles wrap through RA = 0 and full circles). */
export function boxRaWidth(raMin: number, raMax: number): number {
  if (raMax - raMin >= 360) return 360;
  const w = (((raMax - raMin) % 360) + 360) % 360;
  return w === 0 ? 360 : w;
}

// ---------- SQL ----------

const num = (x: number): string => {
  if (!Number.isFinite(x)) throw new RangeError(`non-finite number ${x} in generator SQL`);
  return x.toExponential(17);
};

/** Stages turning uniforms `u_a`, `u_b` into `ra`, `dec` (each stage may use the previous one's columns). */
function positionStages(region: SkyRegion): { theta: string; pos: string } {
  if ('radiusDeg' in region) {
    // Uniform in the cap: sin^2(theta/2) uniform in [0, sin^2(r/2)], bearing uniform; then the
    // destination-point formula from the cone centre.
    const dec0 = (region.dec * Math.PI) / 180;
    const halfR = (region.radiusDeg * Math.PI) / 360;
    const sd0 = num(Math.sin(dec0));
    const cd0 = num(Math.cos(dec0));
    const theta = `2 * asin(sqrt(u_a) * ${num(Math.sin(halfR))}) AS theta, 2 * pi() * u_b AS phi`;
    const sinDec = `greatest(-1.0, least(1.0, ${sd0} * cos(theta) + ${cd0} * sin(theta) * cos(phi)))`;
    const pos =
      `(((${num(region.ra)} + degrees(atan2(sin(phi) * sin(theta) * ${cd0}, cos(theta) - ${sd0} * ${sinDec}))) % 360.0) + 360.0) % 360.0 AS ra, ` +
      `degrees(asin(${sinDec})) AS dec`;
    return { theta, pos };
  }
  const width = boxRaWidth(region.raMin, region.raMax);
  const s0 = Math.sin((region.decMin * Math.PI) / 180);
  const s1 = Math.sin((region.decMax * Math.PI) / 180);
  return {
    theta: 'NULL AS theta, NULL AS phi',
    pos:
      `(((${num(region.raMin)} + u_a * ${num(width)}) % 360.0) + 360.0) % 360.0 AS ra, ` +
      `greatest(${num(region.decMin)}, least(${num(region.decMax)}, degrees(asin(${num(s0)} + u_b * ${num(s1 - s0)})))) AS dec`,
  };
}

/** The SELECT producing the catalog rows (exported for inspection and benchmarks). */
export function objectCatalogSql(o: CompiledObjectOptions): string {
  const s = o.seed;
  const { theta, pos } = positionStages(o.region);
  // r magnitude: number counts N(<m) ~ 10^(alpha m) between 16 and 27, steeper for galaxies.
  const rMag = (alpha: number, uu: string) =>
    `(log10(${num(10 ** (alpha * 16))} + ${uu} * ${num(10 ** (alpha * 27) - 10 ** (alpha * 16))}) / ${num(alpha)})`;
  // Noise is Gaussian in flux: relative sigma 0.2 at the 5-sigma depth.
  const relSigma = (band: (typeof OBJECT_BANDS)[number]) => `(0.2 * pow(10.0, 0.4 * (${band}_true - ${DEPTH_5SIGMA[band]})))`;
  const idBase = (BigInt((s >>> 0) % 1000) + 1n) * 1_000_000_000_000n;
  // Hash streams: 1-2 position, 3-5 six 26-bit uniforms, 6-11 twelve normals.
  const hashes = Array.from({ length: 11 }, (_, k) => `${hashSql(s, k + 1)} AS h${k + 1}`).join(', ');
  const normals = Array.from({ length: 6 }, (_, k) => {
    const h = `h${k + 6}`;
    const r = `sqrt(-2.0 * ln(${uHi(h)}))`;
    return `${r} * cos(2.0 * pi() * ${uLo(h)}) AS n${2 * k + 1}, ${r} * sin(2.0 * pi() * ${uLo(h)}) AS n${2 * k + 2}`;
  }).join(',\n    ');
  return `
WITH base AS (
  SELECT range AS i FROM range(${o.rows})
), hashed AS (
  SELECT i, ${hashes} FROM base
), rnd AS (
  SELECT i, ${u53('h1')} AS u_a, ${u53('h2')} AS u_b,
    ${uHi('h3')} AS u_ext, ${uLo('h3')} AS zeta, ${uHi('h4')} AS u_mag,
    ${uLo('h4')} AS u_edge, ${uHi('h5')} AS u_blend, ${uLo('h5')} AS u_centroid,
    ${normals}
  FROM hashed
), angles AS (
  SELECT *, ${theta} FROM rnd
), kind AS (
  SELECT *, ${pos}, (u_ext < 0.7)::TINYINT AS extendedness FROM angles
), colours AS (
  SELECT *,
    CASE WHEN extendedness = 1 THEN ${rMag(0.35, 'u_mag')} ELSE ${rMag(0.15, 'u_mag')} END AS r_true,
    CASE WHEN extendedness = 1 THEN 0.4 + 0.8 * zeta + 0.15 * n1
         ELSE greatest(-0.3, least(1.6, 0.7 + 0.35 * n1)) END AS gr
  FROM kind
), colours2 AS (
  SELECT *,
    CASE WHEN extendedness = 1 THEN 0.8 + 0.8 * gr + 0.25 * n2 ELSE 0.9 + 1.1 * gr + 0.15 * n2 END AS ug,
    CASE WHEN extendedness = 1 THEN 0.2 + 0.4 * zeta + 0.1 * n3
         ELSE 0.45 * gr - 0.05 + 3.0 * greatest(0.0, gr - 1.3) + 0.05 * n3 END AS ri
  FROM colours
), truth AS (
  SELECT *,
    r_true + gr AS g_true,
    r_true + gr + ug AS u_true,
    r_true - ri AS i_true,
    r_true - ri - (CASE WHEN extendedness = 1 THEN 0.15 + 0.3 * zeta + 0.08 * n4 ELSE 0.45 * ri + 0.02 * n4 END) AS z_true
  FROM colours2
), truth2 AS (
  SELECT *, z_true - (CASE WHEN extendedness = 1 THEN 0.1 + 0.1 * n5 ELSE 0.25 * (i_true - z_true) + 0.02 * n5 END) AS y_true
  FROM truth
), noisy AS (
  SELECT *,
    ${OBJECT_BANDS.map((b, k) => `${relSigma(b)} AS ${b}_sig, 1.0 + ${relSigma(b)} * n${6 + k} AS ${b}_flux`).join(',\n    ')}
  FROM truth2
)
SELECT
  (${idBase} + i)::BIGINT AS objectId,
  ra,
  dec,
  ${OBJECT_BANDS.map((b) => `(CASE WHEN ${b}_flux > 0 THEN ${b}_true - 2.5 * log10(${b}_flux) END)::FLOAT AS ${b}_mag`).join(',\n  ')},
  ${OBJECT_BANDS.map((b) => `(CASE WHEN ${b}_flux > 0 THEN sqrt(0.005 * 0.005 + pow(1.0857 * ${b}_sig / ${b}_flux, 2)) END)::FLOAT AS ${b}_magErr`).join(',\n  ')},
  extendedness,
  ((CASE WHEN extendedness = 0 AND r_true < 17.0 THEN ${OBJECT_FLAGS.saturated} ELSE 0 END)
   + (CASE WHEN u_edge < 0.01 THEN ${OBJECT_FLAGS.edge} ELSE 0 END)
   + (CASE WHEN u_blend < 0.03 + 0.05 * extendedness THEN ${OBJECT_FLAGS.blended} ELSE 0 END)
   + (CASE WHEN u_centroid < 0.005 THEN ${OBJECT_FLAGS.badCentroid} ELSE 0 END))::INTEGER AS flags
FROM noisy`;
}

/**
 * Generate a synthetic Object catalog (objectId, ra, dec, u..y _mag and
 * _magErr, extendedness, flags) as a HATS catalog at `outDir`.
 *
 * Model: 30% stars (flatter number counts, stellar locus colours), 70%
 * galaxies (steeper counts, redder with a latent redshift-like variable); true
 * r in 16..27; observed flux = true flux + Gaussian noise set by LSST-like
 * 5-sigma depths; a band whose observed flux is not positive has NULL mag and
 * magErr (a non-detection); magErr = sqrt(0.005^2 + (1.0857 sigma_f / f)^2).
 */
export async function generateObjectCatalog(outDir: string, opts: GenerateObjectCatalogOptions): Promise<HatsCatalog> {
  const o = compileObjectCatalogOptions(opts);
  const writeOpts: Parameters<typeof writeHatsCatalog>[2] = {
    name: o.name,
    raColumn: 'ra',
    decColumn: 'dec',
    maxRowsPerPartition: o.maxRowsPerPartition,
    highestOrder: o.highestOrder,
    extraProperties: { default_index: 'objectId', obs_regime: 'Optical', ubatch_generator_seed: String(o.seed) },
  };
  if (opts.signal) writeOpts.signal = opts.signal;
  if (opts.onProgress) writeOpts.onProgress = opts.onProgress;
  return writeHatsCatalog(objectCatalogSql(o), outDir, writeOpts);
}
