/** Unit-vector geometry on the sphere for footprints (degrees in, degrees out). */

export type Vec3 = [number, number, number];

const D2R = Math.PI / 180;
const R2D = 180 / Math.PI;

export function toVec(ra: number, dec: number): Vec3 {
  const a = ra * D2R;
  const d = dec * D2R;
  const c = Math.cos(d);
  return [c * Math.cos(a), c * Math.sin(a), Math.sin(d)];
}

export function toRaDec(v: Vec3): [number, number] {
  const [x, y, z] = v;
  let ra = Math.atan2(y, x) * R2D;
  if (ra < 0) ra += 360;
  return [ra, Math.atan2(z, Math.hypot(x, y)) * R2D];
}

export function dot(a: Vec3, b: Vec3): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function norm(a: Vec3): Vec3 {
  const n = Math.hypot(a[0], a[1], a[2]);
  return [a[0] / n, a[1] / n, a[2] / n];
}

/** Angle between unit vectors, degrees (atan2 form: accurate at all separations). */
export function angleDeg(a: Vec3, b: Vec3): number {
  const c = cross(a, b);
  return Math.atan2(Math.hypot(c[0], c[1], c[2]), dot(a, b)) * R2D;
}

export function separationDeg(ra1: number, dec1: number, ra2: number, dec2: number): number {
  return angleDeg(toVec(ra1, dec1), toVec(ra2, dec2));
}

/** Distance (degrees) from p to the minor great-circle arc a-b. */
export function distanceToArcDeg(p: Vec3, a: Vec3, b: Vec3): number {
  const n = cross(a, b);
  const nn = Math.hypot(n[0], n[1], n[2]);
  if (nn < 1e-15) return angleDeg(p, a);
  const u: Vec3 = [n[0] / nn, n[1] / nn, n[2] / nn];
  // p's projection onto the great circle lies between a and b?
  if (dot(cross(a, p), u) >= 0 && dot(cross(p, b), u) >= 0) {
    return Math.abs(Math.asin(Math.max(-1, Math.min(1, dot(p, u))))) * R2D;
  }
  return Math.min(angleDeg(p, a), angleDeg(p, b));
}

/** Is p inside the convex spherical polygon (vertices in either winding order)? */
export function insideConvexPolygon(p: Vec3, poly: Vec3[]): boolean {
  let sign = 0;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i] as Vec3;
    const b = poly[(i + 1) % poly.length] as Vec3;
    const s = dot(cross(a, b), p);
    if (s === 0) continue;
    const sg = Math.sign(s);
    if (sign === 0) sign = sg;
    else if (sg !== sign) return false;
  }
  return true;
}

/** Does the disc (centre, radius) touch the convex polygon? */
export function discIntersectsPolygon(centre: Vec3, radiusDeg: number, poly: Vec3[]): boolean {
  if (insideConvexPolygon(centre, poly)) return true;
  for (let i = 0; i < poly.length; i++) {
    if (distanceToArcDeg(centre, poly[i] as Vec3, poly[(i + 1) % poly.length] as Vec3) <= radiusDeg) return true;
  }
  return false;
}
