/**
 * A simplified LSST-style "rings" sky map: the sphere cut into declination
 * rings of equal height, each ring into tracts of roughly equal width, plus a
 * polar-cap tract at each pole. Every tract has its own TAN WCS and a pixel
 * grid of square patches (inner size + border), like lsst.skymap.RingsSkyMap
 * (simplified: tract bounding boxes are rounded up to whole patches).
 */
import { TanSipWcs } from '../wcs/index.js';
import { ImagesAbortError, SkyMapError } from './errors.js';
import type { ImageIndexRow } from './index-images.js';
import { footprintVectors } from './select.js';
import { angleDeg, norm, toRaDec, toVec, type Vec3 } from './sphere.js';

export interface RingsSkyMapConfig {
  /** number of declination rings between the polar caps. @default 120 */
  numRings?: number;
  /** overlap between adjacent tracts, degrees. @default 1/60 */
  tractOverlapDeg?: number;
  /** pixel scale of the tract WCS, arcsec/pixel. @default 0.2 */
  pixelScaleArcsec?: number;
  /** inner (non-overlapping) patch size, pixels. @default 4000 */
  patchInnerPx?: number;
  /** border added around each patch's inner box, pixels. @default 100 */
  patchBorderPx?: number;
  /** right ascension of the first tract centre in each ring, degrees. @default 0 */
  raStartDeg?: number;
}

export interface CompiledSkyMapConfig {
  numRings: number;
  tractOverlapDeg: number;
  pixelScaleArcsec: number;
  patchInnerPx: number;
  patchBorderPx: number;
  raStartDeg: number;
}

/** Fill defaults and reject impossible values. */
export function compileSkyMapConfig(c: RingsSkyMapConfig = {}): CompiledSkyMapConfig {
  const out: CompiledSkyMapConfig = {
    numRings: c.numRings ?? 120,
    tractOverlapDeg: c.tractOverlapDeg ?? 1 / 60,
    pixelScaleArcsec: c.pixelScaleArcsec ?? 0.2,
    patchInnerPx: c.patchInnerPx ?? 4000,
    patchBorderPx: c.patchBorderPx ?? 100,
    raStartDeg: c.raStartDeg ?? 0,
  };
  if (!Number.isInteger(out.numRings) || out.numRings < 1 || out.numRings > 10000) throw new SkyMapError('numRings must be an integer in 1..10000', out.numRings);
  if (!(out.tractOverlapDeg >= 0 && out.tractOverlapDeg < 180 / (out.numRings + 1))) throw new SkyMapError('tractOverlapDeg must be >= 0 and smaller than a ring', out.tractOverlapDeg);
  if (!(out.pixelScaleArcsec > 0)) throw new SkyMapError('pixelScaleArcsec must be > 0', out.pixelScaleArcsec);
  if (!Number.isInteger(out.patchInnerPx) || out.patchInnerPx < 1) throw new SkyMapError('patchInnerPx must be a positive integer', out.patchInnerPx);
  if (!Number.isInteger(out.patchBorderPx) || out.patchBorderPx < 0) throw new SkyMapError('patchBorderPx must be a non-negative integer', out.patchBorderPx);
  if (!Number.isFinite(out.raStartDeg)) throw new SkyMapError('raStartDeg must be finite', out.raStartDeg);
  return out;
}

/** Pixel box [x0, x0 + width) x [y0, y0 + height), 0-based pixel indices. */
export interface BBox {
  x0: number;
  y0: number;
  width: number;
  height: number;
}

export interface TractInfo {
  id: number;
  /** -1 south cap, 0..numRings-1 rings, numRings north cap */
  ring: number;
  /** centre of the tract (and its WCS reference point), degrees */
  ra: number;
  dec: number;
  /** the inner region: dec range, and for ring tracts the RA range (raMin may exceed raMax across 0) */
  decMin: number;
  decMax: number;
  raMin: number;
  raMax: number;
  /** tract pixel box is [0, width) x [0, height) */
  width: number;
  height: number;
  /** patches along x and y */
  numPatches: [number, number];
}

export interface GroupByPatchOptions {
  signal?: AbortSignal;
  /** images done, images total */
  onProgress?: (done: number, total: number) => void;
}

export interface PatchGroup {
  tract: number;
  patch: number;
  /** [ix, iy] of the patch in the tract's grid */
  patchIndex: [number, number];
  images: ImageIndexRow[];
}

