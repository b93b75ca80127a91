/**
 * Image collections: scan FITS files (headers only) and record, per science
 * image HDU, its identity (visit, detector, band, time), size, sky footprint
 * and the HEALPix pixels it covers.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FitsHeader, imageHeaderFromCompressed, scanFits, type HduLayout } from '../fits/index.js';
import { TanSipWcs } from '../wcs/index.js';
import { ang2pix, boundaries, pixelAreaSr, queryDisc } from '../healpix/index.js';
import { ImagesAbortError } from './errors.js';
import { separationDeg } from './sphere.js';

export interface ImageIndexRow {
  /** absolute path of the FITS file */
  path: string;
  /** 0-based HDU index of the image */
  hdu: number;
  extname: string | null;
  visit: number | null;
  detector: number | null;
  band: string | null;
  /** MJD of the exposure start (MJD-OBS, or DATE-OBS converted) */
  mjd: number | null;
  width: number;
  height: number;
  /** sky position of the image centre, degrees */
  ra: number;
  dec: number;
  /** the 4 corners (outer pixel edges) in the order (0,0), (0,h), (w,h), (w,0), degrees */
  cornerRa: number[];
  cornerDec: number[];
  pixelScaleArcsec: number;
  healpixOrder: number;
  /** NESTED HEALPix pixels at `healpixOrder` that overlap the footprint, ascending */
  healpix: number[];
}

export interface ImageIndexFailure {
  path: string;
  hdu?: number;
  reason: string;
}

export interface MetadataKeywords {
  /** @default ['VISIT', 'EXPID', 'EXPNUM', 'OBSID'] */
  visit?: string[];
  /** @default ['DETECTOR', 'CCDNUM', 'DETID', 'CHIPID', 'CCD_ID'] */
  detector?: string[];
  /** @default ['BAND', 'FILTER', 'FILTER1'] */
  band?: string[];
  /** MJD keywords tried before DATE-OBS. @default ['MJD-OBS', 'MJD_OBS', 'MJD'] */
  mjd?: string[];
}

export interface IndexImagesOptions {
  /** descend into sub-directories. @default true */
  recursive?: boolean;
  /** file name endings treated as FITS (case-insensitive). @default .fits .fit .fts .fits.gz .fits.fz .fz */
  extensions?: string[];
  /**
   * Which HDUs of a file become rows: 'science' = the HDUs named IMAGE/SCI when
   * there are any, else every 2-D image HDU with a celestial WCS; 'all' = every
   * 2-D image HDU with a WCS. @default 'science'
   */
  hdus?: 'science' | 'all';
  /** @default 8 */
  healpixOrder?: number;
  keywords?: MetadataKeywords;
  signal?: AbortSignal;
  /** files done, files total */
  onProgress?: (done: number, total: number) => void;
  /** called for every file or HDU that could not be indexed */
  onFailure?: (failure: ImageIndexFailure) => void;
}

const DEFAULT_EXTENSIONS = ['.fits', '.fit', '.fts', '.fits.gz', '.fits.fz', '.fz'];
const SCIENCE_NAMES = new Set(['IMAGE', 'SCI']);

async function listFiles(root: string, recursive: boolean, exts: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (recursive) await walk(p);
      } else if (e.isFile() && exts.some((x) => e.name.toLowerCase().endsWith(x))) {
        out.push(p);
      }
    }
  };
  await walk(root);
  return out;
}

function firstValue(headers: FitsHeader[], keys: string[]): string | number | bigint | boolean | null | undefined {
  for (const h of headers) for (const k of keys) {
    const v = h.get(k);
    if (v !== undefined && v !== null && v !== '') return v;
  }
  return undefined;
}

function asNumber(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && /^\s*[+-]?\d+(\.\d*)?\s*$/.test(v)) return Number(v);
  return null;
}

