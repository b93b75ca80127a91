/**
 * Postage stamps: integer-aligned cutouts around sky positions with a WCS whose CRPIX is
 * shifted so the requested position maps to its exact fractional place in the stamp
 * (optionally Lanczos-3 resampled so it lands on the stamp centre), edge padding with the
 * NO_DATA bit, FITS and PNG writers, multi-epoch stacks, and a fast reader over many files
 * (whole planes from an in-memory cache when a file has many stamps, sections otherwise).
 */
import { readFits, readFitsHeaders, readFitsSection, writeFits, FitsHeader, type FitsCard, type FitsData, type WriteHdu } from '../fits/index.js';
import { TanSipWcs } from '../wcs/index.js';
import { ImagingIoError, ImagingOptionError, throwIfAborted } from './errors.js';
import { MaskBit, type Image, type KernelRunOptions } from './types.js';

export type StampResample = 'none' | 'sinc';

export interface StampOptions {
  /** 'sinc' shifts the pixels (Lanczos-3) so the position sits exactly on the stamp centre. @default 'none' */
  resample?: StampResample;
  /** Value of pixels outside the image. @default NaN */
  fill?: 'nan' | 'zero';
}

/** An image to cut from: in memory, with its WCS. */
export interface StampSourceImage {
  id: string;
  image: Image;
  wcs: TanSipWcs;
  mjd?: number;
  band?: string;
}

export interface StampRequest {
  id?: string | number;
  ra: number;
  dec: number;
}

export interface Stamp {
  requestId?: string | number;
  imageId: string;
  ra: number;
  dec: number;
  size: number;
  /** Parent-image pixel of stamp pixel (0, 0) (before any resampling shift). */
  x0: number;
  y0: number;
  data: Float32Array;
  mask: Int32Array;
  variance?: Float32Array;
  /** WCS of the stamp (0-based pixels of the stamp). */
  wcs: TanSipWcs;
  /** Where (ra, dec) falls in stamp pixels; equals ((size−1)/2, (size−1)/2) when resampled. */
  centerX: number;
  centerY: number;
  /** Some pixels lie outside the parent image (padded, NO_DATA set). */
  partial: boolean;
  /** Fraction of stamp pixels with data. */
  coverage: number;
  resampled: boolean;
  mjd?: number;
  band?: string;
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new ImagingOptionError('size', size, 'stamp size must be an integer in 1..4096');
}

/** Copies the window [x0, x0+sw) × [y0, y0+sh) of a plane, padding outside with `pad`. */
function copyWindow<T extends Float32Array | Int32Array>(src: T | undefined, w: number, h: number, x0: number, y0: number, sw: number, sh: number, out: T, pad: number): void {
  out.fill(pad);
  if (src === undefined) return;
  const xa = Math.max(0, x0);
  const xb = Math.min(w, x0 + sw);
  if (xb <= xa) return;
  for (let j = 0; j < sh; j++) {
    const y = y0 + j;
    if (y < 0 || y >= h) continue;
    out.set(src.subarray(y * w + xa, y * w + xb), j * sw + (xa - x0));
  }
}

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

/** Lanczos-3 taps for a shift f ∈ [-0.5, 0.5]: value(i) = Σ_k taps[k]·src(i + k − 3), k = 0..6 (renormalised to sum 1). */
function lanczosTaps(f: number): Float64Array {
  const t = new Float64Array(7);
  let s = 0;
  for (let k = 0; k < 7; k++) {
    t[k] = lanczos3(k - 3 - f);
    s += t[k]!;
  }
  for (let k = 0; k < 7; k++) t[k] = t[k]! / s;
  return t;
}

/**
 * Cuts one stamp of `size`×`size` around (ra, dec); returns undefined when the stamp does not
 * overlap the image at all.
 */
