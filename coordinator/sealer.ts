/**
 * The sealer: the coordinator leader folds every UB_LEDGER message into a
 * SealChain (ledger/seal.ts) as its ledger follower reads it, and appends a
 * `ledger.sealed` entry every `sealEntries` entries or `sealIntervalMs`, and at
 * a clean shutdown.
 *
 * The head of the chain only ever moves when a seal is read back from the
 * stream, never when one is published: a coordinator that restarts mid-block
 * rebuilds the head by replaying, and two coordinators that both believe they
 * lead (the lease is not atomic on R3 streams in 2.9.10) publish seals with
 * the same msgID for the same block (`seal.<firstSeq>.<prev>`), so the stream
 * keeps one and both adopt it. It seals nothing before the follower has caught
 * up with the stream as it was at start, so it cannot seal a range that a seal
 * further on already covers.
 */
import type { LedgerWriter } from '../ledger/index.js';
import { SealChain, sealOf, type LedgerSeal, type RawLedgerMessage } from '../ledger/index.js';
import { noopLog, type Log } from '../protocol/index.js';

export interface SealerOptions {
  /** seal once this many entries wait */
  entries: number;
  /** seal what waits at least this often (ms) */
  intervalMs: number;
  /** the actor field of seals (the coordinator id) */
  actor: string;
  log?: Log;
  /** a problem worth a metric: 'ledger-seal' (append failed) or 'ledger-seal-rejected' (a seal that does not continue the chain) */
  onProblem?: (what: 'ledger-seal' | 'ledger-seal-rejected') => void;
}

/** how long a published seal may stay unread before the sealer tries again */
const INFLIGHT_TIMEOUT_MS = 30_000;

export class Sealer {
  readonly chain = new SealChain();
  private live = false;
  private inflight: { firstSeq: number; since: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Log;
  /** seals appended by this sealer (acknowledged, not duplicates) */
  sealed = 0;
  rejected = 0;
  private observers: ((s: LedgerSeal) => void)[] = [];

  constructor(
    private readonly writer: LedgerWriter,
    private readonly opts: SealerOptions,
  ) {
    this.log = opts.log ?? noopLog;
  }

  /** every ledger message, in sequence order (the follower's hook) */
  onMessage(m: RawLedgerMessage, dataSha256?: string): void {
    const s = sealOf(m);
    if (!s) {
      this.chain.add(m, dataSha256);
      if (this.live && !this.inflight && this.chain.pendingCount >= this.opts.entries) void this.seal();
      return;
    }
    const problems = this.chain.check(m.seq, s);
    if (problems.length === 0) {
      this.chain.adopt(m.seq, s);
    } else {
      this.rejected++;
      this.opts.onProblem?.('ledger-seal-rejected');
      this.log.error({ seq: m.seq, problems: problems.map((p) => p.message) }, 'a ledger seal does not continue the chain: ignored (run ubatch ledger verify)');
    }
    if (this.inflight && this.inflight.firstSeq === s.firstSeq) this.inflight = undefined;
    for (const o of this.observers.splice(0)) o(s);
    if (this.live && !this.inflight && this.chain.pendingCount >= this.opts.entries) void this.seal();
  }

  /** the follower has caught up: seal from now on */
  start(): void {
    if (this.live) return;
    this.live = true;
    this.timer = setInterval(() => {
      if (this.inflight && Date.now() - this.inflight.since > INFLIGHT_TIMEOUT_MS) this.inflight = undefined;
      if (!this.inflight && this.chain.pendingCount > 0) void this.seal();
    }, this.opts.intervalMs);
    this.timer.unref?.();
    if (this.chain.pendingCount >= this.opts.entries) void this.seal();
  }

  /** appends a seal over what waits (at most `entries` entries); resolves with its stream sequence, or undefined */
  async seal(): Promise<number | undefined> {
    if (!this.live || this.inflight) return undefined;
    const p = this.chain.propose(this.opts.entries, { ts: new Date().toISOString(), actor: this.opts.actor });
    if (!p) return undefined;
    this.inflight = { firstSeq: p.seal.firstSeq, since: Date.now() };
    try {
      const ack = await this.writer.append(p.seal, p.msgId);
      if (!ack.duplicate) this.sealed++;
      this.log.debug({ seq: ack.seq, block: p.seal.block, firstSeq: p.seal.firstSeq, lastSeq: p.seal.lastSeq, duplicate: ack.duplicate }, 'ledger sealed');
      return ack.seq;
    } catch (err) {
      this.inflight = undefined;
      this.opts.onProblem?.('ledger-seal');
      this.log.error({ err, firstSeq: p.seal.firstSeq }, 'appending a ledger seal failed; will retry');
      return undefined;
    }
  }

  /**
   * At a clean shutdown: seal everything that waits and resolve once the
   * seals are read back (`waitFor` is the follower's), or after `timeoutMs`.
   */
  async sealAll(waitFor: (seq: number, timeoutMs: number) => Promise<void>, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.live && Date.now() < end) {
      if (this.inflight) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.max(1, end - Date.now()));
          this.observers.push(() => (clearTimeout(t), r()));
        });
        continue;
      }
      if (this.chain.pendingCount === 0) return;
      const seq = await this.seal();
      if (seq === undefined) return;
      await waitFor(seq, Math.max(1, end - Date.now())).catch(() => undefined);
    }
  }

  stop(): void {
    this.live = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
