/**
 * Fault matrix #11: the accountant (a ledger follower inside the coordinator)
 * is down for minutes while workers keep finishing released tasks and
 * appending charges to UB_LEDGER. When a coordinator comes back it replays
 * the ledger: every charge is applied exactly once (the user's period usage
 * equals the sum of the charges in the ledger), the job completes.
 *
 * UBATCH_FAULT_OUTAGE_S sets the outage (default 90 s; CI uses the default).
 * Daemons run as real processes from dist/ (`make build` first).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { summarizeLedger } from '../../ledger/index.js';
import { UbatchClient } from '../../protocol/index.js';
import { NatsServer } from '../../ops/nats-server.js';
import { haveCli, noCliReason, type Proc, startDaemon, tearDown } from '../helpers/procs.js';
import { chargesOf, coreSeconds, okChargesPerTask, readLedgerSettled, sleep, until } from '../helpers/faults.js';

const OUTAGE_S = Number(process.env.UBATCH_FAULT_OUTAGE_S ?? 90);
const SLOTS = 4; // 2 workers x 2 slots
const SLEEP_MS = 2000;

describe.skipIf(!haveCli)(`accountant outage${haveCli ? '' : ` (skipped: ${noCliReason})`}`, () => {
  let server: NatsServer | undefined;
  let dir: string | undefined;
  const procs: Proc[] = [];
  let nc: NatsConnection | undefined;
  afterAll(() => tearDown({ procs, conns: [nc], servers: [server], dir }));

  it(`coordinator (accountant) down ${OUTAGE_S} s while workers charge: every charge applied exactly once after it returns`, async () => {
    server = await NatsServer.start();
    dir = await mkdtemp(join(tmpdir(), 'ubatch-outage-'));
    nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const alice = new UbatchClient(nc, { user: 'alice', timeoutMs: 20_000 });
    const ops = new UbatchClient(nc, { user: 'ops', timeoutMs: 20_000 });
    const coordinator = (id: string) => {
      const p = startDaemon('coordinator', server!.url, ['--output-root', join(dir!, 'out'), '--ack-wait-ms', '5000', '--id', id, '--operators', 'ops']);
      procs.push(p);
      return p;
    };
    const c1 = coordinator('first');
    for (const id of ['w1', 'w2']) procs.push(startDaemon('worker', server.url, ['--slots', '2', '--id', id, '--keep-alive-ms', '1000']));
    // enough released work to keep every slot busy through the outage and a little after
    const N = Math.ceil((SLOTS * (OUTAGE_S + 20) * 1000) / SLEEP_MS);
    let sub;
    for (;;) {
      try {
        sub = await alice.submit({ kind: 'noop', params: { tasks: N, sleep_ms: SLEEP_MS } });
        break;
      } catch {
        await sleep(200); // coordinator still starting
      }
    }
    await until(async () => {
      const i = await alice.get(sub.jobId);
      return i.released === N && i.done >= SLOTS;
    }, 60_000, 'all tasks released and some done');
    const doneAtKill = (await alice.get(sub.jobId)).done;
    c1.kill('SIGKILL');
    await c1.exited;
    const tKill = Date.now();
    await sleep(OUTAGE_S * 1000);
    // the workers kept charging while nobody folded the ledger
    const during = chargesOf(await readLedgerSettled(nc), sub.jobId).filter((c) => c.time > tKill + 1000);
    expect(during.length).toBeGreaterThan(SLOTS);
    const tBack = Date.now();
    coordinator('second');
    const info = await alice.wait(sub.jobId, { timeoutMs: 240_000 });
    const finishS = (Date.now() - tBack) / 1000;
    expect(info.state, JSON.stringify(info.failures.slice(0, 3))).toBe('succeeded');
    expect(info.done).toBe(N);
    const records = await readLedgerSettled(nc);
    expect(summarizeLedger(records).duplicateCharges).toEqual([]);
    expect(okChargesPerTask(records, sub.jobId).size).toBe(N);
    const mine = chargesOf(records).filter((c) => c.user === 'alice');
    expect(new Set(mine.map((c) => c.execution)).size).toBe(mine.length);
    const ledgerS = mine.reduce((a, c) => a + coreSeconds(c), 0);
    // the returned accountant's period usage counts each charge once: no double count from the replay
    const q = (await alice.quotaGet()) as { user: { used: { cpu_hours: number } } };
    const usedS = q.user.used.cpu_hours * 3600;
    expect(Math.abs(usedS - ledgerS)).toBeLessThan(1e-6 * ledgerS + 1e-9);
    // and the report rebuilt from the ledger agrees with the sum of charges
    const rep = (await ops.report({ user: 'alice', to: new Date(Date.now() + 60_000).toISOString() })) as { checks: { equal: boolean; sumOfCharges: number } };
    expect(rep.checks.equal).toBe(true);
    console.log(
      `[row 11] outage ${OUTAGE_S} s at ${doneAtKill}/${N} done; ${during.length} charges appended while the accountant was down; ` +
        `job done ${finishS.toFixed(1)} s after the restart; ${mine.length} charges, ledger sum ${ledgerS.toFixed(3)} core-s = accountant ${usedS.toFixed(3)} core-s`,
    );
  }, (OUTAGE_S + 300) * 1000);
});
