/**
 * The coordinator daemon: leader lease, API service, task release, result
 * folding, persistence. `Coordinator.create()` prepares, `run()` takes the
 * lease and serves until `close()`; SIGTERM → close: stop serving, persist
 * everything folded, release the lease.
 */
import { AckPolicy, jetstream, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Service } from '@nats-io/services';
import { ensureTopologyRetrying, noopLog, Streams, type Log, type Topology, type TopologyOptions } from '../protocol/index.js';
import { LedgerFollower, LedgerWriter, sha256hex } from '../ledger/index.js';
import { CapacityRecorder } from './capacity.js';
import { LedgerJournal } from './journal.js';
import { Sealer } from './sealer.js';
import { LeaderLease } from './lease.js';
import { JobManager } from './manager.js';
import { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions } from './options.js';
import { startApiService, type ServiceOptions } from './service.js';
import { noopCoordinatorMetrics, type CoordinatorMetrics } from './types.js';

export interface CoordinatorDeps {
  nc: NatsConnection;
  log?: Log;
  metrics?: CoordinatorMetrics;
  topology?: TopologyOptions;
  service?: ServiceOptions;
}

const RESULTS_CONSUMER = 'coordinator';

export class Coordinator {
  readonly opts: CompiledCoordinatorOptions;
  private topo!: Topology;
  private mgr!: JobManager;
  private lease!: LeaderLease;
  private svc: Service | undefined;
  private results: ConsumerMessages | undefined;
  private follower: LedgerFollower | undefined;
  private capacity: CapacityRecorder | undefined;
  private ledger!: LedgerWriter;
  private journal: LedgerJournal | undefined;
  private sealer: Sealer | undefined;
  private timers: NodeJS.Timeout[] = [];
  private readonly log: Log;
  private readonly metrics: CoordinatorMetrics;
  private readonly ac = new AbortController();
  private closed = false;
  private _serving = false;
  private stopped!: Promise<void>;
  private resolveStopped!: () => void;

  private constructor(private readonly deps: CoordinatorDeps, opts: CoordinatorOptions) {
    this.opts = compileCoordinatorOptions(opts);
    this.log = deps.log ?? noopLog;
    this.metrics = deps.metrics ?? noopCoordinatorMetrics;
    this.stopped = new Promise((r) => (this.resolveStopped = r));
  }

  static async create(deps: CoordinatorDeps, opts: CoordinatorOptions = {}): Promise<Coordinator> {
    const c = new Coordinator(deps, opts);
    c.topo = await ensureTopologyRetrying(deps.nc, deps.topology, {
      onRetry: (err, attempt) => c.log.warn({ err, attempt }, 'streams and buckets not ready yet (will retry)'),
    });
    const js = jetstream(deps.nc);
    const ledger = new LedgerWriter(js, { observeLatency: (s) => c.metrics.ledgerAppend(s) });
    c.ledger = ledger;
    c.mgr = new JobManager(js, c.topo.jsm, c.topo, ledger, c.opts, c.log, c.metrics);
    c.lease = new LeaderLease(c.topo.jobs, c.opts.id, c.opts.leaseMs, c.log, () => {
      c.log.error({}, 'stopping: another coordinator took over');
      void c.close();
    });
    return c;
  }

  get manager(): JobManager {
    return this.mgr;
  }
  /** true once run() has restored state and serves the API (a failure before that is a start-up failure) */
  get serving(): boolean {
    return this._serving;
  }
  get isLeader(): boolean {
    return this.lease.isLeader;
  }
  /** the ledger sealer (tamper evidence), while this coordinator leads and sealing is on */
  get ledgerSealer(): Sealer | undefined {
    return this.sealer;
  }
  /** the accountant's local ledger journal, when journalDir is set */
  get ledgerJournal(): LedgerJournal | undefined {
    return this.journal;
  }

