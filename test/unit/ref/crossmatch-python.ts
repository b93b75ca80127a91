/** Helpers for tests and benchmarks that compare against Debian's /usr/bin/python3 (astropy). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const SYSTEM_PYTHON = '/usr/bin/python3';

/** True when /usr/bin/python3 exists and can import every module named. */
export function pythonHasModules(...modules: string[]): boolean {
  if (!existsSync(SYSTEM_PYTHON)) return false;
  const r = spawnSync(SYSTEM_PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}
