/**
 * Writing FITS files: primary + IMAGE extensions, every BITPIX, optional
 * BSCALE/BZERO quantisation, unsigned-integer conventions; atomic on disk.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { BLOCK_LENGTH, FitsHeader, encodeHeader, type FitsCard } from './header.js';
import { encodeRaw, isValidBitpix, naturalBitpix, shapeSize, type FitsData } from './data.js';
import { FitsWriteError } from './errors.js';

export interface WriteHdu {
  header?: FitsHeader | FitsCard[];
  /** pixel values; null for a header-only HDU */
  data: FitsData | null;
  /** [NAXIS1, NAXIS2, ...] (width first); default [data.length] */
  shape?: number[];
  /** stored BITPIX; default from the array type (Uint16/Uint32/BigUint64/Int8 use the BZERO conventions) */
  bitpix?: number;
  /** EXTNAME */
  name?: string;
  /**
   * With bscale and/or bzero the data are physical values, stored as
   * round((v - bzero) / bscale) in an integer BITPIX (default 16) with NaN -> BLANK.
   */
  bscale?: number;
  bzero?: number;
}

const STRUCTURAL = /^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|END|GROUPS)$/;
const SCALING = /^(BSCALE|BZERO|BLANK)$/;

const INT_RANGE: Record<number, [number, number]> = {
  8: [0, 255],
  16: [-32768, 32767],
  32: [-2147483648, 2147483647],
};

interface Encoded {
  cards: FitsCard[];
  payload: Buffer | null;
}

function toArrayOfBitpix(data: FitsData, bitpix: number, ctx: { hdu: number }): FitsData {
  const nat = naturalBitpix(data);
  if (nat === bitpix && !(data instanceof Uint16Array || data instanceof Uint32Array || data instanceof Int8Array || data instanceof BigUint64Array)) return data;
  const n = data.length;
  const numbers = (): Float64Array => {
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, (v) => Number(v));
    return Float64Array.from(data as ArrayLike<number>);
  };
  switch (bitpix) {
    case 8: return Uint8Array.from(numbers());
    case 16: return Int16Array.from(numbers());
    case 32: return Int32Array.from(numbers());
    case 64: {
      if (data instanceof BigInt64Array) return data;
      if (data instanceof BigUint64Array) return new BigInt64Array(data.buffer, data.byteOffset, n);
      const f = numbers();
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = f[i] as number;
        if (!Number.isInteger(v)) throw new FitsWriteError(`value ${v} at ${i} is not an integer for BITPIX 64`, ctx);
        out[i] = BigInt(v);
      }
      return out;
    }
    case -32: return Float32Array.from(numbers());
    case -64: return Float64Array.from(numbers());
    default: throw new FitsWriteError(`invalid BITPIX ${bitpix}`, ctx);
  }
}

/** Stored values and scaling cards for one HDU. */
function prepareData(h: WriteHdu, index: number): { stored: FitsData | null; bitpix: number; scaling: FitsCard[]; keepHeaderScaling: boolean } {
  const ctx = { hdu: index };
  const data = h.data;
  if (data === null) return { stored: null, bitpix: h.bitpix ?? 8, scaling: [], keepHeaderScaling: false };
  if (h.bscale !== undefined || h.bzero !== undefined) {
    const bscale = h.bscale ?? 1;
    const bzero = h.bzero ?? 0;
    if (bscale === 0 || !Number.isFinite(bscale) || !Number.isFinite(bzero)) throw new FitsWriteError(`invalid BSCALE ${bscale} / BZERO ${bzero}`, ctx);
    const bitpix = h.bitpix ?? 16;
    const range = INT_RANGE[bitpix];
    if (range === undefined) throw new FitsWriteError(`BSCALE/BZERO need an integer BITPIX of 8, 16 or 32 (got ${bitpix})`, ctx);
    const [lo, hi] = range;
    const blank = bitpix === 8 ? hi : lo;
    const vals = data instanceof BigInt64Array || data instanceof BigUint64Array ? Float64Array.from(data, (v) => Number(v)) : (data as ArrayLike<number>);
    const stored = bitpix === 8 ? new Uint8Array(vals.length) : bitpix === 16 ? new Int16Array(vals.length) : new Int32Array(vals.length);
    let anyNaN = false;
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i] as number;
      if (Number.isNaN(v)) {
        stored[i] = blank;
        anyNaN = true;
        continue;
      }
      const q = Math.round((v - bzero) / bscale);
      if (q < lo || q > hi || (anyNaN && q === blank) || !Number.isFinite(q)) {
        throw new FitsWriteError(`value ${v} at ${i} does not fit BITPIX ${bitpix} with BSCALE ${bscale}, BZERO ${bzero}`, ctx);
      }
      stored[i] = q;
    }
    const scaling: FitsCard[] = [
      { key: 'BSCALE', value: bscale },
      { key: 'BZERO', value: bzero },
    ];
    if (anyNaN) scaling.push({ key: 'BLANK', value: blank });
    return { stored, bitpix, scaling, keepHeaderScaling: false };
  }
  // unsigned / signed-byte conventions
  if (h.bitpix === undefined || h.bitpix === naturalBitpix(data)) {
    if (data instanceof Uint16Array) {
      const s = new Int16Array(data.length);
      for (let i = 0; i < data.length; i++) s[i] = (data[i] as number) ^ 0x8000;
      return { stored: s, bitpix: 16, scaling: [{ key: 'BSCALE', value: 1 }, { key: 'BZERO', value: 32768 }], keepHeaderScaling: false };
    }
    if (data instanceof Uint32Array) {
      const s = new Int32Array(data.length);
      for (let i = 0; i < data.length; i++) s[i] = (data[i] as number) ^ 0x80000000;
      return { stored: s, bitpix: 32, scaling: [{ key: 'BSCALE', value: 1 }, { key: 'BZERO', value: 2147483648 }], keepHeaderScaling: false };
    }
    if (data instanceof BigUint64Array) {
      const s = new BigInt64Array(data.length);
      const flip = 1n << 63n;
      for (let i = 0; i < data.length; i++) s[i] = BigInt.asIntN(64, (data[i] as bigint) ^ flip);
      return { stored: s, bitpix: 64, scaling: [{ key: 'BSCALE', value: 1 }, { key: 'BZERO', value: 9223372036854775808n }], keepHeaderScaling: false };
    }
    if (data instanceof Int8Array) {
      const s = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) s[i] = (data[i] as number) ^ 0x80;
      return { stored: s, bitpix: 8, scaling: [{ key: 'BSCALE', value: 1 }, { key: 'BZERO', value: -128 }], keepHeaderScaling: false };
    }
  }
  const bitpix = h.bitpix ?? naturalBitpix(data);
  if (!isValidBitpix(bitpix)) throw new FitsWriteError(`invalid BITPIX ${bitpix}`, ctx);
  const stored = toArrayOfBitpix(data, bitpix, ctx);
  // raw integers of the stored type: header BSCALE/BZERO/BLANK still describe them
  const keepHeaderScaling = bitpix > 0 && stored === data;
  return { stored, bitpix, scaling: [], keepHeaderScaling };
}

