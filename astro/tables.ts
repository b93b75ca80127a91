/** DuckDB SQL fragments for reading plain tables (Parquet or CSV) — shared by planners and executors. */
import { extname } from 'node:path';
import { BIGINT, DOUBLE, DuckDBDataChunk, FLOAT, INTEGER, LIST, listValue, VARCHAR, type DuckDBAppender, type DuckDBType } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { sqlString } from './hats/duck.js';

export { sqlString };

export function isCsvPath(f: string): boolean {
  const l = f.toLowerCase();
  return ['.csv', '.tsv'].includes(extname(l)) || l.endsWith('.csv.gz');
}

/** Table function reading one partition's files: read_csv for .csv inputs, read_parquet otherwise. */
export function readFilesSql(files: readonly string[]): string {
  const list = `[${files.map(sqlString).join(', ')}]`;
  // union_by_name costs a schema pass over every file: only needed when several files may differ
  const union = files.length > 1 ? ', union_by_name = true' : '';
  return files.every(isCsvPath) ? `read_csv(${list}, auto_detect = true, header = true${union})` : `read_parquet(${list}${union})`;
}

// ---------------------------------------------------------------- columnar reads

/**
 * How {@link readColumns} returns a column:
 * - 'f64': Float64Array (NULL → NaN); the query should CAST to DOUBLE
 * - 'i64': BigInt64Array (NULL → 0n, see `valid`); the query should CAST to BIGINT
 * - 'str': (string | null)[]
 * - 'any': the values as DuckDB's vectors give them (number, bigint, string, null, ...)
 */
export type ColumnKind = 'f64' | 'i64' | 'str' | 'any';

type ColumnOf<K extends ColumnKind> = K extends 'f64' ? Float64Array : K extends 'i64' ? BigInt64Array : K extends 'str' ? (string | null)[] : unknown[];

export interface TypedColumns<K extends readonly ColumnKind[]> {
  rows: number;
  columns: { [I in keyof K]: ColumnOf<K[I]> };
  /** per 'i64' column (others: undefined), 1 where the value is not NULL; undefined when none is NULL */
  valid: (Uint8Array | undefined)[];
}

/**
 * Where {@link readColumns} puts an 'f64' or 'i64' column of `n` rows (column index `column`):
 * an array of exactly that type and length (e.g. a view of reused memory), or undefined for a new one.
 */
export type ColumnAlloc = (kind: 'f64' | 'i64', n: number, column: number) => Float64Array | BigInt64Array | undefined;

/** The minimal shape of a DuckDB connection this needs (keeps astro/tables free of a hard type import). */
interface ChunkedResult {
  readonly rowCount: number;
  readonly chunkCount: number;
  getChunk(i: number): { readonly rowCount: number; getColumnVector(c: number): unknown };
}
interface RunsSql {
  run(sql: string): Promise<unknown>;
}

interface VectorInternals {
  items?: unknown;
  validity?: { data?: unknown };
  getItem(i: number): unknown;
}

/**
 * Runs `sql` and reads its result column by column into typed arrays, chunk
 * by chunk: a DOUBLE/BIGINT vector with no NULLs is copied whole (one memcpy
 * from DuckDB's vector memory); otherwise its values are read one by one
 * through the vector (NULL → NaN / 0n). No per-row objects, no per-value
 * conversion through JS value converters. `kinds[i]` says how column i is
 * returned; the query must produce exactly that many columns. `alloc` may
 * supply the typed output arrays (every element is written).
 */
export async function readColumns<const K extends readonly ColumnKind[]>(conn: RunsSql, sql: string, kinds: K, alloc?: ColumnAlloc): Promise<TypedColumns<K>> {
  const res = (await conn.run(sql)) as ChunkedResult;
  const n = res.rowCount;
  const cols: unknown[] = kinds.map((k, j) => {
    const given = k === 'f64' || k === 'i64' ? alloc?.(k, n, j) : undefined;
    if (given !== undefined) {
      if (given.length !== n || (k === 'f64' ? !(given instanceof Float64Array) : !(given instanceof BigInt64Array))) throw new TypeError(`readColumns: alloc gave a ${given.constructor.name} of ${given.length} for a ${k} column of ${n} rows`);
      return given;
    }
    return k === 'f64' ? new Float64Array(n) : k === 'i64' ? new BigInt64Array(n) : new Array<unknown>(n);
  });
  const valid: (Uint8Array | undefined)[] = kinds.map(() => undefined);
  let off = 0;
  for (let c = 0; c < res.chunkCount; c++) {
    const chunk = res.getChunk(c);
    const m = chunk.rowCount;
    for (let j = 0; j < kinds.length; j++) {
      const v = chunk.getColumnVector(j) as VectorInternals;
      const kind = kinds[j]!;
      const allValid = v.validity !== undefined && (v.validity.data === null || v.validity.data === undefined);
      if (kind === 'f64') {
        const out = cols[j] as Float64Array;
        if (allValid && v.items instanceof Float64Array && v.items.length === m) out.set(v.items, off);
        else {
          for (let i = 0; i < m; i++) {
            const x = v.getItem(i);
            out[off + i] = typeof x === 'number' ? x : x === null || x === undefined ? Number.NaN : Number(x);
          }
        }
      } else if (kind === 'i64') {
        const out = cols[j] as BigInt64Array;
        if (allValid && v.items instanceof BigInt64Array && v.items.length === m) out.set(v.items, off);
        else {
          for (let i = 0; i < m; i++) {
            const x = v.getItem(i);
            if (x === null || x === undefined) {
              let mask = valid[j];
              if (!mask) valid[j] = mask = new Uint8Array(n).fill(1);
              mask[off + i] = 0;
              out[off + i] = 0n;
            } else out[off + i] = typeof x === 'bigint' ? x : BigInt(x as number);
          }
        }
      } else {
        const out = cols[j] as unknown[];
        for (let i = 0; i < m; i++) {
          const x = v.getItem(i);
          out[off + i] = kind === 'str' && x !== null && x !== undefined && typeof x !== 'string' ? String(x) : x ?? null;
        }
      }
    }
    off += m;
  }
  return { rows: n, columns: cols as TypedColumns<K>['columns'], valid };
}

