import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hatsLeafPath, openHatsCatalog, type HatsCatalog } from '../../astro/hats/catalog.js';
import { readParquetSql, withDuck } from '../../astro/hats/duck.js';
import { HatsAbortError, HatsWriteError } from '../../astro/hats/errors.js';
import { readFileMetaData, summarizeFooter } from '../../astro/hats/parquet-footer.js';
import { parseProperties } from '../../astro/hats/properties.js';
import { compileWriteHatsOptions, planHatsPartitions, writeHatsCatalog, writeHatsMetadata } from '../../astro/hats/write.js';
import { HATS_DATA, HATS_DATA_SKIP, PYTHON, hasHatsData, pythonHas, runPython } from './ref/hats-python.js';

const tmp = await mkdtemp(join(tmpdir(), 'hats-write-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));
const H = join(HATS_DATA, 'hats/tests/data');
const L = join(HATS_DATA, 'lsdb/tests/data');

async function q(sql: string): Promise<unknown[][]> {
  return withDuck(async (c) => (await c.runAndReadAll(sql)).getRows());
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  await walk(dir);
  return out.sort();
}

/** Every row sits in its partition's pixel, leaves sorted by _healpix_29, rows <= max unless at highest order. */
async function checkPlacement(cat: HatsCatalog, maxRows: number, highestOrder: number): Promise<void> {
  const files = cat.partitions.flatMap((p) => p.files.map((f) => `('${f}', ${p.order}, ${p.pixel})`));
  const rows = await q(
    `WITH leaf(filename, k, pix) AS (VALUES ${files.join(', ')}),
     r AS (SELECT filename, _healpix_29, lag(_healpix_29) OVER (PARTITION BY filename ORDER BY file_row_number) AS prev
           FROM read_parquet([${cat.partitions.flatMap((p) => p.files).map((f) => `'${f}'`).join(', ')}], filename = true, file_row_number = true, hive_partitioning = false))
     SELECT leaf.k, leaf.pix, count(*),
            count(*) FILTER (WHERE (_healpix_29 >> (2 * (29 - leaf.k))) <> leaf.pix),
            count(*) FILTER (WHERE _healpix_29 < prev)
     FROM r JOIN leaf USING (filename) GROUP BY ALL ORDER BY 1, 2`,
  );
  expect(rows.map((r) => [Number(r[0]), Number(r[1]), Number(r[2])])).toEqual(cat.partitions.map((p) => [p.order, p.pixel, p.rows]));
  for (const r of rows) {
    expect(Number(r[3])).toBe(0); // rows outside their leaf's pixel
    expect(Number(r[4])).toBe(0); // rows out of _healpix_29 order
  }
  for (const p of cat.partitions) if (p.order < highestOrder) expect(p.rows!).toBeLessThanOrEqual(maxRows);
}

describe('adaptive partition planning', () => {
  it('splits from order 0 until pixels fit, keeps every row, drops empty pixels', () => {
    // 3 pixels at order 2: two inside order-0 pixel 0, one inside pixel 11.
    const counts = new Map([
      [0, 60],
      [5, 50],
      [11 * 16 + 3, 10],
    ]);
    const plan = planHatsPartitions(counts, 2, 100);
    expect(plan).toEqual([
      { order: 1, pixel: 0, rows: 60 },
      { order: 1, pixel: 1, rows: 50 },
      { order: 0, pixel: 11, rows: 10 },
    ]);
    expect(planHatsPartitions(counts, 2, 1000)).toEqual([
      { order: 0, pixel: 0, rows: 110 },
      { order: 0, pixel: 11, rows: 10 },
    ]);
    // highest order reached: a partition may exceed the maximum
    expect(planHatsPartitions(new Map([[7, 500]]), 1, 100)).toEqual([{ order: 1, pixel: 7, rows: 500 }]);
    expect(planHatsPartitions(new Map(), 3, 10)).toEqual([]);
  });

  it('never overlaps partitions and conserves rows on random inputs', () => {
    let seed = 1;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    for (let t = 0; t < 20; t++) {
      const H = 1 + Math.floor(rnd() * 5);
      const counts = new Map<number, number>();
      for (let i = 0; i < 200; i++) {
        const pix = Math.floor(rnd() * 12 * 4 ** H);
        counts.set(pix, (counts.get(pix) ?? 0) + 1 + Math.floor(rnd() * 50));
      }
      const max = 1 + Math.floor(rnd() * 300);
      const plan = planHatsPartitions(counts, H, max);
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      expect(plan.reduce((a, p) => a + p.rows, 0)).toBe(total);
      const covered = new Set<number>();
      for (const p of plan) {
        if (p.order < H) expect(p.rows).toBeLessThanOrEqual(max);
        const scale = 4 ** (H - p.order);
        for (let c = p.pixel * scale; c < (p.pixel + 1) * scale; c++) {
          expect(covered.has(c)).toBe(false);
          covered.add(c);
        }
      }
      for (const pix of counts.keys()) expect(covered.has(pix)).toBe(true);
    }
  });

  it('validates options', () => {
    expect(compileWriteHatsOptions({ name: 'x' })).toEqual({
      name: 'x',
      raColumn: 'ra',
      decColumn: 'dec',
      maxRowsPerPartition: 1_000_000,
      highestOrder: 10,
      type: 'object',
    });
    expect(() => compileWriteHatsOptions({ name: 'x', maxRowsPerPartition: 0 })).toThrow(HatsWriteError);
    expect(() => compileWriteHatsOptions({ name: 'x', highestOrder: 25 })).toThrow(/highestOrder/);
    expect(() => compileWriteHatsOptions({ name: '' })).toThrow(/name/);
  });
});

describe.skipIf(!hasHatsData)(`writeHatsCatalog against catalogs written by hats-import (${HATS_DATA_SKIP})`, () => {
  it('rebuilds small_sky_order1 from the raw CSV: same partitions, rows and _healpix_29 as hats', async () => {
    const out = join(tmp, 'small_sky_order1');
    const progress: number[] = [];
    const cat = await writeHatsCatalog(join(L, 'raw/small_sky/small_sky.csv'), out, {
      name: 'small_sky_order1',
      maxRowsPerPartition: 42,
      onProgress: (done, total) => progress.push(done / total),
    });
    const ref = await openHatsCatalog(join(H, 'small_sky_o1_collection/small_sky_order1'), { margin: false });
    expect(cat.partitions.map((p) => [p.order, p.pixel, p.rows])).toEqual(ref.partitions.map((p) => [p.order, p.pixel, p.rows]));
    expect(progress.at(-1)).toBe(1);
    expect(readFileSync(join(out, 'partition_info.csv'), 'utf8')).toBe(
      readFileSync(join(ref.root, 'partition_info.csv'), 'utf8'),
    );
    // Per partition: same ids and identical _healpix_29 to the ones hats computed with healpy.
    for (let i = 0; i < cat.partitions.length; i++) {
      const mine = await q(`SELECT id, _healpix_29 FROM ${readParquetSql(cat.partitions[i]!.files)} ORDER BY id`);
      const theirs = await q(`SELECT id, _healpix_29 FROM ${readParquetSql(ref.partitions[i]!.files)} ORDER BY id`);
      expect(mine).toEqual(theirs);
    }
    await checkPlacement(cat, 42, 10);
  });

  it('round-trips small_sky_source (17161 rows, 3 orders) from Parquet with other coordinate columns', async () => {
    const src = await openHatsCatalog(join(H, 'small_sky_source'), { margin: false });
    const flat = join(tmp, 'source.parquet');
    await q(
      `COPY (SELECT * EXCLUDE (_healpix_29), _healpix_29 AS hats_h29 FROM ${readParquetSql(src.partitions.flatMap((p) => p.files))}) TO '${flat}' (FORMAT parquet)`,
    );
    const out = join(tmp, 'source');
    const cat = await writeHatsCatalog(flat, out, { name: 'source', raColumn: 'source_ra', decColumn: 'source_dec', maxRowsPerPartition: 2000, type: 'source' });
    expect(cat.totalRows).toBe(17161);
    expect(cat.type).toBe('source');
    expect(cat.raColumn).toBe('source_ra');
    expect(new Set(cat.partitions.map((p) => p.order)).size).toBeGreaterThanOrEqual(2);
    const leaves = readParquetSql(cat.partitions.flatMap((p) => p.files));
    // Rows preserved exactly (multiset equality both ways), _healpix_29 equal to hats' own values.
    const [diff] = await q(
      `SELECT (SELECT count(*) FROM (SELECT * EXCLUDE (_healpix_29) FROM ${leaves} EXCEPT ALL SELECT * FROM '${flat}')),
              (SELECT count(*) FROM (SELECT * FROM '${flat}' EXCEPT ALL SELECT * EXCLUDE (_healpix_29) FROM ${leaves})),
              (SELECT count(*) FROM ${leaves} WHERE _healpix_29 <> hats_h29)`,
    );
    expect(diff!.map(Number)).toEqual([0, 0, 0]);
    // _healpix_29 is the first column, INT64.
    const [schema] = await q(`SELECT name, type FROM parquet_schema('${cat.partitions[0]!.files[0]}') WHERE name <> 'duckdb_schema' LIMIT 1`);
    expect(schema).toEqual(['_healpix_29', 'INT64']);
    await checkPlacement(cat, 2000, 10);
    const props = parseProperties(readFileSync(join(out, 'hats.properties'), 'utf8'), 'x');
    expect(props.hats_nrows).toBe('17161');
    expect(props.hats_col_ra).toBe('source_ra');
    expect(props.hats_max_rows).toBe('2000');
    expect(Number(props.hats_order)).toBe(Math.max(...cat.partitions.map((p) => p.order)));
  });

  it('writes the same layout and property keys as hats-import', async () => {
    const out = join(tmp, 'layout');
    const cat = await writeHatsCatalog(join(L, 'raw/small_sky/small_sky.csv'), out, { name: 'layout', maxRowsPerPartition: 42 });
    const ref = join(H, 'small_sky_o1_collection/small_sky_order1');
    // Files hats-import writes that we do not: sky maps and per-partition statistics (optional in HATS).
    const optional = new Set(['point_map.fits', 'skymap.fits', 'per_partition_statistics.parquet']);
    expect(await listFiles(out)).toEqual((await listFiles(ref)).filter((f) => !optional.has(f)));
    const ours = parseProperties(readFileSync(join(out, 'hats.properties'), 'utf8'), 'ours');
    const theirs = parseProperties(readFileSync(join(ref, 'hats.properties'), 'utf8'), 'theirs');
    const optionalKeys = new Set(['hats_skymap_order', 'hats_skymap_alt_orders', 'obs_regime', 'default_index']);
    for (const k of Object.keys(theirs)) if (!optionalKeys.has(k)) expect(ours, k).toHaveProperty(k);
    for (const k of ['dataproduct_type', 'hats_col_ra', 'hats_col_dec', 'hats_col_healpix', 'hats_col_healpix_order', 'hats_npix_suffix', 'hats_order', 'moc_sky_fraction', 'hats_nrows', 'hats_version']) {
      expect(ours[k], k).toBe(theirs[k]);
    }
    expect(readFileSync(join(out, 'properties'), 'utf8')).toBe(readFileSync(join(out, 'hats.properties'), 'utf8'));
    // _metadata: one row group per leaf with the same relative paths and counts as hats' file.
    const mine = summarizeFooter(await readFileMetaData(join(out, 'dataset/_metadata')));
    const hats = summarizeFooter(await readFileMetaData(join(ref, 'dataset/_metadata')));
    expect(mine.rowGroups.map((r) => [r.filePath, r.numRows])).toEqual(hats.rowGroups.map((r) => [r.filePath, r.numRows]));
    const common = summarizeFooter(await readFileMetaData(join(out, 'dataset/_common_metadata')));
    expect(common.numRows).toBe(0);
    expect(common.rowGroups).toEqual([]);
    // DuckDB reads our _common_metadata schema: the leaf columns.
    const cols = await q(`SELECT name FROM parquet_schema('${join(out, 'dataset/_common_metadata')}') WHERE name <> 'duckdb_schema'`);
    expect(cols.map((r) => r[0])).toEqual(['_healpix_29', 'id', 'ra', 'dec', 'ra_error', 'dec_error']);
    // And a second open gets rows from _metadata equal to the footers.
    const again = await openHatsCatalog(out, { rowCounts: 'footers' });
    expect(again.partitions).toEqual(cat.partitions);
  });

  it.skipIf(!pythonHas('hats'))(`opens in python hats (needs ${PYTHON} with hats)`, async () => {
    const out = join(tmp, 'for-python');
    await writeHatsCatalog(join(L, 'raw/small_sky/small_sky.csv'), out, { name: 'py', maxRowsPerPartition: 42 });
    const text = runPython('import sys, hats; c = hats.read_hats(sys.argv[1]); print(len(c.get_healpix_pixels()), c.catalog_info.total_rows)', [out]);
    expect(text.trim()).toBe('4 131');
  });
});

describe('writeHatsCatalog sources and failures', () => {
  it('accepts a DuckDB SELECT, whole-sky, and _healpix_29 agrees with healpy', async () => {
    const out = join(tmp, 'sql');
    const cat = await writeHatsCatalog(
      `SELECT range AS id, ((range * 137.50776405) % 360)::DOUBLE AS ra, degrees(asin(((range * 0.6180339887) % 1.0)::DOUBLE * 2 - 1)) AS dec FROM range(5000)`,
      out,
      { name: 'sql', maxRowsPerPartition: 300, highestOrder: 6 },
    );
    expect(cat.totalRows).toBe(5000);
    expect(cat.partitions.length).toBeGreaterThan(12);
    await checkPlacement(cat, 300, 6);
    // The writer plans in DuckDB, top-down; it must agree with the pure planner on the same counts.
    const counts = await q(`SELECT (_healpix_29 >> 46)::BIGINT, count(*) FROM ${readParquetSql(cat.partitions.flatMap((p) => p.files))} GROUP BY 1`);
    const pure = planHatsPartitions(new Map(counts.map((r) => [Number(r[0]), Number(r[1])])), 6, 300);
    expect(cat.partitions.map((p) => [p.order, p.pixel, p.rows])).toEqual(
      pure.sort((x, y) => x.order - y.order || x.pixel - y.pixel).map((p) => [p.order, p.pixel, p.rows]),
    );
    expect(new Set(cat.partitions.map((p) => p.order)).size).toBeGreaterThanOrEqual(2);
    if (!pythonHas('healpy')) return; // healpy comparison below needs Debian's python
    const rows = await q(`SELECT ra, dec, _healpix_29::VARCHAR FROM ${readParquetSql(cat.partitions.flatMap((p) => p.files))} ORDER BY id`);
    const file = join(tmp, 'radec.json');
    await writeFile(file, JSON.stringify(rows.map((r) => [r[0], r[1]])));
    const py = runPython(
      'import sys, json, numpy as np, healpy as hp\n' +
        'a = np.array(json.load(open(sys.argv[1])))\n' +
        'print("\\n".join(str(int(x)) for x in hp.ang2pix(2**29, a[:,0], a[:,1], nest=True, lonlat=True)))',
      [file],
    );
    expect(py.trim().split('\n')).toEqual(rows.map((r) => String(r[2])));
  });

  it('fails clearly and leaves nothing behind', async () => {
    const out = join(tmp, 'fail');
    await expect(writeHatsCatalog('SELECT 1 AS x, 2 AS dec', out, { name: 'f' })).rejects.toThrow(/no column "ra"/);
    expect(existsSync(out)).toBe(false);
    await expect(writeHatsCatalog('SELECT 10.0 AS ra, 95.0 AS dec', out, { name: 'f' })).rejects.toThrow(/1 source rows have NULL or invalid/);
    expect(existsSync(out)).toBe(false);
    await expect(writeHatsCatalog(join(tmp, 'missing.parquet'), out, { name: 'f' })).rejects.toThrow(/does not exist/);
    await expect(writeHatsCatalog('SELECT * FROM no_such_table', out, { name: 'f' })).rejects.toThrow(HatsWriteError);
    await mkdir(out);
    await writeFile(join(out, 'keep.txt'), 'x');
    await expect(writeHatsCatalog('SELECT 1.0 AS ra, 2.0 AS dec', out, { name: 'f' })).rejects.toThrow(/not empty/);
    expect(readFileSync(join(out, 'keep.txt'), 'utf8')).toBe('x');
  });

  it('stops when aborted between leaves', async () => {
    const out = join(tmp, 'aborted');
    const ac = new AbortController();
    const run = writeHatsCatalog('SELECT range AS id, ((range * 7.3) % 360)::DOUBLE AS ra, (((range * 3.1) % 160) - 80)::DOUBLE AS dec FROM range(3000)', out, {
      name: 'a',
      maxRowsPerPartition: 100,
      signal: ac.signal,
      onProgress: (done) => {
        if (done === 2) ac.abort();
      },
    });
    await expect(run).rejects.toThrow(/aborted/);
    expect(existsSync(out)).toBe(false);
  });

  it('an abort during staging interrupts DuckDB and cleans up', async () => {
    const out = join(tmp, 'aborted-early');
    const ac = new AbortController();
    const run = writeHatsCatalog('SELECT range AS id, (range % 360)::DOUBLE AS ra, 0.0 AS dec FROM range(20000000)', out, {
      name: 'a',
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(), 300); // lands before or during staging; both must end in HatsAbortError
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HatsAbortError);
    expect(existsSync(out)).toBe(false);
  });

  it('writeHatsMetadata checks the claimed row counts against the leaves', async () => {
    const out = join(tmp, 'meta');
    const leaf = hatsLeafPath(out, 0, 4);
    await mkdir(join(out, 'dataset/Norder=0/Dir=0'), { recursive: true });
    await q(`COPY (SELECT 1.0 AS ra, 2.0 AS dec) TO '${leaf}' (FORMAT parquet)`);
    await expect(
      writeHatsMetadata(out, { name: 'm', raColumn: 'ra', decColumn: 'dec', partitions: [{ order: 0, pixel: 4, rows: 5 }] }),
    ).rejects.toThrow(/holds 1 rows but partition metadata says 5/);
    await expect(
      writeHatsMetadata(out, { name: 'm', raColumn: 'ra', decColumn: 'dec', partitions: [{ order: 0, pixel: 5, rows: 1 }] }),
    ).rejects.toThrow(/missing/);
    await writeHatsMetadata(out, {
      name: 'm',
      raColumn: 'ra',
      decColumn: 'dec',
      partitions: [{ order: 0, pixel: 4, rows: 1 }],
      extraProperties: { obs_regime: 'Optical' },
    });
    const cat = await openHatsCatalog(out);
    expect(cat.totalRows).toBe(1);
    expect(cat.properties.obs_regime).toBe('Optical');
  });
});
