/**
 * Planners of the image kinds: image.background, image.stamps, image.inject.
 *
 * JobSpec (the same for `ubatch submit` and `ubatch run`):
 * ```yaml
 * kind: image.background | image.stamps | image.inject
 * input:
 *   images: <index.parquet from `ubatch images index`> | <directory of FITS> | [<FITS path>, ...]
 * select: { cone: { ra, dec, radius_deg } }      # optional: images whose footprint touches the cone
 * params:
 *   bands: [r]                                    # optional, any kind: only these bands
 *   visits: [min, max]                            # optional, any kind: inclusive visit range
 *   # image.background
 *   mode: mesh | lsb        (mesh)    box: 64    filter: 3 (odd)    write_model: false    write_mask: false
 *   # image.stamps
 *   targets: [{ id, ra, dec }, ...]  |  targets_file: <.parquet/.csv with id (or objectId), ra, dec>
 *   size: 64    png: true    stretch: { softening, min, max, scale }    stack: true
 *   resample: none | sinc   (sinc when stack: the epochs line up for the median)
 *   max_targets_per_task: 1000    skip_uncovered: false
 *   # image.inject
 *   sources: { n: 200, mag_min: 18, mag_max: 24, seed: 1, min_separation_px: 4×FWHM }
 *     | catalog: <.parquet/.csv with ra, dec, mag [, id, kind: star|sersic, n, r_eff_arcsec, axis_ratio, pa_deg]>
 *   psf: { type: gaussian | moffat, fwhm, beta }  (default: the image header's PSFFWHM/PSFBETA)
 *   match_radius_px: 2    mag_bins: 0.5 | [edges]    write_images: false    poisson: true    threshold_sigma: 5
 * output: { path: <dir> }                         # required; task i writes <dir>/task-<i>/...
 * ```
 * Tasks: one per image (HDU) for background and inject; for stamps one per
 * sky-map patch (astro/images RingsSkyMap, default config) holding the
 * patch's targets and every selected image covering any of them, so all
 * epochs of an object meet in one task and its stack needs no reduce. A patch
 * with more than max_targets_per_task targets is split (an object never is).
 *
 * Checked at submit: the input exists and is FITS (a directory or list is
 * indexed now, headers only), the selection keeps at least one image,
 * parameters are valid, every target lies on some image (unless
 * skip_uncovered), and for inject the first image has a zero point and a PSF.
 * Parameter parsing is shared with the executors (protocol/image-params.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fits, hats, images } from '../astro/index.js';
import { ApiCode, UbatchApiError, type JobSpec, type PartitionRef } from '../protocol/index.js';
import {
  backgroundParams,
  checkUniqueTargetIds,
  failParam,
  ImageParamError,
  injectParams,
  stampsParams,
  stampTargetOf,
  type ImageFilterParams,
  type ImageRef,
  type SingleImageUnit,
  type StampsUnit,
  type StampTarget,
} from '../protocol/image-params.js';
import type { PlanUnit } from './jobs.js';
import type { Plan } from './planner.js';

/** Reads params.targets_file (Parquet or CSV with id, ra, dec). */
async function readTargetsFile(path: string): Promise<StampTarget[]> {
  const where = '/params/targets_file';
  if (!existsSync(path)) failParam(`targets file not found: ${path}`, where, 'input_not_found');
  const ext = extname(path).toLowerCase();
  const reader = ext === '.parquet' || ext === '.parq' ? `read_parquet(${hats.sqlString(path)})` : ext === '.csv' || ext === '.tsv' || path.endsWith('.csv.gz') ? `read_csv(${hats.sqlString(path)}, header = true)` : failParam(`targets file ${path} must be .parquet or .csv`, where, 'invalid_input');
  let rows: Record<string, unknown>[];
  try {
    rows = await hats.withDuck(async (conn) => {
      const cols = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${reader}`)).getRowObjectsJS().map((r) => String(r['column_name']).toLowerCase());
      for (const c of ['ra', 'dec']) if (!cols.includes(c)) failParam(`targets file ${path} has no column ${c} (columns: ${cols.join(', ')})`, where, 'invalid_input');
      const id = cols.includes('id') ? 'CAST(id AS VARCHAR)' : cols.includes('objectid') ? 'CAST(objectId AS VARCHAR)' : 'CAST(row_number() OVER () - 1 AS VARCHAR)';
      return (await conn.runAndReadAll(`SELECT ${id} AS id, CAST(ra AS DOUBLE) AS ra, CAST(dec AS DOUBLE) AS dec FROM ${reader}`)).getRowObjectsJS();
    });
  } catch (err) {
    if (err instanceof ImageParamError) throw err;
    return failParam(`cannot read targets file ${path}: ${firstLine(err)}`, where, 'invalid_input');
  }
  if (rows.length === 0) failParam(`targets file ${path} has no rows`, where, 'invalid_input');
  const targets = rows.map((r, i) => stampTargetOf(r, `${where} (row ${i})`, i));
  checkUniqueTargetIds(targets, (i) => `${where} (row ${i})`);
  return targets;
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 400);
}

type ImagePlanner = (spec: JobSpec) => Promise<Omit<Plan, 'capability'>>;

const bad = (code: string, message: string, where: string) => new UbatchApiError(code, message, where);

const FITS_EXT = ['.fits', '.fit', '.fts', '.fits.gz', '.fits.fz', '.fz'];
const isFitsName = (p: string) => FITS_EXT.some((e) => p.toLowerCase().endsWith(e));

function requireOutput(spec: JobSpec): void {
  if (!spec.output?.path) throw bad(ApiCode.InvalidSpec, 'output.path (a directory) is required for image kinds', '/output/path');
  if (spec.output.path.replace(/\/+$/, '').endsWith('.parquet')) throw bad(ApiCode.InvalidSpec, 'output.path must be a directory for image kinds (each task writes <path>/task-<i>/)', '/output/path');
}

function failuresText(f: images.ImageIndexFailure[]): string {
  return f.slice(0, 3).map((x) => `${x.path}${x.hdu !== undefined ? ` HDU ${x.hdu}` : ''}: ${x.reason}`).join('; ') + (f.length > 3 ? `; and ${f.length - 3} more` : '');
}

/** The image collection of input.images: an index Parquet, a directory, or a list of FITS files. */
export async function imageIndexRows(spec: JobSpec): Promise<images.ImageIndexRow[]> {
  const raw = spec.input?.images;
  const where = '/input/images';
  if (typeof raw === 'string' && raw !== '') {
    const abs = resolve(raw);
    if (!existsSync(abs)) throw bad(ApiCode.InputNotFound, `input.images not found: ${abs}`, where);
    if (statSync(abs).isDirectory()) {
      const { rows, failures } = await images.indexImagesWithFailures(abs);
      if (failures.length > 0) throw bad(ApiCode.InvalidInput, `${failures.length} file(s) under ${abs} cannot be used as images: ${failuresText(failures)}`, where);
      if (rows.length === 0) throw bad(ApiCode.InvalidInput, `no FITS image with a celestial WCS under ${abs}`, where);
      return rows;
    }
    const ext = extname(abs).toLowerCase();
    if (ext === '.parquet' || ext === '.parq') {
      let rows: images.ImageIndexRow[];
      try {
        rows = await images.readImageIndex(abs);
      } catch (err) {
        throw bad(ApiCode.InvalidInput, `${abs} is not an image index (make one with \`ubatch images index\`): ${(err as Error).message}`, where);
      }
      if (rows.length === 0) throw bad(ApiCode.InvalidInput, `image index ${abs} lists no images`, where);
      const missing = rows.find((r) => !existsSync(r.path));
      if (missing) throw bad(ApiCode.InputNotFound, `image ${missing.path} listed in index ${abs} not found`, where);
      return rows;
    }
    return indexFiles([abs], () => where);
  }
  if (Array.isArray(raw) && raw.length > 0 && raw.every((f) => typeof f === 'string' && f !== '')) {
    const files = (raw as string[]).map((f) => resolve(f));
    files.forEach((f, i) => {
      if (!existsSync(f)) throw bad(ApiCode.InputNotFound, `image not found: ${f}`, `${where}/${i}`);
      if (statSync(f).isDirectory()) throw bad(ApiCode.InvalidSpec, `${f} is a directory: give a directory as input.images itself, not in a list`, `${where}/${i}`);
    });
    return indexFiles(files, (i) => `${where}/${i}`);
  }
  throw bad(ApiCode.InvalidSpec, 'input.images must be an image index (.parquet from `ubatch images index`), a directory of FITS images, or a list of FITS paths', where);
}

