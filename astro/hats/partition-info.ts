/**
 * `partition_info.csv`: a header naming at least `Norder` and `Npix` (older
 * catalogs add `Dir` and `num_rows`), then one line per leaf partition.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { HatsPartitionInfoError } from './errors.js';

export interface PartitionInfoRow {
  order: number;
  pixel: number;
  /** Present in older catalogs' `num_rows` column. */
  rows?: number;
}

/** Highest HEALPix order a partition may have (the `_healpix_29` index order). */
export const MAX_HATS_ORDER = 29;

export function parsePartitionInfo(text: string, path: string): PartitionInfoRow[] {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').trim();
  if (header === '') throw new HatsPartitionInfoError(`${path} is empty: expected a header line "Norder,Npix"`, path, 1);
  const cols = header.split(',').map((c) => c.trim());
  const iOrder = cols.indexOf('Norder');
  const iPix = cols.indexOf('Npix');
  const iRows = cols.indexOf('num_rows');
  if (iOrder < 0 || iPix < 0) {
    throw new HatsPartitionInfoError(`${path}: header ${JSON.stringify(header)} lacks Norder and/or Npix columns`, path, 1);
  }
  const rows: PartitionInfoRow[] = [];
  const seen = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '') continue;
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length !== cols.length) {
      throw new HatsPartitionInfoError(
        `${path} line ${i + 1}: ${cells.length} fields, header has ${cols.length} (${JSON.stringify(line)})`,
        path,
        i + 1,
      );
    }
    const order = parseIntCell(cells[iOrder], 'Norder', path, i + 1);
    const pixel = parseIntCell(cells[iPix], 'Npix', path, i + 1);
    if (order > MAX_HATS_ORDER) {
      throw new HatsPartitionInfoError(`${path} line ${i + 1}: Norder ${order} exceeds ${MAX_HATS_ORDER}`, path, i + 1);
    }
    if (pixel >= 12 * 4 ** order) {
      throw new HatsPartitionInfoError(`${path} line ${i + 1}: Npix ${pixel} is out of range for Norder ${order}`, path, i + 1);
    }
    const key = `${order}/${pixel}`;
    if (seen.has(key)) throw new HatsPartitionInfoError(`${path} line ${i + 1}: partition ${key} listed twice`, path, i + 1);
    seen.add(key);
    const row: PartitionInfoRow = { order, pixel };
    if (iRows >= 0) row.rows = parseIntCell(cells[iRows], 'num_rows', path, i + 1);
    rows.push(row);
  }
  return rows;
}

function parseIntCell(cell: string | undefined, name: string, path: string, line: number): number {
  if (cell === undefined || !/^\d+$/.test(cell)) {
    throw new HatsPartitionInfoError(`${path} line ${line}: ${name} ${JSON.stringify(cell ?? '')} is not a non-negative integer`, path, line);
  }
  const v = Number(cell);
  if (!Number.isSafeInteger(v)) throw new HatsPartitionInfoError(`${path} line ${line}: ${name} ${cell} is too large`, path, line);
  return v;
}

export async function readPartitionInfo(path: string): Promise<PartitionInfoRow[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new HatsPartitionInfoError(`cannot read ${path}`, path, undefined, { cause: err });
  }
  return parsePartitionInfo(text, path);
}

export function formatPartitionInfo(rows: readonly { order: number; pixel: number }[]): string {
  return ['Norder,Npix', ...rows.map((r) => `${r.order},${r.pixel}`)].join('\n') + '\n';
}

export async function writePartitionInfo(path: string, rows: readonly { order: number; pixel: number }[]): Promise<void> {
  await writeFile(path, formatPartitionInfo(rows));
}