interface TractCore {
  id: number;
  ring: number;
  ra: number;
  dec: number;
  decMin: number;
  decMax: number;
  raMin: number;
  raMax: number;
  centre: Vec3;
  /** upper bound of the angular radius of the tract's pixel box, degrees */
  boundDeg: number;
}

interface TractGeom extends TractInfo {
  wcs: TanSipWcs;
  centre: Vec3;
}

function wrap360(a: number): number {
  return ((a % 360) + 360) % 360;
}

/** Separating-axis test: convex polygon (2-D points) vs axis-aligned box [x0, x1] x [y0, y1]. */
export function polygonIntersectsBox(poly: [number, number][], x0: number, y0: number, x1: number, y1: number): boolean {
  const xs = poly.map((p) => p[0]);
  const ys = poly.map((p) => p[1]);
  if (Math.max(...xs) < x0 || Math.min(...xs) > x1 || Math.max(...ys) < y0 || Math.min(...ys) > y1) return false;
  const box: [number, number][] = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i] as [number, number];
    const b = poly[(i + 1) % poly.length] as [number, number];
    const nx = b[1] - a[1];
    const ny = a[0] - b[0];
    if (nx === 0 && ny === 0) continue;
    let pmin = Infinity;
    let pmax = -Infinity;
    for (const p of poly) {
      const d = p[0] * nx + p[1] * ny;
      pmin = Math.min(pmin, d);
      pmax = Math.max(pmax, d);
    }
    let bmin = Infinity;
    let bmax = -Infinity;
    for (const p of box) {
      const d = p[0] * nx + p[1] * ny;
      bmin = Math.min(bmin, d);
      bmax = Math.max(bmax, d);
    }
    if (pmax < bmin || bmax < pmin) return false;
  }
  return true;
}

export class RingsSkyMap {
  readonly config: CompiledSkyMapConfig;
  readonly ringSizeDeg: number;
  private readonly cores: TractCore[] = [];
  /** pixel geometry and WCS, built on first use (there are ~19k tracts at the default 120 rings) */
  private readonly geoms = new Map<number, TractGeom>();
  /** first tract id of each ring */
  private readonly ringStart: number[] = [];
  private readonly ringCount: number[] = [];
  private maxBoundDeg = 0;

  constructor(config: RingsSkyMapConfig = {}) {
    this.config = compileSkyMapConfig(config);
    const { numRings, raStartDeg } = this.config;
    const rs = 180 / (numRings + 1);
    this.ringSizeDeg = rs;
    this.addCore(-1, 0, -90, -90, -90 + rs / 2, 0, 360);
    for (let i = 0; i < numRings; i++) {
      const decMin = -90 + rs * (i + 0.5);
      const decMax = decMin + rs;
      const widest = decMin <= 0 && decMax >= 0 ? 1 : Math.cos((Math.min(Math.abs(decMin), Math.abs(decMax)) * Math.PI) / 180);
      const n = Math.max(1, Math.ceil((360 * widest) / rs));
      this.ringStart.push(this.cores.length);
      this.ringCount.push(n);
      const dra = 360 / n;
      for (let j = 0; j < n; j++) {
        const ra = wrap360(raStartDeg + j * dra);
        this.addCore(i, ra, (decMin + decMax) / 2, decMin, decMax, wrap360(ra - dra / 2), wrap360(ra + dra / 2));
      }
    }
    this.addCore(numRings, 0, 90, 90 - rs / 2, 90, 0, 360);
  }

  private isCap(ring: number): boolean {
    return ring < 0 || ring >= this.config.numRings;
  }

  private addCore(ring: number, ra: number, dec: number, decMin: number, decMax: number, raMin: number, raMax: number): void {
    const centre = toVec(ra, dec);
    let inner: number;
    if (this.isCap(ring)) inner = decMax - decMin;
    else {
      const width = wrap360(raMax - raMin) || 360;
      inner = Math.max(
        angleDeg(centre, toVec(raMin, decMin)),
        angleDeg(centre, toVec(raMin, decMax)),
        angleDeg(centre, toVec(raMin + width / 2, decMin)),
        angleDeg(centre, toVec(raMin + width / 2, decMax)),
      );
    }
    const s = this.config.pixelScaleArcsec / 3600;
    // the pixel box is the outline's bounding square grown by the overlap and rounded up to whole patches
    const boundDeg = 1.01 * Math.SQRT2 * (inner + this.config.tractOverlapDeg + (this.config.patchInnerPx / 2 + 2) * s);
    this.maxBoundDeg = Math.max(this.maxBoundDeg, boundDeg);
    this.cores.push({ id: this.cores.length, ring, ra, dec, decMin, decMax, raMin, raMax, centre, boundDeg });
  }

