/**
 * Append-only ledger writer. Every entry carries a deterministic msgID so a
 * retried append (same attempt, same batch) is de-duplicated by the stream:
 * an attempt is charged exactly once.
 */
import { createHash } from 'node:crypto';
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { encode, isValid, LedgerEntry, ledgerSubject, Streams, type Charge } from '../protocol/index.js';
import { LedgerAppendError } from './errors.js';

export interface LedgerWriterOptions {
  /** attempts for one append before giving up (same msgID each time) @default 5 */
  maxTries?: number;
  /** called with the seconds each append took (for the ledger append latency histogram) */
  observeLatency?: (seconds: number) => void;
}

/** msgID of a charge batch: one attempt → `charge/<taskId>/<attempt>/<execution>`; several → a digest of the sorted attempt ids. */
export function chargeMsgId(charges: Pick<Charge, 'taskId' | 'attempt' | 'execution'>[]): string {
  if (charges.length === 1) return `charge/${charges[0]!.taskId}/${charges[0]!.attempt}/${charges[0]!.execution}`;
  const ids = charges.map((c) => `${c.taskId}/${c.attempt}/${c.execution}`).sort();
  return `charges/${ids.length}/${createHash('sha256').update(ids.join('\n')).digest('hex').slice(0, 32)}`;
}

export class LedgerWriter {
  private readonly maxTries: number;
  constructor(
    private readonly js: JetStreamClient,
    private readonly opts: LedgerWriterOptions = {},
  ) {
    this.maxTries = opts.maxTries ?? 5;
  }

  async append(entry: LedgerEntry, msgID: string): Promise<PubAck> {
    if (!isValid(LedgerEntry, entry)) throw new LedgerAppendError(`refusing to append an invalid ${(entry as { kind: string }).kind} entry`, msgID);
    const subject = ledgerSubject(entry.kind, entry.group, entry.user);
    const data = encode(entry);
    const t0 = performance.now();
    let lastErr: unknown;
    for (let i = 0; i < this.maxTries; i++) {
      try {
        const ack = await this.js.publish(subject, data, { msgID, expect: { streamName: Streams.ledger }, timeout: 5000 });
        this.opts.observeLatency?.((performance.now() - t0) / 1000);
        return ack;
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** i)));
      }
    }
    throw new LedgerAppendError(`ledger append ${msgID} failed after ${this.maxTries} tries: ${(lastErr as Error)?.message}`, msgID, { cause: lastErr });
  }
}
