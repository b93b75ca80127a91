import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportLedger, exportLedgerParquet, LedgerExportError, LEDGER_EXPORT_COLUMNS, ledgerRows } from '../../ledger/export.js';
import type { LedgerRecord } from '../../ledger/replay.js';
import type { Charge, LedgerEntry } from '../../protocol/index.js';

const T0 = Date.UTC(2025, 5, 2);
const base = (group: string, user: string) => ({ ts: new Date(T0).toISOString(), actor: user, group, user });

function charge(jobId: string, i: number, attempt: number, outcome: Charge['outcome'], cpu: number, wall: number, gpu: number): Charge {
  return {
    taskId: `${jobId}.${i}`,
    jobId,
    attempt,
    execution: `w${i % 3}.${i}.${attempt}`,
    outcome,
    usage: { cpuSeconds: cpu, wallSeconds: wall, gpuSeconds: gpu, peakRssBytes: 2 ** 30, bytesRead: 1000 * i, bytesWritten: 10 * i, allocatedCores: 2 },
    provenance: {
      inputs: [{ path: '/in/a.parquet', bytes: 10, sha256: 'aa' }],
      outputs: [],
      code: { ubatchVersion: '0.1.0', gitCommit: 'deadbeef', kind: 'catalog.sql' },
      params: { sql: 'select 1' },
      worker: { id: `w${i % 3}`, host: 'node1', pid: 42 },
      startedAt: new Date(T0 + i * 1000).toISOString(),
      endedAt: new Date(T0 + i * 1000 + 500).toISOString(),
    },
  };
}

/** 3 non-charge entries, 200 task.charged entries of 3 charges each, a quota, a share and a close: 606 charge rows + 5 other rows. */
function ledger(): LedgerRecord[] {
  let seq = 0;
  const out: LedgerRecord[] = [];
  const push = (time: number, entry: LedgerEntry) => out.push({ seq: ++seq, time, subject: `ub.ledger.${entry.kind}`, entry });
  push(T0, { kind: 'share.set', ...base('desc', 'ops'), scope: 'group', share: 40 });
  push(T0, { kind: 'quota.set', ...base('desc', 'alice'), scope: 'user', limits: { cpu_hours: 100, max_concurrent: 8 } });
  push(T0 + 1, { kind: 'job.accepted', ...base('desc', 'alice'), jobId: 'j1', jobKind: 'catalog.sql', name: 'it\'s, "quoted"\nname', tasks: 600, spec: { kind: 'catalog.sql', sql: 'select 1' } });
  for (let k = 0; k < 200; k++) {
    push(T0 + 1000 + k, {
      kind: 'task.charged',
      ...base('desc', 'alice'),
      charges: [charge('j1', 3 * k, 1, 'ok', 1.5, 2, 0), charge('j1', 3 * k + 1, 1, k % 10 === 0 ? 'retried' : 'ok', 0.25, 1, 0.5), charge('j1', 3 * k + 2, 1, 'ok', 1, 1, 0)],
    });
  }
  push(T0 + 5000, { kind: 'task.charged', ...base('tvs', 'bob'), charges: [charge('j2', 1, 1, 'failed', 10, 20, 0), charge('j2', 1, 2, 'ok', 10, 20, 0), charge('j2', 2, 1, 'cancelled', 1, 1, 0)] });
  push(T0 + 6000, { kind: 'job.closed', ...base('desc', 'alice'), jobId: 'j1', state: 'succeeded', done: 600, failed: 0, outputs: [{ path: '/out/x.parquet', bytes: 5, sha256: 'bb' }] });
  push(T0 + 7000, { kind: 'share.set', ...base('desc', 'alice'), ts: '', scope: 'user', share: 2 });
  return out;
}

async function* asAsync<T>(xs: Iterable<T>): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

let dir: string;
let db: DuckDBInstance;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reports-export-'));
  db = await DuckDBInstance.create(':memory:');
});
afterAll(async () => {
  db.closeSync();
  await rm(dir, { recursive: true, force: true });
});

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
  }
}