  private geom(core: TractCore): TractGeom {
    const hit = this.geoms.get(core.id);
    if (hit !== undefined) return hit;
    const { pixelScaleArcsec, tractOverlapDeg, patchInnerPx } = this.config;
    const { ring, ra, dec, decMin, decMax, raMin, raMax } = core;
    const s = pixelScaleArcsec / 3600;
    const probe = new TanSipWcs({ crpix: [0, 0], crval: [ra, dec], cd: [[-s, 0], [0, s]] });
    // inner-region outline in the tract's tangent plane
    const outline: [number, number][] = [];
    if (this.isCap(ring)) {
      const edge = ring < 0 ? decMax : decMin;
      for (let k = 0; k < 72; k++) outline.push([k * 5, edge]);
    } else {
      const width = wrap360(raMax - raMin) || 360;
      for (let k = 0; k <= 16; k++) {
        const a = raMin + (width * k) / 16;
        outline.push([a, decMin], [a, decMax]);
        const d = decMin + ((decMax - decMin) * k) / 16;
        outline.push([raMin, d], [raMin + width, d]);
      }
    }
    let hx = 0;
    let hy = 0;
    for (const [a, d] of outline) {
      const [x, y] = probe.skyToPixel(a, d);
      if (!Number.isFinite(x) || !Number.isFinite(y)) throw new SkyMapError('tract wider than a hemisphere: use more rings', this.config.numRings);
      hx = Math.max(hx, Math.abs(x + 1));
      hy = Math.max(hy, Math.abs(y + 1));
    }
    const margin = tractOverlapDeg / s + 1;
    const nx = Math.max(1, Math.ceil((2 * (hx + margin)) / patchInnerPx));
    const ny = Math.max(1, Math.ceil((2 * (hy + margin)) / patchInnerPx));
    const width = nx * patchInnerPx;
    const height = ny * patchInnerPx;
    // tract centre at the middle of the pixel box: 0-based (w-1)/2 is FITS w/2 + 0.5
    const wcs = new TanSipWcs({ crpix: [width / 2 + 0.5, height / 2 + 0.5], crval: [ra, dec], cd: [[-s, 0], [0, s]] });
    const g: TractGeom = { id: core.id, ring, ra, dec, decMin, decMax, raMin, raMax, width, height, numPatches: [nx, ny], wcs, centre: core.centre };
    this.geoms.set(core.id, g);
    return g;
  }

  get numTracts(): number {
    return this.cores.length;
  }

  private tract(id: number): TractGeom {
    const c = Number.isInteger(id) ? this.cores[id] : undefined;
    if (c === undefined) throw new SkyMapError(`no tract ${id} (0..${this.cores.length - 1})`, id);
    return this.geom(c);
  }

  tractInfo(id: number): TractInfo {
    const t = this.tract(id);
    return {
      id: t.id,
      ring: t.ring,
      ra: t.ra,
      dec: t.dec,
      decMin: t.decMin,
      decMax: t.decMax,
      raMin: t.raMin,
      raMax: t.raMax,
      width: t.width,
      height: t.height,
      numPatches: [t.numPatches[0], t.numPatches[1]],
    };
  }

  tractWcs(id: number): TanSipWcs {
    return this.tract(id).wcs;
  }

  /** The one tract whose inner region holds the point. */
  tractFor(ra: number, dec: number): number {
    const rs = this.ringSizeDeg;
    if (dec < -90 + rs / 2) return 0;
    if (dec >= 90 - rs / 2) return this.cores.length - 1;
    const i = Math.min(this.config.numRings - 1, Math.max(0, Math.floor((dec + 90 - rs / 2) / rs)));
    const n = this.ringCount[i] as number;
    const j = ((Math.round(wrap360(ra - this.config.raStartDeg) / (360 / n)) % n) + n) % n;
    return (this.ringStart[i] as number) + j;
  }

