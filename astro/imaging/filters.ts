/** Small building blocks shared by the kernels: separable Gaussian smoothing, connected components, mesh median filter. */

/** Normalised 1-D Gaussian kernel of standard deviation `sigma` pixels, truncated at `truncate`·σ. */
export function gaussianKernel1d(sigma: number, truncate = 4): Float64Array {
  const radius = Math.max(1, Math.ceil(truncate * sigma));
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp((-0.5 * i * i) / (sigma * sigma));
    k[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i] = k[i]! / sum;
  return k;
}

/**
 * Separable convolution of `src` (w×h) with the symmetric kernel `k` along x then y. Pixels
 * with weight 0 (or NaN values) are left out and the kernel is renormalised over the pixels
 * that remain ("normalised convolution"), so edges and masks do not pull the result down.
 * When `weights` is omitted, every finite pixel has weight 1.
 */
export function convolveSeparable(
  src: Float32Array,
  w: number,
  h: number,
  k: Float64Array,
  weights?: Float32Array,
  out: Float32Array = new Float32Array(w * h),
): Float32Array {
  const r = (k.length - 1) >> 1;
  const tmpV = new Float32Array(w * h);
  const tmpW = new Float32Array(w * h);
  const rowV = new Float64Array(w + 2 * r);
  const rowW = new Float64Array(w + 2 * r);
  for (let y = 0; y < h; y++) {
    const base = y * w;
    rowV.fill(0);
    rowW.fill(0);
    for (let x = 0; x < w; x++) {
      const v = src[base + x]!;
      const wt = weights === undefined ? 1 : weights[base + x]!;
      if (v === v && wt > 0) {
        rowV[x + r] = v * wt;
        rowW[x + r] = wt;
      }
    }
    for (let x = 0; x < w; x++) {
      let sv = 0;
      let sw = 0;
      for (let j = 0; j <= 2 * r; j++) {
        const kk = k[j]!;
        sv += kk * rowV[x + j]!;
        sw += kk * rowW[x + j]!;
      }
      tmpV[base + x] = sv;
      tmpW[base + x] = sw;
    }
  }
  const colV = new Float64Array(w);
  const colW = new Float64Array(w);
  for (let y = 0; y < h; y++) {
    colV.fill(0);
    colW.fill(0);
    const j0 = Math.max(0, y - r);
    const j1 = Math.min(h - 1, y + r);
    for (let yy = j0; yy <= j1; yy++) {
      const kk = k[yy - y + r]!;
      const base = yy * w;
      for (let x = 0; x < w; x++) {
        colV[x] = colV[x]! + kk * tmpV[base + x]!;
        colW[x] = colW[x]! + kk * tmpW[base + x]!;
      }
    }
    const base = y * w;
    for (let x = 0; x < w; x++) {
      const sw = colW[x]!;
      out[base + x] = sw > 1e-12 ? colV[x]! / sw : Number.NaN;
    }
  }
  return out;
}

/**
 * Plain zero-padded separable convolution (no renormalisation): the matched filter for
 * detection, where the noise of the output must stay uniform away from the edges.
 */
export function convolveSeparableFast(src: Float32Array, w: number, h: number, k: Float64Array): Float32Array {
  const r = (k.length - 1) >> 1;
  const tmp = new Float32Array(w * h);
  const row = new Float64Array(w + 2 * r);
  for (let y = 0; y < h; y++) {
    const base = y * w;
    for (let x = 0; x < w; x++) {
      const v = src[base + x]!;
      row[x + r] = v === v ? v : 0;
    }
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let j = 0; j <= 2 * r; j++) s += k[j]! * row[x + j]!;
      tmp[base + x] = s;
    }
  }
  const out = new Float32Array(w * h);
  const acc = new Float64Array(w);
  for (let y = 0; y < h; y++) {
    acc.fill(0);
    const j0 = Math.max(0, y - r);
    const j1 = Math.min(h - 1, y + r);
    for (let yy = j0; yy <= j1; yy++) {
      const kk = k[yy - y + r]!;
      const base = yy * w;
      for (let x = 0; x < w; x++) acc[x] = acc[x]! + kk * tmp[base + x]!;
    }
    const base = y * w;
    for (let x = 0; x < w; x++) out[base + x] = acc[x]!;
  }
  return out;
}

/** Connected components of the non-zero pixels of `binary`, in CSR form. */
export interface Components {
  /** Label per pixel: 0 for background, 1..count for components kept, -1 for those dropped by minArea. */
  labels: Int32Array;
  count: number;
  /** Pixel indices of component c (1-based) are pixels[offsets[c-1] .. offsets[c]). */
  offsets: Int32Array;
  pixels: Int32Array;
}

/** 8-connected (or 4-connected) components by flood fill with an explicit stack; components smaller than `minArea` are dropped. */
export function connectedComponents(binary: Uint8Array, w: number, h: number, minArea = 1, eightConnected = true): Components {
  const labels = new Int32Array(w * h);
  const stack = new Int32Array(w * h);
  const pixels = new Int32Array(w * h);
  const offsets: number[] = [0];
  let nPix = 0;
  let count = 0;
  for (let start = 0; start < w * h; start++) {
    if (binary[start] === 0 || labels[start] !== 0) continue;
    const label = count + 1;
    let sp = 0;
    stack[sp++] = start;
    labels[start] = label;
    const first = nPix;
    while (sp > 0) {
      const p = stack[--sp]!;
      pixels[nPix++] = p;
      const px = p % w;
      const py = (p - px) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = py + dy;
        if (ny < 0 || ny >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          if (dx === 0 && dy === 0) continue;
          if (!eightConnected && dx !== 0 && dy !== 0) continue;
          const nx = px + dx;
          if (nx < 0 || nx >= w) continue;
          const q = ny * w + nx;
          if (binary[q] !== 0 && labels[q] === 0) {
            labels[q] = label;
            stack[sp++] = q;
          }
        }
      }
    }
    if (nPix - first < minArea) {
      for (let i = first; i < nPix; i++) labels[pixels[i]!] = -1;
      nPix = first;
    } else {
      count++;
      offsets.push(nPix);
    }
  }
  return { labels, count, offsets: Int32Array.from(offsets), pixels: pixels.slice(0, nPix) };
}

/**
 * Median filter of a mesh map (nx×ny) with a fx×fy window, as sep/SExtractor do it. Cells
 * that are NaN are ignored.
 */
export function medianFilterMesh(values: Float64Array, nx: number, ny: number, fx: number, fy: number): Float64Array {
  const out = new Float64Array(values.length);
  const hx = fx >> 1;
  const hy = fy >> 1;
  const buf: number[] = [];
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      buf.length = 0;
      // The window shrinks symmetrically at the edges (sep's filterback), so an edge box is
      // filtered only along the edge and a corner box keeps its own value.
      const sy = Math.min(hy, y, ny - 1 - y);
      const sx = Math.min(hx, x, nx - 1 - x);
      for (let dy = -sy; dy <= sy; dy++) {
        const yy = y + dy;
        for (let dx = -sx; dx <= sx; dx++) {
          const xx = x + dx;
          const v = values[yy * nx + xx]!;
          if (v === v) buf.push(v);
        }
      }
      if (buf.length === 0) {
        out[y * nx + x] = values[y * nx + x]!;
        continue;
      }
      buf.sort((a, b) => a - b);
      const m = buf.length >> 1;
      out[y * nx + x] = buf.length % 2 === 1 ? buf[m]! : 0.5 * (buf[m - 1]! + buf[m]!);
    }
  }
  return out;
}
