// Provenance report (ops/commands/provenance.ts): outputs <- attempts <- inputs, a reduce's partials
// followed back to the map attempts that wrote them, failed attempts kept, path queries narrowed.
import { describe, expect, it } from 'vitest';
import type { Charge, FileRecord } from '../../protocol/index.js';
import { findProvenance, summarizeLedger, type LedgerRecord } from '../../ledger/index.js';
import { buildProvenanceReport, looksLikeJobId, renderLedgerSummary } from '../../ops/commands/provenance.js';

const f = (path: string, rows?: number): FileRecord => ({ path, bytes: 100, sha256: `sha-${path}`, ...(rows !== undefined ? { rows } : {}) });
const usage = { cpuSeconds: 1, wallSeconds: 2, gpuSeconds: 0, peakRssBytes: 0, bytesRead: 100, bytesWritten: 100 };

function charge(taskId: string, attempt: number, outcome: Charge['outcome'], inputs: FileRecord[], outputs: FileRecord[], t: number): Charge {
  return {
    taskId,
    jobId: 'j1',
    attempt,
    execution: `w${attempt}.${t}`,
    outcome,
    usage,
    provenance: {
      inputs,
      outputs,
      code: { ubatchVersion: '0.1.0', gitCommit: 'abc123', kind: 'catalog.sql' },
      params: { map: 'SELECT 1' },
      worker: { id: `w${attempt}`, host: 'h', pid: 42 },
      startedAt: new Date(1_700_000_000_000 + t * 1000).toISOString(),
      endedAt: new Date(1_700_000_001_000 + t * 1000).toISOString(),
    },
  };
}

const OUT = '/o/h.parquet';
const P0 = '/o/h.parquet.ubatch/partials/0/part.parquet';
const P1 = '/o/h.parquet.ubatch/partials/1/part.parquet';
const records: LedgerRecord[] = [
  { seq: 1, time: 0, subject: 'ub.ledger.job.accepted.g.alice', entry: { kind: 'job.accepted', ts: 't0', actor: 'alice', group: 'g', user: 'alice', jobId: 'j1', jobKind: 'catalog.sql', name: 'hist', tasks: 3, spec: { kind: 'catalog.sql', output: { path: OUT } } } },
  { seq: 2, time: 0, subject: 'ub.ledger.task.charged.g.alice', entry: { kind: 'task.charged', ts: 't1', actor: 'w1', group: 'g', user: 'alice', charges: [charge('j1.0', 1, 'ok', [f('/cat/Npix=0.parquet')], [f(P0, 5)], 1), charge('j1.1', 1, 'retried', [], [], 2)] } },
  { seq: 3, time: 0, subject: 'ub.ledger.task.charged.g.alice', entry: { kind: 'task.charged', ts: 't2', actor: 'w2', group: 'g', user: 'alice', charges: [charge('j1.1', 2, 'ok', [f('/cat/Npix=1.parquet')], [f(P1, 7)], 3)] } },
  { seq: 4, time: 0, subject: 'ub.ledger.task.charged.g.alice', entry: { kind: 'task.charged', ts: 't3', actor: 'w1', group: 'g', user: 'alice', charges: [charge('j1.r', 1, 'ok', [f(P0), f(P1)], [f(OUT, 9)], 4)] } },
  { seq: 5, time: 0, subject: 'ub.ledger.job.closed.g.alice', entry: { kind: 'job.closed', ts: 't4', actor: 'c', group: 'g', user: 'alice', jobId: 'j1', state: 'succeeded', done: 3, failed: 0, outputs: [f(P0, 5), f(P1, 7), f(OUT, 9)] } },
];

describe('buildProvenanceReport', () => {
  it('shows the final output with its reduce attempt, the partials and the map attempts behind them', () => {
    const chain = findProvenance(records, { jobId: 'j1' })!;
    const r = buildProvenanceReport(chain);
    expect(r.job).toMatchObject({ jobId: 'j1', kind: 'catalog.sql', name: 'hist', user: 'alice', state: 'succeeded', done: 3 });
    expect(r.outputs.map((o) => o.path)).toEqual([OUT]);
    const top = r.outputs[0]!;
    expect(top.producedBy).toMatchObject({ taskId: 'j1.r', attempt: 1, code: { gitCommit: 'abc123' } });
    expect(top.upstream.map((u) => [u.path, u.producedBy.taskId, u.producedBy.attempt, u.producedBy.inputs[0]?.path])).toEqual([
      [P0, 'j1.0', 1, '/cat/Npix=0.parquet'],
      [P1, 'j1.1', 2, '/cat/Npix=1.parquet'],
    ]);
    expect(r.attempts.map((a) => `${a.taskId}/${a.attempt}:${a.outcome}`)).toEqual(['j1.0/1:ok', 'j1.1/1:retried', 'j1.1/2:ok', 'j1.r/1:ok']);
  });

  it('narrows to the file asked about, including an intermediate one', () => {
    const byOut = buildProvenanceReport(findProvenance(records, { outputPath: OUT })!, OUT);
    expect(byOut.query).toBe(OUT);
    expect(byOut.outputs.map((o) => o.path)).toEqual([OUT]);
    const byPartial = buildProvenanceReport(findProvenance(records, { jobId: 'j1' })!, P1);
    expect(byPartial.outputs.map((o) => [o.path, o.producedBy.worker.id])).toEqual([[P1, 'w2']]);
  });

  it('tells job ids from paths', () => {
    expect(looksLikeJobId('jmwwdnp39n3djl', '/')).toBe(true);
    expect(looksLikeJobId('out/x.parquet', '/')).toBe(false);
    expect(looksLikeJobId('tmp', '/')).toBe(false); // a directory of that name exists
  });

  it('renders the ledger summary with per-tenant totals', () => {
    const text = renderLedgerSummary(summarizeLedger(records));
    expect(text).toMatch(/entries:\s+5 \(job.accepted 1, task.charged 3, job.closed 1\)/);
    expect(text).toMatch(/4 attempts charged, no duplicates/);
    expect(text).toMatch(/g\.alice\s+│\s+4 │\s+1 │\s+4\.00 │\s+8\.00/);
  });
});
