/**
 * Fault matrix #7b: two coordinators started at once → one leader (KV lease),
 * no duplicate tasks; when the leader stops, the standby takes over and the job completes.
 * On one node and on a 3-node cluster with R3 streams and buckets.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../coordinator/index.js';
import { readLedger } from '../../ledger/index.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { NatsCluster } from '../../ops/nats-server.js';

for (const mode of [{ name: 'one node', cluster: false }, { name: '3-node cluster, R3 streams', cluster: true }]) describe(`two coordinators (${mode.name})`, () => {
  let s: TestStack | undefined;
  let second: Coordinator | undefined;
  let cluster: NatsCluster | undefined;
  afterAll(async () => {
    await second?.close();
    await s?.stop();
    await cluster?.cleanup();
  });

  it('only one leads; the standby takes over when it stops; every task runs once', async () => {
    if (mode.cluster) cluster = await NatsCluster.start(3);
    const topology = cluster ? { replicas: 3 } : undefined;
    s = await startStack({ workers: 2, coordinator: { leaseMs: 1000, id: 'first' }, ...(cluster ? { servers: cluster.urls, replicas: 3 } : {}) });
    second = await Coordinator.create({ nc: await s.connect(), service: { operators: ['ops'] }, ...(topology ? { topology } : {}) }, { outputRoot: `${s.dir}/out2`, flushMs: 20, leaseMs: 1000, id: 'second' });
    void second.run();
    const c = await s.client('alice');
    const sub = await c.submit({ kind: 'noop', params: { tasks: 60, sleep_ms: 50 } });
    await new Promise((r) => setTimeout(r, 300));
    expect(s.coordinator.isLeader).toBe(true);
    expect(second.isLeader).toBe(false);
    await s.coordinator.close();
    const info = await c.wait(sub.jobId, { timeoutMs: 60_000 });
    expect(second.isLeader).toBe(true);
    expect(info.state).toBe('succeeded');
    expect(info.done).toBe(60);
    const charges = (await readLedger(s.connections[0]!)).flatMap((r) => (r.entry.kind === 'task.charged' ? r.entry.charges : [])).filter((ch) => ch.jobId === sub.jobId);
    // one ok execution per task: the standby did not release the tasks again
    expect(new Set(charges.map((ch) => ch.taskId)).size).toBe(60);
    expect(charges.filter((ch) => ch.outcome === 'ok')).toHaveLength(60);
  }, 120_000);
});