/** ISO-8601 date(time) -> MJD (UTC treated as is). */
export function isoToMjd(iso: string): number | null {
  const s = iso.trim();
  if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return null;
  const t = Date.parse(/[zZ]|[+-]\d{2}:\d{2}$/.test(s) || s.length === 10 ? s : `${s}Z`);
  if (Number.isNaN(t)) return null;
  return t / 86400000 + 40587;
}

function mjdOf(headers: FitsHeader[], keys: string[]): number | null {
  const m = asNumber(firstValue(headers, keys));
  if (m !== null) return m;
  const d = firstValue(headers, ['DATE-OBS', 'DATE_OBS']);
  return typeof d === 'string' ? isoToMjd(d) : null;
}

/**
 * NESTED HEALPix pixels at `order` overlapping the image: pixels hit by a
 * sample grid over the image (spacing <= 1/4 of a HEALPix pixel), plus disc
 * candidates with a boundary point inside the image.
 */
export function imageHealpixCoverage(wcs: TanSipWcs, width: number, height: number, order: number): number[] {
  const hits = new Set<number>();
  const pixDeg = (Math.sqrt(pixelAreaSr(order)) * 180) / Math.PI;
  const scaleDeg = wcs.pixelScaleArcsec() / 3600;
  const step = Math.max(1, Math.min(width, height, pixDeg / 4 / scaleDeg, Math.max(width, height) / 256));
  const xs: number[] = [];
  for (let x = -0.5; x < width - 0.5; x += step) xs.push(x);
  xs.push(width - 0.5);
  const ys: number[] = [];
  for (let y = -0.5; y < height - 0.5; y += step) ys.push(y);
  ys.push(height - 0.5);
  for (const x of xs) for (const y of ys) {
    const [ra, dec] = wcs.pixelToSky(x, y);
    hits.add(ang2pix(order, ra, dec));
  }
  const [cra, cdec] = wcs.pixelToSky((width - 1) / 2, (height - 1) / 2);
  let radius = 0;
  for (const [ra, dec] of wcs.footprint(width, height, { edges: true })) radius = Math.max(radius, separationDeg(cra, cdec, ra, dec));
  for (const p of queryDisc(order, cra, cdec, radius, { inclusive: true })) {
    if (hits.has(p)) continue;
    for (const b of boundaries(order, p, 2)) {
      const [x, y] = wcs.skyToPixel(b.ra, b.dec);
      if (x >= -0.5 && x <= width - 0.5 && y >= -0.5 && y <= height - 0.5) {
        hits.add(p);
        break;
      }
    }
  }
  return [...hits].sort((a, b) => a - b);
}

interface Candidate {
  layout: HduLayout;
  header: FitsHeader;
  width: number;
  height: number;
}

function imageCandidates(layouts: HduLayout[]): Candidate[] {
  const out: Candidate[] = [];
  for (const l of layouts) {
    let header: FitsHeader;
    if (l.kind === 'image') header = l.header;
    else if (l.kind === 'compressed-image') header = imageHeaderFromCompressed(l.header);
    else continue;
    const naxis = header.getNumber('NAXIS') ?? 0;
    const w = header.getNumber('NAXIS1') ?? 0;
    const h = header.getNumber('NAXIS2') ?? 0;
    if (naxis !== 2 || w <= 0 || h <= 0) continue;
    if (!header.has('CTYPE1') || !header.has('CTYPE2')) continue;
    out.push({ layout: l, header, width: w, height: h });
  }
  return out;
}

