import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isHatsCatalogDir, openHatsCatalog, hatsLeafPath, type HatsCatalog } from '../../astro/hats/catalog.js';
import { readParquetSql, withDuck } from '../../astro/hats/duck.js';
import {
  HatsCollectionError,
  HatsLeafMissingError,
  HatsMissingPropertiesError,
  HatsNotFoundError,
  HatsParquetError,
  HatsPartitionInfoError,
  HatsPropertiesError,
} from '../../astro/hats/errors.js';
import { parseProperties } from '../../astro/hats/properties.js';
import { HATS_DATA, HATS_DATA_SKIP, hasHatsData, listHatsDirs } from './ref/hats-python.js';

const H = join(HATS_DATA, 'hats/tests/data');
const L = join(HATS_DATA, 'lsdb/tests/data');
const tmp = await mkdtemp(join(tmpdir(), 'hats-read-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** Directories that must NOT open, and why (matching what hats/LSDB do with them). */
const EXPECTED_FAILURES: Record<string, typeof Error> = {
  // collection whose primary table is not there (properties-only test data)
  [join(H, 'info_only/collection')]: HatsCollectionError,
  // partitions listed, no leaves at all: LSDB's open_catalog raises too
  [join(L, 'raw/small_sky_no_metadata')]: HatsLeafMissingError,
  // leaves under parquet/1_44.parquet: needs a path generator (see below)
  [join(L, 'small_sky_order1_custom_tree')]: HatsLeafMissingError,
};

/** Independent numbers from SOURCE.md's inventory (hyparquet decoded every leaf). */
const INVENTORY: Record<string, { type: string; partitions: number; rows: number }> = {
  [join(H, 'small_sky')]: { type: 'object', partitions: 1, rows: 131 },
  [join(H, 'small_sky_nested')]: { type: 'object', partitions: 13, rows: 131 },
  [join(H, 'small_sky_npix_as_dir')]: { type: 'object', partitions: 1, rows: 131 },
  [join(H, 'small_sky_npix_alt_suffix')]: { type: 'object', partitions: 1, rows: 131 },
  [join(H, 'small_sky_source')]: { type: 'source', partitions: 14, rows: 17161 },
  [join(H, 'small_sky_o1_collection/small_sky_order1_margin')]: { type: 'margin', partitions: 7, rows: 47 },
  [join(H, 'small_sky_o1_collection/small_sky_order1_margin_10arcs')]: { type: 'margin', partitions: 0, rows: 0 },
  [join(H, 'square_map')]: { type: 'map', partitions: 12, rows: 12 },
  [join(L, 'small_sky_left_xmatch')]: { type: 'object', partitions: 5, rows: 132 },
  [join(L, 'small_sky_order3_source')]: { type: 'source', partitions: 43, rows: 17161 },
  [join(L, 'small_sky_order3_source_margin')]: { type: 'margin', partitions: 35, rows: 5102 },
  [join(L, 'small_sky_source_margin')]: { type: 'margin', partitions: 14, rows: 1717 },
  [join(L, 'small_sky_order1_source_collection/small_sky_order1_source_margin')]: { type: 'margin', partitions: 7, rows: 6388 },
  [join(L, 'small_sky_to_o1source')]: { type: 'association', partitions: 4, rows: 131 },
  [join(L, 'small_sky_xmatch')]: { type: 'object', partitions: 3, rows: 111 },
};

function propsOf(dir: string): Record<string, string> {
  for (const f of ['hats.properties', 'properties', 'collection.properties']) {
    const p = join(dir, f);
    if (existsSync(p)) return parseProperties(readFileSync(p, 'utf8'), p);
  }
  throw new Error(`no properties in ${dir}`);
}

/** partition_info.csv parsed naively, sorted. */
function partitionInfoOf(dir: string): [number, number][] {
  const p = join(dir, 'partition_info.csv');
  if (!existsSync(p)) return [];
  const lines = readFileSync(p, 'utf8').trim().split('\n').slice(1).filter(Boolean);
  return lines
    .map((l) => l.split(',').map(Number) as [number, number])
    .map(([o, n]) => [o, n] as [number, number])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

async function leafCounts(cat: HatsCatalog): Promise<{ rows: number[]; outside: number }> {
  return withDuck(async (c) => {
    const rows: number[] = [];
    let outside = 0;
    for (const p of cat.partitions) {
      const r = await c.runAndReadAll(`SELECT count(*) FROM ${readParquetSql(p.files)}`);
      rows.push(Number(r.getRows()[0]?.[0]));
      if (cat.type !== 'margin' && cat.healpixColumn === '_healpix_29') {
        // Non-margin rows must lie inside their leaf's pixel.
        const shift = 2 * (29 - p.order);
        const o = await c.runAndReadAll(
          `SELECT count(*) FROM ${readParquetSql(p.files)} WHERE (_healpix_29 >> ${shift}) <> ${p.pixel}`,
        );
        outside += Number(o.getRows()[0]?.[0]);
      }
    }
    return { rows, outside };
  });
}

describe.skipIf(!hasHatsData)(`opening every real HATS test catalog (${HATS_DATA_SKIP})`, async () => {
  const dirs = hasHatsData ? await listHatsDirs() : [];

  it('finds the catalogs of both test trees', () => {
    expect(dirs.length).toBeGreaterThanOrEqual(50);
    for (const d of dirs) expect(isHatsCatalogDir(d), d).toBe(true);
  });

  for (const dir of dirs) {
    const rel = dir.slice(HATS_DATA.length + 1);
    const failure = EXPECTED_FAILURES[dir];
    if (failure) {
      it(`${rel}: fails with a clear ${failure.name}`, async () => {
        const err = await openHatsCatalog(dir).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(failure);
        expect((err as Error).message).toContain(dir);
      });
      continue;
    }
    it(`${rel}: partitions, leaves and row counts`, async () => {
      const cat = await openHatsCatalog(dir);
      const isCollection = existsSync(join(dir, 'collection.properties'));
      const catDir = isCollection ? cat.root : dir;
      const props = propsOf(catDir);
      expect(cat.type).toBe(props.dataproduct_type);
      expect(cat.properties).toEqual(props);
      expect(cat.raColumn).toBe(props.hats_col_ra ?? 'ra');
      expect(cat.decColumn).toBe(props.hats_col_dec ?? 'dec');
      // partition list = partition_info.csv, sorted by (order, pixel)
      expect(cat.partitions.map((p) => [p.order, p.pixel])).toEqual(partitionInfoOf(catDir));
      const inv = INVENTORY[catDir];
      if (inv) {
        expect(cat.type).toBe(inv.type);
        expect(cat.partitions.length).toBe(inv.partitions);
        expect(cat.totalRows).toBe(inv.rows);
      }
      if (cat.type === 'index') {
        expect(cat.partitions).toEqual([]);
        expect(cat.totalRows).toBe(Number(props.hats_nrows));
        if (existsSync(join(catDir, 'dataset/index'))) expect(cat.indexFiles?.length).toBeGreaterThan(0);
        return;
      }
      const withLeaves = cat.partitions.filter((p) => p.files.length > 0);
      if (withLeaves.length === 0) {
        // info-only catalogs and leafless associations: no files, hats_nrows as the count
        for (const p of cat.partitions) expect(p.files).toEqual([]);
        if (props.hats_nrows !== undefined && cat.partitions.length === 0) expect(cat.totalRows).toBe(Number(props.hats_nrows));
        return;
      }
      expect(withLeaves.length).toBe(cat.partitions.length);
      for (const p of cat.partitions) for (const f of p.files) expect(existsSync(f), f).toBe(true);
      const { rows, outside } = await leafCounts(cat);
      expect(cat.partitions.map((p) => p.rows)).toEqual(rows);
      expect(cat.totalRows).toBe(rows.reduce((a, b) => a + b, 0));
      expect(cat.totalRows).toBe(Number(props.hats_nrows));
      expect(outside).toBe(0);
    });
  }
});

describe.skipIf(!hasHatsData)(`HATS layout variants, margins and collections (${HATS_DATA_SKIP})`, () => {
  it('reads .parq leaves and Npix-as-directory leaves', async () => {
    const alt = await openHatsCatalog(join(H, 'small_sky_npix_alt_suffix'));
    expect(alt.npixSuffix).toBe('.parq');
    expect(alt.partitions[0]?.files).toEqual([join(H, 'small_sky_npix_alt_suffix/dataset/Norder=0/Dir=0/Npix=11.parq')]);
    const asDir = await openHatsCatalog(join(H, 'small_sky_npix_as_dir'));
    expect(asDir.npixSuffix).toBe('/');
    expect(asDir.partitions[0]?.files).toEqual([join(H, 'small_sky_npix_as_dir/dataset/Norder=0/Dir=0/Npix=11/part0.parquet')]);
    expect(asDir.partitions[0]?.rows).toBe(131);
  });

  it('opens a custom leaf tree through a path generator (LSDB path_generator)', async () => {
    const dir = join(L, 'small_sky_order1_custom_tree');
    const err = await openHatsCatalog(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HatsLeafMissingError);
    expect(err).toMatchObject({ order: 1, pixel: 44 });
    const cat = await openHatsCatalog(dir, { pathGenerator: (root, order, pixel, suffix) => join(root, 'parquet', `${order}_${pixel}${suffix}`) });
    expect(cat.partitions.map((p) => [p.pixel, p.rows])).toEqual([[44, 42], [45, 29], [46, 42], [47, 18]]);
    expect(cat.totalRows).toBe(131);
  });

  it('uses the healpix column named in the properties', async () => {
    const cat = await openHatsCatalog(join(H, 'small_sky_healpix13'));
    expect(cat.healpixColumn).toBe('healpix13');
    expect(cat.healpixOrder).toBe(13);
    const std = await openHatsCatalog(join(H, 'small_sky'));
    expect(std.healpixColumn).toBe('_healpix_29');
    expect(std.healpixOrder).toBe(29);
  });

  it('opens a collection: primary table, default margin, indexes', async () => {
    const cat = await openHatsCatalog(join(L, 'small_sky_order1_collection'));
    expect(cat.root).toBe(join(L, 'small_sky_order1_collection/small_sky_order1'));
    expect(cat.name).toBe('small_sky_order1');
    expect(cat.margin?.root).toBe(join(L, 'small_sky_order1_collection/small_sky_order1_margin_1deg'));
    expect(cat.margin?.type).toBe('margin');
    expect(cat.margin?.totalRows).toBe(23);
    expect(cat.marginThresholdArcsec).toBe(3600);
    expect(cat.collection?.margins.map((m) => basename(m))).toEqual(['small_sky_order1_margin_1deg', 'small_sky_order1_margin_2deg']);
    expect(cat.collection?.indexes).toEqual({ id: join(L, 'small_sky_order1_collection/small_sky_order1_id_index') });
    const twoDeg = await openHatsCatalog(join(L, 'small_sky_order1_collection'), { margin: 'small_sky_order1_margin_2deg' });
    expect(twoDeg.marginThresholdArcsec).toBe(7200);
    expect(twoDeg.margin?.totalRows).toBe(47);
    const none = await openHatsCatalog(join(L, 'small_sky_order1_collection'), { margin: false });
    expect(none.margin).toBeUndefined();
  });

  it('finds the collection margin when the primary table is opened directly', async () => {
    const cat = await openHatsCatalog(join(H, 'small_sky_o1_collection/small_sky_order1'));
    expect(cat.margin?.name).toBe('small_sky_order1_margin');
    expect(cat.marginThresholdArcsec).toBe(7200);
    expect(cat.collection?.root).toBe(join(H, 'small_sky_o1_collection'));
  });

  it('finds a margin written beside a loose catalog', async () => {
    const src = await openHatsCatalog(join(L, 'small_sky_source'));
    expect(src.margin?.root).toBe(join(L, 'small_sky_source_margin'));
    expect(src.marginThresholdArcsec).toBeCloseTo(515.3229617726108, 10);
    const o3 = await openHatsCatalog(join(L, 'small_sky_order3_source'));
    expect(o3.margin?.totalRows).toBe(5102);
    const plain = await openHatsCatalog(join(L, 'small_sky'));
    expect(plain.margin).toBeUndefined();
  });

  it('info-only catalogs open with no leaves', async () => {
    for (const d of ['catalog', 'dataset', 'margin_cache', 'index_catalog']) {
      const cat = await openHatsCatalog(join(H, 'info_only', d));
      expect(cat.partitions).toEqual([]);
      expect(cat.totalRows).toBe(Number(propsOf(join(H, 'info_only', d)).hats_nrows));
    }
    const m = await openHatsCatalog(join(H, 'info_only/margin_cache'));
    expect(m.marginThresholdArcsec).toBe(0.5);
    const assoc = await openHatsCatalog(join(H, 'small_sky_to_small_sky_order1'));
    expect(assoc.partitions.map((p) => p.files.length)).toEqual([0, 0, 0, 0]);
  });

  it('leaf paths follow Norder=K/Dir=D/Npix=N', () => {
    expect(hatsLeafPath('/c', 1, 44)).toBe('/c/dataset/Norder=1/Dir=0/Npix=44.parquet');
    expect(hatsLeafPath('/c', 9, 123456)).toBe('/c/dataset/Norder=9/Dir=120000/Npix=123456.parquet');
    expect(hatsLeafPath('/c', 9, 9999, '.parq')).toBe('/c/dataset/Norder=9/Dir=0/Npix=9999.parq');
  });
});

describe.skipIf(!hasHatsData)(`clear errors for broken catalogs (${HATS_DATA_SKIP})`, () => {
  let n = 0;
  /** A writable copy of a real catalog in the temp dir. */
  async function copyOf(src: string): Promise<string> {
    const dst = join(tmp, `c${++n}`, basename(src));
    await cp(src, dst, { recursive: true });
    execFileSync('chmod', ['-R', 'u+w', dst]);
    return dst;
  }

  it('missing directory / not a directory', async () => {
    const missing = join(tmp, 'nope');
    await expect(openHatsCatalog(missing)).rejects.toThrow(HatsNotFoundError);
    await expect(openHatsCatalog(missing)).rejects.toMatchObject({ path: missing });
    const file = join(tmp, 'file.txt');
    await writeFile(file, 'x');
    await expect(openHatsCatalog(file)).rejects.toThrow(/not a directory/);
  });

  it('missing properties', async () => {
    const dir = join(tmp, 'empty-cat');
    await mkdir(dir, { recursive: true });
    await expect(openHatsCatalog(dir)).rejects.toThrow(HatsMissingPropertiesError);
    expect(isHatsCatalogDir(dir)).toBe(false);
  });

  it('malformed properties line and non-integer healpix order', async () => {
    const dir = await copyOf(join(H, 'small_sky'));
    await writeFile(join(dir, 'hats.properties'), '#HATS catalog\nobs_collection=x\nthis line has no equals sign\n');
    const err = await openHatsCatalog(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HatsPropertiesError);
    expect(err).toMatchObject({ line: 3, path: join(dir, 'hats.properties') });
    await writeFile(join(dir, 'hats.properties'), 'dataproduct_type=object\nhats_col_healpix_order=abc\n');
    await expect(openHatsCatalog(dir)).rejects.toThrow(/hats_col_healpix_order/);
  });

  it('malformed partition_info.csv', async () => {
    const dir = await copyOf(join(H, 'small_sky_o1_collection/small_sky_order1'));
    const info = join(dir, 'partition_info.csv');
    const cases: [string, RegExp][] = [
      ['Order,Pixel\n1,44\n', /lacks Norder/],
      ['Norder,Npix\n1,abc\n', /line 2: Npix "abc"/],
      ['Norder,Npix\n1,48\n', /out of range for Norder 1/],
      ['Norder,Npix\n1,44\n1,44\n', /listed twice/],
      ['Norder,Npix\n1,44,7\n', /3 fields/],
      ['', /empty/],
    ];
    for (const [text, re] of cases) {
      await writeFile(info, text);
      const err = await openHatsCatalog(dir, { margin: false }).catch((e: unknown) => e);
      expect(err, text).toBeInstanceOf(HatsPartitionInfoError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).toContain(info);
    }
  });

  it('leaf listed but missing', async () => {
    const dir = await copyOf(join(H, 'small_sky_o1_collection/small_sky_order1'));
    const leaf = join(dir, 'dataset/Norder=1/Dir=0/Npix=46.parquet');
    await unlink(leaf);
    const err = await openHatsCatalog(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HatsLeafMissingError);
    expect(err).toMatchObject({ path: leaf, order: 1, pixel: 46 });
    expect((err as Error).message).toContain('1 of 4 partitions');
  });

  it('corrupt leaf footer', async () => {
    const dir = await copyOf(join(H, 'small_sky'));
    const leaf = join(dir, 'dataset/Norder=0/Dir=0/Npix=11.parquet');
    await truncate(leaf, 100);
    await expect(openHatsCatalog(dir, { rowCounts: 'footers' })).rejects.toThrow(HatsParquetError);
    const cat = await openHatsCatalog(dir, { rowCounts: 'none' });
    expect(cat.partitions[0]?.rows).toBeUndefined();
    expect(cat.totalRows).toBe(131); // from hats_nrows
  });

  it('collection pointing at a missing primary or margin', async () => {
    const dir = await copyOf(join(L, 'small_sky_order1_collection'));
    const props = join(dir, 'collection.properties');
    const text = readFileSync(props, 'utf8');
    await writeFile(props, text.replace('default_margin=small_sky_order1_margin_1deg', 'default_margin=gone_margin'));
    await expect(openHatsCatalog(dir)).rejects.toThrow(/margin catalog .*gone_margin/);
    await writeFile(props, text.replace('hats_primary_table_url=small_sky_order1', 'hats_primary_table_url=gone'));
    await expect(openHatsCatalog(dir)).rejects.toThrow(HatsCollectionError);
    await writeFile(props, text.replace(/hats_primary_table_url=.*\n/, ''));
    await expect(openHatsCatalog(dir)).rejects.toThrow(/no hats_primary_table_url/);
  });

  it('aborts through its signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(openHatsCatalog(join(L, 'small_sky_order3_source'), { signal: ac.signal })).rejects.toThrow(/aborted/);
  });
});
