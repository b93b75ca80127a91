/**
 * A static k-d tree over unit vectors on the sphere. Distances inside the tree
 * are squared chords (exact on the sphere: chord = 2 sin(theta/2) is monotonic
 * in theta), so there is no flat-sky approximation, no pole or RA-wrap special
 * case. Candidates whose chord is within rounding error of a threshold are
 * decided with the Vincenty separation, which is also what gets reported.
 *
 * Layout: points are reordered into tree order (interleaved xyz); nodes are
 * implicit in heap order (children of n are 2n+1, 2n+2), a node covering the
 * slot range [lo, hi) splits at lo + floor((hi-lo)/2) along its widest axis,
 * and every node keeps its bounding box for pruning.
 */
import { CrossmatchInputError, CrossmatchOptionError, throwIfAborted } from './errors.js';
import { mortonFrame, mortonOrder, mortonSort, type MortonFrame } from './morton.js';
import type { Scratch } from './scratch.js';
import { chordBand, separationArcsec, toUnitVectors, type ChordBand, type SkyPoints } from './sphere.js';

export interface SkyIndexBuildOptions {
  /** Points per leaf; larger leaves build faster and query a little slower. @default 12 */
  leafSize?: number;
  /**
   * 'morton': points sorted along a Z-order curve (O(n) radix sort), nodes split
   * at the middle of their range, boxes computed bottom-up: fastest build.
   * 'kdtree': median split along the widest axis at every node: tightest boxes.
   * @default 'morton'
   */
  method?: 'morton' | 'kdtree';
  signal?: AbortSignal;
  /** Reuse this memory for the build's temporary arrays (unit vectors, sort keys): see scratch.ts. */
  scratch?: Scratch;
}

export interface Neighbour {
  /** Row index in the points the index was built from. */
  index: number;
  sepArcsec: number;
}

/** Separation limits of one search, compiled once per query batch. */
export interface SearchLimits {
  maxArcsec: number;
  max: ChordBand;
  /** Pairs at or below this separation are excluded; 0 disables. */
  minArcsec: number;
  min: ChordBand;
}

export function compileSearchLimits(maxArcsec: number, minArcsec = 0): SearchLimits {
  return { maxArcsec, max: chordBand(maxArcsec), minArcsec, min: chordBand(minArcsec) };
}

const DEFAULT_LEAF_SIZE = 12;
const STACK_DEPTH = 256;

export class SkyIndex {
  /** Number of indexed points. */
  readonly size: number;
  private readonly ra: Float64Array;
  private readonly dec: Float64Array;
  /** Unit vectors in tree order. */
  private readonly xyz: Float64Array;
  /** Tree slot -> row index in the original points. */
  private readonly slotToRow: Int32Array;
  /** Per node: minx, miny, minz, maxx, maxy, maxz. */
  private readonly boxes: Float64Array;
  private readonly leafSize: number;
  /** Quantisation frame of the Morton layout, reused to order queries. */
  private readonly frame: MortonFrame;
  private readonly stack = new Int32Array(3 * STACK_DEPTH);
  /** Scratch for k-nearest searches (grown on demand). */
  private bestD2 = new Float64Array(16);
  private bestSlot = new Int32Array(16);

  private constructor(
    points: SkyPoints,
    xyz: Float64Array,
    slotToRow: Int32Array,
    boxes: Float64Array,
    leafSize: number,
    frame: MortonFrame,
  ) {
    this.frame = frame;
    this.size = points.ra.length;
    this.ra = points.ra;
    this.dec = points.dec;
    this.xyz = xyz;
    this.slotToRow = slotToRow;
    this.boxes = boxes;
    this.leafSize = leafSize;
  }

