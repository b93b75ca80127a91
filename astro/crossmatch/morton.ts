/**
 * Morton (Z-order) keys of unit vectors quantised inside a bounding box, and
 * an O(n) radix sort by key. Used to lay points out so that neighbours on the
 * sky are neighbours in memory (index build and query order).
 */
import type { Scratch } from './scratch.js';

/** Axis-aligned bounds of a set of unit vectors, with the quantisation scale. */
export interface MortonFrame {
  min: [number, number, number];
  /** Cells per unit length on each axis (65535 cells across the box). */
  scale: [number, number, number];
}

const CELLS = 65535;

export function mortonFrame(xyz: Float64Array): MortonFrame {
  let minX = Infinity;
  let minY = Infinity;
  let minZ = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  let maxZ = -Infinity;
  const n = xyz.length / 3;
  for (let i = 0; i < n; i++) {
    const x = xyz[3 * i]!;
    const y = xyz[3 * i + 1]!;
    const z = xyz[3 * i + 2]!;
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
    if (z < minZ) minZ = z;
    if (z > maxZ) maxZ = z;
  }
  if (n === 0) return { min: [0, 0, 0], scale: [0, 0, 0] };
  // one common scale keeps cells cubic, so Z-order ranges stay compact
  const extent = Math.max(maxX - minX, maxY - minY, maxZ - minZ);
  const s = extent > 0 ? CELLS / extent : 0;
  return { min: [minX, minY, minZ], scale: [s, s, s] };
}

/** Spreads the low 8 bits of v so that bit i moves to bit 3i. */
function spread8(v: number): number {
  v &= 0xff;
  v = (v | (v << 8)) & 0x0000f00f;
  v = (v | (v << 4)) & 0x000c30c3;
  v = (v | (v << 2)) & 0x00249249;
  return v;
}

function quantise(v: number, min: number, scale: number): number {
  const q = Math.floor((v - min) * scale);
  return q < 0 ? 0 : q > CELLS ? CELLS : q;
}

const DIGIT_BITS = 12;
const DIGIT_MASK = (1 << DIGIT_BITS) - 1;

/**
 * Row order of the points by 48-bit Morton key (16 bits per axis; key =
 * interleave(top 8 bits) * 2^24 + interleave(low 8 bits)) with an LSD radix
 * sort in four 12-bit digits (4096 buckets keep the scattered writes
 * cache-friendly), carrying the keys and row numbers. With `scratch` the
 * working arrays, and the returned order, are views of its memory (valid
 * until the next sort with the same scratch).
 */
function radixOrder(xyz: Float64Array, frame: MortonFrame, scratch?: Scratch): Int32Array {
  const n = xyz.length / 3;
  let hi = scratch ? scratch.u32('morton.hi', n) : new Uint32Array(n);
  let lo = scratch ? scratch.u32('morton.lo', n) : new Uint32Array(n);
  let order = scratch ? scratch.i32('morton.order', n) : new Int32Array(n);
  const [mx, my, mz] = frame.min;
  const [sx, sy, sz] = frame.scale;
  for (let i = 0; i < n; i++) {
    const qx = quantise(xyz[3 * i]!, mx, sx);
    const qy = quantise(xyz[3 * i + 1]!, my, sy);
    const qz = quantise(xyz[3 * i + 2]!, mz, sz);
    lo[i] = spread8(qx) | (spread8(qy) << 1) | (spread8(qz) << 2);
    hi[i] = spread8(qx >>> 8) | (spread8(qy >>> 8) << 1) | (spread8(qz >>> 8) << 2);
    order[i] = i;
  }
  let hi2 = scratch ? scratch.u32('morton.hi2', n) : new Uint32Array(n);
  let lo2 = scratch ? scratch.u32('morton.lo2', n) : new Uint32Array(n);
  let order2 = scratch ? scratch.i32('morton.order2', n) : new Int32Array(n);
  const counts = new Int32Array(DIGIT_MASK + 2);
  const passes: Array<[boolean, number]> = [
    [false, 0],
    [false, DIGIT_BITS],
    [true, 0],
    [true, DIGIT_BITS],
  ];
  for (const [useHi, shift] of passes) {
    const keys = useHi ? hi : lo;
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[((keys[i]! >>> shift) & DIGIT_MASK) + 1]!++;
    let allSame = false;
    for (let b = 0; b <= DIGIT_MASK; b++) {
      if (counts[b + 1] === n) allSame = true;
      counts[b + 1]! += counts[b]!;
    }
    if (allSame) continue; // this digit does not reorder anything
    for (let i = 0; i < n; i++) {
      const j = counts[(keys[i]! >>> shift) & DIGIT_MASK]!++;
      hi2[j] = hi[i]!;
      lo2[j] = lo[i]!;
      order2[j] = order[i]!;
    }
    [hi, hi2] = [hi2, hi];
    [lo, lo2] = [lo2, lo];
    [order, order2] = [order2, order];
  }
  return order;
}

/**
 * Sorts points by Morton key (see `radixOrder`); the unit vectors are
 * gathered once at the end. Returns the row order and the unit vectors in
 * that order, both owned by the caller (also with `scratch`, which only
 * holds the working arrays).
 */
export function mortonSort(xyz: Float64Array, frame: MortonFrame, scratch?: Scratch): { order: Int32Array; sorted: Float64Array } {
  const n = xyz.length / 3;
  const o = radixOrder(xyz, frame, scratch);
  const order = scratch ? o.slice() : o;
  const sorted = new Float64Array(3 * n);
  for (let s = 0; s < n; s++) {
    const r = order[s]!;
    sorted[3 * s] = xyz[3 * r]!;
    sorted[3 * s + 1] = xyz[3 * r + 1]!;
    sorted[3 * s + 2] = xyz[3 * r + 2]!;
  }
  return { order, sorted };
}

/**
 * Row order of the points by Morton key (see `mortonSort`; the sorted vectors
 * are not built). With `scratch` the result is a view of its memory, valid
 * until the next Morton sort with the same scratch.
 */
export function mortonOrder(xyz: Float64Array, frame: MortonFrame, scratch?: Scratch): Int32Array {
  return radixOrder(xyz, frame, scratch);
}
