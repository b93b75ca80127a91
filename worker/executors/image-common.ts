/**
 * What the three image executors (image.background, image.stamps,
 * image.inject) share: reading a calexp-like FITS image (IMAGE + MASK +
 * VARIANCE), writing small row sets as Parquet through DuckDB, and mapping
 * kernel errors to task errors. The per-task units and parameter parsers are
 * in protocol/image-params.ts (re-exported here), shared with the planner.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fits, forEachInLanes, hats, imaging, wcs as wcsNs } from '../../astro/index.js';
import { ImageParamError, type ImageRef } from '../../protocol/image-params.js';
import { InputError, TaskCancelledError } from '../errors.js';
import { fileRecord } from '../files.js';
import { committedPath, type FileRecord } from '../../protocol/index.js';
import type { ExecContext } from '../types.js';

// the parameter parsers and task units live in protocol/ (shared with the planner)
export * from '../../protocol/image-params.js';

type FitsHeader = fits.FitsHeader;
type TanSipWcs = wcsNs.TanSipWcs;
type Image = imaging.Image;

// ---------------------------------------------------------------------------------------
// Reading and writing images

export interface Calexp {
  image: Image;
  wcs: TanSipWcs;
  primary: FitsHeader;
  imageHeader: FitsHeader;
  maskHeader?: FitsHeader;
  varianceHeader?: FitsHeader;
  /** header lookups fall back from the image HDU to the primary (MAGZERO, GAIN, PSFFWHM live there in calexps) */
  numeric: imaging.NumericHeader;
}

