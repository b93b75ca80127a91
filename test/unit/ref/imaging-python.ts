/** Helpers for imaging tests that compare against Debian's python (sep, photutils, numpy). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const SYSTEM_PYTHON = '/usr/bin/python3';
export const IMAGING_REF_DIR = dirname(fileURLToPath(import.meta.url));
export const BACKGROUND_SCRIPT = join(IMAGING_REF_DIR, 'imaging_background.py');

const cache = new Map<string, boolean>();

/** True when /usr/bin/python3 exists and imports every module. */
export function imagingPythonHas(...modules: string[]): boolean {
  const key = modules.join(',');
  const known = cache.get(key);
  if (known !== undefined) return known;
  let ok = existsSync(SYSTEM_PYTHON);
  if (ok) {
    const r = spawnSync(SYSTEM_PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { encoding: 'utf8', timeout: 60_000 });
    ok = r.status === 0;
  }
  cache.set(key, ok);
  return ok;
}

/** Why a python-backed test is skipped, for the test title. */
export function imagingPythonSkipReason(...modules: string[]): string {
  return imagingPythonHas(...modules) ? '' : ` [SKIPPED: ${SYSTEM_PYTHON} with ${modules.join(', ')} not available]`;
}

export interface ReferenceBackground {
  back: Float32Array;
  rms: Float32Array;
  seconds: number;
  globalback: number;
  globalrms: number;
}

/** Runs sep/photutils on a raw float32 image file via the reference script. */
export function runReferenceBackground(
  imagePath: string,
  width: number,
  height: number,
  outDir: string,
  methods: string[],
  opts: { box?: number; filter?: number; maskPath?: string; repeat?: number } = {},
): Map<string, ReferenceBackground> {
  const args = [BACKGROUND_SCRIPT, imagePath, String(width), String(height), outDir, '--box', String(opts.box ?? 64), '--filter', String(opts.filter ?? 3), '--methods', methods.join(',')];
  if (opts.maskPath !== undefined) args.push('--mask', opts.maskPath);
  if (opts.repeat !== undefined) args.push('--repeat', String(opts.repeat));
  const r = spawnSync(SYSTEM_PYTHON, args, { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`reference background failed (status ${r.status}): ${r.stderr}`);
  const out = new Map<string, ReferenceBackground>();
  for (const line of r.stdout.trim().split('\n')) {
    const j = JSON.parse(line) as { method: string; seconds: number; globalback: number; globalrms: number };
    out.set(j.method, { ...j, back: readF32(join(outDir, `${j.method}_back.f32`)), rms: readF32(join(outDir, `${j.method}_rms.f32`)) });
  }
  return out;
}

import { readFileSync } from 'node:fs';
export function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
