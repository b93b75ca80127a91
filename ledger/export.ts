/**
 * The ledger as a flat table for pandas / DuckDB / spreadsheet users: one row
 * per charge (a task attempt) and one row per other entry (job accepted or
 * closed, quota or share set), columns null where they do not apply.
 *
 * Parquet and CSV go through DuckDB: the rows are streamed to a temporary CSV
 * and `COPY (SELECT ... FROM read_csv(..., columns = schema)) TO` writes the
 * output with an explicit schema (so an empty ledger still has typed columns).
 * (DuckDB's appender was tried: about 2x slower per row from JS.)
 * Every format is written to a temporary name next to the output and renamed
 * into place at the end, so a failed export leaves no half-written file.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Charge } from '../protocol/index.js';
import type { LedgerRecord } from './replay.js';

export type LedgerExportFormat = 'parquet' | 'csv' | 'ndjson';
export const LEDGER_EXPORT_FORMATS: readonly LedgerExportFormat[] = ['parquet', 'csv', 'ndjson'];

/** An export that could not be written (bad format, I/O or DuckDB failure); carries the output path. */
export class LedgerExportError extends Error {
  override name = 'LedgerExportError';
  constructor(
    message: string,
    readonly path: string,
    readonly format: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface LedgerExportOptions {
  /** @default inferred from the file extension (.parquet, .csv, .ndjson/.jsonl), else parquet */
  format?: LedgerExportFormat;
  /** Parquet compression @default 'zstd' */
  compression?: 'zstd' | 'snappy' | 'gzip' | 'uncompressed';
  /** only records with server time >= from (ms) */
  from?: number;
  /** only records with server time < to (ms) */
  to?: number;
  /** checked between records */
  signal?: AbortSignal;
  /** called every 10,000 rows and at the end with (rows written so far, records read so far) */
  onProgress?: (rows: number, records: number) => void;
  /** directory for the temporary NDJSON @default os.tmpdir() */
  tmpDir?: string;
}

/** Column name → DuckDB type, in output order. */
export const LEDGER_EXPORT_COLUMNS = {
  seq: 'BIGINT',
  time_ms: 'BIGINT',
  subject: 'VARCHAR',
  ts: 'VARCHAR',
  kind: 'VARCHAR',
  group: 'VARCHAR',
  user: 'VARCHAR',
  actor: 'VARCHAR',
  job_id: 'VARCHAR',
  charge_index: 'INTEGER',
  task_id: 'VARCHAR',
  attempt: 'INTEGER',
  execution: 'VARCHAR',
  outcome: 'VARCHAR',
  cpu_seconds: 'DOUBLE',
  gpu_seconds: 'DOUBLE',
  wall_seconds: 'DOUBLE',
  allocated_cores: 'DOUBLE',
  core_seconds: 'DOUBLE',
  peak_rss_bytes: 'BIGINT',
  bytes_read: 'BIGINT',
  bytes_written: 'BIGINT',
  worker: 'VARCHAR',
  host: 'VARCHAR',
  code_version: 'VARCHAR',
  git_commit: 'VARCHAR',
  executor_kind: 'VARCHAR',
  started_at: 'VARCHAR',
  ended_at: 'VARCHAR',
  inputs: 'INTEGER',
  outputs: 'INTEGER',
  job_kind: 'VARCHAR',
  job_name: 'VARCHAR',
  tasks: 'INTEGER',
  state: 'VARCHAR',
  done: 'INTEGER',
  failed: 'INTEGER',
  scope: 'VARCHAR',
  share: 'DOUBLE',
  quota_cpu_hours: 'DOUBLE',
  quota_gpu_hours: 'DOUBLE',
  quota_max_concurrent: 'DOUBLE',
  quota_stored_bytes: 'DOUBLE',
  /** quota.set: the limits object; job.accepted: the spec; job.closed: the outputs (JSON text) */
  detail_json: 'VARCHAR',
} as const;
export type LedgerExportColumn = keyof typeof LEDGER_EXPORT_COLUMNS;
export type LedgerExportRow = Record<LedgerExportColumn, string | number | null>;

const COLUMN_NAMES = Object.keys(LEDGER_EXPORT_COLUMNS) as LedgerExportColumn[];

const int = (n: number) => Math.round(n);

/**
 * A row with every column, null, in one object literal: one hidden class for
 * all rows. (Node 20's V8 is very slow at `{ ...base, many: props }`: about
 * 100 µs a row, so no spreads here.)
 */
function blankRow(r: LedgerRecord): LedgerExportRow {
  const e = r.entry;
  return {
    seq: r.seq, time_ms: r.time, subject: r.subject, ts: e.ts, kind: e.kind, group: e.group, user: e.user, actor: e.actor,
    job_id: null, charge_index: null, task_id: null, attempt: null, execution: null, outcome: null,
    cpu_seconds: null, gpu_seconds: null, wall_seconds: null, allocated_cores: null, core_seconds: null,
    peak_rss_bytes: null, bytes_read: null, bytes_written: null,
    worker: null, host: null, code_version: null, git_commit: null, executor_kind: null, started_at: null, ended_at: null,
    inputs: null, outputs: null, job_kind: null, job_name: null, tasks: null, state: null, done: null, failed: null,
    scope: null, share: null, quota_cpu_hours: null, quota_gpu_hours: null, quota_max_concurrent: null, quota_stored_bytes: null,
    detail_json: null,
  };
}

/** The rows one ledger record becomes: a row per charge for task.charged, else one row; every column present, null where n/a. */
export function ledgerRows(r: LedgerRecord): LedgerExportRow[] {
  const e = r.entry;
  switch (e.kind) {
    case 'task.charged': {
      const rows: LedgerExportRow[] = [];
      for (let i = 0; i < e.charges.length; i++) {
        const c = e.charges[i] as Charge;
        const u = c.usage;
        const p = c.provenance;
        const row = blankRow(r);
        row.job_id = c.jobId;
        row.charge_index = i;
        row.task_id = c.taskId;
        row.attempt = c.attempt;
        row.execution = c.execution;
        row.outcome = c.outcome;
        row.cpu_seconds = u.cpuSeconds;
        row.gpu_seconds = u.gpuSeconds;
        row.wall_seconds = u.wallSeconds;
        row.allocated_cores = u.allocatedCores ?? null;
        row.core_seconds = u.wallSeconds * (u.allocatedCores ?? 1);
        row.peak_rss_bytes = int(u.peakRssBytes);
        row.bytes_read = int(u.bytesRead);
        row.bytes_written = int(u.bytesWritten);
        row.worker = p.worker.id;
        row.host = p.worker.host;
        row.code_version = p.code.ubatchVersion;
        row.git_commit = p.code.gitCommit;
        row.executor_kind = p.code.kind;
        row.started_at = p.startedAt;
        row.ended_at = p.endedAt;
        row.inputs = p.inputs.length;
        row.outputs = p.outputs.length;
        rows.push(row);
      }
      return rows;
    }
    case 'job.accepted': {
      const row = blankRow(r);
      row.job_id = e.jobId;
      row.job_kind = e.jobKind;
      row.job_name = e.name ?? null;
      row.tasks = e.tasks;
      row.detail_json = e.spec === undefined ? null : JSON.stringify(e.spec);
      return [row];
    }
    case 'job.closed': {
      const row = blankRow(r);
      row.job_id = e.jobId;
      row.state = e.state;
      row.done = e.done;
      row.failed = e.failed;
      row.outputs = e.outputs.length;
      row.detail_json = JSON.stringify(e.outputs);
      return [row];
    }
    case 'quota.set': {
      const row = blankRow(r);
      row.scope = e.scope;
      row.quota_cpu_hours = e.limits['cpu_hours'] ?? null;
      row.quota_gpu_hours = e.limits['gpu_hours'] ?? null;
      row.quota_max_concurrent = e.limits['max_concurrent'] ?? null;
      row.quota_stored_bytes = e.limits['stored_bytes'] ?? null;
      row.detail_json = JSON.stringify(e.limits);
      return [row];
    }
    case 'share.set': {
      const row = blankRow(r);
      row.scope = e.scope;
      row.share = e.share;
      return [row];
    }
    default: {
      // a kind this version does not know: keep the row, with what every entry has
      const row = blankRow(r);
      row.detail_json = JSON.stringify(e);
      return [row];
    }
  }
}

/** The format an output path asks for, by extension; undefined when it does not say. */
export function formatFromPath(path: string): LedgerExportFormat | undefined {
  const p = path.toLowerCase();
  if (p.endsWith('.parquet') || p.endsWith('.pq')) return 'parquet';
  if (p.endsWith('.csv')) return 'csv';
  if (p.endsWith('.ndjson') || p.endsWith('.jsonl') || p.endsWith('.json')) return 'ndjson';
  return undefined;
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}
function sqlIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

async function writeChunk(ws: WriteStream, chunk: string): Promise<void> {
  if (!ws.write(chunk)) await once(ws, 'drain');
}

async function closeStream(ws: WriteStream): Promise<void> {
  await new Promise<void>((res, rej) => ws.end((err?: Error | null) => (err ? rej(err) : res())));
}

/** Streams `records` as NDJSON rows (one JSON object per row, every column present) into `file`. */
/** Streams `records` as text lines, one per row (`encode` turns a row into its line, without the newline), into `file`. */
async function writeRows(records: AsyncIterable<LedgerRecord> | Iterable<LedgerRecord>, file: string, o: LedgerExportOptions, encode: (row: LedgerExportRow) => string): Promise<{ rows: number; records: number }> {
  const ws = createWriteStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const failed = new Promise<never>((_, rej) => ws.once('error', rej));
  failed.catch(() => undefined);
  let rows = 0;
  let count = 0;
  let buf = '';
  const from = o.from ?? -Infinity;
  const to = o.to ?? Infinity;
  try {
    for await (const r of records) {
      o.signal?.throwIfAborted();
      count++;
      if (r.time < from || r.time >= to) continue;
      for (const row of ledgerRows(r)) {
        buf += `${encode(row)}\n`;
        rows++;
        if (rows % 10_000 === 0) o.onProgress?.(rows, count);
      }
      if (buf.length >= 1 << 20) {
        await Promise.race([writeChunk(ws, buf), failed]);
        buf = '';
      }
    }
    if (buf.length > 0) await Promise.race([writeChunk(ws, buf), failed]);
    await Promise.race([closeStream(ws), failed]);
  } catch (err) {
    ws.destroy();
    throw err;
  }
  o.onProgress?.(rows, count);
  return { rows, records: count };
}

/** NDJSON: every column in a fixed order (blankRow's), null where n/a — a stable schema for line readers. */
const ndjsonLine = (row: LedgerExportRow): string => JSON.stringify(row);

/**
 * The temporary CSV DuckDB reads: no header, NULL as an empty field, an empty
 * string as "" (read with allow_quoted_nulls = false), text quoted only when it
 * holds a quote, comma or line break.
 */
const csvCells: string[] = new Array<string>(COLUMN_NAMES.length).fill('');
function csvLine(row: LedgerExportRow): string {
  // one reused array joined once: far less garbage than growing the line piece by piece
  for (let i = 0; i < COLUMN_NAMES.length; i++) {
    const v = row[COLUMN_NAMES[i] as LedgerExportColumn];
    csvCells[i] =
      v === null ? '' : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v === '' || /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
  }
  return csvCells.join(',');
}

/**
 * Writes the rows to a temporary CSV (cheap to build, and DuckDB's fastest
 * reader), then `COPY (SELECT ... FROM read_csv(..., columns = schema)) TO file`:
 * the explicit schema types every column, even for an empty ledger.
 */
async function copyThroughDuckDb(
  records: AsyncIterable<LedgerRecord> | Iterable<LedgerRecord>,
  file: string,
  format: 'parquet' | 'csv',
  scratch: string,
  o: LedgerExportOptions,
): Promise<{ rows: number; records: number }> {
  const csv = join(scratch, 'ledger.csv');
  const written = await writeRows(records, csv, o, csvLine);
  o.signal?.throwIfAborted();
  const columns = `{${COLUMN_NAMES.map((c) => `${sqlString(c)}: ${sqlString(LEDGER_EXPORT_COLUMNS[c])}`).join(', ')}}`;
  const read = `read_csv(${sqlString(csv)}, columns = ${columns}, header = false, auto_detect = false, delim = ',', quote = '"', escape = '"', nullstr = '', allow_quoted_nulls = false, max_line_size = 16777216)`;
  // ledger order is kept: DuckDB preserves insertion order by default
  const select = `SELECT ${COLUMN_NAMES.map((c) => (c === 'time_ms' ? `${sqlIdent(c)}, epoch_ms(${sqlIdent(c)}) AS "time"` : sqlIdent(c))).join(', ')} FROM ${read}`;
  const options = format === 'parquet' ? `(FORMAT parquet, COMPRESSION ${o.compression ?? 'zstd'})` : '(FORMAT csv, HEADER true)';
  const db = await DuckDBInstance.create(':memory:', { temp_directory: scratch });
  try {
    const conn = await db.connect();
    try {
      await conn.run(`COPY (${select}) TO ${sqlString(file)} ${options}`);
    } finally {
      conn.closeSync();
    }
  } finally {
    db.closeSync();
  }
  return written;
}

/**
 * Writes the ledger to `path` as Parquet, CSV or NDJSON (see {@link LEDGER_EXPORT_COLUMNS}).
 * Resolves with the number of rows written.
 */
export async function exportLedger(records: AsyncIterable<LedgerRecord> | Iterable<LedgerRecord>, path: string, opts: LedgerExportOptions = {}): Promise<{ rows: number; records: number; bytes: number; format: LedgerExportFormat }> {
  const out = resolve(path);
  const format = opts.format ?? formatFromPath(out) ?? 'parquet';
  if (!LEDGER_EXPORT_FORMATS.includes(format)) throw new LedgerExportError(`unknown export format ${JSON.stringify(format)}; use one of ${LEDGER_EXPORT_FORMATS.join(', ')}`, out, String(format));
  const partial = join(dirname(out), `.${basename(out)}.${process.pid}.${Date.now()}.partial`);
  let scratch: string | undefined;
  try {
    let written: { rows: number; records: number };
    if (format === 'ndjson') {
      written = await writeRows(records, partial, opts, ndjsonLine);
    } else {
      scratch = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'ubatch-ledger-export-'));
      written = await copyThroughDuckDb(records, partial, format, scratch, opts);
    }
    await rename(partial, out);
    const bytes = (await stat(out)).size;
    return { rows: written.rows, records: written.records, bytes, format };
  } catch (err) {
    await rm(partial, { force: true }).catch(() => undefined); // best effort: the error below is what matters
    if (err instanceof LedgerExportError || (err instanceof Error && err.name === 'AbortError')) throw err;
    throw new LedgerExportError(`exporting the ledger as ${format} to ${out} failed: ${err instanceof Error ? err.message : String(err)}`, out, format, { cause: err });
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true }).catch(() => undefined); // a leftover temp dir is harmless
  }
}

/** The ledger as Parquet (one row per charge, one per other entry). */
export async function exportLedgerParquet(records: AsyncIterable<LedgerRecord> | Iterable<LedgerRecord>, path: string, opts: Omit<LedgerExportOptions, 'format'> = {}): Promise<{ rows: number }> {
  const r = await exportLedger(records, path, { ...opts, format: 'parquet' });
  return { rows: r.rows };
}
