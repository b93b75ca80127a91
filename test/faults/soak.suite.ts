/**
 * Fault matrix #15: soak. Mixed jobs (noop, catalog.sql on a small generated
 * HATS catalog and on a plain CSV, sandboxed command) for a bounded number
 * of tasks while worker processes are killed with -9 and replaced every few
 * seconds. All jobs complete (succeeded), no execution is charged twice,
 * every task is accepted, and the memory (VmRSS) of the coordinator and of
 * a worker that is never killed stays flat between warm-up and the end.
 *
 * UBATCH_FAULT_SOAK_S sets how long workers are killed (default 60 s).
 * Daemons run as real processes from dist/ (`make build` first).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { survey } from '../../astro/index.js';
import { mulberry32 } from '../../astro/random.js';
import { summarizeLedger } from '../../ledger/index.js';
import { UbatchClient, type JobSpec } from '../../protocol/index.js';
import { NatsCluster, NatsServer } from '../../ops/nats-server.js';
import { haveCli, noCliReason, type Proc, startDaemon, tearDown } from '../helpers/procs.js';
import { chargesOf, okChargesPerTask, readLedgerSettled, rssKb, sleep } from '../helpers/faults.js';

const SOAK_S = Number(process.env.UBATCH_FAULT_SOAK_S ?? 60);

/** the soak on one node or on a 3-node R3 cluster (soak.test.ts, soak-cluster.test.ts: vitest runs them side by side) */
export function soakSuite(mode: { name: string; cluster: boolean }): void {
describe.skipIf(!haveCli)(`soak with worker kills, ${mode.name}${haveCli ? '' : ` (skipped: ${noCliReason})`}`, () => {
  let server: NatsServer | NatsCluster | undefined;
  let dir: string | undefined;
  const procs: Proc[] = [];
  let nc: NatsConnection | undefined;
  afterAll(() => tearDown({ procs, conns: [nc], servers: [server], dir }));

  it(`mixed jobs, a worker killed with -9 every few seconds for ${SOAK_S} s: all complete, nothing charged twice, memory flat`, async () => {
    const rand = mulberry32(20261125);
    const cluster = mode.cluster ? await NatsCluster.start(3) : undefined;
    server = cluster ?? (await NatsServer.start());
    const url = cluster ? cluster.urls.join(',') : (server as NatsServer).url;
    const replicas = cluster ? ['--replicas', '3'] : [];
    dir = await mkdtemp(join(tmpdir(), 'ubatch-soak-'));
    nc = await connect({ servers: url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const c = new UbatchClient(nc, { user: 'alice', timeoutMs: 20_000 });
    const coord = startDaemon('coordinator', url, [...replicas, '--output-root', join(dir, 'out'), '--ack-wait-ms', '2000', '--id', 'soak']);
    procs.push(coord);
    const worker = (id: string) => {
      const p = startDaemon('worker', url, [...replicas, '--slots', '2', '--id', id, '--keep-alive-ms', '500']);
      procs.push(p);
      return p;
    };
    const steady = worker('steady');
    const churn = [worker('churn-0'), worker('churn-1')];
    const catalog = join(dir, 'object');
    await survey.generateObjectCatalog(catalog, { rows: 20_000, seed: 11, maxRowsPerPartition: 2000, region: { raMin: 30, raMax: 60, decMin: -40, decMax: -10 } });
    const csv = join(dir, 'small.csv');
    await writeFile(csv, 'id,ra,dec,mag\n' + Array.from({ length: 200 }, (_, i) => `${i},${10 + i / 100},${20 - i / 100},${18 + (i % 7) / 2}`).join('\n') + '\n');
    let k = 0;
    const spec = (kind: string): JobSpec => {
      const out = join(dir!, `out-${k++}`);
      if (kind === 'noop') return { kind: 'noop', params: { tasks: 250, sleep_ms: 20 } };
      if (kind === 'sql') return { kind: 'catalog.sql', input: { catalog }, params: { map: 'SELECT floor(r_mag) AS r, count(*) AS n FROM partition GROUP BY ALL', reduce: 'SELECT r, sum(n)::BIGINT AS n FROM partials GROUP BY ALL ORDER BY ALL' }, output: { path: `${out}.parquet` } };
      if (kind === 'csv') return { kind: 'catalog.sql', input: { catalog: csv }, params: { map: 'SELECT count(*) AS n, avg(mag) AS m FROM partition', reduce: 'SELECT sum(n) AS n FROM partials' }, output: { path: `${out}.parquet` } };
      return { kind: 'command', params: { command: 'echo "$UBATCH_TASK_ID" > "$UBATCH_OUTPUT_DIR/id.txt"', tasks: 20 }, output: { path: out } };
    };
    const jobs: { jobId: string; tasks: number; kind: string }[] = [];
    const submit = async (kind: string) => {
      for (let i = 0; ; i++) {
        try {
          const s = await c.submit(spec(kind));
          jobs.push({ jobId: s.jobId, tasks: s.tasks, kind });
          return s;
        } catch (err) {
          if (i > 100) throw err;
          await sleep(200); // coordinator still starting
        }
      }
    };
    // warm-up: one job of each kind, then the memory baseline
    const tw = Date.now();
    for (const kind of ['noop', 'sql', 'csv', 'cmd']) await submit(kind);
    for (const j of jobs) expect((await c.wait(j.jobId, { timeoutMs: 120_000 })).state).toBe('succeeded');
    await sleep(2000);
    const warmS = (Date.now() - tw) / 1000;
    const rss0 = { coordinator: rssKb(coord.child.pid!), worker: rssKb(steady.child.pid!) };

    // soak: submit more work every few seconds, kill a churning worker with -9 every 2-6 s and replace it
    const t0 = Date.now();
    const kinds = ['noop', 'sql', 'cmd', 'noop', 'csv', 'sql', 'cmd', 'noop'];
    let kills = 0;
    let nextSubmit = 0;
    let nextKill = t0 + 2000 + rand() * 4000;
    while (Date.now() - t0 < SOAK_S * 1000) {
      if (Date.now() - t0 >= nextSubmit * 5000 && nextSubmit < 14) await submit(kinds[nextSubmit++ % kinds.length]!);
      if (Date.now() >= nextKill) {
        const i = Math.floor(rand() * churn.length);
        churn[i]!.kill('SIGKILL');
        await churn[i]!.exited;
        churn[i] = worker(`churn-${i}-${++kills}`);
        nextKill = Date.now() + 2000 + rand() * 4000;
      }
      await sleep(200);
    }
    const soakS = (Date.now() - t0) / 1000;
    const results = [];
    for (const j of jobs) results.push({ ...j, info: await c.wait(j.jobId, { timeoutMs: 180_000 }) });
    const drainS = (Date.now() - t0) / 1000 - soakS;
    await sleep(2000);
    const rss1 = { coordinator: rssKb(coord.child.pid!), worker: rssKb(steady.child.pid!) };

    for (const r of results) expect(r.info.state, `${r.kind} ${r.jobId}: ${JSON.stringify(r.info.failures.slice(0, 2))}`).toBe('succeeded');
    const records = await readLedgerSettled(nc);
    expect(summarizeLedger(records).duplicateCharges).toEqual([]);
    let tasks = 0;
    let executions = 0;
    for (const r of results) {
      expect(r.info.done).toBe(r.tasks);
      expect(okChargesPerTask(records, r.jobId).size).toBe(r.tasks);
      const ch = chargesOf(records, r.jobId);
      expect(new Set(ch.map((x) => x.execution)).size).toBe(ch.length);
      tasks += r.tasks;
      executions += ch.length;
    }
    expect(kills).toBeGreaterThanOrEqual(Math.floor(SOAK_S / 8));
    expect(steady.child.exitCode).toBeNull();
    expect(coord.child.exitCode).toBeNull();
    // memory flat: generous bounds for GC timing on a busy machine
    const growth = { coordinator: rss1.coordinator - rss0.coordinator, worker: rss1.worker - rss0.worker };
    console.log(
      `[row 15, ${mode.name}] ${results.length} jobs (${[...new Set(results.map((r) => r.kind))].join(', ')}), ${tasks} tasks, ${executions} executions charged; warm-up ${warmS.toFixed(0)} s, ${kills} worker kills in ${soakS.toFixed(0)} s, drained ${drainS.toFixed(0)} s later; ` +
        `VmRSS coordinator ${(rss0.coordinator / 1024).toFixed(1)} -> ${(rss1.coordinator / 1024).toFixed(1)} MB, steady worker ${(rss0.worker / 1024).toFixed(1)} -> ${(rss1.worker / 1024).toFixed(1)} MB`,
    );
    for (const who of ['coordinator', 'worker'] as const) expect(growth[who], `${who} VmRSS grew ${growth[who]} kB from ${rss0[who]} kB`).toBeLessThan(Math.max(60 * 1024, rss0[who] / 2));
  }, 300_000);
});
}
