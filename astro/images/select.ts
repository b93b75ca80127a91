/** Selecting images from an index by sky region, band, visit and time. */
import type { ImageIndexRow } from './index-images.js';
import { discIntersectsPolygon, toVec, type Vec3 } from './sphere.js';

export interface ImageSelection {
  /** images whose footprint touches this disc (degrees) */
  cone?: { ra: number; dec: number; radiusDeg: number };
  /** band names, exact match */
  bands?: string[];
  /** inclusive visit range */
  visits?: [min: number, max: number];
  /** inclusive MJD range */
  mjd?: [min: number, max: number];
  detectors?: number[];
}

export function footprintVectors(r: ImageIndexRow): Vec3[] {
  return r.cornerRa.map((ra, i) => toVec(ra, r.cornerDec[i] as number));
}

export function selectImages(rows: ImageIndexRow[], sel: ImageSelection = {}): ImageIndexRow[] {
  const bands = sel.bands === undefined ? undefined : new Set(sel.bands);
  const dets = sel.detectors === undefined ? undefined : new Set(sel.detectors);
  const centre = sel.cone === undefined ? undefined : toVec(sel.cone.ra, sel.cone.dec);
  return rows.filter((r) => {
    if (bands !== undefined && (r.band === null || !bands.has(r.band))) return false;
    if (dets !== undefined && (r.detector === null || !dets.has(r.detector))) return false;
    if (sel.visits !== undefined && (r.visit === null || r.visit < sel.visits[0] || r.visit > sel.visits[1])) return false;
    if (sel.mjd !== undefined && (r.mjd === null || r.mjd < sel.mjd[0] || r.mjd > sel.mjd[1])) return false;
    if (centre !== undefined && sel.cone !== undefined && !discIntersectsPolygon(centre, sel.cone.radiusDeg, footprintVectors(r))) return false;
    return true;
  });
}
