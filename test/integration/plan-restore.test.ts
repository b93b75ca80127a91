/**
 * A job's task plan survives a change of coordinator whichever store holds it: a small plan is one
 * KV value, a large one (here forced with planInKvMaxBytes: 0) is in the object store. The job is
 * submitted with no worker running and one task in flight at most (the rest are released from the
 * plan later), the coordinator is closed, another one restores the job, and a worker started
 * afterwards finishes it from the restored plan.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { survey } from '../../astro/index.js';
import { Coordinator } from '../../coordinator/index.js';
import { queryJson as query } from '../helpers/expect.js';
import { startStack, type TestStack } from '../helpers/stack.js';

describe.each([
  { store: 'KV', planInKvMaxBytes: undefined },
  { store: 'object store', planInKvMaxBytes: 0 },
])('task plan in the $store, restored by another coordinator', ({ planInKvMaxBytes }) => {
  let s: TestStack;
  let next: Coordinator | undefined;
  let catalog: string;
  beforeAll(async () => {
    s = await startStack({ workers: 0, coordinator: { id: 'first', leaseMs: 1000, maxQueuedPerTenant: 1, ...(planInKvMaxBytes !== undefined ? { planInKvMaxBytes } : {}) } });
    catalog = join(s.dir, 'object');
    await survey.generateObjectCatalog(catalog, { rows: 6000, seed: 3, maxRowsPerPartition: 800, region: { raMin: 10, raMax: 30, decMin: -10, decMax: 10 } });
  });
  afterAll(async () => {
    await next?.close();
    await s?.stop();
  });

  it('the job completes from the restored plan, one partial per task', async () => {
    const c = await s.client('alice');
    const out = join(s.dir, 'hist.parquet');
    const sub = await c.submit({ kind: 'catalog.sql', input: { catalog }, params: { map: 'SELECT floor(r_mag) AS r, count(*) AS n FROM partition GROUP BY ALL', reduce: 'SELECT r, sum(n)::BIGINT AS n FROM partials GROUP BY ALL ORDER BY ALL', partitions_per_task: 2 }, output: { path: out } });
    expect(sub.tasks).toBeGreaterThan(2);
    await s.coordinator.close();
    next = await Coordinator.create({ nc: await s.connect(), service: { operators: ['ops'] } }, { outputRoot: join(s.dir, 'out2'), flushMs: 20, leaseMs: 1000, maxQueuedPerTenant: 1, id: 'second' });
    void next.run();
    await s.addWorker();
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(info.state, JSON.stringify(info.failures)).toBe('succeeded');
    expect(info.done).toBe(sub.tasks);
    const rows = await query(`SELECT sum(n)::BIGINT AS n FROM read_parquet('${out}')`);
    expect(Number(rows[0]!.n)).toBe(6000);
  }, 120_000);
});
