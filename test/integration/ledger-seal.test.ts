/**
 * Tamper evidence end to end on a real nats-server: the coordinator seals the
 * ledger as jobs run and journals it; `ubatch ledger verify` passes; then the
 * tampering that is possible is caught: a forged entry appended later sits in
 * the unsealed tail (it cannot enter a sealed range), a copy of the stream
 * with one entry altered or removed names that exact sequence, and an altered,
 * removed or lost journal line is named too.
 */
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sealer } from '../../coordinator/sealer.js';
import { LedgerFollower, LedgerWriter, readLedger, replayLedgerRaw, verifyLedger, type RawLedgerMessage, type VerifyReport } from '../../ledger/index.js';
import { runCli } from '../../ops/commands/program.js';
import { NatsServer } from '../../ops/nats-server.js';
import { connectOptionsFor, initAuth, readCredentials, type Credentials } from '../../ops/auth.js';
import { includeLine } from '../../ops/commands/auth.js';
import { Coordinator } from '../../coordinator/index.js';
import { WorkerDaemon } from '../../worker/index.js';
import { decode, encode, ensureTopology, ledgerSubject, SEAL_SUBJECT, Streams, UbatchClient, type LedgerEntry } from '../../protocol/index.js';
import { startStack, type TestStack } from '../helpers/stack.js';

async function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(['node', 'ubatch', ...args], { io: { out, err }, env: {}, cwd });
  return { code, stdout, stderr };
}

async function verifyJson(server: string, cwd: string, extra: string[] = []): Promise<{ code: number; report: VerifyReport }> {
  const r = await cli(['--server', server, 'ledger', 'verify', '--json', ...extra], cwd);
  expect(r.stderr).not.toMatch(/TypeError|ReferenceError/);
  return { code: r.code, report: JSON.parse(r.stdout) as VerifyReport };
}

const until = async (pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string) => {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
};

async function rawLedger(nc: NatsConnection): Promise<RawLedgerMessage[]> {
  const info = await (await jetstreamManager(nc)).streams.info(Streams.ledger);
  const out: RawLedgerMessage[] = [];
  for await (const m of replayLedgerRaw(nc, info.state.last_seq)) out.push(m);
  return out;
}

