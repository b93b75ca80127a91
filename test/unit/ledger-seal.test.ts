/**
 * The ledger seal chain (ledger/seal.ts), the journal format and writer
 * (ledger/journal.ts, coordinator/journal.ts), the offline checks of
 * ledger/verify.ts over message lists, and that every ledger consumer
 * tolerates seal entries.
 */
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Accountant } from '../../coordinator/accountant.js';
import { LedgerJournal } from '../../coordinator/journal.js';
import {
  buildReport,
  entryDigest,
  GENESIS_HASH,
  ledgerRows,
  openJournalReader,
  SealChain,
  sealMsgId,
  sha256hex,
  summarizeLedger,
  verifyMessages,
  type LedgerSeal,
  type RawLedgerMessage,
} from '../../ledger/index.js';
import { encode, isValid, LedgerEntry, ledgerSubject, SEAL_SUBJECT, type Charge } from '../../protocol/index.js';

const charge = (taskId: string, wall: number, cores = 1): Charge => ({
  taskId,
  jobId: 'j1',
  attempt: 1,
  execution: `w1.${taskId}`,
  outcome: 'ok',
  usage: { cpuSeconds: wall / 2, wallSeconds: wall, gpuSeconds: 0, peakRssBytes: 1, bytesRead: 0, bytesWritten: 10, allocatedCores: cores },
  provenance: {
    inputs: [],
    outputs: [],
    code: { ubatchVersion: '0', gitCommit: 'abc', kind: 'noop' },
    params: {},
    worker: { id: 'w1', host: 'h', pid: 1 },
    startedAt: '2026-01-01T00:00:00Z',
    endedAt: '2026-01-01T00:00:01Z',
  },
});

function charged(user: string, group: string, ...charges: Charge[]): LedgerEntry {
  return { kind: 'task.charged', ts: '2026-01-01T00:00:01Z', actor: 'w1', group, user, charges };
}

/** a stream of ledger messages, sealing as a sealer would (seals are appended after `lag` more entries) */
class FakeStream {
  msgs: RawLedgerMessage[] = [];
  readonly chain = new SealChain();
  push(entry: LedgerEntry | Uint8Array, subject?: string): RawLedgerMessage {
    const data = entry instanceof Uint8Array ? entry : encode(entry);
    const e = entry instanceof Uint8Array ? undefined : entry;
    const subj = subject ?? (e ? ledgerSubject(e.kind, e.group, e.user) : 'ub.ledger.task.charged.g.u');
    const m: RawLedgerMessage = { seq: this.msgs.length + 1, subject: subj, data, time: 0, ...(e && isValid(LedgerEntry, e) ? { entry: e } : {}) };
    this.msgs.push(m);
    if (m.entry?.kind === 'ledger.sealed' && subj === SEAL_SUBJECT) this.chain.adopt(m.seq, m.entry);
    else this.chain.add(m);
    return m;
  }
  seal(max = 1000): LedgerSeal {
    const p = this.chain.propose(max, { ts: '2026-01-01T00:00:02Z', actor: 'coord' })!;
    this.push(p.seal, SEAL_SUBJECT);
    return p.seal;
  }
}

async function* gen(msgs: RawLedgerMessage[]): AsyncGenerator<RawLedgerMessage> {
  yield* msgs;
}
const stream = (msgs: RawLedgerMessage[]) => ({ name: 'UB_LEDGER', created: '2026-01-01T00:00:00Z', firstSeq: 1, lastSeq: msgs.at(-1)?.seq ?? 0, messages: msgs.length });
const verify = (msgs: RawLedgerMessage[], journal?: string) => verifyMessages(gen(msgs), { stream: stream(msgs), ...(journal ? { journal } : {}) });

/** a copy of the messages as a republish into a fresh stream would store them (seqs renumbered from 1) */
function republish(msgs: RawLedgerMessage[], edit: (m: RawLedgerMessage) => RawLedgerMessage | undefined): RawLedgerMessage[] {
  const out: RawLedgerMessage[] = [];
  for (const m of msgs) {
    const e = edit(m);
    if (e) out.push({ ...e, seq: out.length + 1 });
  }
  return out;
}

