/**
 * Fault matrix #9 (quorum loss): a 3-node loopback cluster with R3 streams.
 * Under load, kill -9 two of the three nodes: a JetStream publish to
 * UB_LEDGER fails loudly (error or timeout, never an ack that is later
 * missing), the coordinator and workers stay up and retry; restart the two:
 * the job completes, no acknowledged entry is lost, nothing is charged twice.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { NatsCluster } from '../../ops/nats-server.js';
import { encode, ledgerSubject, Streams, type LedgerEntry } from '../../protocol/index.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { expectLedgerKept, readLedgerSettled, sleep, until } from '../helpers/faults.js';

const OUTAGE_MS = 15_000;

describe('3-node cluster, R3 streams: quorum loss', () => {
  let cluster: NatsCluster | undefined;
  let s: TestStack | undefined;
  let probe: NatsConnection | undefined;
  afterAll(async () => {
    await probe?.close().catch(() => undefined);
    await s?.stop();
    await cluster?.cleanup();
  });

  it('kill 2 of 3 nodes: ledger publishes fail loudly (no false acks); full recovery when quorum returns', async () => {
    const N = 300;
    cluster = await NatsCluster.start(3);
    s = await startStack({ servers: cluster.urls, replicas: 3, workers: 2, worker: { slots: 4 }, coordinator: { ackWaitMs: 3000 } });
    const c = await s.client('alice');
    const sub = await c.submit({ kind: 'noop', params: { tasks: N, sleep_ms: 100 } });
    const nc = s.connections[0]!;
    await until(async () => (await c.get(sub.jobId)).done >= 50, 60_000, 'some tasks done');
    const jsm = await jetstreamManager(nc);
    const leader = (await jsm.streams.info(Streams.ledger)).cluster?.leader;
    // kill the ledger leader and one follower; the survivor is a follower without quorum
    const survivor = cluster.servers.find((x) => x.serverName !== leader)!;
    const victims = cluster.servers.filter((x) => x !== survivor);
    probe = await connect({ servers: survivor.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const pjs = jetstream(probe);
    const before = await readLedgerSettled(nc);
    for (const v of victims) v.kill('SIGKILL');
    await Promise.all(victims.map((v) => v.exited()));
    const t0 = Date.now();
    const acked: { msgID: string; seq: number }[] = [];
    const failed: string[] = [];
    for (let i = 0; Date.now() - t0 < OUTAGE_MS; i++) {
      const msgID = `probe/${i}`;
      const e: LedgerEntry = { kind: 'share.set', ts: new Date().toISOString(), actor: 'probe', group: 'probe', user: 'probe', scope: 'user', share: i };
      try {
        const ack = await pjs.publish(ledgerSubject(e.kind, e.group, e.user), encode(e), { msgID, expect: { streamName: Streams.ledger }, timeout: 1500 });
        acked.push({ msgID, seq: ack.seq });
      } catch (err) {
        failed.push((err as Error).message);
      }
      await sleep(300);
    }
    const doneDuring = (await c.get(sub.jobId).catch(() => undefined))?.done;
    // quorum back
    const r0 = Date.now();
    await Promise.all(victims.map((v) => v.restart()));
    const restartS = (Date.now() - r0) / 1000;
    // the same daemons (never restarted) finish the job
    const info = await c.wait(sub.jobId, { timeoutMs: 150_000 });
    const recoverS = (Date.now() - r0) / 1000;
    expect(info.state, JSON.stringify(info.failures.slice(0, 3))).toBe('succeeded');
    expect(info.done).toBe(N);
    // publishes without quorum failed loudly
    expect(failed.length).toBeGreaterThan(0);
    expect(acked).toEqual([]);
    const after = await readLedgerSettled(nc);
    const { charges } = expectLedgerKept(before, after, sub.jobId, N);
    // no false acks: anything acknowledged during the outage is in the ledger at that sequence
    for (const a of acked) expect(after.find((r) => r.seq === a.seq)?.entry.kind).toBe('share.set');
    console.log(
      `[row 9b] killed ${victims.map((v) => v.serverName).join(', ')} (ledger leader ${leader}); ${OUTAGE_MS / 1000} s without quorum: ${failed.length} probe publishes failed ` +
        `(${[...new Set(failed.map((m) => m.replace(/\d+/g, 'N')))].join(' | ')}), ${acked.length} acked; done at the end of the outage ${doneDuring ?? '?'}/${N}; ` +
        `restart took ${restartS.toFixed(1)} s, job done ${recoverS.toFixed(1)} s after the restart began; ${charges.length} charges for ${N} tasks`,
    );
  }, 240_000);
});