describe('sealed ledger, ubatch ledger verify', () => {
  let s: TestStack;
  let dir: string;
  let journalDir: string;
  let copy: NatsServer | undefined;
  let url: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-seal-'));
    journalDir = join(dir, 'journal');
    s = await startStack({ workers: 2, coordinator: { journalDir, sealEntries: 6, sealIntervalMs: 500 } });
    url = s.server!.url;
  }, 60_000);
  afterAll(async () => {
    await copy?.cleanup();
    await s?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('seals while jobs run; verify passes with the journal; summary and export tolerate seals', async () => {
    const alice = await s.client('alice');
    const bob = await s.client('bob');
    const jobs = await Promise.all([alice.submit({ kind: 'noop', params: { tasks: 30, sleep_ms: 30 } }), bob.submit({ kind: 'noop', params: { tasks: 20, sleep_ms: 30 } })]);
    expect((await alice.wait(jobs[0].jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    expect((await bob.wait(jobs[1].jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    const sealer = s.coordinator.ledgerSealer!;
    await until(() => sealer.chain.pendingCount === 0 && sealer.chain.block >= 2, 20_000, 'everything sealed');

    const { code, report } = await verifyJson(url, dir, ['--journal', journalDir]);
    expect(report.problems).toEqual([]);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.seals.accepted).toBe(report.seals.found);
    expect(report.seals.accepted).toBeGreaterThanOrEqual(2);
    expect(report.unsealed.count).toBe(0);
    // the journal holds every message the accountant folded (maybe not the very last seal yet)
    expect(report.journal!.matched).toBeGreaterThanOrEqual(report.messages - 1);
    expect(report.journal!.matched + report.journal!.notYetJournaled).toBe(report.messages);
    // balances recomputed by verify = the charges in the ledger, as the accountant charges them
    const records = await readLedger(s.connections[0]!);
    let alicesCore = 0;
    for (const r of records) if (r.entry.kind === 'task.charged' && r.entry.user === 'alice') for (const c of r.entry.charges) alicesCore += c.usage.wallSeconds * (c.usage.allocatedCores ?? 1);
    expect(report.balances.tenants['default.alice']!.coreSeconds).toBeCloseTo(alicesCore, 9);
    expect(report.balances.tenants['default.alice']!.attempts).toBe(30);
    expect(report.sealedTotals).toEqual(report.balances.totals);

    const human = await cli(['--server', url, 'ledger', 'verify', '--journal', journalDir], dir);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/INTACT/);
    const summary = await cli(['--server', url, 'ledger', 'summary', '--json'], dir);
    expect(summary.code).toBe(0);
    expect((JSON.parse(summary.stdout) as { byKind: Record<string, number> }).byKind['ledger.sealed']).toBe(report.seals.found);
    const exp = await cli(['--server', url, 'ledger', 'export', '--out', join(dir, 'ledger.csv'), '--json'], dir);
    expect(exp.code).toBe(0);
    // the accountant ignored the seals: only real tenants have usage
    expect(s.coordinator.manager.acct.memberships.has('_ledger')).toBe(false);
  }, 120_000);

  it('a forged charge appended after a seal cannot enter the sealed range: it is the unsealed tail', async () => {
    const sealer = s.coordinator.ledgerSealer!;
    sealer.stop(); // hold the next seal so the tail can be seen
    const nc = s.connections[0]!;
    const before = await verifyJson(url, dir);
    const forged: LedgerEntry = {
      kind: 'task.charged',
      ts: new Date().toISOString(),
      actor: 'mallory',
      group: 'default',
      user: 'bob',
      charges: [
        {
          taskId: 'forged-1',
          jobId: 'forged',
          attempt: 1,
          execution: 'x.1',
          outcome: 'ok',
          usage: { cpuSeconds: 0, wallSeconds: 5000, gpuSeconds: 0, peakRssBytes: 0, bytesRead: 0, bytesWritten: 0, allocatedCores: 1 },
          provenance: { inputs: [], outputs: [], code: { ubatchVersion: '0', gitCommit: '0', kind: 'noop' }, params: {}, worker: { id: 'x', host: 'x', pid: 1 }, startedAt: '', endedAt: '' },
        },
      ],
    };
    const ack = await jetstream(nc).publish(ledgerSubject('task.charged', 'default', 'bob'), encode(forged));
    expect(ack.seq).toBeGreaterThan(before.report.seals.sealedThrough);
    const after = await verifyJson(url, dir);
    expect(after.code).toBe(0); // nothing sealed was touched
    expect(after.report.unsealed).toMatchObject({ count: 1, firstSeq: ack.seq, lastSeq: ack.seq, coreSeconds: 5000, attempts: 1 });
    expect(after.report.balances.totals.coreSeconds - after.report.sealedTotals!.coreSeconds).toBe(5000);
    expect(after.report.sealedTotals).toEqual(before.report.sealedTotals);
    // sealing resumes (seals say what was appended when; they do not judge it: permissions keep forgers out)
    sealer.start();
    await until(() => sealer.chain.pendingCount === 0, 10_000, 'the tail sealed');
    const sealed = await verifyJson(url, dir);
    expect(sealed.code).toBe(0);
    expect(sealed.report.seals.sealedThrough).toBeGreaterThanOrEqual(ack.seq);
  }, 60_000);

  it('a copy of the stream with one entry altered or removed: verify names that sequence (and the journal does too)', async () => {
    const original = await rawLedger(s.connections[0]!);
    const lastSeal = original.filter((m) => m.subject === 'ub.ledger.seal').at(-1)!;
    // a charge well inside the sealed range, with no seal right before or after it: in a renumbered copy, a removed
    // entry next to a seal that landed late is only placed to within one sequence (the seal may have stood before or
    // after it; test/unit/ledger-seal.test.ts covers those layouts), and this test names the exact sequence
    const sealSeqs = new Set(original.filter((m) => m.subject === SEAL_SUBJECT).map((m) => m.seq));
    const charges = original.filter((m) => m.entry?.kind === 'task.charged' && m.seq < lastSeal.seq && !sealSeqs.has(m.seq - 1) && !sealSeqs.has(m.seq + 1));
    const victim = charges[Math.floor(charges.length / 2)]!;
    copy = await NatsServer.start();
    const nc = await connect({ servers: copy.url });
    try {
      const republish = async (edit: (m: RawLedgerMessage) => Uint8Array | undefined) => {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.delete(Streams.ledger).catch(() => undefined);
        await ensureTopology(nc);
        const js = jetstream(nc);
        for (const m of original) {
          const data = edit(m);
          if (data) await js.publish(m.subject, data, m.msgId ? { msgID: m.msgId } : {});
        }
      };

      // 1. alter one charge: the attempt ran 1 s longer
      await republish((m) => {
        if (m.seq !== victim.seq) return m.data;
        const e = decode(m.data) as Extract<LedgerEntry, { kind: 'task.charged' }>;
        e.charges[0]!.usage.wallSeconds += 1;
        return encode(e);
      });
      const altered = await verifyJson(copy.url, dir);
      expect(altered.code).toBe(6);
      expect(altered.report.ok).toBe(false);
      expect(altered.report.problems[0]).toMatchObject({ seq: victim.seq, check: 'entry' });
      const human = await cli(['--server', copy.url, 'ledger', 'verify'], dir);
      expect(human.code).toBe(6);
      expect(human.stdout).toContain(`FAILED`);
      expect(human.stdout).toContain(`first at seq ${victim.seq}: entry at seq ${victim.seq} is not the entry sealed`);

      // 2. remove it: every later sequence shifts; the first bad one is the victim's
      await republish((m) => (m.seq === victim.seq ? undefined : m.data));
      const removed = await verifyJson(copy.url, dir);
      expect(removed.code).toBe(6);
      expect(removed.report.problems[0]).toMatchObject({ seq: victim.seq, check: 'entry' });

      // the journal of the real stream against the copy: seq victim.seq holds other bytes, the last entry is lost
      const [jfile] = (await readdir(journalDir)).filter((n) => n.endsWith('.jsonl'));
      const withJournal = await verifyJson(copy.url, dir, ['--journal', join(journalDir, jfile!)]);
      expect(withJournal.code).toBe(6);
      const journalProblems = withJournal.report.problems.filter((p) => p.check.startsWith('journal'));
      expect(journalProblems[0]).toMatchObject({ seq: victim.seq, check: 'journal-altered' });
      expect(journalProblems.some((p) => p.check === 'journal-lost' && p.seq === original.at(-1)!.seq)).toBe(true);
      expect(withJournal.report.warnings.join('\n')).toMatch(/was written for the UB_LEDGER created/);
      // a folder without this stream's journal is a usage error
      expect((await cli(['--server', copy.url, 'ledger', 'verify', '--journal', journalDir], dir)).code).toBe(2);
    } finally {
      await nc.close();
    }
  }, 90_000);

  it('an altered or removed journal line is named', async () => {
    const [jname] = (await readdir(journalDir)).filter((n) => n.endsWith('.jsonl'));
    const jfile = join(journalDir, jname!);
    const rows = (await readFile(jfile, 'utf8')).split('\n');
    const k = 5; // row k holds seq k (row 0 is the header)
    expect(JSON.parse(rows[k]!).seq).toBe(k);
    const edited = join(dir, 'edited.jsonl');

    await writeFile(edited, rows.map((r, i) => (i === k ? r.replace(/"sha256":"[0-9a-f]/, '"sha256":"x') : r)).join('\n'));
    const altered = await verifyJson(url, dir, ['--journal', edited]);
    expect(altered.code).toBe(6);
    expect(altered.report.problems[0]).toMatchObject({ seq: k, check: 'journal-altered' });

    await writeFile(edited, rows.filter((_, i) => i !== k).join('\n'));
    const gap = await verifyJson(url, dir, ['--journal', edited]);
    expect(gap.code).toBe(6);
    expect(gap.report.problems[0]).toMatchObject({ seq: k, check: 'journal-gap' });

    await copyFile(jfile, edited);
    const intact = await verifyJson(url, dir, ['--journal', edited]);
    expect(intact.code).toBe(0);
  }, 60_000);
});

describe('two sealers racing (two coordinators that both believe they lead)', () => {
  let server: NatsServer | undefined;
  const conns: NatsConnection[] = [];
  const followers: LedgerFollower[] = [];
  afterAll(async () => {
    for (const f of followers) await f.stop();
    for (const c of conns) await c.close().catch(() => undefined);
    await server?.cleanup();
  });

  it('store one seal per block, and both adopt it', async () => {
    server = await NatsServer.start();
    const nc = await connect({ servers: server.url });
    conns.push(nc);
    await ensureTopology(nc);
    const writer = new LedgerWriter(jetstream(nc));
    const append = async (i: number) => {
      const e: LedgerEntry = { kind: 'job.accepted', ts: new Date().toISOString(), actor: 'alice', group: 'default', user: 'alice', jobId: `j${i}`, jobKind: 'noop', tasks: 1, spec: {} };
      return (await writer.append(e, `job/j${i}`)).seq;
    };
    for (let i = 1; i <= 3; i++) await append(i);

    // A follows the stream live; B is fed by hand, so it can be kept behind
    const a = new Sealer(new LedgerWriter(jetstream(nc)), { entries: 1000, intervalMs: 600_000, actor: 'A' });
    const fa = new LedgerFollower(nc, () => undefined, () => undefined, { onMessage: (m) => a.onMessage(m) });
    followers.push(fa);
    await fa.start();
    a.start();
    const b = new Sealer(new LedgerWriter(jetstream(nc)), { entries: 1000, intervalMs: 600_000, actor: 'B' });
    const raw = async (from: number) => {
      const info = await (await jetstreamManager(nc)).streams.info(Streams.ledger);
      const out: RawLedgerMessage[] = [];
      for await (const m of replayLedgerRaw(nc, info.state.last_seq)) if (m.seq >= from) out.push(m);
      return out;
    };
    for (const m of await raw(1)) b.onMessage(m);
    b.start();

    // A has seen 5 entries, B only 3: they seal different ranges under the same msgID
    await append(4);
    const last = await append(5);
    await fa.waitFor(last);
    const seqA = await a.seal();
    const seqB = await b.seal();
    expect(seqA).toBeDefined();
    expect(seqB).toBe(seqA); // B's seal was a duplicate: the stream kept A's
    await fa.waitFor(seqA!);
    for (const m of await raw(4)) b.onMessage(m);
    expect(a.chain.block).toBe(1);
    expect(b.chain.block).toBe(1);
    expect(b.chain.hash).toBe(a.chain.hash);
    expect(b.chain.nextFirst).toBe(last + 1);
    expect(a.rejected + b.rejected).toBe(0);

    // and the chain goes on from either of them
    const l6 = await append(6);
    for (const m of await raw(seqA! + 1)) b.onMessage(m);
    const s2 = await b.seal();
    await fa.waitFor(s2!);
    expect(a.chain.block).toBe(2);
    const r = await verifyLedger(nc);
    expect(r.problems).toEqual([]);
    expect(r.seals).toMatchObject({ found: 2, accepted: 2, sealedThrough: l6 });
    a.stop();
    b.stop();
  }, 60_000);
});

describe('sealing with authentication on', () => {
  let dir: string | undefined;
  let server: NatsServer | undefined;
  let coordinator: Coordinator | undefined;
  let worker: WorkerDaemon | undefined;
  const conns: NatsConnection[] = [];
  afterAll(async () => {
    await worker?.close().catch(() => undefined);
    await coordinator?.close().catch(() => undefined);
    for (const c of conns) await c.close().catch(() => undefined);
    await server?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the coordinator seals with its credentials; a worker cannot append a seal; an operator can verify', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-seal-auth-'));
    const files = await initAuth(join(dir, 'auth'), { users: ['alice'], operators: ['ops'], workers: 1, cost: 4 });
    const creds: Record<string, Credentials> = {};
    for (const w of files.written) creds[w.name] = await readCredentials(w.credsPath);
    server = await NatsServer.start({ storeDir: join(dir, 'nats'), configText: `${includeLine(files.confPath, join(dir, 'nats', 'nats-server.conf'))}\n` });
    const as = async (name: string) => {
      const nc = await connect({ servers: server!.url, ...connectOptionsFor(creds[name]!), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      conns.push(nc);
      return nc;
    };
    coordinator = await Coordinator.create({ nc: await as('coordinator'), service: { operators: ['ops'] } }, { outputRoot: join(dir, 'out'), flushMs: 20, journalDir: join(dir, 'journal'), sealEntries: 3, sealIntervalMs: 300 });
    void coordinator.run();
    const workerNc = await as('worker-1');
    worker = await WorkerDaemon.create({ nc: workerNc }, { slots: 2, heartbeatMs: 500, scratchRoot: join(dir, 'scratch'), backoffMs: [50, 100, 200] });
    void worker.run();
    const alice = new UbatchClient(await as('alice'), { user: 'alice', timeoutMs: 15_000 });
    let sub;
    for (let i = 0; ; i++) {
      try {
        sub = await alice.submit({ kind: 'noop', params: { tasks: 12, sleep_ms: 10 } });
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 100)); // the coordinator is still starting
      }
    }
    expect((await alice.wait(sub.jobId, { timeoutMs: 60_000 })).state).toBe('succeeded');
    await until(() => (coordinator!.ledgerSealer?.chain.block ?? 0) >= 1 && coordinator!.ledgerSealer!.chain.pendingCount === 0, 15_000, 'a seal');

    // a worker may append charges only: a forged seal is refused by the server
    await expect(jetstream(workerNc).publish(SEAL_SUBJECT, encode({ kind: 'ledger.sealed' }), { timeout: 2000 })).rejects.toThrow(/permission/i);

    const r = await verifyLedger(await as('ops'), { journal: join(dir, 'journal') });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.seals.accepted).toBeGreaterThanOrEqual(1);
    expect(r.journal!.matched).toBeGreaterThan(0);
  }, 90_000);
});