  /** Builds the index; the points' arrays are kept by reference (do not mutate them afterwards). */
  static build(points: SkyPoints, options: SkyIndexBuildOptions = {}): SkyIndex {
    const leafSize = options.leafSize ?? DEFAULT_LEAF_SIZE;
    if (!Number.isInteger(leafSize) || leafSize < 1 || leafSize > 4096) {
      throw new CrossmatchOptionError('leafSize', leafSize, 'must be an integer in [1, 4096]');
    }
    const n = points.ra.length;
    if (points.dec.length !== n) {
      throw new CrossmatchInputError('points', undefined, `ra has ${n} values but dec has ${points.dec.length}`);
    }
    const { xyz, badRow } = toUnitVectors(points, options.scratch?.f64('index.xyz', 3 * n));
    if (badRow >= 0) {
      throw new CrossmatchInputError(
        'points',
        badRow,
        `ra=${points.ra[badRow]} dec=${points.dec[badRow]} is not a finite position with |dec| <= 90`,
      );
    }
    throwIfAborted(options.signal, 'index build');
    // Z-order layout first: both builds then walk memory mostly sequentially
    const frame = mortonFrame(xyz);
    const { order: slotToRow, sorted } = mortonSort(xyz, frame, options.scratch);
    let depth = 0;
    while (Math.ceil(n / 2 ** depth) > leafSize) depth++;
    const nodeCount = n === 0 ? 0 : 2 ** (depth + 1) - 1;
    const boxes = new Float64Array(6 * nodeCount);
    if (n > 0) {
      throwIfAborted(options.signal, 'index build');
      if ((options.method ?? 'morton') === 'kdtree') buildKdTree(sorted, slotToRow, boxes, n, leafSize, options.signal);
      else buildBoxes(sorted, boxes, 0, 0, n, leafSize);
    }
    return new SkyIndex(points, sorted, slotToRow, boxes, leafSize, frame);
  }

  /**
   * Rows of the given unit vectors in the index's Z-order: querying in this
   * order keeps consecutive searches in the same cache lines.
   */
  queryOrder(xyz: Float64Array, scratch?: Scratch): Int32Array {
    return mortonOrder(xyz, this.frame, scratch);
  }

  /** Rows within `radiusArcsec` (inclusive) of (ra, dec), ascending row order. */
  queryRadius(ra: number, dec: number, radiusArcsec: number): number[] {
    checkRadius(radiusArcsec, 'radiusArcsec');
    const out: number[] = [];
    const [x, y, z] = unitVector(ra, dec);
    this.searchRadius(x, y, z, ra, dec, compileSearchLimits(radiusArcsec), (slot) => {
      out.push(this.slotToRow[slot]!);
    });
    return out.sort((a, b) => a - b);
  }

  /**
   * Up to k nearest rows within `maxRadiusArcsec` (inclusive) of (ra, dec),
   * nearest first; equal separations are ordered by row index.
   */
  nearest(ra: number, dec: number, k: number, maxRadiusArcsec: number): Neighbour[] {
    if (!Number.isInteger(k) || k < 1) throw new CrossmatchOptionError('k', k, 'must be an integer >= 1');
    checkRadius(maxRadiusArcsec, 'maxRadiusArcsec');
    const [x, y, z] = unitVector(ra, dec);
    const count = this.searchNearest(x, y, z, ra, dec, k, compileSearchLimits(maxRadiusArcsec));
    const out: Neighbour[] = [];
    for (let i = 0; i < count; i++) {
      const row = this.slotToRow[this.bestSlot[i]!]!;
      out.push({ index: row, sepArcsec: separationArcsec(ra, dec, this.ra[row]!, this.dec[row]!) });
    }
    return out.sort((a, b) => a.sepArcsec - b.sepArcsec || a.index - b.index);
  }

  /** Row index of a tree slot (for the batch kernels). */
  rowOfSlot(slot: number): number {
    return this.slotToRow[slot]!;
  }

  /** Slots of the last `searchNearest`, nearest first (valid until the next search). */
  lastNearestSlots(): Int32Array {
    return this.bestSlot;
  }

