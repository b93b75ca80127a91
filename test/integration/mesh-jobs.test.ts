/**
 * End-to-end jobs on a real nats-server with a coordinator and two workers:
 * catalog.sql (reduce and HATS output), command, bad input of every kind,
 * retries and dead letters, idempotency, cancel, ledger exactly-once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hats, survey } from '../../astro/index.js';
import { readLedger, summarizeLedger } from '../../ledger/index.js';
import { type DryRunReply, type JobSpec, type UbatchClient } from '../../protocol/index.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { NatsCluster } from '../../ops/nats-server.js';
import { expectApiError, queryJson as query } from '../helpers/expect.js';

// every test runs on one nats-server and on a 3-node loopback cluster with R3 streams and buckets
// (fault matrix rows 4, 5, 6, 12 and 13's API isolation on both)
for (const mode of [{ name: 'one node', cluster: false }, { name: '3-node cluster, R3 streams', cluster: true }]) describe(`jobs on the mesh (${mode.name})`, () => {
  let s: TestStack;
  let c: UbatchClient;
  let catalog: string;
  let cluster: NatsCluster | undefined;
  beforeAll(async () => {
    if (mode.cluster) cluster = await NatsCluster.start(3);
    s = await startStack({ workers: 2, ...(cluster ? { servers: cluster.urls, replicas: 3 } : {}) });
    c = await s.client('alice');
    catalog = join(s.dir, 'object');
    await survey.generateObjectCatalog(catalog, { rows: 40_000, seed: 7, maxRowsPerPartition: 6000, region: { raMin: 30, raMax: 60, decMin: -40, decMax: -10 } });
  });
  afterAll(async () => {
    await s?.stop();
    await cluster?.cleanup();
  });

  it('catalog.sql with a reduce step equals the same query run directly in DuckDB', async () => {
    const out = join(s.dir, 'cmd.parquet');
    const spec: JobSpec = {
      kind: 'catalog.sql',
      name: 'cmd-histogram',
      input: { catalog },
      params: {
        map: 'SELECT floor((g_mag - r_mag) / 0.2) * 0.2 AS gr, floor(r_mag) AS r, count(*) AS n FROM partition WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL',
        reduce: 'SELECT gr, r, sum(n)::BIGINT AS n FROM partials GROUP BY ALL ORDER BY ALL',
      },
      output: { path: out },
    };
    const sub = await c.submit(spec);
    const cat = await hats.openHatsCatalog(catalog);
    // small partitions are batched: one map task per live slot (2 workers × 2), then the reduce
    expect(sub.tasks).toBe(Math.min(cat.partitions.length, 4) + 1);
    const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
    expect(info.state, info.error).toBe('succeeded');
    expect(existsSync(out)).toBe(true);
    const got = await query(`SELECT * FROM read_parquet('${out}') ORDER BY ALL`);
    const files = cat.partitions.flatMap((p) => p.files).map((f) => `'${f}'`).join(',');
    const want = await query(`SELECT floor((g_mag - r_mag) / 0.2) * 0.2 AS gr, floor(r_mag) AS r, count(*)::BIGINT AS n FROM read_parquet([${files}]) WHERE g_mag IS NOT NULL AND r_mag IS NOT NULL GROUP BY ALL ORDER BY ALL`);
    expect(got).toEqual(want);
    expect(got.length).toBeGreaterThan(5);
    const res = await c.results(sub.jobId);
    expect(res.files.map((f) => f.path)).toContain(out);
    // no temporary attempt directories left behind
    expect(existsSync(`${out}.ubatch/tmp`)).toBe(false);
  });

  it('catalog.sql restricted to a cone writes a HATS catalog of only the overlapping partitions', async () => {
    const out = join(s.dir, 'cone-hats');
    const cone = { ra: 45, dec: -25, radius_deg: 3 };
    const sub = await c.submit({ kind: 'catalog.sql', input: { catalog }, select: { cone }, params: { map: `SELECT objectId, ra, dec, r_mag FROM partition WHERE r_mag < 24`, partitions_per_task: 1 }, output: { path: out } });
    const cat = await hats.openHatsCatalog(catalog);
    const expected = hats.partitionsInCone(cat, cone.ra, cone.dec, cone.radius_deg);
    expect(sub.tasks).toBe(expected.length);
    expect(sub.tasks).toBeLessThan(cat.partitions.length);
    const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
    expect(info.state, info.error).toBe('succeeded');
    const outCat = await hats.openHatsCatalog(out);
    expect(outCat.partitions.map((p) => `${p.order}/${p.pixel}`)).toEqual(expected.map((p) => `${p.order}/${p.pixel}`));
    expect(readFileSync(join(out, 'partition_info.csv'), 'utf8')).toMatch(/Norder,Npix/);
    const [{ n }] = (await query(`SELECT count(*)::INTEGER AS n FROM read_parquet('${out}/dataset/**/*.parquet')`)) as [{ n: number }];
    const files = expected.flatMap((p) => p.files).map((f) => `'${f}'`).join(',');
    const [{ m }] = (await query(`SELECT count(*)::INTEGER AS m FROM read_parquet([${files}]) WHERE r_mag < 24`)) as [{ m: number }];
    expect(n).toBe(m);
  });

  it('a plain CSV file input is one partition', async () => {
    const csv = join(s.dir, 'small.csv');
    await writeFile(csv, 'id,ra,dec,mag\n1,10,20,18.5\n2,11,21,19.5\n3,12,22,20.5\n');
    const out = join(s.dir, 'csv-out.parquet');
    const sub = await c.submit({ kind: 'catalog.sql', input: { catalog: csv }, params: { map: 'SELECT count(*) AS n, avg(mag) AS m FROM partition', reduce: 'SELECT sum(n) AS n FROM partials' }, output: { path: out } });
    expect(sub.tasks).toBe(2);
    expect((await c.wait(sub.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    expect(await query(`SELECT n::INTEGER AS n FROM read_parquet('${out}')`)).toEqual([{ n: 3 }]);
  });

  it('command jobs run sandboxed per partition, with outputs and logs kept', async () => {
    const out = join(s.dir, 'cmd-out');
    const sub = await c.submit({
      kind: 'command',
      input: { catalog },
      select: { cone: { ra: 45, dec: -25, radius_deg: 2 } },
      params: { command: 'wc -c < "$UBATCH_INPUT" > "$UBATCH_OUTPUT_DIR/size.txt"; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \"; echo done-$UBATCH_NPIX' },
      output: { path: out },
    });
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(info.state, JSON.stringify(info.failures)).toBe('succeeded');
    const res = await c.results(sub.jobId);
    expect(res.files.length).toBe(sub.tasks);
    for (const f of res.files) {
      expect(f.path).toMatch(/task-\d+\/size\.txt$/);
      expect(Number(readFileSync(f.path, 'utf8').trim())).toBeGreaterThan(100);
    }
    const summary = res.summaries[0]!.summary as { logs: { stdout: string } };
    const { Objm } = await import('@nats-io/obj');
    const os = await new Objm(s.connections[0]!).open('ub-artifacts');
    const stdout = new TextDecoder().decode((await os.getBlob(summary.logs.stdout))!);
    // in a fresh network namespace only the loopback device exists
    expect(stdout.trim().split('\n')).toEqual(['lo', expect.stringMatching(/^done-\d+$/)]);
  });

  it('rejects bad submissions with a code and the field they concern', async () => {
    await expectApiError(c.submit({ kind: 'nope' }), 'unknown_kind', '/spec/kind');
    await expectApiError(c.submit({ kind: 'catalog.sql', input: { catalog: '/no/such/dir' }, params: { map: 'SELECT 1' }, output: { path: join(s.dir, 'x') } }), 'input_not_found', '/spec/input/catalog');
    await expectApiError(c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: 'SELEC nonsense FROM partition' }, output: { path: join(s.dir, 'x') } }), 'invalid_spec', '/spec/params/map');
    await expectApiError(c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: 'SELECT no_such_column FROM partition' }, output: { path: join(s.dir, 'x') } }), 'invalid_spec', '/spec/params/map');
    await expectApiError(c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: "SELECT * FROM read_csv('/etc/passwd')" }, output: { path: join(s.dir, 'x') } }), 'forbidden', '/spec/params/map');
    await expectApiError(c.submit({ kind: 'noop', params: { tasks: 0 } }), 'invalid_spec', '/spec/params/tasks');
    await expectApiError(c.submit({ kind: 'noop', select: { cone: { ra: 1, dec: 100, radius_deg: 1 } } } as JobSpec), 'invalid_spec', '/spec/select/cone/dec');
    await expectApiError(c.submit({ kind: 'noop', params: { blob: 'x'.repeat(300_000) } }), 'too_large', '/spec');
    await expectApiError(c.submit({ kind: 'command', params: {}, output: { path: join(s.dir, 'x') } }), 'invalid_spec', '/spec/params/command');
    await expectApiError(c.get('jdoesnotexist'), 'not_found', '/jobId');
    // malformed bytes straight on the wire
    const raw = await s.connect();
    const r = await raw.request('ubatch.v1.jobs.submit.alice', new TextEncoder().encode('{"spec": '), { timeout: 5000 });
    expect(JSON.stringify((await import('../../protocol/index.js')).decode(r.data))).toMatch(/bad_encoding/);
  });

  it('a partition that is not Parquet fails its task with the file named; the other partitions complete', async () => {
    const broken = join(s.dir, 'broken');
    await survey.generateObjectCatalog(broken, { rows: 9000, seed: 3, maxRowsPerPartition: 2000, region: { raMin: 100, raMax: 120, decMin: 0, decMax: 20 } });
    const cat = await hats.openHatsCatalog(broken);
    const victim = cat.partitions[1]!.files[0]!;
    await writeFile(victim, 'this is not parquet');
    const sub = await c.submit({ kind: 'catalog.sql', input: { catalog: broken }, params: { map: 'SELECT count(*) AS n FROM partition', partitions_per_task: 1 }, output: { path: join(s.dir, 'broken-out') } });
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(info.state).toBe('partial');
    expect(info.failed).toBe(1);
    expect(info.done).toBe(cat.partitions.length - 1);
    expect(info.failures[0]!.error.message).toContain(victim);
    expect(info.failures[0]!.error.retryable).toBe(false);
  });

  it('crashing and hanging commands fail with clear errors; the daemons carry on', async () => {
    const crash = await c.submit({ kind: 'command', params: { command: 'echo about to fail >&2; exit 3' }, output: { path: join(s.dir, 'crash') } });
    const hang = await c.submit({ kind: 'command', params: { command: 'sleep 30' }, resources: { walltime_s: 1 }, output: { path: join(s.dir, 'hang') } });
    const ci = await c.wait(crash.jobId, { timeoutMs: 30_000 });
    expect(ci.state).toBe('failed');
    expect(ci.failures[0]!.error.code).toBe('command_failed');
    expect(ci.failures[0]!.error.message).toMatch(/exited with code 3.*about to fail/);
    const hi = await c.wait(hang.jobId, { timeoutMs: 30_000 });
    expect(hi.state).toBe('failed');
    expect(hi.failures[0]!.error.code).toBe('walltime_exceeded');
    const ok = await c.submit({ kind: 'noop', params: { tasks: 20 } });
    expect((await c.wait(ok.jobId, { timeoutMs: 30_000 })).state).toBe('succeeded');
  });

  it('retryable failures are retried max_attempts times, then dead-lettered with the last error', async () => {
    const sub = await c.submit({ kind: 'noop', params: { tasks: 10, fail_indexes: [4] }, resources: { max_attempts: 3 } });
    const info = await c.wait(sub.jobId, { timeoutMs: 30_000 });
    expect(info.state).toBe('partial');
    expect(info.done).toBe(9);
    expect(info.failures).toHaveLength(1);
    expect(info.failures[0]).toMatchObject({ index: 4, attempt: 3, error: { code: 'deliberate_failure' } });
    const ledger = summarizeLedger(await readLedger(s.connections[0]!));
    const attempts = ledger.byJob.get(sub.jobId)!;
    expect(attempts.attempts).toBe(12); // 9 ok + 3 attempts of task 4
    expect(attempts.failedAttempts).toBe(3);
  });

  it('a dry run plans and quotes without submitting: tasks, partitions, the live slots that could run it', async () => {
    const before = (await c.list({ limit: 10_000 })).length;
    const spec: JobSpec = { kind: 'catalog.sql', input: { catalog }, params: { map: 'SELECT count(*) AS n FROM partition', partitions_per_task: 1 }, output: { path: join(s.dir, 'dry') } };
    const reply = (await c.dryRun(spec)) as DryRunReply & { schedule: { workerSlots: number; queuedAhead: number } };
    const cat = await hats.openHatsCatalog(catalog);
    expect(reply.dryRun).toBe(true);
    expect(reply.tasks).toBe(cat.partitions.length);
    expect(reply.partitions.map((p) => p.pixel).sort()).toEqual(cat.partitions.map((p) => p.pixel).sort());
    expect(reply.schedule.workerSlots).toBe(4); // 2 workers x 2 slots advertise cpu
    await expectApiError(c.dryRun({ kind: 'nope' }), 'unknown_kind', '/spec/kind'); // a dry run validates like a submit
    expect((await c.list({ limit: 10_000 })).length).toBe(before);
  });

  it('an idempotency key returns the same job', async () => {
    const spec: JobSpec = { kind: 'noop', params: { tasks: 3 }, idempotency_key: 'nightly-2026-11-25' };
    const a = await c.submit(spec);
    const b = await c.submit(spec);
    expect(b.jobId).toBe(a.jobId);
    expect(b.duplicate).toBe(true);
    // another user with the same key gets their own job
    const bob = await s.client('bob');
    expect((await bob.submit(spec)).jobId).not.toBe(a.jobId);
  });

  it('users cannot see or cancel each other\'s jobs', async () => {
    const a = await c.submit({ kind: 'noop', params: { tasks: 2 } });
    const bob = await s.client('bob');
    await expectApiError(bob.get(a.jobId), 'not_found');
    await expectApiError(bob.cancel(a.jobId), 'not_found');
    expect((await bob.list()).map((j) => j.jobId)).not.toContain(a.jobId);
  });

  it('a job shared with its group is readable by the group\'s members only; only its owner may cancel it', async () => {
    const ops = await s.client('ops');
    await ops.sharesSet('lens', 10);
    for (const u of ['erin', 'fred']) await ops.sharesSet('lens', 1, u);
    const erin = await s.client('erin');
    const fred = await s.client('fred');
    const bob = await s.client('bob');
    // membership is read by the accountant from the ledger: wait until erin may submit to the group
    let shared;
    for (let i = 0; ; i++) {
      try {
        shared = await erin.submit({ kind: 'command', group: 'lens', share_with_group: true, params: { command: 'echo shared; echo hi > "$UBATCH_OUTPUT_DIR/x.txt"' }, output: { path: join(s.dir, 'shared-out') } });
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const own = await erin.submit({ kind: 'noop', group: 'lens', params: { tasks: 1 } });
    expect((await erin.wait(shared.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    // fred (same group) reads the shared job: state, results, logs, provenance; and lists it with shared: true
    expect((await fred.get(shared.jobId)).user).toBe('erin');
    expect((await fred.results(shared.jobId)).files.length).toBeGreaterThan(0);
    expect((await fred.provenance({ jobId: shared.jobId })).jobId).toBe(shared.jobId);
    expect((await fred.logs(shared.jobId)).logs.map((l) => l.text).join('')).toContain('shared');
    expect((await fred.list({ shared: true })).map((j) => j.jobId)).toContain(shared.jobId);
    expect((await fred.list()).map((j) => j.jobId)).not.toContain(shared.jobId);
    // ... but not erin's unshared job, and he may not cancel or re-run the shared one
    await expectApiError(fred.get(own.jobId), 'not_found');
    expect((await fred.list({ shared: true })).map((j) => j.jobId)).not.toContain(own.jobId);
    await expectApiError(fred.cancel(shared.jobId), 'not_found');
    await expectApiError(fred.rerun(shared.jobId), 'not_found');
    // bob is not in the group: nothing
    await expectApiError(bob.get(shared.jobId), 'not_found');
    await expectApiError(bob.results(shared.jobId), 'not_found');
    await expectApiError(bob.provenance({ jobId: shared.jobId }), 'not_found');
    await expectApiError(bob.logs(shared.jobId), 'not_found');
    expect((await bob.list({ shared: true })).map((j) => j.jobId)).not.toContain(shared.jobId);
  });

  it('cancel stops a job; its queued tasks are not run or charged', async () => {
    const sub = await c.submit({ kind: 'noop', params: { tasks: 200, sleep_ms: 200 } });
    await new Promise((r) => setTimeout(r, 500));
    const info = await c.cancel(sub.jobId);
    expect(info.state).toBe('cancelled');
    const before = summarizeLedger(await readLedger(s.connections[0]!)).byJob.get(sub.jobId)?.attempts ?? 0;
    expect(before).toBeLessThan(200);
    // a later job of the same user still runs
    const next = await c.submit({ kind: 'noop', params: { tasks: 5 } });
    expect((await c.wait(next.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
  });

  it('the ledger holds exactly one charge per attempt, with provenance', async () => {
    const records = await readLedger(s.connections[0]!);
    const sum = summarizeLedger(records);
    expect(sum.duplicateCharges).toEqual([]);
    expect(sum.jobs.accepted).toBeGreaterThan(5);
    const charged = records.flatMap((r) => (r.entry.kind === 'task.charged' ? r.entry.charges : []));
    const sqlCharge = charged.find((ch) => ch.provenance.code.kind === 'catalog.sql' && ch.outcome === 'ok')!;
    expect(sqlCharge.provenance.inputs[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(sqlCharge.provenance.outputs[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(sqlCharge.provenance.code.gitCommit.length).toBeGreaterThan(3);
    expect(sqlCharge.usage.bytesRead).toBeGreaterThan(0);
  });
});

describe('real HATS catalogs', () => {
  const root = join(import.meta.dirname, '../../../shared/data/hats-test-catalogs/hats/tests/data/small_sky_source');
  const present = existsSync(root);
  let s: TestStack;
  beforeAll(async () => {
    if (present) s = await startStack({ workers: 1 });
  });
  afterAll(async () => {
    await s?.stop();
  });
  it.skipIf(!present)('counts small_sky_source rows per band through catalog.sql (skips without ../shared/data)', async () => {
    const c = await s.client('carol');
    const out = join(s.dir, 'bands.parquet');
    await mkdir(s.dir, { recursive: true });
    const sub = await c.submit({ kind: 'catalog.sql', input: { catalog: root }, params: { map: 'SELECT band, count(*) AS n FROM partition GROUP BY band', reduce: 'SELECT band, sum(n)::BIGINT AS n FROM partials GROUP BY band ORDER BY band' }, output: { path: out } });
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(info.state, info.error).toBe('succeeded');
    const got = await query(`SELECT * FROM read_parquet('${out}') ORDER BY band`);
    const want = await query(`SELECT band, count(*)::BIGINT AS n FROM read_parquet('${root}/dataset/**/*.parquet') GROUP BY band ORDER BY band`);
    expect(got).toEqual(want);
    const total = got.reduce((a, r) => a + Number(r.n), 0);
    expect(total).toBe(17161);
  });
});
