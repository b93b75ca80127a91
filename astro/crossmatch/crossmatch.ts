/**
 * Batch cross-match of two point sets on the sphere (pure, in memory) and the
 * cone search. Partition-aware matching over HATS catalogs lives in
 * partition.ts and calls into this file.
 */
import { CrossmatchInputError, CrossmatchOptionError, throwIfAborted } from './errors.js';
import type { Scratch } from './scratch.js';
import { SkyIndex, compileSearchLimits, unitVector } from './sky-index.js';
import { DEG2RAD, chordBand, separationArcsec, toUnitVectors, type SkyPoints } from './sphere.js';

/**
 * Matched pairs, ordered by left row then rank. `left`/`right` are row indices
 * into the inputs; `rank` is 1 for the nearest right row of that left row.
 */
export interface MatchPairs {
  left: Int32Array;
  right: Int32Array;
  sepArcsec: Float64Array;
  rank: Int32Array;
}

export type CrossmatchMode = 'nearest' | 'all';

export interface CrossmatchOptions {
  /** Match radius in arcseconds; pairs with separation <= radius match. Must be > 0. */
  radiusArcsec: number;
  /** Up to this many nearest right rows per left row ('nearest' mode only). @default 1 */
  k?: number;
  /**
   * 'nearest': up to k nearest within the radius; 'all': every pair within the radius.
   * @default 'nearest'
   */
  mode?: CrossmatchMode;
  /**
   * Pairs with separation <= this (arcsec) are ignored, and in 'nearest' mode the k
   * nearest are taken among the rest (lsdb's `min_radius_arcsec`). @default 0
   */
  minRadiusArcsec?: number;
  /** Checked between chunks of left rows. */
  signal?: AbortSignal;
  /** Called between chunks with (left rows done, left rows total). */
  onProgress?: (done: number, total: number) => void;
  /** A prebuilt index of `right` (e.g. reused across calls); built here when absent. */
  rightIndex?: SkyIndex;
  /**
   * Memory reused for the temporary arrays of the index build and the query order across calls
   * (scratch.ts): fewer external allocations, fewer full collections when matching many units.
   */
  scratch?: Scratch;
}

export interface CompiledCrossmatchOptions {
  radiusArcsec: number;
  k: number;
  mode: CrossmatchMode;
  minRadiusArcsec: number;
}

/** Fills defaults and rejects out-of-range or conflicting options. Pure. */
export function compileCrossmatchOptions(options: CrossmatchOptions): CompiledCrossmatchOptions {
  const { radiusArcsec } = options;
  if (typeof radiusArcsec !== 'number' || !Number.isFinite(radiusArcsec) || radiusArcsec <= 0) {
    throw new CrossmatchOptionError('radiusArcsec', radiusArcsec, 'must be a finite number > 0');
  }
  if (radiusArcsec > 180 * 3600) {
    throw new CrossmatchOptionError('radiusArcsec', radiusArcsec, 'must be <= 648000 (180 degrees)');
  }
  const mode = options.mode ?? 'nearest';
  if (mode !== 'nearest' && mode !== 'all') {
    throw new CrossmatchOptionError('mode', mode, "must be 'nearest' or 'all'");
  }
  const k = options.k ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new CrossmatchOptionError('k', k, 'must be an integer >= 1');
  if (mode === 'all' && options.k !== undefined && k !== 1) {
    throw new CrossmatchOptionError('k', k, "conflicts with mode 'all' (every pair within the radius is returned)");
  }
  const minRadiusArcsec = options.minRadiusArcsec ?? 0;
  if (!Number.isFinite(minRadiusArcsec) || minRadiusArcsec < 0) {
    throw new CrossmatchOptionError('minRadiusArcsec', minRadiusArcsec, 'must be a finite number >= 0');
  }
  if (minRadiusArcsec >= radiusArcsec) {
    throw new CrossmatchOptionError('minRadiusArcsec', minRadiusArcsec, `must be smaller than radiusArcsec (${radiusArcsec})`);
  }
  return { radiusArcsec, k, mode, minRadiusArcsec };
}

const CHUNK = 8192;

/**
 * Cross-matches `left` against `right`. Exact on the sphere (k-d tree on unit
 * vectors, Vincenty separations); ties in separation go to the lower right row.
 */
