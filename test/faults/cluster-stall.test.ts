/**
 * Fault matrix #9 (stalled leader): a 3-node loopback cluster with R3
 * streams. Under load, SIGSTOP the UB_LEDGER stream leader for 30 s, then
 * SIGCONT it. No divergent ledger: after recovery each node's own replica of
 * UB_LEDGER (its monitoring state, then its file store read from disk after
 * a clean shutdown) holds the same messages at the same sequences; nothing
 * acknowledged is lost, nothing is charged twice, the job completes.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, describe, expect, it } from 'vitest';
import { NatsCluster } from '../../ops/nats-server.js';
import { Streams } from '../../protocol/index.js';
import { recordingLog, startStack, type TestStack } from '../helpers/stack.js';
import { digestStored, expectLedgerKept, jszStreamState, readLedgerSettled, readStoredStream, sleep, until } from '../helpers/faults.js';

const STOP_MS = Number(process.env.UBATCH_FAULT_STALL_S ?? 30) * 1000;

describe('3-node cluster, R3 streams: stalled ledger leader', () => {
  let cluster: NatsCluster | undefined;
  let s: TestStack | undefined;
  const afterDone: (() => void)[] = [];
  afterAll(async () => {
    for (const f of afterDone) f();
    await s?.stop();
    await cluster?.cleanup();
  });

  it(`SIGSTOP of the ledger stream leader for ${STOP_MS / 1000} s under load: no divergent ledger`, async () => {
    const N = 1500;
    cluster = await NatsCluster.start(3);
    const log = recordingLog();
    s = await startStack({ log, servers: cluster.urls, replicas: 3, workers: 2, worker: { slots: 4 }, coordinator: { ackWaitMs: 3000 } });
    const c = await s.client('alice');
    const sub = await c.submit({ kind: 'noop', params: { tasks: N, sleep_ms: 100 } });
    const nc = s.connections[0]!;
    const jsm = await jetstreamManager(nc);
    await until(async () => (await c.get(sub.jobId)).done >= 100, 60_000, 'some tasks done');
    const leaderName = (await jsm.streams.info(Streams.ledger)).cluster?.leader;
    const victim = cluster.servers.find((x) => x.serverName === leaderName)!;
    expect(victim, `leader ${leaderName}`).toBeDefined();
    const before = await readLedgerSettled(nc);
    const doneAtStop = (await c.get(sub.jobId)).done;
    victim.kill('SIGSTOP');
    await sleep(STOP_MS);
    const doneAtCont = (await c.get(sub.jobId).catch(() => undefined))?.done;
    const leaderDuring = (await jsm.streams.info(Streams.ledger).catch(() => undefined))?.cluster?.leader;
    victim.kill('SIGCONT');
    const t0 = Date.now();
    const progress: string[] = [];
    const tick = setInterval(() => void c.get(sub.jobId).then((i) => progress.push(`${((Date.now() - t0) / 1000).toFixed(0)} s: ${i.state} done ${i.done} released ${i.released}`), () => undefined), 5000);
    afterDone.push(() => clearInterval(tick));
    const info = await c.wait(sub.jobId, { timeoutMs: 150_000 }).catch(async (err: unknown) => {
      const lines = [];
      for (const st of [Streams.tasks, Streams.results, Streams.ledger]) {
        const si = await jsm.streams.info(st).catch((e: Error) => e.message);
        lines.push(`${st}: ${typeof si === 'string' ? si : JSON.stringify({ state: { messages: si.state.messages, last: si.state.last_seq }, cluster: si.cluster })}`);
        for await (const ci of jsm.consumers.list(st)) lines.push(`  ${ci.name}: pending ${ci.num_pending} ack_pending ${ci.num_ack_pending} redelivered ${ci.num_redelivered} waiting ${ci.num_waiting} leader ${ci.cluster?.leader}`);
      }
      console.log(`[row 9c] stuck: ${JSON.stringify(await c.get(sub.jobId).catch(() => undefined))?.slice(0, 400)}\n${lines.join('\n')}\n${progress.join('\n')}\n${log.lines.slice(-80).join('\n')}`);
      throw err;
    });
    const finishS = (Date.now() - t0) / 1000;
    expect(info.state, JSON.stringify(info.failures.slice(0, 3))).toBe('succeeded');
    expect(info.done).toBe(N);
    const after = await readLedgerSettled(nc);
    const { charges } = expectLedgerKept(before, after, sub.jobId, N);
    // every node's own replica converges to the same state (monitoring endpoint of each node)
    let states: (Awaited<ReturnType<typeof jszStreamState>> | undefined)[] = [];
    // (a follower that was stopped catches up at its own pace on a loaded machine: allow 90 s)
    await until(
      async () => {
        states = await Promise.all(cluster!.servers.map((x) => jszStreamState(x.monitorUrl!, Streams.ledger)));
        return states.every((st) => st !== undefined && JSON.stringify(st) === JSON.stringify(states[0]) && st.last_seq >= after.at(-1)!.seq);
      },
      90_000,
      'replicas to converge',
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; last states per node: ${JSON.stringify(states)}`);
    });
    // stop everything cleanly, then read each node's file store from disk and compare message by message
    await s.stop();
    s = undefined;
    await cluster.stop();
    const copies = cluster.servers.map((x) => readStoredStream(x.storeDir, Streams.ledger));
    const ref = copies[0]!;
    // no gaps (deny_delete), and everything read through the API before the shutdown is there
    expect(ref.map((m) => m.seq)).toEqual(Array.from({ length: ref.length }, (_, i) => i + 1));
    expect(ref.length).toBeGreaterThanOrEqual(after.length);
    for (const copy of copies.slice(1)) {
      expect(copy.length).toBe(ref.length);
      expect(digestStored(copy)).toBe(digestStored(ref));
    }
    console.log(
      `[row 9c] leader ${leaderName} stopped ${STOP_MS / 1000} s at ${doneAtStop}/${N} done (${doneAtCont ?? '?'} at SIGCONT, leader meanwhile ${leaderDuring ?? '?'}); ` +
        `job done ${finishS.toFixed(1)} s after SIGCONT; ${charges.length} charges; replicas: ${JSON.stringify(states[0])}, ${copies.map((x) => x.length).join('/')} messages on disk, digest ${digestStored(ref).slice(0, 12)} on all 3 nodes`,
    );
  }, 240_000);
});
