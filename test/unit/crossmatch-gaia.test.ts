/**
 * End to end: a Gaia-like catalog generated from an Object catalog (with its
 * margin cache) cross-matched back, partition by partition; the matches must
 * recover the truth and equal the in-memory match of all rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossmatch, crossmatchCatalogs, type PartitionMatches } from '../../astro/crossmatch/index.js';
import { openHatsCatalog, readParquetSql, withDuck, type HatsCatalog } from '../../astro/hats/index.js';
import { compileGaiaLikeOptions, generateGaiaLike } from '../../astro/survey/gaia.js';
import { generateObjectCatalog } from '../../astro/survey/objects.js';

async function readCatalog(cat: HatsCatalog, cols: string): Promise<unknown[][]> {
  return withDuck(async (conn) => (await conn.runAndReadAll(`SELECT ${cols} FROM ${readParquetSql(cat.partitions.flatMap((p) => p.files))}`)).getRows());
}

describe('Gaia-like catalog vs its Object catalog', () => {
  let dir: string;
  let objects: HatsCatalog;
  let gaia: HatsCatalog;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xmatch-gaia-'));
    // a box across RA = 0, small partitions so many pairs straddle partition edges
    objects = await generateObjectCatalog(join(dir, 'object'), {
      rows: 2500,
      seed: 5,
      region: { raMin: 359.6, raMax: 0.4, decMin: -0.4, decMax: 0.4 },
      maxRowsPerPartition: 400,
    });
    await generateGaiaLike(join(dir, 'gaia'), { objectCatalog: objects.root, seed: 9, maxRowsPerPartition: 300, marginThresholdArcsec: 5 });
    gaia = await openHatsCatalog(join(dir, 'gaia'));
  }, 180_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has the requested fractions, columns and a margin cache', async () => {
    expect(gaia.margin?.type).toBe('margin');
    expect(gaia.marginThresholdArcsec).toBe(5);
    expect(gaia.partitions.length).toBeGreaterThan(2);
    const rows = await readCatalog(gaia, 'source_id, ra, dec, pmra, pmdec, phot_g_mean_mag, ref_epoch, truth_objectId');
    const matched = rows.filter((r) => r[7] !== null).length;
    expect(matched / 2500).toBeGreaterThan(0.65);
    expect(matched / 2500).toBeLessThan(0.75);
    expect((rows.length - matched) / rows.length).toBeCloseTo(0.2, 2);
    expect(new Set(rows.map((r) => r[0])).size).toBe(rows.length);
    expect(rows.every((r) => r[6] === 2016)).toBe(true);
  });

  it('a 1 arcsec partition-aware match recovers the truth and equals the in-memory match', async () => {
    const results: PartitionMatches[] = await crossmatchCatalogs(gaia, await openHatsCatalog(objects.root, { margin: false }), {
      radiusArcsec: 1,
      rightIdColumn: 'objectId',
    });
    // objects have no margin here: match the other way round to use the Gaia margin
    const reverse = await crossmatchCatalogs(await openHatsCatalog(objects.root), gaia, { radiusArcsec: 1, rightIdColumn: 'source_id' });
    const gaiaRows = await readCatalog(gaia, 'source_id, ra, dec, truth_objectId');
    const objRows = await readCatalog(objects, 'objectId, ra, dec');
    const truthOf = new Map(gaiaRows.map((r) => [String(r[0]), r[3] === null ? null : String(r[3])]));
    let pairs = 0;
    let correct = 0;
    let fromMargin = 0;
    for (const r of reverse) {
      for (let p = 0; p < r.left.length; p++) {
        pairs++;
        if (truthOf.get(String(r.rightId[p])) === String(r.leftId[p])) correct++;
        fromMargin += r.rightFromMargin[p]!;
      }
    }
    const withTruth = gaiaRows.filter((r) => r[3] !== null).length;
    expect(pairs).toBeGreaterThan(0.95 * withTruth);
    expect(correct / pairs).toBeGreaterThan(0.98);
    // at 1 arcsec few pairs straddle an edge; fromMargin only counts those that do
    expect(fromMargin).toBeGreaterThanOrEqual(0);
    expect(gaia.margin!.partitions.reduce((s, p) => s + (p.rows ?? 0), 0)).toBeGreaterThan(0);
    // the in-memory match of all rows gives the same pairs
    const mem = crossmatch(
      { ra: Float64Array.from(objRows, (r) => r[1] as number), dec: Float64Array.from(objRows, (r) => r[2] as number) },
      { ra: Float64Array.from(gaiaRows, (r) => r[1] as number), dec: Float64Array.from(gaiaRows, (r) => r[2] as number) },
      { radiusArcsec: 1 },
    );
    const memPairs = Array.from(mem.left, (l, p) => `${String(objRows[l]![0])}>${String(gaiaRows[mem.right[p]!]![0])}`).sort();
    const partPairs = reverse.flatMap((r) => r.leftId.map((l, p) => `${String(l)}>${String(r.rightId[p])}`)).sort();
    expect(partPairs).toEqual(memPairs);
    expect(results.reduce((s, r) => s + r.left.length, 0)).toBeGreaterThan(0.95 * withTruth);
  }, 120_000);

  it('rejects bad options', () => {
    expect(() => compileGaiaLikeOptions({ objectCatalog: 'x', seed: 1, matchFraction: 1.5 })).toThrow(/matchFraction/);
    expect(() => compileGaiaLikeOptions({ objectCatalog: 'x', seed: 1, unmatchedFraction: 1 })).toThrow(/unmatchedFraction/);
    expect(() => compileGaiaLikeOptions({ objectCatalog: 'x', seed: 1, marginThresholdArcsec: 0 })).toThrow(/margin/);
  });
});
