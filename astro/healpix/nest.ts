/**
 * HEALPix NESTED scheme (Górski et al. 2005), following the healpix_cxx
 * `T_Healpix_Base` algorithms step by step so that pixel indices are identical to
 * healpy's (`nest=True, lonlat=True`): same operation order, same truncations,
 * same polar-cap / equatorial split.
 *
 * Positions are (ra, dec) in degrees, ra = longitude, dec = latitude. Pixel indices
 * are plain numbers up to order 24 (12*4^24 < 2^53) and bigints up to order 29.
 */

import {
  HealpixArgumentError,
  HealpixCoordinateError,
  HealpixOrderError,
  HealpixPixelError,
} from './errors.js';
import { preciseCos, preciseSin } from './precise-trig.js';

/** Highest order healpix_cxx supports with 64-bit indices. */
export const MAX_ORDER = 29;
/** Highest order whose pixel indices are all exactly representable as a JS number. */
export const MAX_SAFE_ORDER = 24;

/** A position on the sky in degrees. */
export interface SkyPosition {
  /** Right ascension (longitude), degrees. */
  ra: number;
  /** Declination (latitude), degrees. */
  dec: number;
}

/** Options shared by the batch kernels. */
export interface BatchOptions {
  /** Checked between chunks of 65,536 elements; aborting throws the signal's reason. */
  signal?: AbortSignal;
  /** Called after each chunk with (elements done, total). */
  onProgress?: (done: number, total: number) => void;
}

// Constants spelled as in healpix_cxx (lsconstants.h) so they round to the same doubles.
const HALF_PI = 1.570796326794896619231321691639751442099;
const INV_HALFPI = 0.6366197723675813430755350534900574;
const TWOTHIRD = 2.0 / 3.0;
// numpy's radians()/degrees() multiply by these (npy_math: x * (NPY_PI / 180.0)).
const DEG2RAD = Math.PI / 180.0;
const RAD2DEG = 180.0 / Math.PI;
const TWO32 = 4294967296;
const BATCH_CHUNK = 65536;

const JRLL = [2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4] as const;
const JPLL = [1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7] as const;

/** 2^o and 4^o as exact doubles, o = 0..29. */
const POW2: number[] = [];
const POW4: number[] = [];
for (let o = 0; o <= MAX_ORDER; o++) {
  POW2.push(2 ** o);
  POW4.push(4 ** o);
}

function pow2(order: number): number {
  return POW2[order] ?? 2 ** order;
}
function pow4(order: number): number {
  return POW4[order] ?? 4 ** order;
}

// ---------------------------------------------------------------- validation

export function checkOrder(order: number, maxOrder: number, operation: string): void {
  if (!Number.isInteger(order) || order < 0 || order > maxOrder) {
    throw new HealpixOrderError(order, maxOrder, operation);
  }
}

export function checkPosition(ra: number, dec: number, operation: string, index?: number): void {
  if (!Number.isFinite(ra) || !(dec >= -90 && dec <= 90)) {
    throw new HealpixCoordinateError(ra, dec, operation, index);
  }
}

function checkPixelNumber(order: number, pix: number, operation: string): void {
  if (!Number.isInteger(pix) || pix < 0 || pix >= 12 * pow4(order)) {
    throw new HealpixPixelError(order, pix, operation);
  }
}

// ---------------------------------------------------------------- bit twiddling

/** Spreads the low 16 bits of v to the even bit positions of a 32-bit result. */
function spread16(v: number): number {
  let x = v & 0xffff;
  x = (x | (x << 8)) & 0x00ff00ff;
  x = (x | (x << 4)) & 0x0f0f0f0f;
  x = (x | (x << 2)) & 0x33333333;
  return (x | (x << 1)) & 0x55555555;
}

/** Gathers the even bits of a 32-bit v into a 16-bit result. */
function compress16(v: number): number {
  let x = v & 0x55555555;
  x = (x | (x >>> 1)) & 0x33333333;
  x = (x | (x >>> 2)) & 0x0f0f0f0f;
  x = (x | (x >>> 4)) & 0x00ff00ff;
  return (x | (x >>> 8)) & 0x0000ffff;
}

/** spread16 of 0..255, for the batch loop (table lookups beat the shifts there). */
const SPREAD8 = Int32Array.from({ length: 256 }, (_, v) => spread16(v));

