import { hostname, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DEFAULT_CAPABILITIES, isSafeToken } from '../protocol/index.js';

export interface WorkerOptions {
  /** worker id (heartbeats, provenance) @default `<host>-<pid>-<rand>` */
  id?: string;
  /** capabilities advertised: cpu, container, image, gpu @default ['cpu','container','image'] */
  capabilities?: string[];
  /** concurrent task slots @default number of CPU cores */
  slots?: number;
  /** most messages pulled per fetch @default 64 */
  fetchBatch?: number;
  /** heartbeat period @default 5000 ms */
  heartbeatMs?: number;
  /** in-progress ack period for running tasks; keep below the consumer ack_wait (30 s) @default 10000 ms */
  keepAliveMs?: number;
  /** finished attempts committed per batch @default 256 */
  maxBatch?: number;
  /** how long a finished attempt may wait for batch-mates @default 2 ms */
  batchLingerMs?: number;
  /** retry delays by attempt (the last repeats) @default [1000, 5000, 15000] ms */
  backoffMs?: number[];
  /** on SIGTERM, running tasks get this long to finish before they are handed back @default 30000 ms */
  drainTimeoutMs?: number;
  /** root of per-attempt scratch directories @default $TMPDIR/ubatch-worker-<id> */
  scratchRoot?: string;
}

export interface CompiledWorkerOptions {
  id: string;
  capabilities: string[];
  slots: number;
  fetchBatch: number;
  heartbeatMs: number;
  keepAliveMs: number;
  maxBatch: number;
  batchLingerMs: number;
  backoffMs: number[];
  drainTimeoutMs: number;
  scratchRoot: string;
}

export class WorkerOptionsError extends Error {
  override name = 'WorkerOptionsError';
}

const clampInt = (v: number | undefined, d: number, lo: number, hi: number, name: string): number => {
  if (v === undefined) return d;
  if (!Number.isFinite(v)) throw new WorkerOptionsError(`${name} must be a number, got ${v}`);
  return Math.min(hi, Math.max(lo, Math.round(v)));
};

export function compileWorkerOptions(o: WorkerOptions = {}): CompiledWorkerOptions {
  const id = o.id ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 32)}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (!isSafeToken(id)) throw new WorkerOptionsError(`worker id ${JSON.stringify(id)} may only contain letters, digits, _ and -`);
  const capabilities = o.capabilities ?? [...DEFAULT_CAPABILITIES];
  if (capabilities.length === 0) throw new WorkerOptionsError('a worker needs at least one capability');
  for (const c of capabilities) if (!isSafeToken(c)) throw new WorkerOptionsError(`invalid capability ${JSON.stringify(c)}`);
  const heartbeatMs = clampInt(o.heartbeatMs, 5000, 100, 60_000, 'heartbeatMs');
  const keepAliveMs = clampInt(o.keepAliveMs, 10_000, 50, 600_000, 'keepAliveMs');
  const backoffMs = (o.backoffMs ?? [1000, 5000, 15000]).map((x) => clampInt(x, 1000, 0, 3_600_000, 'backoffMs'));
  if (backoffMs.length === 0) throw new WorkerOptionsError('backoffMs needs at least one delay');
  return {
    id,
    capabilities: [...new Set(capabilities)],
    slots: clampInt(o.slots, Math.max(1, cpus().length), 1, 4096, 'slots'),
    fetchBatch: clampInt(o.fetchBatch, 64, 1, 1024, 'fetchBatch'),
    heartbeatMs,
    keepAliveMs,
    maxBatch: clampInt(o.maxBatch, 256, 1, 4096, 'maxBatch'),
    batchLingerMs: clampInt(o.batchLingerMs, 2, 0, 1000, 'batchLingerMs'),
    backoffMs,
    drainTimeoutMs: clampInt(o.drainTimeoutMs, 30_000, 0, 3_600_000, 'drainTimeoutMs'),
    scratchRoot: o.scratchRoot ?? join(tmpdir(), `ubatch-worker-${id}`),
  };
}

/** nak delay for a failed attempt */
export function backoffFor(attempt: number, backoffMs: number[]): number {
  return backoffMs[Math.min(attempt - 1, backoffMs.length - 1)] ?? 1000;
}