// ---------------------------------------------------------------- columnar appends

/** One column for {@link appendColumns}: typed data, NULL where `valid[i] === 0` (f64: also where NaN when `nanIsNull`). */
export type AppendColumn =
  | { type: 'f64'; data: Float64Array; nanIsNull?: boolean }
  | { type: 'i64'; data: BigInt64Array; valid?: Uint8Array | undefined }
  | { type: 'i32'; data: Int32Array }
  | { type: 'str'; data: readonly (string | null)[] }
  | { type: 'f64[]'; data: readonly (readonly number[] | null)[] }
  | { type: 'f32[]'; data: readonly (Float32Array | null)[] };

interface SettableVector {
  items?: unknown;
  setItem(i: number, v: unknown): void;
  flush(): void;
}

function logicalType(t: AppendColumn['type']): DuckDBType {
  switch (t) {
    case 'f64':
      return DOUBLE;
    case 'i64':
      return BIGINT;
    case 'i32':
      return INTEGER;
    case 'str':
      return VARCHAR;
    case 'f64[]':
      return LIST(DOUBLE);
    case 'f32[]':
      return LIST(FLOAT);
  }
}

/**
 * Appends whole columns to `appender` a data chunk (2048 rows) at a time: numeric
 * columns without NULLs are copied into the chunk's vector memory in one go, the
 * others value by value; one native append per chunk instead of one per value.
 * All columns must have the same length; their order must be the table's.
 */
export function appendColumns(appender: DuckDBAppender, columns: readonly AppendColumn[]): number {
  const n = columns[0]?.data.length ?? 0;
  const types = columns.map((c) => logicalType(c.type));
  const size = 2048;
  for (let off = 0; off < n; off += size) {
    const m = Math.min(size, n - off);
    const chunk = DuckDBDataChunk.create(types, m);
    columns.forEach((c, j) => {
      const v = chunk.getColumnVector(j) as unknown as SettableVector;
      if (c.type === 'f64') {
        const src = c.data.subarray(off, off + m);
        let nulls = false;
        if (c.nanIsNull) for (let i = 0; i < m && !nulls; i++) nulls = Number.isNaN(src[i]!);
        if (!nulls && v.items instanceof Float64Array && v.items.length === m) v.items.set(src);
        else for (let i = 0; i < m; i++) v.setItem(i, c.nanIsNull && Number.isNaN(src[i]!) ? null : src[i]!);
      } else if (c.type === 'i64') {
        const src = c.data.subarray(off, off + m);
        if (!c.valid && v.items instanceof BigInt64Array && v.items.length === m) v.items.set(src);
        else for (let i = 0; i < m; i++) v.setItem(i, c.valid && !c.valid[off + i] ? null : src[i]!);
      } else if (c.type === 'i32') {
        const src = c.data.subarray(off, off + m);
        if (v.items instanceof Int32Array && v.items.length === m) v.items.set(src);
        else for (let i = 0; i < m; i++) v.setItem(i, src[i]!);
      } else if (c.type === 'str') {
        for (let i = 0; i < m; i++) v.setItem(i, c.data[off + i] ?? null);
      } else if (c.type === 'f64[]') {
        for (let i = 0; i < m; i++) {
          const x = c.data[off + i];
          v.setItem(i, x ? listValue(x) : null);
        }
      } else {
        if (fillFloatLists(v as unknown as ListVectorInternals, c.data, off, m)) return;
        for (let i = 0; i < m; i++) {
          const x = c.data[off + i];
          v.setItem(i, x ? listValue(Array.from(x)) : null);
        }
      }
      v.flush();
    });
    appender.appendDataChunk(chunk);
  }
  return n;
}

interface ListVectorInternals {
  vector?: unknown;
  entryData?: unknown;
}

/**
 * LIST(FLOAT) rows written straight into the list vector: entries (offset, length), then
 * the child vector sized once and filled with one memcpy per row, as DuckDBListVector.flush
 * does but without a JS value per element (a periodogram row is 10^4-10^5 floats). Returns
 * false (caller falls back to setItem) when the vector is not laid out as expected or a row is NULL.
 */
function fillFloatLists(v: ListVectorInternals, rows: readonly (Float32Array | null)[], off: number, m: number): boolean {
  const entries = v.entryData;
  if (!(entries instanceof BigUint64Array) || entries.length < 2 * m || v.vector === undefined) return false;
  let total = 0;
  for (let i = 0; i < m; i++) {
    const r = rows[off + i];
    if (!r) return false;
    total += r.length;
  }
  const all = new Float32Array(total);
  let o = 0;
  for (let i = 0; i < m; i++) {
    const r = rows[off + i]!;
    entries[2 * i] = BigInt(o);
    entries[2 * i + 1] = BigInt(r.length);
    all.set(r, o);
    o += r.length;
  }
  const vec = v.vector as duckdb.Vector;
  duckdb.list_vector_reserve(vec, total);
  duckdb.list_vector_set_size(vec, total);
  const child = duckdb.list_vector_get_child(vec);
  duckdb.copy_data_to_vector(child, 0, all.buffer as ArrayBuffer, all.byteOffset, all.byteLength);
  duckdb.copy_data_to_vector(vec, 0, entries.buffer as ArrayBuffer, entries.byteOffset, 16 * m);
  return true;
}
