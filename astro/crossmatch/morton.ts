/**
 * Morton (Z-order) keys of unit vectors quantised inside a bounding box, and
 * an O(n) radix sort by key. Used to lay points out so that neighbours on the
 * sky are neighbours in memory (index build and query order).
 */

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

/** Spreads the low 10 bits of v so that bit i moves to bit 3i. */
function spread10(v: number): number {
  v &= 0x3ff;
  v = (v | (v << 16)) & 0x030000ff;
  v = (v | (v << 8)) & 0x0300f00f;
  v = (v | (v << 4)) & 0x030c30c3;
  v = (v | (v << 2)) & 0x09249249;
  return v;
}

function quantise(v: number, min: number, scale: number): number {
  const q = Math.floor((v - min) * scale);
  return q < 0 ? 0 : q > CELLS ? CELLS : q;
}

/**
 * Sorts points by 48-bit Morton key (16 bits per axis; key = interleave(top 6
 * bits) * 2^30 + interleave(low 10 bits)) with an LSD radix sort that carries
 * the coordinates along, so no random-access gather is needed afterwards.
 * Returns the row order and the unit vectors in that order.
 */
export function mortonSort(xyz: Float64Array, frame: MortonFrame): { order: Int32Array; sorted: Float64Array } {
  const n = xyz.length / 3;
  let hi = new Uint32Array(n);
  let lo = new Uint32Array(n);
  let order = new Int32Array(n);
  let vec = Float64Array.from(xyz);
  const [mx, my, mz] = frame.min;
  const [sx, sy, sz] = frame.scale;
  for (let i = 0; i < n; i++) {
    const qx = quantise(vec[3 * i]!, mx, sx);
    const qy = quantise(vec[3 * i + 1]!, my, sy);
    const qz = quantise(vec[3 * i + 2]!, mz, sz);
    lo[i] = (spread10(qx) | (spread10(qy) << 1) | (spread10(qz) << 2)) >>> 0;
    hi[i] = (spread10(qx >>> 10) | (spread10(qy >>> 10) << 1) | (spread10(qz >>> 10) << 2)) >>> 0;
    order[i] = i;
  }
  let hi2 = new Uint32Array(n);
  let lo2 = new Uint32Array(n);
  let order2 = new Int32Array(n);
  let vec2 = new Float64Array(3 * n);
  // LSD radix: the low 30 bits in two 15-bit digits, then the 18 high bits
  const passes: Array<[boolean, number, number]> = [
    [false, 0, 15],
    [false, 15, 15],
    [true, 0, 18],
  ];
  for (const [useHi, shift, bits] of passes) {
    const keys = useHi ? hi : lo;
    const mask = (1 << bits) - 1;
    const counts = new Int32Array(mask + 2);
    for (let i = 0; i < n; i++) counts[((keys[i]! >>> shift) & mask) + 1]!++;
    let allSame = false;
    for (let b = 0; b <= mask; b++) {
      if (counts[b + 1] === n) allSame = true;
      counts[b + 1]! += counts[b]!;
    }
    if (allSame) continue; // this digit does not reorder anything
    for (let i = 0; i < n; i++) {
      const d = (keys[i]! >>> shift) & mask;
      const j = counts[d]!++;
      hi2[j] = hi[i]!;
      lo2[j] = lo[i]!;
      order2[j] = order[i]!;
      vec2[3 * j] = vec[3 * i]!;
      vec2[3 * j + 1] = vec[3 * i + 1]!;
      vec2[3 * j + 2] = vec[3 * i + 2]!;
    }
    [hi, hi2] = [hi2, hi];
    [lo, lo2] = [lo2, lo];
    [order, order2] = [order2, order];
    [vec, vec2] = [vec2, vec];
  }
  return { order, sorted: vec };
}

/** Row order of the points by Morton key (see `mortonSort`). */
export function mortonOrder(xyz: Float64Array, frame: MortonFrame): Int32Array {
  return mortonSort(xyz, frame).order;
}
