import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Debian's python with astropy/numpy/scipy (NOT the pyenv python on PATH). */
export const REFERENCE_PYTHON = '/usr/bin/python3';
export const REFERENCE_SCRIPT = fileURLToPath(new URL('./lombscargle_ref.py', import.meta.url));

const availability = new Map<string, boolean>();

/**
 * True when /usr/bin/python3 exists and has every top-level module named
 * (found, not imported: importing astropy costs a second of CPU per check).
 */
export function pythonHasModules(...modules: string[]): boolean {
  const key = modules.join(',');
  const known = availability.get(key);
  if (known !== undefined) return known;
  let ok = existsSync(REFERENCE_PYTHON);
  if (ok) {
    const check = `import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in ${JSON.stringify(modules)}) else 1)`;
    const r = spawnSync(REFERENCE_PYTHON, ['-c', check], { encoding: 'utf8' });
    ok = r.status === 0;
  }
  availability.set(key, ok);
  return ok;
}

export const ASTROPY_AVAILABLE = pythonHasModules('numpy', 'scipy', 'astropy');
export const ASTROPY_SKIP_REASON = `skipped: ${REFERENCE_PYTHON} with numpy, scipy and astropy is not available`;

/** A scratch directory exchanging little-endian Float64 files with the reference script. */
export class ReferenceExchange {
  readonly dir = mkdtempSync(join(tmpdir(), 'lombscargle-ref-'));
  private counter = 0;
  readonly cases: Record<string, unknown>[] = [];

  /** Write an array, return its file name inside the exchange directory. */
  writeArray(values: Float64Array): string {
    const name = `a${this.counter++}.f64`;
    writeFileSync(join(this.dir, name), Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    return name;
  }

  readArray(name: string): Float64Array {
    const buf = readFileSync(join(this.dir, name));
    const out = new Float64Array(buf.byteLength / 8);
    for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(i * 8);
    return out;
  }

  /** Run the reference script on every case added; returns results.json's `results`. */
  run(timeoutMs = 120_000): Record<string, Record<string, unknown>> {
    writeFileSync(join(this.dir, 'manifest.json'), JSON.stringify({ cases: this.cases }));
    const r = spawnSync(REFERENCE_PYTHON, [REFERENCE_SCRIPT, this.dir], { encoding: 'utf8', timeout: timeoutMs });
    if (r.status !== 0) {
      throw new Error(`reference script failed (status ${r.status}): ${r.stderr || String(r.error)}`);
    }
    const parsed: unknown = JSON.parse(readFileSync(join(this.dir, 'results.json'), 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || !('results' in parsed)) {
      throw new Error('reference script wrote no results');
    }
    return (parsed as { results: Record<string, Record<string, unknown>> }).results;
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
