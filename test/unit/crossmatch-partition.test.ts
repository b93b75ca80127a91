/**
 * Partition-aware cross-match over HATS catalogs written here (writeHatsCatalog
 * + writeMarginCache): the union over left partitions must equal a brute-force
 * match of all rows, with pairs straddling partition boundaries found once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CrossmatchCatalogError,
  coveringTargets,
  crossmatchCatalogs,
  separationArcsec,
  writeMarginCache,
  type PartitionMatches,
} from '../../astro/crossmatch/index.js';
import { openHatsCatalog, writeHatsCatalog, type HatsCatalog } from '../../astro/hats/index.js';
import { mulberry32 as rng } from '../../astro/random.js';


interface Row {
  id: number;
  ra: number;
  dec: number;
}

function makeRows(seed: number, n: number, firstId: number, halfWidthDeg: number): Row[] {
  const r = rng(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      // a box straddling RA = 0 on the equator
      rows.push({ id: firstId + i, ra: (((r() - 0.5) * 2 * halfWidthDeg) % 360 + 360) % 360, dec: (r() - 0.5) * 2 * halfWidthDeg });
    } else {
      // a cap around the north pole
      rows.push({ id: firstId + i, ra: 360 * r(), dec: 90 - halfWidthDeg * Math.sqrt(r()) });
    }
  }
  return rows;
}

function writeCsv(path: string, rows: Row[]): void {
  writeFileSync(path, 'id,ra,dec\n' + rows.map((x) => `${x.id},${x.ra},${x.dec}`).join('\n') + '\n');
}

/** O(n*m) reference: per left row, every right row within the radius, nearest first (ties by id). */
function bruteCandidates(left: Row[], right: Row[], radius: number): Array<{ id: number; near: number[] }> {
  return left.map((l) => {
    const c: Array<{ id: number; sep: number }> = [];
    for (const x of right) {
      const sep = separationArcsec(l.ra, l.dec, x.ra, x.dec);
      if (sep <= radius) c.push({ id: x.id, sep });
    }
    c.sort((a, b) => a.sep - b.sep || a.id - b.id);
    return { id: l.id, near: c.map((x) => x.id) };
  });
}

function brute(cands: Array<{ id: number; near: number[] }>, k: number | 'all'): string[] {
  const out: string[] = [];
  for (const { id, near } of cands) {
    const take = k === 'all' ? near.length : Math.min(k, near.length);
    for (let i = 0; i < take; i++) out.push(`${id}>${near[i]}#${i + 1}`);
  }
  return out.sort();
}

function flatten(results: PartitionMatches[]): string[] {
  const out: string[] = [];
  for (const r of results) for (let p = 0; p < r.left.length; p++) out.push(`${String(r.leftId[p])}>${String(r.rightId[p])}#${r.rank[p]}`);
  return out.sort();
}

describe('partition-aware cross-match on generated HATS catalogs', () => {
  let dir: string;
  let leftRows: Row[];
  let rightRows: Row[];
  let left: HatsCatalog;
  let right: HatsCatalog;
  let cands: Array<{ id: number; near: number[] }>;
  const radius = 20;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xmatch-part-'));
    rightRows = makeRows(11, 3000, 1_000_000, 0.1);
    // the left box is wider, so some left rows sit just outside the right footprint
    leftRows = makeRows(12, 1200, 1, 0.13);
    writeCsv(join(dir, 'right.csv'), rightRows);
    writeCsv(join(dir, 'left.csv'), leftRows);
    await writeHatsCatalog(join(dir, 'right.csv'), join(dir, 'right'), { name: 'right', maxRowsPerPartition: 200, highestOrder: 12 });
    await writeHatsCatalog(join(dir, 'left.csv'), join(dir, 'left'), { name: 'left', maxRowsPerPartition: 300, highestOrder: 12 });
    const rightPrimary = await openHatsCatalog(join(dir, 'right'), { margin: false });
    await writeMarginCache(rightPrimary, { thresholdArcsec: 30 });
    right = await openHatsCatalog(join(dir, 'right'));
    left = await openHatsCatalog(join(dir, 'left'), { margin: false });
    cands = bruteCandidates(leftRows, rightRows, radius);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the catalogs really have many partitions at several orders, and a margin', () => {
    expect(right.partitions.length).toBeGreaterThan(12);
    expect(new Set(right.partitions.map((p) => p.order)).size).toBeGreaterThan(1);
    expect(left.partitions.length).toBeGreaterThan(4);
    expect(right.margin?.type).toBe('margin');
    expect(right.marginThresholdArcsec).toBe(30);
    // margins also exist for the empty sky around the footprint (like hats-import's)
    const primary = new Set(right.partitions.map((p) => `${p.order}/${p.pixel}`));
    expect(right.margin!.partitions.some((p) => !primary.has(`${p.order}/${p.pixel}`))).toBe(true);
  });

  for (const k of [1, 3, 'all'] as const) {
    it(`k=${k}: union over left partitions equals brute force`, async () => {
      const opts = k === 'all' ? { radiusArcsec: radius, mode: 'all' as const } : { radiusArcsec: radius, k };
      const got = flatten(await crossmatchCatalogs(left, right, opts));
      const want = brute(cands, k);
      expect(want.length).toBeGreaterThan(500);
      // some matched pairs must straddle a right partition boundary for this test to mean anything
      expect(got).toEqual(want);
    }, 60_000);
  }

  it('pairs across partition edges come from the margin, and without the margin some are missed', async () => {
    const withMargin = await crossmatchCatalogs(left, right, { radiusArcsec: radius, k: 3 });
    const fromMargin = withMargin.reduce((s, r) => s + r.rightFromMargin.reduce((a, b) => a + b, 0), 0);
    expect(fromMargin).toBeGreaterThan(10);
    const noMargin = flatten(await crossmatchCatalogs(left, right, { radiusArcsec: radius, k: 3, useMargin: false }));
    expect(noMargin.length).toBeLessThan(flatten(withMargin).length);
  }, 60_000);

  it('refuses a radius larger than the margin threshold', async () => {
    await expect(crossmatchCatalogs(left, right, { radiusArcsec: 31 })).rejects.toThrow(CrossmatchCatalogError);
  });

  it('coveringTargets tiles the sky with partitions plus coarsest empty pixels', () => {
    const t = coveringTargets([
      { order: 1, pixel: 44 },
      { order: 2, pixel: 180 },
    ]);
    const area = [...t.partitions, ...t.empty].reduce((s, p) => s + 1 / (12 * 4 ** p.order), 0);
    expect(area).toBeCloseTo(1, 12);
    expect(t.empty).toContainEqual({ order: 0, pixel: 0 });
    expect(t.empty).toContainEqual({ order: 1, pixel: 46 });
    expect(t.empty).toContainEqual({ order: 2, pixel: 181 });
  });
});