/** Index inside the face: bits of ix at even positions, iy at odd ones (ix, iy < 2^26). */
function interleave(ix: number, iy: number): number {
  const lo = (spread16(ix) | (spread16(iy) << 1)) >>> 0;
  const hi = spread16(ix >>> 16) | (spread16(iy >>> 16) << 1);
  return hi * TWO32 + lo;
}

/** xyf2nest for orders up to 24 (exact in a double). */
export function xyf2nest(order: number, face: number, ix: number, iy: number): number {
  return face * pow4(order) + interleave(ix, iy);
}

function xyf2nestBig(order: number, face: number, ix: number, iy: number): bigint {
  const lo = (spread16(ix) | (spread16(iy) << 1)) >>> 0;
  const hi = spread16(ix >>> 16) | (spread16(iy >>> 16) << 1);
  return (BigInt(face) << BigInt(2 * order)) | (BigInt(hi) << 32n) | BigInt(lo);
}

/** Decoded pixel: face number 0..11 and the (x, y) coordinates inside the face. */
export interface FaceXY {
  face: number;
  ix: number;
  iy: number;
}

/** nest2xyf for a pixel given as a number (order <= 24) or bigint (order <= 29); validates. */
export function nest2xyf(order: number, pix: number | bigint, operation: string): FaceXY {
  let face: number;
  let lo: number;
  let hi: number;
  if (typeof pix === 'bigint') {
    if (pix < 0n || pix >= 12n << BigInt(2 * order)) throw new HealpixPixelError(order, pix, operation);
    face = Number(pix >> BigInt(2 * order));
    const ipf = pix & ((1n << BigInt(2 * order)) - 1n);
    lo = Number(ipf & 0xffffffffn);
    hi = Number(ipf >> 32n);
  } else {
    checkPixelNumber(order, pix, operation);
    const npface = pow4(order);
    face = Math.floor(pix / npface);
    const ipf = pix - face * npface;
    lo = ipf >>> 0;
    hi = Math.floor(ipf / TWO32);
  }
  return {
    face,
    ix: compress16(lo) | (compress16(hi) << 16),
    iy: compress16(lo >>> 1) | (compress16(hi >>> 1) << 16),
  };
}

// ---------------------------------------------------------------- sizes

/** nside = 2^order. */
export function nside(order: number): number {
  checkOrder(order, MAX_ORDER, 'nside');
  return pow2(order);
}

/** Number of pixels, 12 * 4^order (an exact double at every order; above 2^53 from order 25). */
export function npix(order: number): number {
  checkOrder(order, MAX_ORDER, 'npix');
  return 12 * pow4(order);
}

/** Solid angle of one pixel in steradians. */
export function pixelAreaSr(order: number): number {
  checkOrder(order, MAX_ORDER, 'pixelAreaSr');
  return (4 * Math.PI) / (12 * pow4(order));
}

/** The pixel containing `pix` at the coarser `parentOrder` (pix >> 2*(order-parentOrder)). */
export function parentPixel(order: number, pix: number, parentOrder: number): number {
  checkOrder(order, MAX_SAFE_ORDER, 'parentPixel');
  checkOrder(parentOrder, order, 'parentPixel');
  checkPixelNumber(order, pix, 'parentPixel');
  return Math.floor(pix / pow4(order - parentOrder));
}

/** The range [first, lastExclusive) of pixels at the finer `childOrder` covering `pix`. */
export function childPixels(order: number, pix: number, childOrder: number): [number, number] {
  checkOrder(order, MAX_SAFE_ORDER, 'childPixels');
  checkOrder(childOrder, MAX_SAFE_ORDER, 'childPixels');
  if (childOrder < order) {
    throw new HealpixArgumentError('childOrder', childOrder, 'childPixels', `must be >= order ${String(order)}`);
  }
  checkPixelNumber(order, pix, 'childPixels');
  const f = pow4(childOrder - order);
  return [pix * f, (pix + 1) * f];
}

// ---------------------------------------------------------------- ang2pix

/** healpix_cxx fmodulo: v1 mod v2 in [0, v2). */
export function fmodulo(v1: number, v2: number): number {
  if (v1 >= 0) return v1 < v2 ? v1 : v1 % v2;
  const tmp = (v1 % v2) + v2;
  return tmp === v2 ? 0 : tmp;
}

// Result registers of loc2xyf (avoids allocating in the batch loop).
let rFace = 0;
let rIx = 0;
let rIy = 0;

function nearInteger(v: number, tol: number): boolean {
  return Math.abs(v - Math.round(v)) <= tol;
}

