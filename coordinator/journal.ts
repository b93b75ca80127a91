/**
 * The accountant's fsync'd local journal of UB_LEDGER (format: ledger/journal.ts).
 * The ledger follower calls `append` for every message it folds and awaits
 * `flush` (write + fdatasync) once per batch, before it reports the entries
 * applied. On restart the journal goes on where it stopped: the follower
 * replays the stream from seq 1 and lines already journaled are skipped.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { journalFileName, journalHeader, journalLine, sha256hex, type RawLedgerMessage } from '../ledger/index.js';
import { noopLog, type Log } from '../protocol/index.js';

/** bytes read from the end of an existing journal to find its last line */
const TAIL_BYTES = 64 * 1024;

export class LedgerJournal {
  private buf: string[] = [];
  private writing: Promise<void> = Promise.resolve();
  private failing = false;
  /** the last sequence written to the buffer (journaled once flushed) */
  private lastAppended: number;

  private constructor(
    readonly file: string,
    private fh: FileHandle,
    /** the last sequence on disk when the journal was opened */
    readonly resumedAt: number,
    private readonly log: Log,
    private readonly onError: (err: unknown) => void,
    /** bytes on disk that are whole lines */
    private size: number,
  ) {
    this.lastAppended = resumedAt;
  }

  /** Opens (or creates) the journal of the stream incarnation `created` in `dir`. */
  static async open(dir: string, stream: string, created: string, o: { log?: Log; onError?: (err: unknown) => void } = {}): Promise<LedgerJournal> {
    await mkdir(dir, { recursive: true });
    const file = join(dir, journalFileName(stream, created));
    const fh = await open(file, 'a+');
    let last = 0;
    let size = 0;
    try {
      if ((await fh.stat()).size === 0) {
        const header = journalHeader(stream, created);
        await fh.write(header);
        await fh.sync();
        size = Buffer.byteLength(header);
        // the new file's directory entry must be durable too
        const dfd = openSync(dir, 'r');
        try {
          fsyncSync(dfd);
        } finally {
          closeSync(dfd);
        }
      } else {
        size = (await fh.stat()).size;
        const start = Math.max(0, size - TAIL_BYTES);
        const tail = Buffer.alloc(size - start);
        await fh.read(tail, 0, tail.length, start);
        let text = tail.toString('utf8');
        const nl = text.lastIndexOf('\n');
        if (nl !== text.length - 1) {
          // a torn last line (crash mid-append): cut it off, it is re-journaled from the stream
          size = start + Buffer.byteLength(text.slice(0, nl + 1));
          await fh.truncate(size);
          await fh.sync();
          text = text.slice(0, nl + 1);
        }
        const lines = text.split('\n').filter((l) => l.length > 0);
        for (let i = lines.length - 1; i >= 0; i--) {
          try {
            const v = JSON.parse(lines[i]!) as { seq?: unknown };
            if (typeof v.seq === 'number') {
              last = v.seq;
              break;
            }
          } catch {
            // the first line of the tail window may be cut: keep looking backwards
          }
        }
      }
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return new LedgerJournal(file, fh, last, o.log ?? noopLog, o.onError ?? (() => undefined), size);
  }

  /** the last sequence appended (on disk after the next flush) */
  get lastSeq(): number {
    return this.lastAppended;
  }

  /** one message, in sequence order; a sequence already journaled is skipped */
  append(m: Pick<RawLedgerMessage, 'seq' | 'subject' | 'msgId' | 'data'>, dataSha256 = sha256hex(m.data)): void {
    if (m.seq <= this.lastAppended) return;
    this.lastAppended = m.seq;
    this.buf.push(journalLine({ seq: m.seq, subject: m.subject, ...(m.msgId !== undefined ? { msgId: m.msgId } : {}), sha256: dataSha256 }));
  }

  /** writes and fdatasyncs what was appended; a failure is reported (and retried at the next flush), never thrown */
  flush(): Promise<void> {
    const run = async () => {
      if (this.buf.length === 0) return;
      const chunk = Buffer.from(this.buf.join(''));
      const n = this.buf.length;
      try {
        await this.fh.write(chunk);
        await this.fh.datasync();
        this.size += chunk.length;
        this.buf.splice(0, n);
        if (this.failing) this.log.info({ file: this.file }, 'ledger journal writes again');
        this.failing = false;
      } catch (err) {
        // nothing was dropped from the buffer: cut off what a partial write left, the next flush writes it again
        await this.fh.truncate(this.size).catch(() => undefined);
        if (!this.failing) this.log.error({ err, file: this.file }, 'writing the ledger journal failed; entries are applied without it until it works again');
        this.failing = true;
        this.onError(err);
      }
    };
    this.writing = this.writing.then(run);
    return this.writing;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.fh.close().catch(() => undefined);
  }
}
