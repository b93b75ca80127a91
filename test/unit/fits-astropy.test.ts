/**
 * Our FITS reader against astropy.io.fits (Debian's /usr/bin/python3):
 * files astropy writes (every BITPIX, scaling, MEF, tile compression) and the
 * FITS files astropy ships for its own tests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFits, FitsUnsupportedError, type FitsHdu } from '../../astro/fits/index.js';
import {
  ASTROPY_FITS_DATA,
  ASTROPY_WCS_DATA,
  DTYPE_TO_CLASS,
  SKIP_ASTROPY_MSG,
  firstDifference,
  headerDifferences,
  pythonHas,
  readManifest,
  readRefArray,
  runRef,
  type RefManifest,
} from './ref/fits-python.js';

const haveAstropy = pythonHas('astropy.io.fits', 'numpy');
if (!haveAstropy) console.warn(`fits-astropy: ${SKIP_ASTROPY_MSG}`);

/** Compare every HDU astropy saw with ours; returns a list of problems. */
function compareFile(ours: FitsHdu[], ref: RefManifest, dumpDir: string, opts: { compressedHeaders?: boolean } = {}): string[] {
  const problems: string[] = [];
  if (ours.length !== ref.hdus.length) problems.push(`HDU count ${ours.length} vs astropy ${ref.hdus.length}`);
  for (const rh of ref.hdus) {
    const oh = ours[rh.index];
    if (oh === undefined) continue;
    const where = `HDU ${rh.index}`;
    if (rh.error !== null) {
      // astropy itself failed on this HDU: nothing to compare against
      console.info(`${where}: astropy error ${rh.error}`);
      continue;
    }
    if (rh.kind !== oh.kind) problems.push(`${where}: kind ${oh.kind} vs astropy ${rh.kind}`);
    if (oh.bitpix !== rh.bitpix) problems.push(`${where}: BITPIX ${oh.bitpix} vs astropy ${rh.bitpix}`);
    if (JSON.stringify(oh.shape) !== JSON.stringify(rh.shape)) problems.push(`${where}: shape ${JSON.stringify(oh.shape)} vs astropy ${JSON.stringify(rh.shape)}`);
    const isCompressed = rh.kind === 'compressed-image';
    if (!isCompressed || opts.compressedHeaders === true) {
      problems.push(...headerDifferences(oh.header.cards, rh.cards).map((d) => `${where}: ${d}`));
    } else {
      // astropy rebuilds the image header of a compressed HDU; compare the keywords it shows
      for (const [k, v] of rh.cards) {
        if (k === '' || k === 'COMMENT' || k === 'HISTORY') continue;
        const values = oh.header.getAll(k);
        if (values.length === 0) problems.push(`${where}: missing keyword ${k}`);
        else if ((typeof v !== 'object' || v === null) && !values.includes(v)) {
          problems.push(`${where}: ${k}=${values.map(String).join('|')} vs astropy ${String(v)}`);
        }
      }
    }
    if (rh.dtype !== null) {
      if (oh.data === null) {
        problems.push(`${where}: no data, astropy has ${rh.dtype}`);
        continue;
      }
      const expectedClass = DTYPE_TO_CLASS[rh.dtype];
      if (oh.data.constructor.name !== expectedClass) problems.push(`${where}: ${oh.data.constructor.name} vs astropy ${rh.dtype}`);
      const refArr = readRefArray(dumpDir, rh) as unknown as ArrayLike<number | bigint>;
      const d = firstDifference(oh.data as ArrayLike<number | bigint>, refArr);
      if (d >= 0) problems.push(`${where}: pixel ${d} is ${String((oh.data as ArrayLike<number | bigint>)[d])}, astropy ${String(refArr[d])} (lengths ${oh.data.length}/${refArr.length})`);
    } else if ((rh.kind === 'image' || rh.kind === 'compressed-image') && oh.data !== null && oh.data.length > 0) {
      problems.push(`${where}: we return ${oh.data.length} pixels, astropy none`);
    }
  }
  return problems;
}

