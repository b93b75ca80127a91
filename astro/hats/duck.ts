/**
 * One lazily created in-process DuckDB database shared by every kernel of the
 * worker process. Each `withDuck` call gets its own connection (cheap), so
 * concurrent callers do not share transaction state. JS scalar functions are
 * registered database-wide; `ensureScalarFunction` registers each name once.
 */
import { HatsError } from './errors.js';
import { DuckDBInstance, type DuckDBConnection, type DuckDBScalarFunction } from '@duckdb/node-api';

let instance: Promise<DuckDBInstance> | undefined;
let threads: number | undefined;
const registered = new Set<string>();

/**
 * How many threads the shared instance runs queries with (default: DuckDB's, one per core). Applies
 * to an instance already made too. With 1 there are no scheduler threads: each query runs on the
 * thread that asked for it, so concurrent callers still run in parallel.
 */
export async function setSharedDuckThreads(n: number): Promise<void> {
  threads = Math.max(1, Math.round(n));
  if (!instance) return;
  const conn = await (await instance).connect();
  try {
    await conn.run(`SET threads = ${threads}`);
  } finally {
    conn.closeSync();
  }
}

/** The shared in-memory DuckDB instance (created on first use). */
export function duckInstance(): Promise<DuckDBInstance> {
  instance ??= DuckDBInstance.create(':memory:', threads !== undefined ? { threads: String(threads) } : undefined).catch((err: unknown) => {
    instance = undefined; // let a later call retry
    throw err;
  });
  return instance;
}

/** Run `fn` with a fresh connection to the shared database; the connection is closed afterwards. */
export async function withDuck<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  const db = await duckInstance();
  const conn = await db.connect();
  try {
    return await fn(conn);
  } finally {
    conn.closeSync();
  }
}

/** Register a JS scalar function once for the whole database. */
export function ensureScalarFunction(conn: DuckDBConnection, name: string, make: () => DuckDBScalarFunction): void {
  if (registered.has(name)) return;
  conn.registerScalarFunction(make());
  registered.add(name);
}

/** Quote a string as a SQL literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Quote an identifier (column or table name). */
export function sqlIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

/**
 * `read_parquet([...])` over the given files. union_by_name tolerates column
 * order drift between leaves; hive_partitioning is off so the Norder=/Dir=/Npix=
 * path segments do not turn into extra columns.
 */
export function readParquetSql(files: readonly string[], opts: { filename?: boolean } = {}): string {
  const list = files.map(sqlString).join(', ');
  const extra = opts.filename ? ', filename = true' : '';
  return `read_parquet([${list}], union_by_name = true, hive_partitioning = false${extra})`;
}

/**
 * SQL table expression exposing one partition's rows, e.g.
 * `CREATE VIEW partition AS SELECT * FROM ${partitionViewSql(p)}`.
 * Throws when the partition has no leaf files (info-only catalogs).
 */
export function partitionViewSql(p: { order: number; pixel: number; files: readonly string[] }): string {
  if (p.files.length === 0) {
    throw new HatsError(`partition Norder=${p.order} Npix=${p.pixel} has no leaf files to read`, '');
  }
  return readParquetSql(p.files);
}
