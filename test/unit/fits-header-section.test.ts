/** Header card parsing/formatting rules, and readFitsSection vs a full read. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FitsHeader,
  FitsSectionError,
  FitsHduNotFoundError,
  FitsFormatError,
  FitsAbortError,
  encodeHeader,
  formatCard,
  parseHeaderCards,
  parseFits,
  readFits,
  readFitsSection,
  writeFits,
} from '../../astro/fits/index.js';
import { ASTROPY_FITS_DATA } from './ref/fits-python.js';
import { existsSync } from 'node:fs';

describe('header cards', () => {
  it('formats fixed-format values in the standard columns', () => {
    const fixed = (key: string, v: string, comment = ''): string => `${key.padEnd(8)}= ${v.padStart(20)}${comment === '' ? '' : ` / ${comment}`}`.padEnd(80);
    expect(formatCard({ key: 'NAXIS', value: 2, comment: 'axes' })[0]).toBe(fixed('NAXIS', '2', 'axes'));
    expect(formatCard({ key: 'SIMPLE', value: true })[0]).toBe(fixed('SIMPLE', 'T'));
    expect(formatCard({ key: 'OBJECT', value: 'M31' })[0]).toBe("OBJECT  = 'M31     '".padEnd(80));
    expect(formatCard({ key: 'X', value: 1.5e-20 })[0]).toBe(fixed('X', '1.5E-20'));
    // JS cannot tell 3.0 from 3: integral numbers are written as integers
    expect(formatCard({ key: 'X', value: 3.0 })[0]).toBe(fixed('X', '3'));
    expect(formatCard({ key: 'Y', value: 0.1 })[0]).toBe(fixed('Y', '0.1'));
    expect(formatCard({ key: 'Z', value: -1e300 })[0]).toBe(fixed('Z', '-1.0E+300'));
    expect(formatCard({ key: 'HISTORY', value: 'did a thing' })[0]).toBe('HISTORY did a thing'.padEnd(80));
    expect(formatCard({ key: 'ESO TEL AIRM START', value: 1.25 })[0]).toBe('HIERARCH ESO TEL AIRM START = 1.25'.padEnd(80));
    expect(formatCard({ key: 'A VERY LONG HIERARCH KEYWORD NAME THAT GOES ON AND ON', value: 12345 })[0]).toBe('HIERARCH A VERY LONG HIERARCH KEYWORD NAME THAT GOES ON AND ON = 12345'.padEnd(80));
  });

  it('parses values, comments, quotes, D exponents and undefined values', () => {
    const text = [
      "A       = 'it''s ok '           / quoted",
      'B       =               1.0D+3 / fortran exponent',
      'C       =                      / undefined',
      'D       =  9223372036854775807',
      'E       = (1.0, 2.0)',
      "F       = ''",
      'COMMENT   free text',
      '        blank-key commentary',
      'END',
    ]
      .map((l) => l.padEnd(80))
      .join('');
    const { cards, endFound } = parseHeaderCards(text);
    expect(endFound).toBe(true);
    const h = new FitsHeader(cards);
    expect(h.get('A')).toBe("it's ok");
    expect(h.getComment('A')).toBe('quoted');
    expect(h.getNumber('B')).toBe(1000);
    expect(h.get('C')).toBeNull();
    expect(h.get('D')).toBe(9223372036854775807n);
    expect(h.get('E')).toBe('(1.0, 2.0)');
    expect(h.get('F')).toBe('');
    expect(h.getAll('COMMENT')).toEqual(['  free text']);
    expect(h.getAll('')).toEqual(['blank-key commentary']);
  });

  it('writes and reads long strings through CONTINUE cards, including quotes and long comments', () => {
    const long = "O'Neil ".repeat(40) + '& more';
    const cards = formatCard({ key: 'LONG', value: long, comment: 'c'.repeat(150) });
    expect(cards.length).toBeGreaterThan(3);
    expect(cards.every((c) => c.length === 80)).toBe(true);
    expect(cards[1]?.startsWith("CONTINUE  '")).toBe(true);
    const { cards: back } = parseHeaderCards(cards.join('') + 'END'.padEnd(80));
    expect(back).toHaveLength(1);
    expect(back[0]?.value).toBe(long);
    expect(back[0]?.comment?.replace(/ /g, '')).toBe('c'.repeat(150));
  });

  it('FitsHeader set/get/delete keep order and first-occurrence semantics', () => {
    const h = new FitsHeader([{ key: 'a', value: 1 }, { key: 'B', value: 'x' }, { key: 'A', value: 2 }]);
    expect(h.get('A')).toBe(1);
    h.set('B', 'y');
    h.set('NEW', 3.5, 'added');
    h.set('HISTORY', 'h1');
    expect(h.keys()).toEqual(['A', 'B', 'A', 'NEW', 'HISTORY']);
    expect(h.getString('B')).toBe('y');
    expect(h.delete('A')).toBe(2);
    expect(h.has('A')).toBe(false);
    expect(encodeHeader(h.cards).length % 2880).toBe(0);
  });

  it('rejects malformed files with the path in the message', async () => {
    await expect(parseFits(new Uint8Array(2880).fill(32))).rejects.toBeInstanceOf(FitsFormatError);
    const noEnd = Buffer.from('SIMPLE  =                    T'.padEnd(80) + ''.padEnd(2800), 'latin1');
    await expect(parseFits(noEnd, {}, 'mem.fits')).rejects.toThrow(/END.*mem\.fits/);
  });
});

describe('readFitsSection', () => {
  let dir = '';
  const W = 97;
  const H = 61;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fits-section-'));
    const f = Float32Array.from({ length: W * H }, (_, i) => Math.sin(i) * 100);
    const s = Int16Array.from({ length: W * H }, (_, i) => (i * 37) % 30000);
    const d = Float64Array.from({ length: W * H * 2 }, (_, i) => i / 7);
    await writeFits(join(dir, 'mef.fits'), [
      { data: null },
      { name: 'SCI', data: f, shape: [W, H] },
      { name: 'RAW', data: s, shape: [W, H], header: [{ key: 'BSCALE', value: 0.5 }, { key: 'BZERO', value: 10 }] },
      { name: 'CUBE', data: d, shape: [W, H, 2] },
    ]);
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  const slice = (data: ArrayLike<number>, width: number, x0: number, y0: number, w: number, h: number): number[] => {
    const out: number[] = [];
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) out.push(data[y * width + x] as number);
    return out;
  };

  it.each([
    ['SCI', { x0: 0, y0: 0, width: W, height: H }],
    ['SCI', { x0: 10, y0: 5, width: 17, height: 23 }],
    ['RAW', { x0: 96, y0: 60, width: 1, height: 1 }],
    ['RAW', { x0: 40, y0: 0, width: 57, height: 61 }],
  ] as const)('%s %o equals the slice of a full read', async (hdu, sec) => {
    const [full] = await readFits(join(dir, 'mef.fits'), { hdus: [hdu] });
    const part = await readFitsSection(join(dir, 'mef.fits'), hdu, sec);
    expect(part.width).toBe(sec.width);
    expect(part.height).toBe(sec.height);
    expect(part.data).toBeInstanceOf(Float32Array);
    expect(Array.from(part.data)).toEqual(slice(full?.data as Float32Array, W, sec.x0, sec.y0, sec.width, sec.height));
    expect(part.header.getString('EXTNAME')).toBe(hdu);
  });

  it('reads a plane of a cube and by HDU index', async () => {
    const [full] = await readFits(join(dir, 'mef.fits'), { hdus: [3] });
    const part = await readFitsSection(join(dir, 'mef.fits'), 3, { x0: 3, y0: 4, width: 5, height: 6 }, { plane: 1 });
    expect(part.data).toBeInstanceOf(Float64Array);
    expect(Array.from(part.data)).toEqual(slice((full?.data as Float64Array).subarray(W * H), W, 3, 4, 5, 6));
  });

  it('honours an AbortSignal and reports progress', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(readFits(join(dir, 'mef.fits'), { signal: ac.signal })).rejects.toBeInstanceOf(FitsAbortError);
    const seen: [number, number][] = [];
    await readFits(join(dir, 'mef.fits'), { onProgress: (d, t) => seen.push([d, t]) });
    expect(seen.length).toBeGreaterThan(0);
    const last = seen[seen.length - 1] as [number, number];
    expect(last[0]).toBe(last[1]);
  });

  it('refuses sections outside the image and unknown HDUs', async () => {
    const p = join(dir, 'mef.fits');
    await expect(readFitsSection(p, 'SCI', { x0: 90, y0: 0, width: 8, height: 1 })).rejects.toBeInstanceOf(FitsSectionError);
    await expect(readFitsSection(p, 'SCI', { x0: -1, y0: 0, width: 2, height: 1 })).rejects.toThrow(/outside/);
    await expect(readFitsSection(p, 'NOPE', { x0: 0, y0: 0, width: 1, height: 1 })).rejects.toBeInstanceOf(FitsHduNotFoundError);
    await expect(readFitsSection(p, 0, { x0: 0, y0: 0, width: 1, height: 1 })).rejects.toThrow(/outside/);
  });

  it.skipIf(!existsSync(join(ASTROPY_FITS_DATA, 'comp.fits')))('works on a tile-compressed image (astropy comp.fits)', async () => {
    const p = join(ASTROPY_FITS_DATA, 'comp.fits');
    const [, full] = await readFits(p);
    const part = await readFitsSection(p, 1, { x0: 100, y0: 200, width: 30, height: 40 });
    expect(Array.from(part.data)).toEqual(slice(Float32Array.from(full?.data as Int16Array), 440, 100, 200, 30, 40));
  });
});
