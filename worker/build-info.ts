import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { version: string; gitCommit: string } | undefined;

/** ubatch version and git commit, recorded in every task's provenance. */
export function buildInfo(): { version: string; gitCommit: string } {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  let version = 'unknown';
  for (const up of ['..', '../..']) {
    try {
      version = (JSON.parse(readFileSync(join(here, up, 'package.json'), 'utf8')) as { version: string }).version;
      break;
    } catch {
      /* try the next level: sources run from repo/worker, builds from repo/dist/worker */
    }
  }
  let gitCommit = process.env.UBATCH_GIT_COMMIT ?? '';
  if (!gitCommit) {
    try {
      gitCommit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: here, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: here, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
      if (dirty) gitCommit += '-dirty';
    } catch {
      gitCommit = 'unknown';
    }
  }
  cached = { version, gitCommit };
  return cached;
}