export function crossmatch(left: SkyPoints, right: SkyPoints, options: CrossmatchOptions): MatchPairs {
  const opts = compileCrossmatchOptions(options);
  checkPoints(left, 'left');
  checkPoints(right, 'right');
  throwIfAborted(options.signal, 'index build');
  const index = options.rightIndex ?? SkyIndex.build(right, { signal: options.signal, ...(options.scratch ? { scratch: options.scratch } : {}) });
  if (index.size !== right.ra.length) {
    throw new CrossmatchOptionError('rightIndex', index.size, `indexes ${index.size} points but right has ${right.ra.length}`);
  }
  const limits = compileSearchLimits(opts.radiusArcsec, opts.minRadiusArcsec);
  const out = new PairBuffer(Math.min(left.ra.length, 1 << 16));
  const n = left.ra.length;
  const lra = left.ra;
  const ldec = left.dec;
  const rra = right.ra;
  const rdec = right.dec;
  const { xyz: lxyz, badRow } = toUnitVectors(left, options.scratch?.f64('query.xyz', 3 * n));
  if (badRow >= 0) {
    throw new CrossmatchInputError('left', badRow, `ra=${lra[badRow]} dec=${ldec[badRow]} is not a finite position with |dec| <= 90`);
  }
  // query in the index's Z-order (cache locality), then restore left-row order
  const order = index.queryOrder(lxyz, options.scratch);
  // scratch for sorting one left row's candidates by (separation, right row)
  let candRow = new Int32Array(16);
  let candSep = new Float64Array(16);
  for (let start = 0; start < n; start += CHUNK) {
    throwIfAborted(options.signal, 'cross-match');
    const end = Math.min(n, start + CHUNK);
    for (let o = start; o < end; o++) {
      const i = order[o]!;
      const ra = lra[i]!;
      const dec = ldec[i]!;
      const x = lxyz[3 * i]!;
      const y = lxyz[3 * i + 1]!;
      const z = lxyz[3 * i + 2]!;
      let count = 0;
      if (opts.mode === 'nearest') {
        count = index.searchNearest(x, y, z, ra, dec, opts.k, limits);
        if (count === 0) continue;
        const slots = index.lastNearestSlots();
        if (count === 1) {
          const r = index.rowOfSlot(slots[0]!);
          out.push(i, r, separationArcsec(ra, dec, rra[r]!, rdec[r]!), 1);
          continue;
        }
        if (candRow.length < count) {
          candRow = new Int32Array(count * 2);
          candSep = new Float64Array(count * 2);
        }
        for (let c = 0; c < count; c++) {
          const r = index.rowOfSlot(slots[c]!);
          candRow[c] = r;
          candSep[c] = separationArcsec(ra, dec, rra[r]!, rdec[r]!);
        }
      } else {
        index.searchRadius(x, y, z, ra, dec, limits, (slot) => {
          if (count === candRow.length) {
            const grownRow = new Int32Array(count * 2);
            grownRow.set(candRow);
            candRow = grownRow;
            const grownSep = new Float64Array(count * 2);
            grownSep.set(candSep);
            candSep = grownSep;
          }
          const r = index.rowOfSlot(slot);
          candRow[count] = r;
          candSep[count] = separationArcsec(ra, dec, rra[r]!, rdec[r]!);
          count++;
        });
        if (count === 0) continue;
      }
      sortCandidates(candRow, candSep, count);
      for (let c = 0; c < count; c++) out.push(i, candRow[c]!, candSep[c]!, c + 1);
    }
    options.onProgress?.(end, n);
  }
  return sortPairsByLeft(out.finish(), n);
}

/** Stable counting sort of pairs by left row (pairs of one left row stay in rank order). */
function sortPairsByLeft(pairs: MatchPairs, leftCount: number): MatchPairs {
  const m = pairs.left.length;
  const start = new Int32Array(leftCount + 1);
  for (let p = 0; p < m; p++) start[pairs.left[p]! + 1]!++;
  for (let i = 0; i < leftCount; i++) start[i + 1]! += start[i]!;
  const out: MatchPairs = {
    left: new Int32Array(m),
    right: new Int32Array(m),
    sepArcsec: new Float64Array(m),
    rank: new Int32Array(m),
  };
  for (let p = 0; p < m; p++) {
    const q = start[pairs.left[p]!]!++;
    out.left[q] = pairs.left[p]!;
    out.right[q] = pairs.right[p]!;
    out.sepArcsec[q] = pairs.sepArcsec[p]!;
    out.rank[q] = pairs.rank[p]!;
  }
  return out;
}

