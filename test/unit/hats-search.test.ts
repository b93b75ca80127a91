import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHatsCatalog, type HatsCatalog, type HatsPartition } from '../../astro/hats/catalog.js';
import { readParquetSql, withDuck } from '../../astro/hats/duck.js';
import { partitionsForPixels, partitionsInCone } from '../../astro/hats/search.js';
import { pix2ang } from '../../astro/healpix/index.js';
import { generateObjectCatalog } from '../../astro/survey/objects.js';
import { HATS_DATA, HATS_DATA_SKIP, hasHatsData } from './ref/hats-python.js';
import { mulberry32 as rng } from '../../astro/random.js';

const tmp = await mkdtemp(join(tmpdir(), 'hats-search-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

interface Row {
  part: HatsPartition;
  ra: number;
  dec: number;
  h29: bigint;
}

async function allRows(cat: HatsCatalog): Promise<Row[]> {
  return withDuck(async (c) => {
    const out: Row[] = [];
    for (const p of cat.partitions) {
      const r = await c.runAndReadAll(
        `SELECT "${cat.raColumn}", "${cat.decColumn}", _healpix_29 FROM ${readParquetSql(p.files)}`,
      );
      for (const [ra, dec, h] of r.getRows()) out.push({ part: p, ra: Number(ra), dec: Number(dec), h29: BigInt(String(h)) });
    }
    return out;
  });
}

/** Independent great-circle distance (haversine), degrees. */
function distDeg(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const r = Math.PI / 180;
  const s = Math.sin(((dec2 - dec1) * r) / 2) ** 2 + Math.cos(dec1 * r) * Math.cos(dec2 * r) * Math.sin(((ra2 - ra1) * r) / 2) ** 2;
  return (2 * Math.asin(Math.min(1, Math.sqrt(s)))) / r;
}

/** Mulberry32: a small seeded generator for test cones. */

const key = (p: HatsPartition) => `${p.order}/${p.pixel}`;

function checkCones(cat: HatsCatalog, rows: Row[], cones: [number, number, number][]): { hits: number; returned: number } {
  let hits = 0;
  let returned = 0;
  for (const [ra, dec, radius] of cones) {
    const expected = new Set<string>();
    for (const row of rows) if (distDeg(ra, dec, row.ra, row.dec) <= radius) expected.add(key(row.part));
    const got = partitionsInCone(cat, ra, dec, radius);
    const gotKeys = new Set(got.map(key));
    for (const k of expected) expect(gotKeys.has(k), `cone (${ra}, ${dec}, ${radius}) misses partition ${k}`).toBe(true);
    // Not wildly over-inclusive: every returned pixel's centre is near the cone.
    for (const p of got) {
      const c = pix2ang(p.order, p.pixel);
      expect(distDeg(ra, dec, c.ra, c.dec)).toBeLessThanOrEqual(radius + 60 / 2 ** p.order);
    }
    // Sorted like the catalog.
    expect(got).toEqual(cat.partitions.filter((p) => gotKeys.has(key(p))));
    hits += expected.size;
    returned += got.length;
  }
  return { hits, returned };
}

function randomCones(rows: Row[], n: number, seed: number): [number, number, number][] {
  const r = rng(seed);
  const cones: [number, number, number][] = [];
  for (let i = 0; i < n; i++) {
    const radius = 10 ** (-2 + r() * 3.5); // 0.01 .. ~30 deg
    if (i % 3 === 0) {
      // anywhere on the sky
      cones.push([r() * 360, (Math.asin(2 * r() - 1) * 180) / Math.PI, radius]);
    } else {
      // centred next to a real row, so cones hit data
      const row = rows[Math.floor(r() * rows.length)]!;
      cones.push([(row.ra + (r() - 0.5) * radius + 360) % 360, Math.max(-90, Math.min(90, row.dec + (r() - 0.5) * radius)), radius]);
    }
  }
  return cones;
}

/** Brute-force pixel overlap through order-29 index ranges (BigInt). */
function overlapsBrute(p: HatsPartition, order: number, pixels: number[]): boolean {
  const lo1 = BigInt(p.pixel) << BigInt(2 * (29 - p.order));
  const hi1 = BigInt(p.pixel + 1) << BigInt(2 * (29 - p.order));
  return pixels.some((q) => {
    const lo2 = BigInt(q) << BigInt(2 * (29 - order));
    const hi2 = BigInt(q + 1) << BigInt(2 * (29 - order));
    return lo1 < hi2 && lo2 < hi1;
  });
}

function checkPixels(cat: HatsCatalog, rows: Row[], seed: number): void {
  const r = rng(seed);
  // Each row's pixel at orders 0..7, computed once (BigInt shifts are slow).
  const rowPix = Array.from({ length: 8 }, (_, k) => rows.map((row) => Number(row.h29 >> BigInt(2 * (29 - k)))));
  for (let t = 0; t < 60; t++) {
    const order = Math.floor(r() * 8);
    const pixels: number[] = [];
    const npix = 12 * 4 ** order;
    // half of the pixels from rows (so they hit), half random
    for (let i = 0; i < 1 + Math.floor(r() * 5); i++) {
      pixels.push(i % 2 === 0 ? rowPix[order]![Math.floor(r() * rows.length)]! : Math.floor(r() * npix));
    }
    const got = partitionsForPixels(cat, order, pixels);
    const expected = cat.partitions.filter((p) => overlapsBrute(p, order, pixels));
    expect(got.map(key)).toEqual(expected.map(key));
    // Every row falling in one of the pixels lives in a returned partition.
    const set = new Set(pixels);
    const gotKeys = new Set(got.map(key));
    const pix = rowPix[order]!;
    const missed = rows.filter((row, i) => set.has(pix[i]!) && !gotKeys.has(key(row.part)));
    expect(missed.length).toBe(0);
  }
}

describe.skipIf(!hasHatsData)(`spatial partition selection on real catalogs (${HATS_DATA_SKIP})`, () => {
  for (const rel of ['hats/tests/data/small_sky_o1_collection/small_sky_order1', 'lsdb/tests/data/small_sky_source', 'lsdb/tests/data/small_sky_order3_source']) {
    it(`${rel}: partitionsInCone vs brute force over every row`, async () => {
      const cat = await openHatsCatalog(join(HATS_DATA, rel), { margin: false });
      const rows = await allRows(cat);
      const { hits } = checkCones(cat, rows, randomCones(rows, 150, 7));
      expect(hits).toBeGreaterThan(100); // the cones really hit data
    });
    it(`${rel}: partitionsForPixels vs brute force`, async () => {
      const cat = await openHatsCatalog(join(HATS_DATA, rel), { margin: false });
      checkPixels(cat, await allRows(cat), 11);
    });
  }

  it('edge cases: whole sky, zero radius, bad input', async () => {
    const cat = await openHatsCatalog(join(HATS_DATA, 'lsdb/tests/data/small_sky_order3_source'), { margin: false });
    expect(partitionsInCone(cat, 0, 0, 180)).toEqual(cat.partitions);
    const rows = await allRows(cat);
    const row = rows[0]!;
    expect(partitionsInCone(cat, row.ra, row.dec, 0).map(key)).toContain(key(row.part));
    expect(() => partitionsInCone(cat, 0, 0, -1)).toThrow(RangeError);
    expect(() => partitionsForPixels(cat, 30, [0])).toThrow(RangeError);
    expect(partitionsForPixels(cat, 0, [])).toEqual([]);
  });
});

describe('spatial partition selection on a generated multi-order catalog', () => {
  let cat: HatsCatalog;
  let rows: Row[];
  beforeAll(async () => {
    cat = await generateObjectCatalog(join(tmp, 'gen'), {
      rows: 20_000,
      seed: 5,
      maxRowsPerPartition: 400,
      region: { raMin: 340, raMax: 25, decMin: -30, decMax: 20 },
    });
    rows = await allRows(cat);
  });

  it('has partitions at several orders, across RA = 0', () => {
    expect(new Set(cat.partitions.map((p) => p.order)).size).toBeGreaterThanOrEqual(2);
    expect(rows.length).toBe(20_000);
  });

  it('partitionsInCone vs brute force (incl. cones across RA = 0)', () => {
    const cones = randomCones(rows, 150, 3);
    cones.push([0, 0, 2], [359.5, -5, 1.5], [0.2, 10, 0.3]);
    const { hits, returned } = checkCones(cat, rows, cones);
    expect(hits).toBeGreaterThan(100);
    expect(returned).toBeGreaterThanOrEqual(hits);
  });

  it('partitionsForPixels vs brute force', () => {
    checkPixels(cat, rows, 13);
  });
});