  /** Tracts whose angular bounding circle may touch a disc of `radiusDeg` around v (at declination dec, right ascension ra). */
  private candidateTracts(v: Vec3, ra: number, dec: number, radiusDeg: number): TractGeom[] {
    const reach = this.maxBoundDeg + radiusDeg;
    const out: TractGeom[] = [];
    const consider = (c: TractCore): void => {
      if (angleDeg(v, c.centre) <= c.boundDeg + radiusDeg) out.push(this.geom(c));
    };
    consider(this.cores[0] as TractCore);
    const d2r = Math.PI / 180;
    for (let i = 0; i < this.config.numRings; i++) {
      const start = this.ringStart[i] as number;
      const c0 = this.cores[start] as TractCore;
      if (c0.decMax < dec - reach || c0.decMin > dec + reach) continue;
      const n = this.ringCount[i] as number;
      // RA half-width of the reach at the ring's widest point
      const cosMin = Math.cos(Math.min(89.999, Math.max(Math.abs(c0.decMin), Math.abs(c0.decMax), Math.abs(dec))) * d2r);
      const sinReach = Math.sin(Math.min(90, reach) * d2r);
      const dra = 360 / n;
      if (sinReach >= cosMin || reach >= 90) {
        for (let j = 0; j < n; j++) consider(this.cores[start + j] as TractCore);
        continue;
      }
      const half = Math.asin(sinReach / cosMin) / d2r;
      const k = Math.ceil(half / dra) + 1;
      const j0 = Math.round(wrap360(ra - this.config.raStartDeg) / dra);
      if (2 * k + 1 >= n) {
        for (let j = 0; j < n; j++) consider(this.cores[start + j] as TractCore);
      } else {
        for (let dj = -k; dj <= k; dj++) consider(this.cores[start + ((((j0 + dj) % n) + n) % n)] as TractCore);
      }
    }
    consider(this.cores[this.cores.length - 1] as TractCore);
    return out;
  }

  private inBox(t: TractGeom, x: number, y: number): boolean {
    return x >= -0.5 && x < t.width - 0.5 && y >= -0.5 && y < t.height - 0.5;
  }

  /** All tracts whose pixel box contains the point; the tract of the inner region first. */
  tractsFor(ra: number, dec: number): number[] {
    const primary = this.tractFor(ra, dec);
    const out = [primary];
    for (const t of this.candidateTracts(toVec(ra, dec), ra, dec, 0)) {
      if (t.id === primary) continue;
      const [x, y] = t.wcs.skyToPixel(ra, dec);
      if (this.inBox(t, x, y)) out.push(t.id);
    }
    return out;
  }

  /** Patch id from grid indices (id = iy * nx + ix). */
  patchId(tract: number, ix: number, iy: number): number {
    const [nx, ny] = this.tract(tract).numPatches;
    if (!Number.isInteger(ix) || !Number.isInteger(iy) || ix < 0 || iy < 0 || ix >= nx || iy >= ny) throw new SkyMapError(`no patch (${ix}, ${iy}) in tract ${tract} (${nx}x${ny})`, [ix, iy]);
    return iy * nx + ix;
  }

  patchIndex(tract: number, patch: number): [number, number] {
    const [nx, ny] = this.tract(tract).numPatches;
    if (!Number.isInteger(patch) || patch < 0 || patch >= nx * ny) throw new SkyMapError(`no patch ${patch} in tract ${tract} (${nx * ny} patches)`, patch);
    return [patch % nx, Math.floor(patch / nx)];
  }

  /** Patch pixel box in tract coordinates: the inner box, or with `outer` the box grown by the border (clipped to the tract). */
  patchBBox(tract: number, patch: number, opts: { outer?: boolean } = {}): BBox {
    const t = this.tract(tract);
    const [ix, iy] = this.patchIndex(tract, patch);
    const p = this.config.patchInnerPx;
    const b = opts.outer === true ? this.config.patchBorderPx : 0;
    const x0 = Math.max(0, ix * p - b);
    const y0 = Math.max(0, iy * p - b);
    const x1 = Math.min(t.width, (ix + 1) * p + b);
    const y1 = Math.min(t.height, (iy + 1) * p + b);
    return { x0, y0, width: x1 - x0, height: y1 - y0 };
  }

