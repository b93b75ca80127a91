/**
 * Process faults on a real nats-server, daemons as real processes (run by
 * process-faults.test.ts on one node and process-faults-cluster.test.ts on a cluster):
 * worker kill -9 mid-task, coordinator kill -9 mid-job and mid-reduce, worker SIGSTOP past
 * the ack wait, a task 10x the ack wait, nats-server restart and kill -9
 * mid-job. Jobs complete; no attempt is charged twice; no acknowledged
 * ledger entry is lost. The worker and coordinator faults (rows 1, 2, 3, 7, 12)
 * run twice: on one node and on a 3-node loopback cluster with R3 streams
 * (server faults on the cluster: cluster*.test.ts).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterEach, describe, expect, it } from 'vitest';
import { readLedger } from '../../ledger/index.js';
import { chargesOf, expectLedgerKept, until } from '../helpers/faults.js';
import { Streams, UbatchClient } from '../../protocol/index.js';
import { NatsCluster, NatsServer } from '../../ops/nats-server.js';
import { daemonTails, haveCli, noCliReason, type Proc, startDaemon, submitWhenReady as submitOnce, tearDown } from '../helpers/procs.js';

/** the process-fault suite on one node or on a 3-node cluster (two test files, so vitest runs them side by side) */
export function processFaultSuite(mode: { name: string; cluster: boolean }): void {
describe.skipIf(!haveCli)(`process faults, ${mode.name}${haveCli ? '' : ` (skipped: ${noCliReason})`}`, () => {
  let server: NatsServer | undefined;
  let cluster: NatsCluster | undefined;
  const url = () => (cluster ? cluster.urls.join(',') : server!.url);
  const replicas = mode.cluster ? ['--replicas', '3'] : [];
  let dir: string | undefined;
  const procs: Proc[] = [];
  const conns: NatsConnection[] = [];
  afterEach(async () => {
    await tearDown({ procs, conns: conns.splice(0), servers: [server, cluster], dir });
    server = undefined;
    cluster = undefined;
  });
  const setup = async () => {
    if (mode.cluster) cluster = await NatsCluster.start(3);
    else server = await NatsServer.start();
    dir = await mkdtemp(join(tmpdir(), 'ubatch-faults-'));
    const nc = await connect({ servers: url().split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    conns.push(nc);
    return { nc, client: new UbatchClient(nc, { user: 'alice', timeoutMs: 20_000 }) };
  };
  const coordinator = (extra: string[] = []) => {
    const p = startDaemon('coordinator', url(), [...replicas, '--output-root', join(dir!, 'out'), '--ack-wait-ms', '2000', ...extra]);
    procs.push(p);
    return p;
  };
  const worker = (id: string, extra: string[] = []) => {
    const p = startDaemon('worker', url(), [...replicas, '--slots', '2', '--id', id, ...extra]);
    procs.push(p);
    return p;
  };
  const submitWhenReady = (client: UbatchClient, spec: Parameters<UbatchClient['submit']>[0]) => submitOnce(() => client.submit(spec), procs);
  /** kill -9 the coordinator, start another 1.5 s later, and wait for the job: it must succeed with `done` tasks */
  const restartCoordinatorAndWait = async (c1: Proc, client: UbatchClient, jobId: string, done: number) => {
    c1.kill('SIGKILL');
    await c1.exited;
    await new Promise((r) => setTimeout(r, 1500));
    const c2 = coordinator(['--id', 'second']);
    const info = await waitJob(client, jobId, 90_000);
    expect(info.state, c2.output().slice(-2000)).toBe('succeeded');
    expect(info.done).toBe(done);
  };
  /** wait for the job; on a timeout say what the daemons said */
  const waitJob = (client: UbatchClient, jobId: string, timeoutMs: number) =>
    client.wait(jobId, { timeoutMs }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the daemons said:\n${daemonTails(procs)}`);
    });

  it('a worker killed with -9 mid-task: its tasks are redelivered, the job completes, no attempt charged twice', async () => {
    const { nc, client } = await setup();
    coordinator();
    // the victim starts alone, so it surely holds tasks (2 slots, 16 queued) when it dies; the survivor comes after
    const victim = worker('victim');
    const sub = await submitWhenReady(client, { kind: 'noop', params: { tasks: 16, sleep_ms: 1500 } });
    const jsm = await jetstreamManager(nc);
    const held = async () => (await jsm.consumers.list(Streams.tasks).next()).reduce((n, ci) => n + ci.num_ack_pending, 0);
    await until(async () => (await held()) >= 2, 30_000, 'the victim to hold 2 tasks', 50);
    await new Promise((r) => setTimeout(r, 300)); // mid-task: each task sleeps 1.5 s and the victim pulls again at once
    victim.kill('SIGKILL');
    await victim.exited;
    worker('survivor');
    const info = await waitJob(client, sub.jobId, 90_000);
    expect(info.state).toBe('succeeded');
    expect(info.done).toBe(16);
    // a task can be charged ok twice only if a stale attempt finished after redelivery; each execution once
    const { charges } = expectLedgerKept([], await readLedger(nc), sub.jobId, 16);
    expect(charges.some((c) => c.attempt >= 2)).toBe(true); // the victim's tasks were redelivered
  }, 120_000);

  it('the coordinator killed with -9 mid-job and restarted: the job completes, each task accepted once', async () => {
    const { nc, client } = await setup();
    const c1 = coordinator();
    worker('w1');
    worker('w2');
    const sub = await submitWhenReady(client, { kind: 'noop', params: { tasks: 60, sleep_ms: 200 } });
    await until(async () => (await client.get(sub.jobId)).done >= 10, 30_000, 'some tasks done');
    await restartCoordinatorAndWait(c1, client, sub.jobId, 60);
    const records = await readLedger(nc);
    // a task may succeed twice only when a slow attempt outlived its ack wait (both are charged: two attempts);
    // no execution is ever charged twice
    expectLedgerKept([], records, sub.jobId, 60);
    expect(records.filter((r) => r.entry.kind === 'job.accepted' && r.entry.jobId === sub.jobId)).toHaveLength(1);
    expect(records.filter((r) => r.entry.kind === 'job.closed' && r.entry.jobId === sub.jobId)).toHaveLength(1);
  }, mode.cluster ? 240_000 : 120_000);

  it('the coordinator killed with -9 mid-reduce and restarted: the reduce result is folded once and the job closes once', async () => {
    const { nc, client } = await setup();
    const c1 = coordinator();
    worker('w1', ['--keep-alive-ms', '500']); // the 4 s reduce outlives the 2 s ack wait only through in-progress acks
    const sub = await submitWhenReady(client, { kind: 'noop', params: { tasks: 6, sleep_ms: 100, reduce_sleep_ms: 4000 } });
    await until(async () => (await client.get(sub.jobId)).state === 'reducing', 60_000, 'the reduce stage');
    await new Promise((r) => setTimeout(r, 1000)); // the reduce task is running on w1
    await restartCoordinatorAndWait(c1, client, sub.jobId, 7);
    const records = await readLedger(nc);
    const { ok } = expectLedgerKept([], records, sub.jobId, 7);
    expect(ok.get(`${sub.jobId}.r`)).toBe(1); // the reduce ran once: the worker's result waited in UB_RESULTS for the new coordinator
    expect(records.filter((r) => r.entry.kind === 'job.closed' && r.entry.jobId === sub.jobId)).toHaveLength(1);
  }, mode.cluster ? 240_000 : 120_000);

  it('a task running 10x the ack wait while reporting progress is not redelivered', async () => {
    const { nc, client } = await setup();
    coordinator();
    worker('steady', ['--keep-alive-ms', '500']);
    const sub = await submitWhenReady(client, { kind: 'command', params: { command: 'sleep 20' }, output: { path: join(dir!, 'long') } });
    const info = await waitJob(client, sub.jobId, 90_000);
    expect(info.state).toBe('succeeded');
    const charges = chargesOf(await readLedger(nc), sub.jobId);
    expect(charges).toHaveLength(1);
    expect(charges[0]!.attempt).toBe(1);
    expect(charges[0]!.usage.wallSeconds).toBeGreaterThan(19);
  }, 120_000);

  it('a worker stopped (SIGSTOP) past the ack wait: another completes the task; the late attempt neither overwrites the output nor is charged twice', async () => {
    const { nc, client } = await setup();
    coordinator();
    const frozen = worker('frozen', ['--keep-alive-ms', '500']);
    const out = join(dir!, 'stop');
    const sub = await submitWhenReady(client, { kind: 'command', params: { command: 'sleep 4; echo "$UBATCH_TASK_ID $$" > "$UBATCH_OUTPUT_DIR/who.txt"' }, output: { path: out } });
    await until(async () => (await client.get(sub.jobId)).state === 'running', 20_000, 'the task to start');
    await new Promise((r) => setTimeout(r, 800));
    frozen.kill('SIGSTOP');
    worker('rescuer', ['--keep-alive-ms', '500']);
    const info = await waitJob(client, sub.jobId, 90_000);
    expect(info.state).toBe('succeeded');
    const { readFileSync } = await import('node:fs');
    const res = await client.results(sub.jobId);
    const accepted = readFileSync(res.files[0]!.path, 'utf8');
    frozen.kill('SIGCONT');
    // the frozen attempt wakes up, finishes and reports late: it is charged as its own execution, and discarded
    await until(async () => chargesOf(await readLedger(nc), sub.jobId).length >= 2, 120_000, 'the late attempt to be charged').catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the resumed worker said:\n${frozen.output().slice(-3000)}`);
    });
    await new Promise((r) => setTimeout(r, 1000));
    expect(readFileSync(res.files[0]!.path, 'utf8')).toBe(accepted);
    const charges = chargesOf(await readLedger(nc), sub.jobId);
    expect(new Set(charges.map((c) => c.execution)).size).toBe(charges.length);
    expect(new Set(charges.map((c) => c.provenance.worker.id))).toEqual(new Set(['frozen', 'rescuer']));
    expect((await client.get(sub.jobId)).done).toBe(1);
  }, 270_000);

  it('a task redelivered after its job was cancelled is acked without running and not charged', async () => {
    const { nc, client } = await setup();
    coordinator();
    const frozen = worker('frozen', ['--keep-alive-ms', '500']);
    const sub = await submitWhenReady(client, { kind: 'noop', params: { tasks: 4, sleep_ms: 8000 } });
    await until(async () => (await client.get(sub.jobId)).state === 'running', 30_000, 'the job to start');
    await new Promise((r) => setTimeout(r, 1000)); // frozen holds 2 tasks (2 slots), 2 wait in the stream
    frozen.kill('SIGSTOP');
    expect((await client.cancel(sub.jobId)).state).toBe('cancelled');
    const rescuer = worker('rescuer', ['--keep-alive-ms', '500']);
    // past the 2 s ack wait the stopped worker's 2 tasks are due for redelivery; only then does the user's next job
    // make the rescuer pull from the user's queue (a cancelled job alone is not ranked), so they come back to it
    // (redelivered) with the 2 queued ones, before the new job's (if the next job ended first, nobody would pull them)
    await new Promise((r) => setTimeout(r, 3000));
    const next = await client.submit({ kind: 'noop', params: { tasks: 2 } });
    expect((await waitJob(client, next.jobId, 60_000)).state).toBe('succeeded');
    const jsm = await jetstreamManager(nc);
    let seen = '';
    await until(async () => {
      const infos = await jsm.consumers.list(Streams.tasks).next();
      seen = JSON.stringify(infos.map((ci) => ({ name: ci.name, pending: ci.num_pending, ackPending: ci.num_ack_pending, redelivered: ci.num_redelivered, waiting: ci.num_waiting })));
      return infos.length > 0 && infos.every((ci) => ci.num_pending === 0 && ci.num_ack_pending === 0);
    }, 60_000, 'every task of the cancelled job to be acked').catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; UB_TASKS consumers: ${seen}`);
    });
    frozen.kill('SIGCONT'); // its two attempts see the cancel and stop
    await until(async () => chargesOf(await readLedger(nc), sub.jobId).length >= 2, 90_000, 'the frozen attempts to be charged as cancelled').catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the resumed worker said:\n${frozen.output().slice(-3000)}`);
    });
    await new Promise((r) => setTimeout(r, 1000));
    const charges = chargesOf(await readLedger(nc), sub.jobId);
    expect(charges.filter((c) => c.provenance.worker.id === 'rescuer'), rescuer.output().slice(-2000)).toEqual([]);
    expect(charges.every((c) => c.outcome === 'cancelled')).toBe(true);
    expect(new Set(charges.map((c) => c.execution)).size).toBe(charges.length);
    expect((await client.get(sub.jobId)).state).toBe('cancelled');
  }, 240_000);

  if (!mode.cluster) for (const how of ['restart', 'kill -9'] as const) {
    it(`nats-server ${how} mid-job: the job completes and no ledger entry is lost`, async () => {
      const { nc, client } = await setup();
      coordinator();
      worker('w1');
      worker('w2');
      const sub = await submitWhenReady(client, { kind: 'noop', params: { tasks: 40, sleep_ms: 150 } });
      await until(async () => (await client.get(sub.jobId)).done >= 8, 30_000, 'some tasks done');
      const before = await readLedger(nc);
      if (how === 'restart') await server!.restart();
      else {
        server!.kill('SIGKILL');
        await server!.exited();
        await server!.restart();
      }
      const info = await waitJob(client, sub.jobId, 120_000);
      expect(info.state, JSON.stringify(info.failures)).toBe('succeeded');
      expect(info.done).toBe(40);
      expectLedgerKept(before, await readLedger(nc), sub.jobId, 40);
    }, 150_000);
  }
});
}
