/**
 * Tile-compressed images (FITS standard 4.0 §10 / cfitsio "ZIMAGE" convention):
 * a BINTABLE whose rows are compressed tiles. Supports RICE_1, GZIP_1, GZIP_2
 * (integer and floating point, with NO_DITHER / SUBTRACTIVE_DITHER_1 /
 * SUBTRACTIVE_DITHER_2 quantisation) and PLIO_1. HCOMPRESS_1 is refused with
 * FitsUnsupportedError.
 */
import { unzipSync } from 'node:zlib';
import { FitsHeader, type FitsCard } from './header.js';
import { parseBinTableColumns, readDescriptor, readScalar, elementBytes, type BinColumn } from './bintable.js';
import { decodeRaw, type FitsData } from './data.js';
import { riceDecompress } from './rice.js';
import { plioDecompress } from './plio.js';
import { FitsAbortError, FitsDecompressionError, FitsFormatError, FitsUnsupportedError } from './errors.js';

export interface DecompressedImage {
  header: FitsHeader;
  bitpix: number;
  shape: number[];
  /** raw pixel values before BSCALE/BZERO (floats already unquantised) */
  data: FitsData;
}

const SUPPORTED = new Set(['RICE_1', 'RICE_ONE', 'GZIP_1', 'GZIP_2', 'PLIO_1', 'NOCOMPRESS']);

/** Keywords of the table that describe the compression and are not part of the image header. */
function isCompressionKeyword(key: string): boolean {
  if (['XTENSION', 'BITPIX', 'NAXIS', 'PCOUNT', 'GCOUNT', 'TFIELDS', 'THEAP', 'CHECKSUM', 'DATASUM'].includes(key)) return true;
  if (/^NAXIS\d+$/.test(key)) return true;
  if (/^T(TYPE|FORM|UNIT|DIM|NULL|SCAL|ZERO|DISP)\d+$/.test(key)) return true;
  if (['ZIMAGE', 'ZBITPIX', 'ZNAXIS', 'ZCMPTYPE', 'ZQUANTIZ', 'ZTENSION', 'ZPCOUNT', 'ZGCOUNT', 'ZSIMPLE', 'ZEXTEND', 'ZBLOCKED', 'ZHECKSUM', 'ZDATASUM', 'ZBLANK'].includes(key)) return true;
  if (/^Z(NAXIS|TILE|NAME|VAL)\d+$/.test(key)) return true;
  return false;
}

/** The header of the image as it was before compression. */
export function imageHeaderFromCompressed(table: FitsHeader): FitsHeader {
  const zbitpix = table.getNumber('ZBITPIX') ?? 0;
  const znaxis = table.getNumber('ZNAXIS') ?? 0;
  const cards: FitsCard[] = [];
  const zsimple = table.get('ZSIMPLE');
  if (zsimple !== undefined) cards.push({ key: 'SIMPLE', value: zsimple, comment: 'conforms to FITS standard' });
  else cards.push({ key: 'XTENSION', value: table.getString('ZTENSION') ?? 'IMAGE', comment: 'Image extension' });
  cards.push({ key: 'BITPIX', value: zbitpix, comment: 'array data type' });
  cards.push({ key: 'NAXIS', value: znaxis, comment: 'number of array dimensions' });
  for (let i = 1; i <= znaxis; i++) cards.push({ key: `NAXIS${i}`, value: table.getNumber(`ZNAXIS${i}`) ?? 0 });
  if (zsimple !== undefined) {
    const zext = table.get('ZEXTEND');
    if (zext !== undefined) cards.push({ key: 'EXTEND', value: zext });
  } else {
    cards.push({ key: 'PCOUNT', value: table.getNumber('ZPCOUNT') ?? 0, comment: 'number of parameters' });
    cards.push({ key: 'GCOUNT', value: table.getNumber('ZGCOUNT') ?? 1, comment: 'number of groups' });
  }
  for (const c of table.cards) {
    if (isCompressionKeyword(c.key)) continue;
    cards.push({ ...c });
  }
  const zchk = table.get('ZHECKSUM');
  if (zchk !== undefined) cards.push({ key: 'CHECKSUM', value: zchk });
  const zsum = table.get('ZDATASUM');
  if (zsum !== undefined) cards.push({ key: 'DATASUM', value: zsum });
  return new FitsHeader(cards);
}

