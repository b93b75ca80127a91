import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readParquetSql, withDuck } from '../../astro/hats/index.js';
import { generateObjectCatalog } from '../../astro/survey/objects.js';
import {
  compileForcedSourceOptions,
  generateForcedSources,
  variabilityDeltaMag,
  type TruthRow,
} from '../../astro/survey/lightcurves.js';

interface Row {
  objectId: bigint;
  ra: number;
  dec: number;
  mjd: number;
  band: string;
  flux: number;
  fluxErr: number;
  hp: bigint;
  file: string;
}

async function readAll(files: string[]): Promise<Row[]> {
  return withDuck(async (conn) => {
    const r = await conn.runAndReadAll(
      `SELECT objectId, ra, dec, mjd, band, flux, fluxErr, _healpix_29, filename FROM ${readParquetSql(files, { filename: true })} ORDER BY objectId, mjd`,
    );
    return r.getRows().map(([objectId, ra, dec, mjd, band, flux, fluxErr, hp, file]) => ({
      objectId: objectId as bigint,
      ra: ra as number,
      dec: dec as number,
      mjd: mjd as number,
      band: band as string,
      flux: flux as number,
      fluxErr: fluxErr as number,
      hp: hp as bigint,
      file: file as string,
    }));
  });
}

describe('generateForcedSources', () => {
  let dir: string;
  let rows: Row[];
  let truth: TruthRow[];
  let partitions: Array<{ order: number; pixel: number; files: string[] }>;
  const years = 4;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'survey-lc-'));
    const out = await generateForcedSources(join(dir, 'fs'), {
      objects: 200,
      region: { raMin: 359, raMax: 1, decMin: -1, decMax: 1 },
      seed: 7,
      years,
      varFraction: 0.5,
      maxRowsPerPartition: 10_000,
    });
    truth = out.truth;
    partitions = out.catalog.partitions;
    rows = await readAll(partitions.flatMap((p) => p.files));
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a HATS source catalog partitioned by object position, with a truth table', async () => {
    expect(partitions.length).toBeGreaterThan(1);
    expect(truth.length).toBe(200);
    expect(rows.length).toBe(truth.reduce((s, t) => s + t.nObs, 0));
    // every row sits in the partition of its file, and an object's rows never split
    const fileOfObject = new Map<bigint, string>();
    const partitionOfFile = new Map(partitions.flatMap((p) => p.files.map((f) => [f, p] as const)));
    for (const r of rows) {
      const p = partitionOfFile.get(r.file)!;
      expect(r.hp >> BigInt(2 * (29 - p.order))).toBe(BigInt(p.pixel));
      const f = fileOfObject.get(r.objectId) ?? r.file;
      expect(f).toBe(r.file);
      fileOfObject.set(r.objectId, f);
    }
    const t = await withDuck(async (conn) =>
      (await conn.runAndReadAll(`SELECT count(*), count(DISTINCT objectId) FROM read_parquet('${join(dir, 'fs', 'truth.parquet')}')`)).getRows(),
    );
    expect(t[0]).toEqual([200n, 200n]);
  });

  it('has survey-like cadence: 60-300 visits, seasons, 1-3 visits a night in different bands', () => {
    const byObject = new Map<bigint, Row[]>();
    for (const r of rows) {
      const list = byObject.get(r.objectId);
      if (list) list.push(r);
      else byObject.set(r.objectId, [r]);
    }
    for (const [, rs] of byObject) {
      expect(rs.length).toBeGreaterThanOrEqual(60);
      expect(rs.length).toBeLessThanOrEqual(300);
      const span = rs.at(-1)!.mjd - rs[0]!.mjd;
      expect(span).toBeLessThanOrEqual(years * 365.25);
      const nights = new Map<number, string[]>();
      for (const r of rs) {
        const night = Math.floor(r.mjd);
        const list = nights.get(night);
        if (list) list.push(r.band);
        else nights.set(night, [r.band]);
      }
      for (const bands of nights.values()) {
        expect(bands.length).toBeLessThanOrEqual(3);
        expect(new Set(bands).size).toBe(bands.length);
      }
      // a seasonal gap of > 3 months between consecutive visits at least once
      let maxGap = 0;
      for (let i = 1; i < rs.length; i++) maxGap = Math.max(maxGap, rs[i]!.mjd - rs[i - 1]!.mjd);
      expect(maxGap).toBeGreaterThan(90);
    }
    const bands = new Set(rows.map((r) => r.band));
    expect([...bands].sort()).toEqual(['g', 'i', 'r', 'u', 'y', 'z']);
  });

  it('draws the requested variability classes with their period ranges', () => {
    const count = (t: string) => truth.filter((x) => x.type === t).length;
    expect(count('nonvariable')).toBeGreaterThan(60);
    for (const t of ['sinusoidal', 'rrlyrae', 'eclipsing']) expect(count(t)).toBeGreaterThan(12);
    for (const x of truth) {
      if (x.type === 'rrlyrae') expect(x.period! >= 0.3 && x.period! <= 0.9).toBe(true);
      if (x.type === 'eclipsing') expect(x.period! >= 0.5 && x.period! <= 10).toBe(true);
      if (x.type === 'nonvariable') expect([x.period, x.amplitude, x.snr]).toEqual([null, 0, 0]);
      else expect(x.snr).toBeGreaterThan(0);
    }
  });

  it('flux errors describe the scatter of constant stars (chi2/dof ~ 1)', () => {
    const constant = new Set(truth.filter((t) => t.type === 'nonvariable').map((t) => t.objectId));
    let chi2 = 0;
    let dof = 0;
    const groups = new Map<string, Row[]>();
    for (const r of rows) {
      if (!constant.has(r.objectId)) continue;
      const k = `${r.objectId}/${r.band}`;
      const list = groups.get(k);
      if (list) list.push(r);
      else groups.set(k, [r]);
    }
    for (const g of groups.values()) {
      if (g.length < 3) continue;
      const w = g.map((r) => 1 / r.fluxErr ** 2);
      const mean = g.reduce((s, r, i) => s + r.flux * w[i]!, 0) / w.reduce((a, b) => a + b, 0);
      chi2 += g.reduce((s, r) => s + ((r.flux - mean) / r.fluxErr) ** 2, 0);
      dof += g.length - 1;
    }
    expect(dof).toBeGreaterThan(10_000);
    expect(chi2 / dof).toBeGreaterThan(0.95);
    expect(chi2 / dof).toBeLessThan(1.05);
  });

  it('is deterministic per seed', async () => {
    const again = await generateForcedSources(join(dir, 'fs2'), {
      objects: 200,
      region: { raMin: 359, raMax: 1, decMin: -1, decMax: 1 },
      seed: 7,
      years,
      varFraction: 0.5,
      maxRowsPerPartition: 10_000,
    });
    const rows2 = await readAll(again.catalog.partitions.flatMap((p) => p.files));
    expect(rows2.map((r) => [r.objectId, r.mjd, r.band, r.flux])).toEqual(rows.map((r) => [r.objectId, r.mjd, r.band, r.flux]));
    const other = await generateForcedSources(join(dir, 'fs3'), { objects: 20, seed: 8, years: 2, epochs: [60, 80] });
    expect(other.truth.map((t) => t.nObs).every((n) => n >= 60 && n <= 80)).toBe(true);
  }, 120_000);

  it('takes objects from an Object HATS catalog', async () => {
    const objects = await generateObjectCatalog(join(dir, 'obj'), { rows: 50, seed: 3, region: { ra: 10, dec: -30, radiusDeg: 0.5 } });
    const out = await generateForcedSources(join(dir, 'fs-obj'), { objects: { objectCatalog: objects.root }, seed: 1, years: 2, epochs: [60, 70] });
    expect(out.truth.length).toBe(50);
    const got = await readAll(out.catalog.partitions.flatMap((p) => p.files));
    const ids = await withDuck(async (conn) =>
      (await conn.runAndReadAll(`SELECT objectId FROM ${readParquetSql(objects.partitions.flatMap((p) => p.files))} ORDER BY 1`))
        .getRows()
        .map((r) => r[0] as bigint),
    );
    expect([...new Set(got.map((r) => r.objectId))].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
  }, 120_000);

  it('light-curve shapes: RR Lyrae rise fast and decline slowly; binaries have two eclipses', () => {
    const rr = { type: 'rrlyrae' as const, period: 0.5, amplitude: 1, phase: 0, depth2: 0, width: 0 };
    let rising = 0;
    const n = 1000;
    for (let i = 0; i < n; i++) if (variabilityDeltaMag(rr, ((i + 1) / n) * 0.5) < variabilityDeltaMag(rr, (i / n) * 0.5)) rising++;
    expect(rising / n).toBeCloseTo(0.15, 2);
    const eb = { type: 'eclipsing' as const, period: 2, amplitude: 0.8, phase: 0, depth2: 0.3, width: 0.05 };
    expect(variabilityDeltaMag(eb, 0)).toBeCloseTo(0.8, 12);
    expect(variabilityDeltaMag(eb, 1)).toBeCloseTo(0.3, 12);
    expect(variabilityDeltaMag(eb, 0.5)).toBe(0);
  });

  it('rejects bad options', () => {
    expect(() => compileForcedSourceOptions({ objects: 1, seed: 1, epochs: [10, 5] })).toThrow(/epochs/);
    expect(() => compileForcedSourceOptions({ objects: 1, seed: 1, varFraction: 2 })).toThrow(/varFraction/);
    expect(() => compileForcedSourceOptions({ objects: -1, seed: 1 })).toThrow(/objects/);
  });
});