function encodeHdu(h: WriteHdu, index: number, isLast: boolean): Encoded {
  const ctx = { hdu: index };
  const { stored, bitpix, scaling, keepHeaderScaling } = prepareData(h, index);
  let shape: number[];
  if (stored === null) shape = [];
  else {
    shape = h.shape ?? [stored.length];
    if (!shape.every((n) => Number.isInteger(n) && n >= 0)) throw new FitsWriteError(`invalid shape ${JSON.stringify(shape)}`, ctx);
    if (shapeSize(shape) !== stored.length) throw new FitsWriteError(`shape ${JSON.stringify(shape)} holds ${shapeSize(shape)} pixels but data has ${stored.length}`, ctx);
  }
  const cards: FitsCard[] = [];
  if (index === 0) cards.push({ key: 'SIMPLE', value: true, comment: 'conforms to FITS standard' });
  else cards.push({ key: 'XTENSION', value: 'IMAGE', comment: 'Image extension' });
  cards.push({ key: 'BITPIX', value: bitpix, comment: 'array data type' });
  cards.push({ key: 'NAXIS', value: shape.length, comment: 'number of array dimensions' });
  shape.forEach((n, i) => cards.push({ key: `NAXIS${i + 1}`, value: n }));
  if (index === 0) cards.push({ key: 'EXTEND', value: true });
  else {
    cards.push({ key: 'PCOUNT', value: 0, comment: 'number of parameters' });
    cards.push({ key: 'GCOUNT', value: 1, comment: 'number of groups' });
  }
  void isLast;
  const userCards = h.header === undefined ? [] : h.header instanceof FitsHeader ? h.header.cards : h.header;
  const userHeader = new FitsHeader(userCards);
  if (h.name !== undefined) cards.push({ key: 'EXTNAME', value: h.name, comment: 'extension name' });
  cards.push(...scaling);
  for (const c of userHeader.cards) {
    if (STRUCTURAL.test(c.key)) continue;
    if (SCALING.test(c.key) && !keepHeaderScaling) continue;
    if (c.key === 'EXTNAME' && h.name !== undefined) continue;
    cards.push(c);
  }
  return { cards, payload: stored === null ? null : encodeRaw(stored, bitpix) };
}

function padding(n: number): Buffer {
  const rem = n % BLOCK_LENGTH;
  return Buffer.alloc(rem === 0 ? 0 : BLOCK_LENGTH - rem);
}

/** Encode HDUs (first = primary) as FITS bytes, piece by piece. */
function* encodePieces(hdus: WriteHdu[]): Generator<Buffer> {
  if (hdus.length === 0) throw new FitsWriteError('no HDUs to write');
  for (let i = 0; i < hdus.length; i++) {
    const e = encodeHdu(hdus[i] as WriteHdu, i, i === hdus.length - 1);
    try {
      yield encodeHeader(e.cards);
    } catch (cause) {
      if (cause instanceof FitsWriteError) throw new FitsWriteError(cause.message, { hdu: i, cause });
      throw cause;
    }
    if (e.payload !== null) {
      yield e.payload;
      yield padding(e.payload.length);
    }
  }
}

/** The whole file as one Buffer. */
export function fitsToBuffer(hdus: WriteHdu[]): Buffer {
  return Buffer.concat([...encodePieces(hdus)]);
}

/**
 * Write a FITS file: first HDU is the primary, the rest IMAGE extensions.
 * Written to a temporary file beside `path` and renamed into place.
 */
export async function writeFits(path: string, hdus: WriteHdu[]): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w');
  let ok = false;
  try {
    for (const piece of encodePieces(hdus)) {
      let off = 0;
      while (off < piece.length) {
        const { bytesWritten } = await fh.write(piece, off, piece.length - off);
        off += bytesWritten;
      }
    }
    await fh.sync();
    ok = true;
  } catch (cause) {
    if (cause instanceof FitsWriteError) throw new FitsWriteError(cause.message.replace(/ \(HDU \d+\)$/, ''), { path, hdu: cause.hdu, cause });
    throw cause;
  } finally {
    await fh.close();
    if (!ok) await unlink(tmp).catch(() => undefined); // best effort: the original error is what matters
  }
  await rename(tmp, path);
}
