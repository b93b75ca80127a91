/** Folds over ledger records: usage per tenant and job, and provenance lookups. */
import type { Charge, LedgerEntry, LedgerEntryOf } from '../protocol/index.js';
import type { LedgerRecord } from './replay.js';

export interface UsageTotals {
  cpuSeconds: number;
  gpuSeconds: number;
  wallSeconds: number;
  attempts: number;
  failedAttempts: number;
  bytesRead: number;
  bytesWritten: number;
}
export const zeroUsage = (): UsageTotals => ({ cpuSeconds: 0, gpuSeconds: 0, wallSeconds: 0, attempts: 0, failedAttempts: 0, bytesRead: 0, bytesWritten: 0 });

export function addCharge(t: UsageTotals, c: Charge): void {
  t.cpuSeconds += c.usage.cpuSeconds;
  t.gpuSeconds += c.usage.gpuSeconds;
  t.wallSeconds += c.usage.wallSeconds;
  t.bytesRead += c.usage.bytesRead;
  t.bytesWritten += c.usage.bytesWritten;
  t.attempts += 1;
  if (c.outcome !== 'ok') t.failedAttempts += 1;
}

export interface LedgerSummary {
  entries: number;
  byKind: Record<string, number>;
  jobs: { accepted: number; closed: number };
  charges: number;
  total: UsageTotals;
  byTenant: Map<string, UsageTotals>;
  byJob: Map<string, UsageTotals>;
  /** (taskId/attempt/execution) seen more than once: must stay empty */
  duplicateCharges: string[];
}

export function summarizeLedger(records: Iterable<LedgerRecord | { entry: LedgerEntry }>): LedgerSummary {
  const s: LedgerSummary = { entries: 0, byKind: {}, jobs: { accepted: 0, closed: 0 }, charges: 0, total: zeroUsage(), byTenant: new Map(), byJob: new Map(), duplicateCharges: [] };
  const seen = new Set<string>();
  for (const { entry } of records) {
    s.entries++;
    s.byKind[entry.kind] = (s.byKind[entry.kind] ?? 0) + 1;
    if (entry.kind === 'job.accepted') s.jobs.accepted++;
    else if (entry.kind === 'job.closed') s.jobs.closed++;
    else if (entry.kind === 'task.charged') {
      const tenant = `${entry.group}.${entry.user}`;
      for (const c of entry.charges) {
        const id = `${c.taskId}/${c.attempt}/${c.execution}`;
        if (seen.has(id)) {
          s.duplicateCharges.push(id);
          continue;
        }
        seen.add(id);
        s.charges++;
        addCharge(s.total, c);
        addCharge(getOr(s.byTenant, tenant), c);
        addCharge(getOr(s.byJob, c.jobId), c);
      }
    }
  }
  return s;
}

function getOr(m: Map<string, UsageTotals>, k: string): UsageTotals {
  let v = m.get(k);
  if (!v) m.set(k, (v = zeroUsage()));
  return v;
}

export interface ProvenanceChain {
  job?: LedgerEntryOf<'job.accepted'>;
  closed?: LedgerEntryOf<'job.closed'>;
  /** accepted (ok) charges with their provenance, plus failed attempts */
  charges: Charge[];
}

/** Everything the ledger knows about a job, or about the job that wrote `outputPath`. */
export function findProvenance(records: Iterable<LedgerRecord>, q: { jobId?: string; outputPath?: string }): ProvenanceChain | undefined {
  const all = [...records];
  let jobId = q.jobId;
  if (!jobId && q.outputPath) {
    const want = q.outputPath.replace(/\/+$/, '');
    for (const { entry } of all) {
      if (entry.kind === 'job.closed' && entry.outputs.some((o) => o.path === want || o.path.startsWith(want + '/'))) jobId = entry.jobId;
      if (entry.kind === 'job.accepted') {
        const spec = entry.spec as { output?: { path?: string } } | undefined;
        if (spec?.output?.path?.replace(/\/+$/, '') === want) jobId = entry.jobId;
      }
    }
  }
  if (!jobId) return undefined;
  const chain: ProvenanceChain = { charges: [] };
  for (const { entry } of all) {
    if (entry.kind === 'job.accepted' && entry.jobId === jobId) chain.job = entry;
    else if (entry.kind === 'job.closed' && entry.jobId === jobId) chain.closed = entry;
    else if (entry.kind === 'task.charged') for (const c of entry.charges) if (c.jobId === jobId) chain.charges.push(c);
  }
  if (!chain.job && chain.charges.length === 0) return undefined;
  return chain;
}
