/**
 * Cone search on the NESTED grid: healpix_cxx `query_disc_internal` (NEST branch),
 * which healpy.query_disc(nest=True) calls. A hierarchical walk from the 12 base
 * pixels; with `inclusive` it descends log2(fact) orders below the target order to
 * decide pixels whose centre lies outside the disc but whose area may overlap it.
 */

import { HealpixArgumentError } from './errors.js';
import { checkOrder, checkPosition, fmodulo, MAX_ORDER, MAX_SAFE_ORDER, xyf2nest } from './nest.js';

export interface QueryDiscOptions {
  /**
   * Also return pixels that merely overlap the disc (healpy `inclusive=True`).
   * May return a few pixels that do not overlap, never misses one.
   * @default false
   */
  inclusive?: boolean;
  /**
   * Oversampling factor for the inclusive test: a power of two with
   * order + log2(fact) <= 29. Ignored unless `inclusive`.
   * @default 4
   */
  fact?: number;
  /** Checked every 65,536 visited pixels; aborting throws the signal's reason. */
  signal?: AbortSignal;
}

/** Half-open pixel range [start, end) at the query order. */
export type PixelRange = [start: number, end: number];

const HALF_PI = 1.570796326794896619231321691639751442099;
const PI = 3.141592653589793238462643383279502884197;
const TWOPI = 6.283185307179586476925286766559005768394;
const DEG2RAD = Math.PI / 180.0;
const SIGNAL_EVERY = 65536;

/** healpix_cxx `max_pixrad`: largest centre-to-corner distance at this order, radians. */
function maxPixrad(order: number): number {
  const ns = 2 ** order;
  // va.set_z_phi(2/3, pi/(4 nside)), vb.set_z_phi(1 - t1/3, 0)
  const za = 2.0 / 3.0;
  const pa = PI / (4 * ns);
  const sa = Math.sqrt((1.0 - za) * (1.0 + za));
  const ax = sa * Math.cos(pa);
  const ay = sa * Math.sin(pa);
  let t1 = 1.0 - 1.0 / ns;
  t1 *= t1;
  const zb = 1 - t1 / 3;
  const bx = Math.sqrt((1.0 - zb) * (1.0 + zb));
  const by = 0;
  // v_angle = atan2(|a x b|, a . b)
  const cx = ay * zb - za * by;
  const cy = za * bx - ax * zb;
  const cz = ax * by - ay * bx;
  return Math.atan2(Math.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + za * zb);
}

/** max_pixrad per order, computed once. */
const MAX_PIXRAD = Array.from({ length: MAX_ORDER + 1 }, (_, o) => maxPixrad(o));
const JRLL = [2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4] as const;
const JPLL = [1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7] as const;

// pix2zphi result registers. This is healpix_cxx `pix2loc` (NEST) again, as in
// nest.ts, but without sin(theta) and without allocating: it is the inner loop
// of the walk.
let cellZ = 0;
let cellPhi = 0;
function pix2zphi(ns: number, fact1: number, fact2: number, face: number, ix: number, iy: number): void {
  const jr = (JRLL[face] as number) * ns - ix - iy - 1;
  let nr: number;
  if (jr < ns) {
    nr = jr;
    cellZ = 1 - nr * nr * fact2;
  } else if (jr > 3 * ns) {
    nr = ns * 4 - jr;
    cellZ = nr * nr * fact2 - 1;
  } else {
    nr = ns;
    cellZ = (2 * ns - jr) * fact1;
  }
  let tmp = (JPLL[face] as number) * nr + ix - iy;
  if (tmp < 0) tmp += 8 * nr;
  cellPhi = nr === ns ? 0.75 * HALF_PI * tmp * fact1 : (0.5 * HALF_PI * tmp) / nr;
}