describe('exportLedger', () => {
  const records = ledger();
  const chargeRows = 200 * 3 + 3;
  const otherRows = 5;
  const wall = 200 * (2 + 1 + 1) + 41;
  const cpu = 200 * (1.5 + 0.25 + 1) + 21;
  const gpu = 200 * 0.5;

  it('writes Parquet that DuckDB reads back: one row per charge plus one per other entry, same sums', async () => {
    const file = join(dir, 'ledger.parquet');
    const r = await exportLedgerParquet(asAsync(records), file);
    expect(r.rows).toBe(chargeRows + otherRows);
    const src = `read_parquet('${file}')`;
    const [counts] = await query(`SELECT count(*)::INTEGER AS n, count(task_id)::INTEGER AS charges, sum(wall_seconds) AS wall, sum(cpu_seconds) AS cpu, sum(gpu_seconds) AS gpu, sum(core_seconds) AS core FROM ${src}`);
    expect(counts).toMatchObject({ n: chargeRows + otherRows, charges: chargeRows });
    expect(counts!['wall']).toBeCloseTo(wall, 9);
    expect(counts!['cpu']).toBeCloseTo(cpu, 9);
    expect(counts!['gpu']).toBeCloseTo(gpu, 9);
    expect(counts!['core']).toBeCloseTo(2 * wall, 9);
    const kinds = await query(`SELECT kind, count(*)::INTEGER AS n FROM ${src} GROUP BY kind ORDER BY kind`);
    expect(kinds).toEqual([
      { kind: 'job.accepted', n: 1 },
      { kind: 'job.closed', n: 1 },
      { kind: 'quota.set', n: 1 },
      { kind: 'share.set', n: 2 },
      { kind: 'task.charged', n: chargeRows },
    ]);
    const byOutcome = await query(`SELECT outcome, count(*)::INTEGER AS n FROM ${src} WHERE outcome IS NOT NULL GROUP BY outcome ORDER BY outcome`);
    expect(byOutcome).toEqual([
      { outcome: 'cancelled', n: 1 },
      { outcome: 'failed', n: 1 },
      { outcome: 'ok', n: 200 * 3 - 20 + 1 },
      { outcome: 'retried', n: 20 },
    ]);
    const [q] = await query(`SELECT quota_cpu_hours, quota_max_concurrent, task_id, detail_json FROM ${src} WHERE kind = 'quota.set'`);
    expect(q).toEqual({ quota_cpu_hours: 100, quota_max_concurrent: 8, task_id: null, detail_json: '{"cpu_hours":100,"max_concurrent":8}' });
    const [job] = await query(`SELECT job_name, tasks, epoch_ms("time") AS t FROM ${src} WHERE kind = 'job.accepted'`);
    expect(job!['job_name']).toBe('it\'s, "quoted"\nname');
    expect(job!['tasks']).toBe(600);
    expect(Number(job!['t'])).toBe(T0 + 1);
    // an empty string stays an empty string, a missing value is NULL
    const [shareRow] = await query(`SELECT ts, share, task_id FROM ${src} WHERE kind = 'share.set' AND "user" = 'alice'`);
    expect(shareRow).toEqual({ ts: '', share: 2, task_id: null });
    const cols = await query(`SELECT column_name FROM (DESCRIBE SELECT * FROM ${src})`);
    expect(cols.map((c) => c['column_name'])).toEqual([...Object.keys(LEDGER_EXPORT_COLUMNS).flatMap((c) => (c === 'time_ms' ? ['time_ms', 'time'] : [c]))]);
    // no temporary files left next to the output
    expect(await readdir(dir)).toEqual(['ledger.parquet']);
  });

  it('writes CSV (DuckDB-readable, awkward text quoted) and NDJSON with the same rows', async () => {
    const csv = join(dir, 'ledger.csv');
    const r = await exportLedger(records, csv);
    expect(r).toMatchObject({ format: 'csv', rows: chargeRows + otherRows });
    const [c] = await query(`SELECT count(*)::INTEGER AS n, sum(wall_seconds) AS wall FROM read_csv('${csv}', header = true)`);
    expect(c!['n']).toBe(chargeRows + otherRows);
    expect(c!['wall']).toBeCloseTo(wall, 9);
    const [name] = await query(`SELECT job_name FROM read_csv('${csv}', header = true) WHERE kind = 'job.accepted'`);
    expect(name!['job_name']).toBe('it\'s, "quoted"\nname');

    const nd = join(dir, 'ledger.ndjson');
    const n = await exportLedger(records, nd, { format: 'ndjson' });
    expect(n.rows).toBe(chargeRows + otherRows);
    const lines = (await readFile(nd, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(chargeRows + otherRows);
    expect(Object.keys(lines[0]!)).toEqual(Object.keys(LEDGER_EXPORT_COLUMNS));
    const sumWall = lines.reduce((s, l) => s + (typeof l['wall_seconds'] === 'number' ? l['wall_seconds'] : 0), 0);
    expect(sumWall).toBeCloseTo(wall, 9);
    expect(lines.filter((l) => l['kind'] === 'task.charged').every((l) => l['worker'] !== null && l['job_kind'] === null)).toBe(true);
  });

  it('filters by time, counts an empty ledger, and refuses an unknown format', async () => {
    const only = await exportLedger(records, join(dir, 'late.parquet'), { from: T0 + 5000 });
    expect(only.rows).toBe(3 + 2);
    const empty = join(dir, 'empty.parquet');
    expect((await exportLedgerParquet([], empty)).rows).toBe(0);
    const [e] = await query(`SELECT count(*)::INTEGER AS n FROM read_parquet('${empty}')`);
    expect(e!['n']).toBe(0);
    await expect(exportLedger(records, join(dir, 'x.bin'), { format: 'xlsx' as 'csv' })).rejects.toBeInstanceOf(LedgerExportError);
    expect(ledgerRows(records[3]!)).toHaveLength(3);
  });
});
