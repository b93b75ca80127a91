/**
 * `ubatch ledger verify`: replays UB_LEDGER byte for byte and checks
 *  - the seal chain: every seal continues the previous one, every block's
 *    entries recompute to the digests and hash it sealed (naming the first
 *    altered, inserted or removed sequence), every entry up to the last seal
 *    is covered, and the balances it committed recompute;
 *  - the stream has no holes (UB_LEDGER denies deletes; a hole means someone
 *    turned that off);
 *  - the accountant's fsync'd journal (ledger/journal.ts) against the stream:
 *    a journaled entry missing from the stream or different there is an
 *    acknowledged write lost or altered; stream entries past the journal's end
 *    are counted (not yet journaled).
 * The entries after the last seal are reported as the unsealed tail.
 */
import { stat } from 'node:fs/promises';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decode, isValid, LedgerEntry, SEAL_SUBJECT, type SealBalance } from '../protocol/index.js';
import { findJournalFile, JournalFormatError, openJournalReader, type JournalLine } from './journal.js';
import { SealChain, sealOf, sha256hex, zeroBalance, type RawLedgerMessage } from './seal.js';
import { ledgerStreamInfo, orderedLedgerConsumer } from './replay.js';

export interface VerifyProblem {
  /** the first stream sequence concerned */
  seq: number;
  check: 'chain' | 'range' | 'entry' | 'count' | 'hash' | 'balances' | 'stream-gap' | 'journal-lost' | 'journal-altered' | 'journal-gap' | 'journal-format';
  message: string;
  /** the seal concerned, for seal checks */
  sealSeq?: number;
}

export interface VerifyReport {
  ok: boolean;
  stream: { name: string; created: string; firstSeq: number; lastSeq: number; messages: number };
  /** messages read (seals included) */
  messages: number;
  /** non-seal entries */
  entries: number;
  /** entries that are not valid ledger entries (still covered by the hash chain) */
  invalidEntries: number;
  seals: { found: number; accepted: number; head: string; lastSealSeq: number; sealedThrough: number; sealedEntries: number };
  unsealed: { count: number; firstSeq?: number; lastSeq?: number; coreSeconds: number; attempts: number };
  /** recomputed from every entry (sealed or not) */
  balances: { totals: SealBalance; tenants: Record<string, SealBalance> };
  /** balances the last accepted seal committed */
  sealedTotals?: SealBalance;
  journal?: { file: string; created: string; lines: number; firstSeq?: number; lastSeq?: number; matched: number; notYetJournaled: number; torn: boolean };
  problems: VerifyProblem[];
  /** how many problems were found (problems lists the first 50 of each kind of check) */
  problemCount: number;
  warnings: string[];
}

export interface VerifyOptions {
  /** a journal file, or a folder holding `UB_LEDGER-<created>.jsonl` files */
  journal?: string;
  onProgress?: (messages: number, lastSeq: number) => void;
}

export class VerifySetupError extends Error {
  override name = 'VerifySetupError';
}

/** problems listed per kind of check (all are counted) */
const MAX_PROBLEMS_PER_CHECK = 50;

/** Every UB_LEDGER message, raw, in sequence order, up to the last one present when the replay began. */
export async function* replayLedgerRaw(nc: NatsConnection, last: number): AsyncGenerator<RawLedgerMessage> {
  if (last < 1) return;
  const js = jetstream(nc);
  const consumer = await orderedLedgerConsumer(js);
  const messages = await consumer.consume({ max_messages: 2048 });
  try {
    for await (const m of messages) {
      let entry: LedgerEntry | undefined;
      try {
        const v = decode(m.data, m.subject);
        if (isValid(LedgerEntry, v)) entry = v;
      } catch {
        // an undecodable entry is still covered by the chain: its bytes are hashed
      }
      const msgId = m.headers?.get('Nats-Msg-Id') || undefined;
      yield { seq: m.seq, subject: m.subject, data: m.data, time: Math.floor(m.info.timestampNanos / 1e6), ...(msgId ? { msgId } : {}), ...(entry ? { entry } : {}) };
      if (m.seq >= last || m.info.pending === 0) break;
    }
  } finally {
    await messages.close().catch(() => undefined);
  }
}

