/**
 * Helpers for the HEALPix tests that compare against Debian's healpy
 * (/usr/bin/python3, not the pyenv python on PATH). Bulk data goes through raw
 * float64/int64 files in a temp dir.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 as makeRng } from '../../../astro/random.js';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./healpix_ref.py', import.meta.url));

let cached: string | undefined;

/** Why healpy cannot be used, or '' when it can. */
export function healpyUnavailableReason(): string {
  if (cached !== undefined) return cached;
  // Cheap check (no numpy/healpy import): a broken install still fails loudly in run().
  const probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('healpy') and u.find_spec('numpy') else 3)";
  const r = spawnSync(PYTHON, ['-c', probe], { encoding: 'utf8' });
  if (r.error) cached = `${PYTHON} not runnable (${r.error.message})`;
  else if (r.status !== 0) cached = `healpy/numpy not installed for ${PYTHON}`;
  else cached = '';
  if (cached !== '') console.warn(`[healpix tests] skipping healpy comparisons: ${cached}`);
  return cached;
}

export class RefDir {
  readonly path = mkdtempSync(join(tmpdir(), 'healpix-ref-'));

  writeF64(name: string, values: ArrayLike<number>): void {
    writeFileSync(join(this.path, name), new Uint8Array(Float64Array.from(values).buffer));
  }
  writeI64(name: string, values: readonly (number | bigint)[]): void {
    const a = BigInt64Array.from(values, (v) => BigInt(v));
    writeFileSync(join(this.path, name), new Uint8Array(a.buffer));
  }
  readF64(name: string): Float64Array {
    const b = readFileSync(join(this.path, name));
    return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  }
  readI64(name: string): BigInt64Array {
    const b = readFileSync(join(this.path, name));
    return new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  }
  /** Runs healpix_ref.py commands (comma-separated, one interpreter); throws with python's stderr on failure. */
  run(command: string): void {
    const r = spawnSync(PYTHON, [SCRIPT, command, this.path], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`healpix_ref.py ${command} failed (${String(r.status)}): ${r.stderr}`);
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
export { makeRng };