  /** take the lease, restore state, serve; resolves after close() */
  async run(): Promise<void> {
    await this.lease.acquire(this.ac.signal);
    if (this.ac.signal.aborted) return this.stopped;
    // tamper evidence: the fsync'd journal of what the accountant folds, and the seal chain
    if (this.opts.journalDir !== undefined) {
      const info = await this.topo.jsm.streams.info(Streams.ledger);
      this.journal = await LedgerJournal.open(this.opts.journalDir, Streams.ledger, info.created, {
        log: this.log,
        onError: () => this.metrics.swallowed('ledger-journal'),
      });
      if (this.journal.resumedAt > info.state.last_seq) {
        this.metrics.swallowed('ledger-journal-ahead');
        this.log.error({ journal: this.journal.file, journalSeq: this.journal.resumedAt, streamSeq: info.state.last_seq }, 'the ledger stream ends before the journal does: acknowledged ledger entries were lost; run ubatch ledger verify --journal');
      }
    }
    if (this.opts.sealEntries > 0) {
      this.sealer = new Sealer(this.ledger, {
        entries: this.opts.sealEntries,
        intervalMs: this.opts.sealIntervalMs,
        actor: this.opts.id,
        log: this.log,
        onProblem: (what) => this.metrics.swallowed(what),
      });
    }
    const journal = this.journal;
    const sealer = this.sealer;
    // the accountant's view (quotas, shares, usage) is a fold of the whole ledger, kept current
    this.follower = new LedgerFollower(
      this.deps.nc,
      (r) => {
        this.mgr.acct.apply(r);
        if (r.entry.kind === 'quota.set' || r.entry.kind === 'share.set') {
          this.mgr.markRankingDirty();
          this.mgr.kickRelease();
        }
      },
      (seq, reason) => {
        this.metrics.swallowed('ledger-invalid');
        this.log.warn({ seq, reason }, 'ignoring an invalid ledger entry');
      },
      journal || sealer
        ? {
            onMessage: (m) => {
              try {
                const sha = sha256hex(m.data);
                journal?.append(m, sha);
                sealer?.onMessage(m, sha);
              } catch (err) {
                this.metrics.swallowed('ledger-seal');
                this.log.error({ err, seq: m.seq }, 'journaling or sealing a ledger entry failed');
              }
            },
            ...(journal ? { flush: () => journal.flush() } : {}),
          }
        : {},
    );
    await this.follower.start();
    // caught up with the stream as it was: the chain head is known, sealing may begin
    sealer?.start();
    this.mgr.waitLedger = (seq) => this.follower!.waitFor(seq);
    await this.mgr.load();
    this.svc = await startApiService(this.deps.nc, this.mgr, this.log, this.metrics, this.deps.service);
    await this.topo.jsm.consumers.add(Streams.results, { durable_name: RESULTS_CONSUMER, ack_policy: AckPolicy.Explicit, ack_wait: 10_000_000_000, max_deliver: -1, max_ack_pending: 100_000 });
    const consumer = await jetstream(this.deps.nc).consumers.get(Streams.results, RESULTS_CONSUMER);
    this.results = await consumer.consume({ max_messages: 512 });
    void this.foldLoop(this.results);
    let flushing = false;
    this.timers.push(
      setInterval(() => {
        if (flushing) return;
        flushing = true;
        this.mgr
          .flush()
          .catch((err) => {
            this.metrics.swallowed('flush');
            this.log.error({ err }, 'persisting job state failed; will retry');
          })
          .finally(() => (flushing = false));
      }, this.opts.flushMs),
      // periodic ranking refresh: decayed usage moves even when nothing else does
      setInterval(() => {
        this.mgr.markRankingDirty();
        this.mgr.kickRelease();
      }, 2000),
    );
    this.capacity = new CapacityRecorder(this.topo.workers, this.topo.shares, this.log, this.opts.capacitySampleMs);
    this.capacity.start();
    this._serving = true;
    this.log.info({ id: this.opts.id }, 'coordinator serving');
    return this.stopped;
  }

  private async foldLoop(msgs: ConsumerMessages): Promise<void> {
    try {
      for await (const m of msgs) {
        try {
          await this.mgr.fold(m);
        } catch (err) {
          this.metrics.swallowed('fold');
          this.log.error({ err, seq: m.seq }, 'folding a result failed; it will be redelivered');
          m.nak(1000);
        }
      }
    } catch (err) {
      if (!this.closed) this.log.error({ err }, 'result consumer stopped');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ac.abort();
    const errors: unknown[] = [];
    for (const t of this.timers) clearInterval(t);
    this.capacity?.stop();
    await this.svc?.stop().catch((e: unknown) => errors.push(e));
    await this.results?.close().catch((e: unknown) => errors.push(e));
    await this.mgr?.flush().catch((e: unknown) => errors.push(e));
    // seal what the ledger holds, and read the seal back, before the follower stops
    if (this.sealer && this.follower) {
      const follower = this.follower;
      await Promise.race([this.sealer.sealAll((seq, ms) => follower.waitFor(seq, ms), 5000), new Promise((r) => setTimeout(r, 6000).unref())]).catch((e: unknown) => errors.push(e));
    }
    this.sealer?.stop();
    await this.follower?.stop().catch((e: unknown) => errors.push(e));
    await this.journal?.close().catch((e: unknown) => errors.push(e));
    await this.lease?.release().catch((e: unknown) => errors.push(e));
    for (const e of errors) this.log.warn({ err: e }, 'error during coordinator close');
    this.log.info({ id: this.opts.id }, 'coordinator stopped');
    this.resolveStopped();
  }
}
