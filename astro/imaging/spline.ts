/**
 * Natural cubic splines on a regular knot grid (unit spacing), used to turn mesh maps into
 * full-resolution images the way SExtractor/sep do: a spline along y through every mesh
 * column, then, per image row, a spline along x through the interpolated nodes.
 */

/** Second derivatives (divided by 6, unit spacing) of the natural spline through `y` (stride `stride`, `n` points). */
export function naturalSplineSecondDerivatives(
  y: ArrayLike<number>,
  offset: number,
  stride: number,
  n: number,
  out: Float64Array,
  outOffset: number,
  outStride: number,
  work: Float64Array,
): void {
  if (n < 3) {
    for (let i = 0; i < n; i++) out[outOffset + i * outStride] = 0;
    return;
  }
  // Tridiagonal system M_{i-1} + 4 M_i + M_{i+1} = 6 (y_{i+1} - 2 y_i + y_{i-1}) with M_0 = M_{n-1} = 0,
  // solved by the Thomas algorithm: `work` holds c'_i, `out` holds d'_i then M_i.
  out[outOffset] = 0;
  let cPrime = 0;
  for (let i = 1; i < n - 1; i++) {
    const rhs = 6 * (y[offset + (i + 1) * stride]! - 2 * y[offset + i * stride]! + y[offset + (i - 1) * stride]!);
    const denom = 4 - cPrime;
    cPrime = 1 / denom;
    work[i] = cPrime;
    const prev = i > 1 ? out[outOffset + (i - 1) * outStride]! : 0;
    out[outOffset + i * outStride] = (rhs - prev) / denom;
  }
  out[outOffset + (n - 1) * outStride] = 0;
  for (let i = n - 3; i >= 1; i--) {
    out[outOffset + i * outStride] = out[outOffset + i * outStride]! - work[i]! * out[outOffset + (i + 1) * outStride]!;
  }
  // Store y''/6 so that evaluation needs no extra multiply.
  for (let i = 0; i < n; i++) out[outOffset + i * outStride] = out[outOffset + i * outStride]! / 6;
}

/**
 * Evaluation weights for positions `p` (in knot units, knots at 0..n-1): the spline value is
 * wA·v[lo] + wB·v[lo+1] + wC·d[lo] + wD·d[lo+1]. Positions outside [0, n-1] extrapolate the
 * end cubic, as sep does.
 */
export interface SplineWeights {
  lo: Int32Array;
  wA: Float64Array;
  wB: Float64Array;
  wC: Float64Array;
  wD: Float64Array;
}

export function splineWeights(positions: ArrayLike<number>, nKnots: number): SplineWeights {
  const m = positions.length;
  const w: SplineWeights = {
    lo: new Int32Array(m),
    wA: new Float64Array(m),
    wB: new Float64Array(m),
    wC: new Float64Array(m),
    wD: new Float64Array(m),
  };
  for (let k = 0; k < m; k++) {
    const p = positions[k]!;
    if (nKnots < 2) {
      w.lo[k] = 0;
      w.wA[k] = 1;
      continue;
    }
    let lo = Math.floor(p);
    if (lo < 0) lo = 0;
    if (lo > nKnots - 2) lo = nKnots - 2;
    const b = p - lo;
    const a = 1 - b;
    w.lo[k] = lo;
    w.wA[k] = a;
    w.wB[k] = b;
    w.wC[k] = a * a * a - a;
    w.wD[k] = b * b * b - b;
  }
  return w;
}