  /**
   * Patches of `tract` whose outer box contains the point, the patch whose inner
   * box holds it first. Empty when the point is outside the tract's pixel box.
   */
  patchesFor(tract: number, ra: number, dec: number): number[] {
    const t = this.tract(tract);
    const [x, y] = t.wcs.skyToPixel(ra, dec);
    if (!this.inBox(t, x, y)) return [];
    const p = this.config.patchInnerPx;
    const b = this.config.patchBorderPx;
    const [nx, ny] = t.numPatches;
    // pixel index containing the point
    const px = Math.floor(x + 0.5);
    const py = Math.floor(y + 0.5);
    const ix = Math.min(nx - 1, Math.floor(px / p));
    const iy = Math.min(ny - 1, Math.floor(py / p));
    const out = [iy * nx + ix];
    for (let jy = Math.max(0, iy - 1); jy <= Math.min(ny - 1, iy + 1); jy++) {
      for (let jx = Math.max(0, ix - 1); jx <= Math.min(nx - 1, ix + 1); jx++) {
        if (jx === ix && jy === iy) continue;
        if (px >= jx * p - b && px < (jx + 1) * p + b && py >= jy * p - b && py < (jy + 1) * p + b) out.push(jy * nx + jx);
      }
    }
    return out;
  }

  /**
   * For each tract/patch, the images whose footprint overlaps the patch's outer
   * box (footprints taken as the quadrilateral of their 4 corners in the
   * tract's tangent plane). Sorted by tract, then patch.
   */
  groupByPatch(rows: ImageIndexRow[], opts: GroupByPatchOptions = {}): PatchGroup[] {
    const groups = new Map<number, Map<number, ImageIndexRow[]>>();
    const b = this.config.patchBorderPx;
    const p = this.config.patchInnerPx;
    for (const [k, row] of rows.entries()) {
      if (k % 256 === 0) {
        if (opts.signal?.aborted === true) throw new ImagesAbortError();
        if (k > 0) opts.onProgress?.(k, rows.length);
      }
      const poly = footprintVectors(row);
      if (poly.length < 3) continue;
      const centre = norm(poly.reduce<Vec3>((acc, v) => [acc[0] + v[0], acc[1] + v[1], acc[2] + v[2]], [0, 0, 0]));
      const radius = Math.max(...poly.map((v) => angleDeg(centre, v)));
      const [cra, cdec] = toRaDec(centre);
      for (const t of this.candidateTracts(centre, cra, cdec, radius)) {
        const quad = row.cornerRa.map((ra, i) => t.wcs.skyToPixel(ra, row.cornerDec[i] as number));
        if (quad.some(([x, y]) => !Number.isFinite(x) || !Number.isFinite(y))) continue;
        if (!polygonIntersectsBox(quad, -0.5, -0.5, t.width - 0.5, t.height - 0.5)) continue;
        const [nx, ny] = t.numPatches;
        const xs = quad.map((q) => q[0]);
        const ys = quad.map((q) => q[1]);
        const ix0 = Math.max(0, Math.floor((Math.min(...xs) - b) / p));
        const ix1 = Math.min(nx - 1, Math.floor((Math.max(...xs) + b) / p));
        const iy0 = Math.max(0, Math.floor((Math.min(...ys) - b) / p));
        const iy1 = Math.min(ny - 1, Math.floor((Math.max(...ys) + b) / p));
        for (let iy = iy0; iy <= iy1; iy++) {
          for (let ix = ix0; ix <= ix1; ix++) {
            const bb = this.patchBBox(t.id, iy * nx + ix, { outer: true });
            if (!polygonIntersectsBox(quad, bb.x0 - 0.5, bb.y0 - 0.5, bb.x0 + bb.width - 0.5, bb.y0 + bb.height - 0.5)) continue;
            let byPatch = groups.get(t.id);
            if (byPatch === undefined) groups.set(t.id, (byPatch = new Map()));
            const list = byPatch.get(iy * nx + ix);
            if (list === undefined) byPatch.set(iy * nx + ix, [row]);
            else list.push(row);
          }
        }
      }
    }
    opts.onProgress?.(rows.length, rows.length);
    const out: PatchGroup[] = [];
    for (const tract of [...groups.keys()].sort((a, c) => a - c)) {
      const byPatch = groups.get(tract) as Map<number, ImageIndexRow[]>;
      for (const patch of [...byPatch.keys()].sort((a, c) => a - c)) {
        out.push({ tract, patch, patchIndex: this.patchIndex(tract, patch), images: byPatch.get(patch) as ImageIndexRow[] });
      }
    }
    return out;
  }
}

/** Function form of RingsSkyMap.groupByPatch. */
export function groupByPatch(rows: ImageIndexRow[], skymap: RingsSkyMap, opts: GroupByPatchOptions = {}): PatchGroup[] {
  return skymap.groupByPatch(rows, opts);
}
