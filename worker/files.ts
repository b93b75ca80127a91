import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import type { FileRecord } from '../protocol/index.js';

interface Version {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}
const versionOf = (st: Stats): Version => ({ dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
const sameVersion = (a: Version, b: Version) => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

const hashCache = new Map<string, Version & { sha256: string }>();

/**
 * Checksums are also kept on disk, one small file per input, so the workers of
 * a host (and a restarted worker) share them: without it each worker process
 * hashes every catalog file it reads once more (sha256 of 1 GB is ≈ 4 s of CPU
 * here, far more than a light query over the same files), and which worker
 * gets which task changes from job to job. An entry is used only when the
 * file's device, inode, size, mtime and ctime are the ones it was hashed at
 * (ctime cannot be set back by a user), and only from a directory owned by
 * this user that nobody else can write to. Small files are hashed again
 * instead (cheap). Only inputs use it (`inputRecord`): outputs are new files,
 * renamed into place after hashing, and would only leave dead entries.
 * UBATCH_HASH_CACHE_DIR sets the place (default ~/.cache/ubatch/sha256);
 * UBATCH_HASH_CACHE_DIR=off keeps checksums in memory only.
 */
const DISK_CACHE_MIN_BYTES = 1 << 20;
let diskDir: Promise<string | undefined> | undefined;

function diskCacheDir(): Promise<string | undefined> {
  if (!diskDir) {
    diskDir = (async () => {
      const env = process.env.UBATCH_HASH_CACHE_DIR;
      if (env === 'off' || env === '0') return undefined;
      const dir = env || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ubatch', 'sha256');
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const st = await lstat(dir);
        const uid = process.getuid?.();
        if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) return undefined;
        return dir;
      } catch {
        return undefined;
      }
    })();
  }
  return diskDir;
}

const entryName = (path: string) => createHash('sha256').update(path).digest('hex').slice(0, 40);

async function diskGet(path: string, v: Version): Promise<string | undefined> {
  const dir = await diskCacheDir();
  if (!dir) return undefined;
  try {
    const e = JSON.parse(await readFile(join(dir, entryName(path)), 'utf8')) as Version & { path: string; sha256: string };
    return e.path === path && sameVersion(e, v) && /^[0-9a-f]{64}$/.test(e.sha256) ? e.sha256 : undefined;
  } catch {
    return undefined;
  }
}

async function diskPut(path: string, v: Version, sha256: string): Promise<void> {
  const dir = await diskCacheDir();
  if (!dir) return;
  const name = join(dir, entryName(path));
  const tmp = `${name}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(tmp, JSON.stringify({ path, ...v, sha256 }), { mode: 0o600 });
    await rename(tmp, name);
  } catch {
    /* a cache: a failed write only costs a later re-hash */
  }
}

/** sha256 of a file, cached by (path, device, inode, size, mtime, ctime) in memory and, with `shared` for files of 1 MB or more, on disk. */
export async function sha256File(path: string, opts: { shared?: boolean } = {}): Promise<{ sha256: string; bytes: number }> {
  const st = await stat(path);
  const v = versionOf(st);
  const hit = hashCache.get(path);
  if (hit && sameVersion(hit, v)) return { sha256: hit.sha256, bytes: st.size };
  const useDisk = opts.shared === true && st.size >= DISK_CACHE_MIN_BYTES;
  const onDisk = useDisk ? await diskGet(path, v) : undefined;
  const sha256 = onDisk ?? (await hashFile(path, st.size));
  if (hashCache.size > 100_000) hashCache.clear();
  hashCache.set(path, { ...v, sha256 });
  if (!onDisk && useDisk) {
    // the file may have changed while it was read: keep the entry only when its version did not move
    const after = await stat(path).catch(() => undefined);
    if (after && sameVersion(versionOf(after), v)) await diskPut(path, v, sha256);
    else hashCache.delete(path);
  }
  return { sha256, bytes: st.size };
}

/** below this a file is read and hashed in one synchronous step: a stream costs several thread-pool round trips, which queue behind DuckDB's work */
const SMALL_FILE_BYTES = 1 << 20;

function hashFile(path: string, size: number): Promise<string> {
  if (size < SMALL_FILE_BYTES) {
    try {
      return Promise.resolve(createHash('sha256').update(readFileSync(path)).digest('hex'));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  const h = createHash('sha256');
  return new Promise<string>((resolve, reject) => {
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

export async function fileRecord(path: string, rows?: number): Promise<FileRecord> {
  const { sha256, bytes } = await sha256File(path);
  return { path, bytes, sha256, ...(rows !== undefined ? { rows } : {}) };
}

/** fileRecord for a task's input: its checksum is shared with the host's other workers (see the note on the disk cache above) */
export async function inputRecord(path: string): Promise<FileRecord> {
  const { sha256, bytes } = await sha256File(path, { shared: true });
  return { path, bytes, sha256 };
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
