/**
 * Fault matrix #10 on a 3-node loopback cluster with R3 streams and KV:
 * 12 worker slots (3 workers x 4) race for a user's tasks while the user has
 * credit for exactly one more task at a time. Credit is released by the
 * single accountant (in the coordinator), never decided by workers, so
 *  - a concurrency cap of 1 holds at every instant across the 12 slots;
 *  - with the cpu-hours quota nearly spent (room for less than one task),
 *    exactly one more task runs and is charged, the rest are held until an
 *    operator raises the quota, then the job completes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NatsCluster } from '../../ops/nats-server.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { chargesOf, coreSeconds, readLedgerSettled, sleep, until } from '../helpers/faults.js';

function peakConcurrency(s: TestStack, tenant: string, since = 0): { peak: number; events: number } {
  const events = s.workers.flatMap((w) => w.slotLog.filter(([at, t]) => t === tenant && at >= since));
  // at equal timestamps apply finishes first: a slot is freed before the next task can be released
  events.sort((x, y) => x[0] - y[0] || x[2] - y[2]);
  let cur = 0;
  let peak = 0;
  for (const [, , d] of events) {
    cur += d;
    peak = Math.max(peak, cur);
  }
  return { peak, events: events.length };
}

describe('3-node cluster, R3 streams: quota race', () => {
  let cluster: NatsCluster | undefined;
  let s: TestStack | undefined;
  afterAll(async () => {
    await s?.stop();
    await cluster?.cleanup();
  });

  it('12 slots, credit for one more task: the cap and the quota are never exceeded', async () => {
    cluster = await NatsCluster.start(3);
    s = await startStack({ servers: cluster.urls, replicas: 3, workers: 3, worker: { slots: 4, fetchBatch: 4 } });
    for (const w of s.workers) w.recordSlots = true;
    const ops = await s.client('ops');
    const nc = s.connections[0]!;

    // 1. concurrency cap 1 across 12 slots
    await ops.quotaSet('user', 'kim', { max_concurrent: 1 });
    const kim = await s.client('kim');
    const jk = await kim.submit({ kind: 'noop', params: { tasks: 60, sleep_ms: 30 } });
    const ik = await kim.wait(jk.jobId, { timeoutMs: 90_000 });
    expect(ik.state).toBe('succeeded');
    const cap = peakConcurrency(s, 'default.kim');
    expect(cap.events).toBe(120);
    expect(cap.peak).toBe(1);

    // 2. cpu-hours quota with room for less than one more task
    const quinn = await s.client('quinn');
    await ops.quotaSet('user', 'quinn', { cpu_hours: 1 });
    const warm = await quinn.submit({ kind: 'noop', params: { tasks: 3, sleep_ms: 300 } });
    expect((await quinn.wait(warm.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    const usedS = ((await quinn.quotaGet()) as { user: { used: { cpu_hours: number } } }).user.used.cpu_hours * 3600;
    expect(usedS).toBeGreaterThan(0.8);
    // 12 tasks wait; the cap lets one out at a time, and the quota leaves room for half a task
    await ops.quotaSet('user', 'quinn', { max_concurrent: 1 });
    const tBig = Date.now();
    const big = await quinn.submit({ kind: 'noop', params: { tasks: 12, sleep_ms: 1000 } });
    const limitS = usedS + 0.5;
    await ops.quotaSet('user', 'quinn', { cpu_hours: limitS / 3600 });
    await until(async () => (await quinn.get(big.jobId)).done >= 1, 30_000, 'the last task within credit');
    await sleep(4000); // long enough for 3 more 1-s tasks if credit leaked
    const held = await quinn.get(big.jobId);
    expect(held.state).toBe('running');
    expect(held.done).toBe(1);
    const records = await readLedgerSettled(nc);
    const bigCharges = chargesOf(records, big.jobId);
    expect(bigCharges).toHaveLength(1);
    const chargedS = chargesOf(records).filter((c) => c.user === 'quinn').reduce((a, c) => a + coreSeconds(c), 0);
    // the quota was crossed only by the one task that had credit when it started
    expect(chargedS).toBeLessThan(limitS + coreSeconds(bigCharges[0]!) + 1e-6);
    const q = (await quinn.quotaGet()) as { user: { used: { cpu_hours: number } } };
    expect(q.user.used.cpu_hours * 3600).toBeCloseTo(chargedS, 6);
    expect(peakConcurrency(s, 'default.quinn', tBig).peak).toBe(1);
    // an operator raises the quota: the held tasks run, nothing was lost
    await ops.quotaSet('user', 'quinn', { cpu_hours: 1, max_concurrent: 12 });
    const fin = await quinn.wait(big.jobId, { timeoutMs: 60_000 });
    expect(fin.state).toBe('succeeded');
    expect(fin.done).toBe(12);
    const all = chargesOf(await readLedgerSettled(nc), big.jobId);
    expect(new Set(all.map((c) => c.taskId)).size).toBe(12);
    expect(new Set(all.map((c) => c.execution)).size).toBe(all.length);
    console.log(
      `[row 10] R3, 12 slots: cap 1 peak ${cap.peak} over ${cap.events / 2} tasks; quota ${limitS.toFixed(2)} core-s with ${usedS.toFixed(2)} used: ` +
        `${held.done} more task ran (charged ${coreSeconds(bigCharges[0]!).toFixed(2)} s), total ${chargedS.toFixed(2)} s, then held; ${fin.done}/12 after the raise`,
    );
  }, 180_000);
});
