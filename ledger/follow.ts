/**
 * Follow UB_LEDGER from the beginning (or a sequence) and keep following:
 * the accountant's views (quotas, shares, usage) are folds of this stream.
 */
import { DeliverPolicy, jetstream, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decode, isValid, LedgerEntry, Streams } from '../protocol/index.js';
import type { LedgerRecord } from './replay.js';
import type { RawLedgerMessage } from './seal.js';

export interface LedgerFollowerHooks {
  /** every message in sequence order, valid or not, before onRecord (the sealer, the journal) */
  onMessage?: (m: RawLedgerMessage) => void;
  /** awaited (e.g. a journal fsync) before entries count as applied (seq, waitFor); called once per batch */
  flush?: () => Promise<void>;
}

export class LedgerFollower {
  private msgs: ConsumerMessages | undefined;
  private lastSeq = 0;
  private waiters: { seq: number; resolve: () => void }[] = [];
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly onRecord: (r: LedgerRecord) => void,
    private readonly onInvalid: (seq: number, reason: string) => void = () => {},
    private readonly hooks: LedgerFollowerHooks = {},
  ) {}

  get seq(): number {
    return this.lastSeq;
  }

  /** start following; resolves once everything present at start has been applied */
  async start(fromSeq = 1): Promise<void> {
    const js = jetstream(this.nc);
    const info = await (await js.streams.get(Streams.ledger)).info();
    const target = info.state.last_seq;
    const consumer = await js.consumers.get(Streams.ledger, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, fromSeq) });
    this.msgs = await consumer.consume({ max_messages: 4096 });
    const caughtUp = target < fromSeq || info.state.messages === 0 ? Promise.resolve() : this.waitFor(target);
    void (async () => {
      let unflushed = 0;
      for await (const m of this.msgs!) {
        const time = Math.floor(m.info.timestampNanos / 1e6);
        let entry: LedgerEntry | undefined;
        let invalid: string | undefined;
        try {
          const v = decode(m.data, m.subject);
          if (isValid(LedgerEntry, v)) entry = v;
          else invalid = 'does not match the LedgerEntry schema';
        } catch (err) {
          invalid = (err as Error).message;
        }
        if (this.hooks.onMessage) {
          const msgId = m.headers?.get('Nats-Msg-Id') || undefined;
          this.hooks.onMessage({ seq: m.seq, subject: m.subject, data: m.data, time, ...(msgId ? { msgId } : {}), ...(entry ? { entry } : {}) });
        }
        if (entry) this.onRecord({ seq: m.seq, time, subject: m.subject, entry });
        else this.onInvalid(m.seq, invalid!);
        if (this.hooks.flush) {
          // group commit: flush when the backlog is drained or every 1000 messages, then report them applied
          if (++unflushed < 1000 && m.info.pending > 0 && !this.stopped) continue;
          unflushed = 0;
          await this.hooks.flush();
        }
        this.lastSeq = m.seq;
        if (this.waiters.length > 0) {
          const ready = this.waiters.filter((w) => w.seq <= m.seq);
          this.waiters = this.waiters.filter((w) => w.seq > m.seq);
          for (const w of ready) w.resolve();
        }
        if (this.stopped) break;
      }
    })();
    await caughtUp;
  }

  /** resolves once the entry with this stream sequence has been applied */
  waitFor(seq: number, timeoutMs = 10_000): Promise<void> {
    if (this.lastSeq >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`ledger follower did not reach seq ${seq} within ${timeoutMs} ms (at ${this.lastSeq})`)), timeoutMs);
      this.waiters.push({ seq, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.msgs?.close().catch(() => undefined);
  }
}
