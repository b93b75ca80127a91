/**
 * Reading FITS files: HDU scanning (headers only, data skipped by offset),
 * image data with BSCALE/BZERO, tile-compressed images, and row-range
 * sections read straight from disk.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { BLOCK_LENGTH, FitsHeader, parseHeaderCards } from './header.js';
import { applyScaling, bytesPerPixel, decodeRaw, isValidBitpix, scaledArrayFor, type FitsData, type ScaleInfo } from './data.js';
import { decompressImage } from './compressed.js';
import {
  FitsAbortError,
  FitsFormatError,
  FitsHduNotFoundError,
  FitsSectionError,
  FitsUnsupportedError,
} from './errors.js';

export type HduKind = 'image' | 'compressed-image' | 'bintable' | 'table' | 'random-groups' | 'other';

export interface FitsHdu {
  /** 0-based position in the file */
  index: number;
  /** EXTNAME, when present */
  name?: string;
  header: FitsHeader;
  /** BITPIX of the stored (or, for compressed images, decompressed) pixels */
  bitpix: number;
  /** [NAXIS1, NAXIS2, ...]: width first */
  shape: number[];
  /** pixel values (scaled unless `scale: false`); null when there is no image data or the HDU is a table */
  data: FitsData | null;
  kind: HduKind;
}

export interface ReadFitsOptions {
  /** only these HDUs (0-based indices or EXTNAMEs, case-insensitive); default all */
  hdus?: number[] | string[];
  /**
   * Apply BSCALE/BZERO (and BLANK -> NaN). Default true. See `applyScaling` for
   * the resulting array types; false returns the stored integers untouched.
   */
  scale?: boolean;
  signal?: AbortSignal;
  /** progress in bytes of pixel data read / decompressed */
  onProgress?: (done: number, total: number) => void;
}

/** Where an HDU lives in the file. */
export interface HduLayout {
  index: number;
  header: FitsHeader;
  headerOffset: number;
  dataOffset: number;
  /** bytes of data, without the padding to a 2880 multiple */
  dataBytes: number;
  kind: HduKind;
}

// ---------------------------------------------------------------------------
// byte sources

