/**
 * `catalog.sql`: a DuckDB query per catalog partition (exposed as the table
 * `partition`), with an optional reduce query over the concatenated partial
 * results (the table `partials`).
 *
 * User SQL runs in a fresh in-memory DuckDB per attempt with file access
 * limited to the attempt's inputs and its private output directory
 * (enable_external_access=false + allowed_directories, configuration locked),
 * so a query cannot read /etc/passwd or another user's outputs.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { tables } from '../../astro/index.js';
const { readFilesSql, sqlString } = tables;
import { InputError, TaskCancelledError } from '../errors.js';
import { fileRecord } from '../files.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';

export interface CatalogSqlParams {
  map: string;
  reduce?: string;
}

async function openSandboxedDuck(readDirs: string[], writeDir: string, threads: number) {
  const inst = await DuckDBInstance.create(':memory:', { threads: String(Math.max(1, Math.round(threads))) });
  const conn = await inst.connect();
  return { inst, conn, lock: async () => {
    const dirs = [...new Set([...readDirs, writeDir].map((d) => (d.endsWith('/') ? d : d + '/')))];
    await conn.run(`SET allowed_directories = [${dirs.map(sqlString).join(', ')}]`);
    await conn.run('SET enable_external_access = false');
    await conn.run('SET lock_configuration = true');
  } };
}

function classifyDuckError(err: unknown, where: string): InputError {
  const msg = (err as Error)?.message ?? String(err);
  if (/Permission Error|file system operations are disabled/i.test(msg)) return new InputError(`query tried to access a file outside its inputs: ${firstLine(msg)}`, 'forbidden_file_access', where, { cause: err });
  if (/No files found|Cannot open file|does not exist/i.test(msg)) return new InputError(`input not found: ${firstLine(msg)}`, 'input_not_found', where, { cause: err });
  if (/No magic bytes|not a parquet file|Invalid Input Error: .*parquet/i.test(msg)) return new InputError(`input is not a valid Parquet file: ${firstLine(msg)}`, 'invalid_input', where, { cause: err });
  if (/Parser Error|Binder Error|Catalog Error|Conversion Error/i.test(msg)) return new InputError(`SQL error: ${msg.replace(/\s+/g, ' ').trim()}`, 'sql_error', where, { cause: err });
  return new InputError(`DuckDB error: ${firstLine(msg)}`, 'query_failed', where, { cause: err });
}
const firstLine = (s: string) => s.split('\n')[0] ?? s;

async function runCopy(ctx: ExecContext, setup: string, query: string, out: string, readDirs: string[], where: string): Promise<number> {
  await mkdir(dirname(out), { recursive: true });
  const { inst, conn, lock } = await openSandboxedDuck(readDirs, ctx.outDir, ctx.spec.resources?.cores ?? 1);
  const onAbort = () => conn.interrupt();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    try {
      await conn.run(setup);
    } catch (err) {
      throw classifyDuckError(err, where);
    }
    await lock();
    try {
      const r = await conn.runAndReadAll(`COPY (${query.trim().replace(/;+\s*$/, '')}) TO ${sqlString(out)} (FORMAT parquet, COMPRESSION zstd)`);
      const v = r.getRows()[0]?.[0];
      return typeof v === 'bigint' ? Number(v) : Number(v ?? 0);
    } catch (err) {
      if (ctx.signal.aborted) throw new TaskCancelledError('cancelled');
      throw classifyDuckError(err, where);
    }
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    conn.closeSync();
    inst.closeSync();
  }
}

export function catalogSqlParams(params: unknown): CatalogSqlParams {
  const p = (params ?? {}) as Record<string, unknown>;
  if (typeof p.map !== 'string' || p.map.trim() === '') throw new InputError('params.map must be a SQL query over the table `partition`', 'invalid_spec', '/params/map');
  if (p.reduce !== undefined && (typeof p.reduce !== 'string' || p.reduce.trim() === '')) throw new InputError('params.reduce must be a SQL query over the table `partials`', 'invalid_spec', '/params/reduce');
  return { map: p.map, ...(typeof p.reduce === 'string' ? { reduce: p.reduce } : {}) };
}

export const catalogSqlExecutor: Executor = {
  kind: 'catalog.sql',
  inProcess: true,
  async map(ctx) {
    const { map } = catalogSqlParams(ctx.spec.params);
    const part = ctx.task.partition;
    if (!part || part.files.length === 0) throw new InputError('task has no input partition', 'invalid_task', `task ${ctx.task.taskId}`);
    const where = part.order >= 0 ? `partition Norder=${part.order}/Npix=${part.pixel} (${part.files[0]})` : `input ${part.files[0]}`;
    // checksums for provenance are computed while the query runs
    const hashing = Promise.all(part.files.map((f) => fileRecord(f).catch((err) => { throw new InputError(`input not found: ${f}`, 'input_not_found', f, { cause: err }); })));
    hashing.catch(() => undefined);
    const out = join(ctx.outDir, 'part.parquet');
    const rows = await runCopy(ctx, `CREATE VIEW "partition" AS SELECT * FROM ${readFilesSql(part.files)}`, map, out, part.files.map(dirname), where);
    const inputs = await hashing;
    ctx.progress();
    return { inputs, outputs: [await fileRecord(out, rows)], rows };
  },
  async reduce(ctx, partials) {
    const { reduce } = catalogSqlParams(ctx.spec.params);
    if (!reduce) throw new InputError('reduce stage without params.reduce', 'invalid_spec', '/params/reduce');
    const hashing = Promise.all(partials.map((f) => fileRecord(f)));
    hashing.catch(() => undefined);
    const out = join(ctx.outDir, 'result.parquet');
    const setup = partials.length > 0
      ? `CREATE VIEW partials AS SELECT * FROM read_parquet([${partials.map(sqlString).join(', ')}], union_by_name = true)`
      : 'CREATE TABLE partials (dummy INTEGER)';
    const rows = await runCopy(ctx, setup, reduce, out, [...new Set(partials.map(dirname))], 'reduce query (params.reduce)');
    const inputs = await hashing;
    return { inputs, outputs: [await fileRecord(out, rows)], rows };
  },
};