async function indexFiles(files: string[], whereOf: (i: number) => string): Promise<images.ImageIndexRow[]> {
  const rows: images.ImageIndexRow[] = [];
  for (const [i, f] of files.entries()) {
    const r = await images.indexImagesWithFailures([f]);
    if (r.failures.length > 0 || r.rows.length === 0) {
      const why = r.failures.length > 0 ? failuresText(r.failures) : 'no image HDU with a celestial WCS';
      throw bad(ApiCode.InvalidInput, `${f} cannot be used as an image${isFitsName(f) ? '' : ' (is it FITS?)'}: ${why}`, whereOf(i));
    }
    rows.push(...r.rows);
  }
  return rows;
}

/** input.images filtered by select.cone, params.bands and params.visits, in (visit, detector, band, path, hdu) order. */
export async function selectedImages(spec: JobSpec, f: ImageFilterParams): Promise<images.ImageIndexRow[]> {
  const all = await imageIndexRows(spec);
  const sel: images.ImageSelection = {};
  const cone = spec.select?.cone;
  if (cone) sel.cone = { ra: cone.ra, dec: cone.dec, radiusDeg: cone.radius_deg };
  if (f.bands) sel.bands = f.bands;
  if (f.visits) sel.visits = f.visits;
  if (spec.select?.pixels) throw bad(ApiCode.InvalidSpec, 'select.pixels does not apply to image kinds; use select.cone', '/select/pixels');
  const rows = images.selectImages(all, sel);
  if (rows.length === 0) {
    const how = [cone ? `cone (${cone.ra}, ${cone.dec}, r=${cone.radius_deg} deg)` : '', f.bands ? `bands ${f.bands.join(',')}` : '', f.visits ? `visits ${f.visits[0]}..${f.visits[1]}` : ''].filter(Boolean).join(', ');
    throw bad(ApiCode.InvalidInput, `no image of the ${all.length} in input.images matches the selection (${how})`, cone ? '/select/cone' : f.bands ? '/params/bands' : '/params/visits');
  }
  const key = (r: images.ImageIndexRow) => [r.visit ?? -1, r.detector ?? -1, r.band ?? '', r.path, r.hdu] as const;
  return [...rows].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
    return 0;
  });
}

