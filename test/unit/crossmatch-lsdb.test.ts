/**
 * Reproduces LSDB's expected cross-match and cone-search outputs
 * (tests/data/raw/xmatch_expected, raw/cone_search_expected) from the real
 * HATS test catalogs. Parameters per file, from lsdb tests/lsdb/catalog/
 * test_crossmatch.py and test_cone_search.py (commit 836fb5d):
 *   xmatch_correct.csv             small_sky x small_sky_xmatch, radius 0.01 deg, k=1, no margin
 *   xmatch_correct_0_005.csv       same, radius 0.005 deg
 *   xmatch_correct_002_005.csv     same, radius 0.005 deg, min radius 0.002 deg
 *   xmatch_correct_3n_2t_no_margin k=3, radius 2 deg, no margin
 *   xmatch_correct_3n_2t.csv       k=3, radius 2 deg, with small_sky_xmatch_margin
 *   xmatch_correct_3n_2t_negative  small_sky_left_xmatch x small_sky_xmatch, k=3, 2 deg, margin
 *   xmatch_correct_05_2_3n_margin  k=3, radius 2 deg, min radius 0.5 deg, margin
 *   xmatch_mock.csv                output of a mock algorithm (arbitrary pairs): only its
 *                                  distances are checked, as great-circle separations
 * `dist` in the CSVs is in degrees.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  coneSearch,
  crossmatch,
  crossmatchCatalogs,
  planPartitionMatch,
  separationArcsec,
  type PartitionMatches,
} from '../../astro/crossmatch/index.js';
import { openHatsCatalog } from '../../astro/hats/index.js';

const ROOT = '/work/shared/data/hats-test-catalogs/lsdb/tests/data';
const haveData = existsSync(ROOT);
if (!haveData) console.warn(`crossmatch-lsdb: skipped, HATS test catalogs not found at ${ROOT}`);

function readCsv(path: string): Array<Record<string, string>> {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  return lines.slice(1).map((l) => {
    const cells = l.split(',');
    return Object.fromEntries(header.map((h, i) => [h, cells[i] ?? '']));
  });
}

interface Pair {
  left: string;
  right: string;
  distArcsec: number;
}

function expected(file: string): Pair[] {
  return readCsv(join(ROOT, 'raw/xmatch_expected', file)).map((r) => ({
    left: String(Number(r.ss_id)),
    right: String(Number(r.xmatch_id)),
    distArcsec: Number(r.dist) * 3600,
  }));
}

function flatten(results: PartitionMatches[]): Pair[] {
  const out: Pair[] = [];
  for (const r of results) {
    for (let p = 0; p < r.left.length; p++) {
      out.push({ left: String(r.leftId[p]), right: String(r.rightId[p]), distArcsec: r.sepArcsec[p]! });
    }
  }
  return out;
}

function expectSameMatches(got: Pair[], want: Pair[]): void {
  const key = (p: Pair) => `${p.left}->${p.right}`;
  expect(got.map(key).sort()).toEqual(want.map(key).sort());
  const wantByKey = new Map(want.map((p) => [key(p), p.distArcsec]));
  for (const p of got) {
    const w = wantByKey.get(key(p))!;
    expect(Math.abs(p.distArcsec - w)).toBeLessThanOrEqual(1e-6 * w);
  }
}

async function runXmatch(
  leftName: string,
  withMargin: boolean,
  opts: { radiusArcsec: number; k?: number; minRadiusArcsec?: number },
): Promise<Pair[]> {
  const left = await openHatsCatalog(join(ROOT, leftName), { margin: false });
  const right = await openHatsCatalog(join(ROOT, 'small_sky_xmatch'), { margin: withMargin });
  if (withMargin) expect(right.margin?.name).toBe('small_sky_xmatch_margin');
  return flatten(await crossmatchCatalogs(left, right, { ...opts, useMargin: withMargin, leftIdColumn: 'id', rightIdColumn: 'id' }));
}

describe.skipIf(!haveData)('LSDB expected cross-match outputs (partition-aware path)', () => {
  const cases: Array<[string, string, boolean, { radiusArcsec: number; k?: number; minRadiusArcsec?: number }]> = [
    ['xmatch_correct.csv', 'small_sky', false, { radiusArcsec: 0.01 * 3600 }],
    ['xmatch_correct_0_005.csv', 'small_sky', false, { radiusArcsec: 0.005 * 3600 }],
    ['xmatch_correct_002_005.csv', 'small_sky', false, { radiusArcsec: 0.005 * 3600, minRadiusArcsec: 0.002 * 3600 }],
    ['xmatch_correct_3n_2t_no_margin.csv', 'small_sky', false, { radiusArcsec: 2 * 3600, k: 3 }],
    ['xmatch_correct_3n_2t.csv', 'small_sky', true, { radiusArcsec: 2 * 3600, k: 3 }],
    ['xmatch_correct_3n_2t_negative.csv', 'small_sky_left_xmatch', true, { radiusArcsec: 2 * 3600, k: 3 }],
    ['xmatch_correct_05_2_3n_margin.csv', 'small_sky', true, { radiusArcsec: 2 * 3600, k: 3, minRadiusArcsec: 0.5 * 3600 }],
  ];
  for (const [file, leftName, withMargin, opts] of cases) {
    it(`${file}`, async () => {
      const want = expected(file);
      expect(want.length).toBeGreaterThan(20);
      expectSameMatches(await runXmatch(leftName, withMargin, opts), want);
    });
  }

  it('with a margin, the partition-aware result equals the in-memory match of the raw CSV inputs', async () => {
    const load = (path: string) => {
      const rows = readCsv(path);
      return {
        id: rows.map((r) => String(Number(r.id))),
        pts: { ra: Float64Array.from(rows, (r) => Number(r.ra)), dec: Float64Array.from(rows, (r) => Number(r.dec)) },
      };
    };
    const l = load(join(ROOT, 'raw/xmatch/small_sky_left_xmatch.csv'));
    const r = load(join(ROOT, 'raw/xmatch/small_sky_xmatch.csv'));
    const m = crossmatch(l.pts, r.pts, { radiusArcsec: 7200, k: 3 });
    const got = Array.from(m.left, (li, p) => ({ left: l.id[li]!, right: r.id[m.right[p]!]!, distArcsec: m.sepArcsec[p]! }));
    expectSameMatches(got, expected('xmatch_correct_3n_2t_negative.csv'));
  });

  it('xmatch_mock.csv distances are the great-circle separations of its pairs', () => {
    const rows = readCsv(join(ROOT, 'raw/xmatch/small_sky_xmatch.csv'));
    const small = readCsv(join(ROOT, 'raw/small_sky/small_sky.csv'));
    const pos = (rs: Array<Record<string, string>>) => new Map(rs.map((r) => [String(Number(r.id)), [Number(r.ra), Number(r.dec)] as const]));
    const L = pos(small);
    const R = pos(rows);
    const mock = expected('xmatch_mock.csv');
    let checked = 0;
    for (const p of mock) {
      const a = L.get(p.left);
      const b = R.get(p.right);
      if (!a || !b) continue;
      const sep = separationArcsec(a[0], a[1], b[0], b[1]);
      expect(Math.abs(sep - p.distArcsec)).toBeLessThanOrEqual(1e-6 * p.distArcsec);
      checked++;
    }
    expect(checked).toBe(mock.length);
  });

  it('plans aligned pixels like LSDB (left coarser, left finer, margin-only pixels)', () => {
    const right = [44, 45, 46].map((pixel) => ({ order: 1, pixel }));
    const margin = [
      { order: 0, pixel: 4 },
      { order: 0, pixel: 7 },
      { order: 0, pixel: 8 },
      ...[44, 45, 46, 47].map((pixel) => ({ order: 1, pixel })),
    ];
    expect(planPartitionMatch({ order: 0, pixel: 11 }, right, margin)).toEqual([
      { aligned: { order: 1, pixel: 44 }, right: { order: 1, pixel: 44 }, margin: { order: 1, pixel: 44 } },
      { aligned: { order: 1, pixel: 45 }, right: { order: 1, pixel: 45 }, margin: { order: 1, pixel: 45 } },
      { aligned: { order: 1, pixel: 46 }, right: { order: 1, pixel: 46 }, margin: { order: 1, pixel: 46 } },
      { aligned: { order: 1, pixel: 47 }, margin: { order: 1, pixel: 47 } },
    ]);
    expect(planPartitionMatch({ order: 2, pixel: 66 }, right, margin)).toEqual([
      { aligned: { order: 2, pixel: 66 }, margin: { order: 0, pixel: 4 } },
    ]);
    expect(planPartitionMatch({ order: 2, pixel: 180 }, right, [])).toEqual([
      { aligned: { order: 2, pixel: 180 }, right: { order: 1, pixel: 45 } },
    ]);
  });
});

describe.skipIf(!haveData)('LSDB expected cone-search outputs', () => {
  it('small_sky_order1_source and its margin, cone (-35, -55) radius 2 deg', async () => {
    // test_cone_search_filters_correct_points_margin: ra=-35, dec=-55, radius 2 deg
    const cat = await openHatsCatalog(join(ROOT, 'small_sky_order1_source_collection'));
    expect(cat.margin).toBeDefined();
    const { withDuck, readParquetSql } = await import('../../astro/hats/index.js');
    const select = async (files: string[]) =>
      withDuck(async (conn) => {
        const r = await conn.runAndReadAll(`SELECT source_id, source_ra, source_dec FROM ${readParquetSql(files)}`);
        const [id = [], ra = [], dec = []] = r.getColumns();
        return { id: id.map(String), pts: { ra: Float64Array.from(ra as number[]), dec: Float64Array.from(dec as number[]) } };
      });
    for (const [catalog, csv] of [
      [cat, 'catalog.csv'],
      [cat.margin!, 'margin.csv'],
    ] as const) {
      const got: string[] = [];
      for (const p of catalog.partitions) {
        const rows = await select(p.files);
        for (const i of coneSearch(rows.pts, -35, -55, 2 * 3600)) got.push(rows.id[i]!);
      }
      const want = readCsv(join(ROOT, 'raw/cone_search_expected', csv)).map((r) => r.source_id!);
      expect(want.length).toBeGreaterThan(100);
      expect(got.sort()).toEqual(want.sort());
    }
  });
});
