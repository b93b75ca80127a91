/**
 * The coordinator's job records: public JobInfo plus what it needs to resume
 * after a restart (bitmaps of finished and accepted map tasks, release mark),
 * persisted as one msgpack document per job in KV ub-jobs (`job.<id>`).
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { FileRecord, JobInfo, JobSpec, PartitionRef } from '../protocol/index.js';
import { Bitset } from './bitset.js';

export const MAX_FAILURES_KEPT = 200;
export const MAX_SUMMARIES_KEPT = 1000;

export interface PlanUnit {
  partition?: PartitionRef;
  unit?: unknown;
}

export interface JobRecord {
  info: JobInfo;
  spec: JobSpec;
  capability: string;
  /** the planned units (absent for kinds whose tasks are just indexes, e.g. noop) */
  units?: PlanUnit[];
  finished: Bitset;
  ok: Bitset;
  reduceReleased: boolean;
  /** committed partition leaves (catalog.sql without reduce) for HATS metadata */
  leaves: { order: number; pixel: number; rows: number }[];
  outputs: FileRecord[];
  summaries: { taskId: string; summary: unknown }[];
  rowsOut: number;
  /** result messages folded into this record but not yet persisted: acked after the next flush */
  pendingAcks: JsMsg[];
  lastProgressEvent: number;
}

export interface JobDoc {
  v: 1;
  info: JobInfo;
  capability: string;
  hasUnits: boolean;
  finished: Uint8Array;
  ok: Uint8Array;
  reduceReleased: boolean;
  leaves: { order: number; pixel: number; rows: number }[];
  outputs: FileRecord[];
  summaries: { taskId: string; summary: unknown }[];
  rowsOut: number;
}

export function toDoc(r: JobRecord): JobDoc {
  return {
    v: 1,
    info: r.info,
    capability: r.capability,
    hasUnits: r.units !== undefined,
    finished: r.finished.bytes,
    ok: r.ok.bytes,
    reduceReleased: r.reduceReleased,
    leaves: r.leaves,
    outputs: r.outputs,
    summaries: r.summaries,
    rowsOut: r.rowsOut,
  };
}

export function fromDoc(d: JobDoc, spec: JobSpec, units: PlanUnit[] | undefined): JobRecord {
  const mapTasks = d.info.total - (d.info.hasReduce ? 1 : 0);
  return {
    info: d.info,
    spec,
    capability: d.capability,
    ...(units ? { units } : {}),
    finished: new Bitset(mapTasks, d.finished),
    ok: new Bitset(mapTasks, d.ok),
    reduceReleased: d.reduceReleased,
    leaves: d.leaves ?? [],
    outputs: d.outputs ?? [],
    summaries: d.summaries ?? [],
    rowsOut: d.rowsOut ?? 0,
    pendingAcks: [],
    lastProgressEvent: 0,
  };
}

export function mapTaskCount(r: JobRecord): number {
  return r.info.total - (r.info.hasReduce ? 1 : 0);
}

export function tenantOf(r: { info: { group: string; user: string } }): string {
  return `${r.info.group}.${r.info.user}`;
}

export function newJobId(): string {
  const t = Date.now().toString(36);
  const r = Math.floor(Math.random() * 36 ** 5).toString(36).padStart(5, '0');
  return `j${t}${r}`;
}