function sample(): FakeStream {
  const s = new FakeStream();
  s.push(charged('alice', 'desc', charge('t1', 10, 2)));
  s.push(charged('bob', 'lsst', charge('t2', 5)));
  s.push(new Uint8Array([0xc1]), 'ub.ledger.task.charged.x.y'); // garbage: covered all the same
  s.seal();
  s.push(charged('alice', 'desc', charge('t3', 1), charge('t4', 2)));
  s.push(charged('carol', 'desc', charge('t5', 7, 4)));
  // a seal appended after a later entry: that entry belongs to the next block
  const p = s.chain.propose(2, { ts: 'x', actor: 'coord' })!;
  s.push(charged('bob', 'lsst', charge('t6', 3)));
  s.push(p.seal, SEAL_SUBJECT);
  s.push(charged('alice', 'desc', charge('t7', 4)));
  s.seal();
  s.push(charged('dave', 'desc', charge('t8', 100))); // unsealed tail
  return s;
}

describe('the seal chain', () => {
  it('seals are deterministic, chained, and valid ledger entries', () => {
    const a = sample();
    const b = sample();
    const sealsA = a.msgs.filter((m) => m.subject === SEAL_SUBJECT).map((m) => m.entry as LedgerSeal);
    const sealsB = b.msgs.filter((m) => m.subject === SEAL_SUBJECT).map((m) => m.entry as LedgerSeal);
    expect(sealsA.map((s) => s.hash)).toEqual(sealsB.map((s) => s.hash));
    expect(sealsA).toHaveLength(3);
    expect(sealsA[0]!.prev).toBe(GENESIS_HASH);
    expect(sealsA[1]!.prev).toBe(sealsA[0]!.hash);
    expect(sealsA[2]!.prev).toBe(sealsA[1]!.hash);
    expect(sealsA.map((s) => [s.block, s.firstSeq, s.lastSeq, s.count])).toEqual([
      [1, 1, 3, 3],
      [2, 4, 6, 2],
      [3, 7, 9, 2], // seq 7 is entry t6, seq 8 the block-2 seal (not covered), seq 9 entry t7
    ]);
    for (const s of sealsA) expect(isValid(LedgerEntry, s)).toBe(true);
    // cumulative balances of the tenants charged in the block: alice 10 s × 2 cores + 1 + 2
    expect(sealsA[1]!.balances['desc.alice']).toEqual({ coreSeconds: 23, gpuSeconds: 0, cpuSeconds: 6.5, attempts: 3 });
    expect(sealsA[1]!.balances['lsst.bob']).toBeUndefined();
    expect(sealsA[2]!.totals.coreSeconds).toBe(20 + 5 + 3 + 28 + 3 + 4);
    expect(sealMsgId(4, sealsA[0]!.hash)).toBe(`seal.4.${sealsA[0]!.hash.slice(0, 16)}`);
    // the digest binds seq, subject and bytes
    expect(entryDigest(1, 's', sha256hex('x')).equals(entryDigest(2, 's', sha256hex('x')))).toBe(false);
    expect(entryDigest(1, 's', sha256hex('x')).equals(entryDigest(1, 't', sha256hex('x')))).toBe(false);
  });

  it('verify passes an intact ledger and reports the unsealed tail', async () => {
    const s = sample();
    const r = await verify(s.msgs);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.seals).toMatchObject({ found: 3, accepted: 3, sealedThrough: 9, sealedEntries: 7 });
    expect(r.unsealed).toMatchObject({ count: 1, firstSeq: 11, lastSeq: 11, coreSeconds: 100, attempts: 1 });
    expect(r.invalidEntries).toBe(1);
    expect(r.balances.tenants['desc.dave']).toEqual({ coreSeconds: 100, gpuSeconds: 0, cpuSeconds: 50, attempts: 1 });
  });

  it('names the exact sequence of an altered entry', async () => {
    const s = sample();
    const copy = republish(s.msgs, (m) => (m.seq === 5 ? { ...m, data: encode(charged('alice', 'desc', charge('t3', 1), charge('t4', 0.5))) } : m));
    const r = await verify(copy);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ seq: 5, check: 'entry', sealSeq: 8 });
  });

  it('names the sequence of a removed entry, and of an inserted one', async () => {
    const s = sample();
    const removed = await verify(republish(s.msgs, (m) => (m.seq === 2 ? undefined : m)));
    expect(removed.ok).toBe(false);
    expect(removed.problems[0]).toMatchObject({ seq: 2, check: 'entry' });
    const inserted = republish(s.msgs, (m) => m);
    inserted.splice(4, 0, { ...inserted[1]!, seq: 5 });
    inserted.forEach((m, i) => (m.seq = i + 1));
    const ri = await verify(inserted);
    expect(ri.problems[0]).toMatchObject({ seq: 5, check: 'entry' });
  });

  it('names a removed entry that closed a block sealed right after it, before the seal it displaced', async () => {
    // seq 3 is the last entry of block 1, sealed at seq 4: with seq 3 removed the seal sits at 3, inside its own range
    const s = sample();
    const removed = await verify(republish(s.msgs, (m) => (m.seq === 3 ? undefined : m)));
    expect(removed.ok).toBe(false);
    expect(removed.problems[0]).toMatchObject({ seq: 3, check: 'entry' });
    expect(removed.problems.map((p) => p.check)).toContain('range'); // the displaced seal is still reported
  });

  it('names a removed entry that opened a block whose previous seal was appended after it', async () => {
    // seq 7 (bob t6) opens block 3; the seal of block 2 was appended after it, at seq 8. With seq 7 removed that seal
    // moves into seq 7 and checks out, and the first entry left in block 3 sits at seq 8: the removal is still at 7
    const s = sample();
    expect(s.msgs[7]!.subject).toBe(SEAL_SUBJECT);
    const removed = await verify(republish(s.msgs, (m) => (m.seq === 7 ? undefined : m)));
    expect(removed.ok).toBe(false);
    expect(removed.problems[0]).toMatchObject({ seq: 7, check: 'entry' });
    expect(removed.problems[0]!.message).toMatch(/removed/);
    // an entry altered right after that late seal is still named at its own seq
    const altered = await verify(republish(s.msgs, (m) => (m.seq === 9 ? { ...m, data: encode(charged('alice', 'desc', charge('t7', 40))) } : m)));
    expect(altered.problems[0]).toMatchObject({ seq: 9, check: 'entry' });
  });

  it('catches an altered seal: balances, hash, and a chain that does not continue', async () => {
    const s = sample();
    const withSeal = (seq: number, f: (x: LedgerSeal) => LedgerSeal) =>
      republish(s.msgs, (m) => {
        if (m.seq !== seq) return m;
        const e = f(structuredClone(m.entry as LedgerSeal));
        return { ...m, data: encode(e), entry: e };
      });
    const bal = await verify(withSeal(8, (x) => ({ ...x, balances: { ...x.balances, 'desc.alice': { ...x.balances['desc.alice']!, coreSeconds: 1 } } })));
    expect(bal.problems[0]).toMatchObject({ seq: 8, check: 'balances' });
    const hash = await verify(withSeal(8, (x) => ({ ...x, hash: 'f'.repeat(64) })));
    expect(hash.problems.map((p) => p.check)).toEqual(['hash', 'chain']); // and the next seal no longer continues it
    // a seal whose digest list was rewritten while its entries are intact: the seal is blamed, not an entry
    const digests = await verify(withSeal(8, (x) => ({ ...x, digests: Buffer.alloc(16).toString('base64') })));
    expect(digests.problems).toEqual([expect.objectContaining({ seq: 8, check: 'hash' })]);
    const overlap = await verify(withSeal(10, (x) => ({ ...x, firstSeq: 5 })));
    expect(overlap.problems[0]).toMatchObject({ seq: 10, check: 'chain' });
    expect(overlap.problems[0]!.message).toMatch(/overlaps/);
  });
});

