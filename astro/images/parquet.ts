/** The image index as a Parquet file (through DuckDB). */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sqlString, withDuck } from '../hats/index.js';
import { ImageIndexFormatError } from './errors.js';
import type { ImageIndexRow } from './index-images.js';

/** Column name in Parquet -> DuckDB type. */
const COLUMNS: [string, string][] = [
  ['path', 'VARCHAR'],
  ['hdu', 'INTEGER'],
  ['extname', 'VARCHAR'],
  ['visit', 'BIGINT'],
  ['detector', 'INTEGER'],
  ['band', 'VARCHAR'],
  ['mjd', 'DOUBLE'],
  ['width', 'INTEGER'],
  ['height', 'INTEGER'],
  ['ra', 'DOUBLE'],
  ['dec', 'DOUBLE'],
  ['corner_ra', 'DOUBLE[]'],
  ['corner_dec', 'DOUBLE[]'],
  ['pixel_scale_arcsec', 'DOUBLE'],
  ['healpix_order', 'INTEGER'],
  ['healpix', 'BIGINT[]'],
];

function toRecord(r: ImageIndexRow): Record<string, unknown> {
  return {
    path: r.path,
    hdu: r.hdu,
    extname: r.extname,
    visit: r.visit,
    detector: r.detector,
    band: r.band,
    mjd: r.mjd,
    width: r.width,
    height: r.height,
    ra: r.ra,
    dec: r.dec,
    corner_ra: r.cornerRa,
    corner_dec: r.cornerDec,
    pixel_scale_arcsec: r.pixelScaleArcsec,
    healpix_order: r.healpixOrder,
    healpix: r.healpix,
  };
}

/** Write rows to a Parquet file (zstd), atomically (temp file + rename). */
export async function writeImageIndex(rows: ImageIndexRow[], parquetPath: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'image-index-'));
  const tmpOut = join(dirname(parquetPath), `.${basename(parquetPath)}.tmp-${randomBytes(4).toString('hex')}`);
  try {
    const jsonl = join(work, 'rows.jsonl');
    await writeFile(jsonl, rows.map((r) => JSON.stringify(toRecord(r))).join('\n') + '\n');
    const cols = `{${COLUMNS.map(([n, t]) => `${sqlString(n)}: ${sqlString(t)}`).join(', ')}}`;
    const select = COLUMNS.map(([n]) => `"${n}"`).join(', ');
    await withDuck(async (conn) => {
      const src = rows.length > 0 ? `read_json(${sqlString(jsonl)}, format = 'newline_delimited', columns = ${cols})` : `(SELECT ${COLUMNS.map(([n, t]) => `NULL::${t} AS "${n}"`).join(', ')} LIMIT 0)`;
      await conn.run(`COPY (SELECT ${select} FROM ${src}) TO ${sqlString(tmpOut)} (FORMAT PARQUET, COMPRESSION ZSTD)`);
    });
    await rename(tmpOut, parquetPath);
  } finally {
    await rm(tmpOut, { force: true });
    await rm(work, { recursive: true, force: true });
  }
}

function num(v: unknown, col: string, path: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new ImageIndexFormatError(`column ${col}: expected a number, got ${typeof v}`, { path });
}

function numOrNull(v: unknown, col: string, path: string): number | null {
  return v === null || v === undefined ? null : num(v, col, path);
}

function strOrNull(v: unknown, col: string, path: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  throw new ImageIndexFormatError(`column ${col}: expected text, got ${typeof v}`, { path });
}

function numList(v: unknown, col: string, path: string): number[] {
  if (!Array.isArray(v)) throw new ImageIndexFormatError(`column ${col}: expected a list`, { path });
  return v.map((x: unknown) => num(x, col, path));
}

/** Read an image index written by writeImageIndex. */
export async function readImageIndex(parquetPath: string): Promise<ImageIndexRow[]> {
  const records = await withDuck(async (conn) => {
    try {
      const r = await conn.runAndReadAll(`SELECT * FROM read_parquet(${sqlString(parquetPath)})`);
      return r.getRowObjectsJS();
    } catch (cause) {
      throw new ImageIndexFormatError('cannot read image index', { path: parquetPath, cause });
    }
  });
  return records.map((rec) => {
    for (const [c] of COLUMNS) if (!(c in rec)) throw new ImageIndexFormatError(`missing column ${c}`, { path: parquetPath });
    const path = strOrNull(rec.path, 'path', parquetPath);
    if (path === null) throw new ImageIndexFormatError('null path', { path: parquetPath });
    return {
      path,
      hdu: num(rec.hdu, 'hdu', parquetPath),
      extname: strOrNull(rec.extname, 'extname', parquetPath),
      visit: numOrNull(rec.visit, 'visit', parquetPath),
      detector: numOrNull(rec.detector, 'detector', parquetPath),
      band: strOrNull(rec.band, 'band', parquetPath),
      mjd: numOrNull(rec.mjd, 'mjd', parquetPath),
      width: num(rec.width, 'width', parquetPath),
      height: num(rec.height, 'height', parquetPath),
      ra: num(rec.ra, 'ra', parquetPath),
      dec: num(rec.dec, 'dec', parquetPath),
      cornerRa: numList(rec.corner_ra, 'corner_ra', parquetPath),
      cornerDec: numList(rec.corner_dec, 'corner_dec', parquetPath),
      pixelScaleArcsec: num(rec.pixel_scale_arcsec, 'pixel_scale_arcsec', parquetPath),
      healpixOrder: num(rec.healpix_order, 'healpix_order', parquetPath),
      healpix: numList(rec.healpix, 'healpix', parquetPath),
    };
  });
}