// cfitsio's table of 10000 uniform deviates used for subtractive dithering
const N_RANDOM = 10000;
let randomValues: Float32Array | null = null;
function ditherRandoms(): Float32Array {
  if (randomValues !== null) return randomValues;
  const r = new Float32Array(N_RANDOM);
  const a = 16807;
  const m = 2147483647;
  let seed = 1;
  for (let i = 0; i < N_RANDOM; i++) {
    const temp = a * seed;
    seed = temp - m * Math.trunc(temp / m);
    r[i] = seed / m;
  }
  randomValues = r;
  return r;
}

const ZERO_VALUE = -2147483646;

interface TileCodecParams {
  cmp: string;
  zbitpix: number;
  blocksize: number;
  bytepix: number;
}

function unshuffle(bytes: Uint8Array, elemSize: number): Uint8Array {
  if (elemSize <= 1) return bytes;
  const n = Math.floor(bytes.length / elemSize);
  const out = new Uint8Array(n * elemSize);
  for (let b = 0; b < elemSize; b++) {
    const base = b * n;
    for (let i = 0; i < n; i++) out[i * elemSize + b] = bytes[base + i] as number;
  }
  return out;
}

function gunzip(bytes: Uint8Array): Uint8Array {
  const out = unzipSync(bytes);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Decode the integer (or raw float) stream of one tile. */
function decodeTileStream(bytes: Uint8Array, nPix: number, p: TileCodecParams, intBitpix: number): FitsData {
  switch (p.cmp) {
    case 'RICE_1':
    case 'RICE_ONE':
      return riceDecompress(bytes, nPix, p.blocksize, p.bytepix);
    case 'GZIP_1':
      return decodeRaw(gunzip(bytes), intBitpix);
    case 'GZIP_2': {
      const raw = gunzip(bytes);
      return decodeRaw(unshuffle(raw, Math.abs(intBitpix) / 8), intBitpix);
    }
    case 'PLIO_1':
      return plioDecompress(bytes, nPix);
    default:
      throw new Error(`no decoder for ${p.cmp}`);
  }
}

function heapArray(heap: Uint8Array, count: number, offset: number, code: string): Uint8Array {
  const n = count * elementBytes(code);
  if (offset < 0 || offset + n > heap.length) throw new Error(`heap descriptor (${count}, ${offset}) outside the heap (${heap.length} bytes)`);
  return heap.subarray(offset, offset + n);
}

/** Typed (big-endian decoded) values of an UNCOMPRESSED_DATA / PI/PJ heap array. */
function heapValues(bytes: Uint8Array, code: string): FitsData {
  const bitpix: Record<string, number> = { B: 8, I: 16, J: 32, K: 64, E: -32, D: -64 };
  const b = bitpix[code];
  if (b === undefined) throw new Error(`unsupported heap element type ${code}`);
  return decodeRaw(bytes, b);
}

export interface DecompressOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  path?: string;
  hdu?: number;
}

/**
 * Decompress a tile-compressed image HDU. `table` is the BINTABLE header,
 * `bytes` the HDU's data (table rows followed by the heap).
 */
