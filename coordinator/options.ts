import { resolve } from 'node:path';

export interface CoordinatorOptions {
  /** where jobs without output.path write: <outputRoot>/<user>/<jobId> @default ./.ubatch/output */
  outputRoot?: string;
  /** most tasks of one tenant released into UB_TASKS and not finished (queued + running) @default 10000 */
  maxQueuedPerTenant?: number;
  /** consumer ack wait: a silent worker's task is redelivered after this @default 30000 ms */
  ackWaitMs?: number;
  /** how often changed job state is persisted (result messages are acked after) @default 100 ms */
  flushMs?: number;
  /** largest accepted JobSpec, encoded @default 256 KiB */
  maxSpecBytes?: number;
  /** tasks published per release round per job @default 2000 */
  releaseChunk?: number;
  /** fair-share usage half-life @default 7 days */
  halfLifeMs?: number;
  /** leader lease length; a standby takes over after this much silence @default 10000 ms */
  leaseMs?: number;
  /** coordinator id (lease holder name) */
  id?: string;
  /** how often registered worker slots are sampled for the capacity record @default 30000 ms */
  capacitySampleMs?: number;
  /** where the accountant keeps its fsync'd journal of the ledger (ledger/journal.ts); none when unset */
  journalDir?: string;
  /** seal the ledger once this many entries wait; 0 turns sealing off @default 1000 */
  sealEntries?: number;
  /** seal whatever waits at least this often @default 10000 ms */
  sealIntervalMs?: number;
  /** a job's task plan up to this size is kept in KV ub-jobs (one write), a larger one in the object store; 0: always the object store @default 1 MiB */
  planInKvMaxBytes?: number;
}

export interface CompiledCoordinatorOptions {
  outputRoot: string;
  maxQueuedPerTenant: number;
  ackWaitMs: number;
  flushMs: number;
  maxSpecBytes: number;
  releaseChunk: number;
  halfLifeMs: number;
  leaseMs: number;
  id: string;
  capacitySampleMs: number;
  journalDir: string | undefined;
  sealEntries: number;
  sealIntervalMs: number;
  planInKvMaxBytes: number;
}

export class CoordinatorOptionsError extends Error {
  override name = 'CoordinatorOptionsError';
}

function posInt(v: number | undefined, d: number, name: string, min = 1): number {
  if (v === undefined) return d;
  if (!Number.isFinite(v) || v < min) throw new CoordinatorOptionsError(`${name} must be a number >= ${min}, got ${v}`);
  return Math.round(v);
}

export function compileCoordinatorOptions(o: CoordinatorOptions = {}): CompiledCoordinatorOptions {
  const ackWaitMs = posInt(o.ackWaitMs, 30_000, 'ackWaitMs', 100);
  const leaseMs = posInt(o.leaseMs, 10_000, 'leaseMs', 500);
  return {
    outputRoot: resolve(o.outputRoot ?? '.ubatch/output'),
    maxQueuedPerTenant: posInt(o.maxQueuedPerTenant, 10_000, 'maxQueuedPerTenant'),
    ackWaitMs,
    flushMs: posInt(o.flushMs, 100, 'flushMs', 5),
    maxSpecBytes: posInt(o.maxSpecBytes, 256 * 1024, 'maxSpecBytes', 1024),
    releaseChunk: posInt(o.releaseChunk, 2000, 'releaseChunk'),
    halfLifeMs: posInt(o.halfLifeMs, 7 * 86_400_000, 'halfLifeMs'),
    leaseMs,
    capacitySampleMs: posInt(o.capacitySampleMs, 30_000, 'capacitySampleMs', 50),
    journalDir: o.journalDir !== undefined ? resolve(o.journalDir) : undefined,
    sealEntries: o.sealEntries === 0 ? 0 : Math.min(posInt(o.sealEntries, 1000, 'sealEntries'), 100_000),
    sealIntervalMs: posInt(o.sealIntervalMs, 10_000, 'sealIntervalMs', 50),
    // ub-jobs values may be up to 2 MiB (protocol/topology.ts)
    planInKvMaxBytes: Math.min(posInt(o.planInKvMaxBytes, 1024 * 1024, 'planInKvMaxBytes', 0), 1024 * 1024),
    id: o.id ?? `coord-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  };
}
