/**
 * Spherical geometry shared by the cross-match kernels. Angles in the public
 * API are degrees (RA/Dec) and arcseconds (separations); unit vectors are used
 * internally so nothing degrades at the poles or across RA = 0/360.
 */

export const DEG2RAD = Math.PI / 180;
export const RAD2DEG = 180 / Math.PI;
export const ARCSEC2RAD = Math.PI / (180 * 3600);
export const RAD2ARCSEC = (180 * 3600) / Math.PI;

/** Points on the sky in degrees (ICRS-like lon/lat); both arrays have the same length. */
export interface SkyPoints {
  ra: Float64Array;
  dec: Float64Array;
}

/**
 * Great-circle separation in arcseconds by the Vincenty formula (atan2 form),
 * accurate at every angle from 0 to 180 degrees, unlike the arccos form.
 */
export function separationArcsec(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const dLon = (ra2 - ra1) * DEG2RAD;
  const lat1 = dec1 * DEG2RAD;
  const lat2 = dec2 * DEG2RAD;
  const sdLon = Math.sin(dLon);
  const cdLon = Math.cos(dLon);
  const s1 = Math.sin(lat1);
  const c1 = Math.cos(lat1);
  const s2 = Math.sin(lat2);
  const c2 = Math.cos(lat2);
  const num1 = c2 * sdLon;
  const num2 = c1 * s2 - s1 * c2 * cdLon;
  const den = s1 * s2 + c1 * c2 * cdLon;
  return Math.atan2(Math.sqrt(num1 * num1 + num2 * num2), den) * RAD2ARCSEC;
}

/** Chord length on the unit sphere for an angle in arcseconds (clamped at the antipode). */
export function chordFromArcsec(arcsec: number): number {
  const rad = Math.min(arcsec * ARCSEC2RAD, Math.PI);
  return 2 * Math.sin(rad / 2);
}

/**
 * Interleaved unit vectors (x0,y0,z0,x1,...) for the points. Throws via the
 * returned row index (>= 0) when a coordinate is not finite or |dec| > 90.
 */
export function toUnitVectors(points: SkyPoints, out?: Float64Array): { xyz: Float64Array; badRow: number } {
  const n = points.ra.length;
  const xyz = out ?? new Float64Array(3 * n);
  const { ra, dec } = points;
  for (let i = 0; i < n; i++) {
    const a = ra[i]! * DEG2RAD;
    const dDeg = dec[i]!;
    if (!(dDeg >= -90 && dDeg <= 90) || !Number.isFinite(a)) return { xyz, badRow: i };
    const d = dDeg * DEG2RAD;
    const cd = Math.cos(d);
    xyz[3 * i] = cd * Math.cos(a);
    xyz[3 * i + 1] = cd * Math.sin(a);
    xyz[3 * i + 2] = Math.sin(d);
  }
  return { xyz, badRow: -1 };
}

/**
 * Bounds on the squared chord that bracket a separation threshold. Squared chords
 * computed from rounded unit vectors carry an absolute error of ~1e-16 on the
 * chord, so a candidate whose chord lies between `lo2` and `hi2` is decided by
 * the exact (Vincenty) separation instead.
 */
export interface ChordBand {
  lo2: number;
  hi2: number;
}

export function chordBand(arcsec: number): ChordBand {
  const c = chordFromArcsec(arcsec);
  const slackAbs = 1e-14;
  const lo = Math.max(0, c * (1 - 1e-12) - slackAbs);
  const hi = c * (1 + 1e-12) + slackAbs;
  return { lo2: lo * lo, hi2: hi * hi };
}