export function cutStamp(src: StampSourceImage, ra: number, dec: number, size: number, opts: StampOptions = {}): Stamp | undefined {
  checkSize(size);
  const [x, y] = src.wcs.skyToPixel(ra, dec);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return undefined;
  return cutStampAtPixel(src.image, src.wcs, src.id, ra, dec, x, y, size, opts, src.mjd, src.band);
}

function cutStampAtPixel(
  image: Image,
  wcs: TanSipWcs,
  imageId: string,
  ra: number,
  dec: number,
  x: number,
  y: number,
  size: number,
  opts: StampOptions,
  mjd?: number,
  band?: string,
): Stamp | undefined {
  const { width: w, height: h } = image;
  const half = (size - 1) / 2;
  const x0 = Math.round(x - half);
  const y0 = Math.round(y - half);
  const resample = opts.resample ?? 'none';
  const pad = opts.fill === 'zero' ? 0 : Number.NaN;
  const margin = resample === 'sinc' ? 3 : 0;
  if (x0 + size + margin <= 0 || y0 + size + margin <= 0 || x0 - margin >= w || y0 - margin >= h) return undefined;
  const n = size * size;
  let data: Float32Array = new Float32Array(n);
  let mask: Int32Array = new Int32Array(n);
  let variance: Float32Array | undefined = image.variance !== undefined ? new Float32Array(n) : undefined;
  let stampWcs: TanSipWcs;
  let centerX = x - x0;
  let centerY = y - y0;
  if (resample === 'none') {
    copyWindow(image.data, w, h, x0, y0, size, size, data, pad);
    copyWindow(image.mask, w, h, x0, y0, size, size, mask, 0);
    if (variance !== undefined) copyWindow(image.variance, w, h, x0, y0, size, size, variance, pad);
    stampWcs = wcs.shifted(x0, y0);
  } else if (resample === 'sinc') {
    const fx = centerX - half;
    const fy = centerY - half;
    const big = size + 2 * margin;
    const bd = new Float32Array(big * big);
    const bm = new Int32Array(big * big);
    copyWindow(image.data, w, h, x0 - margin, y0 - margin, big, big, bd, Number.NaN);
    copyWindow(image.mask, w, h, x0 - margin, y0 - margin, big, big, bm, 0);
    const tx = lanczosTaps(fx);
    const ty = lanczosTaps(fy);
    const shift = (plane: Float32Array, squared: boolean): Float32Array => {
      const tmp = new Float64Array(big * size);
      for (let j = 0; j < big; j++) {
        for (let i = 0; i < size; i++) {
          let s = 0;
          for (let k = 0; k < 7; k++) {
            const t = squared ? tx[k]! * tx[k]! : tx[k]!;
            s += t * plane[j * big + i + margin + k - 3]!;
          }
          tmp[j * size + i] = s;
        }
      }
      const out = new Float32Array(n);
      for (let j = 0; j < size; j++) {
        for (let i = 0; i < size; i++) {
          let s = 0;
          for (let k = 0; k < 7; k++) {
            const t = squared ? ty[k]! * ty[k]! : ty[k]!;
            s += t * tmp[(j + margin + k - 3) * size + i]!;
          }
          out[j * size + i] = s;
        }
      }
      return out;
    };
    data = shift(bd, false);
    for (let i = 0; i < n; i++) if (data[i] !== data[i]) data[i] = pad;
    if (variance !== undefined) {
      const bv = new Float32Array(big * big);
      copyWindow(image.variance, w, h, x0 - margin, y0 - margin, big, big, bv, Number.NaN);
      variance = shift(bv, true);
      for (let i = 0; i < n; i++) if (variance[i] !== variance[i]) variance[i] = pad;
    }
    // A resampled pixel carries the OR of the masks of the pixels it draws from.
    mask = new Int32Array(n);
    for (let j = 0; j < size; j++) {
      for (let i = 0; i < size; i++) {
        let m = 0;
        for (let dy = -3; dy <= 3; dy++) for (let dx = -3; dx <= 3; dx++) m |= bm[(j + margin + dy) * big + i + margin + dx]!;
        mask[j * size + i] = m;
      }
    }
    stampWcs = wcs.shifted(x0 + fx, y0 + fy);
    centerX = half;
    centerY = half;
  } else {
    throw new ImagingOptionError('resample', resample, "must be 'none' or 'sinc'");
  }
  // NO_DATA where the stamp pixel lies outside the parent image.
  let covered = 0;
  for (let j = 0; j < size; j++) {
    const py = y0 + j;
    for (let i = 0; i < size; i++) {
      const px = x0 + i;
      if (px < 0 || py < 0 || px >= w || py >= h) mask[j * size + i] = mask[j * size + i]! | MaskBit.NO_DATA;
      else covered++;
    }
  }
  if (covered === 0) return undefined;
  const stamp: Stamp = {
    imageId,
    ra,
    dec,
    size,
    x0,
    y0,
    data,
    mask,
    wcs: stampWcs,
    centerX,
    centerY,
    partial: covered < n,
    coverage: covered / n,
    resampled: resample === 'sinc',
  };
  if (variance !== undefined) stamp.variance = variance;
  if (mjd !== undefined) stamp.mjd = mjd;
  if (band !== undefined) stamp.band = band;
  return stamp;
}