/**
 * healpix_cxx `loc2pix` (NEST branch) up to (face, ix, iy), left in rFace/rIx/rIy.
 * Returns true when the point lies so close to a pixel edge that a one-ulp change
 * of z or sth could move it to another pixel: the caller then recomputes z and sth
 * correctly rounded (as glibc does for healpy) and calls again.
 */
function loc2xyf(nside: number, z: number, phi: number, sth: number, haveSth: boolean): boolean {
  const za = Math.abs(z);
  const tt = fmodulo(phi * INV_HALFPI, 4.0);
  // How far a one-ulp change of z (or sth) can move the edge-line coordinates below:
  // equatorial, d(temp1 -/+ temp2)/dz = 0.75*nside, so < 1e-16*nside plus a few ulps
  // of rounding (values <= 4.5*nside); polar without sth (1-za >= 5e-5), d(tmp)/dz
  // <= 1.5*nside/sqrt(1.5e-4) ~ 122*nside, so < 1.4e-14*nside. 1e-12*nside is ample.
  const tol = 1e-12 * nside;
  let near = Math.abs(za - TWOTHIRD) < 4e-16;
  if (za <= TWOTHIRD) {
    const temp1 = nside * (0.5 + tt);
    const temp2 = nside * (z * 0.75);
    const a = temp1 - temp2;
    const b = temp1 + temp2;
    const jp = Math.trunc(a); // index of ascending edge line
    const jm = Math.trunc(b); // index of descending edge line
    const ifp = Math.trunc(jp / nside);
    const ifm = Math.trunc(jm / nside);
    rFace = ifp === ifm ? ifp | 4 : ifp < ifm ? ifp : ifm + 8;
    rIx = jm - ifm * nside;
    rIy = nside - (jp - ifp * nside) - 1;
    near = near || nearInteger(a, tol) || nearInteger(b, tol);
  } else {
    const ntt = Math.min(3, Math.trunc(tt));
    const tp = tt - ntt;
    const tmp = za < 0.99 || !haveSth ? nside * Math.sqrt(3 * (1 - za)) : (nside * sth) / Math.sqrt((1.0 + za) / 3.0);
    const u = tp * tmp;
    const v = (1.0 - tp) * tmp;
    const jp = Math.min(Math.trunc(u), nside - 1); // increasing edge line index
    const jm = Math.min(Math.trunc(v), nside - 1); // decreasing edge line index
    if (z >= 0) {
      rFace = ntt;
      rIx = nside - jm - 1;
      rIy = nside - jp - 1;
    } else {
      rFace = ntt + 8;
      rIx = jp;
      rIy = jm;
    }
    near = near || nearInteger(u, tol) || nearInteger(v, tol);
  }
  return near;
}

/** ang2pix of healpix_cxx for a pointing (theta = pi/2 - dec, phi = ra), up to (face, ix, iy). */
function ang2xyf(nside: number, raDeg: number, decDeg: number): void {
  const theta = HALF_PI - decDeg * DEG2RAD;
  const phi = raDeg * DEG2RAD;
  const haveSth = theta < 0.01 || theta > 3.14159 - 0.01;
  if (loc2xyf(nside, Math.cos(theta), phi, haveSth ? Math.sin(theta) : 0, haveSth)) {
    loc2xyf(nside, preciseCos(theta), phi, haveSth ? preciseSin(theta) : 0, haveSth);
  }
}

/**
 * healpix_cxx `loc2pix` (NEST) from z = cos(theta), phi and, near the poles,
 * sth = sin(theta); order 0..24. Internal: lets tests feed the libm values healpy
 * saw, to show that any disagreement comes from cos/sin rounding alone.
 */
export function loc2pixNest(order: number, z: number, phi: number, sth: number, haveSth: boolean): number {
  checkOrder(order, MAX_SAFE_ORDER, 'loc2pixNest');
  loc2xyf(pow2(order), z, phi, sth, haveSth);
  return rFace * pow4(order) + interleave(rIx, rIy);
}

/** As loc2pixNest for orders 0..29, as a bigint. Internal. */
export function loc2pixNestBig(order: number, z: number, phi: number, sth: number, haveSth: boolean): bigint {
  checkOrder(order, MAX_ORDER, 'loc2pixNestBig');
  loc2xyf(pow2(order), z, phi, sth, haveSth);
  return xyf2nestBig(order, rFace, rIx, rIy);
}

