/** Spherical geometry helpers shared by the HEALPix kernel and its users. */

const DEG2RAD = Math.PI / 180;
const RAD2DEG = 180 / Math.PI;

/**
 * Great-circle distance in degrees between two positions given in degrees.
 * Vincenty's formula (atan2 of the cross and dot products): accurate to rounding
 * at all separations, unlike the arccos form (tiny angles) or haversine (antipodes).
 */
export function angularDistanceDeg(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const d1 = dec1 * DEG2RAD;
  const d2 = dec2 * DEG2RAD;
  const dra = (ra2 - ra1) * DEG2RAD;
  const s1 = Math.sin(d1);
  const c1 = Math.cos(d1);
  const s2 = Math.sin(d2);
  const c2 = Math.cos(d2);
  const sdra = Math.sin(dra);
  const cdra = Math.cos(dra);
  const x = c2 * sdra;
  const y = c1 * s2 - s1 * c2 * cdra;
  const num = Math.sqrt(x * x + y * y);
  const den = s1 * s2 + c1 * c2 * cdra;
  return Math.atan2(num, den) * RAD2DEG;
}