  /**
   * k-nearest search around unit vector (qx,qy,qz) = (qra,qdec). Results go to
   * `lastNearestSlots()` ordered by (squared chord, row); returns the count.
   */
  searchNearest(qx: number, qy: number, qz: number, qra: number, qdec: number, k: number, limits: SearchLimits): number {
    if (this.size === 0) return 0;
    if (this.bestD2.length < k) {
      this.bestD2 = new Float64Array(k);
      this.bestSlot = new Int32Array(k);
    }
    const bestD2 = this.bestD2;
    const bestSlot = this.bestSlot;
    const { xyz, boxes, stack, leafSize, slotToRow, ra, dec } = this;
    const maxHi2 = limits.max.hi2;
    const maxLo2 = limits.max.lo2;
    const useMin = limits.minArcsec > 0;
    const minHi2 = limits.min.hi2;
    const minLo2 = limits.min.lo2;
    let count = 0;
    let bound2 = maxHi2;
    let sp = 0;
    stack[0] = 0;
    stack[1] = 0;
    stack[2] = this.size;
    sp = 1;
    while (sp > 0) {
      sp--;
      const node = stack[3 * sp]!;
      const lo = stack[3 * sp + 1]!;
      const hi = stack[3 * sp + 2]!;
      if (boxDistance2(boxes, node, qx, qy, qz) > bound2) continue;
      if (hi - lo <= leafSize) {
        for (let s = lo; s < hi; s++) {
          const dx = xyz[3 * s]! - qx;
          const dy = xyz[3 * s + 1]! - qy;
          const dz = xyz[3 * s + 2]! - qz;
          const d2 = dx * dx + dy * dy + dz * dz;
          if (d2 > bound2) continue;
          if (count === k) {
            const worst = bestD2[k - 1]!;
            if (d2 === worst && slotToRow[s]! > slotToRow[bestSlot[k - 1]!]!) continue;
          }
          if (d2 > maxLo2 || (useMin && d2 <= minHi2)) {
            if (useMin && d2 <= minLo2) continue;
            const row = slotToRow[s]!;
            const sep = separationArcsec(qra, qdec, ra[row]!, dec[row]!);
            if (sep > limits.maxArcsec) continue;
            if (useMin && sep <= limits.minArcsec) continue;
          }
          // insertion into the sorted k-best list, ordered by (d2, row)
          const row = slotToRow[s]!;
          let pos = count < k ? count : k - 1;
          while (pos > 0) {
            const prev = bestD2[pos - 1]!;
            if (prev < d2 || (prev === d2 && slotToRow[bestSlot[pos - 1]!]! < row)) break;
            bestD2[pos] = prev;
            bestSlot[pos] = bestSlot[pos - 1]!;
            pos--;
          }
          bestD2[pos] = d2;
          bestSlot[pos] = s;
          if (count < k) count++;
          if (count === k) bound2 = bestD2[k - 1]!;
        }
        continue;
      }
      const mid = lo + ((hi - lo) >> 1);
      const left = 2 * node + 1;
      const right = left + 1;
      const dl = boxDistance2(boxes, left, qx, qy, qz);
      const dr = boxDistance2(boxes, right, qx, qy, qz);
      // push the farther child first so the nearer one is searched first
      if (dl <= dr) {
        if (dr <= bound2) sp = push(stack, sp, right, mid, hi);
        if (dl <= bound2) sp = push(stack, sp, left, lo, mid);
      } else {
        if (dl <= bound2) sp = push(stack, sp, left, lo, mid);
        if (dr <= bound2) sp = push(stack, sp, right, mid, hi);
      }
    }
    return count;
  }