/** Rows for one file (throws when the file cannot be read at all). */
export async function indexImageFile(path: string, opts: IndexImagesOptions = {}): Promise<{ rows: ImageIndexRow[]; failures: ImageIndexFailure[] }> {
  const abs = resolve(path);
  const layouts = await scanFits(abs);
  const primary = layouts[0]?.header ?? new FitsHeader();
  let cands = imageCandidates(layouts);
  if ((opts.hdus ?? 'science') === 'science') {
    const sci = cands.filter((c) => SCIENCE_NAMES.has((c.header.getString('EXTNAME') ?? '').trim().toUpperCase()));
    if (sci.length > 0) cands = sci;
  }
  const kw = opts.keywords ?? {};
  const order = opts.healpixOrder ?? 8;
  const rows: ImageIndexRow[] = [];
  const failures: ImageIndexFailure[] = [];
  if (cands.length === 0) failures.push({ path: abs, reason: 'no 2-D image HDU with a celestial WCS (CTYPE1/CTYPE2)' });
  for (const c of cands) {
    const headers = c.layout.index === 0 ? [c.header] : [c.header, primary];
    try {
      const wcs = TanSipWcs.fromHeader(c.header);
      const fp = wcs.footprint(c.width, c.height, { edges: true });
      const [ra, dec] = wcs.pixelToSky((c.width - 1) / 2, (c.height - 1) / 2);
      const band = firstValue(headers, kw.band ?? ['BAND', 'FILTER', 'FILTER1']);
      const extname = c.header.getString('EXTNAME');
      rows.push({
        path: abs,
        hdu: c.layout.index,
        extname: extname === undefined ? null : extname.trim(),
        visit: asNumber(firstValue(headers, kw.visit ?? ['VISIT', 'EXPID', 'EXPNUM', 'OBSID'])),
        detector: asNumber(firstValue(headers, kw.detector ?? ['DETECTOR', 'CCDNUM', 'DETID', 'CHIPID', 'CCD_ID'])),
        band: band === undefined || band === null ? null : String(band).trim(),
        mjd: mjdOf(headers, kw.mjd ?? ['MJD-OBS', 'MJD_OBS', 'MJD']),
        width: c.width,
        height: c.height,
        ra,
        dec,
        cornerRa: fp.map((p) => p[0]),
        cornerDec: fp.map((p) => p[1]),
        pixelScaleArcsec: wcs.pixelScaleArcsec(),
        healpixOrder: order,
        healpix: imageHealpixCoverage(wcs, c.width, c.height, order),
      });
    } catch (e) {
      failures.push({ path: abs, hdu: c.layout.index, reason: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    }
  }
  return { rows, failures };
}

/**
 * Index a directory (recursively) or a list of FITS files. Files or HDUs that
 * cannot be indexed are reported (`failures`, and `opts.onFailure`), never fatal.
 */
export async function indexImagesWithFailures(dirOrFiles: string | string[], opts: IndexImagesOptions = {}): Promise<{ rows: ImageIndexRow[]; failures: ImageIndexFailure[] }> {
  const exts = (opts.extensions ?? DEFAULT_EXTENSIONS).map((e) => e.toLowerCase());
  let files: string[];
  if (typeof dirOrFiles === 'string') {
    const st = await stat(dirOrFiles);
    files = st.isDirectory() ? await listFiles(dirOrFiles, opts.recursive ?? true, exts) : [dirOrFiles];
  } else {
    files = [...dirOrFiles];
  }
  const rows: ImageIndexRow[] = [];
  const failures: ImageIndexFailure[] = [];
  const fail = (f: ImageIndexFailure): void => {
    failures.push(f);
    opts.onFailure?.(f);
  };
  for (const [i, f] of files.entries()) {
    if (opts.signal?.aborted === true) throw new ImagesAbortError({ path: f });
    try {
      const r = await indexImageFile(f, opts);
      rows.push(...r.rows);
      r.failures.forEach(fail);
    } catch (e) {
      fail({ path: resolve(f), reason: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    }
    opts.onProgress?.(i + 1, files.length);
  }
  return { rows, failures };
}

/** Index a directory (recursively) or a list of FITS files; failures go to `opts.onFailure`. */
export async function indexImages(dirOrFiles: string | string[], opts: IndexImagesOptions = {}): Promise<ImageIndexRow[]> {
  return (await indexImagesWithFailures(dirOrFiles, opts)).rows;
}
