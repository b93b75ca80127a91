import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readParquetSql, withDuck, type HatsCatalog } from '../../astro/hats/index.js';
import { boxRaWidth, compileObjectCatalogOptions, generateObjectCatalog } from '../../astro/survey/index.js';

const tmp = await mkdtemp(join(tmpdir(), 'survey-objects-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function q(sql: string): Promise<unknown[][]> {
  return withDuck(async (c) => (await c.runAndReadAll(sql)).getRows());
}
const leaves = (cat: HatsCatalog) => readParquetSql(cat.partitions.flatMap((p) => p.files));

describe('synthetic Object catalog', () => {
  const box = { raMin: 330, raMax: 20, decMin: -35, decMax: 5 }; // wraps RA = 0
  let a: HatsCatalog;
  beforeAll(async () => {
    a = await generateObjectCatalog(join(tmp, 'a'), { rows: 20_000, seed: 7, region: box, maxRowsPerPartition: 5000 });
  });

  it('has the requested rows, unique objectIds and the Rubin-like columns', async () => {
    expect(a.totalRows).toBe(20_000);
    expect(a.partitions.length).toBeGreaterThan(1);
    const [row] = await q(`SELECT count(*), count(DISTINCT objectId) FROM ${leaves(a)}`);
    expect(row!.map(Number)).toEqual([20_000, 20_000]);
    const schema = await q(`SELECT name, type FROM parquet_schema('${a.partitions[0]!.files[0]}') WHERE name <> 'duckdb_schema'`);
    const bands = ['u', 'g', 'r', 'i', 'z', 'y'];
    expect(schema.map((r) => r[0])).toEqual([
      '_healpix_29',
      'objectId',
      'ra',
      'dec',
      ...bands.map((b) => `${b}_mag`),
      ...bands.map((b) => `${b}_magErr`),
      'extendedness',
      'flags',
    ]);
    expect(Object.fromEntries(schema.map((r) => [r[0], r[1]]))).toMatchObject({ objectId: 'INT64', ra: 'DOUBLE', r_mag: 'FLOAT', flags: 'INT32' });
  });

  it('stays inside the box across RA = 0 with sphere-area weighting', async () => {
    const [row] = await q(
      `SELECT count(*) FILTER (WHERE NOT ((ra >= 330 OR ra <= 20) AND dec BETWEEN -35 AND 5)),
              count(*) FILTER (WHERE ra >= 330), count(*) FILTER (WHERE dec > -15), min(ra), max(ra)
       FROM ${leaves(a)}`,
    );
    const [outside, west, north, minRa, maxRa] = row!.map(Number) as [number, number, number, number, number];
    expect(outside).toBe(0);
    expect(minRa).toBeGreaterThanOrEqual(0);
    expect(maxRa).toBeLessThan(360);
    // RA uniform: 30 of the 50 degrees lie west of 0h.
    const n = 20_000;
    const pWest = 30 / 50;
    expect(Math.abs(west - n * pWest)).toBeLessThan(5 * Math.sqrt(n * pWest * (1 - pWest)));
    // Dec area-weighted: P(dec > -15) = (sin 5 - sin -15) / (sin 5 - sin -35).
    const s = (d: number) => Math.sin((d * Math.PI) / 180);
    const pNorth = (s(5) - s(-15)) / (s(5) - s(-35));
    expect(Math.abs(north - n * pNorth)).toBeLessThan(5 * Math.sqrt(n * pNorth * (1 - pNorth)));
  });

  it('has plausible photometry: r in ~16-27, errors growing with magnitude, galaxies and stars, flags', async () => {
    const [st] = await q(
      `SELECT quantile_cont(r_mag, 0.001), quantile_cont(r_mag, 0.999), avg(extendedness), count(*) FILTER (WHERE flags <> 0),
              count(*) FILTER (WHERE extendedness NOT IN (0, 1)), count(*) FILTER (WHERE r_mag IS NULL)
       FROM ${leaves(a)}`,
    );
    const [q001, q999, ext, flagged, badExt, rNull] = st!.map(Number) as number[];
    expect(q001).toBeGreaterThan(15.5);
    expect(q999).toBeLessThan(28);
    expect(ext).toBeGreaterThan(0.6);
    expect(ext).toBeLessThan(0.8);
    expect(flagged).toBeGreaterThan(0);
    expect(flagged).toBeLessThan(20_000 * 0.2);
    expect(badExt).toBe(0);
    expect(rNull).toBe(0);
    // median error per 1-mag bin rises with magnitude in every band
    for (const b of ['u', 'g', 'r', 'i', 'z', 'y']) {
      const bins = await q(
        `SELECT floor(${b}_mag) AS m, median(${b}_magErr) FROM ${leaves(a)} WHERE ${b}_mag BETWEEN 18 AND 26 GROUP BY m HAVING count(*) > 50 ORDER BY m`,
      );
      const med = bins.map((r) => Number(r[1]));
      expect(med.length, b).toBeGreaterThan(3);
      for (let i = 1; i < med.length; i++) expect(med[i]!, `${b} bin ${String(bins[i]![0])}`).toBeGreaterThan(med[i - 1]!);
    }
    // star colours: g - r mostly inside the stellar locus
    const [gr] = await q(`SELECT quantile_cont(g_mag - r_mag, 0.5) FROM ${leaves(a)} WHERE extendedness = 0 AND r_mag < 21`);
    expect(Number(gr![0])).toBeGreaterThan(0.2);
    expect(Number(gr![0])).toBeLessThan(1.4);
  });

  it('is deterministic for a seed and differs between seeds', async () => {
    const b = await generateObjectCatalog(join(tmp, 'b'), { rows: 20_000, seed: 7, region: box, maxRowsPerPartition: 5000 });
    expect(b.partitions).toEqual(a.partitions.map((p) => ({ ...p, files: p.files.map((f) => f.replace(join(tmp, 'a'), join(tmp, 'b'))) })));
    const [diff] = await q(
      `SELECT (SELECT count(*) FROM (SELECT * FROM ${leaves(a)} EXCEPT ALL SELECT * FROM ${leaves(b)})),
              (SELECT count(*) FROM (SELECT * FROM ${leaves(b)} EXCEPT ALL SELECT * FROM ${leaves(a)}))`,
    );
    expect(diff!.map(Number)).toEqual([0, 0]);
    const c = await generateObjectCatalog(join(tmp, 'c'), { rows: 2000, seed: 8, region: box });
    const [same] = await q(
      `SELECT count(*) FROM ${leaves(c)} x JOIN (SELECT * FROM ${leaves(a)} ORDER BY objectId LIMIT 2000) y ON x.ra = y.ra`,
    );
    expect(Number(same![0])).toBe(0);
  });

  it('fills a cone uniformly and stays inside it', async () => {
    const cone = await generateObjectCatalog(join(tmp, 'cone'), { rows: 10_000, seed: 3, region: { ra: 1, dec: 60, radiusDeg: 4 } });
    const [row] = await q(
      `WITH d AS (SELECT degrees(2 * asin(sqrt(pow(sin(radians(dec - 60) / 2), 2) + cos(radians(dec)) * cos(radians(60)) * pow(sin(radians(ra - 1) / 2), 2)))) AS sep
                  FROM ${leaves(cone)})
       SELECT max(sep), count(*) FILTER (WHERE sep < 2) FROM d`,
    );
    expect(Number(row![0])).toBeLessThanOrEqual(4 + 1e-9);
    // area inside half the radius: (1 - cos 2) / (1 - cos 4) ~ 0.2501
    const p = (1 - Math.cos((2 * Math.PI) / 180)) / (1 - Math.cos((4 * Math.PI) / 180));
    expect(Math.abs(Number(row![1]) - 10_000 * p)).toBeLessThan(5 * Math.sqrt(10_000 * p * (1 - p)));
  });

  it('covers the whole sky by default', async () => {
    const all = await generateObjectCatalog(join(tmp, 'all'), { rows: 12_000, seed: 1, maxRowsPerPartition: 2000 });
    const [row] = await q(`SELECT count(*) FILTER (WHERE dec > 0), count(*) FILTER (WHERE abs(dec) > 30) FROM ${leaves(all)}`);
    expect(Math.abs(Number(row![0]) - 6000)).toBeLessThan(5 * Math.sqrt(3000));
    // |dec| > 30 covers half the sphere's area (a flat-in-dec sampler would put 2/3 of the rows there)
    expect(Math.abs(Number(row![1]) - 6000)).toBeLessThan(5 * Math.sqrt(3000));
    expect(new Set(all.partitions.map((p) => Math.floor(p.pixel / 4 ** p.order))).size).toBe(12);
  });

  it('validates its options', () => {
    expect(() => compileObjectCatalogOptions({ rows: -1, seed: 1 })).toThrow(/rows/);
    expect(() => compileObjectCatalogOptions({ rows: 1, seed: 1.5 })).toThrow(/seed/);
    expect(() => compileObjectCatalogOptions({ rows: 1, seed: 1, region: { raMin: 0, raMax: 10, decMin: 5, decMax: 5 } })).toThrow(/box/);
    expect(() => compileObjectCatalogOptions({ rows: 1, seed: 1, region: { ra: 0, dec: 95, radiusDeg: 1 } })).toThrow(/cone/);
    expect(boxRaWidth(350, 10)).toBe(20);
    expect(boxRaWidth(0, 360)).toBe(360);
    expect(boxRaWidth(10, 20)).toBe(10);
  });
});
