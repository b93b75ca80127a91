/**
 * worker/batcher.ts against a real nats-server that goes away while a batch of
 * finished tasks is being committed: the same batch is retried (same msgIDs)
 * until the server is back, so work that was done is charged exactly once and
 * its task messages are acked; past `retryForMs` the tasks are nak'ed
 * (handed back for redelivery) and no attempt is charged twice.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { afterEach, describe, expect, it } from 'vitest';
import { LedgerWriter, readLedger } from '../../ledger/index.js';
import { NatsServer } from '../../ops/nats-server.js';
import { ensureTopology, Streams, type Charge, type Log, type TaskOutcome } from '../../protocol/index.js';
import { OutcomeBatcher, type Finished } from '../../worker/batcher.js';
import { chargesOf, sleep, until } from '../helpers/faults.js';

const usage = { cpuSeconds: 0.1, wallSeconds: 0.2, gpuSeconds: 0, peakRssBytes: 1, bytesRead: 1, bytesWritten: 1, allocatedCores: 1 };
const charge = (jobId: string, i: number): Charge => ({
  taskId: `${jobId}.${i}`,
  jobId,
  attempt: 1,
  execution: `w1.${i}`,
  outcome: 'ok',
  usage,
  provenance: { inputs: [], outputs: [], code: { ubatchVersion: '0', gitCommit: 'x', kind: 'noop' }, params: {}, worker: { id: 'w1', host: 'h', pid: 1 }, startedAt: '', endedAt: '' },
});
const outcome = (jobId: string, i: number): TaskOutcome => ({ taskId: `${jobId}.${i}`, index: i, stage: 'map', attempt: 1, status: 'ok', workerId: 'w1', usage });

function recordingLog(): Log & { warnings: string[]; errors: string[] } {
  const warnings: string[] = [];
  const errors: string[] = [];
  const log = {
    warnings,
    errors,
    debug: () => {},
    info: () => {},
    warn: (_o: unknown, msg?: string) => void warnings.push(msg ?? ''),
    error: (_o: unknown, msg?: string) => void errors.push(msg ?? ''),
    child: () => log,
  };
  return log as unknown as Log & { warnings: string[]; errors: string[] };
}

describe('outcome batcher while the server is away', () => {
  let server: NatsServer | undefined;
  let nc: NatsConnection | undefined;
  afterEach(async () => {
    await nc?.close().catch(() => {});
    await server?.cleanup();
    nc = undefined;
    server = undefined;
  });

  /** a server with the topology and a work stream holding n messages, fetched (unacked) by one consumer */
  async function setup(n: number): Promise<{ msgs: JsMsg[]; pending: () => Promise<{ ackPending: number; pending: number }> }> {
    server = await NatsServer.start();
    nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await ensureTopology(nc);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'WORK', subjects: ['work.>'] });
    await jsm.consumers.add('WORK', { durable_name: 'w', ack_policy: AckPolicy.Explicit, ack_wait: 120_000_000_000 });
    const js = jetstream(nc);
    for (let i = 0; i < n; i++) await js.publish(`work.${i}`, new Uint8Array([i]));
    const c = await js.consumers.get('WORK', 'w');
    const msgs: JsMsg[] = [];
    for await (const m of await c.fetch({ max_messages: n, expires: 5000 })) {
      msgs.push(m);
      if (msgs.length === n) break;
    }
    const pending = async () => {
      const ci = await (await jetstreamManager(nc!)).consumers.info('WORK', 'w');
      return { ackPending: ci.num_ack_pending, pending: ci.num_pending };
    };
    return { msgs, pending };
  }

  const finished = (msgs: JsMsg[], jobId: string): Finished[] =>
    msgs.map((msg, i) => ({ msg, jobId, group: 'g', user: 'alice', actor: 'w1', outcome: outcome(jobId, i), charge: charge(jobId, i), action: { type: 'ack' } }));

  it('retries the same batch until the server is back: each attempt charged once, results published once, tasks acked', async () => {
    const { msgs, pending } = await setup(3);
    const log = recordingLog();
    // one try per append, so the outage is seen by the batcher and not absorbed by the ledger writer's own retries
    const batcher = new OutcomeBatcher(jetstream(nc!, { timeout: 1500 }), new LedgerWriter(jetstream(nc!, { timeout: 1500 }), { maxTries: 1 }), log, { maxBatch: 100, lingerMs: 10 });
    server!.kill('SIGSTOP');
    for (const f of finished(msgs, 'job1')) batcher.add(f);
    await until(() => log.warnings.length >= 2, 30_000, 'two failed commits');
    server!.kill('SIGCONT');
    await batcher.drain();
    expect(log.errors).toEqual([]);
    const charges = chargesOf(await readLedger(nc!), 'job1');
    expect(charges.map((c) => c.taskId).sort()).toEqual(['job1.0', 'job1.1', 'job1.2']);
    const jsm = await jetstreamManager(nc!);
    const results = await jsm.streams.info(Streams.results);
    expect(results.state.messages).toBe(1); // one message for the job's batch, however many tries
    await until(async () => (await pending()).ackPending === 0, 10_000, 'the tasks to be acked');
    expect(await pending()).toEqual({ ackPending: 0, pending: 0 });
  }, 60_000);

  it('gives up after retryForMs and hands the tasks back (nak), charging no attempt twice', async () => {
    const { msgs, pending } = await setup(2);
    const log = recordingLog();
    const batcher = new OutcomeBatcher(jetstream(nc!, { timeout: 800 }), new LedgerWriter(jetstream(nc!, { timeout: 800 }), { maxTries: 1 }), log, { maxBatch: 100, lingerMs: 10, retryForMs: 2000 });
    server!.kill('SIGSTOP');
    for (const f of finished(msgs, 'job2')) batcher.add(f);
    await until(() => log.errors.length >= 1, 30_000, 'the batch to be given up');
    server!.kill('SIGCONT');
    await batcher.drain();
    expect(log.errors[0]).toMatch(/redelivered/);
    // the publish that timed out may still have been stored when the server woke up: then each attempt is
    // charged once (it did run), never twice
    const charges = chargesOf(await readLedger(nc!), 'job2');
    expect(charges.length).toBeLessThanOrEqual(2);
    expect(new Set(charges.map((c) => c.execution)).size).toBe(charges.length);
    // nak'ed with a 5 s delay: the two messages come back for redelivery
    await sleep(500);
    const { ackPending, pending: waiting } = await pending();
    expect(ackPending + waiting).toBe(2);
    const c = await jetstream(nc!).consumers.get('WORK', 'w');
    const again: number[] = [];
    for await (const m of await c.fetch({ max_messages: 2, expires: 10_000 })) {
      again.push(m.info.deliveryCount);
      m.ack();
      if (again.length === 2) break;
    }
    expect(again).toEqual([2, 2]);
  }, 60_000);
});
