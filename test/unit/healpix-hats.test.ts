/**
 * Real data: every HATS test catalogue row stores `_healpix_29`, the NESTED order-29
 * index its writer (hats / healpy) computed from ra/dec. Our ang2pixBig must agree,
 * and the leaf file a non-margin row sits in (Norder=K/.../Npix=N) must be ang2pix(K).
 */
import { existsSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { ang2pix, ang2pixBig } from '../../astro/healpix/index.js';

const ROOT = '/work/shared/data/hats-test-catalogs';
const missing = !existsSync(ROOT);
if (missing) console.warn(`[healpix tests] skipping HATS catalogue checks: ${ROOT} not found`);

async function query(sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(':memory:');
  try {
    const con = await instance.connect();
    try {
      return (await con.runAndReadAll(sql)).getRows() as unknown[][];
    } finally {
      con.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

describe.skipIf(missing)('HEALPix against the HATS test catalogues', () => {
  it('ang2pixBig(29) equals the stored _healpix_29 of every row; leaves hold ang2pix(Norder) == Npix', async () => {
    const rows = await query(
      `SELECT coalesce(ra, source_ra) AS ra, coalesce(dec, source_dec) AS dec, _healpix_29, filename
       FROM read_parquet('${ROOT}/**/*.parq*', union_by_name = true, filename = true)
       WHERE _healpix_29 IS NOT NULL AND coalesce(ra, source_ra) IS NOT NULL`,
    );
    expect(rows.length).toBeGreaterThan(50_000);
    const bad: string[] = [];
    const catalogues = new Set<string>();
    let leafChecked = 0;
    for (const [ra, dec, h, file] of rows) {
      if (typeof ra !== 'number' || typeof dec !== 'number' || typeof h !== 'bigint' || typeof file !== 'string') {
        throw new Error(`unexpected column types in ${String(file)}`);
      }
      catalogues.add(file.split('/dataset/')[0] ?? file);
      if (ang2pixBig(29, ra, dec) !== h) bad.push(`${file}: (${String(ra)}, ${String(dec)}) stored ${String(h)}`);
      const leaf = /Norder=(\d+)\/Dir=\d+\/Npix=(\d+)/.exec(file);
      if (leaf && !file.includes('margin')) {
        leafChecked++;
        if (ang2pix(Number(leaf[1]), ra, dec) !== Number(leaf[2])) bad.push(`${file}: (${String(ra)}, ${String(dec)}) not in its leaf`);
      }
    }
    expect(bad.slice(0, 10), `${String(bad.length)} bad rows`).toEqual([]);
    expect(catalogues.size).toBeGreaterThanOrEqual(20);
    expect(leafChecked).toBeGreaterThan(10_000);
  });

  it('ang2pix(13) equals the healpix13 column of small_sky_healpix13', async () => {
    const rows = await query(
      `SELECT ra, dec, healpix13 FROM read_parquet('${ROOT}/hats/tests/data/small_sky_healpix13/**/*.parquet')`,
    );
    expect(rows.length).toBe(131);
    for (const [ra, dec, h] of rows) expect(BigInt(ang2pix(13, Number(ra), Number(dec)))).toBe(BigInt(h as bigint | number));
  });
});