describe('the ledger journal', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('appends fsyncd lines, resumes without duplicates, cuts a torn last line, and verify compares it with the stream', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ubatch-journal-'));
    dirs.push(dir);
    const s = sample();
    const created = '2026-01-01T00:00:00Z';
    let j = await LedgerJournal.open(dir, 'UB_LEDGER', created);
    expect(j.resumedAt).toBe(0);
    for (const m of s.msgs.slice(0, 6)) j.append(m);
    await j.flush();
    await j.close();
    // a crash mid-append leaves half a line
    await appendFile(j.file, '{"seq":7,"subj');
    j = await LedgerJournal.open(dir, 'UB_LEDGER', created);
    expect(j.resumedAt).toBe(6);
    for (const m of s.msgs) j.append(m); // the follower replays from seq 1: 1..6 are skipped
    await j.close();
    const r = await openJournalReader(j.file);
    expect(r.header).toMatchObject({ stream: 'UB_LEDGER', created });
    const lines = [];
    for await (const l of r.lines) lines.push(l);
    expect(lines.map((l) => l.seq)).toEqual(s.msgs.map((m) => m.seq));
    expect(lines[0]!.sha256).toBe(sha256hex(s.msgs[0]!.data));

    // intact: every journal line matches the stream
    const ok = await verify(s.msgs, dir);
    expect(ok.ok).toBe(true);
    expect(ok.journal).toMatchObject({ lines: s.msgs.length, matched: s.msgs.length, notYetJournaled: 0 });

    const text = await readFile(j.file, 'utf8');
    const rows = text.split('\n');
    const edit = async (f: (rows: string[]) => string[]) => {
      const file = join(dir, 'edited.jsonl');
      await writeFile(file, f([...rows]).join('\n'));
      return verify(s.msgs, file);
    };
    // a journal line that differs from the stream (row i+1 holds seq i: row 0 is the header)
    const altered = await edit((x) => ((x[4] = x[4]!.replace(/"sha256":"[0-9a-f]{4}/, '"sha256":"0000')), x));
    expect(altered.problems[0]).toMatchObject({ seq: 4, check: 'journal-altered' });
    const gap = await edit((x) => (x.splice(3, 1), x));
    expect(gap.problems[0]).toMatchObject({ seq: 3, check: 'journal-gap' });
    // the journal has an entry the stream lost (the stream ends early)
    const lost = await verify(s.msgs.slice(0, 9), dir);
    expect(lost.problems.map((p) => [p.seq, p.check])).toEqual([
      [10, 'journal-lost'],
      [11, 'journal-lost'],
    ]);
    // stream entries past the journal's end are counted, not failures
    const behind = await edit((x) => x.slice(0, 6).concat(['']));
    expect(behind.ok).toBe(true);
    expect(behind.journal).toMatchObject({ matched: 5, notYetJournaled: s.msgs.length - 5 });
  });
});

describe('ledger consumers tolerate seal entries', () => {
  it('summary, report, export rows and the accountant', () => {
    const s = sample();
    const records = s.msgs.filter((m) => m.entry).map((m) => ({ seq: m.seq, time: 1_700_000_000_000 + m.seq, subject: m.subject, entry: m.entry! }));
    const sum = summarizeLedger(records);
    expect(sum.byKind['ledger.sealed']).toBe(3);
    expect(sum.charges).toBe(8);
    expect([...sum.byTenant.keys()].sort()).toEqual(['desc.alice', 'desc.carol', 'desc.dave', 'lsst.bob']);
    const rep = buildReport(records);
    expect(JSON.stringify(rep)).not.toMatch(/_ledger|_system/);
    const rows = records.flatMap((r) => ledgerRows(r));
    expect(rows.filter((r) => r.kind === 'ledger.sealed')).toHaveLength(3);
    const acct = new Accountant({ halfLifeMs: 86_400_000 });
    for (const r of records) acct.apply(r);
    expect(acct.applied).toBe(records.length);
    expect(acct.memberships.size).toBe(0);
  });
});
