import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileRecord } from '../protocol/index.js';

const hashCache = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

/** sha256 of a file, cached by (path, size, mtime) so repeated reads of a catalog are not re-hashed. */
export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const st = await stat(path);
  const hit = hashCache.get(path);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return { sha256: hit.sha256, bytes: st.size };
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve());
  });
  const sha256 = h.digest('hex');
  if (hashCache.size > 100_000) hashCache.clear();
  hashCache.set(path, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
  return { sha256, bytes: st.size };
}

export async function fileRecord(path: string, rows?: number): Promise<FileRecord> {
  const { sha256, bytes } = await sha256File(path);
  return { path, bytes, sha256, ...(rows !== undefined ? { rows } : {}) };
}

export async function listFilesRecursive(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}