/** NESTED pixel containing (ra, dec) in degrees; order 0..24. Same index as healpy.ang2pix(nest=True, lonlat=True). */
export function ang2pix(order: number, raDeg: number, decDeg: number): number {
  checkOrder(order, MAX_SAFE_ORDER, 'ang2pix');
  checkPosition(raDeg, decDeg, 'ang2pix');
  ang2xyf(pow2(order), raDeg, decDeg);
  return rFace * pow4(order) + interleave(rIx, rIy);
}

/** As ang2pix, as a bigint, for orders 0..29. */
export function ang2pixBig(order: number, raDeg: number, decDeg: number): bigint {
  checkOrder(order, MAX_ORDER, 'ang2pixBig');
  checkPosition(raDeg, decDeg, 'ang2pixBig');
  ang2xyf(pow2(order), raDeg, decDeg);
  return xyf2nestBig(order, rFace, rIx, rIy);
}

/**
 * Batch ang2pix (order 0..24) into a Float64Array (indices are exact integers).
 * `ra` and `dec` must have equal lengths; pass `out` to reuse a buffer.
 */
export function ang2pixMany(
  order: number,
  ra: ArrayLike<number>,
  dec: ArrayLike<number>,
  options: BatchOptions & { out?: Float64Array } = {},
): Float64Array {
  checkOrder(order, MAX_SAFE_ORDER, 'ang2pixMany');
  const n = ra.length;
  if (dec.length !== n) {
    throw new HealpixArgumentError('dec.length', dec.length, 'ang2pixMany', `must equal ra.length ${String(n)}`);
  }
  const out = options.out ?? new Float64Array(n);
  if (out.length < n) {
    throw new HealpixArgumentError('out.length', out.length, 'ang2pixMany', `must be >= ${String(n)}`);
  }
  const ns = pow2(order);
  const npface = pow4(order);
  const mask = ns - 1;
  const tol = 1e-12 * ns;
  const { signal, onProgress } = options;
  for (let start = 0; start < n; start += BATCH_CHUNK) {
    signal?.throwIfAborted();
    const end = Math.min(n, start + BATCH_CHUNK);
    for (let i = start; i < end; i++) {
      const r = ra[i] as number;
      const d = dec[i] as number;
      if (!(d >= -90 && d <= 90) || !Number.isFinite(r)) checkPosition(r, d, 'ang2pixMany', i);
      // Inlined loc2xyf for the common case: away from the poles (no sin(theta)
      // needed) and not near a pixel edge. Orders <= 24 keep every edge-line index
      // below 2^31, so int32 operations are exact. Anything else takes ang2xyf.
      const theta = HALF_PI - d * DEG2RAD;
      if (theta >= 0.01 && theta <= 3.14159 - 0.01) {
        const z = Math.cos(theta);
        const za = Math.abs(z);
        let tt = r * DEG2RAD * INV_HALFPI;
        if (!(tt >= 0 && tt < 4.0)) tt = fmodulo(tt, 4.0);
        let face: number;
        let ix: number;
        let iy: number;
        let near: boolean;
        if (za <= TWOTHIRD) {
          const temp1 = ns * (0.5 + tt);
          const temp2 = ns * (z * 0.75);
          const a = temp1 - temp2;
          const b = temp1 + temp2;
          const jp = a | 0;
          const jm = b | 0;
          const fa = a - jp;
          const fb = b - jm;
          near = fa <= tol || fa >= 1 - tol || fb <= tol || fb >= 1 - tol || za > TWOTHIRD - 4e-16;
          const ifp = jp >> order;
          const ifm = jm >> order;
          face = ifp === ifm ? ifp | 4 : ifp < ifm ? ifp : ifm + 8;
          ix = jm & mask;
          iy = ns - (jp & mask) - 1;
        } else {
          const ntt = tt | 0; // tt < 4, so min(3, int(tt)) is int(tt)
          const tp = tt - ntt;
          const tmp = ns * Math.sqrt(3 * (1 - za));
          const u = tp * tmp;
          const v = (1.0 - tp) * tmp;
          const fu = u - (u | 0);
          const fv = v - (v | 0);
          near = fu <= tol || fu >= 1 - tol || fv <= tol || fv >= 1 - tol || za < TWOTHIRD + 4e-16;
          const jp = Math.min(u | 0, mask);
          const jm = Math.min(v | 0, mask);
          if (z >= 0) {
            face = ntt;
            ix = ns - jm - 1;
            iy = ns - jp - 1;
          } else {
            face = ntt + 8;
            ix = jp;
            iy = jm;
          }
        }
        if (!near) {
          // interleave(ix, iy) written out: a non-inlined call returning a double
          // would box it on the heap, which costs more than the rest of the loop.
          const lo =
            (SPREAD8[ix & 0xff] as number) +
            2 * (SPREAD8[iy & 0xff] as number) +
            65536 * ((SPREAD8[(ix >> 8) & 0xff] as number) + 2 * (SPREAD8[(iy >> 8) & 0xff] as number));
          const hi = (SPREAD8[ix >> 16] as number) + 2 * (SPREAD8[iy >> 16] as number);
          out[i] = face * npface + hi * TWO32 + lo;
          continue;
        }
      }
      ang2xyf(ns, r, d);
      out[i] = rFace * npface + interleave(rIx, rIy);
    }
    onProgress?.(end, n);
  }
  return out;
}

