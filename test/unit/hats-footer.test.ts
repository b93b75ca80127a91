import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withDuck } from '../../astro/hats/duck.js';
import {
  decodeThriftStruct,
  encodeThriftStruct,
  mergeFooters,
  readFileMetaData,
  readFooterAndSize,
  readFooterBytes,
  schemaOnlyFooter,
  summarizeFooter,
  writeFooterOnlyParquet,
} from '../../astro/hats/parquet-footer.js';
import { HatsParquetError } from '../../astro/hats/errors.js';
import { HATS_DATA, HATS_DATA_SKIP, hasHatsData } from './ref/hats-python.js';

const tmp = await mkdtemp(join(tmpdir(), 'hats-footer-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

function parquetFiles(): string[] {
  const out = execFileSync('find', [HATS_DATA, '-type', 'f', '(', '-name', '*.parquet', '-o', '-name', '*.parq', '-o', '-name', '_metadata', '-o', '-name', '_common_metadata', ')'], {
    encoding: 'utf8',
  });
  return out.trim().split('\n').filter(Boolean).sort();
}

describe.skipIf(!hasHatsData)(`Parquet footer codec on real files (${HATS_DATA_SKIP})`, () => {
  it('re-encodes every footer of the test catalogs byte for byte', async () => {
    const files = parquetFiles();
    expect(files.length).toBeGreaterThan(300);
    for (const f of files) {
      const raw = await readFooterBytes(f);
      const again = encodeThriftStruct(decodeThriftStruct(raw, f));
      expect(Buffer.compare(Buffer.from(raw), Buffer.from(again)), f).toBe(0);
    }
  });

  it('reads row counts, file paths and INT64 statistics that match DuckDB', async () => {
    const md = join(HATS_DATA, 'hats/tests/data/small_sky_nested/dataset/_metadata');
    const s = summarizeFooter(await readFileMetaData(md));
    expect(s.numRows).toBe(131);
    expect(s.rowGroups.reduce((a, r) => a + r.numRows, 0)).toBe(131);
    expect(s.rowGroups.map((r) => r.filePath)).toContain('Norder=2/Dir=0/Npix=176.parquet');
    const duck = await withDuck(async (c) => {
      const r = await c.runAndReadAll(
        `SELECT row_group_id, stats_min, stats_max FROM parquet_metadata('${md}') WHERE path_in_schema = '_healpix_29' ORDER BY row_group_id`,
      );
      return r.getRows().map((row) => ({ min: BigInt(String(row[1])), max: BigInt(String(row[2])) }));
    });
    expect(s.rowGroups.map((r) => r.int64Stats.get('_healpix_29'))).toEqual(duck);
  });

  it('writes _metadata / _common_metadata that DuckDB reads back', async () => {
    const dir = join(HATS_DATA, 'hats/tests/data/small_sky_o1_collection/small_sky_order1/dataset/Norder=1/Dir=0');
    const leaves = [];
    for (const pix of [44, 45, 46, 47]) {
      leaves.push({ relPath: `Norder=1/Dir=0/Npix=${pix}.parquet`, meta: await readFileMetaData(join(dir, `Npix=${pix}.parquet`)) });
    }
    const merged = mergeFooters(leaves);
    await writeFooterOnlyParquet(join(tmp, '_metadata'), merged);
    await writeFooterOnlyParquet(join(tmp, '_common_metadata'), schemaOnlyFooter(leaves[0]!.meta));
    const back = summarizeFooter(await readFileMetaData(join(tmp, '_metadata')));
    expect(back.numRows).toBe(131);
    expect(back.rowGroups.map((r) => r.filePath)).toEqual(leaves.map((l) => l.relPath));
    // Same content as the _metadata hats-import wrote for this catalog.
    const ref = summarizeFooter(await readFileMetaData(join(dir, '../../_metadata')));
    expect(back.rowGroups.map((r) => [r.filePath, r.numRows])).toEqual(ref.rowGroups.map((r) => [r.filePath, r.numRows]));
    const counts = await withDuck(async (c) => {
      const a = await c.runAndReadAll(`SELECT sum(row_group_num_rows) FROM (SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata('${join(tmp, '_metadata')}'))`);
      const b = await c.runAndReadAll(`SELECT count(*) FROM parquet_schema('${join(tmp, '_common_metadata')}')`);
      const d = await c.runAndReadAll(`SELECT count(*) FROM parquet_schema('${join(dir, 'Npix=44.parquet')}')`);
      return [Number(a.getRows()[0]?.[0]), Number(b.getRows()[0]?.[0]), Number(d.getRows()[0]?.[0])];
    });
    expect(counts[0]).toBe(131);
    expect(counts[1]).toBe(counts[2]);
  });
});

describe('Parquet footer codec errors', () => {
  it('rejects a file without the PAR1 magic, naming it', async () => {
    const bad = join(tmp, 'not.parquet');
    await import('node:fs/promises').then((fs) => fs.writeFile(bad, 'hello, this is not parquet at all'));
    await expect(readFooterBytes(bad)).rejects.toThrow(HatsParquetError);
    await expect(readFooterBytes(bad)).rejects.toThrow(bad);
  });

  it('rejects a truncated footer', () => {
    expect(() => decodeThriftStruct(Uint8Array.from([0x15, 0x04]), 'x')).toThrow(HatsParquetError);
  });
});

describe('reading a footer in one read or two', () => {
  it('a footer longer than the first read (a wide table) is fetched whole; a short one comes from the first read', async () => {
    const wide = join(tmp, 'wide.parquet');
    const narrow = join(tmp, 'narrow.parquet');
    const cols = Array.from({ length: 700 }, (_, i) => `i AS column_with_a_long_name_${i}`).join(', ');
    await withDuck(async (c) => {
      await c.run(`COPY (SELECT ${cols} FROM range(3) t(i)) TO '${wide}' (FORMAT parquet)`);
      await c.run(`COPY (SELECT i FROM range(3) t(i)) TO '${narrow}' (FORMAT parquet)`);
    });
    for (const [f, longer] of [[wide, true], [narrow, false]] as const) {
      const bytes = readFileSync(f);
      const len = bytes.readUInt32LE(bytes.length - 8);
      expect(len > 64 * 1024, f).toBe(longer);
      const { footer, size } = await readFooterAndSize(f);
      expect(size).toBe(bytes.length);
      expect(Buffer.compare(Buffer.from(footer), bytes.subarray(bytes.length - 8 - len, bytes.length - 8))).toBe(0);
      expect(summarizeFooter(decodeThriftStruct(footer, f)).numRows).toBe(3);
    }
  });
});
