/**
 * Which partitions of a catalog a spatial selection touches. Pure functions
 * over the partition list; the HEALPix geometry comes from astro/healpix.
 */
import { queryDisc } from '../healpix/index.js';
import type { HatsCatalog, HatsPartition } from './catalog.js';

/**
 * Every partition that may hold rows within the cone (centre and radius in
 * degrees): an inclusive disc query at each partition order, so the answer is
 * a superset of the partitions with rows inside the cone.
 */
export function partitionsInCone(cat: HatsCatalog, raDeg: number, decDeg: number, radiusDeg: number): HatsPartition[] {
  if (!Number.isFinite(raDeg) || !Number.isFinite(decDeg) || !Number.isFinite(radiusDeg) || radiusDeg < 0) {
    throw new RangeError(`partitionsInCone: bad cone ra=${raDeg} dec=${decDeg} radius=${radiusDeg} deg`);
  }
  if (radiusDeg >= 180) return [...cat.partitions];
  const byOrder = new Map<number, Set<number>>();
  const out: HatsPartition[] = [];
  for (const p of cat.partitions) {
    let hit = byOrder.get(p.order);
    if (hit === undefined) {
      hit = new Set(queryDisc(p.order, raDeg, decDeg, radiusDeg, { inclusive: true }));
      byOrder.set(p.order, hit);
    }
    if (hit.has(p.pixel)) out.push(p);
  }
  return out;
}

/**
 * Partitions overlapping any of `pixels` (NESTED, at `order`): a partition
 * matches when it is the pixel, one of its ancestors or one of its descendants.
 */
export function partitionsForPixels(cat: HatsCatalog, order: number, pixels: readonly number[]): HatsPartition[] {
  if (!Number.isInteger(order) || order < 0 || order > 29) {
    throw new RangeError(`partitionsForPixels: order ${order} is not an integer in 0..29`);
  }
  const sorted = Float64Array.from(pixels).sort();
  const set = new Set(pixels);
  return cat.partitions.filter((p) => {
    if (p.order >= order) {
      // The partition is the pixel or a descendant: its ancestor at `order` must be listed.
      return set.has(Math.floor(p.pixel / 4 ** (p.order - order)));
    }
    // The partition is an ancestor: some listed pixel must fall in its range of descendants.
    const scale = 4 ** (order - p.order);
    const lo = p.pixel * scale;
    const hi = lo + scale;
    const i = lowerBound(sorted, lo);
    return i < sorted.length && (sorted[i] ?? Infinity) < hi;
  });
}

function lowerBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] ?? Infinity) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