/** Per-order constants of pix2zphi: nside, fact1, fact2 as in T_Healpix_Base::Set. */
const NSIDE_O = Float64Array.from({ length: MAX_ORDER + 1 }, (_, o) => 2 ** o);
const FACT2_O = Float64Array.from({ length: MAX_ORDER + 1 }, (_, o) => 4.0 / (12 * 4 ** o));
const FACT1_O = Float64Array.from({ length: MAX_ORDER + 1 }, (_, o) => 2 * 2 ** o * (4.0 / (12 * 4 ** o)));
const STACK_CAP = 12 + 3 * MAX_ORDER + 8; // each level pops one pixel and pushes four
const STACK_FACE = new Int32Array(STACK_CAP);
const STACK_IX = new Int32Array(STACK_CAP);
const STACK_IY = new Int32Array(STACK_CAP);
const STACK_ORDER = new Int32Array(STACK_CAP);
const CRPDR = new Float64Array(MAX_ORDER + 1);
const CRMDR = new Float64Array(MAX_ORDER + 1);

function compileQueryDiscOptions(order: number, options: QueryDiscOptions): { inclusive: boolean; oplus: number } {
  const inclusive = options.inclusive ?? false;
  if (!inclusive) return { inclusive, oplus: 0 };
  const fact = options.fact ?? 4;
  if (!Number.isInteger(fact) || fact < 1 || (fact & (fact - 1)) !== 0) {
    throw new HealpixArgumentError('fact', fact, 'queryDisc', 'must be a power of 2 when inclusive');
  }
  const oplus = Math.round(Math.log2(fact));
  if (order + oplus > MAX_ORDER) {
    throw new HealpixArgumentError('fact', fact, 'queryDisc', `order ${String(order)} + log2(fact) exceeds ${String(MAX_ORDER)}`);
  }
  return { inclusive, oplus };
}

/**
 * Pixels of `order` (0..24) whose centre lies within `radiusDeg` of (ra, dec), or
 * with `inclusive` that overlap the disc, as sorted disjoint half-open ranges.
 */