export function imageRefOf(r: images.ImageIndexRow): ImageRef {
  return { path: r.path, hdu: r.hdu, visit: r.visit, detector: r.detector, band: r.band, mjd: r.mjd };
}

function singleImageUnits(rows: images.ImageIndexRow[]): PlanUnit[] {
  return rows.map((r, i) => {
    const partition: PartitionRef = { order: -1, pixel: i, files: [r.path] };
    const unit: SingleImageUnit = { image: imageRefOf(r) };
    return { partition, unit };
  });
}

const pixels = (rows: images.ImageIndexRow[]) => rows.reduce((s, r) => s + r.width * r.height, 0);

// ---------------------------------------------------------------------------------------
// footprint test for targets

type V3 = [number, number, number];
const D2R = Math.PI / 180;
const vec = (ra: number, dec: number): V3 => [Math.cos(dec * D2R) * Math.cos(ra * D2R), Math.cos(dec * D2R) * Math.sin(ra * D2R), Math.sin(dec * D2R)];
const dot = (a: V3, b: V3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

interface Footprint {
  centre: V3;
  e: V3;
  n: V3;
  cosRadius: number;
  /** corners in the gnomonic plane about the centre */
  quad: [number, number][];
}

function footprintOf(r: images.ImageIndexRow): Footprint {
  const centre = vec(r.ra, r.dec);
  const e: V3 = [-Math.sin(r.ra * D2R), Math.cos(r.ra * D2R), 0];
  const n: V3 = [-Math.sin(r.dec * D2R) * Math.cos(r.ra * D2R), -Math.sin(r.dec * D2R) * Math.sin(r.ra * D2R), Math.cos(r.dec * D2R)];
  const corners = r.cornerRa.map((ra, i) => vec(ra, r.cornerDec[i]!));
  const cosRadius = Math.min(...corners.map((c) => dot(c, centre)));
  const quad = corners.map((c): [number, number] => [dot(c, e) / dot(c, centre), dot(c, n) / dot(c, centre)]);
  return { centre, e, n, cosRadius, quad };
}

/** Whether (ra, dec) lies inside the image footprint (its 4 corners, a convex quadrilateral). */
function covers(f: Footprint, v: V3): boolean {
  const c = dot(v, f.centre);
  if (c < f.cosRadius - 1e-12 || c <= 0) return false;
  const x = dot(v, f.e) / c;
  const y = dot(v, f.n) / c;
  let sign = 0;
  for (let i = 0; i < f.quad.length; i++) {
    const [ax, ay] = f.quad[i]!;
    const [bx, by] = f.quad[(i + 1) % f.quad.length]!;
    const cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax);
    if (cross === 0) continue;
    const s = cross > 0 ? 1 : -1;
    if (sign === 0) sign = s;
    else if (s !== sign) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------

function paramError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asApiError(err);
  }
}

