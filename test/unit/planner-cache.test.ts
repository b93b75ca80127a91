/**
 * The planners cache opened HATS catalogs (with their margin) and the column
 * names of a side's first leaf per version, so that re-planning over catalogs
 * that did not change reads no metadata. A change must still be seen: a
 * margin cache removed, a leaf rewritten without a column, a catalog rewritten.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossmatch, hats, survey } from '../../astro/index.js';
import { openCatalogCached, planJob } from '../../coordinator/planner.js';
import type { JobSpec } from '../../protocol/index.js';

describe('planner caches see catalog changes', () => {
  let dir: string;
  let left: string;
  let gaia: string;
  const spec = (): JobSpec => ({ kind: 'crossmatch', input: { left, right: gaia }, params: { radius_arcsec: 1 }, output: { path: join(dir, 'out') } });
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-plancache-'));
    left = join(dir, 'left');
    gaia = join(dir, 'gaia');
    const region = { raMin: 30, raMax: 34, decMin: -36, decMax: -32 };
    await survey.generateObjectCatalog(left, { rows: 3000, seed: 3, region, maxRowsPerPartition: 1000 });
    await survey.generateGaiaLike(gaia, { objectCatalog: left, seed: 4, maxRowsPerPartition: 1000 });
  }, 120_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('returns the same catalog object while nothing changed', async () => {
    const a = await openCatalogCached(gaia, { margin: true, rowCounts: 'auto' });
    const b = await openCatalogCached(gaia, { margin: true, rowCounts: 'auto' });
    expect(b).toBe(a);
    expect(a.margin).toBeDefined();
    // other options are another entry
    const c = await openCatalogCached(gaia, { margin: false });
    expect(c).not.toBe(a);
    expect(c.margin).toBeUndefined();
  });

  it('outputs written beside a catalog do not make it miss; a margin built later is seen', async () => {
    const a = await openCatalogCached(gaia, { margin: true });
    await mkdir(join(dir, 'some-output'), { recursive: true }); // a new sibling: the parent directory's mtime moves
    expect(await openCatalogCached(gaia, { margin: true })).toBe(a);
    // the left catalog has no margin: asked for one, the parent is watched, so a margin built now is found
    const noMargin = await openCatalogCached(left, { margin: true });
    expect(noMargin.margin).toBeUndefined();
    await crossmatch.writeMarginCache(await hats.openHatsCatalog(left, { margin: false }), { thresholdArcsec: 10 });
    const withMargin = await openCatalogCached(left, { margin: true });
    expect(withMargin.margin?.root).toBe(`${left}_margin`);
    await rm(`${left}_margin`, { recursive: true, force: true });
    expect((await openCatalogCached(left, { margin: true })).margin).toBeUndefined();
  }, 60_000);

  it('plans twice alike, then sees a leaf rewritten without a column and a margin cache removed', async () => {
    const first = await planJob(spec());
    const again = await planJob(spec());
    expect(again.count).toBe(first.count);
    expect(again.units).toEqual(first.units);

    // the left side's first leaf rewritten without `dec`: the cached column list must not hide it
    const leftCat = await hats.openHatsCatalog(left, { margin: false });
    const leaf = leftCat.partitions[0]!.files[0]!;
    const inst = await DuckDBInstance.create(':memory:');
    const conn = await inst.connect();
    await conn.run(`CREATE TABLE t AS SELECT * EXCLUDE (dec) FROM read_parquet('${leaf}')`);
    await new Promise((r) => setTimeout(r, 20)); // a new mtime
    await conn.run(`COPY t TO '${leaf}' (FORMAT parquet)`);
    await expect(planJob(spec())).rejects.toThrow(/dec/);
    await conn.run(`COPY (SELECT *, 0.0::DOUBLE AS dec FROM t) TO '${leaf}' (FORMAT parquet)`);
    conn.closeSync();
    inst.closeSync();
    await expect(planJob(spec())).resolves.toBeDefined();

    // the right side's margin cache removed: planning must refuse a HATS right side without one
    const margin = (await hats.openHatsCatalog(gaia)).margin!.root;
    await rm(margin, { recursive: true, force: true });
    await expect(planJob(spec())).rejects.toThrow(/margin/);
  }, 60_000);
});
