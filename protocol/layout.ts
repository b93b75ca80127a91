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

/** Final path of a file an attempt wrote at `rel` (relative to its attempt dir). */
export function committedPath(spec: JobSpec, hasReduce: boolean, task: Pick<Task, 'stage' | 'index' | 'partition' | 'kind'>, rel: string): string {
  const out = spec.output!.path.replace(/\/+$/, '');
  if (task.stage === 'reduce') {
    if (rel === 'result.parquet') return out.endsWith('.parquet') ? out : join(out, 'result.parquet');
    return join(out.endsWith('.parquet') ? `${out}.files` : out, rel);
  }
  if (hasReduce) return join(workRoot(out), 'partials', `${task.index}`, rel);
  if (task.kind === 'catalog.sql' && rel === 'part.parquet') {
    const p = task.partition;
    return p && p.order >= 0 ? join(out, hatsLeafRelPath(p.order, p.pixel)) : join(out, `part-${task.index}.parquet`);
  }
  return join(out, `task-${task.index}`, rel);
}
