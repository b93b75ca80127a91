/**
 * Parameters and task units of the image job kinds (image.background,
 * image.stamps, image.inject): the contract between the planner
 * (coordinator/planners-images.ts), which validates a JobSpec's params at
 * submit and writes one unit per task, and the executors
 * (worker/executors/image-*.ts), which parse the same params again at run time
 * (so both agree on defaults and limits) and read the unit back.
 *
 * Pure: no NATS, no file access, nothing of ours imported. Parameter errors
 * are `ImageParamError` (code + JSON pointer `where`): the planner turns them
 * into UbatchApiError, the executor into InputError. The PSF and stretch types
 * are structurally those of astro/imaging (PsfModel, PngStretchOptions).
 */
import { basename } from 'node:path';

/** A PSF model (astro/imaging PsfModel). */
export type ImagePsfModel = { kind: 'gaussian'; fwhm: number } | { kind: 'moffat'; fwhm: number; beta: number };

/** asinh stretch of PNG previews (astro/imaging PngStretchOptions). */
export interface ImageStretchParams {
  min?: number;
  max?: number;
  softening?: number;
  scale?: number;
}

export class ImageParamError extends Error {
  override name = 'ImageParamError';
  constructor(
    readonly code: string,
    message: string,
    readonly where: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function failParam(message: string, where: string, code = 'invalid_spec'): never {
  throw new ImageParamError(code, message, where);
}

// ---------------------------------------------------------------------------------------
// Units (Task.unit of image tasks)

/** One image HDU of the collection: what the planner copies from the image index. */
export interface ImageRef {
  path: string;
  /** 0-based HDU index of the science image */
  hdu: number;
  visit: number | null;
  detector: number | null;
  band: string | null;
  mjd: number | null;
}

export interface StampTarget {
  id: string;
  ra: number;
  dec: number;
}

/** image.background and image.inject: one image per task. */
export interface SingleImageUnit {
  image: ImageRef;
}

/** image.stamps: every image covering the task's targets (all epochs of each target are in one task). */
export interface StampsUnit {
  /** the sky-map patch the targets sit in (-1 when the job is not grouped by patch) */
  tract: number;
  patch: number;
  images: ImageRef[];
  targets: StampTarget[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function imageRefOf(v: unknown, where: string): ImageRef {
  if (!isObj(v) || typeof v.path !== 'string' || typeof v.hdu !== 'number') return failParam('task unit has no valid image reference', where, 'invalid_task');
  return { path: v.path, hdu: v.hdu, visit: numOrNull(v.visit), detector: numOrNull(v.detector), band: typeof v.band === 'string' ? v.band : null, mjd: numOrNull(v.mjd) };
}

/** Validates the unit of a background/inject task (it came over the wire as unknown). */
export function singleImageUnit(unit: unknown, taskId: string): SingleImageUnit {
  if (!isObj(unit)) return failParam(`task ${taskId} has no image unit`, `task ${taskId}`, 'invalid_task');
  return { image: imageRefOf(unit.image, `task ${taskId}`) };
}

export function stampsUnit(unit: unknown, taskId: string): StampsUnit {
  const where = `task ${taskId}`;
  if (!isObj(unit) || !Array.isArray(unit.images) || !Array.isArray(unit.targets)) return failParam(`task ${taskId} has no stamps unit`, where, 'invalid_task');
  const targets = unit.targets.map((t): StampTarget => {
    if (!isObj(t) || typeof t.id !== 'string' || typeof t.ra !== 'number' || typeof t.dec !== 'number') return failParam('task unit has an invalid target', where, 'invalid_task');
    return { id: t.id, ra: t.ra, dec: t.dec };
  });
  return { tract: numOrNull(unit.tract) ?? -1, patch: numOrNull(unit.patch) ?? -1, images: unit.images.map((r) => imageRefOf(r, where)), targets };
}

/** A short file-name stem for an image: visit/detector/band when known, else the file name (+ HDU). */
export function imageStem(ref: ImageRef): string {
  if (ref.visit !== null) {
    const det = ref.detector !== null ? `-det${String(ref.detector).padStart(3, '0')}` : '';
    return safeName(`visit${String(ref.visit).padStart(4, '0')}${det}${ref.band ? `-${ref.band}` : ''}`);
  }
  let b = basename(ref.path);
  for (const ext of ['.fits.gz', '.fits.fz', '.fits', '.fit', '.fts', '.fz']) if (b.toLowerCase().endsWith(ext)) b = b.slice(0, -ext.length);
  return safeName(ref.hdu > 1 ? `${b}-hdu${ref.hdu}` : b);
}

/** A string usable as one path component. */
export function safeName(s: string): string {
  const t = s.replace(/[^A-Za-z0-9._+-]+/g, '_').replace(/^\.+/, '_');
  return t === '' ? '_' : t.slice(0, 120);
}

// ---------------------------------------------------------------------------------------
// Parameters

const num = (v: unknown, where: string, lo: number, hi: number, dflt: number, integer = false): number => {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) failParam(`${where.slice(1).replaceAll('/', '.')} must be ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}`, where);
  return v as number;
};
const bool = (v: unknown, where: string, dflt: boolean): boolean => {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') failParam(`${where.slice(1).replaceAll('/', '.')} must be true or false`, where);
  return v as boolean;
};

/** Image selection that JobSpec.select cannot express: params.bands and params.visits. */
export interface ImageFilterParams {
  bands?: string[];
  visits?: [number, number];
}

export function imageFilterParams(p: Record<string, unknown>): ImageFilterParams {
  const out: ImageFilterParams = {};
  if (p.bands !== undefined) {
    if (!Array.isArray(p.bands) || p.bands.length === 0 || !p.bands.every((b) => typeof b === 'string' && b !== '')) failParam('params.bands must be a non-empty list of band names', '/params/bands');
    out.bands = p.bands as string[];
  }
  if (p.visits !== undefined) {
    const v = p.visits;
    if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || (v[0] as number) > (v[1] as number)) failParam('params.visits must be [min, max] (inclusive)', '/params/visits');
    out.visits = [v[0] as number, v[1] as number];
  }
  return out;
}

export interface BackgroundParams extends ImageFilterParams {
  mode: 'mesh' | 'lsb';
  box: number;
  filter: number;
  writeModel: boolean;
  writeMask: boolean;
}

/** image.background params: { mode: mesh|lsb (mesh), box: 64, filter: 3, write_model: false, write_mask: false } */
export function backgroundParams(params: unknown): BackgroundParams {
  const p = isObj(params) ? params : {};
  const mode = p.mode ?? 'mesh';
  if (mode !== 'mesh' && mode !== 'lsb') failParam(`params.mode must be "mesh" or "lsb", got ${JSON.stringify(mode)}`, '/params/mode');
  const filter = num(p.filter, '/params/filter', 1, 99, 3, true);
  if (filter % 2 === 0) failParam('params.filter must be odd (a median filter over filter×filter boxes)', '/params/filter');
  return {
    mode: mode as 'mesh' | 'lsb',
    box: num(p.box, '/params/box', 4, 4096, 64, true),
    filter,
    writeModel: bool(p.write_model, '/params/write_model', false),
    writeMask: bool(p.write_mask, '/params/write_mask', false),
    ...imageFilterParams(p),
  };
}

export interface StampsParams extends ImageFilterParams {
  /** inline targets (already validated) */
  targets?: StampTarget[];
  targetsFile?: string;
  size: number;
  png: boolean;
  stretch: ImageStretchParams;
  stack: boolean;
  resample: 'none' | 'sinc';
  /** targets per task at most; a patch with more is split (each object still gets all its epochs in one task) */
  maxTargetsPerTask: number;
  /** drop targets no image covers instead of failing the job */
  skipUncovered: boolean;
}

export const MAX_INLINE_TARGETS = 10_000;

/**
 * image.stamps params: { targets: [{id, ra, dec}] | targets_file: <.parquet|.csv with id, ra, dec>,
 * size: 64, png: true, stretch: {softening, min, max, scale}, stack: true,
 * resample: none|sinc (sinc when stack, so the epochs line up), max_targets_per_task: 1000, skip_uncovered: false }
 */
export function stampsParams(params: unknown): StampsParams {
  const p = isObj(params) ? params : {};
  const hasTargets = p.targets !== undefined;
  const hasFile = p.targets_file !== undefined;
  if (hasTargets === hasFile) failParam('give exactly one of params.targets (a list of {id, ra, dec}) or params.targets_file (a .parquet/.csv with id, ra, dec)', hasTargets ? '/params/targets_file' : '/params/targets');
  const out: StampsParams = {
    size: num(p.size, '/params/size', 3, 1024, 64, true),
    png: bool(p.png, '/params/png', true),
    stretch: {},
    stack: bool(p.stack, '/params/stack', true),
    resample: 'none',
    maxTargetsPerTask: num(p.max_targets_per_task, '/params/max_targets_per_task', 1, 100_000, 1000, true),
    skipUncovered: bool(p.skip_uncovered, '/params/skip_uncovered', false),
    ...imageFilterParams(p),
  };
  const rs = p.resample ?? (out.stack ? 'sinc' : 'none');
  if (rs !== 'none' && rs !== 'sinc') failParam('params.resample must be "none" (integer-aligned cutouts) or "sinc" (Lanczos-3 shift onto the centre)', '/params/resample');
  out.resample = rs as 'none' | 'sinc';
  if (p.stretch !== undefined) {
    if (!isObj(p.stretch)) failParam('params.stretch must be an object {softening, min, max, scale}', '/params/stretch');
    const s = p.stretch as Record<string, unknown>;
    for (const k of Object.keys(s)) if (!['softening', 'min', 'max', 'scale'].includes(k)) failParam(`params.stretch.${k} is not a stretch option (softening, min, max, scale)`, `/params/stretch/${k}`);
    if (s.softening !== undefined) out.stretch.softening = num(s.softening, '/params/stretch/softening', 1e-12, 1e12, 1);
    if (s.min !== undefined) out.stretch.min = num(s.min, '/params/stretch/min', -1e30, 1e30, 0);
    if (s.max !== undefined) out.stretch.max = num(s.max, '/params/stretch/max', -1e30, 1e30, 0);
    if (s.scale !== undefined) out.stretch.scale = num(s.scale, '/params/stretch/scale', 1, 16, 1, true);
    if (out.stretch.min !== undefined && out.stretch.max !== undefined && out.stretch.max <= out.stretch.min) failParam('params.stretch.max must be above params.stretch.min', '/params/stretch/max');
  }
  if (hasFile) {
    if (typeof p.targets_file !== 'string' || p.targets_file === '') failParam('params.targets_file must be the path of a .parquet or .csv file with columns id, ra, dec', '/params/targets_file');
    out.targetsFile = p.targets_file as string;
  } else {
    if (!Array.isArray(p.targets) || p.targets.length === 0) failParam('params.targets must be a non-empty list of {id, ra, dec}', '/params/targets');
    const list = p.targets as unknown[];
    if (list.length > MAX_INLINE_TARGETS) failParam(`params.targets holds ${list.length} targets; more than ${MAX_INLINE_TARGETS} belong in params.targets_file`, '/params/targets');
    out.targets = list.map((t, i) => stampTargetOf(t, `/params/targets/${i}`, i));
    checkUniqueTargetIds(out.targets, (i) => `/params/targets/${i}`);
  }
  return out;
}

/** Validates one target {id, ra, dec} (ra wrapped into [0, 360)); `i` is its default id. */
export function stampTargetOf(t: unknown, where: string, i: number): StampTarget {
  if (!isObj(t)) return failParam('a target must be an object {id, ra, dec}', where);
  const ra = t.ra;
  const dec = t.dec;
  if (typeof ra !== 'number' || !Number.isFinite(ra) || ra < -360 || ra > 720) failParam('target ra must be a number of degrees', `${where}/ra`);
  if (typeof dec !== 'number' || !Number.isFinite(dec) || dec < -90 || dec > 90) failParam('target dec must be a number of degrees from -90 to 90', `${where}/dec`);
  const id = t.id === undefined || t.id === null ? String(i) : typeof t.id === 'string' || typeof t.id === 'number' || typeof t.id === 'bigint' ? String(t.id) : failParam('target id must be a string or a number', `${where}/id`);
  if (id === '') failParam('target id must not be empty', `${where}/id`);
  return { id, ra: (((ra as number) % 360) + 360) % 360, dec: dec as number };
}

/** Target ids name the stamp folders: they must be unique. */
export function checkUniqueTargetIds(targets: StampTarget[], whereOf: (i: number) => string): void {
  const seen = new Map<string, number>();
  targets.forEach((t, i) => {
    const j = seen.get(t.id);
    if (j !== undefined) failParam(`target id ${JSON.stringify(t.id)} appears twice (entries ${j} and ${i}); ids name the stamp folders and must be unique`, whereOf(i));
    seen.set(t.id, i);
  });
}

export type InjectSourcesParams = { n: number; magMin: number; magMax: number; seed: number; minSeparationPx: number } | { catalog: string };

export interface InjectParams extends ImageFilterParams {
  sources: InjectSourcesParams;
  /** undefined: from the image header (PSFFWHM, PSFBETA) */
  psf?: ImagePsfModel;
  matchRadiusPx: number;
  /** bin width, or explicit ascending edges */
  magBins: number | number[];
  writeImages: boolean;
  poisson: boolean;
  thresholdSigma: number;
  seed: number;
}

/**
 * image.inject params: { sources: {n: 200, mag_min: 18, mag_max: 24, seed: 1, min_separation_px: 4×FWHM} | catalog: <.parquet/.csv with ra, dec, mag
 * [, id, kind: star|sersic, n, r_eff_arcsec, axis_ratio, pa_deg]>, psf: {type: gaussian|moffat, fwhm, beta} (default: header PSFFWHM/PSFBETA),
 * match_radius_px: 2, mag_bins: 0.5 | [edges], write_images: false, poisson: true, threshold_sigma: 5 }
 */
export function injectParams(params: unknown): InjectParams {
  const p = isObj(params) ? params : {};
  let sources: InjectSourcesParams;
  if (p.catalog !== undefined && p.sources !== undefined) failParam('give params.sources (random stars) or params.catalog (a source list), not both', '/params/catalog');
  if (p.catalog !== undefined) {
    if (typeof p.catalog !== 'string' || p.catalog === '') failParam('params.catalog must be the path of a .parquet/.csv with ra, dec, mag', '/params/catalog');
    sources = { catalog: p.catalog as string };
  } else {
    const s = p.sources === undefined ? {} : isObj(p.sources) ? p.sources : failParam('params.sources must be an object {n, mag_min, mag_max, seed}', '/params/sources');
    const magMin = num(s.mag_min, '/params/sources/mag_min', 0, 40, 18);
    const magMax = num(s.mag_max, '/params/sources/mag_max', 0, 40, 24);
    if (!(magMax > magMin)) failParam('params.sources.mag_max must be above mag_min', '/params/sources/mag_max');
    sources = {
      n: num(s.n, '/params/sources/n', 1, 100_000, 200, true),
      magMin,
      magMax,
      seed: num(s.seed, '/params/sources/seed', 0, 2 ** 31, 1, true),
      minSeparationPx: num(s.min_separation_px, '/params/sources/min_separation_px', 0, 1000, -1),
    };
  }
  let psf: ImagePsfModel | undefined;
  if (p.psf !== undefined) {
    if (!isObj(p.psf)) failParam('params.psf must be {type: gaussian|moffat, fwhm, beta}', '/params/psf');
    const q = p.psf as Record<string, unknown>;
    const type = q.type ?? 'moffat';
    const fwhm = num(q.fwhm, '/params/psf/fwhm', 0.1, 100, Number.NaN);
    if (Number.isNaN(fwhm)) failParam('params.psf.fwhm (pixels) is required', '/params/psf/fwhm');
    if (type === 'gaussian') psf = { kind: 'gaussian', fwhm };
    else if (type === 'moffat') {
      const beta = num(q.beta, '/params/psf/beta', 1.01, 100, 3.5);
      psf = { kind: 'moffat', fwhm, beta };
    } else failParam('params.psf.type must be "gaussian" or "moffat"', '/params/psf/type');
  }
  let magBins: number | number[] = 0.5;
  if (p.mag_bins !== undefined) {
    if (Array.isArray(p.mag_bins)) {
      const e = p.mag_bins;
      if (e.length < 2 || !e.every((x, i) => typeof x === 'number' && Number.isFinite(x) && (i === 0 || x > (e[i - 1] as number)))) failParam('params.mag_bins must be a bin width or at least two ascending edges', '/params/mag_bins');
      magBins = e as number[];
    } else magBins = num(p.mag_bins, '/params/mag_bins', 0.01, 10, 0.5);
  }
  const seed = 'seed' in sources ? sources.seed : num(p.seed, '/params/seed', 0, 2 ** 31, 1, true);
  return {
    sources,
    ...(psf ? { psf } : {}),
    matchRadiusPx: num(p.match_radius_px, '/params/match_radius_px', 0.1, 50, 2),
    magBins,
    writeImages: bool(p.write_images, '/params/write_images', false),
    poisson: bool(p.poisson, '/params/poisson', true),
    thresholdSigma: num(p.threshold_sigma, '/params/threshold_sigma', 0.5, 100, 5),
    seed,
    ...imageFilterParams(p),
  };
}

/** Bin edges covering [lo, hi] for a width, or the explicit edges. */
export function magBinEdges(bins: number | number[], lo: number, hi: number): number[] {
  if (Array.isArray(bins)) return bins;
  const a = Math.floor(lo / bins) * bins;
  const edges: number[] = [];
  for (let e = a; e < hi + bins * 1e-9 || edges.length < 2; e += bins) edges.push(Math.round(e * 1e6) / 1e6);
  if (edges[edges.length - 1]! <= hi) edges.push(Math.round((edges[edges.length - 1]! + bins) * 1e6) / 1e6);
  return edges;
}

