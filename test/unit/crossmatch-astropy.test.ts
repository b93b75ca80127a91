/**
 * Nearest-neighbour indices and separations against astropy's
 * SkyCoord.match_to_catalog_sky (Debian astropy via /usr/bin/python3).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { crossmatch } from '../../astro/crossmatch/index.js';
import { SYSTEM_PYTHON, pythonHasModules } from './ref/crossmatch-python.js';
import { mulberry32 as rng } from '../../astro/random.js';

const haveAstropy = pythonHasModules('numpy', 'astropy');
if (!haveAstropy) console.warn(`crossmatch-astropy: skipped, ${SYSTEM_PYTHON} with numpy + astropy not available`);


describe.skipIf(!haveAstropy)('crossmatch vs astropy match_to_catalog_sky', () => {
  it('10k x 100k: same nearest neighbour and separation within the radius', () => {
    const r = rng(2024);
    const nR = 100_000;
    const nL = 10_000;
    const rra = new Float64Array(nR);
    const rdec = new Float64Array(nR);
    for (let j = 0; j < nR; j++) {
      if (j % 10 === 0) {
        // a cluster around the north pole
        rra[j] = 360 * r();
        rdec[j] = 89.5 + 0.5 * r();
      } else {
        // a box through RA = 0
        rra[j] = (350 + 20 * r()) % 360;
        rdec[j] = (Math.asin(Math.sin(-0.17) + r() * 2 * Math.sin(0.17)) * 180) / Math.PI;
      }
    }
    const lra = new Float64Array(nL);
    const ldec = new Float64Array(nL);
    for (let i = 0; i < nL; i++) {
      const j = Math.floor(r() * nR);
      if (i % 2 === 0) {
        // a counterpart within a few arcsec
        const ddec = ((r() - 0.5) * 6) / 3600;
        const dra = ((r() - 0.5) * 6) / 3600 / Math.max(1e-3, Math.cos((rdec[j]! * Math.PI) / 180));
        lra[i] = (((rra[j]! + dra) % 360) + 360) % 360;
        ldec[i] = Math.max(-90, Math.min(90, rdec[j]! + ddec));
      } else {
        lra[i] = (350 + 20 * r()) % 360;
        ldec[i] = -10 + 20 * r();
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'xmatch-astropy-'));
    try {
      const write = (name: string, a: Float64Array) => writeFileSync(join(dir, name), Buffer.from(a.buffer, a.byteOffset, a.byteLength));
      write('left_ra.f64', lra);
      write('left_dec.f64', ldec);
      write('right_ra.f64', rra);
      write('right_dec.f64', rdec);
      const script = fileURLToPath(new URL('./ref/crossmatch_astropy.py', import.meta.url));
      const run = spawnSync(SYSTEM_PYTHON, [script, dir], { encoding: 'utf8', timeout: 120_000 });
      expect(run.status, run.stderr).toBe(0);
      const idxBuf = readFileSync(join(dir, 'idx.i64'));
      const sepBuf = readFileSync(join(dir, 'sep.f64'));
      const idx = new BigInt64Array(idxBuf.buffer, idxBuf.byteOffset, nL);
      const sep = new Float64Array(sepBuf.buffer, sepBuf.byteOffset, nL);

      const radius = 60;
      const ours = crossmatch({ ra: lra, dec: ldec }, { ra: rra, dec: rdec }, { radiusArcsec: radius });
      const ourRight = new Int32Array(nL).fill(-1);
      const ourSep = new Float64Array(nL);
      for (let p = 0; p < ours.left.length; p++) {
        ourRight[ours.left[p]!] = ours.right[p]!;
        ourSep[ours.left[p]!] = ours.sepArcsec[p]!;
      }
      let matched = 0;
      for (let i = 0; i < nL; i++) {
        if (sep[i]! <= radius) {
          matched++;
          expect(ourRight[i], `left row ${i}`).toBe(Number(idx[i]));
          expect(Math.abs(ourSep[i]! - sep[i]!)).toBeLessThan(1e-8);
        } else {
          expect(ourRight[i], `left row ${i} (astropy nearest at ${sep[i]} arcsec)`).toBe(-1);
        }
      }
      expect(matched).toBe(ours.left.length);
      expect(matched).toBeGreaterThan(nL / 2);
      expect(matched).toBeLessThan(nL);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
