/**
 * PLIO_1 decompression (IRAF pixel-list line lists), following the logic of
 * pl_l2pi in cfitsio's pliocomp.c. Input: the tile's heap bytes, big-endian
 * 16-bit words. Output: Int32Array of `npix` values.
 */
export function plioDecompress(bytes: Uint8Array, npix: number): Int32Array {
  const nw = Math.floor(bytes.length / 2);
  // 1-based word array like the original (index 0 unused)
  const ll = new Int16Array(nw + 2);
  for (let i = 0; i < nw; i++) ll[i + 1] = ((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number);
  const w = (i: number): number => ll[i] ?? 0;
  const px = new Int32Array(npix + 1); // 1-based
  let lllen: number;
  let llfirt: number;
  if (w(3) > 0) {
    lllen = w(3);
    llfirt = 4;
  } else {
    lllen = (w(5) << 15) + w(4);
    llfirt = w(2) + 1;
  }
  if (npix <= 0 || lllen <= 0) return new Int32Array(Math.max(0, npix));
  if (lllen > nw) throw new Error(`PLIO_1: line list claims ${lllen} words, tile has ${nw}`);
  const xs = 1;
  const xe = xs + npix - 1;
  let skipwd = false;
  let op = 1;
  let x1 = 1;
  let pv = 1;
  for (let ip = llfirt; ip <= lllen; ip++) {
    if (skipwd) {
      skipwd = false;
      continue;
    }
    const word = w(ip);
    const opcode = Math.trunc(word / 4096);
    const data = word & 4095;
    switch (opcode) {
      case 0:
      case 4:
      case 5: {
        const x2 = x1 + data - 1;
        const i1 = Math.max(x1, xs);
        const i2 = Math.min(x2, xe);
        const np = i2 - i1 + 1;
        if (np > 0) {
          const otop = op + np - 1;
          if (opcode === 4) {
            for (let i = op; i <= otop; i++) px[i] = pv;
          } else {
            for (let i = op; i <= otop; i++) px[i] = 0;
            if (opcode === 5 && i2 === x2) px[otop] = pv;
          }
          op = otop + 1;
        }
        x1 = x2 + 1;
        break;
      }
      case 1:
        pv = (w(ip + 1) << 12) + data;
        skipwd = true;
        break;
      case 2:
        pv += data;
        break;
      case 3:
        pv -= data;
        break;
      case 6:
      case 7:
        pv = opcode === 6 ? pv + data : pv - data;
        if (x1 >= xs && x1 <= xe) {
          px[op] = pv;
          op++;
        }
        x1++;
        break;
      default:
        break;
    }
    if (x1 > xe) break;
  }
  for (let i = op; i <= npix; i++) px[i] = 0;
  return px.subarray(1);
}
