/**
 * Shared helpers for the hats-* and survey-* tests: where the real HATS test
 * catalogs are, which directories in it are catalogs, and whether Debian's
 * python has a module we compare against.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const HATS_DATA = '/work/shared/data/hats-test-catalogs';
export const hasHatsData = existsSync(join(HATS_DATA, 'hats/tests/data')) && existsSync(join(HATS_DATA, 'lsdb/tests/data'));
export const HATS_DATA_SKIP = `skipped when ${HATS_DATA} is absent`;

export const PYTHON = '/usr/bin/python3';

const moduleCache = new Map<string, boolean>();
/** True when /usr/bin/python3 exists and has the module `mod` installed. */
export function pythonHas(mod: string): boolean {
  let ok = moduleCache.get(mod);
  if (ok === undefined) {
    // find_spec locates the package without importing it (importing healpy costs seconds)
    const code = `import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(${JSON.stringify(mod)}) else 1)`;
    ok = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', code], { stdio: 'ignore' }).status === 0;
    moduleCache.set(mod, ok);
  }
  return ok;
}

/** Run a python snippet with Debian's python; returns stdout, throws with stderr on failure. */
export function runPython(code: string, args: string[] = []): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Every directory under the two test-data trees holding (collection.)properties. */
export async function listHatsDirs(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    const names = new Set(entries.map((e) => e.name));
    if (names.has('properties') || names.has('hats.properties') || names.has('collection.properties')) out.push(dir);
    for (const e of entries) {
      if (e.isDirectory() && e.name !== 'dataset') await walk(join(dir, e.name));
    }
  };
  await walk(join(HATS_DATA, 'hats/tests/data'));
  await walk(join(HATS_DATA, 'lsdb/tests/data'));
  return out.sort();
}