export function decompressImage(table: FitsHeader, bytes: Uint8Array, opts: DecompressOptions = {}): DecompressedImage {
  const ctx = { path: opts.path, hdu: opts.hdu };
  const cmp = (table.getString('ZCMPTYPE') ?? '').trim().toUpperCase();
  if (!SUPPORTED.has(cmp)) {
    throw new FitsUnsupportedError(cmp || 'ZCMPTYPE', `tile compression ${JSON.stringify(cmp)} is not supported (RICE_1, GZIP_1, GZIP_2, PLIO_1 are)`, ctx);
  }
  const zbitpix = table.getNumber('ZBITPIX');
  const znaxis = table.getNumber('ZNAXIS');
  if (zbitpix === undefined || znaxis === undefined) throw new FitsFormatError('compressed image without ZBITPIX/ZNAXIS', ctx);
  const shape: number[] = [];
  const tile: number[] = [];
  for (let i = 1; i <= znaxis; i++) {
    const n = table.getNumber(`ZNAXIS${i}`);
    if (n === undefined) throw new FitsFormatError(`compressed image without ZNAXIS${i}`, ctx);
    shape.push(n);
    tile.push(table.getNumber(`ZTILE${i}`) ?? (i === 1 ? n : 1));
  }
  const header = imageHeaderFromCompressed(table);
  // compression parameters ZNAMEn/ZVALn
  const params = new Map<string, number>();
  for (let i = 1; ; i++) {
    const name = table.getString(`ZNAME${i}`);
    if (name === undefined) break;
    const v = table.getNumber(`ZVAL${i}`);
    if (v !== undefined) params.set(name.trim().toUpperCase(), v);
  }
  const isFloat = zbitpix < 0;
  const codec: TileCodecParams = {
    cmp,
    zbitpix,
    blocksize: params.get('BLOCKSIZE') ?? 32,
    bytepix: params.get('BYTEPIX') ?? (isFloat ? 4 : Math.max(1, zbitpix / 8)),
  };
  const { columns, rowBytes } = parseBinTableColumns(table, ctx);
  const col = (name: string): BinColumn | undefined => columns.find((c) => c.name === name);
  const cData = col('COMPRESSED_DATA');
  const gData = col('GZIP_COMPRESSED_DATA');
  const uData = col('UNCOMPRESSED_DATA');
  const zscaleCol = col('ZSCALE');
  const zzeroCol = col('ZZERO');
  const zblankCol = col('ZBLANK');
  if (cData === undefined && gData === undefined && uData === undefined) throw new FitsFormatError('compressed image without a COMPRESSED_DATA column', ctx);
  const nrows = table.getNumber('NAXIS2') ?? 0;
  const theap = table.getNumber('THEAP') ?? rowBytes * nrows;
  const heap = bytes.subarray(theap);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const quantizeName = (table.getString('ZQUANTIZ') ?? 'NO_DITHER').trim().toUpperCase();
  const quantized = isFloat && zscaleCol !== undefined;
  const dither = quantizeName === 'SUBTRACTIVE_DITHER_1' ? 1 : quantizeName === 'SUBTRACTIVE_DITHER_2' ? 2 : 0;
  const ditherSeed = table.getNumber('ZDITHER0') ?? 1;
  const zblankKey = table.getNumber('ZBLANK');
  const headerScale = table.getNumber('ZSCALE');
  const headerZero = table.getNumber('ZZERO');

  const total = shape.reduce((a, b) => a * b, 1);
  let out: FitsData;
  switch (zbitpix) {
    case 8: out = new Uint8Array(total); break;
    case 16: out = new Int16Array(total); break;
    case 32: out = new Int32Array(total); break;
    case 64: out = new BigInt64Array(total); break;
    case -32: out = new Float32Array(total); break;
    case -64: out = new Float64Array(total); break;
    default: throw new FitsFormatError(`invalid ZBITPIX ${zbitpix}`, ctx);
  }
  const ntiles = shape.map((n, i) => Math.ceil(n / (tile[i] as number)));
  const nTilesTotal = ntiles.reduce((a, b) => a * b, 1);
  if (nTilesTotal > nrows) throw new FitsFormatError(`compressed image needs ${nTilesTotal} tiles but the table has ${nrows} rows`, ctx);
  const rand = dither > 0 ? ditherRandoms() : null;
  const strides: number[] = [];
  {
    let s = 1;
    for (const n of shape) {
      strides.push(s);
      s *= n;
    }
  }
  const tileIdx = new Array<number>(shape.length).fill(0);
  for (let t = 0; t < nTilesTotal; t++) {
    if (opts.signal?.aborted === true) throw new FitsAbortError(ctx);
    // this tile's origin and extent
    let rem = t;
    const start: number[] = [];
    const ext: number[] = [];
    for (let a = 0; a < shape.length; a++) {
      const na = ntiles[a] as number;
      tileIdx[a] = rem % na;
      rem = Math.floor(rem / na);
      const s0 = (tileIdx[a] as number) * (tile[a] as number);
      start.push(s0);
      ext.push(Math.min(tile[a] as number, (shape[a] as number) - s0));
    }
    const nPix = ext.reduce((a, b) => a * b, 1);
    const rowStart = t * rowBytes;
    let values: FitsData;
    let valuesAreQuantized = quantized;
    try {
      const [cn, coff] = cData !== undefined ? readDescriptor(view, rowStart, cData) : [0, 0];
      if (cData !== undefined && cn > 0) {
        const intBitpix = quantized ? 32 : zbitpix;
        values = decodeTileStream(heapArray(heap, cn, coff, cData.heapCode ?? 'B'), nPix, codec, intBitpix);
      } else {
        const [gn, goff] = gData !== undefined ? readDescriptor(view, rowStart, gData) : [0, 0];
        if (gData !== undefined && gn > 0) {
          // losslessly gzipped tile of the original values
          values = decodeRaw(gunzip(heapArray(heap, gn, goff, gData.heapCode ?? 'B')), zbitpix);
          valuesAreQuantized = false;
        } else {
          const [un, uoff] = uData !== undefined ? readDescriptor(view, rowStart, uData) : [0, 0];
          if (uData === undefined || un === 0) throw new Error('tile has no data in any data column');
          values = heapValues(heapArray(heap, un, uoff, uData.heapCode ?? 'B'), uData.heapCode ?? 'B');
          valuesAreQuantized = false;
        }
      }
      if (values.length < nPix) throw new Error(`tile decoded to ${values.length} pixels, expected ${nPix}`);
    } catch (cause) {
      if (cause instanceof FitsUnsupportedError) throw cause;
      throw new FitsDecompressionError(t, `${cmp}: ${cause instanceof Error ? cause.message : String(cause)}`, { ...ctx, cause });
    }

    // tile values -> pixel values (floats unquantised)
    let pix: ArrayLike<number | bigint>;
    if (valuesAreQuantized) {
      const scale = zscaleCol !== undefined ? readScalar(view, rowStart, zscaleCol) : (headerScale ?? 1);
      const zero = zzeroCol !== undefined ? readScalar(view, rowStart, zzeroCol) : (headerZero ?? 0);
      const nullv = zblankCol !== undefined ? readScalar(view, rowStart, zblankCol) : zblankKey;
      const q = values as ArrayLike<number>;
      const f = zbitpix === -32 ? new Float32Array(nPix) : new Float64Array(nPix);
      if (rand !== null) {
        let iseed = (t + ditherSeed - 1) % N_RANDOM;
        let next = Math.trunc((rand[iseed] as number) * 500);
        for (let i = 0; i < nPix; i++) {
          const v = q[i] as number;
          if (nullv !== undefined && v === nullv) f[i] = NaN;
          else if (dither === 2 && v === ZERO_VALUE) f[i] = 0;
          else f[i] = (v - (rand[next] as number) + 0.5) * scale + zero;
          next++;
          if (next === N_RANDOM) {
            iseed++;
            if (iseed === N_RANDOM) iseed = 0;
            next = Math.trunc((rand[iseed] as number) * 500);
          }
        }
      } else {
        for (let i = 0; i < nPix; i++) {
          const v = q[i] as number;
          f[i] = nullv !== undefined && v === nullv ? NaN : v * scale + zero;
        }
      }
      pix = f;
    } else {
      pix = values as ArrayLike<number | bigint>;
      if (out instanceof BigInt64Array && !(values instanceof BigInt64Array)) {
        const b = new BigInt64Array(nPix);
        for (let i = 0; i < nPix; i++) b[i] = BigInt(values[i] as number);
        pix = b;
      }
    }

    // scatter the tile into the image (axis 1 fastest)
    const w = ext[0] as number;
    const rowsInTile = nPix / Math.max(1, w);
    const o = out as { [i: number]: number | bigint; set(a: ArrayLike<number | bigint>, off: number): void };
    const sub = (a: ArrayLike<number | bigint>, from: number, to: number): ArrayLike<number | bigint> =>
      (a as unknown as { subarray(a: number, b: number): ArrayLike<number | bigint> }).subarray(from, to);
    for (let r = 0; r < rowsInTile; r++) {
      // position of tile row r
      let base = start[0] as number;
      let rr = r;
      for (let a = 1; a < shape.length; a++) {
        const e = ext[a] as number;
        base += ((start[a] as number) + (rr % e)) * (strides[a] as number);
        rr = Math.floor(rr / e);
      }
      o.set(sub(pix, r * w, r * w + w), base);
    }
    opts.onProgress?.(t + 1, nTilesTotal);
  }
  return { header, bitpix: zbitpix, shape, data: out };
}