/**
 * Rows of `points` within `radiusArcsec` (inclusive, Vincenty separation) of
 * (ra, dec), ascending. A linear scan: for many cones over the same points,
 * build a SkyIndex and call `queryRadius`.
 */
export function coneSearch(points: SkyPoints, ra: number, dec: number, radiusArcsec: number): Int32Array {
  if (!Number.isFinite(radiusArcsec) || radiusArcsec < 0) {
    throw new CrossmatchOptionError('radiusArcsec', radiusArcsec, 'must be a finite number >= 0');
  }
  checkPoints(points, 'points');
  const [qx, qy, qz] = unitVector(ra, dec);
  const band = chordBand(radiusArcsec);
  const out: number[] = [];
  const n = points.ra.length;
  for (let i = 0; i < n; i++) {
    const a = points.ra[i]! * DEG2RAD;
    const d = points.dec[i]! * DEG2RAD;
    const cd = Math.cos(d);
    const dx = cd * Math.cos(a) - qx;
    const dy = cd * Math.sin(a) - qy;
    const dz = Math.sin(d) - qz;
    const d2 = dx * dx + dy * dy + dz * dz;
    if (d2 > band.hi2) continue;
    if (d2 > band.lo2 && separationArcsec(ra, dec, points.ra[i]!, points.dec[i]!) > radiusArcsec) continue;
    out.push(i);
  }
  return Int32Array.from(out);
}

function checkPoints(points: SkyPoints, name: string): void {
  if (!(points.ra instanceof Float64Array) || !(points.dec instanceof Float64Array)) {
    throw new CrossmatchInputError(name, undefined, 'ra and dec must be Float64Arrays (degrees)');
  }
  if (points.ra.length !== points.dec.length) {
    throw new CrossmatchInputError(name, undefined, `ra has ${points.ra.length} values but dec has ${points.dec.length}`);
  }
}

/** Insertion sort by (separation, row): candidate lists are short. */
function sortCandidates(rows: Int32Array, seps: Float64Array, count: number): void {
  for (let i = 1; i < count; i++) {
    const r = rows[i]!;
    const s = seps[i]!;
    let j = i - 1;
    while (j >= 0 && (seps[j]! > s || (seps[j] === s && rows[j]! > r))) {
      rows[j + 1] = rows[j]!;
      seps[j + 1] = seps[j]!;
      j--;
    }
    rows[j + 1] = r;
    seps[j + 1] = s;
  }
}

/** Growable columnar pair storage. */
export class PairBuffer {
  private left: Int32Array;
  private right: Int32Array;
  private sep: Float64Array;
  private rank: Int32Array;
  length = 0;

  constructor(capacity = 1024) {
    const c = Math.max(16, capacity);
    this.left = new Int32Array(c);
    this.right = new Int32Array(c);
    this.sep = new Float64Array(c);
    this.rank = new Int32Array(c);
  }

  push(left: number, right: number, sepArcsec: number, rank: number): void {
    if (this.length === this.left.length) this.grow();
    const i = this.length++;
    this.left[i] = left;
    this.right[i] = right;
    this.sep[i] = sepArcsec;
    this.rank[i] = rank;
  }

  finish(): MatchPairs {
    const n = this.length;
    return {
      left: this.left.slice(0, n),
      right: this.right.slice(0, n),
      sepArcsec: this.sep.slice(0, n),
      rank: this.rank.slice(0, n),
    };
  }

  private grow(): void {
    const c = this.left.length * 2;
    const l = new Int32Array(c);
    l.set(this.left);
    this.left = l;
    const r = new Int32Array(c);
    r.set(this.right);
    this.right = r;
    const s = new Float64Array(c);
    s.set(this.sep);
    this.sep = s;
    const k = new Int32Array(c);
    k.set(this.rank);
    this.rank = k;
  }
}
