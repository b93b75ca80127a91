/**
 * Stream, KV and object-store definitions, created idempotently at start-up.
 * Written for nats-server 2.9.10: no per-message TTL, one filter subject per consumer.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import {
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  DiscardPolicy,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { retrying } from './retry.js';
import { Buckets, ObjectStores, Streams } from './subjects.js';

const NS_PER_MS = 1_000_000;
const DAY_MS = 86_400_000;

export interface TopologyOptions {
  /** stream and bucket replicas (3 on a cluster) @default 1 */
  replicas?: number;
  /** how long task messages are de-duplicated by msgID (taskId) @default 10 min */
  taskDuplicateWindowMs?: number;
  /** UB_LEDGER de-duplicate window @default 1 day */
  ledgerDuplicateWindowMs?: number;
  /** UB_EVENTS max age @default 7 days */
  eventsMaxAgeMs?: number;
  /** worker heartbeat TTL (ub-workers bucket max age) @default 15 s */
  workerTtlMs?: number;
  /** largest message accepted by the streams @default 4 MiB */
  maxMsgBytes?: number;
  /** with replicas > 1: how long ensureTopology waits for every stream to elect a leader @default 30 s */
  leaderWaitMs?: number;
}

export function streamConfigs(o: TopologyOptions = {}): Partial<StreamConfig>[] {
  const replicas = o.replicas ?? 1;
  const max_msg_size = o.maxMsgBytes ?? 4 * 1024 * 1024;
  return [
    {
      name: Streams.tasks,
      subjects: ['ub.tasks.>'],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: replicas,
      duplicate_window: (o.taskDuplicateWindowMs ?? 10 * 60_000) * NS_PER_MS,
      max_msg_size,
    },
    {
      name: Streams.results,
      subjects: ['ub.results.>'],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: replicas,
      duplicate_window: 10 * 60_000 * NS_PER_MS,
      max_msg_size,
    },
    {
      name: Streams.events,
      subjects: ['ub.events.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: replicas,
      max_age: (o.eventsMaxAgeMs ?? 7 * DAY_MS) * NS_PER_MS,
      discard: DiscardPolicy.Old,
      max_msg_size: 64 * 1024,
    },
    {
      name: Streams.ledger,
      subjects: ['ub.ledger.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: replicas,
      deny_delete: true,
      deny_purge: true,
      allow_rollup_hdrs: false,
      duplicate_window: (o.ledgerDuplicateWindowMs ?? DAY_MS) * NS_PER_MS,
      max_msg_size,
    },
  ];
}

/** Create or update every stream; safe to call from every daemon at start. */
export async function ensureStreams(jsm: JetStreamManager, o: TopologyOptions = {}): Promise<void> {
  for (const cfg of streamConfigs(o)) {
    const name = cfg.name!;
    try {
      const info = await jsm.streams.info(name);
      const cur = info.config;
      const drift = (Object.keys(cfg) as (keyof StreamConfig)[]).some(
        (k) => k !== 'num_replicas' && JSON.stringify(cur[k]) !== JSON.stringify(cfg[k]),
      );
      if (drift) await jsm.streams.update(name, { ...cur, ...cfg } as StreamConfig);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await jsm.streams.add({ ...cfg, name });
      } catch (addErr) {
        // another daemon created it in between: fine if it now exists
        await jsm.streams.info(name).catch(() => {
          throw addErr;
        });
      }
    }
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: string; api_error?: { err_code?: number } } | undefined;
  return e?.api_error?.err_code === 10059 || /stream not found/i.test(e?.message ?? '');
}

export interface Topology {
  jsm: JetStreamManager;
  jobs: KV;
  workers: KV;
  shares: KV;
  quotas: KV;
  artifacts: ObjectStore;
}

/**
 * ensureTopology for a daemon starting beside a cluster that is still electing
 * stream leaders (or a server that is still starting): transient failures
 * (API timeouts, no responders, JetStream temporarily unavailable) are retried
 * with backoff for up to `forMs`; permission errors fail at once.
 */
export async function ensureTopologyRetrying(nc: NatsConnection, o: TopologyOptions = {}, retry: { forMs?: number; onRetry?: (err: unknown, attempt: number) => void } = {}): Promise<Topology> {
  const end = Date.now() + (retry.forMs ?? 120_000);
  return retrying(() => ensureTopology(nc, o), {
    baseMs: 250,
    capMs: 5_000,
    retryable: (err) => !isPermanent(err) && Date.now() < end && !nc.isClosed(),
    onRetry: (err, attempt) => retry.onRetry?.(err, attempt),
  });
}

function isPermanent(err: unknown): boolean {
  const text = `${(err as Error | undefined)?.message ?? ''} ${String((err as { cause?: unknown } | undefined)?.cause ?? '')}`;
  return /permissions? violation|authorization/i.test(text);
}

export async function ensureTopology(nc: NatsConnection, o: TopologyOptions = {}): Promise<Topology> {
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, o);
  const replicas = o.replicas ?? 1;
  const kvm = new Kvm(nc);
  const [jobs, workers, shares, quotas] = await Promise.all([
    kvm.create(Buckets.jobs, { replicas, history: 1, storage: StorageType.File, maxValueSize: 2 * 1024 * 1024 }),
    kvm.create(Buckets.workers, { replicas, history: 1, ttl: o.workerTtlMs ?? 15_000, storage: StorageType.File }),
    kvm.create(Buckets.shares, { replicas, history: 1, storage: StorageType.File }),
    kvm.create(Buckets.quotas, { replicas, history: 1, storage: StorageType.File }),
  ]);
  const artifacts = await new Objm(nc).create(ObjectStores.artifacts, { replicas, storage: StorageType.File });
  if (replicas > 1) await awaitStreamLeaders(jsm, o.leaderWaitMs ?? 30_000);
  return { jsm, jobs, workers, shares, quotas, artifacts };
}

/** every stream behind the topology (streams, KV buckets, object store) */
export function topologyStreamNames(): string[] {
  return [...Object.values(Streams), ...Object.values(Buckets).map((b) => `KV_${b}`), ...Object.values(ObjectStores).map((o) => `OBJ_${o}`)];
}

/**
 * On a cluster a replicated stream answers "created" before it has elected its
 * leader; its first writes then time out or find no responders. Wait until
 * every topology stream reports a leader (throws after `timeoutMs`).
 */
export async function awaitStreamLeaders(jsm: JetStreamManager, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  const waiting = new Set(topologyStreamNames());
  while (waiting.size > 0) {
    for (const name of [...waiting]) {
      const info = await jsm.streams.info(name).catch(() => undefined);
      if (info?.cluster?.leader) waiting.delete(name);
    }
    if (waiting.size === 0) return;
    if (Date.now() >= end) throw new Error(`streams without a leader after ${timeoutMs} ms: ${[...waiting].join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
