/**
 * What every partition-reading executor does with its task's inputs: find the
 * partitions of a (possibly batched) task, name one in an error, and hash the
 * input files for provenance while the task runs.
 */
import type { FileRecord, PartitionRef } from '../../protocol/index.js';
import { InputError } from '../errors.js';
import { inputRecord } from '../files.js';
import type { ExecContext } from '../types.js';

/** The partitions of a batched task (planner: unit.partitions), or its one partition. */
export function taskPartitions(ctx: ExecContext): PartitionRef[] {
  const batch = (ctx.task.unit as { partitions?: PartitionRef[] } | undefined)?.partitions;
  if (Array.isArray(batch) && batch.length > 0) return batch;
  const part = ctx.task.partition;
  return part ? [part] : [];
}

/** A partition as errors name it: its HATS pixel and first file, or the plain input file. */
export const partitionWhere = (p: PartitionRef) => (p.order >= 0 ? `partition Norder=${p.order}/Npix=${p.pixel} (${p.files[0]})` : `input ${p.files[0]}`);

/**
 * sha256 of a task's input files for provenance, started now and awaited when
 * the task ends (checksums are shared with the host's other workers: files.ts
 * inputRecord). A file that is missing is `input_not_found`, naming it.
 */
export function hashInputsInBackground(paths: readonly string[]): Promise<FileRecord[]> {
  const hashing = Promise.all(paths.map((f) => inputRecord(f).catch((err: unknown) => {
    throw new InputError(`input not found: ${f}`, 'input_not_found', f, { cause: err });
  })));
  hashing.catch(() => undefined); // awaited (and its error raised) at the end of the task
  return hashing;
}
