/**
 * Finished attempts are committed in batches: charges to UB_LEDGER (one entry
 * per tenant per batch), outcomes to UB_RESULTS (one message per job per
 * batch), and only after both are acknowledged by the server are the task
 * messages acked / termed / nak'ed. Each batch has a deterministic msgID, so a
 * retried publish is a no-op; a crash before the acks gives redelivery and new
 * attempts, never a second charge for the same attempt.
 *
 * A batch that cannot be committed (server restarting, no stream leader, a
 * connection that just came back from a stopped process) is retried as the
 * same batch — same members, same msgIDs, so a publish whose ack was lost is
 * not charged twice — with backoff for up to `retryForMs` (within the result
 * stream's 10 min duplicate window), and only then nak'ed. Dropping it at the
 * first failure would leave work that was done uncharged: its redelivery is
 * a new attempt, and a task already completed elsewhere is never run again.
 */
import { createHash } from 'node:crypto';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { encode, resultSubject, Streams, type Charge, type TaskOutcome } from '../protocol/index.js';
import { chargeMsgId, type LedgerWriter } from '../ledger/index.js';
import { retrying } from '../protocol/retry.js';
import type { Log } from './types.js';

export type AckAction = { type: 'ack' } | { type: 'term' } | { type: 'nak'; delayMs: number };

export interface Finished {
  msg: JsMsg;
  jobId: string;
  group: string;
  user: string;
  actor: string;
  outcome?: TaskOutcome;
  charge?: Charge;
  action: AckAction;
}

export interface BatcherOptions {
  maxBatch: number;
  lingerMs: number;
  /** how long a batch that fails to commit is retried (same msgIDs) before its tasks are nak'ed @default 5 min */
  retryForMs?: number;
  onFlushed?: (items: Finished[], seconds: number) => void;
}

export class OutcomeBatcher {
  private pending: Finished[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** while draining: retries stop at this time */
  private giveUpAt: number | undefined;

  constructor(
    private readonly js: JetStreamClient,
    private readonly ledger: LedgerWriter,
    private readonly log: Log,
    private readonly opts: BatcherOptions,
  ) {}

  add(f: Finished): void {
    this.pending.push(f);
    if (this.pending.length >= this.opts.maxBatch) this.kick();
    else if (!this.timer) this.timer = setTimeout(() => this.kick(), this.opts.lingerMs);
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.flushing || this.pending.length === 0) return;
    const items = this.pending.splice(0, this.pending.length);
    this.flushing = this.commitRetrying(items)
      .catch((err) => {
        // nothing was acked: JetStream redelivers these tasks after ack_wait (new attempts)
        this.log.error({ err, tasks: items.length }, 'could not commit a batch of finished tasks; they will be redelivered');
        for (const it of items) it.msg.nak(5000);
      })
      .finally(() => {
        this.flushing = undefined;
        if (this.pending.length > 0) this.kick();
      });
  }

  /** wait until everything added so far is committed (or, past `giveUpAt`, nak'ed) */
  async drain(giveUpAt?: number): Promise<void> {
    this.giveUpAt = giveUpAt;
    while (this.pending.length > 0 || this.flushing) {
      this.kick();
      await this.flushing;
    }
  }

  private commitRetrying(items: Finished[]): Promise<void> {
    const end = Date.now() + (this.opts.retryForMs ?? 300_000);
    return retrying(() => this.commit(items), {
      baseMs: 250,
      capMs: 10_000,
      // the give-up time moves closer when the worker starts draining
      retryable: (_err, _attempt, delayMs) => Date.now() + delayMs <= Math.min(end, this.giveUpAt ?? Infinity),
      onRetry: (err, attempt) => this.log.warn({ err, tasks: items.length, attempt }, 'could not commit a batch of finished tasks (will retry the same batch)'),
    });
  }

  private async commit(items: Finished[]): Promise<void> {
    const t0 = performance.now();
    const byTenant = new Map<string, { group: string; user: string; actor: string; charges: Charge[] }>();
    const byJob = new Map<string, TaskOutcome[]>();
    for (const it of items) {
      if (it.charge) {
        const k = `${it.group}.${it.user}`;
        let t = byTenant.get(k);
        if (!t) byTenant.set(k, (t = { group: it.group, user: it.user, actor: it.actor, charges: [] }));
        t.charges.push(it.charge);
      }
      if (it.outcome) {
        let l = byJob.get(it.jobId);
        if (!l) byJob.set(it.jobId, (l = []));
        l.push(it.outcome);
      }
    }
    const ts = new Date().toISOString();
    // charges first, then results: when the coordinator folds a result (and frees the credit it held), the
    // charge is already in UB_LEDGER, so the accountant can catch up before granting more (fault matrix row 10)
    await Promise.all(
      [...byTenant.values()].map((t) =>
        this.ledger.append({ kind: 'task.charged', ts, actor: t.actor, group: t.group, user: t.user, charges: t.charges }, chargeMsgId(t.charges)),
      ),
    );
    await Promise.all([
      ...[...byJob.entries()].map(([jobId, outcomes]) => {
        const ids = outcomes.map((o) => `${o.taskId}/${o.attempt}`).sort().join('\n');
        const msgID = `result/${createHash('sha256').update(ids).digest('hex').slice(0, 32)}`;
        return this.js.publish(resultSubject(jobId), encode({ jobId, outcomes }), { msgID, expect: { streamName: Streams.results }, timeout: 10_000 });
      }),
    ]);
    for (const it of items) {
      if (it.action.type === 'ack') it.msg.ack();
      else if (it.action.type === 'term') it.msg.term();
      else it.msg.nak(it.action.delayMs);
    }
    this.opts.onFlushed?.(items, (performance.now() - t0) / 1000);
  }
}
