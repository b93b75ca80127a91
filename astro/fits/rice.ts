/**
 * Rice decompression as used by FITS tile compression (RICE_1), a port of the
 * algorithm in cfitsio's ricecomp.c (fits_rdecomp*). Output integers have the
 * width of BYTEPIX (1, 2 or 4 bytes).
 */

const NONZERO_COUNT = new Uint8Array(256);
for (let b = 1; b < 256; b++) NONZERO_COUNT[b] = 32 - Math.clz32(b);

export type RiceOutput = Uint8Array | Int16Array | Int32Array;

/**
 * Decode `nx` pixels from `c`. Throws a plain Error (caller adds context) when
 * the stream is too short.
 */
export function riceDecompress(c: Uint8Array, nx: number, nblock: number, bytepix: number): RiceOutput {
  let fsbits: number;
  let fsmax: number;
  let out: RiceOutput;
  if (bytepix === 1) {
    fsbits = 3;
    fsmax = 6;
    out = new Uint8Array(nx);
  } else if (bytepix === 2) {
    fsbits = 4;
    fsmax = 14;
    out = new Int16Array(nx);
  } else if (bytepix === 4) {
    fsbits = 5;
    fsmax = 25;
    out = new Int32Array(nx);
  } else {
    throw new Error(`RICE_1: unsupported BYTEPIX ${bytepix}`);
  }
  const bbits = 1 << fsbits;
  const clen = c.length;
  if (clen < bytepix + 1 && nx > 0) throw new Error('RICE_1: compressed tile too short');
  let p = 0;
  let lastpix = 0;
  for (let k = 0; k < bytepix; k++) lastpix = lastpix * 256 + (c[p++] as number);
  // reinterpret the first value in the output's integer type
  out[0] = lastpix;
  lastpix = nx > 0 ? (out[0] as number) : 0;
  let b = c[p++] as number;
  let nbits = 8;
  let i = 0;
  while (i < nx) {
    nbits -= fsbits;
    while (nbits < 0) {
      b = (b << 8) | (c[p++] as number);
      nbits += 8;
    }
    const fs = (b >>> nbits) - 1;
    b &= (1 << nbits) - 1;
    let imax = i + nblock;
    if (imax > nx) imax = nx;
    if (fs < 0) {
      for (; i < imax; i++) out[i] = lastpix;
    } else if (fs === fsmax) {
      for (; i < imax; i++) {
        // 32-bit arithmetic as in C (unsigned): `>>> 1` reads the bits as unsigned
        let k = bbits - nbits;
        let diff = k < 32 ? b << k : 0;
        for (k -= 8; k >= 0; k -= 8) {
          b = c[p++] as number;
          diff |= b << k;
        }
        if (nbits > 0) {
          b = c[p++] as number;
          diff |= b >>> -k;
          b &= (1 << nbits) - 1;
        } else {
          b = 0;
        }
        const d = (diff & 1) === 0 ? diff >>> 1 : ~(diff >>> 1);
        out[i] = d + lastpix;
        lastpix = out[i] as number;
      }
    } else {
      for (; i < imax; i++) {
        while (b === 0) {
          nbits += 8;
          b = c[p++] as number;
          if (p > clen) throw new Error('RICE_1: compressed tile ends early');
        }
        const nzero = nbits - (NONZERO_COUNT[b] as number);
        nbits -= nzero + 1;
        b ^= 1 << nbits;
        nbits -= fs;
        while (nbits < 0) {
          b = (b << 8) | (c[p++] as number);
          nbits += 8;
        }
        const diff = (nzero << fs) | (b >>> nbits);
        b &= (1 << nbits) - 1;
        const d = (diff & 1) === 0 ? diff >>> 1 : ~(diff >>> 1);
        out[i] = d + lastpix;
        lastpix = out[i] as number;
      }
    }
    if (p > clen) throw new Error('RICE_1: compressed tile ends early');
  }
  return out;
}
