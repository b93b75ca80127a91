/**
 * The accountant's local ledger journal: what the coordinator leader folded,
 * one JSON line per UB_LEDGER message, fsync'd before the entries count as
 * applied (coordinator/journal.ts writes it, ledger/verify.ts audits the
 * stream against it). nats-server 2.9.10 syncs its file store on a timer
 * only, so a power loss can drop acknowledged entries from the stream; the
 * journal on another disk keeps their sequence, subject, msgID and sha256.
 *
 *   <dir>/UB_LEDGER-<stream created time>.jsonl
 *   {"ubatchLedgerJournal":1,"stream":"UB_LEDGER","created":"2026-11-25T18:42:10.123456789Z"}
 *   {"seq":1,"subject":"ub.ledger.job.accepted.desc.alice","msgId":"job/…","sha256":"…"}
 *
 * One file per stream incarnation (its creation time): a journal never mixes
 * two streams that happen to share a name.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const JOURNAL_VERSION = 1;

export interface JournalHeader {
  ubatchLedgerJournal: number;
  stream: string;
  created: string;
}

export interface JournalLine {
  seq: number;
  subject: string;
  msgId?: string;
  sha256: string;
}

export function journalFileName(stream: string, created: string): string {
  return `${stream}-${created.replace(/[^0-9A-Za-z]/g, '')}.jsonl`;
}

export function journalHeader(stream: string, created: string): string {
  return `${JSON.stringify({ ubatchLedgerJournal: JOURNAL_VERSION, stream, created } satisfies JournalHeader)}\n`;
}

export function journalLine(l: JournalLine): string {
  return `${JSON.stringify(l.msgId !== undefined ? { seq: l.seq, subject: l.subject, msgId: l.msgId, sha256: l.sha256 } : { seq: l.seq, subject: l.subject, sha256: l.sha256 })}\n`;
}

export class JournalFormatError extends Error {
  override name = 'JournalFormatError';
  constructor(message: string, readonly file: string, readonly line: number) {
    super(`${file}:${line}: ${message}`);
  }
}

export function parseJournalLine(text: string, file: string, lineNo: number): JournalLine {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new JournalFormatError('not a JSON line', file, lineNo);
  }
  const o = v as Partial<JournalLine>;
  if (typeof o !== 'object' || o === null || !Number.isInteger(o.seq) || (o.seq as number) < 1 || typeof o.subject !== 'string' || typeof o.sha256 !== 'string' || (o.msgId !== undefined && typeof o.msgId !== 'string')) {
    throw new JournalFormatError('not a journal entry (seq, subject, sha256)', file, lineNo);
  }
  return { seq: o.seq!, subject: o.subject, sha256: o.sha256, ...(o.msgId !== undefined ? { msgId: o.msgId } : {}) };
}

/** The journal file of a stream incarnation in `dir`, or the only journal file there; undefined when none fits. */
export async function findJournalFile(dir: string, stream: string, created: string | undefined): Promise<{ file?: string; candidates: string[] }> {
  const names = (await readdir(dir)).filter((n) => n.startsWith(`${stream}-`) && n.endsWith('.jsonl')).sort();
  if (created !== undefined) {
    const want = journalFileName(stream, created);
    if (names.includes(want)) return { file: join(dir, want), candidates: names };
  }
  return { candidates: names };
}

/** Reads a journal: the header, then its lines in order (a torn last line, from a crash mid-write, is reported, not thrown). */
export async function openJournalReader(file: string): Promise<{ header: JournalHeader; lines: AsyncGenerator<JournalLine>; torn: () => boolean }> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  const it = rl[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new JournalFormatError('empty journal', file, 1);
  let header: JournalHeader;
  try {
    header = JSON.parse(first.value) as JournalHeader;
  } catch {
    throw new JournalFormatError('the first line is not a journal header', file, 1);
  }
  if (header.ubatchLedgerJournal !== JOURNAL_VERSION || typeof header.stream !== 'string' || typeof header.created !== 'string') {
    throw new JournalFormatError(`not a ubatch ledger journal (version ${JOURNAL_VERSION})`, file, 1);
  }
  let torn = false;
  async function* lines(): AsyncGenerator<JournalLine> {
    let n = 1;
    let held: string | undefined;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        n++;
        if (held !== undefined) yield parseJournalLine(held, file, n - 1);
        held = r.value;
      }
      if (held !== undefined && held.length > 0) {
        // the last line: a crash mid-append can leave it incomplete
        try {
          yield parseJournalLine(held, file, n);
        } catch (err) {
          if (!(err instanceof JournalFormatError)) throw err;
          torn = true;
        }
      }
    } finally {
      rl.close();
    }
  }
  return { header, lines: lines(), torn: () => torn };
}