/** Conservative sky bounding box of an image (RA range may wrap), for quick rejection before projecting. */
interface SkyBox {
  decMin: number;
  decMax: number;
  raCenter: number;
  raHalfWidth: number;
}

function skyBox(wcs: TanSipWcs, w: number, h: number, marginPx: number): SkyBox {
  const pts: [number, number][] = [];
  for (const fx of [0, 0.5, 1]) for (const fy of [0, 0.5, 1]) pts.push(wcs.pixelToSky(-marginPx + fx * (w - 1 + 2 * marginPx), -marginPx + fy * (h - 1 + 2 * marginPx)));
  const [raC, decC] = wcs.pixelToSky((w - 1) / 2, (h - 1) / 2);
  let decMin = 90;
  let decMax = -90;
  let half = 0;
  for (const [r, d] of pts) {
    decMin = Math.min(decMin, d);
    decMax = Math.max(decMax, d);
    let dr = Math.abs(r - raC);
    if (dr > 180) dr = 360 - dr;
    half = Math.max(half, dr);
  }
  const slack = (wcs.pixelScaleArcsec() / 3600) * 4 + 1e-6;
  const nearPole = Math.max(Math.abs(decMin), Math.abs(decMax)) > 80;
  return { decMin: decMin - slack, decMax: decMax + slack, raCenter: raC, raHalfWidth: nearPole ? 180 : half * 1.05 + slack / Math.cos((decC * Math.PI) / 180) };
}

function inSkyBox(b: SkyBox, ra: number, dec: number): boolean {
  if (dec < b.decMin || dec > b.decMax) return false;
  let dr = Math.abs(ra - b.raCenter) % 360;
  if (dr > 180) dr = 360 - dr;
  return dr <= b.raHalfWidth;
}

