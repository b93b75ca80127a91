/**
 * Pixel arrays: BITPIX <-> typed arrays, big-endian byte order, BSCALE/BZERO.
 */
import { FitsFormatError } from './errors.js';

export type FitsData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

export const VALID_BITPIX = [8, 16, 32, 64, -32, -64] as const;
export type Bitpix = (typeof VALID_BITPIX)[number];

export function isValidBitpix(b: number): b is Bitpix {
  return (VALID_BITPIX as readonly number[]).includes(b);
}

export function bytesPerPixel(bitpix: number): number {
  return Math.abs(bitpix) / 8;
}

/** Product of the axis lengths (1 for no axes is NOT returned: empty shape -> 0). */
export function shapeSize(shape: readonly number[]): number {
  if (shape.length === 0) return 0;
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Turn big-endian raw bytes into a typed array of the BITPIX's natural type.
 * `bytes` is consumed (swapped in place) when `inPlace`; otherwise copied.
 */
export function decodeRaw(bytes: Uint8Array, bitpix: number, inPlace = false): Exclude<FitsData, Int8Array | Uint16Array | Uint32Array | BigUint64Array> {
  const bpp = bytesPerPixel(bitpix);
  const n = Math.floor(bytes.byteLength / bpp);
  let buf: Buffer;
  if (inPlace && bytes.byteOffset % 8 === 0) {
    buf = Buffer.from(bytes.buffer, bytes.byteOffset, n * bpp);
  } else {
    // fresh, aligned copy
    const ab = new ArrayBuffer(n * bpp);
    buf = Buffer.from(ab);
    buf.set(bytes.subarray(0, n * bpp));
  }
  if (LITTLE_ENDIAN) {
    if (bpp === 2) buf.swap16();
    else if (bpp === 4) buf.swap32();
    else if (bpp === 8) buf.swap64();
  }
  const ab = buf.buffer;
  const off = buf.byteOffset;
  switch (bitpix) {
    case 8:
      return new Uint8Array(ab, off, n);
    case 16:
      return new Int16Array(ab, off, n);
    case 32:
      return new Int32Array(ab, off, n);
    case 64:
      return new BigInt64Array(ab, off, n);
    case -32:
      return new Float32Array(ab, off, n);
    case -64:
      return new Float64Array(ab, off, n);
    default:
      throw new FitsFormatError(`invalid BITPIX ${bitpix}`);
  }
}

/** Big-endian bytes of a typed array interpreted as `bitpix` (values must already be of that type). */
export function encodeRaw(data: FitsData, bitpix: number): Buffer {
  const bpp = bytesPerPixel(bitpix);
  const out = Buffer.allocUnsafeSlow(data.length * bpp);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (LITTLE_ENDIAN) {
    if (bpp === 2) out.swap16();
    else if (bpp === 4) out.swap32();
    else if (bpp === 8) out.swap64();
  }
  return out;
}

export interface ScaleInfo {
  bscale: number;
  bzero: number;
  blank: number | bigint | undefined;
}

/**
 * Apply BSCALE/BZERO (and BLANK -> NaN) the way astropy.io.fits does:
 * - no scaling (BSCALE=1, BZERO=0, no BLANK): raw values returned unchanged;
 * - unsigned conventions (BITPIX 16/32/64 with BZERO 2^15/2^31/2^63, BSCALE 1): Uint16/Uint32/BigUint64;
 * - signed-byte convention (BITPIX 8, BZERO -128): Int8Array;
 * - otherwise Float32Array for BITPIX 8/16/-32, Float64Array for 32/64/-64.
 */
export function applyScaling(raw: FitsData, bitpix: number, s: ScaleInfo, into?: ScaleInto): FitsData {
  const { bscale, bzero, blank } = s;
  const o = into?.offset ?? 0;
  // like astropy, a BLANK keyword alone turns integer data into floats with NaN
  if (bscale === 1 && bzero === 0 && (blank === undefined || bitpix < 0)) {
    if (!into) return raw;
    (into.out as Float64Array).set(raw as Float64Array, o);
    return into.out;
  }
  if (bscale === 1) {
    if (bitpix === 16 && bzero === 32768 && raw instanceof Int16Array) {
      const u = (into?.out as Uint16Array | undefined) ?? new Uint16Array(raw.length);
      for (let i = 0; i < raw.length; i++) u[o + i] = (raw[i] as number) ^ 0x8000;
      return u;
    }
    if (bitpix === 32 && bzero === 2147483648 && raw instanceof Int32Array) {
      const u = (into?.out as Uint32Array | undefined) ?? new Uint32Array(raw.length);
      for (let i = 0; i < raw.length; i++) u[o + i] = ((raw[i] as number) ^ 0x80000000) >>> 0;
      return u;
    }
    if (bitpix === 64 && bzero === 9223372036854775808 && raw instanceof BigInt64Array) {
      const u = (into?.out as BigUint64Array | undefined) ?? new BigUint64Array(raw.length);
      const flip = 1n << 63n;
      for (let i = 0; i < raw.length; i++) u[o + i] = BigInt.asUintN(64, (raw[i] as bigint) ^ flip);
      return u;
    }
    if (bitpix === 8 && bzero === -128 && raw instanceof Uint8Array) {
      const u = (into?.out as Int8Array | undefined) ?? new Int8Array(raw.length);
      for (let i = 0; i < raw.length; i++) u[o + i] = (raw[i] as number) ^ 0x80;
      return u;
    }
  }
  const wide = bitpix === 32 || bitpix === 64 || bitpix === -64;
  const out = (into?.out as Float32Array | Float64Array | undefined) ?? (wide ? new Float64Array(raw.length) : new Float32Array(raw.length));
  const checkBlank = blank !== undefined && bitpix > 0;
  if (raw instanceof BigInt64Array) {
    const b = blank === undefined ? undefined : BigInt(blank);
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i] as bigint;
      out[o + i] = checkBlank && v === b ? NaN : Number(v) * bscale + bzero;
    }
    return out;
  }
  if (raw instanceof BigUint64Array) throw new FitsFormatError('cannot scale unsigned 64-bit data');
  const bn = blank === undefined ? NaN : Number(blank);
  const r = raw as Exclude<FitsData, BigInt64Array | BigUint64Array>;
  if (!wide) {
    // numpy (astropy) scales float32 data in float32 arithmetic: round after each step
    const fb = Math.fround(bscale);
    const fz = Math.fround(bzero);
    if (checkBlank) {
      for (let i = 0; i < r.length; i++) {
        const v = r[i] as number;
        out[o + i] = v === bn ? NaN : Math.fround(Math.fround(v * fb) + fz);
      }
    } else {
      for (let i = 0; i < r.length; i++) out[o + i] = Math.fround(Math.fround((r[i] as number) * fb) + fz);
    }
    return out;
  }
  if (checkBlank) {
    for (let i = 0; i < r.length; i++) {
      const v = r[i] as number;
      out[o + i] = v === bn ? NaN : v * bscale + bzero;
    }
  } else {
    for (let i = 0; i < r.length; i++) out[o + i] = (r[i] as number) * bscale + bzero;
  }
  return out;
}

/** Where applyScaling writes instead of allocating: `out` (from {@link scaledArrayFor}) from `offset` on. */
export interface ScaleInto {
  out: FitsData;
  offset: number;
}

/**
 * An array of `n` elements of the type applyScaling returns for raw data like
 * `sample` (the BITPIX's natural typed array), or null when applyScaling
 * would return the raw values themselves (no scaling).
 */
export function scaledArrayFor(sample: FitsData, bitpix: number, s: ScaleInfo, n: number): FitsData | null {
  const empty = sample.subarray(0, 0) as FitsData;
  const r = applyScaling(empty, bitpix, s);
  if (r === empty) return null;
  const Ctor = r.constructor as new (length: number) => FitsData;
  return new Ctor(n);
}

/** BITPIX that naturally holds a typed array's values (before any BZERO trick). */
export function naturalBitpix(data: FitsData): number {
  if (data instanceof Uint8Array || data instanceof Int8Array) return 8;
  if (data instanceof Int16Array || data instanceof Uint16Array) return 16;
  if (data instanceof Int32Array || data instanceof Uint32Array) return 32;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return 64;
  if (data instanceof Float32Array) return -32;
  return -64;
}
