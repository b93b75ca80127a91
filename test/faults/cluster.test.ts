/**
 * Fault matrix #9 (part): a 3-node loopback cluster with R3 streams. kill -9
 * the UB_LEDGER stream leader under load: the job completes, every ledger
 * entry acknowledged before the kill is still there, no execution is charged twice.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, describe, expect, it } from 'vitest';
import { readLedger, summarizeLedger } from '../../ledger/index.js';
import { NatsCluster } from '../../ops/nats-server.js';
import { startStack, type TestStack } from '../helpers/stack.js';

describe('3-node cluster, R3 streams', () => {
  let cluster: NatsCluster | undefined;
  let s: TestStack | undefined;
  afterAll(async () => {
    await s?.stop();
    await cluster?.cleanup();
  });

  it('kill -9 of the ledger stream leader under load loses no acknowledged entry', async () => {
    cluster = await NatsCluster.start(3);
    s = await startStack({ servers: cluster.urls, replicas: 3, workers: 2, worker: { slots: 4 }, coordinator: { ackWaitMs: 3000 } });
    const c = await s.client('alice');
    const sub = await c.submit({ kind: 'noop', params: { tasks: 300, sleep_ms: 40 } });
    const nc = s.connections[0]!;
    for (;;) {
      if ((await c.get(sub.jobId)).done >= 60) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = await readLedger(nc);
    const jsm = await jetstreamManager(nc);
    const leaderName = (await jsm.streams.info('UB_LEDGER')).cluster?.leader;
    const victim = cluster.servers.find((x) => x.serverName === leaderName);
    expect(victim, `leader ${leaderName}`).toBeDefined();
    victim!.kill('SIGKILL');
    const info = await c.wait(sub.jobId, { timeoutMs: 150_000 });
    expect(info.state, JSON.stringify(info.failures.slice(0, 3))).toBe('succeeded');
    expect(info.done).toBe(300);
    const newLeader = (await jsm.streams.info('UB_LEDGER')).cluster?.leader;
    expect(newLeader).not.toBe(leaderName);
    // bring the killed node back, then read the ledger over a fresh connection. With one of three
    // nodes dead, creating the reader's (R1, ephemeral) consumer sometimes timed out for over a
    // minute on 2.9.10 although publishes and existing consumers worked; the guarantee checked here
    // is about what the cluster holds once it is whole again
    await victim!.exited();
    await victim!.restart();
    const reader = await s.connect();
    // the job is done, so every charge was acknowledged before its result; right after the restart a replay
    // can still end at the sequence a lagging replica reported: read again until it reaches the last charge
    const okOf = (records: Awaited<ReturnType<typeof readLedger>>) => new Set(records.flatMap((r) => (r.entry.kind === 'task.charged' ? r.entry.charges : [])).filter((ch) => ch.jobId === sub.jobId && ch.outcome === 'ok').map((ch) => ch.taskId));
    let after = await readLedger(reader);
    for (const end = Date.now() + 60_000; okOf(after).size < 300 && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 1000));
      after = await readLedger(reader);
    }
    const seqs = new Set(after.map((r) => r.seq));
    for (const r of before) expect(seqs.has(r.seq)).toBe(true);
    const sum = summarizeLedger(after);
    expect(sum.duplicateCharges).toEqual([]);
    expect(okOf(after).size).toBe(300);
  }, 240_000);
});
