/**
 * Input checksums shared on disk by the workers of a host (worker/files.ts):
 * a second worker process reuses an entry only while the file's version
 * (device, inode, size, mtime, ctime) is unchanged, only from a directory
 * nobody else can write to, and outputs stay in memory.
 */
import { createHash } from 'node:crypto';
import { appendFile, chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

type FilesModule = typeof import('../../worker/files.js');
/** a fresh copy of the module: a new worker process's empty in-memory cache */
const freshFiles = async (): Promise<FilesModule> => {
  vi.resetModules();
  return import('../../worker/files.js');
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('shared input checksums', () => {
  let dir: string;
  let cacheDir: string;
  const saved = process.env.UBATCH_HASH_CACHE_DIR;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ubatch-files-'));
    cacheDir = join(dir, 'cache');
    process.env.UBATCH_HASH_CACHE_DIR = cacheDir;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.UBATCH_HASH_CACHE_DIR;
    else process.env.UBATCH_HASH_CACHE_DIR = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it('a second process reuses an input checksum while the file is unchanged, and re-hashes it once it changes', async () => {
    const f = join(dir, 'leaf.parquet');
    const data = Buffer.alloc(3 << 20, 1);
    await writeFile(f, data);
    const a = await freshFiles();
    const rec = await a.inputRecord(f);
    expect(rec).toEqual({ path: f, bytes: data.length, sha256: sha(data) });
    const [entry] = await readdir(cacheDir);
    expect(entry).toBeDefined();
    // prove the next process reads the entry: give it a recognisable (wrong) checksum for the same version
    const e = JSON.parse(await readFile(join(cacheDir, entry!), 'utf8'));
    await writeFile(join(cacheDir, entry!), JSON.stringify({ ...e, sha256: 'f'.repeat(64) }));
    const b = await freshFiles();
    expect((await b.inputRecord(f)).sha256).toBe('f'.repeat(64));
    // the file changes (new size, mtime and ctime): the entry no longer applies
    await appendFile(f, 'more');
    const c = await freshFiles();
    expect((await c.inputRecord(f)).sha256).toBe(sha(Buffer.concat([data, Buffer.from('more')])));
  });

  it('hashes files below, at and above the 1 MB one-step read size like sha256sum', async () => {
    const { execFileSync } = await import('node:child_process');
    const files = await freshFiles();
    for (const size of [0, 1, 4097, (1 << 20) - 1, 1 << 20, (3 << 20) + 5]) {
      const path = join(dir, `size-${size}.bin`);
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (i * 2654435761) >>> 24;
      await writeFile(path, data);
      const r = await files.fileRecord(path);
      expect(r.bytes).toBe(size);
      expect(r.sha256).toBe(execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]);
    }
    await expect(files.fileRecord(join(dir, 'absent.bin'))).rejects.toThrow(/ENOENT/);
  });

  it('outputs and small files are not written to the shared cache', async () => {
    const before = (await readdir(cacheDir)).length;
    const big = join(dir, 'out.parquet');
    await writeFile(big, Buffer.alloc(2 << 20, 2));
    const small = join(dir, 'small.parquet');
    await writeFile(small, 'tiny');
    const m = await freshFiles();
    await m.fileRecord(big, 10);
    await m.inputRecord(small);
    expect((await readdir(cacheDir)).length).toBe(before);
  });

  it('a cache directory others can write to is not used', async () => {
    const open = join(dir, 'open');
    process.env.UBATCH_HASH_CACHE_DIR = open;
    try {
      const m = await freshFiles();
      const f = join(dir, 'leaf2.parquet');
      await writeFile(f, Buffer.alloc(2 << 20, 3));
      await m.inputRecord(f); // creates the directory 0700 and uses it
      expect((await readdir(open)).length).toBe(1);
      await chmod(open, 0o777);
      const n = await freshFiles();
      const g = join(dir, 'leaf3.parquet');
      await writeFile(g, Buffer.alloc(2 << 20, 4));
      expect((await n.inputRecord(g)).sha256).toBe(sha(Buffer.alloc(2 << 20, 4)));
      expect((await readdir(open)).length).toBe(1);
    } finally {
      process.env.UBATCH_HASH_CACHE_DIR = cacheDir;
    }
  });
});