interface ByteSource {
  readonly path: string;
  readonly size: number;
  /** true when bytes returned by read() are private copies that may be modified (byte-swapped) in place */
  readonly ownsReads: boolean;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

class BufferSource implements ByteSource {
  constructor(
    readonly path: string,
    private readonly buf: Uint8Array,
    /** the buffer is ours (an inflated .gz), not the caller's */
    readonly ownsReads = false,
  ) {}
  get size(): number {
    return this.buf.length;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    return Promise.resolve(this.buf.subarray(offset, Math.min(offset + length, this.buf.length)));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class FileSource implements ByteSource {
  readonly ownsReads = true;
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}
  static async open(path: string): Promise<FileSource> {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      return new FileSource(path, fh, st.size);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.allocUnsafe(n);
    const got = await this.readInto(offset, buf);
    return buf.subarray(0, got);
  }
  /** Fill `target` from `offset`; returns the bytes read (short at end of file). */
  async readInto(offset: number, target: Uint8Array): Promise<number> {
    let got = 0;
    while (got < target.length) {
      const { bytesRead } = await this.fh.read(target, got, target.length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

async function openSource(path: string): Promise<ByteSource> {
  const src = await FileSource.open(path);
  const magic = await src.read(0, 2);
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    // gzip-compressed file (e.g. *.fits.gz): inflate it whole
    await src.close();
    const z = await readFile(path);
    let raw: Buffer;
    try {
      raw = gunzipSync(z);
    } catch (cause) {
      throw new FitsFormatError('cannot gunzip file', { path, cause });
    }
    return new BufferSource(path, raw, true);
  }
  return src;
}

// ---------------------------------------------------------------------------
// scanning

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function dataSizeOf(h: FitsHeader, primary: boolean): { bytes: number; kind: HduKind } {
  const bitpix = h.getNumber('BITPIX') ?? 8;
  const naxis = h.getNumber('NAXIS') ?? 0;
  const pcount = h.getNumber('PCOUNT') ?? 0;
  const gcount = h.getNumber('GCOUNT') ?? 1;
  const axes: number[] = [];
  for (let i = 1; i <= naxis; i++) axes.push(h.getNumber(`NAXIS${i}`) ?? 0);
  let kind: HduKind;
  if (primary) {
    kind = h.getBoolean('GROUPS') === true && axes[0] === 0 ? 'random-groups' : 'image';
  } else {
    const x = (h.getString('XTENSION') ?? '').trim().toUpperCase();
    if (x === 'IMAGE' || x === 'IUEIMAGE') kind = 'image';
    else if (x === 'BINTABLE' || x === 'A3DTABLE') kind = h.getBoolean('ZIMAGE') === true ? 'compressed-image' : 'bintable';
    else if (x === 'TABLE') kind = 'table';
    else kind = 'other';
  }
  if (naxis === 0) return { bytes: 0, kind };
  let n = 1;
  const from = kind === 'random-groups' ? 1 : 0;
  for (let i = from; i < axes.length; i++) n *= axes[i] as number;
  const bytes = bytesPerPixel(bitpix) * gcount * (pcount + n);
  return { bytes, kind };
}

/** Read the header starting at `offset`; returns the header and where its data starts. */
async function readHeaderAt(src: ByteSource, offset: number, index: number): Promise<{ header: FitsHeader; dataOffset: number }> {
  let text = '';
  let pos = offset;
  // read a few blocks at a time: most headers fit in one or two
  for (;;) {
    const chunk = await src.read(pos, BLOCK_LENGTH * 4);
    const whole = Math.floor(chunk.length / BLOCK_LENGTH) * BLOCK_LENGTH;
    if (whole === 0) throw new FitsFormatError('header without END card (file truncated?)', { path: src.path, hdu: index });
    for (let b = 0; b < whole; b += BLOCK_LENGTH) {
      const block = latin1(chunk.subarray(b, b + BLOCK_LENGTH));
      text += block;
      pos += BLOCK_LENGTH;
      // END must be a card of its own: check card starts only
      for (let c = 0; c < BLOCK_LENGTH; c += 80) {
        if (block.startsWith('END', c) && block.slice(c + 3, c + 80).trim() === '') {
          const { cards } = parseHeaderCards(text, { path: src.path, hdu: index });
          return { header: new FitsHeader(cards), dataOffset: pos };
        }
      }
    }
  }
}

async function scan(src: ByteSource, stopAfter = Infinity): Promise<HduLayout[]> {
  const out: HduLayout[] = [];
  let offset = 0;
  while (offset < src.size && out.length <= stopAfter) {
    const index = out.length;
    const head = latin1(await src.read(offset, 10));
    if (index === 0) {
      if (!head.startsWith('SIMPLE  =')) throw new FitsFormatError('not a FITS file (no SIMPLE card)', { path: src.path });
    } else if (!head.startsWith('XTENSION=')) {
      // trailing bytes after the last HDU are ignored, as astropy does
      break;
    }
    const { header, dataOffset } = await readHeaderAt(src, offset, index);
    if (index === 0 && header.getBoolean('SIMPLE') !== true) {
      throw new FitsUnsupportedError('SIMPLE=F', 'primary header has SIMPLE = F (non-standard FITS)', { path: src.path, hdu: 0 });
    }
    const bitpix = header.getNumber('BITPIX');
    if (bitpix === undefined || !isValidBitpix(bitpix)) {
      throw new FitsFormatError(`invalid or missing BITPIX ${String(bitpix)}`, { path: src.path, hdu: index });
    }
    const { bytes, kind } = dataSizeOf(header, index === 0);
    out.push({ index, header, headerOffset: offset, dataOffset, dataBytes: bytes, kind });
    offset = dataOffset + Math.ceil(bytes / BLOCK_LENGTH) * BLOCK_LENGTH;
  }
  return out;
}

function extName(h: FitsHeader): string | undefined {
  const n = h.getString('EXTNAME');
  return n === undefined ? undefined : n.trim();
}

function selectLayouts(all: HduLayout[], wanted: number[] | string[] | undefined, path: string): HduLayout[] {
  if (wanted === undefined) return all;
  return (wanted as (number | string)[]).map((w) => {
    const hit =
      typeof w === 'number'
        ? all.find((l) => l.index === w)
        : all.find((l) => extName(l.header)?.toUpperCase() === w.toUpperCase());
    if (hit === undefined) throw new FitsHduNotFoundError(w, { path });
    return hit;
  });
}

function shapeOf(h: FitsHeader): number[] {
  const naxis = h.getNumber('NAXIS') ?? 0;
  const s: number[] = [];
  for (let i = 1; i <= naxis; i++) s.push(h.getNumber(`NAXIS${i}`) ?? 0);
  return s;
}

function scaleInfo(h: FitsHeader): { bscale: number; bzero: number; blank: number | bigint | undefined } {
  const blank = h.get('BLANK');
  return {
    bscale: h.getNumber('BSCALE') ?? 1,
    bzero: h.getNumber('BZERO') ?? 0,
    blank: typeof blank === 'number' || typeof blank === 'bigint' ? blank : undefined,
  };
}

const CHUNK = 16 * 1024 * 1024;

async function readDataBytes(src: ByteSource, l: HduLayout, opts: ReadFitsOptions, progress: { done: number; total: number }): Promise<Uint8Array> {
  if (l.dataOffset + l.dataBytes > src.size) {
    throw new FitsFormatError(`data truncated: need ${l.dataBytes} bytes at offset ${l.dataOffset}, file has ${src.size}`, { path: src.path, hdu: l.index });
  }
  if (l.dataBytes <= CHUNK) {
    const b = await src.read(l.dataOffset, l.dataBytes);
    progress.done += l.dataBytes;
    opts.onProgress?.(progress.done, progress.total);
    return b;
  }
  // one allocation, filled chunk by chunk straight from the file (no intermediate copies)
  const out = Buffer.allocUnsafeSlow(l.dataBytes);
  for (let o = 0; o < l.dataBytes; o += CHUNK) {
    if (opts.signal?.aborted === true) throw new FitsAbortError({ path: src.path, hdu: l.index });
    const n = Math.min(CHUNK, l.dataBytes - o);
    const target = out.subarray(o, o + n);
    if (src instanceof FileSource) await src.readInto(l.dataOffset + o, target);
    else target.set(await src.read(l.dataOffset + o, n));
    progress.done += n;
    opts.onProgress?.(progress.done, progress.total);
  }
  return out;
}

/** Bytes per step when scaled data is decoded chunk by chunk. */
const SCALE_CHUNK = 4 * 1024 * 1024;

/**
 * Scaled image data (BSCALE/BZERO, BLANK, unsigned conventions) read in
 * SCALE_CHUNK steps through one small buffer, each step byte-swapped in place
 * and scaled straight into the output: the raw integers never exist whole in
 * memory (for a 4k x 4k int16 image: 4 MiB instead of 32 MiB of fresh pages).
 * null when the data needs no scaling (the caller's one-read path is best then).
 */
async function readScaledInChunks(src: FileSource, l: HduLayout, bitpix: number, si: ScaleInfo, opts: ReadFitsOptions, progress: { done: number; total: number }): Promise<FitsData | null> {
  const bpp = bytesPerPixel(bitpix);
  const n = Math.floor(l.dataBytes / bpp);
  const per = Math.max(1, Math.floor(SCALE_CHUNK / bpp));
  const chunk = Buffer.allocUnsafeSlow(Math.min(per, n) * bpp);
  const out = scaledArrayFor(decodeRaw(chunk.subarray(0, 0), bitpix), bitpix, si, n);
  if (out === null) return null;
  if (l.dataOffset + l.dataBytes > src.size) {
    throw new FitsFormatError(`data truncated: need ${l.dataBytes} bytes at offset ${l.dataOffset}, file has ${src.size}`, { path: src.path, hdu: l.index });
  }
  for (let i = 0; i < n; i += per) {
    if (opts.signal?.aborted === true) throw new FitsAbortError({ path: src.path, hdu: l.index });
    const m = Math.min(per, n - i);
    const target = chunk.subarray(0, m * bpp);
    const got = await src.readInto(l.dataOffset + i * bpp, target);
    if (got < target.length) throw new FitsFormatError('data truncated', { path: src.path, hdu: l.index });
    applyScaling(decodeRaw(target, bitpix, true), bitpix, si, { out, offset: i });
    progress.done += m * bpp;
    opts.onProgress?.(progress.done, progress.total);
  }
  return out;
}

async function loadHdu(src: ByteSource, l: HduLayout, opts: ReadFitsOptions, progress: { done: number; total: number }): Promise<FitsHdu> {
  const ctx = { path: src.path, hdu: l.index };
  const scale = opts.scale ?? true;
  const base = (header: FitsHeader, bitpix: number, shape: number[], data: FitsData | null, kind: HduKind): FitsHdu => {
    const hdu: FitsHdu = { index: l.index, header, bitpix, shape, data, kind };
    const name = extName(header);
    if (name !== undefined) hdu.name = name;
    return hdu;
  };
  const h = l.header;
  switch (l.kind) {
    case 'image': {
      const shape = shapeOf(h);
      const bitpix = h.getNumber('BITPIX') as number;
      if (l.dataBytes === 0) return base(h, bitpix, shape, null, 'image');
      if (scale && src instanceof FileSource && l.dataBytes > SCALE_CHUNK) {
        const scaled = await readScaledInChunks(src, l, bitpix, scaleInfo(h), opts, progress);
        if (scaled !== null) return base(h, bitpix, shape, scaled, 'image');
      }
      const raw = decodeRaw(await readDataBytes(src, l, opts, progress), bitpix, src.ownsReads);
      return base(h, bitpix, shape, scale ? applyScaling(raw, bitpix, scaleInfo(h)) : raw, 'image');
    }
    case 'compressed-image': {
      const bytes = await readDataBytes(src, l, opts, progress);
      const img = decompressImage(h, bytes, { ...ctx, ...(opts.signal ? { signal: opts.signal } : {}) });
      const data = scale ? applyScaling(img.data, img.bitpix, scaleInfo(img.header)) : img.data;
      return base(img.header, img.bitpix, img.shape, data, 'compressed-image');
    }
    case 'random-groups':
      throw new FitsUnsupportedError('random-groups', 'random-groups primary HDU (GROUPS = T) is not supported', ctx);
    default:
      // tables and unknown extensions: header only
      return base(h, h.getNumber('BITPIX') as number, shapeOf(h), null, l.kind);
  }
}

async function readFromSource(src: ByteSource, opts: ReadFitsOptions): Promise<FitsHdu[]> {
  const all = await scan(src);
  const chosen = selectLayouts(all, opts.hdus, src.path);
  const progress = { done: 0, total: chosen.reduce((a, l) => a + (l.kind === 'image' || l.kind === 'compressed-image' ? l.dataBytes : 0), 0) };
  const out: FitsHdu[] = [];
  for (const l of chosen) {
    if (opts.signal?.aborted === true) throw new FitsAbortError({ path: src.path, hdu: l.index });
    out.push(await loadHdu(src, l, opts, progress));
  }
  return out;
}

/**
 * Read HDUs of a FITS file (plain or gzip-compressed). Image HDUs (primary,
 * IMAGE, tile-compressed) come with their pixels; tables with header only.
 */
export async function readFits(path: string, opts: ReadFitsOptions = {}): Promise<FitsHdu[]> {
  const src = await openSource(path);
  try {
    return await readFromSource(src, opts);
  } finally {
    await src.close();
  }
}

/** Same as readFits, from bytes in memory. */
export async function parseFits(buffer: Uint8Array, opts: ReadFitsOptions = {}, label = '<buffer>'): Promise<FitsHdu[]> {
  return readFromSource(new BufferSource(label, buffer), opts);
}

/** Headers and data locations of every HDU, without reading any pixels. */
export async function scanFits(path: string): Promise<HduLayout[]> {
  const src = await openSource(path);
  try {
    return await scan(src);
  } finally {
    await src.close();
  }
}

/** Just the headers (cheap: data blocks are skipped by offset). */
export async function readFitsHeaders(path: string): Promise<FitsHeader[]> {
  return (await scanFits(path)).map((l) => l.header);
}

export interface FitsSection {
  /** 0-based first column */
  x0: number;
  /** 0-based first row */
  y0: number;
  width: number;
  height: number;
}

export interface ReadSectionOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** for NAXIS > 2: which 2-D plane (0-based index over axes 3..n flattened); default 0 */
  plane?: number;
}

/**
 * Read a rectangle of an image HDU, reading only the rows it needs from disk
 * (tile-compressed and gzipped files are decompressed whole). Values are scaled
 * (BSCALE/BZERO, BLANK -> NaN) and returned as Float32Array for BITPIX 8/16/-32,
 * Float64Array for 32/64/-64. Any part outside the image is an error.
 */
export async function readFitsSection(
  path: string,
  hdu: number | string,
  section: FitsSection,
  opts: ReadSectionOptions = {},
): Promise<{ data: Float32Array | Float64Array; width: number; height: number; header: FitsHeader }> {
  const src = await openSource(path);
  try {
    const all = await scan(src);
    const [l] = selectLayouts(all, typeof hdu === 'number' ? [hdu] : [hdu], path);
    if (l === undefined) throw new FitsHduNotFoundError(hdu, { path });
    const ctx = { path, hdu: l.index };
    const { x0, y0, width, height } = section;
    if (![x0, y0, width, height].every(Number.isInteger) || width <= 0 || height <= 0) {
      throw new FitsSectionError(`section must be positive integers, got ${JSON.stringify(section)}`, ctx);
    }
    let header = l.header;
    let shape: number[];
    let bitpix: number;
    let rowsOf: (first: number, count: number) => Promise<FitsData>;
    if (l.kind === 'compressed-image') {
      const bytes = await readDataBytes(src, l, opts, { done: 0, total: l.dataBytes });
      const img = decompressImage(l.header, bytes, { ...ctx, ...(opts.signal ? { signal: opts.signal } : {}) });
      header = img.header;
      shape = img.shape;
      bitpix = img.bitpix;
      const w = shape[0] ?? 0;
      const planeOff = (opts.plane ?? 0) * w * (shape[1] ?? 1);
      rowsOf = (first, count) => Promise.resolve(img.data.subarray(planeOff + first * w, planeOff + (first + count) * w));
    } else if (l.kind === 'image') {
      shape = shapeOf(header);
      bitpix = header.getNumber('BITPIX') as number;
      const bpp = bytesPerPixel(bitpix);
      const w = shape[0] ?? 0;
      const planeOff = (opts.plane ?? 0) * w * (shape[1] ?? 1);
      rowsOf = async (first, count) => {
        // only the columns needed from each row would mean one read per row; read whole rows in one go instead
        const off = l.dataOffset + (planeOff + first * w) * bpp;
        const bytes = await src.read(off, count * w * bpp);
        if (bytes.length < count * w * bpp) throw new FitsFormatError('data truncated', ctx);
        return decodeRaw(bytes, bitpix, src.ownsReads);
      };
    } else {
      throw new FitsSectionError(`HDU is a ${l.kind}, not an image`, ctx);
    }
    const W = shape[0] ?? 0;
    const H = shape.length >= 2 ? (shape[1] as number) : 1;
    if (shape.length === 0 || x0 < 0 || y0 < 0 || x0 + width > W || y0 + height > H) {
      throw new FitsSectionError(`section x0=${x0} y0=${y0} ${width}x${height} is outside the ${W}x${H} image`, ctx);
    }
    const wide = bitpix === 32 || bitpix === 64 || bitpix === -64;
    const out = wide ? new Float64Array(width * height) : new Float32Array(width * height);
    const si = scaleInfo(header);
    // read in bands of rows to bound memory for wide images
    const bandRows = Math.max(1, Math.floor(CHUNK / Math.max(1, W * bytesPerPixel(bitpix))));
    for (let r = 0; r < height; r += bandRows) {
      if (opts.signal?.aborted === true) throw new FitsAbortError(ctx);
      const n = Math.min(bandRows, height - r);
      const raw = await rowsOf(y0 + r, n);
      for (let k = 0; k < n; k++) {
        const row = raw.subarray(k * W + x0, k * W + x0 + width) as FitsData;
        const scaled = applyScaling(row, bitpix, si);
        if (scaled instanceof BigInt64Array || scaled instanceof BigUint64Array) {
          for (let i = 0; i < width; i++) out[(r + k) * width + i] = Number(scaled[i]);
        } else {
          out.set(scaled, (r + k) * width);
        }
      }
      opts.onProgress?.(r + n, height);
    }
    return { data: out, width, height, header };
  } finally {
    await src.close();
  }
}
