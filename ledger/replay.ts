/**
 * Replay of UB_LEDGER from the first entry to the last one present when the
 * replay began. Reports and quota views are folds over this.
 */
import { DeliverPolicy, jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JsMsg, type OrderedConsumerOptions, type StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decode, isValid, LedgerEntry, retrying, Streams, type RetryOptions } from '../protocol/index.js';

export interface LedgerRecord {
  seq: number;
  /** server time of the append, ms */
  time: number;
  subject: string;
  entry: LedgerEntry;
}

export interface ReplayOptions {
  /** only subjects under this filter, e.g. `ub.ledger.task.charged.>` @default ub.ledger.> */
  filter?: string;
  /** start at this stream sequence */
  fromSeq?: number;
  /** called for entries that fail validation (never silently dropped) */
  onInvalid?: (seq: number, subject: string, reason: string) => void;
}

/** What a cluster electing the UB_LEDGER leader answers for a while: worth retrying; anything else (no stream, no permission) is not. */
const duringLeaderElection = (err: unknown) => /timeout|no responders|leader/i.test((err as Error)?.message ?? '');

/** How long a ledger reader waits out an election (on a 3-node cluster with a node killed: tens of seconds). */
const ELECTION_WAIT_MS = 120_000;

/** Retry options for a ledger read: what an election causes, with a growing pause, for up to `forMs`. */
function untilElected(forMs: number, capMs: number): RetryOptions {
  const end = Date.now() + forMs;
  return { baseMs: 500, capMs, retryable: (err) => Date.now() < end && duringLeaderElection(err) };
}

/** UB_LEDGER's stream info, retried while a cluster elects the stream's leader. */
export async function ledgerStreamInfo(nc: NatsConnection): Promise<StreamInfo> {
  const jsm = await jetstreamManager(nc);
  return retrying(() => jsm.streams.info(Streams.ledger), untilElected(ELECTION_WAIT_MS, 2_000));
}

export async function* replayLedger(nc: NatsConnection, opts: ReplayOptions = {}): AsyncGenerator<LedgerRecord> {
  const info = await ledgerStreamInfo(nc);
  const last = info.state.last_seq;
  if (info.state.messages === 0 || last < (opts.fromSeq ?? 1)) return;
  const js = jetstream(nc);
  const consumer = await orderedLedgerConsumer(js, {
    // one filter subject (2.9.10 has no filter_subjects): a string, not an array
    ...(opts.filter ? { filter_subjects: opts.filter } : {}),
    ...(opts.fromSeq ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.fromSeq } : {}),
  });
  const messages = await consumer.consume({ max_messages: 2048 });
  try {
    for await (const m of messages) {
      const rec = toRecord(m, opts);
      if (rec) yield rec;
      if (m.seq >= last || m.info.pending === 0) break;
    }
  } finally {
    await messages.close().catch(() => undefined);
  }
}

function toRecord(m: JsMsg, opts: ReplayOptions): LedgerRecord | undefined {
  let v: unknown;
  try {
    v = decode(m.data, m.subject);
  } catch (err) {
    opts.onInvalid?.(m.seq, m.subject, (err as Error).message);
    return undefined;
  }
  if (!isValid(LedgerEntry, v)) {
    opts.onInvalid?.(m.seq, m.subject, 'does not match the LedgerEntry schema');
    return undefined;
  }
  return { seq: m.seq, time: Math.floor(m.info.timestampNanos / 1e6), subject: m.subject, entry: v };
}

export async function readLedger(nc: NatsConnection, opts: ReplayOptions = {}): Promise<LedgerRecord[]> {
  const out: LedgerRecord[] = [];
  for await (const r of replayLedger(nc, opts)) out.push(r);
  return out;
}

/**
 * An ordered consumer on UB_LEDGER. Creating it can time out while a cluster elects a new
 * stream leader, or when the server placed the new (R1) consumer on a node that has just died
 * and is not yet known to be offline (on a 3-node cluster with a node killed, for tens of
 * seconds), so it is retried with a growing pause for up to `forMs` (2 min). Each try asks for a
 * consumer with a fresh name: the client names it from `name_prefix`, which it fills in on the
 * options it is given, and a retry under the name of a consumer assigned to the dead node would
 * time out again and again.
 */
export async function orderedLedgerConsumer(js: JetStreamClient, opts: Partial<OrderedConsumerOptions> = {}, forMs = ELECTION_WAIT_MS): Promise<Consumer> {
  // only what a leader election causes is retried: a missing stream or a permission error is reported at once
  return retrying(() => js.consumers.get(Streams.ledger, { ...opts }), untilElected(forMs, 3_000));
}
