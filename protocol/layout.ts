/**
 * Output layout: where an attempt writes and where its files land once the
 * coordinator accepts it. Shared by workers (to record final paths in
 * provenance) and the coordinator (to rename into place).
 */
import type { JobSpec, Task } from './schemas.js';

const join = (...p: string[]) => p.join('/').replace(/\/+/g, '/');

/** Directory holding a job's private working state (attempt dirs, partials). */
export function workRoot(outputPath: string): string {
  const p = outputPath.replace(/\/+$/, '');
  return p.endsWith('.parquet') ? `${p}.ubatch` : join(p, '.ubatch');
}

export function attemptDir(outputPath: string, taskId: string, attempt: number): string {
  return join(workRoot(outputPath), 'tmp', `${taskId}.a${attempt}`);
}

export function hatsLeafRelPath(order: number, pixel: number): string {
  return `dataset/Norder=${order}/Dir=${Math.floor(pixel / 10000) * 10000}/Npix=${pixel}.parquet`;
}

/**
 * Kinds whose map tasks (when the job has no reduce) each write one `part.parquet`
 * for their input partition: together they form a HATS catalog of the same
 * partitions, so the leaf goes to the HATS path and the coordinator writes the
 * catalog metadata when the job closes.
 */
export const HATS_OUTPUT_KINDS: ReadonlySet<string> = new Set(['catalog.sql', 'periodogram', 'crossmatch']);

/** Whether a job of `kind` writes a HATS catalog (partition leaves plus metadata) at its output path. */
export function writesHatsCatalog(kind: string, hasReduce: boolean): boolean {
  return !hasReduce && HATS_OUTPUT_KINDS.has(kind);
}

/** Final path of a file an attempt wrote at `rel` (relative to its attempt dir). */
export function committedPath(spec: JobSpec, hasReduce: boolean, task: Pick<Task, 'stage' | 'index' | 'partition' | 'kind'>, rel: string): string {
  const out = spec.output!.path.replace(/\/+$/, '');
  if (task.stage === 'reduce') {
    if (rel === 'result.parquet') return out.endsWith('.parquet') ? out : join(out, 'result.parquet');
    return join(out.endsWith('.parquet') ? `${out}.files` : out, rel);
  }
  if (hasReduce) return join(workRoot(out), 'partials', `${task.index}`, rel);
  // a task over several partitions (catalog.sql batching) writes each leaf at its HATS path
  if (HATS_OUTPUT_KINDS.has(task.kind) && /^dataset\/Norder=\d+\/Dir=\d+\/Npix=\d+\.parquet$/.test(rel)) return join(out, rel);
  // periodogram's saved periodograms (params.save_periodograms) sit beside the catalog, in their own HATS-like tree
  if (task.kind === 'periodogram' && /^periodograms\/(Norder=\d+\/Dir=\d+\/Npix=\d+|part-\d+)\.parquet$/.test(rel)) return join(out, rel);
  if (HATS_OUTPUT_KINDS.has(task.kind) && rel === 'part.parquet') {
    const p = task.partition;
    return p && p.order >= 0 ? join(out, hatsLeafRelPath(p.order, p.pixel)) : join(out, `part-${task.index}.parquet`);
  }
  return join(out, `task-${task.index}`, rel);
}

/**
 * The HATS leaves a committed map task wrote: one per partition of a batched
 * task (`unit.partitions`, rows from the output at the leaf's path), else its
 * single partition with the task's row count.
 */
export function hatsLeavesOf(
  unit: { partition?: { order: number; pixel: number }; unit?: unknown } | undefined,
  outputs: readonly { path: string; rows?: number }[],
  rows: number | undefined,
): { order: number; pixel: number; rows: number }[] {
  const batch = (unit?.unit as { partitions?: { order: number; pixel: number }[] } | undefined)?.partitions;
  if (Array.isArray(batch)) {
    return batch.flatMap((p) => {
      const rel = `/${hatsLeafRelPath(p.order, p.pixel)}`;
      const o = outputs.find((f) => f.path.endsWith(rel));
      return p.order >= 0 && o ? [{ order: p.order, pixel: p.pixel, rows: o.rows ?? 0 }] : [];
    });
  }
  const p = unit?.partition;
  return p && p.order >= 0 ? [{ order: p.order, pixel: p.pixel, rows: rows ?? 0 }] : [];
}