function asApiError(err: unknown): unknown {
  return err instanceof ImageParamError ? new UbatchApiError(err.code, err.message, err.where, undefined, { cause: err }) : err;
}

async function checkInjectable(r: images.ImageIndexRow, hasPsf: boolean): Promise<void> {
  let headers: fits.FitsHeader[];
  try {
    headers = await fits.readFitsHeaders(r.path);
  } catch (err) {
    throw bad(ApiCode.InvalidInput, `cannot read the headers of ${r.path}: ${(err as Error).message}`, '/input/images');
  }
  const get = (k: string) => headers[r.hdu]?.getNumber(k) ?? headers[0]?.getNumber(k);
  if (get('MAGZERO') === undefined && !((get('FLUXMAG0') ?? 0) > 0) && !((get('PHOTCALIB') ?? 0) > 0)) {
    throw bad(ApiCode.InvalidInput, `image ${r.path} has no photometric zero point (MAGZERO, FLUXMAG0 or PHOTCALIB): magnitudes cannot be turned into counts`, '/input/images');
  }
  if (!hasPsf && !((get('PSFFWHM') ?? 0) > 0)) throw bad(ApiCode.InvalidSpec, `params.psf is required: image ${r.path} has no PSFFWHM header`, '/params/psf');
}

export const imagePlanners: Record<string, ImagePlanner> = {
  'image.background': async (spec) => {
    const p = paramError(() => backgroundParams(spec.params));
    requireOutput(spec);
    const rows = await selectedImages(spec, p);
    const perPixel = p.mode === 'lsb' ? 6e-7 : 1.5e-7;
    return { count: rows.length, units: singleImageUnits(rows), hasReduce: false, estimateCoreSeconds: pixels(rows) * perPixel + rows.length * 0.05 };
  },

  'image.inject': async (spec) => {
    const p = paramError(() => injectParams(spec.params));
    requireOutput(spec);
    if ('catalog' in p.sources && !existsSync(resolve(p.sources.catalog))) throw bad(ApiCode.InputNotFound, `injection catalog not found: ${resolve(p.sources.catalog)}`, '/params/catalog');
    const rows = await selectedImages(spec, p);
    await checkInjectable(rows[0]!, p.psf !== undefined);
    return { count: rows.length, units: singleImageUnits(rows), hasReduce: false, estimateCoreSeconds: pixels(rows) * 8e-7 + rows.length * 0.1 };
  },

  'image.stamps': async (spec) => {
    const p = paramError(() => stampsParams(spec.params));
    requireOutput(spec);
    let targets: StampTarget[];
    try {
      targets = p.targets ?? (await readTargetsFile(resolve(p.targetsFile!)));
    } catch (err) {
      throw asApiError(err);
    }
    const rows = await selectedImages(spec, p);
    const feet = rows.map(footprintOf);
    // images covering each target
    const cover: number[][] = targets.map((t) => {
      const v = vec(t.ra, t.dec);
      const hit: number[] = [];
      feet.forEach((f, k) => {
        if (covers(f, v)) hit.push(k);
      });
      return hit;
    });
    const uncovered = targets.flatMap((t, i) => (cover[i]!.length === 0 ? [i] : []));
    if (uncovered.length > 0 && !p.skipUncovered) {
      const i = uncovered[0]!;
      const t = targets[i]!;
      const where = p.targets ? `/params/targets/${i}` : '/params/targets_file';
      throw bad(
        ApiCode.InvalidInput,
        `target ${JSON.stringify(t.id)} (ra ${t.ra}, dec ${t.dec}) lies outside every selected image${uncovered.length > 1 ? ` (as do ${uncovered.length - 1} other targets)` : ''}; drop it, widen the selection, or set params.skip_uncovered: true`,
        where,
      );
    }
    const skymap = new images.RingsSkyMap();
    const groups = new Map<string, { tract: number; patch: number; targets: number[] }>();
    targets.forEach((t, i) => {
      if (cover[i]!.length === 0) return;
      const tract = skymap.tractFor(t.ra, t.dec);
      const patch = skymap.patchesFor(tract, t.ra, t.dec)[0] ?? -1;
      const k = `${tract}/${patch}`;
      const g = groups.get(k);
      if (g) g.targets.push(i);
      else groups.set(k, { tract, patch, targets: [i] });
    });
    if (groups.size === 0) throw bad(ApiCode.InvalidInput, 'no target lies on any selected image', p.targets ? '/params/targets' : '/params/targets_file');
    const units: PlanUnit[] = [];
    let stamps = 0;
    const sorted = [...groups.values()].sort((a, b) => a.tract - b.tract || a.patch - b.patch);
    for (const g of sorted) {
      for (let s = 0; s < g.targets.length; s += p.maxTargetsPerTask) {
        const chunk = g.targets.slice(s, s + p.maxTargetsPerTask);
        const imgIdx = [...new Set(chunk.flatMap((i) => cover[i]!))].sort((a, b) => a - b);
        stamps += chunk.reduce((n, i) => n + cover[i]!.length, 0);
        const unit: StampsUnit = { tract: g.tract, patch: g.patch, images: imgIdx.map((k) => imageRefOf(rows[k]!)), targets: chunk.map((i) => targets[i]!) };
        units.push({ partition: { order: -1, pixel: units.length, files: [...new Set(unit.images.map((r) => r.path))] }, unit });
      }
    }
    return { count: units.length, units, hasReduce: false, estimateCoreSeconds: stamps * 0.01 + units.reduce((n, u) => n + ((u.unit as StampsUnit).images.length * 0.05), 0) };
  },
};