// ---------------------------------------------------------------- pix2ang

/** Result registers of pix2loc. */
let lZ = 0;
let lPhi = 0;
let lSth = 0;
let lHaveSth = false;

/** healpix_cxx `pix2loc` (NEST branch) from (face, ix, iy); fills lZ/lPhi/lSth/lHaveSth. */
function pix2locXyf(order: number, face: number, ix: number, iy: number): void {
  const ns = pow2(order);
  const fact2 = 4.0 / (12 * pow4(order));
  const fact1 = 2 * ns * fact2;
  const jr = (JRLL[face] ?? 0) * ns - ix - iy - 1;
  let nr: number;
  lHaveSth = false;
  if (jr < ns) {
    nr = jr;
    const tmp = nr * nr * fact2;
    lZ = 1 - tmp;
    if (lZ > 0.99) {
      lSth = Math.sqrt(tmp * (2.0 - tmp));
      lHaveSth = true;
    }
  } else if (jr > 3 * ns) {
    nr = ns * 4 - jr;
    const tmp = nr * nr * fact2;
    lZ = tmp - 1;
    if (lZ < -0.99) {
      lSth = Math.sqrt(tmp * (2.0 - tmp));
      lHaveSth = true;
    }
  } else {
    nr = ns;
    lZ = (2 * ns - jr) * fact1;
  }
  let tmp = (JPLL[face] ?? 0) * nr + ix - iy;
  if (tmp < 0) tmp += 8 * nr;
  lPhi = nr === ns ? 0.75 * HALF_PI * tmp * fact1 : (0.5 * HALF_PI * tmp) / nr;
}

/** Centre of a NESTED pixel (order 0..24 as number, 0..29 as bigint), as healpy.pix2ang(nest=True, lonlat=True). */
export function pix2ang(order: number, pix: number | bigint): SkyPosition {
  checkOrder(order, typeof pix === 'bigint' ? MAX_ORDER : MAX_SAFE_ORDER, 'pix2ang');
  const { face, ix, iy } = nest2xyf(order, pix, 'pix2ang');
  pix2locXyf(order, face, ix, iy);
  const theta = lHaveSth ? Math.atan2(lSth, lZ) : Math.acos(lZ);
  return { ra: lPhi * RAD2DEG, dec: 90.0 - theta * RAD2DEG };
}

// ---------------------------------------------------------------- neighbours

const NB_XOFFSET = [-1, -1, 0, 1, 1, 1, 0, -1] as const;
const NB_YOFFSET = [0, 1, 1, 1, 0, -1, -1, -1] as const;
const NB_FACEARRAY: readonly (readonly number[])[] = [
  [8, 9, 10, 11, -1, -1, -1, -1, 10, 11, 8, 9], // S
  [5, 6, 7, 4, 8, 9, 10, 11, 9, 10, 11, 8], // SE
  [-1, -1, -1, -1, 5, 6, 7, 4, -1, -1, -1, -1], // E
  [4, 5, 6, 7, 11, 8, 9, 10, 11, 8, 9, 10], // SW
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], // centre
  [1, 2, 3, 0, 0, 1, 2, 3, 5, 6, 7, 4], // NE
  [-1, -1, -1, -1, 7, 4, 5, 6, -1, -1, -1, -1], // W
  [3, 0, 1, 2, 3, 0, 1, 2, 4, 5, 6, 7], // NW
  [2, 3, 0, 1, -1, -1, -1, -1, 0, 1, 2, 3], // N
];
const NB_SWAPARRAY: readonly (readonly number[])[] = [
  [0, 0, 3], // S
  [0, 0, 6], // SE
  [0, 0, 0], // E
  [0, 0, 5], // SW
  [0, 0, 0], // centre
  [5, 0, 0], // NE
  [0, 0, 0], // W
  [6, 0, 0], // NW
  [3, 0, 0], // N
];