export function queryDiscRanges(
  order: number,
  raDeg: number,
  decDeg: number,
  radiusDeg: number,
  options: QueryDiscOptions = {},
): PixelRange[] {
  checkOrder(order, MAX_SAFE_ORDER, 'queryDisc');
  checkPosition(raDeg, decDeg, 'queryDisc');
  if (!(radiusDeg >= 0) || !Number.isFinite(radiusDeg)) {
    throw new HealpixArgumentError('radiusDeg', radiusDeg, 'queryDisc', 'must be finite and >= 0');
  }
  const { inclusive, oplus } = compileQueryDiscOptions(order, options);
  const signal = options.signal;
  signal?.throwIfAborted();
  const npixTotal = 12 * 4 ** order;
  const radius = radiusDeg * DEG2RAD;
  if (radius >= PI) return [[0, npixTotal]];

  // pointing(theta, phi).normalize()
  let theta = fmodulo(HALF_PI - decDeg * DEG2RAD, TWOPI);
  let phi = raDeg * DEG2RAD;
  if (theta > PI) {
    phi += PI;
    theta = TWOPI - theta;
  }
  phi = fmodulo(phi, TWOPI);
  const zc = Math.cos(theta);

  const omax = order + oplus;
  const cosrad = Math.cos(radius);
  const crpdr = CRPDR;
  const crmdr = CRMDR;
  for (let o = 0; o <= omax; o++) {
    const dr = MAX_PIXRAD[o] as number;
    crpdr[o] = radius + dr > PI ? -1 : Math.cos(radius + dr);
    crmdr[o] = radius - dr < 0 ? 1 : Math.cos(radius - dr);
  }

  // Stack of pixels as (face, ix, iy, order): children of (x, y) at o are
  // (2x + (c & 1), 2y + (c >> 1)) at o+1, i.e. nested index 4*pix + c.
  // Module-level scratch: the walk runs to completion without yielding, so reuse is safe.
  const sFace = STACK_FACE;
  const sIx = STACK_IX;
  const sIy = STACK_IY;
  const sO = STACK_ORDER;
  let top = 0;
  for (let i = 0; i < 12; i++) {
    sFace[top] = 11 - i;
    sIx[top] = 0;
    sIy[top] = 0;
    sO[top] = 0;
    top++;
  }
  let stacktop = 0;

  // Output ranges as a flat [start0, end0, start1, end1, ...] list. Everything in
  // the loop is a local (no closures), so V8 keeps the stack pointer in a register.
  const flat: number[] = [];
  let visited = 0;
  while (top > 0) {
    if (++visited % SIGNAL_EVERY === 0) signal?.throwIfAborted();
    top--;
    const face = sFace[top] as number;
    const ix = sIx[top] as number;
    const iy = sIy[top] as number;
    const o = sO[top] as number;

    pix2zphi(NSIDE_O[o] as number, FACT1_O[o] as number, FACT2_O[o] as number, face, ix, iy);
    const z = cellZ;
    // cosdist_zphi(vptg.z, ptg.phi, z, phi)
    const cangdist = zc * z + Math.cos(phi - cellPhi) * Math.sqrt((1.0 - zc * zc) * (1.0 - z * z));
    if (!(cangdist > (crpdr[o] as number))) continue;
    const zone = cangdist < cosrad ? 1 : cangdist <= (crmdr[o] as number) ? 2 : 3;

    // check_pixel: either descend, or output [start, end) (and maybe unwind the stack)
    let start = -1;
    let end = -1;
    let descend = false;
    if (o < order) {
      if (zone >= 3) {
        const f = 4 ** (order - o);
        start = xyf2nest(o, face, ix, iy) * f;
        end = start + f;
      } else {
        descend = true;
      }
    } else if (o > order) {
      if (zone >= 2 || o >= omax) {
        const sh = o - order;
        start = xyf2nest(order, face, ix >>> sh, iy >>> sh); // parent at the query order
        end = start + 1;
        top = stacktop; // unwind: the parent is decided
      } else {
        descend = true;
      }
    } else if (zone >= 2) {
      start = xyf2nest(order, face, ix, iy);
      end = start + 1;
    } else if (inclusive) {
      if (order < omax) {
        stacktop = top; // remember where this pixel's subtree starts
        descend = true;
      } else {
        start = xyf2nest(order, face, ix, iy);
        end = start + 1;
      }
    }

    if (descend) {
      // children 4p+3 .. 4p+0 so that 4p+0 is popped first; child c is (2x + (c & 1), 2y + (c >> 1))
      const x2 = 2 * ix;
      const y2 = 2 * iy;
      for (let c = 3; c >= 0; c--) {
        sFace[top] = face;
        sIx[top] = x2 + (c & 1);
        sIy[top] = y2 + (c >> 1);
        sO[top] = o + 1;
        top++;
      }
    } else if (start >= 0) {
      // rangeset::append: output is non-decreasing, merge with the last range when touching
      const n = flat.length;
      if (n > 0 && start <= (flat[n - 1] as number)) {
        if (end > (flat[n - 1] as number)) flat[n - 1] = end;
      } else {
        flat.push(start, end);
      }
    }
  }
  const ranges: PixelRange[] = new Array<PixelRange>(flat.length / 2);
  for (let k = 0; k < flat.length; k += 2) ranges[k / 2] = [flat[k] as number, flat[k + 1] as number];
  return ranges;
}

/** Number of pixels covered by a list of ranges. */
export function rangesPixelCount(ranges: readonly PixelRange[]): number {
  let n = 0;
  for (const [a, b] of ranges) n += b - a;
  return n;
}

/**
 * Pixels of `order` (0..24) within `radiusDeg` of (ra, dec), sorted ascending: the
 * same set as healpy.query_disc(nside, vec, radius, inclusive, fact, nest=True).
 */
export function queryDisc(
  order: number,
  raDeg: number,
  decDeg: number,
  radiusDeg: number,
  options: QueryDiscOptions = {},
): number[] {
  const ranges = queryDiscRanges(order, raDeg, decDeg, radiusDeg, options);
  const out = new Array<number>(rangesPixelCount(ranges));
  let k = 0;
  for (const [a, b] of ranges) for (let p = a; p < b; p++) out[k++] = p;
  return out;
}
