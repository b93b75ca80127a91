/**
 * Fault matrix #9 (consumer leader): a 3-node loopback cluster with R3
 * streams. Under load, kill -9 the node that leads a UB_TASKS consumer while
 * that consumer holds unacknowledged tasks: the unacknowledged tasks are
 * redelivered, every task is accepted once, no acknowledged ledger entry is
 * lost and no execution is charged twice.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, describe, expect, it } from 'vitest';
import { NatsCluster } from '../../ops/nats-server.js';
import { Streams } from '../../protocol/index.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { expectLedgerKept, readLedgerSettled, sleep, until } from '../helpers/faults.js';

async function busyConsumer(jsm: JetStreamManager): Promise<{ name: string; leader: string; ackPending: number } | undefined> {
  for await (const ci of jsm.consumers.list(Streams.tasks)) {
    if (ci.num_ack_pending > 0 && ci.cluster?.leader) return { name: ci.name, leader: ci.cluster.leader, ackPending: ci.num_ack_pending };
  }
  return undefined;
}

describe('3-node cluster, R3 streams: consumer leader', () => {
  let cluster: NatsCluster | undefined;
  let s: TestStack | undefined;
  afterAll(async () => {
    await s?.stop();
    await cluster?.cleanup();
  });

  it('kill -9 of a task consumer leader holding unacked tasks: redelivered, none lost, none charged twice', async () => {
    const N = 400;
    cluster = await NatsCluster.start(3);
    s = await startStack({ servers: cluster.urls, replicas: 3, workers: 2, worker: { slots: 4 }, coordinator: { ackWaitMs: 3000 } });
    const c = await s.client('alice');
    const sub = await c.submit({ kind: 'noop', params: { tasks: N, sleep_ms: 100 } });
    const nc = s.connections[0]!;
    const jsm = await jetstreamManager(nc);
    await until(async () => (await c.get(sub.jobId)).done >= 60, 60_000, 'some tasks done');
    // isolate the consumer-leader fault: move the consumer's leadership off the UB_TASKS stream leader
    let target = await busyConsumer(jsm);
    for (let i = 0; i < 5 && target && target.leader === (await jsm.streams.info(Streams.tasks)).cluster?.leader; i++) {
      await nc.request(`$JS.API.CONSUMER.LEADER.STEPDOWN.${Streams.tasks}.${target.name}`, undefined, { timeout: 5000 }).catch(() => undefined);
      await sleep(1500);
      target = await busyConsumer(jsm);
    }
    await until(async () => (target = await busyConsumer(jsm)) !== undefined, 10_000, 'a consumer with unacked tasks');
    const streamLeader = (await jsm.streams.info(Streams.tasks)).cluster?.leader;
    const before = await readLedgerSettled(nc);
    const doneBefore = (await c.get(sub.jobId)).done;
    const victim = cluster.servers.find((x) => x.serverName === target!.leader);
    expect(victim, `consumer leader ${target!.leader}`).toBeDefined();
    victim!.kill('SIGKILL');
    const t0 = Date.now();
    const info = await c.wait(sub.jobId, { timeoutMs: 150_000 });
    const recoverS = (Date.now() - t0) / 1000;
    expect(info.state, JSON.stringify(info.failures.slice(0, 3))).toBe('succeeded');
    expect(info.done).toBe(N);
    const after = await readLedgerSettled(nc);
    const { ok, charges } = expectLedgerKept(before, after, sub.jobId, N);
    // the consumer moved to a surviving node
    // (the last acks follow the last results by a few ms)
    let ci = await jsm.consumers.info(Streams.tasks, target!.name);
    await until(async () => (ci = await jsm.consumers.info(Streams.tasks, target!.name)).num_ack_pending === 0, 30_000, 'the consumer to hold no unacked task').catch(() => undefined);
    expect(ci.cluster?.leader).not.toBe(target!.leader);
    const redelivered = charges.filter((x) => x.attempt >= 2).length;
    const twiceOk = [...ok.values()].filter((n) => n > 1).length;
    // the tasks that were unacked at the kill were either acked on the new leader (a worker retries its commit until
    // the streams' leaders are back, so its acks usually reach the new consumer leader) or delivered again
    // (at-least-once; each execution its own charge, checked above): either way the new leader holds nothing unacked
    // and nothing undelivered
    expect(ci.num_ack_pending).toBe(0);
    expect(ci.num_pending).toBe(0);
    console.log(
      `[row 9a] consumer ${target!.name} leader ${target!.leader} (stream leader ${streamLeader}) killed with ${target!.ackPending} unacked, ${doneBefore}/${N} done; ` +
        `job done ${recoverS.toFixed(1)} s later; ${charges.length} charges, ${redelivered} redelivered attempts, ${twiceOk} tasks with 2 ok executions; new leader ${ci.cluster?.leader}`,
    );
  }, 240_000);
});