export async function verifyLedger(nc: NatsConnection, o: VerifyOptions = {}): Promise<VerifyReport> {
  const info = await ledgerStreamInfo(nc);
  const last = info.state.last_seq;
  return verifyMessages(info.state.messages === 0 ? emptyGen() : replayLedgerRaw(nc, last), {
    ...o,
    stream: { name: info.config.name, created: info.created, firstSeq: info.state.first_seq, lastSeq: last, messages: info.state.messages },
  });
}

async function* emptyGen(): AsyncGenerator<RawLedgerMessage> {}

/** The checks over any sequence of raw ledger messages (the stream's, or a copy's). */
export async function verifyMessages(msgs: AsyncIterable<RawLedgerMessage>, o: VerifyOptions & { stream: VerifyReport['stream'] }): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  let problemCount = 0;
  const warnings: string[] = [];
  const perCheck = new Map<string, number>();
  const problem = (p: VerifyProblem) => {
    problemCount++;
    const n = perCheck.get(p.check) ?? 0;
    perCheck.set(p.check, n + 1);
    if (n < MAX_PROBLEMS_PER_CHECK) problems.push(p);
  };

  // the journal, read in step with the stream
  let journal: VerifyReport['journal'];
  let jNext: (() => Promise<JournalLine | undefined>) | undefined;
  let torn = () => false;
  if (o.journal !== undefined) {
    let file = o.journal;
    const st = await stat(file).catch(() => undefined);
    if (!st) throw new VerifySetupError(`no journal at ${file}`);
    if (st.isDirectory()) {
      const found = await findJournalFile(file, o.stream.name, o.stream.created);
      if (!found.file) {
        throw new VerifySetupError(
          `${file} holds no journal of this ${o.stream.name} (created ${o.stream.created})${found.candidates.length ? `; it holds ${found.candidates.join(', ')} (of other incarnations of the stream: pass one as --journal FILE to compare anyway)` : ''}`,
        );
      }
      file = found.file;
    }
    let r;
    try {
      r = await openJournalReader(file);
    } catch (err) {
      if (!(err instanceof JournalFormatError)) throw err;
      problem({ seq: 1, check: 'journal-format', message: err.message });
    }
  if (r) {
    if (r.header.stream !== o.stream.name) throw new VerifySetupError(`${file} is a journal of stream ${r.header.stream}, not ${o.stream.name}`);
    if (r.header.created !== o.stream.created) warnings.push(`the journal ${file} was written for the ${r.header.stream} created ${r.header.created}; this one was created ${o.stream.created}`);
    journal = { file, created: r.header.created, lines: 0, matched: 0, notYetJournaled: 0, torn: false };
    torn = r.torn;
    let prevSeq = 0;
    const it = r.lines;
    jNext = async () => {
      for (;;) {
        let n;
        try {
          n = await it.next();
        } catch (err) {
          problem({ seq: prevSeq + 1, check: 'journal-format', message: (err as Error).message });
          return undefined;
        }
        if (n.done) return undefined;
        const l = n.value;
        journal!.lines++;
        if (l.seq <= prevSeq) {
          problem({ seq: l.seq, check: 'journal-format', message: `journal line for seq ${l.seq} comes after seq ${prevSeq}: the journal is out of order` });
          continue;
        }
        prevSeq = l.seq;
        journal!.firstSeq ??= l.seq;
        journal!.lastSeq = l.seq;
        return l;
      }
    };
  }
  }
  let jl = jNext ? await jNext() : undefined;

  const chain = new SealChain();
  let messages = 0;
  let entries = 0;
  let invalid = 0;
  let sealsFound = 0;
  let sealsAccepted = 0;
  let wrongSubjectSeals = 0;
  let prevSeq = 0;
  let lastSealed: SealBalance | undefined;

  for await (const m of msgs) {
    messages++;
    if (m.seq > prevSeq + 1) {
      problem({ seq: prevSeq + 1, check: 'stream-gap', message: m.seq === prevSeq + 2 ? `seq ${prevSeq + 1} is missing from the stream (deleted)` : `seqs ${prevSeq + 1}..${m.seq - 1} are missing from the stream (deleted)` });
    }
    prevSeq = m.seq;
    const dataSha = sha256hex(m.data);

    if (jNext) {
      while (jl && jl.seq < m.seq) {
        problem({ seq: jl.seq, check: 'journal-lost', message: `seq ${jl.seq} (${jl.subject}) is in the journal but not in the stream: an acknowledged entry was lost` });
        jl = await jNext();
      }
      if (jl && jl.seq === m.seq) {
        const diffs: string[] = [];
        if (jl.subject !== m.subject) diffs.push(`subject ${m.subject}, journal ${jl.subject}`);
        if (jl.sha256 !== dataSha) diffs.push(`sha256 ${dataSha.slice(0, 16)}…, journal ${jl.sha256.slice(0, 16)}…`);
        if (jl.msgId !== undefined && jl.msgId !== m.msgId) diffs.push(`msgID ${m.msgId ?? '(none)'}, journal ${jl.msgId}`);
        if (diffs.length > 0) problem({ seq: m.seq, check: 'journal-altered', message: `seq ${m.seq} differs from the journal: ${diffs.join('; ')}` });
        else journal!.matched++;
        jl = await jNext();
      } else if (jl) {
        problem({ seq: m.seq, check: 'journal-gap', message: `seq ${m.seq} (${m.subject}) is in the stream but missing from the journal, which goes on at seq ${jl.seq}: a journal line was removed` });
      } else {
        journal!.notYetJournaled++;
      }
    }

    if (!m.entry) invalid++;
    const seal = sealOf(m);
    if (seal) {
      sealsFound++;
      const ps = chain.check(m.seq, seal);
      for (const p of ps) problem({ seq: p.seq, sealSeq: p.sealSeq, check: p.check, message: p.message });
      // a seal that does not continue the chain is skipped (as the sealer skips it); one that does
      // but whose content is wrong is adopted, to go on checking the blocks after it
      if (!ps.some((p) => p.check === 'chain' || p.check === 'range')) {
        chain.adopt(m.seq, seal);
        sealsAccepted++;
        lastSealed = seal.totals;
      }
    } else {
      if (m.entry?.kind === 'ledger.sealed' || m.subject === SEAL_SUBJECT) wrongSubjectSeals++;
      entries++;
      chain.add(m, dataSha);
    }
    if (messages % 5000 === 0) o.onProgress?.(messages, m.seq);
  }
  if (jNext) {
    while (jl) {
      problem({ seq: jl.seq, check: 'journal-lost', message: `seq ${jl.seq} (${jl.subject}) is in the journal but the stream ends at seq ${prevSeq}: an acknowledged entry was lost` });
      jl = await jNext();
    }
    journal!.torn = torn();
    if (journal!.torn) warnings.push(`the journal's last line is incomplete (a crash mid-append); it was ignored`);
  }
  if (invalid > 0) warnings.push(`${invalid} entries are not valid ledger entries (they are still covered by the seals)`);
  if (wrongSubjectSeals > 0) warnings.push(`${wrongSubjectSeals} seal-like entries are not valid seals on ${SEAL_SUBJECT}; they were treated as ordinary entries`);
  if (sealsFound === 0 && entries > 0) warnings.push('the ledger has no seals yet: nothing is tamper-evident (the coordinator leader seals every N entries or T seconds)');

  const now = chain.balancesNow();
  const sealedTotals = lastSealed ?? zeroBalance();
  const unsealed: VerifyReport['unsealed'] = {
    count: chain.pendingCount,
    coreSeconds: now.totals.coreSeconds - sealedTotals.coreSeconds,
    attempts: now.totals.attempts - sealedTotals.attempts,
    ...(chain.pendingFirstSeq !== undefined ? { firstSeq: chain.pendingFirstSeq, lastSeq: chain.pendingLastSeq! } : {}),
  };
  problems.sort((a, b) => a.seq - b.seq);
  return {
    ok: problemCount === 0,
    stream: o.stream,
    messages,
    entries,
    invalidEntries: invalid,
    seals: { found: sealsFound, accepted: sealsAccepted, head: chain.hash, lastSealSeq: chain.sealSeq, sealedThrough: chain.nextFirst - 1, sealedEntries: chain.sealedEntries },
    unsealed,
    balances: { totals: now.totals, tenants: Object.fromEntries([...now.tenants].sort(([a], [b]) => a.localeCompare(b))) },
    ...(lastSealed ? { sealedTotals: lastSealed } : {}),
    ...(journal ? { journal } : {}),
    problems,
    problemCount,
    warnings,
  };
}
