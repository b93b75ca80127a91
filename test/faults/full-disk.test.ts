/**
 * Fault row 16: the output root is a full disk. A 2 MiB tmpfs holds the
 * coordinator's output root (and so every attempt directory, which lives under
 * the job's output path) and the worker's scratch root. Expect a clear job
 * error naming ENOSPC and the place, no partial file at a committed path, an
 * intact ledger (one charge per attempt, no retries of a full disk), and
 * daemons that serve the next job once space is free. Needs root (mount);
 * skipped with a message otherwise.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statfsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hats, survey } from '../../astro/index.js';
import { readLedger, summarizeLedger } from '../../ledger/index.js';
import type { UbatchClient } from '../../protocol/index.js';
import { queryJson } from '../helpers/expect.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { NatsCluster } from '../../ops/nats-server.js';

const MiB = 1024 * 1024;
let mnt: string | undefined;
let mounted = false;
let why = '';

async function tryMount(): Promise<void> {
  if (process.getuid?.() !== 0) {
    why = 'not root: cannot mount a small tmpfs';
    return;
  }
  mnt = await mkdtemp(join(tmpdir(), 'ubatch-fulldisk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt], { encoding: 'utf8' });
  mounted = r.status === 0;
  if (!mounted) why = `mount -t tmpfs failed: ${r.stderr.trim()}`;
}
await tryMount();
if (!mounted) console.warn(`full-disk tests skipped: ${why}`);

/** job outputs (and so their attempt directories) on the small disk, like the coordinator's outputRoot */
const outPath = (name: string) => join(mnt!, 'out', 'dora', name);
const free = () => statfsSync(mnt!).bavail * statfsSync(mnt!).bsize;

afterAll(async () => {
  if (mounted) spawnSync('umount', [mnt!]);
  if (mnt) await rm(mnt, { recursive: true, force: true });
});

// on one nats-server and on a 3-node cluster with R3 streams, one after the other on the same small disk
for (const mode of [{ name: 'one node', cluster: false }, { name: '3-node cluster, R3 streams', cluster: true }]) describe.skipIf(!mounted)(`fault 16: full disk on the output root (${mode.name})`, () => {
  let s: TestStack;
  let c: UbatchClient;
  let catalog: string;
  let cluster: NatsCluster | undefined;
  beforeAll(async () => {
    if (mode.cluster) cluster = await NatsCluster.start(3);
    s = await startStack({ workers: 1, coordinator: { outputRoot: join(mnt!, 'out') }, worker: { scratchRoot: join(mnt!, 'scratch') }, ...(cluster ? { servers: cluster.urls, replicas: 3 } : {}) });
    c = await s.client('dora');
    catalog = join(s.dir, 'object');
    await survey.generateObjectCatalog(catalog, { rows: 60_000, seed: 16, maxRowsPerPartition: 8000, region: { raMin: 10, raMax: 40, decMin: -30, decMax: 0 } });
  });
  afterAll(async () => {
    await s?.stop();
    await cluster?.cleanup();
    // an empty disk for the next mode
    if (mounted) for (const f of readdirSync(mnt!)) await rm(join(mnt!, f), { recursive: true, force: true });
  });

  it('a command writing past the free space fails with disk_full (ENOSPC and the path), leaving nothing behind', async () => {
    const before = free();
    const sub = await c.submit({ kind: 'command', params: { command: 'head -c 3000000 /dev/zero > "$UBATCH_OUTPUT_DIR/big.bin"' }, resources: { max_attempts: 3 }, output: { path: outPath('big') } });
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(info.state).toBe('failed');
    const err = info.failures[0]!.error;
    expect(err.code).toBe('disk_full');
    expect(err.message).toMatch(/^disk full \(ENOSPC\) writing under /);
    expect(err.message).toContain(outPath('big'));
    expect(err.retryable).toBe(false);
    expect(info.failures[0]!.attempt).toBe(1);
    // nothing at the committed path, the attempt directory is gone, the space is back
    const out = outPath('big');
    expect(existsSync(join(out, 'task-0'))).toBe(false);
    expect(existsSync(join(out, '.ubatch', 'tmp')) ? readdirSync(join(out, '.ubatch', 'tmp')) : []).toEqual([]);
    expect(free()).toBeGreaterThanOrEqual(before - 64 * 1024);
  });

  it('catalog.sql outputs larger than the disk: finished leaves are complete, the others fail with disk_full; the ledger is intact', async () => {
    const sub = await c.submit({ kind: 'catalog.sql', name: 'copy-all', input: { catalog }, params: { map: 'SELECT * FROM partition' }, resources: { max_attempts: 3 }, output: { path: outPath('copy') } });
    const info = await c.wait(sub.jobId, { timeoutMs: 120_000 });
    expect(['partial', 'failed']).toContain(info.state);
    expect(info.failed).toBeGreaterThan(0);
    for (const f of info.failures) {
      expect(f.error.code, f.error.message).toBe('disk_full');
      expect(f.error.message).toContain('ENOSPC');
      expect(f.attempt).toBe(1);
    }
    // every committed file is a complete Parquet leaf with all the rows of its source partition
    const cat = await hats.openHatsCatalog(catalog);
    const res = await c.results(sub.jobId);
    // (tasks group small partitions, so a task may commit several leaves)
    expect(res.files.length).toBeGreaterThanOrEqual(info.done);
    for (const f of res.files) {
      const [, order, npix] = /Norder=(\d+)\/Dir=\d+\/Npix=(\d+)\.parquet$/.exec(f.path)!.map(Number);
      const src = cat.partitions.find((p) => p.order === order && p.pixel === npix)!;
      const [{ n }] = (await queryJson(`SELECT count(*)::INTEGER AS n FROM read_parquet('${f.path}')`)) as [{ n: number }];
      const [{ m }] = (await queryJson(`SELECT count(*)::INTEGER AS m FROM read_parquet([${src.files.map((x) => `'${x}'`).join(',')}])`)) as [{ m: number }];
      expect(n).toBe(m);
    }
    const out = outPath('copy');
    expect(existsSync(join(out, '.ubatch', 'tmp')) ? readdirSync(join(out, '.ubatch', 'tmp')) : []).toEqual([]);
    // ledger: one charge per task (a full output disk is not retried), none twice, and the job closed once
    const records = await readLedger(s.connections[0]!);
    const sum = summarizeLedger(records);
    expect(sum.duplicateCharges).toEqual([]);
    const job = sum.byJob.get(sub.jobId)!;
    expect(job.attempts).toBe(sub.tasks);
    expect(job.failedAttempts).toBe(info.failed);
    expect(records.filter((r) => r.entry.kind === 'job.closed' && r.entry.jobId === sub.jobId)).toHaveLength(1);
    // free the space for the next test
    await rm(out, { recursive: true, force: true });
  });

  it('once space is free, the same daemons run the next jobs', async () => {
    expect(free()).toBeGreaterThan(1.5 * MiB);
    const cmd = await c.submit({ kind: 'command', params: { command: 'echo ok > "$UBATCH_OUTPUT_DIR/ok.txt"' }, output: { path: outPath('ok') } });
    expect((await c.wait(cmd.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    const sql = await c.submit({ kind: 'catalog.sql', input: { catalog }, select: { cone: { ra: 25, dec: -15, radius_deg: 1 } }, params: { map: 'SELECT objectId, ra, dec FROM partition WHERE r_mag < 21' }, output: { path: outPath('cone') } });
    const info = await c.wait(sql.jobId, { timeoutMs: 60_000 });
    expect(info.state, info.error).toBe('succeeded');
  });
});