  /** Calls `visit(slot)` for every slot within the limits (any order). */
  searchRadius(
    qx: number,
    qy: number,
    qz: number,
    qra: number,
    qdec: number,
    limits: SearchLimits,
    visit: (slot: number) => void,
  ): void {
    if (this.size === 0) return;
    const { xyz, boxes, stack, leafSize, slotToRow, ra, dec } = this;
    const maxHi2 = limits.max.hi2;
    const maxLo2 = limits.max.lo2;
    const useMin = limits.minArcsec > 0;
    const minHi2 = limits.min.hi2;
    const minLo2 = limits.min.lo2;
    stack[0] = 0;
    stack[1] = 0;
    stack[2] = this.size;
    let sp = 1;
    while (sp > 0) {
      sp--;
      const node = stack[3 * sp]!;
      const lo = stack[3 * sp + 1]!;
      const hi = stack[3 * sp + 2]!;
      if (boxDistance2(boxes, node, qx, qy, qz) > maxHi2) continue;
      if (hi - lo <= leafSize) {
        for (let s = lo; s < hi; s++) {
          const dx = xyz[3 * s]! - qx;
          const dy = xyz[3 * s + 1]! - qy;
          const dz = xyz[3 * s + 2]! - qz;
          const d2 = dx * dx + dy * dy + dz * dz;
          if (d2 > maxHi2) continue;
          if (d2 > maxLo2 || (useMin && d2 <= minHi2)) {
            if (useMin && d2 <= minLo2) continue;
            const row = slotToRow[s]!;
            const sep = separationArcsec(qra, qdec, ra[row]!, dec[row]!);
            if (sep > limits.maxArcsec) continue;
            if (useMin && sep <= limits.minArcsec) continue;
          }
          visit(s);
        }
        continue;
      }
      const mid = lo + ((hi - lo) >> 1);
      sp = push(stack, sp, 2 * node + 1, lo, mid);
      sp = push(stack, sp, 2 * node + 2, mid, hi);
    }
  }
}

function push(stack: Int32Array, sp: number, node: number, lo: number, hi: number): number {
  stack[3 * sp] = node;
  stack[3 * sp + 1] = lo;
  stack[3 * sp + 2] = hi;
  return sp + 1;
}

function boxDistance2(boxes: Float64Array, node: number, x: number, y: number, z: number): number {
  const b = 6 * node;
  let d2 = 0;
  let t = boxes[b]! - x;
  if (t > 0) d2 += t * t;
  else {
    t = x - boxes[b + 3]!;
    if (t > 0) d2 += t * t;
  }
  t = boxes[b + 1]! - y;
  if (t > 0) d2 += t * t;
  else {
    t = y - boxes[b + 4]!;
    if (t > 0) d2 += t * t;
  }
  t = boxes[b + 2]! - z;
  if (t > 0) d2 += t * t;
  else {
    t = z - boxes[b + 5]!;
    if (t > 0) d2 += t * t;
  }
  return d2;
}

export function unitVector(ra: number, dec: number): [number, number, number] {
  if (!Number.isFinite(ra) || !(dec >= -90 && dec <= 90)) {
    throw new CrossmatchInputError('query', undefined, `ra=${ra} dec=${dec} is not a finite position with |dec| <= 90`);
  }
  const a = (ra * Math.PI) / 180;
  const d = (dec * Math.PI) / 180;
  const cd = Math.cos(d);
  return [cd * Math.cos(a), cd * Math.sin(a), Math.sin(d)];
}

function checkRadius(value: number, name: string): void {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new CrossmatchOptionError(name, value, 'must be a finite number >= 0 (arcsec)');
  }
}

/** Bottom-up boxes of the implicit midpoint tree over already ordered slots. */
function buildBoxes(xyz: Float64Array, boxes: Float64Array, node: number, lo: number, hi: number, leafSize: number): void {
  const b = 6 * node;
  if (hi - lo <= leafSize) {
    let minX = Infinity;
    let minY = Infinity;
    let minZ = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    let maxZ = -Infinity;
    for (let s = lo; s < hi; s++) {
      const x = xyz[3 * s]!;
      const y = xyz[3 * s + 1]!;
      const z = xyz[3 * s + 2]!;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      if (z < minZ) minZ = z;
      if (z > maxZ) maxZ = z;
    }
    boxes[b] = minX;
    boxes[b + 1] = minY;
    boxes[b + 2] = minZ;
    boxes[b + 3] = maxX;
    boxes[b + 4] = maxY;
    boxes[b + 5] = maxZ;
    return;
  }
  const mid = lo + ((hi - lo) >> 1);
  const l = 2 * node + 1;
  const r = l + 1;
  buildBoxes(xyz, boxes, l, lo, mid, leafSize);
  buildBoxes(xyz, boxes, r, mid, hi, leafSize);
  const bl = 6 * l;
  const br = 6 * r;
  boxes[b] = Math.min(boxes[bl]!, boxes[br]!);
  boxes[b + 1] = Math.min(boxes[bl + 1]!, boxes[br + 1]!);
  boxes[b + 2] = Math.min(boxes[bl + 2]!, boxes[br + 2]!);
  boxes[b + 3] = Math.max(boxes[bl + 3]!, boxes[br + 3]!);
  boxes[b + 4] = Math.max(boxes[bl + 4]!, boxes[br + 4]!);
  boxes[b + 5] = Math.max(boxes[bl + 5]!, boxes[br + 5]!);
}