export class ImageReadError extends Error {
  override name = 'ImageReadError';
  constructor(readonly code: 'input_not_found' | 'invalid_input', message: string, readonly path: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function toF32(d: fits.FitsData | null): Float32Array | undefined {
  if (d === null) return undefined;
  if (d instanceof Float32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float32Array.from(d, (v) => Number(v));
  return Float32Array.from(d);
}
function toI32(d: fits.FitsData | null): Int32Array | undefined {
  if (d === null) return undefined;
  if (d instanceof Int32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Int32Array.from(d, (v) => Number(v));
  return Int32Array.from(d);
}

/**
 * Reads the science image at `ref.hdu` plus the file's MASK and VARIANCE planes
 * (found by EXTNAME, when the file has them and they match the image's shape).
 */
export async function readCalexp(ref: ImageRef, signal?: AbortSignal): Promise<Calexp> {
  if (!existsSync(ref.path)) throw new ImageReadError('input_not_found', `image not found: ${ref.path}`, ref.path);
  let layouts: fits.HduLayout[];
  try {
    layouts = await fits.scanFits(ref.path);
  } catch (err) {
    throw new ImageReadError('invalid_input', `${ref.path} is not a readable FITS file: ${firstLine(err)}`, ref.path, { cause: err });
  }
  const nameOf = (l: fits.HduLayout) => (l.header.getString('EXTNAME') ?? '').trim().toUpperCase();
  const img = layouts[ref.hdu];
  if (img === undefined) throw new ImageReadError('invalid_input', `${ref.path} has no HDU ${ref.hdu}`, ref.path);
  const wanted = [ref.hdu];
  const maskL = layouts.find((l) => l.index !== ref.hdu && nameOf(l) === 'MASK');
  const varL = layouts.find((l) => l.index !== ref.hdu && nameOf(l) === 'VARIANCE');
  if (maskL) wanted.push(maskL.index);
  if (varL) wanted.push(varL.index);
  let hdus: fits.FitsHdu[];
  try {
    hdus = await fits.readFits(ref.path, { hdus: wanted, ...(signal ? { signal } : {}) });
  } catch (err) {
    throw new ImageReadError('invalid_input', `cannot read the image planes of ${ref.path} (HDU ${wanted.join(', ')}): ${firstLine(err)}`, ref.path, { cause: err });
  }
  const by = new Map(hdus.map((h) => [h.index, h]));
  const ih = by.get(ref.hdu);
  const data = toF32(ih?.data ?? null);
  if (!ih || !data || ih.shape.length !== 2) throw new ImageReadError('invalid_input', `HDU ${ref.hdu} of ${ref.path} is not a 2-D image`, ref.path);
  const [width, height] = ih.shape as [number, number];
  let wcs: TanSipWcs;
  try {
    wcs = wcsNs.TanSipWcs.fromHeader(ih.header);
  } catch (err) {
    throw new ImageReadError('invalid_input', `HDU ${ref.hdu} of ${ref.path} has no usable TAN/TAN-SIP WCS: ${firstLine(err)}`, ref.path, { cause: err });
  }
  const image: Image = { width, height, data };
  const primary = layouts[0]?.header ?? new fits.FitsHeader();
  const out: Calexp = { image, wcs, primary, imageHeader: ih.header, numeric: { getNumber: (k) => ih.header.getNumber(k) ?? primary.getNumber(k) } };
  const mh = maskL ? by.get(maskL.index) : undefined;
  const mask = toI32(mh?.data ?? null);
  if (mh && mask && mask.length === width * height) {
    image.mask = mask;
    out.maskHeader = mh.header;
  }
  const vh = varL ? by.get(varL.index) : undefined;
  const variance = toF32(vh?.data ?? null);
  if (vh && variance && variance.length === width * height) {
    image.variance = variance;
    out.varianceHeader = vh.header;
  }
  return out;
}

/** Header cards of `h` without structure, checksums or EXTNAME (the writer adds its own). */
export function copyCards(h: FitsHeader | undefined): fits.FitsCard[] {
  if (!h) return [];
  return h.cards.filter((c) => !/^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|END|EXTNAME|CHECKSUM|DATASUM|BSCALE|BZERO|BLANK)$/.test(c.key));
}

// ---------------------------------------------------------------------------------------
// Parquet

export type ColumnType = 'VARCHAR' | 'INTEGER' | 'BIGINT' | 'DOUBLE' | 'BOOLEAN';

/**
 * Writes rows as Parquet (zstd) through DuckDB: rows go to a JSON-lines file in
 * `scratchDir`, read back with explicit column types (non-finite numbers become
 * NULL), and copied to `path` via a temporary name.
 */
export async function writeRowsParquet(path: string, columns: ReadonlyArray<readonly [string, ColumnType]>, rows: ReadonlyArray<Record<string, unknown>>, scratchDir: string): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  await mkdir(scratchDir, { recursive: true });
  const tag = randomBytes(4).toString('hex');
  const jsonl = join(scratchDir, `rows-${tag}.jsonl`);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${tag}`);
  const clean = (v: unknown): unknown => (typeof v === 'number' && !Number.isFinite(v) ? null : typeof v === 'bigint' ? Number(v) : v);
  try {
    await writeFile(jsonl, rows.map((r) => JSON.stringify(Object.fromEntries(columns.map(([c]) => [c, clean(r[c])])))).join('\n') + '\n');
    const select = columns.map(([c]) => `"${c}"`).join(', ');
    const src =
      rows.length > 0
        ? `read_json(${hats.sqlString(jsonl)}, format = 'newline_delimited', columns = {${columns.map(([c, t]) => `${hats.sqlString(c)}: ${hats.sqlString(t)}`).join(', ')}})`
        : `(SELECT ${columns.map(([c, t]) => `NULL::${t} AS "${c}"`).join(', ')} LIMIT 0)`;
    await hats.withDuck((conn) => conn.run(`COPY (SELECT ${select} FROM ${src}) TO ${hats.sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`));
    await rename(tmp, path);
  } finally {
    await rm(jsonl, { force: true });
    await rm(tmp, { force: true });
  }
  return rows.length;
}

/**
 * fileRecord (size + sha256) of many files, a few at a time: a stamps task
 * writes thousands of small files, and hashing them all at once (one 1 MiB
 * read buffer per stream) stalls the event loop for seconds.
 */
export async function fileRecordsOf(paths: readonly string[], concurrency = 8): Promise<FileRecord[]> {
  const out = new Array<FileRecord>(paths.length);
  await forEachInLanes(paths.length, concurrency, async (i) => {
    out[i] = await fileRecord(paths[i]!);
  });
  return out;
}

export function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 400);
}

/** Lets the event loop run (heartbeats, in-progress acks) between CPU-heavy kernel calls. */
export const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Maps what an image executor throws to the worker's task errors: bad
 * parameters, unreadable inputs, all-masked images and missing zero points
 * are InputError (a retry cannot help); an aborted kernel becomes a
 * cancellation (the daemon tells cancel from wall-time by the signal's
 * reason); anything else (a failed write, say) stays retryable.
 */
export function toTaskError(err: unknown, where: string, signal: AbortSignal): unknown {
  if (err instanceof ImageParamError) return new InputError(err.message, err.code, err.where, { cause: err });
  if (err instanceof ImageReadError) return new InputError(err.message, err.code, err.path, { cause: err });
  if (signal.aborted || err instanceof imaging.ImagingAbortedError || err instanceof fits.FitsAbortError) return new TaskCancelledError('cancelled', { cause: err });
  if (err instanceof imaging.ZeroPointError) return new InputError(`${err.message}; give the image a MAGZERO/FLUXMAG0/PHOTCALIB header`, 'no_zero_point', where, { cause: err });
  if (err instanceof imaging.InsufficientDataError) return new InputError(err.message, 'insufficient_data', where, { cause: err });
  if (err instanceof imaging.ImagingOptionError || err instanceof imaging.ImageShapeError) return new InputError(err.message, 'invalid_input', where, { cause: err });
  if (err instanceof imaging.ImagingIoError && !/^cannot write/.test(err.message)) return new InputError(`${err.message}${err.cause ? `: ${firstLine(err.cause)}` : ''}`, 'invalid_input', err.path ?? where, { cause: err });
  if (err instanceof fits.FitsError) return new InputError(`FITS error: ${err.message}`, 'invalid_input', where, { cause: err });
  return err;
}

/** where a file the attempt writes at `rel` will be once committed: under the job's output path, else in the attempt dir */
export function finalPathOf(ctx: ExecContext): (rel: string) => string {
  return (rel) => (ctx.spec.output?.path ? committedPath(ctx.spec, false, ctx.task, rel) : join(ctx.outDir, rel));
}
