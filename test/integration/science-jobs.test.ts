/**
 * `periodogram` and `crossmatch` jobs end to end on a real nats-server with a
 * coordinator and two workers, checked against the astro kernels run directly
 * on the same rows, against the generator's truth, and against `ubatch run`
 * (ops/local-run.ts) of the same spec. Bad input is rejected at submit with
 * the spec field it concerns.
 *
 * The periodogram kernel runs on worker threads loaded from dist/ (run
 * `npx tsc -p tsconfig.json` first, as `make test` does); without a build the
 * executor falls back to running it in-process and the results are the same.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossmatch, hats, lombscargle, survey } from '../../astro/index.js';
import { runLocally } from '../../ops/local-run.js';
import { type JobSpec, type UbatchClient } from '../../protocol/index.js';
import { closeIdleThreads } from '../../worker/executors/thread-pool.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { expectApiError } from '../helpers/expect.js';

type Row = Record<string, unknown>;

async function query(sql: string): Promise<Row[]> {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowObjects() as Row[];
  } finally {
    c.closeSync();
    inst.closeSync();
  }
}

const fileList = (files: string[]) => `[${files.map((f) => `'${f}'`).join(', ')}]`;

/** Rows of a job's HATS output, in a canonical order. */
async function outputRows(dir: string, orderBy: string): Promise<Row[]> {
  return query(`SELECT * FROM read_parquet('${dir}/dataset/**/*.parquet', hive_partitioning = false) ORDER BY ${orderBy}`);
}


/** the job succeeds and its HATS output has the same leaves (order/pixel, rows) as `packedOut`, row for row */
async function expectSameLeaves(c: UbatchClient, jobId: string, packedOut: string, out: string): Promise<void> {
  const info = await c.wait(jobId, { timeoutMs: 120_000 });
  expect(info.state, info.error).toBe('succeeded');
  const packed = await hats.openHatsCatalog(packedOut);
  const unpacked = await hats.openHatsCatalog(out);
  expect(unpacked.partitions.map((p) => `${p.order}/${p.pixel}:${p.rows}`)).toEqual(packed.partitions.map((p) => `${p.order}/${p.pixel}:${p.rows}`));
  for (const p of packed.partitions) {
    const q = unpacked.partitions.find((x) => x.order === p.order && x.pixel === p.pixel)!;
    expect(await query(`SELECT * FROM read_parquet(${fileList(q.files)})`)).toEqual(await query(`SELECT * FROM read_parquet(${fileList(p.files)})`));
  }
}

