/**
 * The seal chain and the accountant journal across a coordinator `kill -9`
 * mid-block (daemons as real processes, the built CLI): the restarted
 * coordinator rebuilds the chain head from the stream, continues the journal
 * without duplicates, and `ubatch ledger verify --journal` passes; a clean
 * shutdown seals the tail.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { VerifyReport } from '../../ledger/index.js';
import { runCli } from '../../ops/commands/program.js';
import { NatsServer } from '../../ops/nats-server.js';
import { UbatchClient } from '../../protocol/index.js';
import { haveCli, noCliReason, type Proc, startDaemon, stopDaemon, tearDown } from '../helpers/procs.js';

async function verify(server: string, journal: string, cwd: string): Promise<{ code: number; report: VerifyReport }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.resume();
  const code = await runCli(['node', 'ubatch', '--server', server, 'ledger', 'verify', '--journal', journal, '--json'], { io: { out, err }, env: {}, cwd });
  return { code, report: JSON.parse(stdout) as VerifyReport };
}

async function submitWhenUp(client: UbatchClient, tasks: number) {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      return await client.submit({ kind: 'noop', params: { tasks, sleep_ms: 20 } });
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 200)); // the coordinator is still starting
    }
  }
}

describe.skipIf(!haveCli)(`ledger seals across a coordinator kill -9${haveCli ? '' : ` (skipped: ${noCliReason})`}`, () => {
  let server: NatsServer | undefined;
  let dir: string | undefined;
  const procs: Proc[] = [];
  let nc: NatsConnection | undefined;
  afterEach(() => tearDown({ procs, conns: [nc], servers: [server], dir }));

  it('the restarted coordinator continues the chain and the journal; verify passes', async () => {
    server = await NatsServer.start();
    dir = await mkdtemp(join(tmpdir(), 'ubatch-seal-restart-'));
    const journalDir = join(dir, 'journal');
    nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const client = new UbatchClient(nc, { user: 'alice', timeoutMs: 20_000 });
    // seal by count only (every 7 entries): what is left after a job is an open block
    const coordArgs = ['--output-root', join(dir, 'out'), '--journal-dir', journalDir, '--seal-entries', '7', '--seal-interval-ms', '600000', '--ack-wait-ms', '2000'];
    let coord = startDaemon('coordinator', server.url, coordArgs);
    procs.push(coord);
    const worker = startDaemon('worker', server.url, ['--slots', '2', '--id', 'w1']);
    procs.push(worker);

    const first = await submitWhenUp(client, 24);
    expect((await client.wait(first.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    let mid: VerifyReport | undefined;
    const end = Date.now() + 20_000;
    let nudged = false;
    for (;;) {
      mid = (await verify(server.url, journalDir, dir)).report;
      if ((mid.seals.accepted >= 1 && mid.unsealed.count > 0) || Date.now() > end) break;
      if (mid.seals.accepted >= 1 && !nudged) {
        // the entries happened to fill whole blocks (workers batch charges): a one-task job adds 3 (< 7)
        nudged = true;
        await client.wait((await client.submit({ kind: 'noop', params: { tasks: 1 } })).jobId, { timeoutMs: 30_000 });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(mid.ok).toBe(true);
    expect(mid.seals.accepted).toBeGreaterThanOrEqual(1);
    expect(mid.unsealed.count).toBeGreaterThan(0); // mid-block

    coord.kill('SIGKILL');
    await coord.exited;
    coord = startDaemon('coordinator', server.url, coordArgs);
    procs.push(coord);
    const second = await submitWhenUp(client, 24);
    expect((await client.wait(second.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    // a clean shutdown seals the tail (the worker first: its last charges are appended as it drains)
    await stopDaemon(worker);
    await stopDaemon(coord);

    const { code, report } = await verify(server.url, journalDir, dir);
    expect(report.problems).toEqual([]);
    expect(code).toBe(0);
    expect(report.seals.found).toBe(report.seals.accepted); // no seal was rejected or duplicated
    expect(report.seals.accepted).toBeGreaterThan(mid.seals.accepted);
    expect(report.unsealed.count).toBe(0);
    expect(report.balances.tenants['default.alice']!.attempts).toBeGreaterThanOrEqual(48);
    // one journal file, one line per message up to the final seal, no duplicate sequence
    const files = (await readdir(journalDir)).filter((n) => n.endsWith('.jsonl'));
    expect(files).toHaveLength(1);
    const seqs = (await readFile(join(journalDir, files[0]!), 'utf8'))
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(report.journal!.matched).toBe(seqs.length);
    expect(seqs.length).toBeGreaterThanOrEqual(report.messages - 1); // the final seal may be read back after the journal closed
  }, 150_000);
});
