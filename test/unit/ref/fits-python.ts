/**
 * Helpers for tests that compare with astropy through Debian's /usr/bin/python3.
 * Shared by the fits-*, wcs-* and images-* tests.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
export const REF_DIR = dirname(fileURLToPath(import.meta.url));
export const ASTROPY_FITS_DATA = '/usr/lib/python3/dist-packages/astropy/io/fits/tests/data';
export const ASTROPY_WCS_DATA = '/usr/lib/python3/dist-packages/astropy/wcs/tests/data';

const cache = new Map<string, boolean>();

/** True when /usr/bin/python3 exists and can import every module named. */
export function pythonHas(...modules: string[]): boolean {
  const key = modules.join(',');
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let ok = existsSync(PYTHON);
  if (ok) {
    const r = spawnSync(PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore' });
    ok = r.status === 0;
  }
  cache.set(key, ok);
  return ok;
}

export const SKIP_ASTROPY_MSG = `skipped: ${PYTHON} with astropy + numpy is not available`;

/** Run a reference script under test/unit/ref; returns stdout. Throws with stderr on failure. */
export function runRef(script: string, args: string[], input?: string): string {
  return execFileSync(PYTHON, [join(REF_DIR, script), ...args], {
    encoding: 'utf8',
    input,
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export type RefValue = string | number | boolean | null | { bigint: string } | { complex: [number, number] } | { repr: string };

export interface RefHdu {
  index: number;
  kind: string;
  name: string;
  error: string | null;
  dtype: string | null;
  cards: [string, RefValue, string][];
  bitpix: number;
  shape: number[];
}

export interface RefManifest {
  hdus: RefHdu[];
  error: string | null;
}

export function readManifest(dir: string): RefManifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as RefManifest;
}

/** Typed array of an astropy-dumped HDU (little-endian raw bytes). */
export function readRefArray(dir: string, hdu: RefHdu): ArrayBufferView & { length: number } {
  const buf = readFileSync(join(dir, `hdu${hdu.index}.bin`));
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  switch (hdu.dtype) {
    case 'uint8': return new Uint8Array(ab);
    case 'int8': return new Int8Array(ab);
    case 'int16': return new Int16Array(ab);
    case 'uint16': return new Uint16Array(ab);
    case 'int32': return new Int32Array(ab);
    case 'uint32': return new Uint32Array(ab);
    case 'int64': return new BigInt64Array(ab);
    case 'uint64': return new BigUint64Array(ab);
    case 'float32': return new Float32Array(ab);
    case 'float64': return new Float64Array(ab);
    default: throw new Error(`unexpected dtype ${String(hdu.dtype)}`);
  }
}

/** Name of the typed array class our reader should return for a numpy dtype. */
export const DTYPE_TO_CLASS: Record<string, string> = {
  uint8: 'Uint8Array',
  int8: 'Int8Array',
  int16: 'Int16Array',
  uint16: 'Uint16Array',
  int32: 'Int32Array',
  uint32: 'Uint32Array',
  int64: 'BigInt64Array',
  uint64: 'BigUint64Array',
  float32: 'Float32Array',
  float64: 'Float64Array',
};

/** Index of the first element that differs (NaN equals NaN, bit-exact otherwise), or -1. */
export function firstDifference(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number' && Number.isNaN(x) && Number.isNaN(y)) continue;
    return i;
  }
  return -1;
}

/** Does one of our header values equal astropy's? Returns a reason when not. */
export function valueMismatch(ours: unknown, ref: RefValue): string | null {
  if (ref !== null && typeof ref === 'object') {
    if ('bigint' in ref) return typeof ours === 'bigint' && ours === BigInt(ref.bigint) ? null : `expected bigint ${ref.bigint}, got ${String(ours)}`;
    // complex / unparseable values: we keep their text; nothing to compare numerically
    return typeof ours === 'string' ? null : `expected text for ${JSON.stringify(ref)}, got ${String(ours)}`;
  }
  if (typeof ref === 'number') {
    if (typeof ours === 'number' && (ours === ref || (Number.isNaN(ours) && Number.isNaN(ref)))) return null;
    if (typeof ours === 'bigint' && Number(ours) === ref) return null;
    return `expected ${ref}, got ${String(ours)}`;
  }
  return ours === ref ? null : `expected ${JSON.stringify(ref)}, got ${JSON.stringify(ours)}`;
}

export interface CardLike {
  key: string;
  value?: unknown;
  comment?: string;
}

/** Compare card lists (order, keys, values, comments); returns the differences found. */
export function headerDifferences(ours: CardLike[], ref: [string, RefValue, string][], opts: { comments?: boolean } = {}): string[] {
  const diffs: string[] = [];
  if (ours.length !== ref.length) diffs.push(`card count ${ours.length} vs astropy ${ref.length}`);
  const n = Math.min(ours.length, ref.length);
  for (let i = 0; i < n; i++) {
    const o = ours[i] as CardLike;
    const [k, v, c] = ref[i] as [string, RefValue, string];
    if (o.key !== k) {
      // astropy's record-valued keywords: DP1 = 'AXIS.1: 1' appears as DP1.AXIS.1 = 1.0
      const dot = k.indexOf('.');
      if (dot > 0 && o.key === k.slice(0, dot) && typeof o.value === 'string') {
        const m = /^\s*([^:]+):\s*(.*)$/.exec(o.value);
        if (m !== null && m[1]?.trim().toUpperCase() === k.slice(dot + 1) && Number(m[2]) === v) continue;
      }
      diffs.push(`card ${i}: key ${o.key} vs astropy ${k}`);
      continue;
    }
    const vm = valueMismatch(o.value ?? null, v);
    if (vm !== null) diffs.push(`card ${i} ${k}: ${vm}`);
    if (opts.comments !== false && (o.comment ?? '') !== c && !(k === 'COMMENT' || k === 'HISTORY' || k === '')) {
      diffs.push(`card ${i} ${k}: comment ${JSON.stringify(o.comment ?? '')} vs astropy ${JSON.stringify(c)}`);
    }
  }
  return diffs;
}
