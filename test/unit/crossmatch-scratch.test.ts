/**
 * Scratch memory (astro/crossmatch/scratch.ts) reused across cross-matches of
 * different sizes gives the same pairs as fresh memory, and the index built
 * with it owns its arrays (a later build with the same scratch does not
 * change an earlier index's answers).
 */
import { describe, expect, it } from 'vitest';
import { Scratch, SkyIndex, crossmatch, type SkyPoints } from '../../astro/crossmatch/index.js';
import { mulberry32 as rng } from '../../astro/random.js';

function cloud(n: number, seed: number, ra0: number, dec0: number, size: number): SkyPoints {
  const r = rng(seed);
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    ra[i] = (ra0 + size * r() + 360) % 360;
    dec[i] = Math.max(-90, Math.min(90, dec0 + size * r()));
  }
  return { ra, dec };
}

/** Left points near some right points (so that there are pairs), plus unmatched ones. */
function nearby(right: SkyPoints, n: number, seed: number): SkyPoints {
  const r = rng(seed);
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const j = Math.floor(r() * right.ra.length);
    ra[i] = (right.ra[j]! + (r() - 0.5) * 4 / 3600 + 360) % 360;
    dec[i] = Math.max(-90, Math.min(90, right.dec[j]! + (r() - 0.5) * 4 / 3600));
  }
  return { ra, dec };
}

describe('cross-match scratch memory', () => {
  it('reused across calls of growing and shrinking size: the same pairs as fresh memory', () => {
    const scratch = new Scratch();
    const cases = [
      { n: 20_000, ra0: 359.5, dec0: -1, size: 1 }, // across RA = 0
      { n: 3_000, ra0: 10, dec0: 88.5, size: 1.5 }, // near the pole
      { n: 50_000, ra0: 120, dec0: -30, size: 2 },
      { n: 500, ra0: 200, dec0: 5, size: 0.2 },
    ];
    for (const [i, c] of cases.entries()) {
      const right = cloud(c.n, 100 + i, c.ra0, c.dec0, c.size);
      const left = nearby(right, Math.ceil(c.n / 4), 200 + i);
      for (const o of [{ radiusArcsec: 2, k: 1 }, { radiusArcsec: 3, k: 3 }, { radiusArcsec: 2, mode: 'all' as const }]) {
        const fresh = crossmatch(left, right, o);
        const reused = crossmatch(left, right, { ...o, scratch });
        expect(fresh.left.length).toBeGreaterThan(0);
        expect(reused).toEqual(fresh);
      }
    }
    expect(scratch.bytes).toBeGreaterThan(0);
  });

  it('an index built with scratch keeps answering the same after later builds reuse that scratch', () => {
    const scratch = new Scratch();
    const a = cloud(10_000, 7, 40, 10, 1);
    const idx = SkyIndex.build(a, { scratch });
    const q = nearby(a, 2_000, 8);
    const before = crossmatch(q, a, { radiusArcsec: 2, rightIndex: idx });
    SkyIndex.build(cloud(30_000, 9, 300, -60, 3), { scratch });
    crossmatch(nearby(a, 500, 10), a, { radiusArcsec: 2, scratch });
    expect(crossmatch(q, a, { radiusArcsec: 2, rightIndex: idx })).toEqual(before);
    expect(crossmatch(q, a, { radiusArcsec: 2 })).toEqual(before);
  });
});
