/**
 * writeFits -> readFits round trips, and files we write read by astropy.io.fits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FitsHeader,
  FitsWriteError,
  readFits,
  writeFits,
  fitsToBuffer,
  parseFits,
  type FitsCard,
  type FitsData,
  type WriteHdu,
} from '../../astro/fits/index.js';
import {
  DTYPE_TO_CLASS,
  SKIP_ASTROPY_MSG,
  firstDifference,
  headerDifferences,
  pythonHas,
  readManifest,
  readRefArray,
  runRef,
} from './ref/fits-python.js';

const haveAstropy = pythonHas('astropy.io.fits', 'numpy');
if (!haveAstropy) console.warn(`fits-roundtrip (astropy part): ${SKIP_ASTROPY_MSG}`);

/** Deterministic pseudo-random numbers (no Math.random in tests). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const W = 23;
const H = 17;
const N = W * H;

function sampleArrays(): Record<string, FitsData> {
  const r = lcg(7);
  const f32 = Float32Array.from({ length: N }, () => (r() - 0.5) * 1e4);
  f32[3] = NaN;
  f32[4] = Infinity;
  f32[5] = -0;
  const f64 = Float64Array.from({ length: N }, () => (r() - 0.5) * 1e300);
  f64[6] = NaN;
  f64[7] = Number.MIN_VALUE;
  return {
    u8: Uint8Array.from({ length: N }, () => Math.floor(r() * 256)),
    i16: Int16Array.from({ length: N }, () => Math.floor(r() * 65536) - 32768),
    i32: Int32Array.from({ length: N }, () => Math.floor(r() * 2 ** 32) - 2 ** 31),
    i64: BigInt64Array.from({ length: N }, (_, i) => BigInt.asIntN(64, BigInt(Math.floor(r() * 2 ** 32)) * 4294967296n + BigInt(i) - (1n << 62n))),
    f32,
    f64,
    u16: Uint16Array.from({ length: N }, () => Math.floor(r() * 65536)),
    u32: Uint32Array.from({ length: N }, () => Math.floor(r() * 2 ** 32)),
    i8: Int8Array.from({ length: N }, () => Math.floor(r() * 256) - 128),
    u64: BigUint64Array.from({ length: N }, (_, i) => (1n << 63n) + BigInt(i) * 123456789n),
  };
}

const EXPECTED_BITPIX: Record<string, number> = { u8: 8, i16: 16, i32: 32, i64: 64, f32: -32, f64: -64, u16: 16, u32: 32, i8: 8, u64: 64 };

const calexpHeader: FitsCard[] = [
  { key: 'FILTER', value: 'r', comment: 'band' },
  { key: 'VISIT', value: 123456 },
  { key: 'MJD-OBS', value: 60123.25, comment: 'start of exposure' },
  { key: 'LONGSTR', value: 'a long string value that certainly does not fit on one card; '.repeat(4) + 'the end', comment: 'long string' },
  { key: 'QUOTED', value: "O'Brien's filter" },
  { key: 'EMPTY', value: '' },
  { key: 'UNDEF', value: null, comment: 'no value' },
  { key: 'FLAG', value: false },
  { key: 'BIG', value: 2n ** 62n },
  { key: 'SMALL', value: 1.25e-200 },
  { key: 'NEGZERO', value: -1.5 },
  { key: 'ESO DET CHIP TEMP', value: -120.25, comment: 'HIERARCH keyword' },
  { key: 'HISTORY', value: 'written by ubatch tests' },
  { key: 'HISTORY', value: 'x'.repeat(100) },
  { key: 'COMMENT', value: 'a comment' },
];

function calexpHdus(): WriteHdu[] {
  const r = lcg(11);
  const image = Float32Array.from({ length: N }, () => r() * 100);
  const mask = Int32Array.from({ length: N }, () => Math.floor(r() * 1024));
  const variance = Float32Array.from({ length: N }, () => 10 + r());
  return [
    { header: calexpHeader, data: null },
    { name: 'IMAGE', data: image, shape: [W, H], header: [{ key: 'BUNIT', value: 'nJy' }] },
    { name: 'MASK', data: mask, shape: [W, H], header: [{ key: 'MP_BAD', value: 0 }, { key: 'MP_SAT', value: 1 }] },
    { name: 'VARIANCE', data: variance, shape: [W, H] },
  ];
}

describe('writeFits / readFits round trip', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fits-rt-'));
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it.each(Object.keys(sampleArrays()))('every pixel type survives: %s', async (name) => {
    const data = sampleArrays()[name] as FitsData;
    const path = join(dir, `rt_${name}.fits`);
    await writeFits(path, [{ data, shape: [W, H] }]);
    const [hdu] = await readFits(path);
    expect(hdu?.bitpix).toBe(EXPECTED_BITPIX[name]);
    expect(hdu?.shape).toEqual([W, H]);
    expect(hdu?.data?.constructor.name).toBe(data.constructor.name);
    expect(firstDifference(hdu?.data as ArrayLike<number>, data as ArrayLike<number>)).toBe(-1);
  });

  it('BSCALE/BZERO: physical values quantised, NaN -> BLANK, read back scaled', async () => {
    const phys = Float64Array.from({ length: N }, (_, i) => 100 + i * 0.25);
    phys[10] = NaN;
    const path = join(dir, 'scaled.fits');
    await writeFits(path, [{ data: phys, shape: [W, H], bscale: 0.25, bzero: 100, bitpix: 16 }]);
    const [raw] = await readFits(path, { scale: false });
    expect(raw?.bitpix).toBe(16);
    expect(raw?.header.getNumber('BSCALE')).toBe(0.25);
    expect(raw?.header.getNumber('BLANK')).toBe(-32768);
    expect(raw?.data?.[11]).toBe(11);
    const [scaled] = await readFits(path);
    expect(scaled?.data).toBeInstanceOf(Float32Array);
    const s = scaled?.data as Float32Array;
    expect(Number.isNaN(s[10])).toBe(true);
    for (let i = 0; i < N; i++) if (i !== 10) expect(s[i]).toBeCloseTo(phys[i] as number, 6);
    // raw integers with the header's scaling are written back unchanged
    const again = join(dir, 'scaled-again.fits');
    await writeFits(again, [{ data: raw?.data ?? null, shape: raw?.shape ?? [], header: raw?.header ?? [] }]);
    const [back] = await readFits(again);
    expect(firstDifference(back?.data as Float32Array, s)).toBe(-1);
  });

  it('big scaled images (read from a file in 4 MiB steps) equal the one-buffer decode, every convention', async () => {
    const { readFileSync } = await import('node:fs');
    const rnd = lcg(7);
    const n = 1450 * 1450; // 2.1 M pixels: 16-bit data just over one 4 MiB step; 32-bit cases use 1.1 M pixels
    const cases: { name: string; hdu: WriteHdu; shape: number[] }[] = [];
    const phys16 = Float64Array.from({ length: n }, () => (Math.round(rnd() * 60000) - 30000) * 0.5 - 300);
    phys16[5] = NaN;
    phys16[n - 1] = NaN;
    cases.push({ name: 'int16-bscale-blank', hdu: { data: phys16, shape: [1450, 1450], bscale: 0.5, bzero: -300, bitpix: 16 }, shape: [1450, 1450] });
    const phys32 = Float64Array.from({ length: 1100 * 1000 }, () => Math.round(rnd() * 2e9) * 0.001 + 7);
    cases.push({ name: 'int32-bscale', hdu: { data: phys32, shape: [1100, 1000], bscale: 0.001, bzero: 7, bitpix: 32 }, shape: [1100, 1000] });
    cases.push({ name: 'uint16', hdu: { data: Uint16Array.from({ length: n }, () => Math.floor(rnd() * 65536)), shape: [1450, 1450] }, shape: [1450, 1450] });
    cases.push({ name: 'uint32', hdu: { data: Uint32Array.from({ length: 1100 * 1000 }, () => Math.floor(rnd() * 2 ** 32)), shape: [1100, 1000] }, shape: [1100, 1000] });
    const big8 = 2100 * 2100; // BITPIX 8 needs > 4 MiB of pixels to take the stepped path
    cases.push({ name: 'int8', hdu: { data: Int8Array.from({ length: big8 }, () => Math.floor(rnd() * 256) - 128), shape: [2100, 2100] }, shape: [2100, 2100] });
    for (const c of cases) {
      const path = join(dir, `big-${c.name}.fits`);
      await writeFits(path, [c.hdu]);
      const [fromFile] = await readFits(path);
      const [fromBuffer] = await parseFits(readFileSync(path));
      expect(fromFile?.shape, c.name).toEqual(c.shape);
      expect(fromFile?.data?.constructor.name, c.name).toBe(fromBuffer?.data?.constructor.name);
      expect(fromFile?.data?.length, c.name).toBe(fromBuffer?.data?.length);
      expect(firstDifference(fromFile?.data as ArrayLike<number>, fromBuffer?.data as ArrayLike<number>), c.name).toBe(-1);
      if (c.hdu.data instanceof Uint16Array || c.hdu.data instanceof Uint32Array || c.hdu.data instanceof Int8Array) {
        expect(firstDifference(fromFile?.data as ArrayLike<number>, c.hdu.data as ArrayLike<number>), c.name).toBe(-1);
      }
    }
    const [i16] = await readFits(join(dir, 'big-int16-bscale-blank.fits'));
    const d = i16?.data as Float32Array;
    expect(Number.isNaN(d[5]!) && Number.isNaN(d[n - 1]!)).toBe(true);
    expect(d[6]).toBe(Math.fround(phys16[6]!));
  });

  it('multi-extension calexp-like file keeps names, headers, long strings and HISTORY', async () => {
    const path = join(dir, 'calexp.fits');
    await writeFits(path, calexpHdus());
    const hdus = await readFits(path);
    expect(hdus.map((h) => h.name)).toEqual([undefined, 'IMAGE', 'MASK', 'VARIANCE']);
    const h0 = hdus[0]?.header as FitsHeader;
    for (const c of calexpHeader) {
      if (c.key === 'HISTORY' || c.key === 'COMMENT') continue;
      expect(h0.get(c.key), c.key).toEqual(c.value);
    }
    expect(h0.getAll('HISTORY')).toEqual(['written by ubatch tests', 'x'.repeat(72), 'x'.repeat(28)]);
    expect(h0.getComment('LONGSTR')).toBe('long string');
    expect(hdus[0]?.data).toBeNull();
    expect(hdus[2]?.header.getNumber('MP_SAT')).toBe(1);
    const orig = calexpHdus();
    for (let i = 1; i < 4; i++) expect(firstDifference(hdus[i]?.data as Float32Array, orig[i]?.data as Float32Array)).toBe(-1);
    // in-memory encode/parse gives the same bytes and values
    const buf = fitsToBuffer(calexpHdus());
    expect(buf.length % 2880).toBe(0);
    const copy = Buffer.from(buf);
    const again = await parseFits(buf);
    expect(again[1]?.data).toEqual(hdus[1]?.data);
    // the caller's buffer is not byte-swapped under its feet
    expect(buf.equals(copy)).toBe(true);
  });

  it('refuses bad input with FitsWriteError and leaves no file behind', async () => {
    const path = join(dir, 'bad.fits');
    await expect(writeFits(path, [{ data: new Float32Array(4), shape: [3, 2] }])).rejects.toBeInstanceOf(FitsWriteError);
    await expect(writeFits(path, [{ data: null, header: [{ key: 'X', value: NaN }] }])).rejects.toThrow(/NaN/);
    await expect(writeFits(path, [{ data: Float64Array.from([1, 1e9]), bscale: 1, bzero: 0, bitpix: 16 }])).rejects.toThrow(/does not fit/);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe.skipIf(!haveAstropy)('files we write, read by astropy', () => {
  let dir = '';
  const written: { file: string; hdus: WriteHdu[] }[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fits-rt-astropy-'));
    const arrays = sampleArrays();
    for (const [name, data] of Object.entries(arrays)) {
      const hdus: WriteHdu[] = [{ data, shape: [W, H], header: [{ key: 'OBJECT', value: name }] }];
      written.push({ file: `ours_${name}.fits`, hdus });
    }
    const phys = Float64Array.from({ length: N }, (_, i) => -5 + i * 0.5);
    phys[0] = NaN;
    written.push({ file: 'ours_scaled16.fits', hdus: [{ data: phys, shape: [W, H], bscale: 0.5, bzero: -5, bitpix: 16 }] });
    written.push({ file: 'ours_scaled32.fits', hdus: [{ data: phys, shape: [W, H], bscale: 0.5, bzero: -5, bitpix: 32 }] });
    written.push({ file: 'ours_calexp.fits', hdus: calexpHdus().map((h, i) => (i === 0 ? { ...h, header: calexpHeader.filter((c) => c.key !== 'QUOTED') } : h)) });
    written.push({ file: 'ours_cube.fits', hdus: [{ data: Float64Array.from({ length: 60 }, (_, i) => i), shape: [5, 4, 3] }] });
    for (const w of written) await writeFits(join(dir, w.file), w.hdus);
    runRef('fits_ref.py', ['dumpmany', join(dir, 'dump'), ...written.map((w) => join(dir, w.file))]);
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('astropy sees the same values, types, shapes and header cards', async () => {
    for (const [k, w] of written.entries()) {
      const dumpDir = join(dir, 'dump', String(k));
      const ref = readManifest(dumpDir);
      expect(ref.error, w.file).toBeNull();
      const ours = await readFits(join(dir, w.file));
      expect(ref.hdus.length, w.file).toBe(ours.length);
      for (const rh of ref.hdus) {
        const oh = ours[rh.index];
        expect(rh.error, `${w.file} HDU ${rh.index}`).toBeNull();
        expect(headerDifferences(oh?.header.cards ?? [], rh.cards), `${w.file} HDU ${rh.index}`).toEqual([]);
        expect(rh.shape).toEqual(oh?.shape);
        if (rh.dtype === null) {
          expect(oh?.data ?? null).toBeNull();
          continue;
        }
        expect(oh?.data?.constructor.name, w.file).toBe(DTYPE_TO_CLASS[rh.dtype]);
        const refArr = readRefArray(dumpDir, rh) as unknown as ArrayLike<number>;
        expect(firstDifference(oh?.data as ArrayLike<number>, refArr), `${w.file} HDU ${rh.index}`).toBe(-1);
      }
    }
  });

  it('astropy reads our long CONTINUE string and HIERARCH card', () => {
    const k = written.findIndex((w) => w.file === 'ours_calexp.fits');
    const ref = readManifest(join(dir, 'dump', String(k)));
    const cards = ref.hdus[0]?.cards ?? [];
    const long = cards.find((c) => c[0] === 'LONGSTR');
    expect(long?.[1]).toBe(calexpHeader.find((c) => c.key === 'LONGSTR')?.value);
    expect(cards.find((c) => c[0] === 'ESO DET CHIP TEMP')?.[1]).toBe(-120.25);
    expect(cards.filter((c) => c[0] === 'HISTORY').length).toBe(3);
  });
});