/** Stamps of every request from every in-memory image covering it. */
export function cutStamps(images: readonly StampSourceImage[], requests: readonly StampRequest[], size: number, opts: StampOptions & KernelRunOptions = {}): Stamp[] {
  checkSize(size);
  const out: Stamp[] = [];
  for (let k = 0; k < images.length; k++) {
    throwIfAborted(opts.signal, 'stamp cutting');
    const src = images[k]!;
    const box = skyBox(src.wcs, src.image.width, src.image.height, size);
    for (const r of requests) {
      if (!inSkyBox(box, r.ra, r.dec)) continue;
      const s = cutStamp(src, r.ra, r.dec, size, opts);
      if (s === undefined) continue;
      if (r.id !== undefined) s.requestId = r.id;
      out.push(s);
    }
    opts.onProgress?.(k + 1, images.length);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Files

/** A calexp-like FITS file: planes found by EXTNAME (IMAGE, MASK, VARIANCE) or HDU index. */
export interface StampFile {
  path: string;
  /** Defaults to the path. */
  id?: string;
  image?: number | string;
  mask?: number | string | null;
  variance?: number | string | null;
}

interface LoadedPlanes {
  image: Image;
  wcs: TanSipWcs;
  mjd?: number;
  band?: string;
  bytes: number;
}

/** LRU cache of decoded image planes keyed by path, bounded by bytes. */
export class StampImageCache {
  private readonly entries = new Map<string, LoadedPlanes>();
  private used = 0;
  constructor(readonly maxBytes = 512 * 1024 * 1024) {}
  get(key: string): LoadedPlanes | undefined {
    const e = this.entries.get(key);
    if (e !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }
  set(key: string, v: LoadedPlanes): void {
    this.entries.set(key, v);
    this.used += v.bytes;
    for (const [k, e] of this.entries) {
      if (this.used <= this.maxBytes || this.entries.size <= 1) break;
      this.entries.delete(k);
      this.used -= e.bytes;
    }
  }
}

function toFloat32(d: FitsData | null, path: string, hdu: number | string): Float32Array {
  if (d === null) throw new ImagingIoError(`HDU ${String(hdu)} has no image data`, path);
  if (d instanceof Float32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float32Array.from(d, (v) => Number(v));
  return Float32Array.from(d);
}

function toInt32(d: FitsData | Float64Array | Float32Array | null, path: string, hdu: number | string): Int32Array {
  if (d === null) throw new ImagingIoError(`HDU ${String(hdu)} has no mask data`, path);
  if (d instanceof Int32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Int32Array.from(d, (v) => Number(v));
  return Int32Array.from(d);
}

interface FileMeta {
  wcs: TanSipWcs;
  width: number;
  height: number;
  imageHdu: number;
  maskHdu: number | undefined;
  varianceHdu: number | undefined;
  mjd?: number;
  band?: string;
}

async function readMeta(f: StampFile): Promise<FileMeta> {
  let headers: FitsHeader[];
  try {
    headers = await readFitsHeaders(f.path);
  } catch (e) {
    throw new ImagingIoError('cannot read FITS headers', f.path, undefined, { cause: e });
  }
  const find = (sel: number | string | null | undefined, dflt: string, required: boolean): number | undefined => {
    if (sel === null) return undefined;
    if (typeof sel === 'number') return sel;
    const name = (sel ?? dflt).toUpperCase();
    const i = headers.findIndex((h) => (h.getString('EXTNAME') ?? '').trim().toUpperCase() === name);
    if (i >= 0) return i;
    if (!required) return undefined;
    // A plain single-image file: the primary HDU.
    const p = headers.findIndex((h) => (h.getNumber('NAXIS') ?? 0) >= 2);
    if (p >= 0 && sel === undefined) return p;
    throw new ImagingIoError(`no HDU named ${name}`, f.path);
  };
  const imageHdu = find(f.image, 'IMAGE', true)!;
  const ih = headers[imageHdu];
  if (ih === undefined) throw new ImagingIoError('image HDU not found', f.path, imageHdu);
  const width = ih.getNumber('NAXIS1') ?? 0;
  const height = ih.getNumber('NAXIS2') ?? 0;
  let wcs: TanSipWcs;
  try {
    wcs = TanSipWcs.fromHeader(ih);
  } catch (e) {
    throw new ImagingIoError('image HDU has no usable TAN/TAN-SIP WCS', f.path, imageHdu, { cause: e });
  }
  const primary = headers[0];
  const meta: FileMeta = { wcs, width, height, imageHdu, maskHdu: find(f.mask, 'MASK', false), varianceHdu: find(f.variance, 'VARIANCE', false) };
  const mjd = ih.getNumber('MJD-OBS') ?? primary?.getNumber('MJD-OBS');
  if (mjd !== undefined) meta.mjd = mjd;
  const band = ih.getString('BAND') ?? primary?.getString('BAND') ?? primary?.getString('FILTER');
  if (band !== undefined) meta.band = band.trim();
  return meta;
}

async function loadPlanes(f: StampFile, meta: FileMeta): Promise<LoadedPlanes> {
  const wanted = [meta.imageHdu, meta.maskHdu, meta.varianceHdu].filter((v): v is number => v !== undefined);
  let hdus;
  try {
    hdus = await readFits(f.path, { hdus: wanted });
  } catch (e) {
    throw new ImagingIoError('cannot read image planes', f.path, undefined, { cause: e });
  }
  const byIndex = new Map(hdus.map((h) => [h.index, h]));
  const image: Image = { width: meta.width, height: meta.height, data: toFloat32(byIndex.get(meta.imageHdu)?.data ?? null, f.path, meta.imageHdu) };
  if (meta.maskHdu !== undefined) image.mask = toInt32(byIndex.get(meta.maskHdu)?.data ?? null, f.path, meta.maskHdu);
  if (meta.varianceHdu !== undefined) image.variance = toFloat32(byIndex.get(meta.varianceHdu)?.data ?? null, f.path, meta.varianceHdu);
  const planes: LoadedPlanes = { image, wcs: meta.wcs, bytes: meta.width * meta.height * 4 * wanted.length };
  if (meta.mjd !== undefined) planes.mjd = meta.mjd;
  if (meta.band !== undefined) planes.band = meta.band;
  return planes;
}

/** Reads just the stamp window (clipped to the image) of the planes, padded like cutStamp. */
async function stampFromSections(f: StampFile, meta: FileMeta, r: StampRequest, x: number, y: number, size: number, opts: StampOptions): Promise<Stamp | undefined> {
  const half = (size - 1) / 2;
  const margin = opts.resample === 'sinc' ? 3 : 0;
  const x0 = Math.round(x - half) - margin;
  const y0 = Math.round(y - half) - margin;
  const span = size + 2 * margin;
  const xa = Math.max(0, x0);
  const ya = Math.max(0, y0);
  const xb = Math.min(meta.width, x0 + span);
  const yb = Math.min(meta.height, y0 + span);
  if (xb <= xa || yb <= ya) return undefined;
  const sec = { x0: xa, y0: ya, width: xb - xa, height: yb - ya };
  // A small Image holding the window; the stamp is cut from it at shifted coordinates.
  const read = async (hdu: number): Promise<Float32Array | Float64Array> => {
    try {
      return (await readFitsSection(f.path, hdu, sec)).data;
    } catch (e) {
      throw new ImagingIoError('cannot read stamp section', f.path, hdu, { cause: e });
    }
  };
  const d = await read(meta.imageHdu);
  const win: Image = { width: sec.width, height: sec.height, data: d instanceof Float32Array ? d : Float32Array.from(d) };
  if (meta.maskHdu !== undefined) win.mask = toInt32(await read(meta.maskHdu), f.path, meta.maskHdu);
  if (meta.varianceHdu !== undefined) {
    const v = await read(meta.varianceHdu);
    win.variance = v instanceof Float32Array ? v : Float32Array.from(v);
  }
  const s = cutStampAtPixel(win, meta.wcs.shifted(xa, ya), f.id ?? f.path, r.ra, r.dec, x - xa, y - ya, size, opts, meta.mjd, meta.band);
  if (s === undefined) return undefined;
  // Report parent-image coordinates and NO_DATA relative to the full image, not the window.
  s.x0 += xa;
  s.y0 += ya;
  let covered = 0;
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const px = s.x0 + i;
      const py = s.y0 + j;
      const inside = px >= 0 && py >= 0 && px < meta.width && py < meta.height;
      if (inside) {
        covered++;
        s.mask[j * size + i] = s.mask[j * size + i]! & ~MaskBit.NO_DATA;
      } else s.mask[j * size + i] = s.mask[j * size + i]! | MaskBit.NO_DATA;
    }
  }
  s.coverage = covered / (size * size);
  s.partial = covered < size * size;
  return s;
}

export interface FileStampOptions extends StampOptions, KernelRunOptions {
  /** Shared cache of whole decoded planes. @default a new 512 MiB cache per call */
  cache?: StampImageCache;
  /**
   * Read whole planes (and cache them) when a file has at least this many stamps; fewer are read
   * with readFitsSection (one open + header scan per plane per stamp, so a few ms each).
   * @default one stamp per 16 MiB of planes (3 for a 2048² calexp), at least 1
   */
  wholeImageThreshold?: number;
}

/**
 * Stamps of every request from every file covering it, yielded file by file; progress is
 * reported in files.
 */
export async function* streamStampsFromFiles(files: readonly StampFile[], requests: readonly StampRequest[], size: number, opts: FileStampOptions = {}): AsyncGenerator<Stamp> {
  checkSize(size);
  const cache = opts.cache ?? new StampImageCache();
  for (let k = 0; k < files.length; k++) {
    throwIfAborted(opts.signal, 'stamp reading');
    const f = files[k]!;
    const meta = await readMeta(f);
    const box = skyBox(meta.wcs, meta.width, meta.height, size);
    const hits: Array<{ r: StampRequest; x: number; y: number }> = [];
    const half = (size - 1) / 2;
    const margin = opts.resample === 'sinc' ? 3 : 0;
    for (const r of requests) {
      if (!inSkyBox(box, r.ra, r.dec)) continue;
      const [x, y] = meta.wcs.skyToPixel(r.ra, r.dec);
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      const x0 = Math.round(x - half);
      const y0 = Math.round(y - half);
      if (x0 + size + margin <= 0 || y0 + size + margin <= 0 || x0 - margin >= meta.width || y0 - margin >= meta.height) continue;
      hits.push({ r, x, y });
    }
    if (hits.length > 0) {
      const planeCount = 1 + (meta.maskHdu !== undefined ? 1 : 0) + (meta.varianceHdu !== undefined ? 1 : 0);
      const threshold = opts.wholeImageThreshold ?? Math.max(1, Math.round((meta.width * meta.height * 4 * planeCount) / (16 * 1024 * 1024)));
      const key = `${f.path}#${meta.imageHdu}`;
      let planes = cache.get(key);
      if (planes === undefined && hits.length >= threshold) {
        planes = await loadPlanes(f, meta);
        cache.set(key, planes);
      }
      for (const h of hits) {
        const s =
          planes !== undefined
            ? cutStampAtPixel(planes.image, planes.wcs, f.id ?? f.path, h.r.ra, h.r.dec, h.x, h.y, size, opts, planes.mjd, planes.band)
            : await stampFromSections(f, meta, h.r, h.x, h.y, size, opts);
        if (s === undefined) continue;
        if (h.r.id !== undefined) s.requestId = h.r.id;
        yield s;
      }
    }
    opts.onProgress?.(k + 1, files.length);
  }
}

/** Array form of {@link streamStampsFromFiles}. */
export async function cutStampsFromFiles(files: readonly StampFile[], requests: readonly StampRequest[], size: number, opts: FileStampOptions = {}): Promise<Stamp[]> {
  const out: Stamp[] = [];
  for await (const s of streamStampsFromFiles(files, requests, size, opts)) out.push(s);
  return out;
}

// ---------------------------------------------------------------------------------------
// Writers and stacks

/** Writes a stamp as FITS: primary (metadata) + IMAGE, MASK, VARIANCE extensions, each with the stamp WCS. */
export async function writeStampFits(path: string, stamp: Stamp, extraCards: readonly FitsCard[] = []): Promise<void> {
  const wcsCards = stamp.wcs.toCards();
  const primary: FitsCard[] = [
    { key: 'RA', value: stamp.ra, comment: 'requested position (deg)' },
    { key: 'DEC', value: stamp.dec, comment: 'requested position (deg)' },
    { key: 'IMAGEID', value: stamp.imageId },
    { key: 'STAMPX0', value: stamp.x0, comment: 'parent pixel of stamp (0,0), 0-based' },
    { key: 'STAMPY0', value: stamp.y0, comment: 'parent pixel of stamp (0,0), 0-based' },
    { key: 'CENTERX', value: stamp.centerX, comment: 'position in stamp pixels, 0-based' },
    { key: 'CENTERY', value: stamp.centerY, comment: 'position in stamp pixels, 0-based' },
    { key: 'PARTIAL', value: stamp.partial, comment: 'stamp crosses the image edge' },
    { key: 'COVERAGE', value: stamp.coverage },
    { key: 'RESAMPLD', value: stamp.resampled, comment: 'Lanczos-3 shifted to the centre' },
  ];
  if (stamp.requestId !== undefined) primary.push({ key: 'OBJID', value: String(stamp.requestId) });
  if (stamp.mjd !== undefined) primary.push({ key: 'MJD-OBS', value: stamp.mjd });
  if (stamp.band !== undefined) primary.push({ key: 'BAND', value: stamp.band });
  primary.push(...extraCards);
  const shape = [stamp.size, stamp.size];
  const hdus: WriteHdu[] = [
    { header: new FitsHeader(primary), data: null },
    { header: new FitsHeader(wcsCards), data: stamp.data, shape, bitpix: -32, name: 'IMAGE' },
    { header: new FitsHeader(wcsCards), data: stamp.mask, shape, bitpix: 32, name: 'MASK' },
  ];
  if (stamp.variance !== undefined) hdus.push({ header: new FitsHeader(wcsCards), data: stamp.variance, shape, bitpix: -32, name: 'VARIANCE' });
  try {
    await writeFits(path, hdus);
  } catch (e) {
    throw new ImagingIoError('cannot write stamp FITS', path, undefined, { cause: e });
  }
}

export interface PngStretchOptions {
  /** Black level (ADU). @default median of the finite pixels */
  min?: number;
  /** White level (ADU). @default 99.5th percentile */
  max?: number;
  /** asinh softening (ADU): linear below, logarithmic above. @default robust σ (1.4826 MAD), at least 1e-6 */
  softening?: number;
  /** Integer upscaling (nearest neighbour). @default 1 */
  scale?: number;
}

/** 8-bit asinh-stretched greyscale of an image (rows flipped so north-up images look right). */
export function asinhStretch(data: Float32Array, width: number, height: number, opts: PngStretchOptions = {}): Uint8Array {
  const finite: number[] = [];
  for (let i = 0; i < data.length; i++) if (Number.isFinite(data[i]!)) finite.push(data[i]!);
  finite.sort((a, b) => a - b);
  const q = (p: number): number => (finite.length === 0 ? 0 : finite[Math.min(finite.length - 1, Math.max(0, Math.floor(p * (finite.length - 1))))]!);
  const med = q(0.5);
  const lo = opts.min ?? med;
  const hi = opts.max ?? q(0.995);
  let soft = opts.softening;
  if (soft === undefined) {
    const dev = finite.map((v) => Math.abs(v - med)).sort((a, b) => a - b);
    soft = Math.max(1e-6, 1.4826 * (dev[dev.length >> 1] ?? 0));
  }
  if (!(soft > 0)) throw new ImagingOptionError('softening', soft, 'must be > 0');
  const top = Math.asinh(Math.max(hi - lo, 1e-12) / soft);
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const src = (height - 1 - y) * width;
    for (let x = 0; x < width; x++) {
      const v = data[src + x]!;
      if (!Number.isFinite(v)) continue;
      const t = Math.asinh(Math.max(0, v - lo) / soft) / top;
      out[y * width + x] = Math.round(255 * Math.min(1, Math.max(0, t)));
    }
  }
  return out;
}

/** Writes an asinh-stretched PNG preview with sharp. */
export async function writeStampPng(path: string, img: { data: Float32Array; width?: number; height?: number; size?: number }, opts: PngStretchOptions = {}): Promise<void> {
  const width = img.width ?? img.size;
  const height = img.height ?? img.size;
  if (width === undefined || height === undefined) throw new ImagingOptionError('size', undefined, 'need width/height or size');
  const grey = asinhStretch(img.data, width, height, opts);
  const scale = opts.scale ?? 1;
  if (!Number.isInteger(scale) || scale < 1) throw new ImagingOptionError('scale', scale, 'must be a positive integer');
  try {
    // Loaded on first use: sharp is a native module that most stamp users never need.
    const { default: sharp } = await import('sharp');
    let p = sharp(Buffer.from(grey.buffer, grey.byteOffset, grey.byteLength), { raw: { width, height, channels: 1 } });
    if (scale > 1) p = p.resize(width * scale, height * scale, { kernel: 'nearest' });
    await p.png().toFile(path);
  } catch (e) {
    throw new ImagingIoError('cannot write PNG preview', path, undefined, { cause: e });
  }
}

export interface StampStack {
  size: number;
  /** Epochs in MJD order (undefined MJDs last). */
  stamps: Stamp[];
  mjds: Array<number | undefined>;
  /** k × size × size cube, epoch-major. */
  cube: Float32Array;
  /** Per-pixel median over epochs with data (NaN where none). */
  median: Float32Array;
  /** Epochs contributing to each pixel. */
  count: Uint16Array;
}

/**
 * Multi-epoch stack of one object's stamps (same size): cube in MJD order and a median that
 * leaves out NaN and pixels flagged with `badBits`.
 */
export function stackStamps(stamps: readonly Stamp[], badBits: number = MaskBit.NO_DATA | MaskBit.BAD | MaskBit.SAT | MaskBit.CR): StampStack {
  if (stamps.length === 0) throw new ImagingOptionError('stamps', 0, 'need at least one stamp');
  const size = stamps[0]!.size;
  if (stamps.some((s) => s.size !== size)) throw new ImagingOptionError('stamps', stamps.map((s) => s.size), 'all stamps must have the same size');
  const sorted = [...stamps].sort((a, b) => (a.mjd ?? Infinity) - (b.mjd ?? Infinity));
  const n = size * size;
  const cube = new Float32Array(sorted.length * n);
  sorted.forEach((s, k) => cube.set(s.data, k * n));
  const median = new Float32Array(n);
  const count = new Uint16Array(n);
  const buf = new Float64Array(sorted.length);
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (const s of sorted) {
      const v = s.data[i]!;
      if (v === v && (s.mask[i]! & badBits) === 0) buf[m++] = v;
    }
    count[i] = m;
    if (m === 0) {
      median[i] = Number.NaN;
      continue;
    }
    const a = buf.subarray(0, m).sort();
    median[i] = m % 2 === 1 ? a[m >> 1]! : 0.5 * (a[(m >> 1) - 1]! + a[m >> 1]!);
  }
  return { size, stamps: sorted, mjds: sorted.map((s) => s.mjd), cube, median, count };
}

/** Groups stamps by requestId (stamps without one are grouped under their ra/dec). */
export function groupStampsByObject(stamps: readonly Stamp[]): Map<string | number, Stamp[]> {
  const m = new Map<string | number, Stamp[]>();
  for (const s of stamps) {
    const key = s.requestId ?? `${s.ra},${s.dec}`;
    const list = m.get(key);
    if (list === undefined) m.set(key, [s]);
    else list.push(s);
  }
  return m;
}