/**
 * The 8 neighbours of a pixel (order 0..24) in healpy.get_all_neighbours order
 * SW, W, NW, N, NE, E, SE, S; -1 where a face corner has only 7 neighbours.
 */
export function neighbours(order: number, pix: number): number[] {
  checkOrder(order, MAX_SAFE_ORDER, 'neighbours');
  const { face, ix, iy } = nest2xyf(order, pix, 'neighbours');
  const ns = pow2(order);
  const result: number[] = new Array<number>(8);
  for (let i = 0; i < 8; i++) {
    let x = ix + (NB_XOFFSET[i] ?? 0);
    let y = iy + (NB_YOFFSET[i] ?? 0);
    let nbnum = 4;
    if (x < 0) {
      x += ns;
      nbnum -= 1;
    } else if (x >= ns) {
      x -= ns;
      nbnum += 1;
    }
    if (y < 0) {
      y += ns;
      nbnum -= 3;
    } else if (y >= ns) {
      y -= ns;
      nbnum += 3;
    }
    const f = NB_FACEARRAY[nbnum]?.[face] ?? -1;
    if (f >= 0) {
      const bits = NB_SWAPARRAY[nbnum]?.[face >> 2] ?? 0;
      if (bits & 1) x = ns - x - 1;
      if (bits & 2) y = ns - y - 1;
      if (bits & 4) [x, y] = [y, x];
      result[i] = xyf2nest(order, f, x, y);
    } else {
      result[i] = -1;
    }
  }
  return result;
}

// ---------------------------------------------------------------- boundaries

/** healpix_cxx `xyf2loc` then conversion to (ra, dec) in degrees. */
function xyf2position(x: number, y: number, face: number): SkyPosition {
  const jr = (JRLL[face] ?? 0) - x - y;
  let nr: number;
  let z: number;
  let sth = 0;
  let haveSth = false;
  if (jr < 1) {
    nr = jr;
    const tmp = (nr * nr) / 3;
    z = 1 - tmp;
    if (z > 0.99) {
      sth = Math.sqrt(tmp * (2.0 - tmp));
      haveSth = true;
    }
  } else if (jr > 3) {
    nr = 4 - jr;
    const tmp = (nr * nr) / 3;
    z = tmp - 1;
    if (z < -0.99) {
      sth = Math.sqrt(tmp * (2.0 - tmp));
      haveSth = true;
    }
  } else {
    nr = 1;
    z = ((2 - jr) * 2.0) / 3.0;
  }
  let tmp = (JPLL[face] ?? 0) * nr + x - y;
  if (tmp < 0) tmp += 8;
  if (tmp >= 8) tmp -= 8;
  const phi = nr < 1e-15 ? 0 : (0.5 * HALF_PI * tmp) / nr;
  if (!haveSth) sth = Math.sqrt((1.0 - z) * (1.0 + z));
  let ra = phi * RAD2DEG;
  if (ra >= 360) ra -= 360;
  return { ra, dec: Math.atan2(z, sth) * RAD2DEG };
}

/**
 * Points along the pixel boundary (4*step of them, starting at the N corner and
 * running through W, S, E), as healpy.boundaries(nside, pix, step, nest=True).
 */
export function boundaries(order: number, pix: number | bigint, step = 1): SkyPosition[] {
  checkOrder(order, typeof pix === 'bigint' ? MAX_ORDER : MAX_SAFE_ORDER, 'boundaries');
  if (!Number.isInteger(step) || step < 1) {
    throw new HealpixArgumentError('step', step, 'boundaries', 'must be a positive integer');
  }
  const { face, ix, iy } = nest2xyf(order, pix, 'boundaries');
  const ns = pow2(order);
  const dc = 0.5 / ns;
  const xc = (ix + 0.5) / ns;
  const yc = (iy + 0.5) / ns;
  const d = 1.0 / (step * ns);
  const out = new Array<SkyPosition>(4 * step);
  for (let i = 0; i < step; i++) {
    out[i] = xyf2position(xc + dc - i * d, yc + dc, face);
    out[i + step] = xyf2position(xc - dc, yc + dc - i * d, face);
    out[i + 2 * step] = xyf2position(xc - dc + i * d, yc - dc, face);
    out[i + 3 * step] = xyf2position(xc + dc, yc - dc + i * d, face);
  }
  return out;
}