function buildKdTree(
  xyz: Float64Array,
  slotToRow: Int32Array,
  boxes: Float64Array,
  n: number,
  leafSize: number,
  signal: AbortSignal | undefined,
): void {
  const stack: number[] = [0, 0, n];
  while (stack.length > 0) {
    const hi = stack.pop()!;
    const lo = stack.pop()!;
    const node = stack.pop()!;
    if (hi - lo >= 1 << 16) throwIfAborted(signal, 'index build');
    let minX = Infinity;
    let minY = Infinity;
    let minZ = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    let maxZ = -Infinity;
    for (let s = lo; s < hi; s++) {
      const x = xyz[3 * s]!;
      const y = xyz[3 * s + 1]!;
      const z = xyz[3 * s + 2]!;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      if (z < minZ) minZ = z;
      if (z > maxZ) maxZ = z;
    }
    const b = 6 * node;
    boxes[b] = minX;
    boxes[b + 1] = minY;
    boxes[b + 2] = minZ;
    boxes[b + 3] = maxX;
    boxes[b + 4] = maxY;
    boxes[b + 5] = maxZ;
    if (hi - lo <= leafSize) continue;
    const ex = maxX - minX;
    const ey = maxY - minY;
    const ez = maxZ - minZ;
    const axis = ex >= ey ? (ex >= ez ? 0 : 2) : ey >= ez ? 1 : 2;
    const mid = lo + ((hi - lo) >> 1);
    select(xyz, slotToRow, lo, hi - 1, mid, axis);
    stack.push(2 * node + 2, mid, hi, 2 * node + 1, lo, mid);
  }
}

/** Hoare quickselect: afterwards slot k holds the k-th smallest along `axis` within [lo, hi]. */
function select(xyz: Float64Array, slotToRow: Int32Array, lo: number, hi: number, k: number, axis: number): void {
  while (hi > lo) {
    const m = lo + ((hi - lo) >> 1);
    // median of three as pivot, moved into place to keep the partition balanced
    if (xyz[3 * m + axis]! < xyz[3 * lo + axis]!) swap(xyz, slotToRow, m, lo);
    if (xyz[3 * hi + axis]! < xyz[3 * lo + axis]!) swap(xyz, slotToRow, hi, lo);
    if (xyz[3 * hi + axis]! < xyz[3 * m + axis]!) swap(xyz, slotToRow, hi, m);
    const pivot = xyz[3 * m + axis]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (xyz[3 * i + axis]! < pivot) i++;
      while (xyz[3 * j + axis]! > pivot) j--;
      if (i <= j) {
        swap(xyz, slotToRow, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

function swap(xyz: Float64Array, slotToRow: Int32Array, i: number, j: number): void {
  const r = slotToRow[i]!;
  slotToRow[i] = slotToRow[j]!;
  slotToRow[j] = r;
  const a = 3 * i;
  const b = 3 * j;
  let t = xyz[a]!;
  xyz[a] = xyz[b]!;
  xyz[b] = t;
  t = xyz[a + 1]!;
  xyz[a + 1] = xyz[b + 1]!;
  xyz[b + 1] = t;
  t = xyz[a + 2]!;
  xyz[a + 2] = xyz[b + 2]!;
  xyz[b + 2] = t;
}