describe.skipIf(!haveAstropy)('FITS files written by astropy', () => {
  let dir = '';
  let files: string[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fits-astropy-'));
    runRef('fits_ref.py', ['make', join(dir, 'in')]);
    files = readdirSync(join(dir, 'in')).filter((f) => f.endsWith('.fits')).sort();
    runRef('fits_ref.py', ['dumpmany', join(dir, 'dump'), ...files.map((f) => join(dir, 'in', f))]);
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('made the expected set of files', () => {
    for (const f of ['plain_u8.fits', 'plain_i16.fits', 'plain_i32.fits', 'plain_i64.fits', 'plain_f32.fits', 'plain_f64.fits', 'calexp.fits', 'comp_rice_i16.fits', 'comp_gzip1_i16.fits', 'comp_gzip2_i32.fits']) {
      expect(files).toContain(f);
    }
  });

  it('reads every file with values, headers and shapes equal to astropy', async () => {
    const unsupported: string[] = [];
    for (const [k, f] of files.entries()) {
      const dumpDir = join(dir, 'dump', String(k));
      const ref = readManifest(dumpDir);
      expect(ref.error, f).toBeNull();
      let ours: FitsHdu[];
      try {
        ours = await readFits(join(dir, 'in', f));
      } catch (e) {
        if (e instanceof FitsUnsupportedError) {
          unsupported.push(`${f}: ${e.feature}`);
          continue;
        }
        throw e;
      }
      expect(compareFile(ours, ref, dumpDir), f).toEqual([]);
    }
    // HCOMPRESS is the only codec we refuse
    expect(unsupported).toEqual(['comp_hcompress_i16.fits: HCOMPRESS_1']);
  });

  it('reads selected HDUs by EXTNAME and raw (unscaled) values', async () => {
    const [mask, variance] = await readFits(join(dir, 'in', 'calexp.fits'), { hdus: ['mask', 'VARIANCE'] });
    expect(mask?.index).toBe(2);
    expect(mask?.data).toBeInstanceOf(Int32Array);
    expect(variance?.name).toBe('VARIANCE');
    const [raw] = await readFits(join(dir, 'in', 'scaled_i16.fits'), { scale: false });
    expect(raw?.data).toBeInstanceOf(Int16Array);
    expect(raw?.data?.[0]).toBe(-32768);
    const [scaled] = await readFits(join(dir, 'in', 'scaled_i16.fits'));
    expect(scaled?.data).toBeInstanceOf(Float32Array);
    expect(Number.isNaN(scaled?.data?.[0])).toBe(true);
  });
});

const astropyFiles: string[] = [];
for (const d of [ASTROPY_FITS_DATA, ASTROPY_WCS_DATA]) {
  if (!existsSync(d)) continue;
  for (const f of readdirSync(d).sort()) if (/\.fits(\.gz)?$/.test(f)) astropyFiles.push(join(d, f));
}

describe.skipIf(!haveAstropy || astropyFiles.length === 0)("astropy's own FITS test files", () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fits-astropy-data-'));
    runRef('fits_ref.py', ['dumpmany', dir, ...astropyFiles]);
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('reads each image HDU like astropy, or refuses it as unsupported', async () => {
    const unsupported: string[] = [];
    const compared: string[] = [];
    const problems: Record<string, string[]> = {};
    for (const [k, path] of astropyFiles.entries()) {
      const dumpDir = join(dir, String(k));
      const ref = readManifest(dumpDir);
      const name = path.split('/').pop() as string;
      if (ref.error !== null) continue; // astropy cannot open it either
      let ours: FitsHdu[];
      try {
        ours = await readFits(path);
      } catch (e) {
        if (e instanceof FitsUnsupportedError) {
          unsupported.push(`${name} (${e.feature})`);
          continue;
        }
        throw e;
      }
      const p = compareFile(ours, ref, dumpDir);
      if (p.length > 0) problems[name] = p;
      compared.push(name);
    }
    console.info(`astropy test files: ${compared.length} match astropy, ${unsupported.length} refused as unsupported: ${unsupported.join(', ')}`);
    expect(problems).toEqual({});
    // the tile-compressed ones must work
    for (const f of ['comp.fits', 'compressed_image.fits', 'compressed_float_bzero.fits', 'double_ext.fits']) expect(compared).toContain(f);
    // only random groups and SIMPLE = F files are refused
    expect(unsupported.every((u) => /random-groups|SIMPLE=F/.test(u))).toBe(true);
    expect(unsupported.length).toBeLessThanOrEqual(4);
  });
});
