/**
 * catalog.sql batching: small partitions are planned into fewer, bigger
 * tasks. A reduced job's result equals one DuckDB query over all partitions;
 * a job with HATS output still writes one leaf per input partition with the
 * same rows as one task per partition; the user can pin the batch size.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hats, survey } from '../../astro/index.js';
import { batchPartitions, DEFAULT_ROWS_PER_TASK } from '../../coordinator/planner.js';
import { readLedger } from '../../ledger/index.js';
import { runLocally } from '../../ops/local-run.js';
import type { UbatchClient } from '../../protocol/index.js';
import { expectApiError, queryJson as query } from '../helpers/expect.js';
import { startStack, type TestStack } from '../helpers/stack.js';

const HIST_MAP = 'SELECT floor((g_mag - r_mag) / 0.2) * 0.2 AS gr, floor(r_mag) AS r, count(*) AS n FROM partition WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL';
const HIST_REDUCE = 'SELECT gr, r, sum(n)::BIGINT AS n FROM partials GROUP BY ALL ORDER BY ALL';
const BRIGHT_MAP = 'SELECT objectId, ra, dec, r_mag FROM partition WHERE r_mag < 24';

describe('batchPartitions (planner)', () => {
  const parts = (rows: number[]) => rows.map((r, i) => ({ pixel: i, rows: r }));
  const flat = (g: { pixel: number }[][]) => g.flatMap((x) => x.map((p) => p.pixel));

  it('packs small partitions into one task per slot, in order, balanced by rows', () => {
    const g = batchPartitions(parts(Array(12).fill(333_000)), { slots: 2, rowsPerTask: DEFAULT_ROWS_PER_TASK });
    expect(g.map((x) => x.length)).toEqual([6, 6]);
    expect(flat(g)).toEqual([...Array(12).keys()]);
  });

  it('gathers about rowsPerTask rows per task and rounds the count up to a multiple of the slots', () => {
    const g = batchPartitions(parts(Array(80).fill(500_000)), { slots: 2, rowsPerTask: 2_000_000 });
    expect(g.length).toBe(20);
    expect(g.every((x) => x.length === 4)).toBe(true);
    const h = batchPartitions(parts(Array(30).fill(500_000)), { slots: 4, rowsPerTask: 2_000_000 });
    expect(h.length).toBe(8); // ceil(15 / 2) → 8 tasks, 2 rounds of 4
    expect(flat(h)).toEqual([...Array(30).keys()]);
  });

  it('keeps big partitions alone, never makes more tasks than partitions, and honours partitions_per_task', () => {
    expect(batchPartitions(parts([3e6, 4e6, 5e6]), { slots: 2, rowsPerTask: 2e6 }).map((x) => x.length)).toEqual([1, 1, 1]);
    expect(batchPartitions(parts([10, 10]), { slots: 8, rowsPerTask: 2e6 }).length).toBe(2);
    expect(batchPartitions(parts([1, 2, 3, 4, 5, 6, 7]), { slots: 1, rowsPerTask: 1, partitionsPerTask: 3 }).map((x) => x.length)).toEqual([3, 3, 1]);
    // uneven rows: the heavy partition gets a task of its own
    const g = batchPartitions(parts([100, 100, 100, 100, 1000, 100, 100, 100, 100]), { slots: 3, rowsPerTask: 1e9 });
    expect(g.length).toBeLessThanOrEqual(3);
    expect(g.find((x) => x.some((p) => p.rows === 1000))!.length).toBe(1);
  });
});

describe('batchPartitions tail (params.tail_fraction)', () => {
  const parts = (rows: number[]) => rows.map((r, i) => ({ pixel: i, rows: r }));
  it('plans the last share of rows as 2 × slots small tasks after the big ones, in order, every partition once', () => {
    const g = batchPartitions(parts(Array(64).fill(100_000)), { slots: 2, rowsPerTask: 1e9, tailFraction: 0.25 });
    expect(g.map((x) => x.length)).toEqual([24, 24, 4, 4, 4, 4]);
    expect(g.flatMap((x) => x.map((p) => p.pixel))).toEqual([...Array(64).keys()]);
    // too few partitions for a tail: the plain plan
    expect(batchPartitions(parts(Array(5).fill(100_000)), { slots: 2, rowsPerTask: 1e9, tailFraction: 0.25 }).length).toBe(2);
    expect(batchPartitions(parts(Array(64).fill(100_000)), { slots: 2, rowsPerTask: 1e9, tailFraction: 0 }).map((x) => x.length)).toEqual([32, 32]);
  });
});

describe('catalog.sql batching on the mesh', () => {
  let s: TestStack;
  let c: UbatchClient;
  let catalog: string;
  let cat: hats.HatsCatalog;
  beforeAll(async () => {
    s = await startStack({ workers: 2 }); // 2 workers × 2 slots
    c = await s.client('bob');
    catalog = join(s.dir, 'object');
    await survey.generateObjectCatalog(catalog, { rows: 40_000, seed: 5, maxRowsPerPartition: 2500, region: { raMin: 30, raMax: 70, decMin: -40, decMax: -5 } });
    cat = await hats.openHatsCatalog(catalog);
  }, 120_000);
  afterAll(async () => {
    await s?.stop();
  });

  it('a reduced job over many small partitions plans one task per slot and equals one DuckDB query', async () => {
    expect(cat.partitions.length).toBeGreaterThan(8);
    const out = join(s.dir, 'hist.parquet');
    const sub = await c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: HIST_MAP, reduce: HIST_REDUCE }, output: { path: out } });
    expect(sub.tasks).toBe(4 + 1); // 4 live slots, 40k rows: 4 map tasks + the reduce
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(info.state, info.error).toBe('succeeded');
    const files = cat.partitions.flatMap((p) => p.files);
    const want = await query(`SELECT floor((g_mag - r_mag) / 0.2) * 0.2 AS gr, floor(r_mag) AS r, count(*)::BIGINT AS n FROM read_parquet([${files.map((f) => `'${f}'`).join(',')}]) WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL ORDER BY ALL`);
    expect(await query(`SELECT * FROM read_parquet('${out}') ORDER BY ALL`)).toEqual(want);
    // provenance: the map charges name every input file exactly once, with checksums
    const charges = (await readLedger(s.connections[0]!)).flatMap((r) => (r.entry.kind === 'task.charged' ? r.entry.charges : [])).filter((ch) => ch.jobId === sub.jobId && ch.outcome === 'ok' && !ch.taskId.endsWith('.r'));
    expect(charges.length).toBe(4);
    const inputs = charges.flatMap((ch) => ch.provenance.inputs);
    expect(inputs.map((f) => f.path).sort()).toEqual([...files].sort());
    expect(inputs.every((f) => /^[0-9a-f]{64}$/.test(f.sha256))).toBe(true);
  });

  it('HATS output of a batched job has one leaf per input partition with the same rows as one task per partition', async () => {
    const batched = join(s.dir, 'bright-batched');
    const single = join(s.dir, 'bright-single');
    const a = await c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: BRIGHT_MAP }, output: { path: batched } });
    const b = await c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: BRIGHT_MAP, partitions_per_task: 1 }, output: { path: single } });
    expect(a.tasks).toBe(4);
    expect(b.tasks).toBe(cat.partitions.length);
    for (const id of [a.jobId, b.jobId]) expect((await c.wait(id, { timeoutMs: 60_000 })).state).toBe('succeeded');
    const ca = await hats.openHatsCatalog(batched);
    const cb = await hats.openHatsCatalog(single);
    const key = (x: hats.HatsCatalog) => x.partitions.map((p) => [p.order, p.pixel, p.rows]);
    expect(key(ca)).toEqual(key(cb));
    expect(ca.partitions.map((p) => [p.order, p.pixel])).toEqual(cat.partitions.map((p) => [p.order, p.pixel]));
    // every leaf holds exactly the rows of its own input partition
    for (const p of ca.partitions) {
      const src = cat.partitions.find((q) => q.order === p.order && q.pixel === p.pixel)!;
      const got = await query(`SELECT objectId FROM read_parquet('${p.files[0]}') ORDER BY objectId`);
      const want = await query(`SELECT objectId FROM read_parquet('${src.files[0]}') WHERE r_mag < 24 ORDER BY objectId`);
      expect(got).toEqual(want);
      expect(p.rows).toBe(want.length);
    }
    expect(existsSync(join(batched, '.ubatch', 'tmp'))).toBe(false);
  });

  it('partitions_per_task pins the batch size; bad values are rejected at submit with the field', async () => {
    const sub = await c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: HIST_MAP, reduce: HIST_REDUCE, partitions_per_task: 3 }, output: { path: join(s.dir, 'h3.parquet') } });
    expect(sub.tasks).toBe(Math.ceil(cat.partitions.length / 3) + 1);
    expect((await c.wait(sub.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    await expectApiError(c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: HIST_MAP, partitions_per_task: 0 }, output: { path: join(s.dir, 'x') } }), 'invalid_spec', '/spec/params/partitions_per_task');
    await expectApiError(c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: HIST_MAP, rows_per_task: 'many' }, output: { path: join(s.dir, 'x') } }), 'invalid_spec', '/spec/params/rows_per_task');
    await expectApiError(c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: HIST_MAP, tail_fraction: 0.9 }, output: { path: join(s.dir, 'x') } }), 'invalid_spec', '/spec/params/tail_fraction');
  });

  it('a broken partition inside a batch fails that task with the file named; the other tasks commit their leaves', async () => {
    const broken = join(s.dir, 'broken');
    await survey.generateObjectCatalog(broken, { rows: 12_000, seed: 9, maxRowsPerPartition: 1500, region: { raMin: 100, raMax: 130, decMin: 0, decMax: 25 } });
    const bc = await hats.openHatsCatalog(broken);
    const victim = bc.partitions[1]!.files[0]!;
    await writeFile(victim, 'this is not parquet');
    const out = join(s.dir, 'broken-out');
    const sub = await c.submit({ kind: 'catalog.sql', input: { catalog: broken }, params: { map: 'SELECT objectId FROM partition' }, output: { path: out } });
    expect(sub.tasks).toBeLessThan(bc.partitions.length);
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(info.state).toBe('partial');
    expect(info.failed).toBe(1);
    expect(info.failures[0]!.error.message).toContain(victim);
    const written = await hats.openHatsCatalog(out);
    expect(written.partitions.length).toBeGreaterThan(0);
    expect(written.partitions.some((p) => p.pixel === bc.partitions[1]!.pixel && p.order === bc.partitions[1]!.order)).toBe(false);
  });
});

describe('catalog.sql batching in `ubatch run`', () => {
  it('reads a batch of HATS leaves without union_by_name, and with it when a leaf differs in schema', async () => {
    const { mkdtemp, rm, rename } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'ubatch-batch-schema-'));
    try {
      const catalog = join(dir, 'object');
      await survey.generateObjectCatalog(catalog, { rows: 6000, seed: 3, maxRowsPerPartition: 700 });
      const cat = await hats.openHatsCatalog(catalog);
      expect(cat.partitions.length).toBeGreaterThan(4);
      const files = cat.partitions.flatMap((p) => p.files);
      const rewrite = async (f: string, select: string) => {
        await query(`COPY (SELECT ${select} FROM read_parquet('${f}')) TO '${f}.tmp' (FORMAT parquet)`);
        await rename(`${f}.tmp`, f);
      };
      const want = async () => query(`SELECT floor((g_mag - r_mag) / 0.2) * 0.2 AS gr, floor(r_mag) AS r, count(*)::BIGINT AS n FROM read_parquet([${files.map((f) => `'${f}'`).join(',')}], union_by_name = true) WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL ORDER BY ALL`);
      const run = async (name: string) => {
        const out = join(dir, `${name}.parquet`);
        const r = await runLocally({ kind: 'catalog.sql', input: { catalog }, params: { map: HIST_MAP, reduce: HIST_REDUCE }, output: { path: out } }, { parallel: 1 });
        expect(r.state, JSON.stringify(r.failures)).toBe('succeeded');
        return query(`SELECT * FROM read_parquet('${out}') ORDER BY ALL`);
      };
      // columns in another order and one more column in a later leaf: read by name
      await rewrite(files[2]!, 'r_mag, g_mag, 1 AS extra, * EXCLUDE (r_mag, g_mag)');
      expect(await run('reordered')).toEqual(await want());
      // a later leaf lacks a column the query reads: the task falls back to union_by_name (NULLs for that leaf)
      await rewrite(files[3]!, '* EXCLUDE (g_mag)');
      const got = await run('missing');
      expect(got).toEqual(await want());
      expect(got.reduce((s, x) => s + Number(x['n']), 0)).toBeLessThan(6000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });


  it('writes one leaf per partition with two lanes', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'ubatch-batch-local-'));
    try {
      const catalog = join(dir, 'object');
      await survey.generateObjectCatalog(catalog, { rows: 8000, seed: 2, maxRowsPerPartition: 900 });
      const cat = await hats.openHatsCatalog(catalog);
      const out = join(dir, 'bright');
      const r = await runLocally({ kind: 'catalog.sql', input: { catalog }, params: { map: BRIGHT_MAP }, output: { path: out } }, { parallel: 2 });
      expect(r.state).toBe('succeeded');
      expect(r.total).toBe(2);
      const w = await hats.openHatsCatalog(out);
      expect(w.partitions.map((p) => [p.order, p.pixel])).toEqual(cat.partitions.map((p) => [p.order, p.pixel]));
      const [n] = await query(`SELECT count(*)::INTEGER AS n FROM read_parquet('${catalog}/dataset/**/*.parquet') WHERE r_mag < 24`);
      expect(w.partitions.reduce((a, p) => a + (p.rows ?? 0), 0)).toBe(n!['n']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
