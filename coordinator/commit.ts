/**
 * Output commit: the first accepted attempt's files are renamed from its
 * private attempt directory into their final place. A re-fold after a
 * coordinator crash finds the files already moved and accepts that.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FileRecord } from '../protocol/index.js';
import { CommitError } from './errors.js';

export async function commitOutputs(taskId: string, attemptDirPath: string, outputs: FileRecord[], rel: string[]): Promise<void> {
  for (const [i, o] of outputs.entries()) {
    const from = `${attemptDirPath}/${rel[i] ?? ''}`;
    const src = await stat(from).catch(() => undefined);
    if (!src) {
      const dst = await stat(o.path).catch(() => undefined);
      if (dst && dst.size === o.bytes) continue; // committed before a restart
      throw new CommitError(`output ${from} of task ${taskId} is missing`, taskId, from);
    }
    await mkdir(dirname(o.path), { recursive: true });
    try {
      await rename(from, o.path);
    } catch (err) {
      throw new CommitError(`cannot move ${from} to ${o.path}: ${(err as Error).message}`, taskId, o.path, { cause: err });
    }
  }
  await rm(attemptDirPath, { recursive: true, force: true });
}

export async function discardAttempt(attemptDirPath: string | undefined): Promise<void> {
  if (attemptDirPath) await rm(attemptDirPath, { recursive: true, force: true }).catch(() => undefined);
}