describe('science jobs on the mesh', () => {
  let s: TestStack;
  let c: UbatchClient;
  beforeAll(async () => {
    s = await startStack({ workers: 2 });
    c = await s.client('alice');
  });
  afterAll(async () => {
    await s?.stop();
    await closeIdleThreads();
  });

  describe('periodogram', () => {
    let fs: string;
    let truth: survey.TruthRow[];
    // auto spacing (4 samples per peak over each curve's baseline) between 0.02 and 3 cycles/day
    const freq = { min: 0.02, max: 3, samples_per_peak: 4 };
    const gridOf = (t: ArrayLike<number>) => lombscargle.autoFrequencyGrid(t, { minimumFrequency: 0.02, maximumFrequency: 3, samplesPerPeak: 4 });
    let spec: JobSpec;
    let meshOut: string;

    beforeAll(async () => {
      fs = join(s.dir, 'forced');
      const gen = await survey.generateForcedSources(fs, { objects: 200, seed: 21, bands: ['g', 'r', 'i'], years: 2, epochs: [80, 160], varFraction: 0.35, maxRowsPerPartition: 7000 });
      truth = gen.truth;
      expect(gen.catalog.partitions.length).toBeGreaterThan(2);
      meshOut = join(s.dir, 'periods');
      spec = { kind: 'periodogram', name: 'periods', input: { catalog: fs }, params: { freq, method: 'fast', top_n: 3, multiband: true, min_obs: 10 }, output: { path: meshOut } };
    });

    it('per-band best periods equal lombScargleBatch on the same rows; the output is a HATS catalog; truth is recovered', async () => {
      const sub = await c.submit(spec);
      const cat = await hats.openHatsCatalog(fs, { margin: false });
      // small partitions are packed into fewer tasks (one per live slot here), one output leaf per input partition
      expect(sub.tasks).toBeLessThan(cat.partitions.length);
      const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
      expect(info.state, info.error).toBe('succeeded');

      const outCat = await hats.openHatsCatalog(meshOut);
      expect(outCat.partitions.map((p) => `${p.order}/${p.pixel}`)).toEqual(cat.partitions.map((p) => `${p.order}/${p.pixel}`));
      const got = await outputRows(meshOut, 'objectId, band');
      expect(outCat.totalRows ?? got.length).toBe(got.length);

      // the kernel directly, on the same rows in the same order
      const files = cat.partitions.flatMap((p) => p.files);
      const rows = await query(`SELECT objectId, band, mjd, flux, fluxErr FROM read_parquet(${fileList(files)}) ORDER BY objectId, band, mjd, flux, fluxErr`);
      const curves = new Map<string, { id: bigint; band: string; t: number[]; y: number[]; dy: number[] }>();
      for (const r of rows) {
        const key = `${String(r.objectId)}/${String(r.band)}`;
        let lc = curves.get(key);
        if (!lc) curves.set(key, (lc = { id: r.objectId as bigint, band: String(r.band), t: [], y: [], dy: [] }));
        lc.t.push(r.mjd as number);
        lc.y.push(r.flux as number);
        lc.dy.push(r.fluxErr as number);
      }
      const usable = [...curves.values()].filter((lc) => lc.t.length >= 10);
      const lcs = usable.map((lc) => ({ t: Float64Array.from(lc.t), y: Float64Array.from(lc.y), dy: Float64Array.from(lc.dy) }));
      const direct = lombscargle.lombScargleBatch(lcs, (lc) => gridOf(lc.t), { method: 'fast', topN: 3 });
      expect(direct.length).toBe(usable.length);
      const perBand = got.filter((r) => r.band !== 'multiband');
      expect(perBand.length).toBe(usable.length);
      const byKey = new Map(perBand.map((r) => [`${String(r.objectId)}/${String(r.band)}`, r]));
      for (const d of direct) {
        const lc = usable[d.index]!;
        const r = byKey.get(`${lc.id}/${lc.band}`);
        expect(r, `${lc.id}/${lc.band}`).toBeDefined();
        expect(r!.best_period).toBe(d.bestPeriod);
        expect(r!.best_frequency).toBe(d.bestFrequency);
        expect(r!.power).toBe(d.bestPower);
        expect(r!.fap).toBe(d.fap);
        expect(r!.n_obs).toBe(d.nObs);
        expect((r!.peak_periods as { items: number[] }).items).toEqual(d.peaks.map((p) => p.period));
      }

      // the pooled multiband row of a few objects, against multibandLombScargle directly
      const multi = got.filter((r) => r.band === 'multiband');
      expect(multi.length).toBe(200);
      for (const r of multi.slice(0, 10)) {
        const bands = usable.filter((lc) => lc.id === r.objectId).map((lc) => ({ band: lc.band, t: Float64Array.from(lc.t), y: Float64Array.from(lc.y), dy: Float64Array.from(lc.dy) }));
        const allT = bands.flatMap((b) => [...b.t]);
        const grid = gridOf(allT);
        const mb = lombscargle.multibandLombScargle(bands, grid, { method: 'fast' });
        let best = 0;
        for (let k = 1; k < mb.combined.length; k++) if (mb.combined[k]! > mb.combined[best]!) best = k;
        expect(r.best_frequency).toBe(grid.fmin + grid.df * best);
        expect(r.fap).toBeNull();
      }

      // truth: high-S/N periodic objects with periods inside the grid are found (eclipsing binaries often at P/2)
      const bestOf = new Map(multi.map((r) => [String(r.objectId), r.best_period as number]));
      const periodic = truth.filter((t) => t.period !== null && t.snr > 30 && t.period > 0.4 && t.period < 40);
      expect(periodic.length).toBeGreaterThan(10);
      const near = (a: number, b: number) => Math.abs(a - b) / b < 0.01;
      const found = periodic.filter((t) => {
        const p = bestOf.get(String(t.objectId));
        return p !== undefined && (near(p, t.period!) || (t.type === 'eclipsing' && near(p, t.period! / 2)));
      });
      expect(found.length / periodic.length).toBeGreaterThan(0.75);

      const res = await c.results(sub.jobId);
      expect(res.files.length).toBe(cat.partitions.length);
      // the kernel ran on worker threads when the build is there (see thread-pool.ts), in-process otherwise
      const modes = new Set(res.summaries.map((x) => (x.summary as { mode: string }).mode));
      expect(modes).toEqual(new Set([existsSync(join(process.cwd(), 'dist/worker/executors/periodogram-thread.js')) ? 'threads' : 'in-process']));
    });

    it('`ubatch run` of the same spec writes the same rows', async () => {
      const localOut = join(s.dir, 'periods-local');
      const r = await runLocally(spec, { output: localOut, parallel: 2 });
      expect(r.state, r.error).toBe('succeeded');
      const local = await outputRows(localOut, 'objectId, band');
      const mesh = await outputRows(meshOut, 'objectId, band');
      expect(local.length).toBeGreaterThan(500);
      expect(local).toEqual(mesh);
      expect((await hats.openHatsCatalog(localOut)).partitions.length).toBe((await hats.openHatsCatalog(fs, { margin: false })).partitions.length);
    });

    it('one task per partition (params.partitions_per_task: 1) writes the same leaves, row for row, as the packed tasks', async () => {
      const out = join(s.dir, 'periods-unpacked');
      const cat = await hats.openHatsCatalog(fs, { margin: false });
      const sub = await c.submit({ ...spec, params: { ...spec.params, partitions_per_task: 1 }, output: { path: out } });
      expect(sub.tasks).toBe(cat.partitions.length);
      await expectSameLeaves(c, sub.jobId, meshOut, out);
      await expectApiError(c.submit({ ...spec, params: { ...spec.params, partitions_per_task: 0 } }), 'invalid_spec', '/spec/params/partitions_per_task');
    });

    it('save_periodograms writes every full periodogram (float32, one Parquet per partition) equal to the kernel; an absurd size is refused at submit', async () => {
      const grid = { fmin: 0.05, df: (2 - 0.05) / 2999, n: 3000 };
      const out = join(s.dir, 'periods-saved');
      const saveSpec: JobSpec = { kind: 'periodogram', input: { catalog: fs }, params: { freq: { min: 0.05, max: 2, n: 3000 }, bands: ['g', 'r'], multiband: true, save_periodograms: true }, output: { path: out } };
      const sub = await c.submit(saveSpec);
      const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
      expect(info.state, info.error).toBe('succeeded');
      const cat = await hats.openHatsCatalog(fs, { margin: false });
      // one file per input partition, at periodograms/Norder=K/Dir=D/Npix=N.parquet, beside the HATS catalog
      for (const p of cat.partitions) expect(existsSync(join(out, 'periodograms', `Norder=${p.order}`, `Dir=${Math.floor(p.pixel / 10_000) * 10_000}`, `Npix=${p.pixel}.parquet`))).toBe(true);
      const saved = await query(`SELECT objectId, band, fmin, df, n_freq, power FROM read_parquet('${out}/periodograms/**/*.parquet', hive_partitioning = false) ORDER BY objectId, band`);
      const summary = await outputRows(out, 'objectId, band');
      // one periodogram per summary row (per band and the pooled multiband row), same keys
      expect(saved.map((r) => `${String(r.objectId)}/${String(r.band)}`)).toEqual(summary.map((r) => `${String(r.objectId)}/${String(r.band)}`));
      expect(saved.every((r) => r.fmin === grid.fmin && r.n_freq === grid.n && (r.power as { items: number[] }).items.length === grid.n)).toBe(true);
      // the saved powers are the kernel's, rounded to float32; their maximum is the summary's best power
      const files = cat.partitions.flatMap((p) => p.files);
      const rows = await query(`SELECT objectId, band, mjd, flux, fluxErr FROM read_parquet(${fileList(files)}) ORDER BY objectId, band, mjd, flux, fluxErr`);
      const checked = saved.filter((r) => r.band !== 'multiband').slice(0, 6);
      for (const r of checked) {
        const mine = rows.filter((x) => x.objectId === r.objectId && x.band === r.band);
        const lc = { t: Float64Array.from(mine, (x) => x.mjd as number), y: Float64Array.from(mine, (x) => x.flux as number), dy: Float64Array.from(mine, (x) => x.fluxErr as number) };
        const [direct] = lombscargle.lombScargleBatch([lc], grid, { method: 'fast', topN: 3, onPower: (_i, power) => expect((r.power as { items: number[] }).items).toEqual(Array.from(power, Math.fround)) });
        const row = summary.find((x) => x.objectId === r.objectId && x.band === r.band)!;
        expect(row.power).toBe(direct!.bestPower);
        expect(Math.max(...(r.power as { items: number[] }).items)).toBe(Math.fround(direct!.bestPower));
      }
      expect(checked.length).toBe(6);
      // the size guard: a limit below the estimate is refused before anything runs, naming the parameter
      await expectApiError(c.submit({ ...saveSpec, params: { ...saveSpec.params, periodograms_max_mb: 0.5 } }), 'invalid_spec', '/spec/params/save_periodograms', /periodograms_max_mb/);
      await expectApiError(c.submit({ ...saveSpec, params: { ...saveSpec.params, save_periodograms: 'yes' } }), 'invalid_spec', '/spec/params/save_periodograms');
    });

    it('a table without the time column is rejected at submit, naming the column', async () => {
      const bad = join(s.dir, 'no-mjd.parquet');
      const files = (await hats.openHatsCatalog(fs, { margin: false })).partitions.flatMap((p) => p.files);
      await query(`COPY (SELECT objectId, band, mjd AS t, flux, fluxErr FROM read_parquet(${fileList(files)})) TO '${bad}' (FORMAT parquet)`);
      await expectApiError(c.submit({ kind: 'periodogram', input: { catalog: bad }, output: { path: join(s.dir, 'x') } }), 'invalid_input', '/spec/input/catalog', /"mjd"/);
      // with the column named, it runs
      const sub = await c.submit({ kind: 'periodogram', input: { catalog: bad }, params: { columns: { time: 't' }, bands: ['r'], freq: { min: 0.05, max: 2, n: 2000 } }, output: { path: join(s.dir, 'renamed') } });
      expect(sub.tasks).toBe(1);
      const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
      expect(info.state, info.error).toBe('succeeded');
      const rows = await query(`SELECT count(*)::INTEGER AS n, count(DISTINCT band)::INTEGER AS b FROM read_parquet('${join(s.dir, 'renamed')}/**/*.parquet')`);
      expect(rows[0]).toEqual({ n: expect.any(Number), b: 1 });
      expect(rows[0]!.n as number).toBeGreaterThan(150);
      await expectApiError(c.submit({ kind: 'periodogram', input: { catalog: bad }, params: { method: 'slowest' }, output: { path: join(s.dir, 'x') } }), 'invalid_spec', '/spec/params/method');
    });
  });

  describe('crossmatch', () => {
    let objects: string;
    let gaia: string;
    let spec: JobSpec;
    let meshOut: string;

    beforeAll(async () => {
      objects = join(s.dir, 'object');
      gaia = join(s.dir, 'gaia');
      // dense enough (~9,000 per square degree) that 8" neighbours straddle partition edges
      await survey.generateObjectCatalog(objects, { rows: 20_000, seed: 5, maxRowsPerPartition: 2500, region: { raMin: 40, raMax: 41.5, decMin: -8, decMax: -6.5 } });
      await survey.generateGaiaLike(gaia, { objectCatalog: objects, seed: 6, maxRowsPerPartition: 2000 });
      meshOut = join(s.dir, 'xmatch');
      spec = { kind: 'crossmatch', input: { left: objects, right: gaia }, params: { radius_arcsec: 8, mode: 'all', left_columns: ['r_mag'], right_columns: ['phot_g_mean_mag'] }, output: { path: meshOut } };
    });

    it('the pair set equals a global cross-match of the concatenated catalogs, each pair once', async () => {
      const left = await hats.openHatsCatalog(objects, { margin: false });
      const right = await hats.openHatsCatalog(gaia);
      expect(right.margin).toBeDefined();
      expect(left.partitions.length).toBeGreaterThan(3);
      const sub = await c.submit(spec);
      // small left partitions are packed into fewer tasks, one output leaf per left partition
      expect(sub.tasks).toBeLessThan(left.partitions.length);
      const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
      expect(info.state, info.error).toBe('succeeded');
      const got = await outputRows(meshOut, 'left_objectId, "rank"');
      expect((await hats.openHatsCatalog(meshOut)).partitions.length).toBe(left.partitions.length);

      // brute-force-equivalent global match over all rows of both sides
      const L = await query(`SELECT objectId, ra, dec FROM read_parquet(${fileList(left.partitions.flatMap((p) => p.files))})`);
      const R = await query(`SELECT source_id, ra, dec, filename FROM read_parquet(${fileList(right.partitions.flatMap((p) => p.files))}, filename = true)`);
      const m = crossmatch.crossmatch(
        { ra: Float64Array.from(L, (r) => r.ra as number), dec: Float64Array.from(L, (r) => r.dec as number) },
        { ra: Float64Array.from(R, (r) => r.ra as number), dec: Float64Array.from(R, (r) => r.dec as number) },
        { radiusArcsec: 8, mode: 'all' },
      );
      const want = [...m.left].map((l, i) => `${String(L[l]!.objectId)}:${String(R[m.right[i]!]!.source_id)}:${m.rank[i]}`).sort();
      const have = got.map((r) => `${String(r.left_objectId)}:${String(r.right_source_id)}:${String(r.rank)}`).sort();
      expect(want.length).toBeGreaterThan(10_000);
      expect(have).toEqual(want);
      expect(new Set(have).size).toBe(have.length);
      const sepWant = new Map([...m.left].map((l, i) => [`${String(L[l]!.objectId)}:${String(R[m.right[i]!]!.source_id)}`, m.sepArcsec[i]!]));
      for (const r of got) expect(r.separation_arcsec).toBeCloseTo(sepWant.get(`${String(r.left_objectId)}:${String(r.right_source_id)}`)!, 9);

      // some pairs cross a partition boundary (left and right rows in non-overlapping partitions)
      const leafOf = (f: string) => {
        const mm = /Norder=(\d+)\/Dir=\d+\/Npix=(\d+)/.exec(f)!;
        return { order: Number(mm[1]), pixel: Number(mm[2]) };
      };
      const rightPix = new Map(R.map((r) => [String(r.source_id), leafOf(String(r.filename))]));
      const leftPix = new Map<string, { order: number; pixel: number }>();
      for (const p of left.partitions) for (const r of await query(`SELECT objectId FROM read_parquet(${fileList(p.files)})`)) leftPix.set(String(r.objectId), p);
      const crossing = got.filter((r) => !crossmatch.pixelsOverlap(leftPix.get(String(r.left_objectId))!, rightPix.get(String(r.right_source_id))!));
      expect(crossing.length).toBeGreaterThan(5);

      // chosen columns of both sides came along
      expect(got.every((r) => typeof r.right_phot_g_mean_mag === 'number')).toBe(true);
      expect(got.some((r) => typeof r.left_r_mag === 'number')).toBe(true);
    });

    it('without extra columns (pair table built from typed columns) the pairs, values and column types equal the SQL path', async () => {
      const out = join(s.dir, 'xmatch-plain');
      const sub = await c.submit({ ...spec, params: { radius_arcsec: 8, mode: 'all' }, output: { path: out } });
      const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
      expect(info.state, info.error).toBe('succeeded');
      const res = await c.results(sub.jobId);
      expect(res.summaries.every((x) => (x.summary as { path: string }).path === 'partition')).toBe(true);
      const cols = 'left_objectId, right_source_id, separation_arcsec, "rank", ra, dec, _healpix_29, right_ra, right_dec';
      const plain = await query(`SELECT ${cols} FROM read_parquet('${out}/dataset/**/*.parquet', hive_partitioning = false) ORDER BY left_objectId, "rank"`);
      const withSql = await query(`SELECT ${cols} FROM read_parquet('${meshOut}/dataset/**/*.parquet', hive_partitioning = false) ORDER BY left_objectId, "rank"`);
      expect(plain.length).toBeGreaterThan(10_000);
      expect(plain).toEqual(withSql);
      const types = async (dir: string) => (await query(`DESCRIBE SELECT * FROM read_parquet('${dir}/dataset/**/*.parquet', hive_partitioning = false)`)).map((r) => `${String(r.column_name)}:${String(r.column_type)}`);
      expect(await types(out)).toEqual((await types(meshOut)).filter((t) => !/^(left_r_mag|right_phot_g_mean_mag):/.test(t)));
    });

    it('one task per left partition (params.partitions_per_task: 1) writes the same leaves, row for row, as the packed tasks', async () => {
      const out = join(s.dir, 'xmatch-unpacked');
      const left = await hats.openHatsCatalog(objects, { margin: false });
      const sub = await c.submit({ ...spec, params: { ...spec.params, partitions_per_task: 1 }, output: { path: out } });
      expect(sub.tasks).toBe(left.partitions.length);
      await expectSameLeaves(c, sub.jobId, meshOut, out);
    });

    it('`ubatch run` of the same spec writes the same pairs', async () => {
      const localOut = join(s.dir, 'xmatch-local');
      const r = await runLocally(spec, { output: localOut, parallel: 2 });
      expect(r.state, r.error).toBe('succeeded');
      const local = await outputRows(localOut, 'left_objectId, "rank"');
      const mesh = await outputRows(meshOut, 'left_objectId, "rank"');
      expect(local.length).toBeGreaterThan(10_000);
      expect(local).toEqual(mesh);
    });

    it('nearest match against a plain Parquet right side (matched whole) gives the rank-1 pairs of the HATS match', async () => {
      const right = await hats.openHatsCatalog(gaia);
      const flat = join(s.dir, 'gaia.parquet');
      await query(`COPY (SELECT * FROM read_parquet(${fileList(right.partitions.flatMap((p) => p.files))})) TO '${flat}' (FORMAT parquet)`);
      const out = join(s.dir, 'xmatch-flat');
      const sub = await c.submit({ ...spec, input: { left: objects, right: flat }, params: { radius_arcsec: 8, mode: 'nearest', k: 1 }, output: { path: out } });
      const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
      expect(info.state, info.error).toBe('succeeded');
      const a = (await outputRows(out, 'left_objectId, "rank"')).map((r) => `${String(r.left_objectId)}:${String(r.right_source_id)}`);
      const b = (await outputRows(meshOut, 'left_objectId, "rank"')).filter((r) => r.rank === 1).map((r) => `${String(r.left_objectId)}:${String(r.right_source_id)}`);
      expect(a.length).toBeGreaterThan(10_000);
      expect(a).toEqual(b);
    });

    it('a broken left partition inside a packed task (matched two at a time) fails that task with the file named, not the job', async () => {
      const broken = join(s.dir, 'object-broken');
      await survey.generateObjectCatalog(broken, { rows: 20_000, seed: 5, maxRowsPerPartition: 2500, region: { raMin: 40, raMax: 41.5, decMin: -8, decMax: -6.5 } });
      const bc = await hats.openHatsCatalog(broken, { margin: false });
      const victim = bc.partitions[2]!.files[0]!;
      await writeFile(victim, 'this is not parquet');
      const sub = await c.submit({ ...spec, input: { left: broken, right: gaia }, params: { radius_arcsec: 8, mode: 'all' }, output: { path: join(s.dir, 'xmatch-broken') } });
      expect(sub.tasks).toBeLessThan(bc.partitions.length);
      const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
      expect(info.state).not.toBe('succeeded');
      expect(info.failed).toBe(1);
      expect(info.failures[0]!.error.message).toContain(victim);
    });

    it('bad crossmatch specs are rejected at submit with the field they concern', async () => {
      await expectApiError(c.submit({ ...spec, params: { radius_arcsec: 20 } }), 'invalid_spec', '/spec/params/radius_arcsec', /margin/);
      await expectApiError(c.submit({ ...spec, input: { left: objects, right: join(s.dir, 'nope') } }), 'input_not_found', '/spec/input/right');
      await expectApiError(c.submit({ ...spec, params: { right_id: 'designation' } }), 'invalid_input', '/spec/params/right_id', /designation/);
      await expectApiError(c.submit({ ...spec, params: { left_columns: ['r_mag', 'no_such'] } }), 'invalid_input', '/spec/params/left_columns/1', /no_such/);
    });
  });
});
